/**
 * Evaluations as library functions: `evaluate` starts a run, `resume` finishes one. The
 * CLI is a thin shell over these.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import {
  ERROR_CODES,
  PaddockError,
  RunStore,
  isPaddockError,
  isRetryableRecord,
  planEpisodes,
  runEpisodes,
  summariseRun,
  type Agent,
  type EpisodeEventListener,
  type EpisodeRecord,
  type RecordedEpisode,
  type RunSummary,
  type Task,
  type TornTail,
} from '../harness/index.ts';
import { NO_TURN_LIMIT, formatTaskProblem, type TaskSelection } from '../tasks/index.ts';
import { DEFAULT_SANDBOX_KIND, createPaddock, type OpenedRun, type Paddock } from './paddock.ts';

/** Where runs are stored unless told otherwise. */
export const DEFAULT_RUNS_DIR = 'runs';

export interface EvaluateOptions {
  /** Task folders or suites. */
  taskPaths: string[];
  /** Agent spec, e.g. `oracle`. */
  agent: string;
  /** The plug-ins to run with (`createPaddock`). @default the built-in ones */
  paddock?: Paddock;
  /** The sandbox kind (`--sandbox`), one a plug-in registered. Stored with the run. @default `docker` */
  sandbox?: string;
  /**
   * The plug-in modules the run was given (`--plugin`), stored with the run so that
   * `paddock resume` loads them again; the plug-ins themselves come in `paddock`.
   */
  pluginModules?: string[];
  /** @default 4 */
  concurrency?: number;
  /** Episodes per task. @default 1 */
  epochs?: number;
  /** Base seed of the run. @default 0 */
  seed?: number;
  /** Attempts per episode on infrastructure failure. @default 3 */
  maxAttempts?: number;
  /** Registry image → local image substitutions. */
  imageMap?: Record<string, string>;
  /**
   * Host environment variables that task files may put into sandboxes through `${NAME}`
   * templates (`--allow-env NAME`). Only the names are stored with the run; `resume`
   * reads the values from its own environment. @default none
   */
  allowEnv?: string[];
  /**
   * Which tasks of the paths run (`--task` globs, `--tag`, `--limit`; see `TaskSelection`).
   * Stored with the run. @default every task
   */
  select?: Pick<TaskSelection, 'names' | 'tags' | 'limit'>;
  /**
   * Run the valid tasks and skip the others (`--skip-invalid`): each problem is reported
   * through `onSkipped` and stored with the run. Also skips the tasks the agent cannot
   * play (the oracle on a task without a solution). @default false (all or nothing)
   */
  skipInvalid?: boolean;
  /**
   * Turn limit of every task, in place of the task files' (`--max-turns`); `'none'` for no
   * turn limit (the time limit still holds). @default each task's own
   */
  maxTurns?: number | 'none';
  /** Called once before episodes start with the tasks skipped (`skipInvalid`), one line each. */
  onSkipped?: (problems: string[]) => void;
  /** @default 'runs' */
  runsDir?: string;
  /** @default a timestamp plus random suffix */
  runId?: string;
  signal?: AbortSignal;
  onEvent?: EpisodeEventListener;
  /** Called with each episode once it is recorded in the run store. */
  onRecorded?: (episode: EpisodeRecord) => void;
  /**
   * Called once before episodes start: how many are planned, how many still have to run
   * (`missing`, errored episodes re-run with `retryErrors` included), and the torn record
   * cut off the store when it was opened, if any.
   */
  onStart?: (run: { runId: string; planned: number; missing: number; tornTail?: TornTail }) => void;
  /**
   * Called once per message about a task field the sandbox does not honour (a GPU
   * request, a disk limit the storage driver cannot enforce…). @default none
   */
  onWarning?: (message: string) => void;
  /**
   * Called with each line of progress of slow set-up the run waits on, such as the steps
   * of a task's image build (`building image for tasks/examples/fix-bug: step 2/3 …`).
   * Given to the sandbox kind (`SandboxKindOptions.onProgress`). @default none
   */
  onProgress?: (line: string) => void;
}

export interface EvaluationResult {
  runId: string;
  dir: string;
  /**
   * Every episode of the run, including those of earlier sessions when resumed, as the
   * store reads them back (large images are files of the run: `readRecordedImage`).
   */
  episodes: RecordedEpisode[];
  summary: RunSummary;
}

