/**
 * The errors every part of a Docker sandbox raises alike: a call after `close()`, an abort.
 */
import { ERROR_CODES, PaddockError } from '../../harness/errors.ts';

/** SANDBOX_CLOSED: a call on (or a command in flight when) the sandbox closed. */
export function closedError(): PaddockError {
  return new PaddockError(ERROR_CODES.SANDBOX_CLOSED, 'the sandbox is closed');
}

/** ABORTED, with the signal's reason as its cause. */
export function abortedError(signal: AbortSignal | undefined): PaddockError {
  return new PaddockError(ERROR_CODES.ABORTED, 'aborted', { cause: signal?.reason });
}

/** Throws SANDBOX_CLOSED when `closed`, else ABORTED when `signal` is aborted. */
export function throwIfUnusable(closed: boolean, signal: AbortSignal | undefined): void {
  if (closed) throw closedError();
  if (signal?.aborted) throw abortedError(signal);
}
