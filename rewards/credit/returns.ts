/**
 * Credit assignment: per-turn rewards r_t (t = 0..T-1) and the trajectory reward R of one
 * episode become per-turn returns G_t, the numbers a policy-gradient trainer weights each
 * turn's tokens by. Pure functions, no I/O.
 *
 * Every scheme first decides each turn's credited reward c_t, then takes the discounted
 * return-to-go G_t = Σ_{k ≥ t} γ^(k−t) · c_k:
 *
 * | scheme       | c_t                                                                      |
 * | ------------ | ------------------------------------------------------------------------ |
 * | `sparse`     | 0, and R at the last turn (so G_t = γ^(T−1−t) · R)                        |
 * | `dense`      | r_t, plus R at the last turn                                             |
 * | `discounted` | the same as `dense`: the name configs use when they mean γ < 1            |
 * | `gated`      | `dense` when R ≥ gate, else min(r_t, 0), plus R at the last turn          |
 * | `progress`   | R · Δ⁺_t / Σ Δ⁺ when R > 0 and some turn made progress, else `sparse`     |
 *
 * `gated` is the remedy for hacked step rewards: a policy that farms turn rewards without
 * solving the task gets none of them. Only positive turn rewards are gated: a failed
 * episode still pays its penalties (a turn whose reward is negative — a `tool_error` or
 * `invalid_call` rule, a progress regression — keeps it), so that failing does not make
 * mistakes free. r_t is the turn's weighted sum of components (the record keeps no
 * weights), so a turn whose positive shaping outweighs its penalty nets to a positive
 * reward and is gated as a whole.
 *
 * In `progress`, Δ_t is the progress component of turn t (a potential difference
 * Φ(s_{t+1}) − Φ(s_t)); only positive progress earns credit, so that a regression followed
 * by a recovery cannot blow the scaling up, and the credits sum to R.
 */
import { z } from 'zod';

/** The names of the credit-assignment schemes (see the module comment). */
export const CREDIT_SCHEMES = ['sparse', 'dense', 'discounted', 'gated', 'progress'] as const;

export type CreditScheme = (typeof CREDIT_SCHEMES)[number];

/** How one episode's rewards become per-turn returns. */
export interface CreditConfig {
  /** @default 'dense' */
  scheme: CreditScheme;
  /** Discount per turn, in [0, 1]. @default 1 */
  gamma: number;
  /** `gated` only: positive turn rewards count when R ≥ gate (negative ones always). @default 1 */
  gate: number;
  /**
   * `progress` only: the names of the turn reward components that are progress
   * differences. `buildRewardFunctions` fills in the task's progress rewards. @default []
   */
  progressComponents: string[];
}

/** The configuration used when a task says nothing: `dense`, γ = 1, gate 1. */
export const DEFAULT_CREDIT: Readonly<CreditConfig> = Object.freeze({
  scheme: 'dense',
  gamma: 1,
  gate: 1,
  progressComponents: [],
});

/** One episode's rewards, as credit assignment sees them. */
export interface CreditInput {
  /** r_t: the weighted turn reward of each turn (`TurnRecord.reward`), in turn order. */
  turnRewards: readonly number[];
  /** R: the trajectory reward (`EpisodeRecord.reward.total`). */
  trajectoryReward: number;
  /** Δ_t: each turn's progress (for `progress`); missing entries count as 0. */
  progress?: readonly number[];
}

/**
 * The discounted return-to-go of `rewards`: G_t = Σ_{k ≥ t} γ^(k−t) · rewards[k].
 * Throws RangeError when γ is outside [0, 1].
 */
export function discountedReturns(rewards: readonly number[], gamma = 1): number[] {
  checkGamma(gamma);
  const returns = new Array<number>(rewards.length);
  let running = 0;
  for (let t = rewards.length - 1; t >= 0; t--) {
    running = (rewards[t] ?? 0) + gamma * running;
    returns[t] = running;
  }
  return returns;
}

/**
 * c_t: what each turn is credited with before discounting (see the module comment).
 * An episode without turns gets `[]`.
 */
