import { describe, expect, it } from 'vitest';
import {
  assignCredit,
  creditConfig,
  creditTaskExtension,
  creditedRewards,
  type CreditEpisode,
  discountedReturns,
  episodeReturns,
} from '../../../rewards/credit/index.ts';

function close(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 10));
}

describe('discountedReturns', () => {
  it('sums rewards to go with gamma = 1', () => {
    expect(discountedReturns([1, 2, 3])).toEqual([6, 5, 3]);
  });

  it('discounts each later reward by gamma per turn', () => {
    // G2 = 3; G1 = 2 + 0.5·3 = 3.5; G0 = 1 + 0.5·3.5 = 2.75
    expect(discountedReturns([1, 2, 3], 0.5)).toEqual([2.75, 3.5, 3]);
  });

  it('returns nothing for an episode without turns', () => {
    expect(discountedReturns([], 0.9)).toEqual([]);
  });

  it('refuses a gamma outside [0, 1]', () => {
    expect(() => discountedReturns([1], 1.5)).toThrow(RangeError);
    expect(() => discountedReturns([1], -0.1)).toThrow(RangeError);
  });
});

describe('sparse credit', () => {
  it('puts R at the last turn and γ^(T-1-t)·R before it', () => {
    close(
      assignCredit({ turnRewards: [0.3, -0.2, 0.5], trajectoryReward: 1 }, { scheme: 'sparse', gamma: 0.9 }),
      [0.81, 0.9, 1],
    );
  });

  it('ignores turn rewards', () => {
    expect(creditedRewards({ turnRewards: [5, 5], trajectoryReward: 2 }, { scheme: 'sparse' })).toEqual([
      0, 2,
    ]);
  });

  it('gives a single-turn episode R', () => {
    expect(
      assignCredit({ turnRewards: [0.4], trajectoryReward: 0.7 }, { scheme: 'sparse', gamma: 0.5 }),
    ).toEqual([0.7]);
  });
});

describe('dense credit', () => {
  it('adds R to the last turn reward and sums to go', () => {
    // c = [0.1, -0.1, 1.2]
    close(
      assignCredit({ turnRewards: [0.1, -0.1, 0.2], trajectoryReward: 1 }, { scheme: 'dense' }),
      [1.2, 1.1, 1.2],
    );
  });

  it('discounts with gamma', () => {
    // G2 = 1.2; G1 = -0.1 + 0.5·1.2 = 0.5; G0 = 0.1 + 0.5·0.5 = 0.35
    close(
      assignCredit({ turnRewards: [0.1, -0.1, 0.2], trajectoryReward: 1 }, { scheme: 'dense', gamma: 0.5 }),
      [0.35, 0.5, 1.2],
    );
  });

  it('is the default scheme, and `discounted` is the same scheme', () => {
    const input = { turnRewards: [0.2, 0.3], trajectoryReward: 1 };
    expect(assignCredit(input)).toEqual(assignCredit(input, { scheme: 'dense' }));
    expect(assignCredit(input, { scheme: 'discounted', gamma: 0.9 })).toEqual(
      assignCredit(input, { scheme: 'dense', gamma: 0.9 }),
    );
  });

  it('gives a single-turn episode r_0 + R', () => {
    expect(assignCredit({ turnRewards: [0.25], trajectoryReward: 1 }, { scheme: 'dense' })).toEqual([1.25]);
  });
});

describe('gated credit', () => {
  const turnRewards = [0.5, 0.5];

  it('keeps penalties on a failed episode: a tool_error on turn 1 lowers the returns up to turn 1', () => {
    const config = { scheme: 'gated', gate: 1, gamma: 0.95 } as const;
    // Turn 1 failed a tool call: rule tool_error, weight 0.1 → r_1 = −0.1. R = 0 (failed).
    const penalised = assignCredit({ turnRewards: [0, -0.1, 0], trajectoryReward: 0 }, config);
    const clean = assignCredit({ turnRewards: [0, 0, 0], trajectoryReward: 0 }, config);
    expect(clean).toEqual([0, 0, 0]);
    close(penalised, [-0.095, -0.1, 0]);
    expect(penalised[1]).toBeLessThan(clean[1]!);
    expect(penalised[0]).toBeLessThan(clean[0]!);
    expect(penalised[2]).toBe(clean[2]);
  });

  it('gates only the positive turn rewards of a failed episode', () => {
    // c = [min(0.5, 0), min(−0.2, 0), min(0.3, 0) + R] = [0, −0.2, 0.4]
    expect(
      creditedRewards({ turnRewards: [0.5, -0.2, 0.3], trajectoryReward: 0.4 }, { scheme: 'gated', gate: 1 }),
    ).toEqual([0, -0.2, 0.4]);
  });

  it('keeps only R when R is below the gate and no turn reward is negative (hacked step rewards earn nothing)', () => {
    expect(assignCredit({ turnRewards, trajectoryReward: 0 }, { scheme: 'gated', gate: 1 })).toEqual([0, 0]);
    close(
      assignCredit({ turnRewards, trajectoryReward: 0.5 }, { scheme: 'gated', gate: 1, gamma: 0.9 }),
      [0.45, 0.5],
    );
  });

  it('counts turn rewards when R reaches the gate', () => {
    // c = [0.5, 1.5]
    expect(assignCredit({ turnRewards, trajectoryReward: 1 }, { scheme: 'gated', gate: 1 })).toEqual([
      2, 1.5,
    ]);
  });

  it('defaults the gate to 1', () => {
    expect(assignCredit({ turnRewards, trajectoryReward: 0.99 }, { scheme: 'gated' })).toEqual([0.99, 0.99]);
  });
});

