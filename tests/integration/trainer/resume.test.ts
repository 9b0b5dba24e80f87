/**
 * Checkpoints make training resumable after kill -9 with the same results: a run killed
 * mid-way and resumed ends with the weights and metrics of a run that was never killed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { RunStore } from '../../../harness/index.ts';
import { resumeTraining, train, type TrainConfigInput } from '../../../trainers/rl/index.ts';
import { TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const STEPS = 6;

function config(output: string): TrainConfigInput {
  return {
    tasks: {
      train: [join(TOY_DIR, 'lookup-train')],
      heldout: [join(TOY_DIR, 'lookup-heldout')],
      per_step: 2,
    },
    policy: { scratch: { hidden_size: 32, layers: 2, heads: 2, max_len: 512 } },
    algorithm: { name: 'grpo', group_size: 4, lr: 1e-3, micro_batch: 8 },
    sampling: { temperature: 1, max_new_tokens: 16 },
    sft: { data: 'oracle', episodes: 16, steps: 10, batch_size: 8, lr: 5e-3 },
    steps: STEPS,
    eval: { every: 3, max_tasks: 6 },
    checkpoint: { every: 1, keep: 2 },
    device: 'cpu',
    seed: 3,
    output,
  };
}

/** Rows of metrics.jsonl without the timings (which differ from run to run). */
function deterministicRows(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .map((row) => Object.fromEntries(Object.entries(row).filter(([key]) => !/(_ms|_per_s)$/.test(key))));
}

/** Each episode run of a training run: its planned ids, and each record's id, reward and tokens. */
function episodeRuns(runsDir: string): Record<string, unknown> {
  return Object.fromEntries(
    RunStore.list(runsDir)
      .sort()
      .map((runId) => {
        const store = RunStore.open(runsDir, runId);
        return [
          runId,
          {
            plan: store.manifest.plan.map((planned) => planned.episodeId),
            records: store.records().map((record) => ({
              id: record.episodeId,
              reward: record.reward.total,
              tokens: record.turns.map((turn) => turn.tokens),
            })),
          },
        ];
      }),
  );
}

describe('resume after kill -9', () => {
  it('ends with the weights and metrics of an uninterrupted run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-resume-'));
    const straight = await train(config(join(root, 'straight')), {
      loadTasks: loadToyTasks,
      toolProviders: TOY_TOOLS,
    });

    const killedDir = join(root, 'killed');
    const configFile = join(root, 'killed.json');
    writeFileSync(configFile, JSON.stringify(config(killedDir)));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'train-child.ts'), configFile],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    );
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === `STEP ${STEPS / 2}`) {
        child.kill('SIGKILL');
        break;
      }
    }
    expect(await exited).toBe('SIGKILL');
    const state = JSON.parse(readFileSync(join(killedDir, 'state.json'), 'utf8')) as { step: number };
    expect(state.step).toBeLessThan(STEPS);

    const resumed = await resumeTraining(killedDir, { loadTasks: loadToyTasks, toolProviders: TOY_TOOLS });
    expect(resumed.weightsSha256).toBe(straight.weightsSha256);
    expect(resumed.after).toEqual(straight.after);
    expect(deterministicRows(killedDir)).toEqual(deterministicRows(straight.dir));
    // The steps after the checkpoint ran again: their runs were replaced, not appended to.
    const runs = episodeRuns(resumed.runsDir);
    expect(Object.keys(runs)).toContain(`step-${String(STEPS).padStart(6, '0')}`);
    expect(runs).toEqual(episodeRuns(straight.runsDir));
  }, 240_000);
});
