import { describe, expect, it } from 'vitest';
import {
  constraintFunction,
  constraintViolations,
  measureConstraints,
  withConstraints,
} from '../../../rewards/index.ts';
import { makeEpisode, makeTurn } from '../../fixtures/rewards/records.ts';

const episode = makeEpisode({
  usage: { promptTokens: 15_000, completionTokens: 6_000 },
  turns: [makeTurn({ costUsd: 0.01 }), makeTurn({ costUsd: 0.005 }), makeTurn()],
  durationMs: 4_500,
  stats: {
    toolCalls: 4,
    toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
    emptyTurns: 0,
  },
  reward: { total: 1, components: { verifier: { value: 1, weight: 1 } }, constraints: {} },
});

describe('constraints', () => {
  it('measures every kind on the episode, with its limit', () => {
    const fns = [
      constraintFunction('tokens', { limit: 20_000 }),
      constraintFunction('prompt_tokens'),
      constraintFunction('completion_tokens'),
      constraintFunction('cost_usd', { limit: 1 }),
      constraintFunction('turns', { name: 'turn_count' }),
      constraintFunction('wall_time_sec'),
      constraintFunction('tool_calls'),
    ];
    expect(measureConstraints(episode, fns)).toEqual({
      tokens: { value: 21_000, limit: 20_000 },
      prompt_tokens: { value: 15_000 },
      completion_tokens: { value: 6_000 },
      cost_usd: { value: 0.015, limit: 1 },
      turn_count: { value: 3 },
      wall_time_sec: { value: 4.5 },
      tool_calls: { value: 4 },
    });
  });

  it('names the constraints over their limit', () => {
    expect(
      constraintViolations({
        tokens: { value: 21_000, limit: 20_000 },
        turns: { value: 3, limit: 5 },
        x: { value: 9 },
      }),
    ).toEqual(['tokens']);
  });

  it('adds constraints to a record without changing its total', () => {
    const updated = withConstraints(episode, [constraintFunction('tokens', { limit: 20_000 })]);
    expect(updated.reward.total).toBe(1);
    expect(updated.reward.components).toEqual(episode.reward.components);
    expect(updated.reward.constraints).toEqual({ tokens: { value: 21_000, limit: 20_000 } });
    expect(episode.reward.constraints).toEqual({});
  });
});
