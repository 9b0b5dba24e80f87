/**
 * HTTP plumbing shared by the model-backed agents (`agents/openai`, `agents/anthropic`):
 * one JSON POST with a per-call deadline, retried on retryable faults with exponential
 * backoff and jitter that honours `retry-after` / `retry-after-ms`, never after an abort,
 * keeping every attempt's error.
 *
 * Retryable: HTTP 408, 409, 429, 5xx (Anthropic's 529 "overloaded" included), a per-call
 * timeout, and a connection that failed or dropped (fetch's `TypeError`, ECONNRESET…).
 * Anything else (400, 401, 403, 404, 422, a body that is not JSON, a body over the size
 * cap) fails at once.
 *
 * How a call fails says whose fault it is: retryable faults that outlast the retries are
 * MODEL_UNREACHABLE (retryable: the infrastructure is at fault, the episode is re-run);
 * the rest are MODEL_CALL_FAILED (non-retryable).
 *
 * Memory is bounded: a response body is read as a stream and the call fails once it
 * passes `maxResponseBytes` (default {@link DEFAULT_MAX_RESPONSE_BYTES}); an error body
 * is read up to {@link ERROR_BODY_MAX_BYTES} for its message and the rest dropped.
 *
 * Deadlines are {@link startDeadline} timers (never `AbortSignal.timeout`, which Node 20
 * can lose to garbage collection when joined with `AbortSignal.any`).
 */
import { ERROR_CODES, PaddockError, assertTimerMs, describeError, startDeadline } from '../harness/index.ts';

/** The default cap on one response body, in bytes (32 MiB). */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/** How much of an error (non-2xx) body is read for its message, in bytes. */
export const ERROR_BODY_MAX_BYTES = 64 * 1024;

/** The deadline of one {@link probeEndpoint} request, in ms. */
export const PROBE_TIMEOUT_MS = 5_000;

/** How a failed call is retried. */
export interface RetryOptions {
  /** Attempts in all, the first included. @default 5 */
  maxAttempts?: number;
  /** Backoff before the second attempt, in ms; doubles each attempt. @default 500 */
  initialDelayMs?: number;
  /** Cap on one computed backoff, in ms. @default 8_000 */
  maxDelayMs?: number;
  /**
   * Longest `retry-after` honoured, in ms. A server asking for a longer wait gets the
   * computed backoff instead (so a run is never parked for an hour). @default 60_000
   */
  maxRetryAfterMs?: number;
  /** Random source in [0, 1) for the jitter; injectable for tests. @default Math.random */
  random?: () => number;
}

/** One failed attempt, as kept in `details.attempts` of the final error. */
export interface AttemptError {
  /** 1-based attempt number. */
  attempt: number;
  /** HTTP status, when the server answered. */
  status?: number;
  /** What went wrong, in one line (the server's error message when it gave one). */
  message: string;
  /** Low-level error code of a failed connection (`ECONNRESET`, `UND_ERR_SOCKET`…). */
  errorCode?: string;
  retryable: boolean;
  /** The wait before the next attempt, in ms, when there was one. */
  delayMs?: number;
  /** The wait the server asked for, in ms, when it sent `retry-after(-ms)`. */
  retryAfterMs?: number;
  /** Time the attempt took, in ms. */
  durationMs: number;
}

/** A JSON POST to a model API. */
export interface PostJsonRequest {
  url: string;
  headers: Record<string, string>;
  body: unknown;
  /** Limit of one attempt (connect + response body), in ms. */
  timeoutMs: number;
  /**
   * Cap on the response body, in bytes: a longer body fails the call (MODEL_CALL_FAILED,
   * not retried, `details.maxResponseBytes` set) without being held in memory.
   * @default DEFAULT_MAX_RESPONSE_BYTES (32 MiB)
   */
  maxResponseBytes?: number;
  /** Aborting stops waiting at once and rejects with ABORTED; nothing is retried after it. */
  signal?: AbortSignal;
  retry?: RetryOptions;
  /** For error messages, e.g. `openai:gpt-4.1-mini`. */
  label: string;
}

/** A successful (2xx) response whose body parsed as JSON. */
export interface PostJsonResponse {
  status: number;
  json: unknown;
  headers: Headers;
  /** Wall time of the successful attempt, in ms. */
  latencyMs: number;
  /** Attempts made in all (1 when the first succeeded). */
  attempts: number;
  /** The errors of the attempts that failed before the successful one. */
  failedAttempts: AttemptError[];
}

/** Whether an HTTP status is worth retrying: 408, 409, 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * The wait a response asks for, in ms: `retry-after-ms` (ms), else `retry-after` in
 * seconds or as an HTTP date. `undefined` when absent or unreadable.
 */
