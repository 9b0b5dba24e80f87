/**
 * The viewer's HTTP server (node:http): the pages (static files of `static/`) and a JSON
 * API under `/api/` that pages everything. Routes:
 *
 *   GET /api/runs?offset&limit                         runs and training outputs under the root
 *   GET /api/runs/<run>                                a run: manifest, per-task table, error codes
 *   GET /api/runs/<run>/episodes?task&status&…         a page of episodes (RunIndex.query)
 *   GET /api/runs/<run>/episodes/<episode>?attempt     one record, without image bytes or token ids
 *   GET /api/runs/<run>/episodes/<episode>/images/<key>?attempt     one image, with its content type
 *   GET /api/runs/<run>/episodes/<episode>/turns/<n>/tokens?attempt one turn's token record
 *   GET /api/runs/<run>/files/<path>                   a file the run kept (verifier output, artifacts)
 *   GET /api/runs/<run>/live                           Server-Sent Events: `update` when records are added
 *   GET /api/compare?a=<run>&b=<run>                   two runs per task
 *   GET /api/trainings/<id>                            a training output: metric rows, summary, step runs
 *
 * `<run>` is the run's id (its path under the root) as one URL-encoded segment. Only ids
 * the catalog found are served, and kept files only from the run's `files/` folder: no
 * request reaches a file outside them.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ERROR_CODES,
  PaddockError,
  isPaddockError,
  type EpisodeQuery,
  type EpisodeStatus,
} from '../harness/index.ts';
import { Catalog } from './catalog.ts';
import { STATUSES, ViewerData } from './data.ts';

/** Options of {@link serveViewer}. */
export interface ViewerOptions {
  /** A runs folder, a training output folder, or a folder holding several of either. */
  root: string;
  /** The interface to listen on. Anything but loopback exposes the runs to the network. @default '127.0.0.1' */
  host?: string;
  /** The port; 0 takes any free one. @default 7575 */
  port?: number;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
  /**
   * The run (its id: its path under `root`) whose index is opened as soon as the server
   * listens, while the person follows the printed URL. @default the newest run
   */
  warmRun?: string;
  /** How often live pages look for new records, in ms. @default 1_000 */
  livePollMs?: number;
  /**
   * Bytes of records indexed at a time for a run without a saved index: the first slice
   * when it opens, the rest in the background. @default 16 MiB
   */
  indexSliceBytes?: number;
}

/** A running viewer. */
export interface RunningViewer {
  /** Where it answers, e.g. `http://127.0.0.1:7575/`. */
  url: string;
  /** Stops listening, ends live streams and closes the run indexes. Idempotent. */
  close(): Promise<void>;
}

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
};

/** Image types served as images; anything else a record calls an image is sent as bytes to download. */
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** Names of the loopback interface, as a Host header or the `host` option gives them. */
const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** The name part of a Host header (`127.0.0.1:7575` → `127.0.0.1`, `[::1]:80` → `[::1]`). */
function hostName(header: string | undefined): string {
  if (!header) return '';
  return header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : (header.split(':')[0] ?? '');
}

/** Episodes per page at most. */
const MAX_PAGE = 500;

/** An HTTP failure with its status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Serves the viewer on `host:port` until `close()` or `signal` aborts.
 * @throws PaddockError CONFIG_INVALID when `root` is not a folder; the listen error (EADDRINUSE…) otherwise.
 */
