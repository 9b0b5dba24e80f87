/**
 * Waiting for a page to settle after an action, without a fixed sleep. The wait ends as
 * soon as the page shows no more pending work, and never later than its bound:
 *
 * 1. network: no request of the page still in flight (a navigation's document request
 *    included). Not waited for: WebSockets and EventSource, requests unanswered after
 *    `longRequestMs` (long polls, hung resources), and bodies still unread `bodyGraceMs`
 *    after their headers arrived (a page that ignores a response never reads its body);
 * 2. load: when the main frame navigated since the action began, its `load` event;
 * 3. DOM quiet: one macrotask turn in the page (so `setTimeout(0)` and message-channel
 *    work scheduled by the action runs) and, if the DOM changed meanwhile, until it has
 *    stayed unchanged for `quietMs`. When a request of the page ended less than
 *    `networkGraceMs` ago, the wait lasts at least until that much time has passed: the
 *    page hears of a finished or failed request after the browser does, and its handler
 *    (a `fetch` that rejects, say) still has to run.
 *
 * In the common case — a click whose handler updates the DOM synchronously — the whole
 * wait is one round trip to the page.
 */
import type { BrowserContext, Page, Request } from 'playwright-core';

/** Resource types that stay open by design and are never waited for. */
const LONG_LIVED = new Set(['websocket', 'eventsource']);

interface InflightRequest {
  page: Page;
  startedAt: number;
  /** When the response headers arrived. */
  respondedAt?: number;
}

/** Tracks, per page, the requests in flight and the main-frame navigations. */
export class PageActivity {
  private readonly inflight = new Map<Request, InflightRequest>();
  private readonly navigations = new WeakMap<Page, number>();
  private readonly lastEnded = new WeakMap<Page, number>();
  private readonly waiters = new Set<() => void>();
  private readonly detach: () => void;
  /** Requests without a response after this long are not waited for (long polls, hung resources), in ms. @default 5_000 */
  readonly longRequestMs: number;
  /**
   * How long a response's body is waited for once its headers arrived, in ms. A body the
   * page never reads (a `fetch` whose result is ignored) never finishes loading, so it
   * cannot be waited for without a bound. @default 100
   */
  readonly bodyGraceMs: number;

  constructor(context: BrowserContext, options: { longRequestMs?: number; bodyGraceMs?: number } = {}) {
    this.longRequestMs = options.longRequestMs ?? 5_000;
    this.bodyGraceMs = options.bodyGraceMs ?? 100;
    const onRequest = (request: Request) => {
      if (LONG_LIVED.has(request.resourceType())) return;
      let page: Page | null;
      try {
        page = request.frame().page();
      } catch {
        // Service-worker requests have no frame; they are blocked anyway.
        return;
      }
      if (page) this.inflight.set(request, { page, startedAt: performance.now() });
    };
    const onResponse = (response: { request(): Request }) => {
      const entry = this.inflight.get(response.request());
      if (entry) {
        entry.respondedAt = performance.now();
        this.notify();
      }
    };
    const onDone = (request: Request) => {
      const entry = this.inflight.get(request);
      if (!entry) return;
      this.inflight.delete(request);
      this.lastEnded.set(entry.page, performance.now());
      this.notify();
    };
    const onNavigated = (frame: { page(): Page; parentFrame(): unknown }) => {
      if (frame.parentFrame() !== null) return;
      const page = frame.page();
      this.navigations.set(page, (this.navigations.get(page) ?? 0) + 1);
    };
    context.on('request', onRequest);
    context.on('response', onResponse);
    context.on('requestfinished', onDone);
    context.on('requestfailed', onDone);
    const pages = new Set<Page>();
    const watch = (page: Page) => {
      pages.add(page);
      page.on('framenavigated', onNavigated);
      page.on('close', () => {
        for (const [request, entry] of this.inflight) if (entry.page === page) this.inflight.delete(request);
        this.notify();
      });
    };
    for (const page of context.pages()) watch(page);
    context.on('page', watch);
    this.detach = () => {
      context.off('request', onRequest);
      context.off('response', onResponse);
      context.off('requestfinished', onDone);
      context.off('requestfailed', onDone);
      context.off('page', watch);
      for (const page of pages) page.off('framenavigated', onNavigated);
      this.inflight.clear();
      this.notify();
    };
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** How many main-frame navigations `page` has committed so far (compare two readings). */
  navigationCount(page: Page): number {
    return this.navigations.get(page) ?? 0;
  }

  /** When the last request of `page` finished or failed (`performance.now()` clock; -Infinity when none has). */
  lastRequestEnded(page: Page): number {
    return this.lastEnded.get(page) ?? Number.NEGATIVE_INFINITY;
  }

  /** When an in-flight request stops being worth waiting for. */
  private expiry(entry: InflightRequest): number {
    return entry.respondedAt === undefined
      ? entry.startedAt + this.longRequestMs
      : entry.respondedAt + this.bodyGraceMs;
  }

  /**
   * Requests of `page` in flight that are worth waiting for, and when the next of them
   * stops being so (ms on the `performance.now()` clock; Infinity when none).
   */
  pending(page: Page): { count: number; nextExpiry: number } {
    const now = performance.now();
    let count = 0;
    let nextExpiry = Number.POSITIVE_INFINITY;
    for (const entry of this.inflight.values()) {
      const expiry = this.expiry(entry);
      if (entry.page !== page || expiry <= now) continue;
      count++;
      nextExpiry = Math.min(nextExpiry, expiry);
    }
    return { count, nextExpiry };
  }

  /** Resolves when `page` has no request worth waiting for, or after `timeoutMs`. Never rejects. */
  async networkIdle(page: Page, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.pending(page).count === 0 || timeoutMs <= 0) return;
    await new Promise<void>((resolve) => {
      let expiryTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(timer);
        clearTimeout(expiryTimer);
        this.waiters.delete(check);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      const check = () => {
        const { count, nextExpiry } = this.pending(page);
        if (count === 0) return finish();
        // Requests age out without an event: look again when the next one does.
        clearTimeout(expiryTimer);
        expiryTimer = setTimeout(check, Math.max(1, nextExpiry - performance.now()));
      };
      const timer = setTimeout(finish, timeoutMs);
      this.waiters.add(check);
      signal?.addEventListener('abort', finish, { once: true });
      check();
    });
  }