export function parseRetryAfter(headers: Headers, now: number = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '') {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = headers.get('retry-after');
  if (after === null || after.trim() === '') return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(after);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * The wait before attempt `attempt + 1`: the server's `retry-after` when it gave one
 * within `maxRetryAfterMs`, else `initialDelayMs · 2^(attempt-1)` capped at `maxDelayMs`,
 * less up to 25 % jitter so that many clients do not retry in lockstep.
 */
export function backoffDelayMs(
  attempt: number,
  retryAfterMs: number | undefined,
  retry: RetryOptions = {},
): number {
  const maxRetryAfterMs = retry.maxRetryAfterMs ?? 60_000;
  if (retryAfterMs !== undefined && retryAfterMs <= maxRetryAfterMs) return retryAfterMs;
  const initial = retry.initialDelayMs ?? 500;
  const computed = Math.min(retry.maxDelayMs ?? 8_000, initial * 2 ** (attempt - 1));
  const random = retry.random ?? Math.random;
  return computed * (1 - 0.25 * random());
}

/**
 * URLs whose server answered a POST with a redirect: they are fetched with redirects
 * followed from then on.
 */
const redirectingUrls = new Set<string>();

/**
 * One POST of `bodyText`. A model server answers at its URL, so redirects are first
 * refused (`redirect: 'error'`): fetch then sends the body as it is, where following
 * redirects makes it copy (tee) the body of every request in case it must send it again —
 * about 70 µs of a token-exact turn (bench/model-agent.ts). A server that does redirect
 * is asked again at once with redirects followed, and its URL is remembered.
 */
async function fetchPost(request: PostJsonRequest, bodyText: string, signal: AbortSignal): Promise<Response> {
  const init = (redirect: 'error' | 'follow'): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...request.headers },
    body: bodyText,
    signal,
    redirect,
  });
  if (redirectingUrls.has(request.url)) return fetch(request.url, init('follow'));
  try {
    return await fetch(request.url, init('error'));
  } catch (error) {
    if (signal.aborted || !refusedRedirect(error)) throw error;
    redirectingUrls.add(request.url);
    return fetch(request.url, init('follow'));
  }
}

/**
 * Whether fetch failed because the server redirected while redirects were refused:
 * undici's network error, whose cause says "unexpected redirect" (Node 20–24).
 */
function refusedRedirect(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return error instanceof TypeError && cause instanceof Error && /redirect/i.test(cause.message);
}

/** Raised by one attempt; carries what the retry loop needs. */
class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly extra: {
      status?: number;
      errorCode?: string;
      retryAfterMs?: number;
      maxResponseBytes?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
  }
}

/**
 * POSTs `body` as JSON and returns the parsed JSON of a 2xx answer, retrying retryable
 * faults (see the module comment).
 *
 * Rejects with ABORTED when `signal` aborts (at once, also during a backoff); with
 * MODEL_UNREACHABLE (retryable) when the last attempt failed on a retryable fault (no
 * connection, no answer in time, 5xx, 429…); with MODEL_CALL_FAILED (non-retryable) at
 * once for any other fault (4xx, a body that is not JSON or passes `maxResponseBytes`).
 * The error's `details` hold `url`, `status` (the last HTTP status, if any),
 * `maxResponseBytes` (when the cap bit) and `attempts` (an {@link AttemptError} per
 * attempt).
 */
export async function postJson(request: PostJsonRequest): Promise<PostJsonResponse> {
  assertTimerMs(request.timeoutMs, `${request.label}: timeoutMs`);
  const maxAttempts = Math.max(1, request.retry?.maxAttempts ?? 5);
  const attempts: AttemptError[] = [];
  const bodyText = JSON.stringify(request.body);
  for (let attempt = 1; ; attempt++) {
    throwAborted(request.signal, attempts);
    const started = performance.now();
    try {
      const { status, json, headers } = await attemptOnce(request, bodyText);
      return {
        status,
        json,
        headers,
        latencyMs: performance.now() - started,
        attempts: attempt,
        failedAttempts: attempts,
      };
    } catch (error) {
      // The caller's abort wins over whatever the attempt saw.
      throwAborted(request.signal, attempts, error);
      const failure =
        error instanceof AttemptFailure
          ? error
          : new AttemptFailure(describeError(error), false, { cause: error });
      const record: AttemptError = {
        attempt,
        message: failure.message,
        retryable: failure.retryable,
        durationMs: performance.now() - started,
        ...(failure.extra.status === undefined ? {} : { status: failure.extra.status }),
        ...(failure.extra.errorCode === undefined ? {} : { errorCode: failure.extra.errorCode }),
        ...(failure.extra.retryAfterMs === undefined ? {} : { retryAfterMs: failure.extra.retryAfterMs }),
      };
      attempts.push(record);
      if (!failure.retryable || attempt >= maxAttempts) {
        const tried = attempts.length === 1 ? '' : ` (after ${attempts.length} attempts)`;
        // A retryable fault that outlasted the retries is the server's (down, hung,
        // overloaded): infrastructure, retryable. Anything else is the call's own failure.
        const unreachable = failure.retryable;
        throw new PaddockError(
          unreachable ? ERROR_CODES.MODEL_UNREACHABLE : ERROR_CODES.MODEL_CALL_FAILED,
          `${request.label}: ${unreachable ? 'the model server is unreachable: ' : ''}${failure.message}${tried}`,
          {
            cause: failure.extra.cause ?? failure,
            retryable: unreachable,
            details: {
              url: request.url,
              ...(failure.extra.status === undefined ? {} : { status: failure.extra.status }),
              ...(failure.extra.maxResponseBytes === undefined
                ? {}
                : { maxResponseBytes: failure.extra.maxResponseBytes }),
              attempts,
            },
          },
        );
      }
      record.delayMs = backoffDelayMs(attempt, failure.extra.retryAfterMs, request.retry);
      await sleep(record.delayMs, request.signal);
    }
  }
}

