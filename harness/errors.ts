/**
 * paddock's one error type. Every fault paddock raises is a `PaddockError` with a
 * documented string `code`; wrapping always keeps the original as `cause`.
 *
 * An agent's mistake (an unknown tool, bad arguments, a failing command) is never an
 * exception: it becomes an observation the agent sees. Exceptions are for faults of
 * the infrastructure or of the user's input.
 */
export const ERROR_CODES = {
  /** A task file is invalid: `details.file` and `details.issues` say where and what. */
  TASK_INVALID: 'TASK_INVALID',
  /** A path given as a task or a suite holds nothing paddock can load. */
  TASK_NOT_FOUND: 'TASK_NOT_FOUND',
  /** A configuration value (CLI flag, run config, agent spec) is invalid. */
  CONFIG_INVALID: 'CONFIG_INVALID',
  /** The container engine could not be reached. */
  ENGINE_UNAVAILABLE: 'ENGINE_UNAVAILABLE',
  /** An image named by a task is not present and cannot be pulled or built. */
  IMAGE_NOT_FOUND: 'IMAGE_NOT_FOUND',
  /** Building a task's image failed. */
  IMAGE_BUILD_FAILED: 'IMAGE_BUILD_FAILED',
  /** A sandbox could not be created or started. */
  SANDBOX_START_FAILED: 'SANDBOX_START_FAILED',
  /**
   * A running sandbox broke (its control channel died, the container vanished, the engine
   * refused): an infrastructure fault, `retryable` when another attempt may succeed. Never
   * a missing path (that is FILE_NOT_FOUND). One exception, kept for the `Sandbox`
   * contract's `ReadFileOptions.maxBytes`: a file larger than a read's cap is refused with
   * this code and `details.tooLarge: true` (not retryable; the caller's input).
   */
  SANDBOX_FAILED: 'SANDBOX_FAILED',
  /** The agent's own processes ended its sandbox (an outcome of the agent, scored 0; not retried). */
  SANDBOX_KILLED: 'SANDBOX_KILLED',
  /**
   * A path a sandbox call named does not exist, or is not what the call needs: no regular
   * file to read (nothing there, a folder, a FIFO or a device, a symlink loop), no folder to
   * extract into, no host file to upload. The input of the caller or of the agent, never a
   * fault of the sandbox: never `retryable`, and the built-in file tools show it to the
   * agent as an observation. `details.path` names the path; `details.type`, when present,
   * says what is there instead (`directory`, `fifo`…); a file larger than a read's
   * `maxBytes` is not this code (SANDBOX_FAILED with `details.tooLarge`).
   */
  FILE_NOT_FOUND: 'FILE_NOT_FOUND',
  /** A call on a sandbox that was already closed. */
  SANDBOX_CLOSED: 'SANDBOX_CLOSED',
  /** The agent's backend failed (HTTP error, bad response) after its retries. */
  MODEL_CALL_FAILED: 'MODEL_CALL_FAILED',
  /**
   * The agent's backend could not be reached or gave no usable answer after its retries:
   * connection refused or reset, a name that does not resolve, no answer within the
   * call's time limit, or a 5xx / 429 that persisted. A fault of the infrastructure, not
   * the agent's outcome: always `retryable`, so the episode is an `infra-error` and is
   * run again. (A 4xx or a malformed answer stays MODEL_CALL_FAILED, non-retryable.)
   */
  MODEL_UNREACHABLE: 'MODEL_UNREACHABLE',
  /** The verifier could not run or produced no reward. */
  VERIFIER_FAILED: 'VERIFIER_FAILED',
  /** The trainer's PyTorch worker failed (exited, hung, broke the protocol); details hold its stderr. */
  TRAINER_FAILED: 'TRAINER_FAILED',
  /** The run store could not be read or written. */
  STORE_FAILED: 'STORE_FAILED',
  /** A run named for `resume` does not exist. */
  RUN_NOT_FOUND: 'RUN_NOT_FOUND',
  /** The operation was aborted through its AbortSignal. */
  ABORTED: 'ABORTED',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export interface PaddockErrorOptions {
  cause?: unknown;
  /** Whether repeating the same operation may succeed (engine hiccup, HTTP 5xx). @default false */
  retryable?: boolean;
  /** Structured details for programs (file, field path, image name…). */
  details?: Record<string, unknown>;
}

/** The brand every PaddockError carries, shared by every copy of paddock loaded in a process. */
const BRAND = Symbol.for('paddock.PaddockError');

/**
 * `instanceof PaddockError` holds for an error made by any copy of this class in the
 * process: a plug-in importing `paddock` may get another module instance than the one
 * the CLI runs (a build beside the sources), and its errors must keep their codes.
 */
export class PaddockError extends Error {
  override readonly name = 'PaddockError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: PaddockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** True when `error` is a PaddockError, optionally of one code. */
export function isPaddockError(error: unknown, code?: ErrorCode): error is PaddockError {
  return error instanceof PaddockError && (code === undefined || error.code === code);
}

/** A short one-line description of any thrown value, for records and observations. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** True when `promise` settles (either way) within `ms`; false when the time runs out first. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return settled;
}

/**
 * Settles like `promise`, unless `signal` aborts first: then it settles with what
 * `onAbort` returns or throws (by default it rejects with ABORTED, the reason as cause).
 * The listener is removed once `promise` settles.
 */
export function raceAbort<T, A = never>(
  promise: Promise<T>,
  signal: AbortSignal,
  onAbort?: () => A,
): Promise<T | A> {
  const settleAborted =
    onAbort ??
    ((): never => {
      throw new PaddockError(ERROR_CODES.ABORTED, 'aborted', { cause: signal.reason });
    });
  return new Promise<T | A>((resolve, reject) => {
    const abort = (): void => {
      try {
        resolve(settleAborted());
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Throws a PaddockError with code ABORTED when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new PaddockError(ERROR_CODES.ABORTED, 'aborted', { cause: signal.reason });
  }
}
