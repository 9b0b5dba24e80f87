/**
 * Pages served from inside the episode's Docker sandbox. The container keeps
 * `network: none`; the host reaches a port inside it through the engine, the way
 * `kubectl port-forward` does:
 *
 * - `openSandboxPort`: a TCP server on 127.0.0.1:<fresh port> of the host. Every
 *   connection it accepts gets one process in the sandbox (`sandbox.spawn`) that connects
 *   to 127.0.0.1:<port> inside the container with bash's `/dev/tcp` and copies bytes both
 *   ways; the socket is piped into its stdin and its stdout into the socket.
 * - `startSandboxApp`: the relay, plus the task's server command started in the sandbox
 *   (when it gives one), polled through the relay until it answers. The result is a
 *   `RunningSite` like the static site's and the host app's.
 */
import { request } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  settlesWithin,
  throwIfAborted,
  type Sandbox,
  type SandboxProcess,
} from '../../harness/index.ts';
import type { PageSource } from './schema.ts';
import type { RunningSite } from './site-server.ts';

/** A sandbox that can start processes with piped stdio (the Docker sandbox can). */
export type SpawningSandbox = Sandbox & { spawn: NonNullable<Sandbox['spawn']> };

/**
 * Bytes of the server's answer waiting for the browser to read them, past which a
 * connection is dropped. The engine's output stream does not pass backpressure on, so the
 * relay bounds what a browser that stops reading can make it hold.
 */
export const RELAY_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

/**
 * Relay processes kept started ahead, waiting for a connection: starting one through the
 * engine takes tens of milliseconds, which a connection taking a spare does not wait for.
 */
export const RELAY_SPARES = 2;

/** How long a relay process may take to end after its socket closed before it is killed. */
const RELAY_END_GRACE_MS = 1_500;

/**
 * The bash program of one relayed connection. It is started ahead of its connection and
 * waits for one byte `g` on stdin (it exits when stdin ends first: a spare not needed);
 * then it connects fd 3 to the port (exit 1 when nothing listens), copies stdin → socket and socket → stdout in two `cat`s, and ends as
 * soon as either side ends (the browser closed: stdin ends; the server closed: the reader
 * ends), killing the other `cat`. stdin is duplicated to fd 4 first because a background
 * job of a non-interactive shell reads /dev/null otherwise.
 */
export function relayScript(port: number): string {
  return [
    'IFS= read -r -n 1 go || exit 0',
    '[ "$go" = g ] || exit 0',
    `exec 3<>/dev/tcp/127.0.0.1/${port} || exit 1`,
    'exec 4<&0',
    'cat <&4 >&3 & w=$!',
    'cat <&3 & r=$!',
    'wait -n',
    'kill $w $r 2>/dev/null',
    'wait',
  ].join('; ');
}

/** The relay of a sandbox port: where it listens on the host, and how to stop it. */
export interface SandboxPortRelay {
  /** `http://127.0.0.1:<host port>`. */
  readonly origin: string;
  /** The host port. */
  readonly hostPort: number;
  /** Relay processes running in the sandbox now (one per open connection). */
  activeProcesses(): number;
  /** The end of the stderr of the latest relay process that wrote any (e.g. `Connection refused`). */
  lastError(): string;
  /** Stops listening, closes every connection and ends every relay process. Idempotent; never rejects. */
  close(): Promise<void>;
}

/**
 * Ends a relay process: closes its standard input (which ends a relay, also one still
 * waiting for its go-ahead) and kills it if it has not exited `RELAY_END_GRACE_MS` later.
 */
async function endRelay(child: SandboxProcess): Promise<void> {
  try {
    child.stdin.end();
  } catch {
    // Already destroyed: the input is closed either way.
  }
  if (!(await settlesWithin(child.exited, RELAY_END_GRACE_MS))) await child.kill().catch(() => undefined);
}

/**
 * Fails with a clear error when the sandbox has no bash (the relay needs its `/dev/tcp`).
 *
 * @throws PaddockError CONFIG_INVALID naming what is missing.
 */