async function attemptOnce(
  request: PostJsonRequest,
  bodyText: string,
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const maxBytes = request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const deadline = startDeadline(request.timeoutMs, request.signal);
  let response: Response;
  let body: BodyRead;
  try {
    response = await fetchPost(request, bodyText, deadline.signal);
    const ok = response.status >= 200 && response.status < 300;
    body = await readBody(response, ok ? maxBytes : ERROR_BODY_MAX_BYTES, deadline.signal);
  } catch (error) {
    if (deadline.expired) {
      throw new AttemptFailure(`no answer within ${request.timeoutMs} ms`, true, { cause: error });
    }
    if (request.signal?.aborted) throw error;
    // fetch rejects with a TypeError when the connection fails or drops (cause: ECONNRESET,
    // ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET…); reading the body fails the same way.
    const errorCode = networkErrorCode(error);
    const retryable = error instanceof TypeError || errorCode !== undefined;
    const detail = errorCode ? ` (${errorCode})` : '';
    throw new AttemptFailure(`connection failed: ${describeError(error)}${detail}`, retryable, {
      cause: error,
      ...(errorCode ? { errorCode } : {}),
    });
  } finally {
    deadline.clear();
  }
  if (response.status < 200 || response.status >= 300) {
    const retryAfterMs = parseRetryAfter(response.headers);
    throw new AttemptFailure(
      `HTTP ${response.status}: ${errorMessageOf(body.text) || response.statusText || 'no message'}`,
      isRetryableStatus(response.status),
      { status: response.status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
    );
  }
  if (body.truncated) {
    throw new AttemptFailure(
      `the response body passed the cap of ${maxBytes} bytes (max_response_bytes) and was not read further` +
        (body.declaredBytes === undefined ? '' : ` (the server announced ${body.declaredBytes} bytes)`),
      false,
      { status: response.status, maxResponseBytes: maxBytes },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body.text);
  } catch (error) {
    throw new AttemptFailure(`the response body is not JSON: ${describeError(error)}`, false, {
      status: response.status,
      cause: error,
    });
  }
  return { status: response.status, json, headers: response.headers };
}

/** A response body read up to a cap. */
interface BodyRead {
  /** The body (its first `maxBytes` when truncated), decoded as UTF-8. */
  text: string;
  /** True when the body was longer than the cap (the rest was not read). */
  truncated: boolean;
  /** The `content-length` the server announced, when it was over the cap. */
  declaredBytes?: number;
}

/**
 * Reads `response`'s body as a stream, keeping at most `maxBytes`: past that it cancels
 * the stream (the connection is dropped, nothing more is buffered). A `content-length`
 * over the cap is refused before a byte is read. Rejects as the stream does (a dropped
 * connection, the signal's abort).
 */
export async function readBody(
  response: Response,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<BodyRead> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    return { text: '', truncated: true, declaredBytes: declared };
  }
  if (!response.body) return { text: '', truncated: false };
  // A declared length within the cap bounds the body already (HTTP framing: the client reads
  // exactly that many bytes), so the native reader takes it in one go.
  if (Number.isFinite(declared)) return { text: await response.text(), truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  // fetch's signal aborts the stream too; this listener only makes the abort prompt when
  // the reader sits between chunks.
  const onAbort = (): void => void reader.cancel(signal?.reason).catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const { done, value } = await reader.read();
      // A cancelled stream ends as if done: a body cut by the abort is no body.
      if (signal?.aborted) throw signal.reason;
      if (done) break;
      if (size + value.byteLength > maxBytes) {
        chunks.push(value.subarray(0, maxBytes - size));
        size = maxBytes;
        await reader.cancel().catch(() => undefined);
        return { text: decode(chunks, size), truncated: true };
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
  return { text: decode(chunks, size), truncated: false };
}

function decode(chunks: Uint8Array[], size: number): string {
  return Buffer.concat(chunks, size).toString('utf8');
}

/** What a probe of a model server found: whether it answers at all, and how. */
export interface ProbeResult {
  /** True when the server answered with an HTTP status below 500. */
  ok: boolean;
  /** One line: the status and time, or why there was no answer. */
  detail: string;
}

/**
 * GETs `url` (a cheap endpoint such as a model list) with its own deadline of
 * `timeoutMs` joined with `signal`, and says whether the server answers at all. Any
 * status below 500 counts (a 401 or 404 still proves a live server); a 5xx, a refused
 * or dropped connection and silence do not. Never rejects. The body is not read.
 */
export async function probeEndpoint(request: {
  url: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
}): Promise<ProbeResult> {
  const timeoutMs = request.timeoutMs ?? PROBE_TIMEOUT_MS;
  const started = performance.now();
  let deadline;
  try {
    deadline = startDeadline(timeoutMs, request.signal);
  } catch (error) {
    return { ok: false, detail: `cannot probe: ${describeError(error)}` };
  }
  try {
    const response = await fetch(request.url, {
      method: 'GET',
      headers: { accept: 'application/json', ...request.headers },
      signal: deadline.signal,
    });
    await response.body?.cancel().catch(() => undefined);
    const ms = Math.round(performance.now() - started);
    return {
      ok: response.status < 500,
      detail: `GET ${request.url}: HTTP ${response.status} in ${ms} ms`,
    };
  } catch (error) {
    if (deadline.expired)
      return { ok: false, detail: `GET ${request.url}: no answer within ${timeoutMs} ms` };
    if (request.signal?.aborted) return { ok: false, detail: `GET ${request.url}: the probe was aborted` };
    const code = networkErrorCode(error);
    return {
      ok: false,
      detail: `GET ${request.url}: connection failed: ${describeError(error)}${code ? ` (${code})` : ''}`,
    };
  } finally {
    deadline.clear();
  }
}

/** The error message of an OpenAI- or Anthropic-style error body, else the body's start. */
function errorMessageOf(text: string): string {
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object') {
      const error = (body as { error?: unknown }).error;
      if (typeof error === 'string') return error;
      if (error && typeof error === 'object') {
        const message = (error as { message?: unknown }).message;
        if (typeof message === 'string') return message;
      }
      const message = (body as { message?: unknown }).message;
      if (typeof message === 'string') return message;
    }
  } catch {
    // Not JSON: an HTML error page or plain text from a proxy; its start is the best message.
  }
  return text.trim().slice(0, 300);
}

