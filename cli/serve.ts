/**
 * `paddock mcp serve`: one live episode of a task served over MCP, so that an external
 * agent that speaks MCP is evaluated on paddock's tasks and scored by its verifier. The
 * episode is recorded in a run of its own like any other.
 */
import { ERROR_CODES, PaddockError, RunStore, type EpisodeRecord } from '../harness/index.ts';
import { DockerSandboxProvider } from '../sandboxes/docker/index.ts';
import { serveTask } from '../sandboxes/mcp/index.ts';
import { DEFAULT_RUNS_DIR, newRunId } from './evaluate.ts';
import { RunPlugins, loadSuite } from './plugins.ts';

export interface ServeOptions {
  /** The task folder (exactly one task). */
  taskPath: string;
  /** @default 'stdio' */
  transport?: 'stdio' | 'http';
  /** HTTP port; 0 picks a free one. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 'runs' */
  runsDir?: string;
  runId?: string;
  imageMap?: Record<string, string>;
  signal?: AbortSignal;
  /** Called once the server listens (with its URL for HTTP). */
  onListening?: (info: { runId: string; url?: string }) => void;
}

/** Serves one episode and resolves with its record once the client submitted or left. */
export async function serve(options: ServeOptions): Promise<EpisodeRecord> {
  const tasks = await loadSuite([options.taskPath]);
  if (tasks.length !== 1) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${options.taskPath} holds ${tasks.length} tasks; paddock mcp serve takes exactly one`,
    );
  }
  const task = tasks[0]!;
  const runId = options.runId ?? newRunId();
  const episodeId = `${task.id}#mcp`;
  const store = RunStore.create(options.runsDir ?? DEFAULT_RUNS_DIR, {
    runId,
    createdAt: new Date().toISOString(),
    config: { mode: 'mcp-serve', taskPaths: [options.taskPath], transport: options.transport ?? 'stdio' },
    plan: [{ episodeId, taskId: task.id, epoch: 0, seed: 0 }],
  });
  const plugins = new RunPlugins();
  try {
    const served = await serveTask(task, {
      transport: options.transport ?? 'stdio',
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      sandboxProvider: new DockerSandboxProvider({ imageMap: options.imageMap ?? {} }),
      toolProviders: plugins.toolProviders,
      rewards: await plugins.rewardsFor(task),
      runStore: store,
      runId,
      episodeId,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    options.onListening?.({ runId, ...(served.url ? { url: served.url } : {}) });
    await served.episode;
    return await served.close();
  } finally {
    await plugins.close();
    await store.close();
  }
}
