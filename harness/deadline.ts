/**
 * Deadlines that hold on every supported Node version.
 *
 * paddock never joins a signal with a timeout signal through AbortSignal's static `any`
 * and `timeout`: on Node 20 the timeout signal can be garbage-collected while only the
 * joined signal is referenced, and then it never fires (nodejs/node#57736). A `Deadline` owns its timer
 * (a plain `setTimeout` that is referenced until it fires or is cleared) and its
 * controller, so a collection cannot lose it.
 */
import { ERROR_CODES, PaddockError } from './errors.ts';

/** The longest delay Node's timers can represent, in ms (2^31 − 1); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A signal that aborts when its time runs out or when a parent signal aborts. */
export interface Deadline {
  /** Aborts at the deadline (reason: a TimeoutError DOMException) or with the parent's reason. */
  readonly signal: AbortSignal;
  /** True when the deadline itself fired (not the parent). */
  readonly expired: boolean;
  /** Stops the timer and detaches from the parent. Idempotent; call when the work ends. */
  clear(): void;
}

/**
 * Starts a deadline of `ms` milliseconds joined with `parent` (if any). `ms` of
 * `Infinity` means no deadline of its own (only the parent's).
 * @throws PaddockError CONFIG_INVALID when `ms` is negative, NaN, or finite and above
 *   `MAX_TIMER_MS` (Node would fire such a timer at once).
 */
export function startDeadline(ms: number, parent?: AbortSignal): Deadline {
  assertTimerMs(ms, 'deadline');
  const controller = new AbortController();
  let expired = false;
  let timer: NodeJS.Timeout | undefined;
  const onParentAbort = () => {
    clear();
    controller.abort(parent?.reason);
  };
  const clear = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    parent?.removeEventListener('abort', onParentAbort);
  };
  if (parent?.aborted) {
    controller.abort(parent.reason);
  } else {
    parent?.addEventListener('abort', onParentAbort, { once: true });
    if (Number.isFinite(ms)) {
      timer = setTimeout(() => {
        expired = true;
        clear();
        controller.abort(new DOMException(`the deadline of ${ms} ms passed`, 'TimeoutError'));
      }, ms);
    }
  }
  return {
    signal: controller.signal,
    get expired() {
      return expired;
    },
    clear,
  };
}

/**
 * Runs `work` with a deadline of `ms` joined with `parent`, clearing the timer when it
 * settles (either way).
 */
export async function withDeadline<T>(
  ms: number,
  parent: AbortSignal | undefined,
  work: (signal: AbortSignal, deadline: Deadline) => Promise<T>,
): Promise<T> {
  const deadline = startDeadline(ms, parent);
  try {
    return await work(deadline.signal, deadline);
  } finally {
    deadline.clear();
  }
}

/**
 * Checks that `ms` is a delay Node's timers can represent.
 * @throws PaddockError CONFIG_INVALID naming `what`.
 */
export function assertTimerMs(ms: number, what: string): void {
  if (Number.isNaN(ms) || ms < 0 || (Number.isFinite(ms) && ms > MAX_TIMER_MS)) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${what}: ${ms} ms is not a usable time limit (0 to ${MAX_TIMER_MS} ms, about 24.8 days)`,
    );
  }
}
