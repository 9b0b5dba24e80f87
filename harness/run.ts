/**
 * Runs: many episodes of many tasks, `concurrency` at a time, each finished episode
 * recorded in the run store before the next slot opens. Infrastructure failures are
 * retried up to `maxAttempts`; every attempt's error is kept on the final record.
 *
 * Nothing false is recorded: an episode that returns after the run was aborted is
 * dropped (an abort may have cut its verification short), so it has no record and
 * `resume` runs it again. When the store cannot record an episode (a full disk), the run
 * stops: the running episodes are aborted and not recorded, and the store's error is
 * thrown.
 */
import { setMaxListeners } from 'node:events';
import { createHash } from 'node:crypto';
import type { Agent } from './agent.ts';
import type { ToolProvider } from './environment.ts';
import type { EpisodeEventListener, EpisodeRecord } from './episode.ts';
import { runEpisode } from './episode-loop.ts';
import { ERROR_CODES, PaddockError } from './errors.ts';
import type { EpisodeRewards } from './reward.ts';
import type { SandboxProvider } from './sandbox.ts';
import type { PlannedEpisode, RunStore } from './store.ts';
import type { Task } from './task.ts';

/** A deterministic 31-bit seed for one episode, from the run's base seed, the task and the epoch. */
export function episodeSeed(baseSeed: number, taskId: string, epoch: number): number {
  return createHash('sha256').update(`${baseSeed}:${taskId}:${epoch}`).digest().readUInt32BE(0) >>> 1;
}

/** Plans `epochs` episodes of every task, with ids `<taskId>#<epoch>`. */
export function planEpisodes(
  tasks: readonly Task[],
  options: { epochs?: number; seed?: number } = {},
): PlannedEpisode[] {
  const epochs = options.epochs ?? 1;
  const plan: PlannedEpisode[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (const task of tasks) {
      plan.push({
        episodeId: `${task.id}#${epoch}`,
        taskId: task.id,
        epoch,
        seed: episodeSeed(options.seed ?? 0, task.id, epoch),
      });
    }
  }
  return plan;
}

export interface RunEpisodesOptions {
  runId: string;
  tasks: readonly Task[];
  /** The episodes to run. @default planEpisodes(tasks) */
  plan?: readonly PlannedEpisode[];
  agent: Agent;
  sandboxProvider?: SandboxProvider;
  toolProviders?: readonly ToolProvider[];
  /** The reward functions of each task (called once per task, the result reused for its episodes). */
  rewardsFor?: (task: Task) => EpisodeRewards | Promise<EpisodeRewards>;
  /** Episodes running at once. @default 4 */
  concurrency?: number;
  /** Attempts per episode when infrastructure fails. @default 3 */
  maxAttempts?: number;
  /** Delay before a retry, in ms, multiplied by the attempt number. @default 1_000 */
  retryDelayMs?: number;
  /** Where finished episodes go; episodes already in it are skipped (resume). */
  store?: RunStore;
  /**
   * Also run again the planned episodes whose latest record in `store` is an error
   * (`infra-error`, or `agent-error` with a retryable error): the new attempt is appended,
   * with the earlier attempts' errors in its `previousAttempts`. @default false
   */
  retryErrors?: boolean;
  /** Aborting stops starting episodes and aborts the running ones (which are not recorded). */
  signal?: AbortSignal;
  onEvent?: EpisodeEventListener;
  /** Called with each final episode record once it is in the store (or finished, without a store). */
  onRecorded?: (episode: EpisodeRecord) => void;
  now?: () => Date;
}

/**
 * Runs the planned episodes that are not in the store yet and returns the records of
 * those it ran. Rejects with ABORTED when `signal` aborts (finished episodes stay stored).
 */