async function requireBash(sandbox: Sandbox, port: number, signal?: AbortSignal): Promise<void> {
  const probe = await sandbox.exec('command -v bash >/dev/null 2>&1', {
    timeoutMs: 10_000,
    ...(signal ? { signal } : {}),
  });
  if (probe.exitCode !== 0) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `browser.sandbox: the sandbox image has no bash; reaching port ${port} inside it needs bash (its /dev/tcp) on the PATH — install bash in the image`,
      { details: { port } },
    );
  }
}

/**
 * Listens on 127.0.0.1:<fresh port> of the host and relays every connection to
 * 127.0.0.1:`port` inside `sandbox`, through one process per connection started with
 * `sandbox.spawn` (`spares` of them, default `RELAY_SPARES`, are kept started ahead). A
 * connection whose relay cannot connect (nothing listens yet) is closed at once, so a
 * client sees a reset, as it would from a closed port.
 *
 * @throws PaddockError CONFIG_INVALID when the sandbox has no bash; SANDBOX_START_FAILED
 *   (retryable) when the host port cannot be opened.
 */
export async function openSandboxPort(
  sandbox: SpawningSandbox,
  port: number,
  options: { signal?: AbortSignal; spares?: number } = {},
): Promise<SandboxPortRelay> {
  throwIfAborted(options.signal);
  await requireBash(sandbox, port, options.signal);
  const command = `exec bash -c '${relayScript(port)}'`;
  const sockets = new Set<Socket>();
  const processes = new Set<SandboxProcess>();
  const pending = new Set<Promise<unknown>>();
  /** Relay processes started ahead (undefined: the start failed). */
  const spares: Promise<SandboxProcess | undefined>[] = [];
  /** Processes that have ended. */
  const ended = new WeakSet<SandboxProcess>();
  let lastError = '';
  let closed = false;

  const start = async (): Promise<SandboxProcess> => {
    const child = await sandbox.spawn(command);
    void child.exited.then(() => ended.add(child));
    return child;
  };
  const addSpare = (): void => {
    spares.push(
      start().catch((error: unknown) => {
        lastError = describeError(error);
        return undefined;
      }),
    );
  };
  for (let i = 0; i < (options.spares ?? RELAY_SPARES); i++) addSpare();
  /** A spare (and another started in its place), or a new process when none is fit. */
  const take = async (): Promise<SandboxProcess> => {
    const spare = spares.shift();
    if (spare === undefined) return start();
    if (!closed) addSpare();
    const child = await spare;
    return child !== undefined && !ended.has(child) ? child : start();
  };

  const relay = (socket: Socket): void => {
    sockets.add(socket);
    // A reset by the browser is an ordinary end of the connection.
    socket.on('error', () => socket.destroy());
    socket.once('close', () => sockets.delete(socket));
    const started = take().then(
      (child) => {
        if (closed || socket.destroyed) {
          // The browser gave up (or the relay closed) while the process started.
          void endRelay(child);
          return;
        }
        attach(socket, child);
      },
      (error: unknown) => {
        lastError = describeError(error);
        socket.destroy();
      },
    );
    pending.add(started);
    void started.finally(() => pending.delete(started));
  };

  const attach = (socket: Socket, child: SandboxProcess): void => {
    processes.add(child);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-1_000);
    });
    child.stdin.on('error', () => undefined);
    // The go-ahead: the relay connects to the port now.
    child.stdin.write('g');
    // Browser → server: pipe() passes backpressure on and ends stdin when the browser ends.
    socket.pipe(child.stdin);
    // Server → browser: written by hand, since the engine's stream ignores backpressure;
    // a browser that stops reading while too much waits loses the connection.
    child.stdout.on('data', (chunk: Buffer) => {
      if (socket.destroyed) return;
      socket.write(chunk);
      if (socket.writableLength > RELAY_MAX_BUFFERED_BYTES) socket.destroy();
    });
    child.stdout.once('end', () => {
      if (!socket.destroyed) socket.end();
    });
    socket.once('close', () => {
      // The browser is gone: ending stdin ends the relay; one stuck writing is killed.
      void endRelay(child);
    });
    void child.exited.then(() => {
      processes.delete(child);
      if (stderr.trim() !== '') lastError = stderr.trim();
      // Anything the server sent is flushed before the socket ends.
      if (!socket.destroyed) socket.end();
    });
  };

  const server: Server = createServer({ pauseOnConnect: true }, (socket) => {
    if (closed) socket.destroy();
    else relay(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    throw new PaddockError(
      ERROR_CODES.SANDBOX_START_FAILED,
      `could not open a host port for port ${port} of the sandbox: ${describeError(error)}`,
      { cause: error, retryable: true },
    );
  }
  const hostPort = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      // Processes still starting are ended by their own callbacks once they exist.
      await Promise.allSettled([...pending]);
      const idle = (await Promise.all(spares.splice(0))).filter((child) => child !== undefined);
      await Promise.allSettled([...processes, ...idle].map(endRelay));
      await stopped;
    })().catch(() => undefined);
    return closing;
  };

  return {
    origin: `http://127.0.0.1:${hostPort}`,
    hostPort,
    activeProcesses: () => processes.size,
    lastError: () => lastError,
    close,
  };
}