export async function serveViewer(options: ViewerOptions): Promise<RunningViewer> {
  if (!existsSync(options.root) || !statSync(options.root).isDirectory())
    throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `viewer root ${options.root} is not a folder`);
  const data = new ViewerData(
    new Catalog(options.root),
    options.indexSliceBytes === undefined ? {} : { indexSliceBytes: options.indexSliceBytes },
  );
  const loopbackOnly = LOOPBACK_NAMES.has(options.host ?? '127.0.0.1');
  const streams = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => fail(response, error));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'GET' && request.method !== 'HEAD') throw new HttpError(405, 'only GET is served');
    // On loopback, a page of another site must not read the runs through a name it points
    // at 127.0.0.1 (DNS rebinding): only loopback names are answered.
    if (loopbackOnly && !LOOPBACK_NAMES.has(hostName(request.headers.host)))
      throw new HttpError(403, `host ${JSON.stringify(request.headers.host ?? '')} is not a loopback name`);
    const url = new URL(request.url ?? '/', 'http://viewer');
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      throw new HttpError(400, `malformed path ${url.pathname}`);
    }
    if (parts[0] !== 'api') return serveStatic(parts, response);
    const q = url.searchParams;
    const attempt = q.has('attempt') ? integer(q.get('attempt'), 'attempt') : undefined;
    const [, section, id, sub, episodeId, kind, key, leaf] = parts;
    if (section === 'runs' && id === undefined) {
      const { offset, limit } = page(q, 50);
      const runs = data.runs(offset, limit);
      const trainings = data.catalog.trainings().map((t) => ({ id: t.id, runs: t.runs.length }));
      return sendJson(response, { ...runs, trainings });
    }
    if (section === 'runs' && id !== undefined) {
      if (sub === undefined) return sendJson(response, data.runView(id));
      if (sub === 'episodes' && episodeId === undefined) {
        return sendJson(response, await data.episodes(id, episodeQuery(q)));
      }
      if (sub === 'episodes' && episodeId !== undefined) {
        if (kind === undefined) return sendJson(response, data.episode(id, episodeId, attempt));
        if (kind === 'images' && key !== undefined && parts.length === 7) {
          const image = data.image(id, episodeId, key, attempt);
          const type = IMAGE_TYPES.has(image.mimeType) ? image.mimeType : 'application/octet-stream';
          response.writeHead(200, {
            'content-type': type,
            'content-length': image.bytes.length,
            // A record never changes once written; with its attempt in the URL, neither does the image.
            'cache-control': attempt === undefined ? 'no-cache' : 'public, max-age=31536000, immutable',
            'x-content-type-options': 'nosniff',
          });
          response.end(request.method === 'HEAD' ? undefined : image.bytes);
          return;
        }
        if (kind === 'turns' && key !== undefined && leaf === 'tokens' && parts.length === 8) {
          return sendJson(response, data.tokens(id, episodeId, integer(key, 'turn'), attempt));
        }
      }
      if (sub === 'files' && parts.length > 3) return serveKeptFile(id, parts.slice(3), response);
      if (sub === 'live' && parts.length === 4) return streamLive(id, request, response);
    }
    if (section === 'compare' && parts.length === 2) {
      const a = q.get('a');
      const b = q.get('b');
      if (!a || !b) throw new HttpError(400, 'compare needs two runs: ?a=<run>&b=<run>');
      return sendJson(response, data.compare(a, b));
    }
    if (section === 'trainings' && id !== undefined && parts.length === 3) {
      return sendJson(response, data.training(id));
    }
    throw new HttpError(404, `no API route ${url.pathname}`);
  }

  function serveStatic(parts: string[], response: ServerResponse): void {
    const relative = parts.length === 0 ? 'index.html' : parts.join('/');
    const path = Catalog.inside(STATIC_DIR, relative);
    if (!path || !existsSync(path) || !statSync(path).isFile())
      throw new HttpError(404, `no page /${relative}`);
    response.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      // The pages load only their own scripts; a transcript's text can never become one.
      'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    });
    createReadStream(path).pipe(response);
  }

  function serveKeptFile(id: string, path: string[], response: ServerResponse): void {
    const run = data.run(id);
    // Only what the store keeps under files/: never run.json, the lock, or anything above.
    const file =
      path[0] === 'files' ? Catalog.inside(join(run.dir, 'files'), path.slice(1).join('/')) : undefined;
    if (!file)
      throw new HttpError(403, `only files the run kept (files/…) are served, not ${path.join('/')}`);
    if (!existsSync(file) || !statSync(file).isFile())
      throw new HttpError(404, `run ${id} kept no file ${path.join('/')}`);
    const type = CONTENT_TYPES[extname(file)];
    response.writeHead(200, {
      // Kept files are the agent's or the verifier's output: shown as text, never run as a page.
      'content-type': type === CONTENT_TYPES['.png'] ? type : 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'",
    });
    createReadStream(file).pipe(response);
  }

  function streamLive(id: string, request: IncomingMessage, response: ServerResponse): void {
    data.run(id); // a 404 for an unknown run, before the stream starts
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    streams.add(response);
    let last = '';
    const tick = (): void => {
      try {
        const index = data.index(id);
        const state = JSON.stringify({
          done: index.latest().length,
          records: index.all().length,
          live: data.live(id),
          ...(index.behind ? { indexedBytes: index.behind.indexedBytes } : {}),
        });
        if (state !== last) {
          last = state;
          response.write(`event: update\ndata: ${state}\n\n`);
        } else response.write(': keep-alive\n\n');
      } catch (error) {
        response.write(`event: error\ndata: ${JSON.stringify({ message: describe(error) })}\n\n`);
      }
    };
    tick();
    const timer = setInterval(tick, options.livePollMs ?? 1_000);
    timers.add(timer);
    const stop = (): void => {
      clearInterval(timer);
      timers.delete(timer);
      streams.delete(response);
    };
    request.on('close', stop);
    response.on('close', stop);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7575, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The run most likely opened first (the one asked for, else the newest): its index is
  // opened now, while the person follows the printed URL. A failure is left for that page.
  const warmUp = setTimeout(() => {
    try {
      const first = options.warmRun ?? data.catalog.runs()[0]?.id;
      if (first !== undefined) data.index(first);
    } catch {
      // reported by the page that asks for the run
    }
  }, 0);
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      options.signal?.removeEventListener('abort', onAbort);
      clearTimeout(warmUp);
      for (const timer of timers) clearInterval(timer);
      for (const stream of streams) stream.end();
      server.close(() => resolve());
      server.closeAllConnections();
      data.close();
    }));
  const onAbort = (): void => void close();
  if (options.signal?.aborted) await close();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  return { url: `http://${host}:${address.port}/`, close };
}

