/** Runs every benchmark under bench/, one after another, each in its own process. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const BENCHMARKS = [
  'sandbox.ts',
  'episode.ts',
  'model-agent.ts',
  'rewards.ts',
  'mcp.ts',
  'browser.ts',
  'trainer.ts',
  'async-rollouts.ts',
  'onnx-batch-decode.ts',
  'cli-start.ts',
  'view-scale.ts',
  'viewer.ts',
];
let failed = 0;
for (const name of BENCHMARKS) {
  const file = join(import.meta.dirname, name);
  if (!existsSync(file)) continue;
  console.log(`\n=== bench/${name}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