/** A new run id: UTC time plus a random suffix, e.g. `20261121-201502-a3f9`. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

interface StoredConfig {
  taskPaths: string[];
  agent: string;
  /** The sandbox kind; runs stored before it had one used `docker`. */
  sandbox?: string;
  /** Plug-in modules to load again on resume (absolute paths or package names). */
  pluginModules?: string[];
  concurrency: number;
  maxAttempts: number;
  imageMap: Record<string, string>;
  epochs: number;
  seed: number;
  /** Names only, never values. */
  allowEnv?: string[];
  select?: Pick<TaskSelection, 'names' | 'tags' | 'limit'>;
  skipInvalid?: boolean;
  maxTurns?: number | 'none';
  /** The problems of the tasks skipped when the run started (`skipInvalid`), one line each. */
  skipped?: string[];
}

/** The selection flags in words, for "no task matches …". */
function describeSelection(select: StoredConfig['select'], ids?: ReadonlySet<string>): string {
  const parts = [
    ...(select?.names ?? []).map((name) => `--task ${name}`),
    ...(select?.tags ?? []).map((tag) => `--tag ${tag}`),
    ...(ids ? [`the ${ids.size} task(s) of the run's plan`] : []),
  ];
  return parts.length > 0 ? parts.join(' ') : 'the paths given';
}

/**
 * What a run needs besides its store: the tasks, the agent, and the plug-ins with the
 * reward functions of every task built before any episode runs, so that a task whose
 * rewards cannot be built (a missing model or rubric, a judge that cannot be made, a page
 * reward for a task without a page) stops the run before it starts. On failure it closes
 * what it made.
 */
async function prepareRun(
  paddock: Paddock,
  config: StoredConfig,
  planIds?: ReadonlySet<string>,
): Promise<{ tasks: Task[]; agent: Agent; plugins: OpenedRun; skipped: string[] }> {
  paddock.sandboxKind(config.sandbox ?? DEFAULT_SANDBOX_KIND); // an unknown kind fails before anything is made
  // A resumed run loads exactly the tasks of its plan; a new one applies the selection.
  const select: TaskSelection = planIds ? { ids: planIds } : { ...config.select };
  const validation = await paddock.validateSuite(config.taskPaths, {
    allowEnv: config.allowEnv ?? [],
    select,
  });
  const skipped = validation.problems.map((problem) => formatTaskProblem(problem));
  if (skipped.length > 0 && config.skipInvalid !== true) {
    throw new PaddockError(
      ERROR_CODES.TASK_INVALID,
      `${validation.invalid.length} task(s) are invalid; nothing ran (--skip-invalid runs the others):\n` +
        skipped.map((line) => `  ${line}`).join('\n'),
      { details: { issues: validation.problems.map((problem) => ({ ...problem })) } },
    );
  }
  let tasks = validation.tasks;
  if (tasks.length === 0) {
    throw new PaddockError(
      ERROR_CODES.TASK_NOT_FOUND,
      `no task to run: no valid task matches ${describeSelection(config.select, planIds)}` +
        ` (${validation.found.length} task folder(s) found under ${config.taskPaths.join(', ')})`,
    );
  }
  if (config.maxTurns !== undefined) {
    const maxTurns = config.maxTurns === 'none' ? NO_TURN_LIMIT : config.maxTurns;
    tasks = tasks.map((task) => ({ ...task, limits: { ...task.limits, maxTurns } }));
  }
  const agent = await paddock.createAgent(config.agent);
  if (agent.checkTasks) {
    // Folders the selection left out still count as tasks a script may name.
    const loadedFolders = new Set(tasks.map((task) => task.id.split('@')[0]!));
    const known = validation.found.filter((id) => !loadedFolders.has(id));
    const problems = agent.checkTasks(tasks, known);
    const perTask = problems.filter((problem) => problem.taskId !== undefined);
    if (problems.length > perTask.length || (perTask.length > 0 && config.skipInvalid !== true)) {
      await agent.close?.();
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${config.agent} cannot run ${problems.length === 1 ? 'this suite' : 'these tasks'}; nothing ran:\n` +
          problems.map((problem) => `  ${problem.message}`).join('\n') +
          (perTask.length > 0 && problems.length === perTask.length
            ? '\n(--skip-invalid runs the others)'
            : ''),
      );
    }
    const refused = new Set(perTask.map((problem) => problem.taskId));
    tasks = tasks.filter((task) => !refused.has(task.id));
    skipped.push(...perTask.map((problem) => problem.message));
    if (tasks.length === 0) {
      await agent.close?.();
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${config.agent} can run none of the tasks selected`,
      );
    }
  }
  let plugins: OpenedRun;
  try {
    plugins = await paddock.openRun();
  } catch (error) {
    await agent.close?.();
    throw error;
  }
  try {
    for (const task of tasks) await plugins.rewardsFor(task);
  } catch (error) {
    await Promise.allSettled([plugins.close(), agent.close?.()]);
    throw error;
  }
  return { tasks, agent, plugins, skipped };
}