  /** Stops listening. */
  dispose(): void {
    this.detach();
  }
}

/** Bounds of one settle wait. */
export interface SettleOptions {
  /** Longest the whole wait may take, in ms. */
  timeoutMs: number;
  /** How long the DOM must stay unchanged once it started changing, in ms. @default 50 */
  quietMs?: number;
  /** How long after a request of the page ended the wait lasts at least, in ms. @default 50 */
  networkGraceMs?: number;
  /** The page's navigation count before the action (from `PageActivity.navigationCount`). */
  navigationsBefore: number;
  signal?: AbortSignal;
}

/**
 * Runs in the page: resolves after one macrotask turn when the DOM did not change during
 * it, else once it has not changed for `quietMs`; not before `minMs`, and never later than
 * `maxMs`. A string, so
 * that no compiler helper (e.g. a name-keeping wrapper) leaks into the page.
 */
export const DOM_QUIET_SCRIPT = `({ quietMs, minMs, maxMs }) => new Promise((resolve) => {
  const started = performance.now();
  let lastChange = -Infinity;
  const observer = new MutationObserver(() => { lastChange = performance.now(); });
  observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  const check = () => {
    const now = performance.now();
    if ((now - lastChange >= quietMs && now - started >= minMs) || now - started >= maxMs) { observer.disconnect(); resolve(); }
    else setTimeout(check, Math.max(1, Math.min(quietMs, 16, minMs - (now - started))));
  };
  setTimeout(check, 0);
})`;

/**
 * `ms` as a Playwright timeout: whole milliseconds, at least 1 when `ms` is positive, and
 * 0 when nothing is left. Playwright reads `timeout: 0` as "wait forever", so a caller
 * passes the result only when it is positive.
 */
export function playwrightTimeout(ms: number): number {
  return ms > 0 ? Math.ceil(ms) : 0;
}

/**
 * Waits until `page` settles after an action (see the module comment). Never rejects:
 * a page that does not settle in time is observed as it is (the observation says when it
 * is still loading); a browser that died is noticed by the observation that follows.
 */
export async function settle(page: Page, activity: PageActivity, options: SettleOptions): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  const left = () => Math.max(0, deadline - performance.now());
  const signal = options.signal;
  try {
    await activity.networkIdle(page, left(), signal);
    // Read once: a second reading may have crossed the deadline, and Playwright reads a
    // timeout of 0 as no timeout at all (the page that never loads would be waited for forever).
    const loadLeft = playwrightTimeout(left());
    if (activity.navigationCount(page) !== options.navigationsBefore && loadLeft > 0) {
      await page.waitForLoadState('load', { timeout: loadLeft }).catch(() => undefined);
      await activity.networkIdle(page, left(), signal);
    }
    if (left() > 0 && !signal?.aborted && !page.isClosed()) {
      const quietMs = options.quietMs ?? 50;
      const maxMs = Math.min(left(), 1_000);
      const graceEnds = activity.lastRequestEnded(page) + (options.networkGraceMs ?? 50);
      const minMs = Math.min(maxMs, Math.max(0, Math.ceil(graceEnds - performance.now())));
      const quiet = page.evaluate(`(${DOM_QUIET_SCRIPT})(${JSON.stringify({ quietMs, minMs, maxMs })})`);
      // A page whose script keeps its main thread busy never answers: give up at the bound.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, maxMs + 250);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        quiet.then(done, done);
      });
    }
  } catch {
    // A navigation destroyed the context the wait ran in, or the page closed: the
    // observation that follows shows the state the page is in.
  }
}
