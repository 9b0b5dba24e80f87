/** `resume` refuses runs that `paddock run` did not make, saying what resumes them instead. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resume, storedRunPlugins } from '../../../cli/evaluate.ts';
import { RunStore } from '../../../harness/index.ts';

function runOf(config: Record<string, unknown>): { runsDir: string; runId: string } {
  const runsDir = mkdtempSync(join(tmpdir(), 'paddock-foreign-'));
  const store = RunStore.create(runsDir, {
    runId: 'r1',
    createdAt: new Date().toISOString(),
    config,
    plan: [],
  });
  void store.close();
  return { runsDir, runId: 'r1' };
}

describe('resume of a run paddock run did not make', () => {
  it("names the training run a step's rollouts belong to", async () => {
    const { runsDir, runId } = runOf({
      agent: 'onnx:x',
      purpose: 'rollout',
      step: 3,
      training: '/out/train',
    });
    await expect(resume(runId, { runsDir })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message:
        'run r1 was not made by paddock run and cannot be resumed: it belongs to the training run in /out/train: paddock train --resume /out/train',
    });
    expect(() => storedRunPlugins(runsDir, runId)).toThrow(/paddock train --resume \/out\/train/);
  });

  it('says an mcp serve run is served again instead', async () => {
    const { runsDir, runId } = runOf({
      mode: 'mcp-serve',
      taskPaths: ['t'],
      transport: 'stdio',
      sessions: 1,
    });
    await expect(resume(runId, { runsDir })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('paddock mcp serve') as unknown as string,
    });
  });
});