async function execute(
  paddock: Paddock,
  store: RunStore,
  tasks: Task[],
  agent: Agent,
  plugins: OpenedRun,
  config: StoredConfig,
  options: Pick<
    EvaluateOptions,
    'signal' | 'onEvent' | 'onRecorded' | 'onStart' | 'onWarning' | 'onProgress'
  > & {
    retryErrors?: boolean;
  },
): Promise<EvaluationResult> {
  // With skipInvalid a resumed run leaves out the planned tasks that no longer load.
  const loaded = new Set(tasks.map((task) => task.id));
  const plan = store.manifest.plan.filter((planned) => loaded.has(planned.taskId));
  const sandboxProvider = paddock.sandboxKind(config.sandbox ?? DEFAULT_SANDBOX_KIND).create({
    imageMap: config.imageMap,
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  try {
    store.openForWrite();
  } catch (error) {
    await Promise.allSettled([plugins.close(), agent.close?.()]);
    throw error;
  }
  const retried = options.retryErrors
    ? store.errored().filter(({ latest }) => isRetryableRecord(latest)).length
    : 0;
  options.onStart?.({
    runId: store.manifest.runId,
    planned: store.manifest.plan.length,
    missing: store.missing().length + retried,
    ...(store.tornTail ? { tornTail: store.tornTail } : {}),
  });
  try {
    await runEpisodes({
      runId: store.manifest.runId,
      tasks,
      plan,
      agent,
      sandboxProvider,
      toolProviders: plugins.toolProviders,
      rewardsFor: plugins.rewardsFor,
      store,
      concurrency: config.concurrency,
      maxAttempts: config.maxAttempts,
      ...(options.retryErrors ? { retryErrors: true } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.onRecorded ? { onRecorded: options.onRecorded } : {}),
    });
  } catch (error) {
    throw explainStoreFailure(error, store.manifest.runId);
  } finally {
    // Containers first: whatever ended the run (an interrupt, a full disk), none is left behind.
    await sandboxProvider.closeAll?.();
    await store.close();
    await plugins.close();
    await agent.close?.();
  }
  const episodes = store.episodes();
  return { runId: store.manifest.runId, dir: store.dir, episodes, summary: summariseRun(episodes) };
}

/** A store failure, said once for a person: what failed, that the records are intact, and what to do. */
function explainStoreFailure(error: unknown, runId: string): unknown {
  if (!isPaddockError(error, ERROR_CODES.STORE_FAILED)) return error;
  const full = error.details.errno === 'ENOSPC' || error.details.errno === 'EDQUOT';
  return new PaddockError(
    ERROR_CODES.STORE_FAILED,
    `${error.message}. The run stopped and its containers were removed; ` +
      `${full ? 'free some disk space, then ' : ''}paddock resume ${runId} runs what is missing.`,
    { cause: error, details: error.details },
  );
}

/**
 * Loads the tasks, plans the episodes, and runs them into a new run folder.
 * @throws PaddockError ABORTED when `signal` aborts (episodes not finished are not
 *   recorded; containers are removed), STORE_FAILED when the store cannot record (a full
 *   disk; the run stops, records already written are intact), and the input errors of
 *   loading tasks and agents.
 */
export async function evaluate(options: EvaluateOptions): Promise<EvaluationResult> {
  const paddock = options.paddock ?? createPaddock();
  const config: StoredConfig = {
    taskPaths: options.taskPaths.map((path) => resolve(path)),
    agent: options.agent,
    sandbox: options.sandbox ?? DEFAULT_SANDBOX_KIND,
    ...(options.pluginModules?.length ? { pluginModules: [...options.pluginModules] } : {}),
    concurrency: options.concurrency ?? 4,
    maxAttempts: options.maxAttempts ?? 3,
    imageMap: options.imageMap ?? {},
    epochs: options.epochs ?? 1,
    seed: options.seed ?? 0,
    ...(options.allowEnv?.length ? { allowEnv: [...new Set(options.allowEnv)] } : {}),
    ...(options.select ? { select: { ...options.select } } : {}),
    ...(options.skipInvalid ? { skipInvalid: true } : {}),
    ...(options.maxTurns !== undefined ? { maxTurns: options.maxTurns } : {}),
  };
  const { tasks, agent, plugins, skipped } = await prepareRun(paddock, config);
  if (skipped.length > 0) {
    config.skipped = skipped;
    options.onSkipped?.(skipped);
  }
  const plan = planEpisodes(tasks, { epochs: config.epochs, seed: config.seed });
  const runId = options.runId ?? newRunId();
  let store: RunStore;
  try {
    store = RunStore.create(options.runsDir ?? DEFAULT_RUNS_DIR, {
      runId,
      createdAt: new Date().toISOString(),
      config: { ...config },
      plan,
    });
  } catch (error) {
    await Promise.allSettled([plugins.close(), agent.close?.()]);
    throw error;
  }
  return execute(paddock, store, tasks, agent, plugins, config, options);
}

/** Options of `resume`. */
export type ResumeOptions = Pick<
  EvaluateOptions,
  | 'paddock'
  | 'runsDir'
  | 'signal'
  | 'onEvent'
  | 'onRecorded'
  | 'onStart'
  | 'concurrency'
  | 'allowEnv'
  | 'maxTurns'
  | 'skipInvalid'
  | 'onSkipped'
  | 'onWarning'
  | 'onProgress'
> & {
  /**
   * Also re-run the episodes whose latest record is `infra-error` (or `agent-error` with
   * a retryable error); the new attempt is appended and the earlier ones stay in the
   * record (`previousAttempts`). @default false
   */
  retryErrors?: boolean;
};

/**
 * Finishes a run: removes containers its crashed process left, then runs only the
 * planned episodes that have no record (a torn last record is cut off and its episode
 * run again), and with `retryErrors` the errored ones. Rejects with RUN_NOT_FOUND for an
 * unknown run; otherwise as `evaluate`.
 */
export async function resume(runId: string, options: ResumeOptions = {}): Promise<EvaluationResult> {
  const store = RunStore.open(options.runsDir ?? DEFAULT_RUNS_DIR, runId);
  const stored = store.manifest.config as unknown as StoredConfig;
  refuseForeignRun(runId, store.manifest.config);
  const allowEnv = [...new Set([...(stored.allowEnv ?? []), ...(options.allowEnv ?? [])])];
  // --max-turns and --skip-invalid given to resume hold for this session's episodes.
  const config: StoredConfig = {
    ...stored,
    ...(allowEnv.length > 0 ? { allowEnv } : {}),
    ...(options.maxTurns !== undefined ? { maxTurns: options.maxTurns } : {}),
    ...(options.skipInvalid ? { skipInvalid: true } : {}),
  };
  store.openForWrite(); // takes the lock first, so no live process owns the containers reaped below
  // A run that cannot start releases the lock taken above.
  const paddock = options.paddock ?? createPaddock();
  const { tasks, agent, plugins, skipped } = await (async () => {
    await paddock.sandboxKind(config.sandbox ?? DEFAULT_SANDBOX_KIND).reap?.(runId);
    return prepareRun(paddock, config, new Set(store.manifest.plan.map((planned) => planned.taskId)));
  })().catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  if (skipped.length > 0) options.onSkipped?.(skipped);
  return execute(
    paddock,
    store,
    tasks,
    agent,
    plugins,
    { ...config, concurrency: options.concurrency ?? config.concurrency },
    options,
  );
}

/**
 * Refuses to resume a run that `paddock run` did not make (a training run's rollouts or
 * evaluations, an `mcp serve` run): it has no agent and tasks to run again. Rejects with
 * CONFIG_INVALID saying what resumes it instead.
 */
function refuseForeignRun(runId: string, config: Record<string, unknown>): void {
  if (typeof config.agent === 'string' && Array.isArray(config.taskPaths) && config.mode === undefined)
    return;
  const instead =
    typeof config.training === 'string'
      ? `it belongs to the training run in ${config.training}: paddock train --resume ${config.training}`
      : config.mode === 'mcp-serve'
        ? 'an mcp serve run is served again with paddock mcp serve'
        : 'it has no agent and tasks to run again';
  throw new PaddockError(
    ERROR_CODES.CONFIG_INVALID,
    `run ${runId} was not made by paddock run and cannot be resumed: ${instead}`,
  );
}

/**
 * The sandbox kind and plug-in modules a stored run was made with, read before the
 * plug-ins are put together (the CLI loads the modules, then resumes). Rejects with
 * RUN_NOT_FOUND for an unknown run.
 */
export function storedRunPlugins(
  runsDir: string,
  runId: string,
): { sandbox: string; pluginModules: string[] } {
  const manifest = RunStore.open(runsDir, runId).manifest;
  refuseForeignRun(runId, manifest.config);
  const config = manifest.config as unknown as StoredConfig;
  return { sandbox: config.sandbox ?? DEFAULT_SANDBOX_KIND, pluginModules: config.pluginModules ?? [] };
}
