/**
 * Constraints: costs of an episode (tokens, money, turns, wall time, tool calls) recorded
 * as separate objectives with their limits in `RewardBreakdown.constraints` — never
 * summed into the reward. A trainer can use them for constrained optimisation
 * (e.g. a Lagrangian penalty) or just report them.
 */
import type { EpisodeRecord, RewardBreakdown } from '../harness/index.ts';
import type { ConstraintKind } from './schema.ts';

/** The parts of an episode constraints are measured on. */
export type ConstraintEpisode = Pick<EpisodeRecord, 'usage' | 'turns' | 'durationMs' | 'stats'>;

/** One constraint: a named measure of an episode with an optional limit. */
export interface ConstraintFunction {
  readonly name: string;
  /** The budget, recorded beside the value. */
  readonly limit?: number;
  /** The value of the constraint on `episode` (a pure function of the record). */
  measure(episode: ConstraintEpisode): number;
}

/** The measure of each kind, in the unit its name says. */
const MEASURES: Record<ConstraintKind, (episode: ConstraintEpisode) => number> = {
  tokens: (episode) => episode.usage.promptTokens + episode.usage.completionTokens,
  prompt_tokens: (episode) => episode.usage.promptTokens,
  completion_tokens: (episode) => episode.usage.completionTokens,
  cost_usd: (episode) => episode.turns.reduce((sum, turn) => sum + (turn.costUsd ?? 0), 0),
  turns: (episode) => episode.turns.length,
  wall_time_sec: (episode) => episode.durationMs / 1000,
  tool_calls: (episode) => episode.stats.toolCalls,
};

/** A constraint of `kind` (named `kind` unless `name` is given). */
export function constraintFunction(
  kind: ConstraintKind,
  options: { name?: string; limit?: number } = {},
): ConstraintFunction {
  return {
    name: options.name ?? kind,
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    measure: MEASURES[kind],
  };
}

/** The constraints of `episode`, as `RewardBreakdown.constraints` holds them. */
export function measureConstraints(
  episode: ConstraintEpisode,
  functions: readonly ConstraintFunction[],
): RewardBreakdown['constraints'] {
  const constraints: RewardBreakdown['constraints'] = {};
  for (const fn of functions) {
    constraints[fn.name] = {
      value: fn.measure(episode),
      ...(fn.limit === undefined ? {} : { limit: fn.limit }),
    };
  }
  return constraints;
}

/** The names of the constraints whose value exceeds their limit. */
export function constraintViolations(constraints: RewardBreakdown['constraints']): string[] {
  return Object.entries(constraints)
    .filter(([, constraint]) => constraint.limit !== undefined && constraint.value > constraint.limit)
    .map(([name]) => name);
}

/**
 * A copy of `episode` whose `reward.constraints` also holds `functions`' measures (for
 * records made before the loop recorded constraints). The total is left as it is.
 */
export function withConstraints<T extends ConstraintEpisode & { reward: RewardBreakdown }>(
  episode: T,
  functions: readonly ConstraintFunction[],
): T {
  return {
    ...episode,
    reward: {
      ...episode.reward,
      constraints: { ...episode.reward.constraints, ...measureConstraints(episode, functions) },
    },
  };
}
