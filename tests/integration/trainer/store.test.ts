/**
 * Training episodes are episodes: every rollout, demonstration and evaluation of a training
 * run is a record in a run of `<output>/runs`, which the run store reads and export
 * exports like any run — and a step's records are the ones its update trained on (group
 * rewards and returns applied).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  RunStore,
  isAgentOutcome,
  type EpisodeRecord,
  type RecordedEpisode,
} from '../../../harness/index.ts';
import { exportRun } from '../../../export/index.ts';
import { train, type TrainConfigInput } from '../../../trainers/rl/index.ts';
import { FIRST_BEST, TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const GROUP = 4;
const PER_STEP = 2;
const STEPS = 2;
const HELDOUT = 3;
const DEMOS = 8;

function config(output: string): TrainConfigInput {
  return {
    tasks: {
      train: [join(TOY_DIR, 'lookup-train')],
      heldout: [join(TOY_DIR, 'lookup-heldout')],
      per_step: PER_STEP,
    },
    policy: { scratch: { hidden_size: 32, layers: 1, heads: 2, max_len: 512 } },
    algorithm: { name: 'grpo', group_size: GROUP, lr: 1e-3, micro_batch: 8 },
    sampling: { temperature: 1, max_new_tokens: 16 },
    sft: { data: 'oracle', episodes: DEMOS, steps: 3, batch_size: 4, lr: 5e-3 },
    steps: STEPS,
    eval: { every: 1, max_tasks: HELDOUT, greedy: true },
    device: 'cpu',
    seed: 4,
    output,
  };
}

const mean = (values: readonly number[]): number =>
  values.reduce((sum, value) => sum + value, 0) / values.length;

describe('a training run in the run store', () => {
  it('records demonstrations, every step and every evaluation as runs that view and export read', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-train-store-'));
    const output = join(root, 'run');
    const result = await train(config(output), {
      loadTasks: loadToyTasks,
      toolProviders: TOY_TOOLS,
      rewardsFor: () => ({
        group: [FIRST_BEST],
        assignReturns: (episode: EpisodeRecord) => episode.turns.map(() => episode.reward.total),
      }),
    });

    const runsDir = join(output, 'runs');
    expect(result.runsDir).toBe(runsDir);
    expect(JSON.parse(readFileSync(join(output, 'summary.json'), 'utf8'))).toMatchObject({ runsDir });
    expect(RunStore.list(runsDir).sort()).toEqual([
      'demos',
      'eval-000000',
      'eval-000000-greedy',
      'eval-000001',
      'eval-000001-greedy',
      'eval-000002',
      'eval-000002-greedy',
      'step-000001',
      'step-000002',
    ]);

    const rows = readFileSync(join(output, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, number | string>);

    const demos = RunStore.open(runsDir, 'demos');
    expect(demos.manifest.config).toMatchObject({ agent: 'oracle', purpose: 'demonstrations' });
    expect(demos.episodes()).toHaveLength(DEMOS);

    for (let step = 1; step <= STEPS; step++) {
      const store = RunStore.open(runsDir, `step-${String(step).padStart(6, '0')}`);
      const row = rows.find((candidate) => candidate.type === 'train' && candidate.step === step)!;
      const episodes = store.episodes();
      // One record per planned episode, in plan order: what the update used, once.
      expect(store.records()).toHaveLength(PER_STEP * GROUP);
      expect(episodes.map((episode) => episode.episodeId)).toEqual(
        store.manifest.plan.map((planned) => planned.episodeId),
      );
      const usable = episodes.filter(isAgentOutcome);
      expect(usable).toHaveLength(row.episodes as number);
      expect(episodes.length - usable.length).toBe(row.errors);
      expect(mean(usable.map((episode) => episode.reward.total))).toBeCloseTo(row.reward_mean as number, 12);
      for (const episode of usable) {
        // Group scoring happened before the run was written: its component and the returns it assigned.
        const first = usable.find((candidate) => candidate.taskId === episode.taskId)!;
        expect(episode.reward.components.rank).toEqual({ value: episode === first ? 1 : 0, weight: 1 });
        expect(episode.turns.map((turn) => turn.return)).toEqual(
          episode.turns.map(() => episode.reward.total),
        );
        expect(episode.turns.every((turn) => turn.tokens !== undefined)).toBe(true);
      }

      const out = join(root, `step-${step}.jsonl`);
      const exported = await exportRun(store, { format: 'jsonl', out });
      expect(exported.rows).toBe(PER_STEP * GROUP);
      const lines = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map(
          (line) =>
            JSON.parse(line) as {
              episode_id: string;
              reward: number;
              input_ids?: number[];
              turn_policy_version: number[];
            },
        );
      expect(lines.map((line) => [line.episode_id, line.reward])).toEqual(
        episodes.map((episode) => [episode.episodeId, episode.reward.total]),
      );
      expect(lines.every((line) => Array.isArray(line.input_ids))).toBe(true);
      // Every turn of step N was sampled by the policy of step N − 1 (synchronous training).
      for (const line of lines) expect(new Set(line.turn_policy_version)).toEqual(new Set([step - 1]));
    }

    for (let step = 0; step <= STEPS; step++) {
      const row = rows.find((candidate) => candidate.type === 'eval' && candidate.step === step)!;
      const id = `eval-${String(step).padStart(6, '0')}`;
      const sampled = RunStore.open(runsDir, id).episodes();
      const greedy = RunStore.open(runsDir, `${id}-greedy`).episodes();
      expect(sampled).toHaveLength(HELDOUT);
      expect(greedy).toHaveLength(HELDOUT);
      const rewards = (episodes: RecordedEpisode[]): number[] =>
        episodes.map((episode) => (isAgentOutcome(episode) ? episode.reward.total : 0));
      expect(mean(rewards(sampled))).toBeCloseTo(row.reward_mean as number, 12);
      expect(mean(rewards(greedy).map((reward) => (reward >= 1 ? 1 : 0)))).toBeCloseTo(
        row.success_greedy as number,
        12,
      );
      const exported = await exportRun(RunStore.open(runsDir, id), {
        format: 'jsonl',
        out: join(root, `${id}.jsonl`),
      });
      expect(exported.rows).toBe(HELDOUT);
    }
  }, 240_000);
});