export function creditedRewards(input: CreditInput, config: Partial<CreditConfig> = {}): number[] {
  const { scheme, gate } = { ...DEFAULT_CREDIT, ...config };
  const T = input.turnRewards.length;
  if (T === 0) return [];
  const R = input.trajectoryReward;
  const sparse = (): number[] => {
    const credited = new Array<number>(T).fill(0);
    credited[T - 1] = R;
    return credited;
  };
  const dense = (): number[] => {
    const credited = input.turnRewards.map((reward) => reward);
    credited[T - 1] = (credited[T - 1] ?? 0) + R;
    return credited;
  };
  switch (scheme) {
    case 'sparse':
      return sparse();
    case 'dense':
    case 'discounted':
      return dense();
    case 'gated': {
      if (R >= gate) return dense();
      // Failed: penalties pass, positive shaping is gated.
      const credited = input.turnRewards.map((reward) => Math.min(reward, 0));
      credited[T - 1] = (credited[T - 1] ?? 0) + R;
      return credited;
    }
    case 'progress': {
      const gains = Array.from({ length: T }, (_, t) => Math.max(0, input.progress?.[t] ?? 0));
      const sum = gains.reduce((total, gain) => total + gain, 0);
      if (!(R > 0) || !(sum > 0)) return sparse();
      return gains.map((gain) => (R * gain) / sum);
    }
  }
}

/**
 * G_t: per-turn returns of one episode under `config` (the credited rewards of the scheme,
 * discounted to go). An episode without turns gets `[]`. Throws RangeError for γ ∉ [0, 1].
 */
export function assignCredit(input: CreditInput, config: Partial<CreditConfig> = {}): number[] {
  return discountedReturns(creditedRewards(input, config), config.gamma ?? DEFAULT_CREDIT.gamma);
}

/** The parts of an episode record credit assignment reads. */
export interface CreditEpisode {
  turns: readonly { reward: number; rewards: Readonly<Record<string, number>> }[];
  reward: { total: number };
}

/**
 * G_t of a recorded episode: r_t = `turn.reward`, R = `reward.total`, and Δ_t the sum of
 * the turn's `config.progressComponents`.
 */
export function episodeReturns(episode: CreditEpisode, config: Partial<CreditConfig> = {}): number[] {
  const names = config.progressComponents ?? [];
  return assignCredit(
    {
      turnRewards: episode.turns.map((turn) => turn.reward),
      trajectoryReward: episode.reward.total,
      progress: episode.turns.map((turn) => names.reduce((sum, name) => sum + (turn.rewards[name] ?? 0), 0)),
    },
    config,
  );
}

function checkGamma(gamma: number): void {
  if (!(gamma >= 0 && gamma <= 1)) throw new RangeError(`gamma must lie in [0, 1], got ${gamma}`);
}

/**
 * The `credit:` section of task.yaml, registered with the task loader under the key
 * `credit`. Strict: an unknown key is an error.
 *
 * ```yaml
 * credit: { scheme: gated, gamma: 0.95, gate: 1.0 }
 * ```
 */
export const creditTaskExtension = z
  .strictObject({
    scheme: z
      .enum(CREDIT_SCHEMES)
      .optional()
      .meta({ description: 'How turn and trajectory rewards become per-turn returns. Default dense.' }),
    gamma: z
      .number({ error: 'expected a number in [0, 1]' })
      .min(0, { error: 'expected a number in [0, 1]' })
      .max(1, { error: 'expected a number in [0, 1]' })
      .optional()
      .meta({ description: 'Discount per turn. Default 1.' }),
    gate: z
      .number({ error: 'expected a number' })
      .refine(Number.isFinite, { error: 'expected a finite number' })
      .optional()
      .meta({
        description:
          'gated: positive turn rewards count only when the trajectory reward is at least this (negative ones always). Default 1.',
      }),
    progress_components: z
      .array(z.string().min(1), { error: 'expected a list of turn reward names' })
      .optional()
      .meta({
        description:
          "progress: turn reward components holding progress differences. Default: the task's progress rewards (progress commands, models in progress mode, page rewards in delta mode).",
      }),
  })
  .meta({ description: 'Credit assignment for training: how rewards become per-turn returns.' });

/** The `credit:` section as written in task.yaml. */
export type CreditSection = z.infer<typeof creditTaskExtension>;

/**
 * A `CreditConfig` from a parsed `credit:` section (defaults filled in).
 * `defaultProgressComponents` is used when the section names none.
 */
export function creditConfig(
  section: CreditSection | undefined,
  defaultProgressComponents: readonly string[] = [],
): CreditConfig {
  return {
    scheme: section?.scheme ?? DEFAULT_CREDIT.scheme,
    gamma: section?.gamma ?? DEFAULT_CREDIT.gamma,
    gate: section?.gate ?? DEFAULT_CREDIT.gate,
    progressComponents: [...(section?.progress_components ?? defaultProgressComponents)],
  };
}