/** The `code` of a network error (on the error or its cause chain), e.g. ECONNRESET. */
function networkErrorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ABORT_ERR') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function throwAborted(signal: AbortSignal | undefined, attempts: AttemptError[], cause?: unknown): void {
  if (!signal?.aborted) return;
  throw new PaddockError(ERROR_CODES.ABORTED, 'the model call was aborted', {
    cause: cause ?? signal.reason,
    details: { attempts },
  });
}

/** Waits `ms`, or less when `signal` aborts (the caller then sees the abort). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The price of a model, in USD per million tokens. */
export interface PriceTable {
  inputPerMTok: number;
  outputPerMTok: number;
  /**
   * Price of prompt tokens served from the provider's prompt cache (OpenAI
   * `usage.prompt_tokens_details.cached_tokens`, DeepSeek `prompt_cache_hit_tokens`).
   * @default inputPerMTok (cached tokens cost what others do)
   */
  cachedInputPerMTok?: number;
}

/**
 * USD spent by one call with the given usage; `undefined` without a price table or usage.
 * `cachedPromptTokens` (part of `promptTokens`) are priced at `cachedInputPerMTok`.
 */
export function costUsd(
  price: PriceTable | undefined,
  usage: { promptTokens: number; completionTokens: number } | undefined,
  cachedPromptTokens = 0,
): number | undefined {
  if (!price || !usage) return undefined;
  const cached = Math.min(Math.max(0, cachedPromptTokens), usage.promptTokens);
  return (
    ((usage.promptTokens - cached) * price.inputPerMTok +
      cached * (price.cachedInputPerMTok ?? price.inputPerMTok) +
      usage.completionTokens * price.outputPerMTok) /
    1_000_000
  );
}

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
