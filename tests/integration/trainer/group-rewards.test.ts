/**
 * Group rewards in training: after each step's rollouts, a task's group functions (e.g. a
 * judge ranking the G episodes against each other) score its finished group, their
 * component joins each episode's reward, and the advantages and returns use the new totals.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PaddockError, type EpisodeRecord, type GroupRewardFunction } from '../../../harness/index.ts';
import { train } from '../../../trainers/rl/index.ts';
import { TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const GROUP = 4;
const PER_STEP = 2;

function config(output: string) {
  return {
    tasks: { train: [join(TOY_DIR, 'lookup-train')], per_step: PER_STEP },
    policy: { scratch: { hidden_size: 32, layers: 1, heads: 2, max_len: 512 } },
    algorithm: { name: 'grpo' as const, group_size: GROUP, lr: 1e-3, micro_batch: 8 },
    sampling: { temperature: 1, max_new_tokens: 16 },
    steps: 2,
    eval: { every: 10 },
    device: 'cpu' as const,
    seed: 5,
    output,
  };
}

describe('training with a group reward', () => {
  it('scores each finished group once, and trains on the combined reward', async () => {
    const calls: { task: string; episodes: string[] }[] = [];
    const returns: number[][] = [];
    // Ranks the first episode of each group above the others: signal even for an untrained policy.
    const firstBest: GroupRewardFunction = {
      name: 'rank',
      weight: 1,
      score: async ({ task, episodes }) => {
        calls.push({ task: task.id, episodes: episodes.map((episode) => episode.episodeId) });
        return episodes.map((_, index) => (index === 0 ? 1 : 0));
      },
    };
    const output = join(mkdtempSync(join(tmpdir(), 'paddock-group-')), 'run');
    await train(config(output), {
      loadTasks: loadToyTasks,
      toolProviders: TOY_TOOLS,
      rewardsFor: () => ({
        group: [firstBest],
        assignReturns: (episode: EpisodeRecord) => {
          returns.push([episode.reward.total]);
          return episode.turns.map(() => episode.reward.total);
        },
      }),
    });
    // One call per task and step, with the group's episodes in their order.
    expect(calls).toHaveLength(2 * PER_STEP);
    for (const call of calls) {
      expect(call.episodes).toEqual(
        Array.from({ length: GROUP }, (_, g) =>
          expect.stringMatching(new RegExp(`^${call.task}#\\d+\\.${g}$`)),
        ),
      );
    }
    const rows = readFileSync(join(output, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, number | string>)
      .filter((row) => row.type === 'train');
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      // An untrained policy never answers right: the reward is the rank alone, 1 in every group of 4.
      expect(row.reward_mean).toBeCloseTo(1 / GROUP, 10);
      expect(row.groups_with_signal).toBe(PER_STEP);
      expect(row.skipped_update).toBe(0);
      expect(row.group_reward_ms).toEqual(expect.any(Number));
    }
    // Returns were assigned again from the totals that include the group reward.
    expect(returns.flat()).toContain(1);
  }, 120_000);

  it("stops before the warm start when a task's rewards cannot be built", async () => {
    const output = join(mkdtempSync(join(tmpdir(), 'paddock-group-')), 'run');
    let calls = 0;
    const failing = train(config(output), {
      loadTasks: loadToyTasks,
      toolProviders: TOY_TOOLS,
      rewardsFor: () => {
        calls++;
        throw new PaddockError('CONFIG_INVALID', 'rewards.trajectory.0: cannot make the judge');
      },
    });
    await expect(failing).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect(calls).toBe(1);
    expect(existsSync(join(output, 'metrics.jsonl'))).toBe(false);
    expect(existsSync(join(output, 'checkpoints'))).toBe(false);
  });
});
