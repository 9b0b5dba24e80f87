import { describe, expect, it } from 'vitest';
import {
  assignCredit,
  grpoAdvantages,
  reinforceAdvantages,
  rlooAdvantages,
  trajectoryAdvantages,
  turnAdvantages,
} from '../../../rewards/credit/index.ts';

function close(actual: number[], expected: number[], digits = 10): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, digits));
}

describe('grpoAdvantages', () => {
  it('normalises by the group mean and sample standard deviation', () => {
    // mean 0.5; sample std = sqrt(4·0.25 / 3) = 0.57735
    close(grpoAdvantages([1, 0, 0, 1], { eps: 0 }), [0.8660254, -0.8660254, -0.8660254, 0.8660254], 6);
  });

  it('divides by n with the population standard deviation', () => {
    close(grpoAdvantages([1, 0, 0, 1], { eps: 0, std: 'population' }), [1, -1, -1, 1]);
  });

  it('adds eps to the standard deviation', () => {
    close(grpoAdvantages([2, 0], { eps: 0.5, std: 'population' }), [2 / 3, -2 / 3]);
  });

  it('only centres the rewards without std scaling (Dr. GRPO)', () => {
    close(grpoAdvantages([1, 0, 0, 1], { scaleByStd: false }), [0.5, -0.5, -0.5, 0.5]);
  });

  it('gives exact zeros to an all-equal group', () => {
    expect(grpoAdvantages([0.1, 0.1, 0.1])).toEqual([0, 0, 0]);
    expect(grpoAdvantages([0.1, 0.1, 0.1], { scaleByStd: false })).toEqual([0, 0, 0]);
  });

  it('gives a group of one zero, and an empty group nothing', () => {
    expect(grpoAdvantages([0.7])).toEqual([0]);
    expect(grpoAdvantages([])).toEqual([]);
  });
});

describe('rlooAdvantages', () => {
  it('subtracts the mean of the other rewards', () => {
    // A0 = 1 − 0; A1 = 0 − (1 + 0)/2; A2 = 0 − 0.5
    close(rlooAdvantages([1, 0, 0]), [1, -0.5, -0.5]);
    close(rlooAdvantages([3, 1, 2, 2]), [3 - 5 / 3, 1 - 7 / 3, 0, 0]);
  });

  it('gives zeros to an all-equal group and to a group of one', () => {
    expect(rlooAdvantages([0.3, 0.3])).toEqual([0, 0]);
    expect(rlooAdvantages([1])).toEqual([0]);
  });
});

describe('reinforceAdvantages', () => {
  it('subtracts the batch mean', () => {
    expect(reinforceAdvantages([1, 2, 3])).toEqual([-1, 0, 1]);
  });

  it('subtracts a given baseline', () => {
    expect(reinforceAdvantages([1, 2, 3], { baseline: 1 })).toEqual([0, 1, 2]);
  });

  it('gives zeros to an all-equal batch', () => {
    expect(reinforceAdvantages([0.1, 0.1, 0.1])).toEqual([0, 0, 0]);
  });
});

describe('trajectoryAdvantages', () => {
  it('dispatches to the named estimator', () => {
    expect(trajectoryAdvantages([1, 0, 0], 'rloo')).toEqual(rlooAdvantages([1, 0, 0]));
    expect(trajectoryAdvantages([1, 0], 'grpo')).toEqual(grpoAdvantages([1, 0]));
    expect(trajectoryAdvantages([1, 0], 'reinforce')).toEqual([0.5, -0.5]);
  });
});

describe('turnAdvantages', () => {
  const returns = [[1, 2], [3], [5, 6]];

  it('pools the turns at the same index across the group', () => {
    // index 0: [1, 3, 5] → [-2, 0, 2]; index 1: [2, 6] → [-2, 2]
    expect(turnAdvantages(returns, { estimator: 'reinforce', pooling: 'index' })).toEqual([
      [-2, -2],
      [0],
      [2, 2],
    ]);
  });

  it('pools the turns at the same index by default', () => {
    expect(turnAdvantages(returns, { estimator: 'reinforce' })).toEqual(
      turnAdvantages(returns, { estimator: 'reinforce', pooling: 'index' }),
    );
  });

  it('pools every turn of the group with pooling all', () => {
    // mean of [1, 2, 3, 5, 6] = 3.4
    const result = turnAdvantages(returns, { estimator: 'reinforce', pooling: 'all' });
    close(result.flat(), [-2.4, -1.4, -0.4, 1.6, 2.6]);
    expect(result.map((episode) => episode.length)).toEqual([2, 1, 2]);
  });

  it('gives a turn index only one episode reached a zero GRPO advantage', () => {
    const result = turnAdvantages([[1, 7], [0]], { estimator: 'grpo', pooling: 'index', eps: 0 });
    close(result[0]!, [0.7071068, 0], 6);
    close(result[1]!, [-0.7071068], 6);
  });

  it('gives four identical successful 3-turn episodes exactly 0 on every turn (GRPO, RLOO, REINFORCE)', () => {
    // Sparse credit, γ = 0.95, R = 1: G = [0.9025, 0.95, 1] on every episode.
    const G = assignCredit(
      { turnRewards: [0, 0, 0], trajectoryReward: 1 },
      { scheme: 'sparse', gamma: 0.95 },
    );
    const group = [G, G, G, G];
    for (const estimator of ['grpo', 'rloo', 'reinforce'] as const) {
      expect(turnAdvantages(group, { estimator })).toEqual([
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
      ]);
    }
    // Pooling all turns instead ranks the turns by position: what the default avoids.
    const pooled = turnAdvantages(group, { estimator: 'grpo', pooling: 'all' })[0]!;
    close(pooled, [-1.1624, -0.02, 1.1825], 3);
  });

  it('gives a turn that did better than the turns at its position a positive advantage', () => {
    // Four successes; episode 0's turn 1 is the only one without a tool_error penalty (dense).
    const returns = [0, 1, 2, 3].map((i) =>
      assignCredit({ turnRewards: [0, i === 0 ? 0 : -0.1, 0], trajectoryReward: 1 }, { scheme: 'dense' }),
    );
    const result = turnAdvantages(returns, { estimator: 'grpo' });
    expect(result[0]![1]).toBeGreaterThan(0);
    for (const i of [1, 2, 3]) expect(result[i]![1]).toBeLessThan(0);
    // Turn 0 carries the return-to-go, so it differs the same way; the last turn ties.
    expect(result[0]![0]).toBeGreaterThan(0);
    expect(result.map((episode) => episode[2])).toEqual([0, 0, 0, 0]);
  });

  it('gives zeros when every return of the group is equal', () => {
    expect(turnAdvantages([[1, 1], [1]], { estimator: 'rloo' })).toEqual([[0, 0], [0]]);
  });

  it('handles single-turn episodes as trajectory-level advantages', () => {
    expect(turnAdvantages([[1], [0], [0]], { estimator: 'rloo', pooling: 'index' })).toEqual([
      [1],
      [-0.5],
      [-0.5],
    ]);
  });
});
