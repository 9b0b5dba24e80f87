import { describe, expect, it } from 'vitest';
import { computeAdvantages, groupsWithSignal } from '../../../trainers/rl/index.ts';
import { episode, turn } from './helpers.ts';

const twoTurns = (id: string, reward: number, taskId = 'a') =>
  episode(id, [turn(0, undefined), turn(1, undefined)], reward, taskId);

describe('computeAdvantages', () => {
  it('gives every turn its episode advantage at trajectory level (GRPO within a group)', () => {
    const group = [twoTurns('x', 1), twoTurns('y', 0)];
    const result = computeAdvantages([group], new Map(), { estimator: 'grpo', level: 'trajectory' });
    const x = result.get('x')!;
    expect(x[0]).toBeGreaterThan(0);
    expect(x[0]).toBe(x[1]);
    expect(result.get('y')![0]).toBeCloseTo(-x[0]!, 9);
  });

  it('gives a group with one reward no signal', () => {
    const result = computeAdvantages([[twoTurns('x', 1), twoTurns('y', 1)]], new Map(), {
      estimator: 'rloo',
      level: 'trajectory',
    });
    expect([...result.values()].flat()).toEqual([0, 0, 0, 0]);
  });

  it('uses the whole batch as REINFORCE baseline', () => {
    const result = computeAdvantages([[twoTurns('x', 1, 'a')], [twoTurns('y', 0, 'b')]], new Map(), {
      estimator: 'reinforce',
      level: 'trajectory',
    });
    expect(result.get('x')).toEqual([0.5, 0.5]);
    expect(result.get('y')).toEqual([-0.5, -0.5]);
  });

  it('uses the returns the episode loop stored at turn level', () => {
    const a = episode('a', [turn(0, undefined, { return: 2 }), turn(1, undefined, { return: 1 })], 1);
    const b = episode('b', [turn(0, undefined, { return: 0 }), turn(1, undefined, { return: 1 })], 1);
    const result = computeAdvantages([[a, b]], new Map(), {
      estimator: 'grpo',
      level: 'turn',
      scaleByStd: false,
    });
    expect(result.get('a')).toEqual([1, 0]);
    expect(result.get('b')).toEqual([-1, 0]);
  });

  it('computes returns from turn rewards when none are stored', () => {
    const a = episode('a', [turn(0, undefined, { reward: 1 }), turn(1, undefined)], 0);
    const b = episode('b', [turn(0, undefined), turn(1, undefined)], 0);
    const result = computeAdvantages([[a, b]], new Map(), {
      estimator: 'grpo',
      level: 'turn',
      scaleByStd: false,
    });
    expect(result.get('a')![0]).toBeGreaterThan(result.get('b')![0]!);
  });
});

describe('computeAdvantages at turn level (per-position pooling by default)', () => {
  // Three turns with stored returns (e.g. sparse credit, γ = 0.95, R = 1).
  const threeTurns = (id: string, returns: number[], taskId = 'a') =>
    episode(
      id,
      returns.map((value, t) => turn(t, undefined, { return: value })),
      returns[returns.length - 1]!,
      taskId,
    );
  const success = [0.9025, 0.95, 1];

  it('gives four identical successful 3-turn episodes exactly [0, 0, 0]', () => {
    const group = ['a', 'b', 'c', 'd'].map((id) => threeTurns(id, success));
    for (const estimator of ['grpo', 'rloo', 'reinforce'] as const) {
      const result = computeAdvantages([group], new Map(), { estimator, level: 'turn' });
      for (const id of ['a', 'b', 'c', 'd']) expect(result.get(id)).toEqual([0, 0, 0]);
    }
  });

  it('keeps the old pooling of all turns by name', () => {
    const group = ['a', 'b', 'c', 'd'].map((id) => threeTurns(id, success));
    const result = computeAdvantages([group], new Map(), {
      estimator: 'grpo',
      level: 'turn',
      pooling: 'all',
    });
    const a = result.get('a')!;
    expect(a[0]).toBeLessThan(-1);
    expect(a[2]).toBeGreaterThan(1);
  });

  it('gives a better turn at the same position a positive advantage', () => {
    const group = [
      threeTurns('better', [0.9025, 0.95, 1]),
      threeTurns('b', [0.8025, 0.85, 1]),
      threeTurns('c', [0.8025, 0.85, 1]),
      threeTurns('d', [0.8025, 0.85, 1]),
    ];
    const result = computeAdvantages([group], new Map(), { estimator: 'grpo', level: 'turn' });
    expect(result.get('better')![1]).toBeGreaterThan(0);
    expect(result.get('b')![1]).toBeLessThan(0);
    expect(result.get('better')![2]).toBe(0);
  });

  it('pools REINFORCE turns of the same index over the whole batch', () => {
    const result = computeAdvantages(
      [[threeTurns('x', [1, 2, 3], 'a')], [threeTurns('y', [3, 2, 1], 'b')]],
      new Map(),
      { estimator: 'reinforce', level: 'turn' },
    );
    expect(result.get('x')).toEqual([-1, 0, 1]);
    expect(result.get('y')).toEqual([1, 0, -1]);
  });
});

describe('groupsWithSignal', () => {
  it('drops the groups whose advantages are all zero and counts them', () => {
    const equal = [twoTurns('x', 1, 'a'), twoTurns('y', 1, 'a')];
    const mixed = [twoTurns('u', 1, 'b'), twoTurns('v', 0, 'b')];
    const advantages = computeAdvantages([equal, mixed], new Map(), {
      estimator: 'grpo',
      level: 'trajectory',
    });
    const { kept, dropped } = groupsWithSignal([equal, mixed], advantages);
    expect(dropped).toBe(1);
    expect(kept.map((group) => group.map((e) => e.episodeId))).toEqual([['u', 'v']]);
  });

  it('keeps a turn-level group whose totals tie but whose turns differ', () => {
    const a = episode('a', [turn(0, undefined, { return: 2 }), turn(1, undefined, { return: 1 })], 1);
    const b = episode('b', [turn(0, undefined, { return: 0 }), turn(1, undefined, { return: 1 })], 1);
    const advantages = computeAdvantages([[a, b]], new Map(), { estimator: 'grpo', level: 'turn' });
    expect(groupsWithSignal([[a, b]], advantages).dropped).toBe(0);
  });
});
