/**
 * `paddock train` as a user runs it: a train.yaml in, a policy folder out, which `paddock
 * run --agent onnx:<dir>` then plays like any agent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/paddock.js');

function paddock(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('paddock train', () => {
  it('trains from a train.yaml and leaves a policy that paddock run plays', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-e2e-train-'));
    const toy = join(ROOT, 'tasks', 'toy');
    const config = join(dir, 'train.yaml');
    writeFileSync(
      config,
      [
        `tasks: { train: ['${join(toy, 'lookup-train')}'], heldout: ['${join(toy, 'lookup-heldout')}'], per_step: 2 }`,
        'policy:',
        '  scratch: { hidden_size: 32, layers: 1, heads: 2, max_len: 512 }',
        'algorithm: { name: grpo, group_size: 4, lr: 1.0e-3, micro_batch: 8 }',
        'sampling: { temperature: 1, max_new_tokens: 16 }',
        'sft: { data: oracle, episodes: 8, steps: 5, batch_size: 8, lr: 5.0e-3 }',
        'steps: 2',
        'eval: { every: 2, max_tasks: 4 }',
        'device: cpu',
        'seed: 2',
        'output: run',
        '',
      ].join('\n'),
    );
    // --seed and --output override the file's (the output relative to the working folder).
    const trained = paddock(['train', config, '--seed', '5', '--output', join(dir, 'run-5')]);
    expect(trained.stderr).not.toMatch(/paddock: /);
    expect(trained.code).toBe(0);
    expect(trained.stdout).toMatch(/trained 2 step\(s\) in \d+ s — held-out success [\d.]+ → [\d.]+/);
    expect(existsSync(join(dir, 'run'))).toBe(false);
    const output = join(dir, 'run-5');
    const summary = JSON.parse(readFileSync(join(output, 'summary.json'), 'utf8')) as {
      steps: number;
      runsDir: string;
    };
    expect(summary.steps).toBe(2);
    expect(JSON.parse(readFileSync(join(output, 'config.json'), 'utf8'))).toMatchObject({ seed: 5, output });
    expect(existsSync(join(output, 'policy', 'model.onnx'))).toBe(true);

    // The training run's episodes are runs that paddock view reads: 2 tasks × 4 episodes at step 2.
    expect(summary.runsDir).toBe(join(output, 'runs'));
    const listed = paddock(['view', '--text', '--runs-dir', summary.runsDir]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^step-000002\s+onnx:train\s+8\/8 episodes/m);
    const viewed = paddock(['view', 'step-000002', '--text', '--runs-dir', summary.runsDir]);
    expect(viewed.stderr).toBe('');
    expect(viewed.code).toBe(0);
    const episodeLines = viewed.stdout.split('\n').filter((line) => /#2\.[0-3]\t/.test(line));
    expect(episodeLines).toHaveLength(8);
    for (const line of episodeLines)
      expect(line).toMatch(/^toy\/lookup-train@\S+#2\.[0-3]\t\S+.* reward=[\d.]+/);

    const runsDir = join(dir, 'runs');
    const played = paddock([
      'run',
      join(toy, 'lookup-heldout'),
      '--agent',
      `onnx:${join(output, 'policy')}`,
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    expect(played.code).toBe(0);
    const result = JSON.parse(played.stdout) as { summary: { total: { episodes: number; errors: number } } };
    expect(result.summary.total).toMatchObject({ episodes: 100, errors: 0 });
  });
});
