/**
 * HTTP plumbing shared by the model-backed agents (`agents/openai`, `agents/anthropic`):
 * one JSON POST with a per-call timeout, retried on retryable faults with exponential
 * backoff and jitter that honours `retry-after` / `retry-after-ms`, never after an abort,
 * keeping every attempt's error.
 *
 * Retryable: HTTP 408, 409, 429, 5xx (Anthropic's 529 "overloaded" included), a per-call
 * timeout, and a connection that failed or dropped (fetch's `TypeError`, ECONNRESET…).
 * Anything else (400, 401, 403, 404, 422, a body that is not JSON) fails at once.
 */
import { ERROR_CODES, PaddockError, describeError } from '../harness/index.ts';

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

/** Raised by one attempt; carries what the retry loop needs. */
class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly extra: { status?: number; errorCode?: string; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
  }
}

/**
 * POSTs `body` as JSON and returns the parsed JSON of a 2xx answer, retrying retryable
 * faults (see the module comment).
 *
 * Rejects with ABORTED when `signal` aborts (at once, also during a backoff), and with
 * MODEL_CALL_FAILED otherwise: at once for a non-retryable fault, or after the last
 * attempt. The error's `details` hold `status` (the last HTTP status, if any) and
 * `attempts` (an {@link AttemptError} per attempt); `retryable` says whether the last
 * fault was a retryable kind.
 */
export async function postJson(request: PostJsonRequest): Promise<PostJsonResponse> {
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
        throw new PaddockError(
          ERROR_CODES.MODEL_CALL_FAILED,
          `${request.label}: ${failure.message}${tried}`,
          {
            cause: failure.extra.cause ?? failure,
            retryable: failure.retryable,
            details: {
              ...(failure.extra.status === undefined ? {} : { status: failure.extra.status }),
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
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
  let response: Response;
  let text: string;
  try {
    response = await fetch(request.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...request.headers },
      body: bodyText,
      signal,
    });
    text = await response.text();
  } catch (error) {
    if (timeout.aborted) {
      throw new AttemptFailure(`no answer within ${request.timeoutMs} ms`, true, { cause: error });
    }
    if (request.signal?.aborted) throw error;
    // fetch rejects with a TypeError when the connection fails or drops (cause: ECONNRESET,
    // ECONNREFUSED, UND_ERR_SOCKET…); reading the body fails the same way.
    const errorCode = networkErrorCode(error);
    const retryable = error instanceof TypeError || errorCode !== undefined;
    const detail = errorCode ? ` (${errorCode})` : '';
    throw new AttemptFailure(`connection failed: ${describeError(error)}${detail}`, retryable, {
      cause: error,
      ...(errorCode ? { errorCode } : {}),
    });
  }
  if (response.status < 200 || response.status >= 300) {
    const retryAfterMs = parseRetryAfter(response.headers);
    throw new AttemptFailure(
      `HTTP ${response.status}: ${errorMessageOf(text) || response.statusText || 'no message'}`,
      isRetryableStatus(response.status),
      { status: response.status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AttemptFailure(`the response body is not JSON: ${describeError(error)}`, false, {
      status: response.status,
      cause: error,
    });
  }
  return { status: response.status, json, headers: response.headers };
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
}

/** USD spent by one call with the given usage; `undefined` without a price table or usage. */
export function costUsd(
  price: PriceTable | undefined,
  usage: { promptTokens: number; completionTokens: number } | undefined,
): number | undefined {
  if (!price || !usage) return undefined;
  return (usage.promptTokens * price.inputPerMTok + usage.completionTokens * price.outputPerMTok) / 1_000_000;
}

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
