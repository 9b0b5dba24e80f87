/**
 * Per-turn advantages of a step's episodes, grouped by task. The estimators and the
 * credit assignment are rewards/credit's; this file decides what is pooled:
 *
 * - trajectory level: each episode's `reward.total`, GRPO / RLOO within the task's group,
 *   REINFORCE against the mean of the whole step's batch; every turn of an episode gets
 *   its episode's advantage;
 * - turn level: each turn's return G_t — the one the episode loop stored on the turn
 *   (`TurnRecord.return`), else rewards/credit `episodeReturns` with the task's `credit:`
 *   section — pooled within the group (GRPO / RLOO) or over the batch (REINFORCE), by
 *   turn index (`pooling: 'index'`, the default: identical episodes get 0 on every turn)
 *   or all turns together (`'all'`).
 */
import type { EpisodeRecord, Task } from '../../harness/index.ts';
import {
  creditConfig,
  episodeReturns,
  reinforceAdvantages,
  trajectoryAdvantages,
  turnAdvantages,
  type AdvantageEstimator,
  type CreditSection,
} from '../../rewards/credit/index.ts';

export interface AdvantageSettings {
  estimator: AdvantageEstimator;
  level: 'trajectory' | 'turn';
  /** GRPO: divide by the group's standard deviation. @default true */
  scaleByStd?: boolean;
  /** Turn level: turns of the same index (per position), or all turns together. @default 'index' */
  pooling?: 'all' | 'index';
}

/**
 * Advantages of every turn of every episode, by episode id. `groups` holds the episodes of
 * one task each; `tasks` gives each task's `credit:` section for turn-level returns.
 */
export function computeAdvantages(
  groups: readonly (readonly EpisodeRecord[])[],
  tasks: ReadonlyMap<string, Task>,
  settings: AdvantageSettings,
): Map<string, number[]> {
  const result = new Map<string, number[]>();
  const options = { scaleByStd: settings.scaleByStd ?? true };
  if (settings.level === 'trajectory') {
    if (settings.estimator === 'reinforce') {
      const all = groups.flat();
      const advantages = reinforceAdvantages(all.map((episode) => episode.reward.total));
      all.forEach((episode, i) =>
        result.set(
          episode.episodeId,
          episode.turns.map(() => advantages[i]!),
        ),
      );
      return result;
    }
    for (const group of groups) {
      const advantages = trajectoryAdvantages(
        group.map((episode) => episode.reward.total),
        settings.estimator,
        options,
      );
      group.forEach((episode, i) =>
        result.set(
          episode.episodeId,
          episode.turns.map(() => advantages[i]!),
        ),
      );
    }
    return result;
  }
  const returnsOf = (episode: EpisodeRecord): number[] => {
    // Returns the episode loop stored (the task's credit assignment) come first.
    if (episode.turns.length > 0 && episode.turns.every((turn) => turn.return !== undefined)) {
      return episode.turns.map((turn) => turn.return!);
    }
    const section = tasks.get(episode.taskId)?.extensions.credit as CreditSection | undefined;
    return episodeReturns(episode, creditConfig(section));
  };
  const pooling = settings.pooling ?? 'index';
  if (settings.estimator === 'reinforce') {
    // REINFORCE's baseline is the batch's: the step's episodes form one pool (by turn index by default).
    const all = groups.flat();
    const advantages = turnAdvantages(all.map(returnsOf), { estimator: 'reinforce', pooling });
    all.forEach((episode, i) => result.set(episode.episodeId, advantages[i]!));
    return result;
  }
  for (const group of groups) {
    const advantages = turnAdvantages(group.map(returnsOf), {
      estimator: settings.estimator,
      ...options,
      pooling,
    });
    group.forEach((episode, i) => result.set(episode.episodeId, advantages[i]!));
  }
  return result;
}

/**
 * The groups with a training signal: some turn of some episode has a non-zero advantage.
 * A group whose rewards (or, at turn level, returns) are all equal gets exact zeros from
 * every estimator, so its tokens carry no policy gradient — DAPO's dynamic sampling drops
 * such groups (`algorithm.filter_groups`). Returns the kept groups and how many were dropped.
 */
export function groupsWithSignal<T extends { episodeId: string }>(
  groups: readonly (readonly T[])[],
  advantages: ReadonlyMap<string, readonly number[]>,
): { kept: T[][]; dropped: number } {
  const kept = groups
    .filter((group) =>
      group.some((episode) => (advantages.get(episode.episodeId) ?? []).some((value) => value !== 0)),
    )
    .map((group) => [...group]);
  return { kept, dropped: groups.length - kept.length };
}
