/**
 * Advantage estimators over a group of G episodes of one task (pure functions):
 *
 * - **GRPO**: A_i = (r_i − mean) / (std + eps) over the group; `scaleByStd: false` gives
 *   Dr. GRPO's plain mean-centring. The standard deviation is the sample one (n − 1), as
 *   verl and TRL compute it; `std: 'population'` divides by n.
 * - **RLOO**: A_i = r_i − mean_{j ≠ i} r_j (leave-one-out baseline) = G/(G−1) · (r_i − mean).
 * - **REINFORCE** with a baseline: A_i = r_i − b, b the batch mean unless given.
 *
 * A group whose values are all equal (or holds one value) carries no signal: every
 * estimator returns zeros for it, exactly.
 *
 * Turn-level variants take each episode's per-turn returns G_t (from `assignCredit`) and
 * pool them for the statistics in one of two ways (`pooling`):
 *
 * - `'index'` (default): the turns at the same index t across the group's episodes form a
 *   pool — per-position normalisation. A turn is compared with the turns its group's other
 *   episodes played at the same point, so identical episodes get 0 on every turn whatever
 *   the credit scheme's discounting does to G_t along the episode. Episodes shorter than
 *   t + 1 turns do not take part; the late turns of an unusually long episode form a pool
 *   of one and get advantage 0.
 * - `'all'`: every turn of every episode of the group forms one pool. A return-to-go
 *   shrinks or grows along an episode (γ < 1, turn penalties, R only at the end), so this
 *   pooling gives the turns of identical episodes advantages driven by their position:
 *   four identical 3-turn successes under `sparse` credit with γ = 0.95 get
 *   [−1.15, −0.04, +1.19] (GRPO). Kept by name for comparisons.
 */

/** Which advantage estimator to use. */
export type AdvantageEstimator = 'grpo' | 'rloo' | 'reinforce';

export interface AdvantageOptions {
  /** Added to the standard deviation (GRPO). @default 1e-6 */
  eps?: number;
  /** Standard deviation with n − 1 (`sample`) or n (`population`) (GRPO). @default 'sample' */
  std?: 'sample' | 'population';
  /** Divide by the standard deviation (GRPO); false = Dr. GRPO. @default true */
  scaleByStd?: boolean;
  /** REINFORCE: a fixed baseline instead of the batch mean. */
  baseline?: number;
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

function allEqual(values: readonly number[]): boolean {
  return values.every((value) => value === values[0]);
}

/**
 * GRPO advantages of one group: (r − mean) / (std + eps). All-equal groups and groups of
 * one get zeros. `[]` for an empty group.
 */
export function grpoAdvantages(rewards: readonly number[], options: AdvantageOptions = {}): number[] {
  const n = rewards.length;
  if (n === 0) return [];
  if (allEqual(rewards)) return rewards.map(() => 0);
  const m = mean(rewards);
  if (options.scaleByStd === false) return rewards.map((reward) => reward - m);
  let squares = 0;
  for (const reward of rewards) squares += (reward - m) ** 2;
  const divisor = options.std === 'population' ? n : n - 1;
  const std = Math.sqrt(squares / divisor);
  const eps = options.eps ?? 1e-6;
  return rewards.map((reward) => (reward - m) / (std + eps));
}

/**
 * RLOO advantages of one group: r_i minus the mean of the other rewards. A group of one
 * (no other episode to compare with) and all-equal groups get zeros.
 */
export function rlooAdvantages(rewards: readonly number[]): number[] {
  const n = rewards.length;
  if (n <= 1 || allEqual(rewards)) return rewards.map(() => 0);
  let sum = 0;
  for (const reward of rewards) sum += reward;
  return rewards.map((reward) => reward - (sum - reward) / (n - 1));
}

/**
 * REINFORCE advantages: r minus a baseline, the mean of `rewards` (the batch) unless
 * `options.baseline` is given. All-equal batches get zeros when the baseline is the mean.
 */
export function reinforceAdvantages(
  rewards: readonly number[],
  options: Pick<AdvantageOptions, 'baseline'> = {},
): number[] {
  if (rewards.length === 0) return [];
  if (options.baseline !== undefined) {
    const baseline = options.baseline;
    return rewards.map((reward) => reward - baseline);
  }
  if (allEqual(rewards)) return rewards.map(() => 0);
  const m = mean(rewards);
  return rewards.map((reward) => reward - m);
}

/** Trajectory-level advantages of one group (one reward per episode) by `estimator`. */
export function trajectoryAdvantages(
  rewards: readonly number[],
  estimator: AdvantageEstimator,
  options: AdvantageOptions = {},
): number[] {
  switch (estimator) {
    case 'grpo':
      return grpoAdvantages(rewards, options);
    case 'rloo':
      return rlooAdvantages(rewards);
    case 'reinforce':
      return reinforceAdvantages(rewards, options);
  }
}

export interface TurnAdvantageOptions extends AdvantageOptions {
  estimator: AdvantageEstimator;
  /** How turns are pooled for the statistics (see the module comment). @default 'index' */
  pooling?: 'index' | 'all';
}

/**
 * Turn-level advantages of one group: `returns[i][t]` is G_t of episode i; the result has
 * the same ragged shape. See the module comment for `pooling`.
 */
export function turnAdvantages(
  returns: readonly (readonly number[])[],
  options: TurnAdvantageOptions,
): number[][] {
  const result = returns.map((episode) => episode.map(() => 0));
  const pools: { episode: number; turn: number }[][] = [];
  if ((options.pooling ?? 'index') === 'all') {
    pools.push(returns.flatMap((episode, i) => episode.map((_, t) => ({ episode: i, turn: t }))));
  } else {
    const longest = Math.max(0, ...returns.map((episode) => episode.length));
    for (let t = 0; t < longest; t++) {
      pools.push(returns.flatMap((episode, i) => (t < episode.length ? [{ episode: i, turn: t }] : [])));
    }
  }
  for (const pool of pools) {
    const values = pool.map(({ episode, turn }) => returns[episode]![turn]!);
    const advantages = trajectoryAdvantages(values, options.estimator, options);
    pool.forEach(({ episode, turn }, k) => {
      result[episode]![turn] = advantages[k]!;
    });
  }
  return result;
}