/** The status of one GET, on a connection of its own that is closed after it. */
function probe(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent: false, headers: { connection: 'close' }, timeout: timeoutMs },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

/**
 * Serves an episode's pages from its sandbox: opens the relay to `source.port`, starts
 * `source.command` in the sandbox when given (its output's tail kept for errors), and
 * polls `source.readyPath` through the relay until it answers with a status below 500.
 * `close()` stops the relay and kills the command.
 *
 * @throws PaddockError SANDBOX_START_FAILED (retryable) when the command fails (exits with
 *   a status other than 0: one that exits 0 may have started a daemon) or
 *   nothing answers within the ready timeout (the message names the command and the port
 *   and carries the output's tail); CONFIG_INVALID when the sandbox has no bash; ABORTED.
 */
export async function startSandboxApp(
  sandbox: SpawningSandbox,
  source: Extract<PageSource, { kind: 'sandbox' }>,
  options: { signal?: AbortSignal } = {},
): Promise<RunningSite> {
  const { signal } = options;
  const relay = await openSandboxPort(sandbox, source.port, signal ? { signal } : {});
  let app: SandboxProcess | undefined;
  let appExit: number | undefined;
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };

  let stopping: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (stopping ??= (async () => {
      await relay.close();
      await app?.kill().catch(() => undefined);
    })());

  const what =
    source.command === undefined
      ? `the server on port ${source.port} of the sandbox`
      : `the sandbox's app (${source.command}, port ${source.port})`;
  const fail = async (why: string, cause?: unknown): Promise<never> => {
    const tail = output.trim();
    const relayError = relay.lastError();
    await close();
    throw new PaddockError(
      ERROR_CODES.SANDBOX_START_FAILED,
      `${what} ${why}` +
        (relayError === '' ? '' : `; the last connection attempt said: ${relayError}`) +
        (tail === '' ? '' : `; its output ends with:\n${tail}`),
      {
        cause,
        retryable: true,
        details: { port: source.port, ...(source.command ? { command: source.command } : {}) },
      },
    );
  };

  try {
    if (source.command !== undefined) {
      app = await sandbox.spawn(source.command);
      app.stdout.on('data', keep);
      app.stderr.on('data', keep);
      app.stdin.end();
      void app.exited.then((code) => {
        appExit = code;
      });
    }
  } catch (error) {
    return fail(`could not start: ${describeError(error)}`, error);
  }

  const url = relay.origin + source.readyPath;
  const deadline = Date.now() + source.readyTimeoutMs;
  for (;;) {
    if (signal?.aborted) {
      await close();
      throwIfAborted(signal);
    }
    // A command that exits 0 may have started a daemon (`service nginx start`): keep polling.
    if (appExit !== undefined && appExit !== 0) return fail(`exited with ${appExit} before answering`);
    try {
      const status = await probe(url, Math.max(100, Math.min(2_000, deadline - Date.now())));
      if (status > 0 && status < 500) return { origin: relay.origin, close };
    } catch {
      // Nothing listens yet: poll again.
    }
    if (Date.now() > deadline) {
      return fail(`did not answer ${source.readyPath} within ${source.readyTimeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
