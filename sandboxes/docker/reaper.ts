/**
 * The reaper: removes containers paddock left behind (a crashed run, a killed CLI).
 */
import { dockerClient, wrapEngineError, engineStatusCode } from './engine.ts';
import type { EngineOptions } from './engine.ts';
import { ERROR_CODES } from '../../harness/errors.ts';
import { LABELS } from './provider.ts';

/** Options of `reapContainers`. */
export interface ReapOptions extends EngineOptions {
  /** Only containers of this run (label `paddock.run`). @default every paddock container */
  runId?: string;
  /** Only containers created at least this many ms ago. @default 0 (all) */
  olderThanMs?: number;
  /** Injected clock, for tests. @default Date.now */
  now?: () => number;
}

/**
 * Force-removes (with their anonymous volumes) the containers labelled
 * `paddock.managed=true` — only those of `runId` when given, only those older than
 * `olderThanMs` when given — running or not. Containers that vanish meanwhile are not
 * counted. `paddock sandbox gc` calls this.
 * @returns how many containers were removed.
 * @throws PaddockError ENGINE_UNAVAILABLE; SANDBOX_FAILED when the engine refuses to list.
 */
export async function reapContainers(options: ReapOptions = {}): Promise<number> {
  const docker = dockerClient(options);
  const label = [`${LABELS.managed}=true`];
  if (options.runId !== undefined) label.push(`${LABELS.run}=${options.runId}`);
  let containers: { Id: string; Created: number }[];
  try {
    containers = await docker.listContainers({ all: true, filters: { label } });
  } catch (error) {
    throw wrapEngineError(ERROR_CODES.SANDBOX_FAILED, 'listing paddock containers failed', error);
  }
  const cutoffSeconds = ((options.now ?? Date.now)() - (options.olderThanMs ?? 0)) / 1000;
  const doomed = containers.filter((container) => container.Created <= cutoffSeconds);
  const removed = await Promise.all(
    doomed.map(async (container) => {
      try {
        await docker.getContainer(container.Id).remove({ force: true, v: true });
        return 1;
      } catch (error) {
        const status = engineStatusCode(error);
        if (status === 404 || status === 409) return 0; // gone already, or being removed by someone else
        throw wrapEngineError(
          ERROR_CODES.SANDBOX_FAILED,
          `removing container ${container.Id.slice(0, 12)} failed`,
          error,
        );
      }
    }),
  );
  return removed.reduce<number>((sum, n) => sum + n, 0);
}
