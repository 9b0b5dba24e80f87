/**
 * Asynchronous steps (`rollout.max_off_policy_steps`) against synchronous ones on the toy
 * suite, with the in-process ONNX engine: the same tasks and episode seeds each step, every
 * turn's recorded policy version within the staleness bound (and exact in synchronous
 * mode), rollouts of step k + 1 sampled while step k trained, and the loss's truncated
 * importance sampling on by default when rollouts may be off-policy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunStore, type EpisodeRecord } from '../../../harness/index.ts';
import {
  TRAINING_RUN_IDS,
  train,
  type MetricRow,
  type TrainConfigInput,
} from '../../../trainers/rl/index.ts';
import { FIRST_BEST, TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const STEPS = 4;

function config(output: string, maxOffPolicySteps: number): TrainConfigInput {
  return {
    tasks: { train: [join(TOY_DIR, 'lookup-train')], per_step: 2 },
    policy: { scratch: { hidden_size: 32, layers: 1, heads: 2, max_len: 512 } },
    algorithm: { name: 'grpo', group_size: 4, lr: 1e-3, micro_batch: 8 },
    sampling: { temperature: 1, max_new_tokens: 16 },
    sft: { data: 'oracle', episodes: 8, steps: 3, batch_size: 4, lr: 5e-3 },
    rollout: { max_off_policy_steps: maxOffPolicySteps, concurrency: 4 },
    steps: STEPS,
    checkpoint: { every: STEPS },
    device: 'cpu',
    threads: 1,
    seed: 6,
    output,
  };
}

async function run(
  output: string,
  maxOffPolicySteps: number,
): Promise<{ rows: MetricRow[]; steps: EpisodeRecord[][] }> {
  const rows: MetricRow[] = [];
  const result = await train(config(output, maxOffPolicySteps), {
    loadTasks: loadToyTasks,
    toolProviders: TOY_TOOLS,
    rewardsFor: () => ({ group: [FIRST_BEST] }),
    onStep: (row) => rows.push(row),
  });
  const steps = Array.from(
    { length: STEPS },
    (_, i) =>
      RunStore.open(result.runsDir, TRAINING_RUN_IDS.step(i + 1)).records() as unknown as EpisodeRecord[],
  );
  return { rows: rows.filter((row) => row.type === 'train'), steps };
}

const versionsOf = (episodes: readonly EpisodeRecord[]): number[] =>
  episodes.flatMap((episode) => episode.turns.map((turn) => turn.tokens!.policyVersion!));

describe('asynchronous rollouts with a staleness bound', () => {
  const root = mkdtempSync(join(tmpdir(), 'paddock-async-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('samples the same tasks as synchronous training, within the bound, overlapping the updates', async () => {
    const [sync, async_] = await Promise.all([run(join(root, 'sync'), 0), run(join(root, 'async'), 1)]);

    for (let step = 1; step <= STEPS; step++) {
      const plan = (episodes: readonly EpisodeRecord[]): string[] =>
        episodes.map((episode) => `${episode.episodeId} ${episode.seed}`).sort();
      // The same tasks and episode seeds, step by step.
      expect(plan(async_.steps[step - 1]!)).toEqual(plan(sync.steps[step - 1]!));
      // Synchronous: every turn sampled by the policy of the step before.
      expect(new Set(versionsOf(sync.steps[step - 1]!))).toEqual(new Set([step - 1]));
      // Asynchronous: at most one update behind, never ahead.
      for (const version of versionsOf(async_.steps[step - 1]!)) {
        expect(version).toBeLessThanOrEqual(step - 1);
        expect(version).toBeGreaterThanOrEqual(step - 2);
      }
    }
    expect(sync.rows.map((row) => row.staleness_max)).toEqual([0, 0, 0, 0]);
    const staleness = async_.rows.map((row) => row.staleness_max as number);
    expect(Math.max(...staleness)).toBe(1); // some rollouts ran during an update
    expect(Math.min(...staleness)).toBeGreaterThanOrEqual(0);

    // Every step updated; the correction is on by default only for off-policy rollouts.
    for (const row of [...sync.rows, ...async_.rows]) expect(row.skipped_update).toBe(0);
    for (const row of sync.rows) expect(row.is_weight_mean).toBeUndefined();
    for (const row of async_.rows) {
      expect(row.is_weight_mean).toBeGreaterThan(0);
      expect(row.is_weight_mean).toBeLessThanOrEqual(2);
    }
  });
});
