/**
 * `paddock mcp serve`: live episodes of a task served over MCP, so that an external agent
 * that speaks MCP is evaluated on paddock's tasks and scored by its verifier. Over stdio
 * one episode; over HTTP one per client session (`sessions`, `maxConcurrentSessions`).
 * The episodes are recorded in a run of their own like any other. The Docker engine is
 * checked only when the task has an environment.
 */
import { ERROR_CODES, PaddockError, RunStore, type EpisodeRecord } from '../harness/index.ts';
import { serveTask } from '../sandboxes/mcp/index.ts';
import { DEFAULT_RUNS_DIR, newRunId } from './evaluate.ts';
import { DEFAULT_SANDBOX_KIND, createPaddock, type Paddock } from './paddock.ts';

export interface ServeOptions {
  /** The task folder (exactly one task). */
  taskPath: string;
  /** The plug-ins to serve with. @default the built-in ones */
  paddock?: Paddock;
  /** The sandbox kind, when the task has an environment. @default `docker` */
  sandbox?: string;
  /** @default 'stdio' */
  transport?: 'stdio' | 'http';
  /** HTTP port; 0 picks a free one. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** HTTP: client sessions served in all, each an episode of its own. @default 1 */
  sessions?: number;
  /** HTTP: sessions running at once; more are refused with HTTP 503. @default min(sessions, 4) */
  maxConcurrentSessions?: number;
  /** @default 'runs' */
  runsDir?: string;
  runId?: string;
  imageMap?: Record<string, string>;
  signal?: AbortSignal;
  /** Called once the server listens (with its URL for HTTP). */
  onListening?: (info: { runId: string; url?: string }) => void;
  /** Called with each episode once it is recorded. */
  onEpisode?: (episode: EpisodeRecord) => void;
}

/**
 * Serves the episodes and resolves once every session's client submitted or left, with
 * the first session's record (every record goes to `onEpisode`, in the order they ended).
 * @throws PaddockError ENGINE_UNAVAILABLE when the task has an environment and the engine
 *   is down; STORE_FAILED when a record could not be written (serving stops, the other
 *   episodes end unrecorded and their containers are removed, the records written are
 *   intact); ABORTED when `signal` aborts; CONFIG_INVALID for a folder of more than one task.
 */
export async function serve(options: ServeOptions): Promise<EpisodeRecord> {
  const paddock = options.paddock ?? createPaddock();
  const tasks = await paddock.loadSuite([options.taskPath]);
  if (tasks.length !== 1) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${options.taskPath} holds ${tasks.length} tasks; paddock mcp serve takes exactly one`,
    );
  }
  const task = tasks[0]!;
  // Only a task with an environment needs the engine (and a sandbox provider).
  const kind = task.environment ? paddock.sandboxKind(options.sandbox ?? DEFAULT_SANDBOX_KIND) : undefined;
  await kind?.check?.({ ...(options.signal ? { signal: options.signal } : {}) });
  const transport = options.transport ?? 'stdio';
  const sessions = transport === 'stdio' ? 1 : (options.sessions ?? 1);
  const runId = options.runId ?? newRunId();
  const baseId = `${task.id}#mcp`;
  const episodeIds = Number.isFinite(sessions)
    ? Array.from({ length: sessions }, (_, index) => (sessions === 1 ? baseId : `${baseId}-${index + 1}`))
    : [];
  const store = RunStore.create(options.runsDir ?? DEFAULT_RUNS_DIR, {
    runId,
    createdAt: new Date().toISOString(),
    config: { mode: 'mcp-serve', taskPaths: [options.taskPath], transport, sessions },
    plan: episodeIds.map((episodeId, index) => ({ episodeId, taskId: task.id, epoch: 0, seed: index })),
  });
  let plugins;
  try {
    plugins = await paddock.openRun();
  } catch (error) {
    await store.close();
    throw error;
  }
  const sandboxProvider = kind?.create({ imageMap: options.imageMap ?? {} });
  let served: Awaited<ReturnType<typeof serveTask>> | undefined;
  try {
    served = await serveTask(task, {
      transport,
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      sessions,
      ...(options.maxConcurrentSessions === undefined
        ? {}
        : { maxConcurrentSessions: options.maxConcurrentSessions }),
      ...(sandboxProvider ? { sandboxProvider } : {}),
      toolProviders: plugins.toolProviders,
      rewards: await plugins.rewardsFor(task),
      runStore: store,
      runId,
      episodeId: baseId,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    options.onListening?.({ runId, ...(served.url ? { url: served.url } : {}) });
    const episodes = await served.episodes;
    for (const episode of episodes) options.onEpisode?.(episode);
    return await served.episode;
  } finally {
    // Ends what still runs (after a failure: a full disk, an abort) and stops serving.
    await served?.close();
    await sandboxProvider?.closeAll?.();
    await plugins.close();
    await store.close();
  }
}
