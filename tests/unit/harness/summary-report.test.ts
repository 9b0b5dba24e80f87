/** Run summaries: named verifier scores per key with their rule, verifier timeouts, statuses, tokens and cost. */
import { describe, expect, it } from 'vitest';
import { formatSummary, summariseRun, type EpisodeRecord } from '../../../harness/index.ts';

function episode(
  taskId: string,
  options: {
    status?: EpisodeRecord['status'];
    scores?: Record<string, number>;
    reward?: number;
    timedOut?: boolean;
    usage?: [number, number, number?];
    costs?: number[];
    durationMs?: number;
  } = {},
): EpisodeRecord {
  const reward = options.reward ?? 0;
  return {
    episodeId: `${taskId}#0`,
    taskId,
    status: options.status ?? 'completed',
    turns: (options.costs ?? []).map((costUsd, index) => ({ index, rewards: {}, reward: 0, costUsd })),
    verifier: options.scores
      ? { reward, scores: options.scores, timedOut: false }
      : options.timedOut
        ? { reward: null, scores: {}, timedOut: true, error: 'the verifier timed out after 1000 ms' }
        : undefined,
    reward: { total: reward, components: { verifier: { value: reward, weight: 1 } }, constraints: {} },
    usage: {
      promptTokens: options.usage?.[0] ?? 0,
      completionTokens: options.usage?.[1] ?? 0,
      ...(options.usage?.[2] === undefined ? {} : { cacheReadTokens: options.usage[2] }),
    },
    durationMs: options.durationMs ?? 0,
  } as unknown as EpisodeRecord;
}

describe('summariseRun', () => {
  it('reports each reward.json key as its own mean, not only the mean of the keys', () => {
    const summary = summariseRun([
      episode('s/perf', { scores: { correctness: 1, performance: 0 }, reward: 0.5 }),
      episode('s/perf', { scores: { correctness: 1, performance: 1 }, reward: 1 }),
    ]);
    expect(summary.tasks[0]).toMatchObject({
      meanReward: 0.75,
      scores: { correctness: 1, performance: 0.5 },
      scoreRule: 'mean',
    });
    const text = formatSummary(summary);
    expect(text).toMatch(
      /s\/perf: verifier\.correctness=1\.000 {2}verifier\.performance=0\.500 {2}\(reward = mean of the keys\)/,
    );
  });

  it('says when the reward is the "reward" key and the other keys are only reported', () => {
    const summary = summariseRun([episode('s/r', { scores: { reward: 0.4, tests_passed: 4 }, reward: 0.4 })]);
    expect(summary.tasks[0]).toMatchObject({
      scores: { reward: 0.4, tests_passed: 4 },
      scoreRule: 'reward-key',
    });
    expect(formatSummary(summary)).toMatch(/reward = its "reward" key/);
  });

  it('counts 0 for a key when the verifier gave no score, as the mean reward does', () => {
    const summary = summariseRun([
      episode('s/t', { scores: { a: 1, b: 1 }, reward: 1 }),
      episode('s/t', { timedOut: true }),
    ]);
    expect(summary.tasks[0]).toMatchObject({
      meanReward: 0.5,
      scores: { a: 0.5, b: 0.5 },
      verifierTimeouts: 1,
    });
    expect(formatSummary(summary)).toMatch(/verifier timed out: 1 episode\(s\)/);
  });

  it('leaves single-number rewards out of the per-key report', () => {
    const summary = summariseRun([episode('s/one', { scores: { reward: 1 }, reward: 1 })]);
    expect(summary.tasks[0]!.scores).toEqual({});
    expect(summary.tasks[0]!.scoreRule).toBeUndefined();
    expect(formatSummary(summary)).not.toMatch(/verifier scores per key/);
  });

  it("gives the mean and the sum of the episodes' wall time, errors included", () => {
    const summary = summariseRun([
      episode('s/a', { durationMs: 1_000 }),
      episode('s/a', { durationMs: 3_000 }),
      episode('s/b', { status: 'infra-error', durationMs: 500 }),
    ]);
    expect(summary.tasks.find((task) => task.task === 's/a')!.durationMs).toEqual({
      mean: 2_000,
      total: 4_000,
    });
    expect(summary.total.durationMs).toEqual({ mean: 1_500, total: 4_500 });
  });

  it('totals tokens and cost over every episode, errors included', () => {
    const summary = summariseRun([
      episode('s/a', { usage: [100, 20], costs: [0.001, 0.002] }),
      episode('s/b', { status: 'infra-error', usage: [50, 5], costs: [0.0005] }),
    ]);
    expect(summary.total.usage).toEqual({ promptTokens: 150, completionTokens: 25, cachedTokens: 0 });
    expect(summary.total.costUsd).toBeCloseTo(0.0035, 10);
    expect(formatSummary(summary)).toMatch(/tokens: 150 prompt \+ 25 completion = 175; cost \$0\.00350/);
  });

  it("shows each task's input and output tokens, cached tokens and cost", () => {
    const summary = summariseRun([
      episode('s/a', { usage: [12_000, 300, 9_000], costs: [0.25] }),
      episode('s/a', { usage: [8_000, 200, 6_000], costs: [0.5] }),
      episode('s/b', { usage: [400, 20] }),
    ]);
    expect(summary.tasks.map((task) => [task.task, task.usage, task.costUsd])).toEqual([
      ['s/a', { promptTokens: 20_000, completionTokens: 500, cachedTokens: 15_000 }, 0.75],
      ['s/b', { promptTokens: 400, completionTokens: 20, cachedTokens: 0 }, 0],
    ]);
    const lines = formatSummary(summary).split('\n');
    expect(lines[0]).toMatch(/tokens in +tokens out +cost$/);
    expect(lines[2]).toMatch(/^s\/a .* 20\.0k +500 +\$0\.750$/);
    expect(lines[3]).toMatch(/^s\/b .* 400 +20 +-$/);
    expect(formatSummary(summary)).toMatch(/= 20920 \(15000 prompt tokens from cache\); cost \$0\.750/);
  });

  it('leaves the token and cost columns out of a run that used none', () => {
    const text = formatSummary(summariseRun([episode('s/a', { reward: 1 })]));
    expect(text.split('\n')[0]).not.toMatch(/tokens|cost/);
  });

  it('names the uncommon statuses under the table', () => {
    const summary = summariseRun([
      episode('s/a', { status: 'truncated' }),
      episode('s/b', { status: 'refused' }),
      episode('s/c', { status: 'sandbox-killed' }),
    ]);
    expect(formatSummary(summary)).toMatch(/also ended: truncated 1, refused 1, sandbox-killed 1/);
  });
});
