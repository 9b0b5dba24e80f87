import { describe, expect, it } from 'vitest';
import { computeAdvantages } from '../../../trainers/rl/index.ts';
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
