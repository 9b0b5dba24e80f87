/** What the parts of a training run share: its config, folder, signal, episode plug-ins and log. */
import { ERROR_CODES, PaddockError, type RunEpisodesOptions } from '../../harness/index.ts';
import type { TrainConfig } from './config.ts';
import type { RunFolder } from './run-folder.ts';

/** The options every `runEpisodes` call of a training run shares. */
export type EpisodePlugins = Pick<
  RunEpisodesOptions,
  'toolProviders' | 'sandboxProvider' | 'rewardsFor' | 'signal' | 'concurrency'
>;

export interface TrainingContext {
  readonly cfg: TrainConfig;
  readonly folder: RunFolder;
  /** Aborts the run (rollouts and worker requests). */
  readonly signal: AbortSignal;
  /** Tool and sandbox plug-ins, rewards, signal and concurrency of every episode the run plays. */
  readonly episodes: EpisodePlugins;
  /** Progress lines. */
  log(line: string): void;
}

/** Throws ABORTED when the run's signal has aborted. */
export function checkAborted(signal: AbortSignal): void {
  if (signal.aborted)
    throw new PaddockError(ERROR_CODES.ABORTED, 'training was aborted', { cause: signal.reason });
}

/** The mean of `values`, 0 for none. */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** The fraction of `rewards` at or above `threshold`. */
export function passRate(rewards: readonly number[], threshold: number): number {
  return mean(rewards.map((reward) => (reward >= threshold ? 1 : 0)));
}