export async function runEpisodes(options: RunEpisodesOptions): Promise<EpisodeRecord[]> {
  const tasks = new Map(options.tasks.map((task) => [task.id, task]));
  const latest = new Map(options.store?.episodes().map((episode) => [episode.episodeId, episode]));
  const queue = (options.plan ?? planEpisodes(options.tasks)).filter((planned) => {
    const record = latest.get(planned.episodeId);
    return record === undefined || (options.retryErrors === true && isRetryableRecord(record));
  });
  for (const planned of queue) {
    if (!tasks.has(planned.taskId)) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `the plan names task ${planned.taskId}, which was not loaded`,
      );
    }
  }
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  // One controller for the run: the caller's abort and a store failure both stop it.
  const stop = new AbortController();
  const outer = options.signal;
  const abortFromOuter = (): void => stop.abort(outer?.reason);
  if (outer?.aborted) abortFromOuter();
  else outer?.addEventListener('abort', abortFromOuter, { once: true });
  const signal = stop.signal;
  // Every episode in flight listens on the run's signal (its deadlines, its sandbox):
  // more than Node's default of 10 listeners is the design, not a leak.
  setMaxListeners(0, signal);
  let storeFailure: Error | undefined;
  const results: EpisodeRecord[] = [];
  const onEvent: EpisodeEventListener = (event) => {
    options.store?.appendEvent(event);
    options.onEvent?.(event);
  };

  const rewardCache = new Map<string, Promise<EpisodeRewards>>();
  const rewardsOf = (task: Task): Promise<EpisodeRewards> => {
    let rewards = rewardCache.get(task.id);
    if (!rewards) rewardCache.set(task.id, (rewards = Promise.resolve(options.rewardsFor!(task))));
    return rewards;
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < queue.length && !signal.aborted) {
      const planned = queue[next++]!;
      const task = tasks.get(planned.taskId)!;
      const earlier = latest.get(planned.episodeId);
      // A re-run of an errored episode continues its attempt count and keeps its errors.
      const previousAttempts: EpisodeRecord['previousAttempts'] = earlier
        ? [
            ...earlier.previousAttempts,
            ...(earlier.error ? [{ code: earlier.error.code, message: earlier.error.message }] : []),
          ]
        : [];
      const firstAttempt = earlier ? earlier.attempt + 1 : 1;
      for (let tries = 1; ; tries++) {
        const attempt = firstAttempt + tries - 1;
        const episode = await runEpisode({
          task,
          agent: options.agent,
          runId: options.runId,
          episodeId: planned.episodeId,
          epoch: planned.epoch,
          seed: planned.seed,
          attempt,
          signal,
          onEvent,
          // The verifier's reports and the task's artifacts are kept beside the records.
          ...(options.store ? { files: options.store.episodeFiles(planned.episodeId, attempt) } : {}),
          ...(options.sandboxProvider ? { sandboxProvider: options.sandboxProvider } : {}),
          ...(options.toolProviders ? { toolProviders: options.toolProviders } : {}),
          ...(options.rewardsFor ? { rewards: await rewardsOf(task) } : {}),
          ...(options.now ? { now: options.now } : {}),
        });
        // Finished after the run was aborted: the abort may have cut its verification or
        // its turns short, so the record could be false. It stays unrecorded; resume runs it.
        if (signal.aborted) return;
        episode.previousAttempts = [...previousAttempts];
        const retry =
          episode.status === 'infra-error' && episode.error?.retryable === true && tries < maxAttempts;
        if (!retry) {
          if (options.store) {
            try {
              options.store.appendEpisode(episode, { supersede: earlier !== undefined });
            } catch (error) {
              storeFailure ??= error instanceof Error ? error : new Error(String(error));
              stop.abort(error);
              throw error;
            }
          }
          results.push(episode);
          options.onRecorded?.(episode);
          break;
        }
        previousAttempts.push({ code: episode.error!.code, message: episode.error!.message });
        await delay((options.retryDelayMs ?? 1_000) * tries, signal);
        if (signal.aborted) return; // never retry after an abort
      }
    }
  };
  try {
    const workers = Array.from({ length: Math.min(concurrency, queue.length) }, () => worker());
    const settled = await Promise.allSettled(workers);
    if (storeFailure !== undefined) throw storeFailure;
    if (signal.aborted)
      throw new PaddockError(ERROR_CODES.ABORTED, 'the run was aborted', { cause: signal.reason });
    const rejected = settled.find(
      (outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected',
    );
    if (rejected) throw rejected.reason;
    return results;
  } finally {
    outer?.removeEventListener('abort', abortFromOuter);
  }
}

/**
 * True when an episode's record is an error worth running again: `infra-error`, or
 * `agent-error` whose error is retryable (a model server that did not answer).
 */
export function isRetryableRecord(record: Pick<EpisodeRecord, 'status' | 'error'>): boolean {
  return (
    record.status === 'infra-error' || (record.status === 'agent-error' && record.error?.retryable === true)
  );
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
