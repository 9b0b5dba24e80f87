/**
 * Whether a Docker sandbox's container still runs and, when it does not, who stopped it
 * (see `Sandbox.diagnose`): the engine records a `kill` (or `stop`, `pause`) event when it
 * was told to; a container whose processes all ended from inside only `die`s.
 */
import type Docker from 'dockerode';
import { describeError } from '../../harness/errors.ts';
import type { SandboxDiagnosis } from '../../harness/sandbox.ts';
import { engineStatusCode } from './engine.ts';

/** Looks at a container seen running before saying it runs (LOOKS × LOOK_INTERVAL_MS = 2 s). */
const LOOKS = 20;
const LOOK_INTERVAL_MS = 100;

/**
 * Diagnoses `container` (see `Sandbox.diagnose`). Removed (404), paused, or a
 * `kill`/`stop`/`pause`/`restart` event since `sinceS` → `outside`; exited with the
 * OOM flag or with no such event → `inside`; events unreadable → `unknown`. Never rejects.
 * @param sinceS engine time (seconds since the epoch) the sandbox was made; events are read from here
 */
export async function diagnoseContainer(
  docker: Docker,
  container: Docker.Container,
  sinceS: number,
  options: { signal?: AbortSignal } = {},
): Promise<SandboxDiagnosis> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await container.inspect({ abortSignal: options.signal });
  } catch (error) {
    if (engineStatusCode(error) === 404)
      return { running: false, cause: 'outside', evidence: 'the container was removed through the engine' };
    return {
      running: false,
      cause: 'outside',
      evidence: `the engine does not answer: ${describeError(error)}`,
    };
  }
  let state = info.State;
  // A container whose processes were all just killed takes a moment to be seen stopped:
  // diagnose is called after a fault, so look again for up to 2 s before saying it runs.
  for (let look = 0; look < LOOKS && state.Running && !state.Paused && !options.signal?.aborted; look++) {
    await new Promise((resolve) => setTimeout(resolve, LOOK_INTERVAL_MS));
    const again = await container.inspect().catch(() => undefined);
    if (!again)
      return { running: false, cause: 'outside', evidence: 'the container was removed through the engine' };
    state = again.State;
  }
  if (state.Running && !state.Paused) return { running: true, evidence: 'the container runs' };
  if (state.Paused)
    return { running: false, cause: 'outside', evidence: 'the container was paused through the engine' };
  const exited = `the container exited with code ${state.ExitCode} at ${state.FinishedAt}`;
  if (state.OOMKilled)
    return {
      running: false,
      cause: 'inside',
      evidence: `${exited}: its memory limit was reached (OOMKilled)`,
    };
  const actions = await engineActions(docker, container.id, sinceS).catch(() => undefined);
  if (!actions)
    return {
      running: false,
      cause: 'unknown',
      evidence: `${exited}; the engine's events could not be read`,
    };
  const told = actions.filter((action) => /^(kill|stop|pause|restart)$/.test(action));
  if (told.length > 0)
    return {
      running: false,
      cause: 'outside',
      evidence: `${exited}; the engine was told to: ${told.join(', ')}`,
    };
  return {
    running: false,
    cause: 'inside',
    evidence: `${exited}; the engine recorded no kill or stop (events: ${actions.join(', ') || 'none'}): its own processes ended it`,
  };
}

/** The container-level actions (not `exec_*`) the engine recorded for `id` since `sinceS`. */
async function engineActions(docker: Docker, id: string, sinceS: number): Promise<string[]> {
  const stream = await docker.getEvents({
    since: sinceS,
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { container: [id], type: ['container'] },
  });
  let text = '';
  for await (const chunk of stream) {
    text += String(chunk);
    if (text.length > 1_000_000) break;
  }
  const actions: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const event = JSON.parse(line) as { Action?: string; status?: string };
      const action = (event.Action ?? event.status ?? '').split(':')[0];
      if (action && !action.startsWith('exec_')) actions.push(action);
    } catch {
      // A line that is not an event is skipped: the engine's stream holds nothing else.
    }
  }
  return actions;
}