describe('progress credit', () => {
  it('splits R over the turns in proportion to their positive progress', () => {
    // gains [0.5, 0, 0.25] / 0.75 → c = [2/3, 0, 1/3]
    const input = { turnRewards: [0.5, -0.25, 0.25], trajectoryReward: 1, progress: [0.5, -0.25, 0.25] };
    close(creditedRewards(input, { scheme: 'progress' }), [2 / 3, 0, 1 / 3]);
    close(assignCredit(input, { scheme: 'progress' }), [1, 1 / 3, 1 / 3]);
  });

  it('makes the credits sum to R', () => {
    const credited = creditedRewards(
      { turnRewards: [0, 0, 0, 0], trajectoryReward: 0.8, progress: [0.1, 0.3, -0.2, 0.4] },
      { scheme: 'progress' },
    );
    expect(credited.reduce((a, b) => a + b, 0)).toBeCloseTo(0.8, 12);
  });

  it('falls back to sparse when R is not positive', () => {
    expect(
      creditedRewards(
        { turnRewards: [0, 0], trajectoryReward: 0, progress: [0.5, 0.5] },
        { scheme: 'progress' },
      ),
    ).toEqual([0, 0]);
    expect(
      creditedRewards(
        { turnRewards: [0, 0], trajectoryReward: -1, progress: [0.5, 0.5] },
        { scheme: 'progress' },
      ),
    ).toEqual([0, -1]);
  });

  it('falls back to sparse when no turn made progress', () => {
    expect(
      creditedRewards(
        { turnRewards: [0, 0], trajectoryReward: 1, progress: [0, -0.5] },
        { scheme: 'progress' },
      ),
    ).toEqual([0, 1]);
    expect(creditedRewards({ turnRewards: [0, 0], trajectoryReward: 1 }, { scheme: 'progress' })).toEqual([
      0, 1,
    ]);
  });

  it('gives a single-turn episode all of R', () => {
    expect(
      assignCredit({ turnRewards: [0.3], trajectoryReward: 1, progress: [0.3] }, { scheme: 'progress' }),
    ).toEqual([1]);
  });
});

describe('every scheme', () => {
  it('returns nothing for an episode without turns', () => {
    for (const scheme of ['sparse', 'dense', 'discounted', 'gated', 'progress'] as const) {
      expect(assignCredit({ turnRewards: [], trajectoryReward: 1 }, { scheme })).toEqual([]);
    }
  });
});

describe('episodeReturns', () => {
  it('reads turn rewards, the trajectory total and the progress components of a record', () => {
    const episode: CreditEpisode = {
      turns: [
        { reward: 0.4, rewards: { progress: 0.5, tool_error: -1 } },
        { reward: 0.5, rewards: { progress: 0.5 } },
      ],
      reward: { total: 1 },
    };
    expect(episodeReturns(episode, { scheme: 'dense' })).toEqual([1.9, 1.5]);
    expect(episodeReturns(episode, { scheme: 'progress', progressComponents: ['progress'] })).toEqual([
      1, 0.5,
    ]);
  });
});

describe('creditTaskExtension', () => {
  it('accepts the documented section', () => {
    const section = creditTaskExtension.parse({ scheme: 'gated', gamma: 0.95, gate: 1.0 });
    expect(creditConfig(section)).toEqual({ scheme: 'gated', gamma: 0.95, gate: 1, progressComponents: [] });
  });

  it('fills defaults and the default progress components', () => {
    expect(creditConfig(undefined, ['progress'])).toEqual({
      scheme: 'dense',
      gamma: 1,
      gate: 1,
      progressComponents: ['progress'],
    });
  });

  it('refuses unknown keys, unknown schemes and a gamma above 1', () => {
    expect(creditTaskExtension.safeParse({ scheme: 'gated', gama: 0.9 }).success).toBe(false);
    expect(creditTaskExtension.safeParse({ scheme: 'magic' }).success).toBe(false);
    expect(creditTaskExtension.safeParse({ gamma: 2 }).success).toBe(false);
  });
});
