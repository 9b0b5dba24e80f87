/**
 * A scripted HTTP server on 127.0.0.1 (random port) for testing model-backed agents
 * through real HTTP: it answers each POST with the next scripted response and records
 * every request. Responses can be JSON, raw text (a malformed body), a dropped
 * connection (the socket is destroyed), or a request left hanging (for timeouts and
 * aborts); each may be delayed, and `latencyMs` delays all of them (for benchmarks).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted answer. */
export type ScriptedResponse =
  | { json: unknown; status?: number; headers?: Record<string, string>; delayMs?: number }
  | { raw: string; status?: number; headers?: Record<string, string>; delayMs?: number }
  /** Destroys the connection without answering (the client sees ECONNRESET / "other side closed"). */
  | { drop: true; delayMs?: number }
  /** Never answers; the request stays open until the client gives up or the server closes. */
  | { hang: true };

/** A request the server received. */
export interface RecordedRequest {
  /** 0-based order of arrival. */
  index: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body parsed as JSON (the raw text when it is not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read recorded JSON freely
  body: any;
  /** `performance.now()` when the request had arrived in full. */
  at: number;
}

export type Responder = (request: RecordedRequest) => ScriptedResponse;

export interface ScriptedServerOptions {
  /** The answers, in order, or a function choosing one per request. */
  script: ScriptedResponse[] | Responder;
  /** Delay added to every answer, in ms (simulated model latency). @default 0 */
  latencyMs?: number;
  /** The port to listen on. @default a free one */
  port?: number;
}

export interface ScriptedServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every request received, in order of arrival. */
  readonly requests: RecordedRequest[];
  /** Resolves when at least `count` requests have arrived. */
  waitForRequests(count: number): Promise<void>;
  /** Stops the server, dropping open connections. Idempotent. */
  close(): Promise<void>;
}

/** Starts a scripted server; a request past the end of a list script gets a 500 saying so. */
export async function startScriptedServer(options: ScriptedServerOptions): Promise<ScriptedServer> {
  const requests: RecordedRequest[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const responder: Responder = Array.isArray(options.script)
    ? (request) =>
        (options.script as ScriptedResponse[])[request.index] ?? {
          status: 500,
          json: { error: { message: `script exhausted at request ${request.index}` } },
        }
    : options.script;

  const later = (ms: number, fn: () => void): void => {
    if (ms <= 0) return fn();
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, text: string): void => {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: the raw text is recorded as it came.
    }
    const request: RecordedRequest = {
      index: requests.length,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body,
      at: performance.now(),
    };
    requests.push(request);
    for (const waiter of waiters.filter((w) => requests.length >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    const answer = responder(request);
    if ('hang' in answer) return;
    later((options.latencyMs ?? 0) + (answer.delayMs ?? 0), () => {
      if ('drop' in answer) {
        req.socket.destroy();
        return;
      }
      const payload = 'json' in answer ? JSON.stringify(answer.json) : answer.raw;
      res.writeHead(answer.status ?? 200, {
        'content-type': 'json' in answer ? 'application/json' : 'text/plain',
        ...answer.headers,
      });
      res.end(payload);
    });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    waitForRequests(count) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