function sendJson(response: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  response.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-cache',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function fail(response: ServerResponse, error: unknown): void {
  const status =
    error instanceof HttpError
      ? error.status
      : isPaddockError(error) && error.code === ERROR_CODES.RUN_NOT_FOUND
        ? 404
        : isPaddockError(error) && error.code === ERROR_CODES.CONFIG_INVALID
          ? 400
          : 500;
  if (response.headersSent) {
    response.end();
    return;
  }
  const body = JSON.stringify({ error: describe(error), status });
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(body);
}

function integer(value: string | null, name: string): number {
  const number = Number(value);
  if (value === null || value === '' || !Number.isInteger(number) || number < 0)
    throw new HttpError(400, `${name} must be a whole number ≥ 0, not ${JSON.stringify(value)}`);
  return number;
}

function number(value: string | null, name: string): number | undefined {
  if (value === null || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed))
    throw new HttpError(400, `${name} must be a number, not ${JSON.stringify(value)}`);
  return parsed;
}

function page(q: URLSearchParams, defaultLimit: number): { offset: number; limit: number } {
  const offset = q.has('offset') ? integer(q.get('offset'), 'offset') : 0;
  const limit = q.has('limit') ? integer(q.get('limit'), 'limit') : defaultLimit;
  if (limit > MAX_PAGE) throw new HttpError(400, `limit must be at most ${MAX_PAGE}, not ${limit}`);
  return { offset, limit };
}

const SORTS = new Set<NonNullable<EpisodeQuery['sort']>>([
  'task',
  'status',
  'reward',
  'turns',
  'durationMs',
  'tokens',
  'costUsd',
  'startedAt',
  'errorCode',
]);

/** The episode query a URL's parameters ask for; a value out of range is a 400 naming it. */
export function episodeQuery(q: URLSearchParams): EpisodeQuery {
  const { offset, limit } = page(q, 50);
  const statuses = q
    .getAll('status')
    .flatMap((value) => value.split(','))
    .filter(Boolean);
  for (const status of statuses)
    if (!STATUSES.includes(status as EpisodeStatus))
      throw new HttpError(400, `status must be one of ${STATUSES.join(', ')}, not ${JSON.stringify(status)}`);
  const sort = q.get('sort') ?? undefined;
  if (sort !== undefined && !SORTS.has(sort as NonNullable<EpisodeQuery['sort']>))
    throw new HttpError(400, `sort must be one of ${[...SORTS].join(', ')}, not ${JSON.stringify(sort)}`);
  const query: EpisodeQuery = { offset, limit };
  const set = <K extends keyof EpisodeQuery>(key: K, value: EpisodeQuery[K] | undefined): void => {
    if (value !== undefined) query[key] = value;
  };
  set('task', q.get('task') || undefined);
  set('status', statuses.length > 0 ? (statuses as EpisodeStatus[]) : undefined);
  set('errorCode', q.get('errorCode') || undefined);
  set('minReward', number(q.get('minReward'), 'minReward'));
  set('maxReward', number(q.get('maxReward'), 'maxReward'));
  set('minTurns', number(q.get('minTurns'), 'minTurns'));
  set('maxTurns', number(q.get('maxTurns'), 'maxTurns'));
  set('text', q.get('text') || undefined);
  set('sort', sort as EpisodeQuery['sort']);
  if (q.get('descending') === 'true' || q.get('descending') === '1') query.descending = true;
  const attempts = q.get('attempts');
  if (attempts !== null && attempts !== 'latest' && attempts !== 'all')
    throw new HttpError(400, `attempts must be latest or all, not ${JSON.stringify(attempts)}`);
  set('attempts', attempts ?? undefined);
  return query;
}
