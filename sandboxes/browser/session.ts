/**
 * One episode's browser: an isolated context in the shared browser, the page the agent
 * sees, the origin its pages come from, and the scorer. Every action runs through `act`,
 * which turns the agent's mistakes (a stale ref, a covered button, a forbidden URL) into
 * observations, waits for the page to settle, and observes it; a browser that crashed or
 * disconnected becomes a retryable SANDBOX_FAILED error, which ends the episode as an
 * infrastructure error that `runEpisodes` retries.
 */
import type { CDPSession, Dialog, FileChooser, Locator, Page } from 'playwright-core';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  raceAbort,
  throwIfAborted,
  withDeadline,
  type ImagePart,
  type InitialObservation,
  type SessionScore,
  type Tool,
  type ToolOutput,
  type ToolSession,
} from '../../harness/index.ts';
import type { Lease } from './browser-pool.ts';
import {
  describeTarget,
  measureTarget,
  measureTargets,
  scoreAnswer,
  toAgentUnits,
  toCss,
  visibleCentre,
  type Box,
  type PointingAction,
  type Point,
} from './grounding.ts';
import {
  describeRef,
  formatObservation,
  summarizeActionError,
  trimSnapshot,
  type ObservationParts,
} from './observation.ts';
import { drawMarks } from './marks.ts';
import type { OriginPolicy } from './origins.ts';
import { GroundingTargetSchema, type BrowserTaskConfig } from './schema.ts';
import { evaluateScorer, threwNote, type Scorer, type ScorerOutcome, type ScorerScore } from './scorer.ts';
import { PROBE, type ClickState, type Probe } from './page-functions.ts';
import { PageActivity, settle } from './settle.ts';
import type { RunningSite } from './site-server.ts';
import { browserTools } from './tools.ts';

/** Longest wait for a snapshot, the title or a screenshot of a page that stopped answering, in ms. */
const OBSERVE_TIMEOUT_MS = 5_000;
/** Longest wait for the browser to close a page whose main thread is stuck, in ms. */
const HUNG_PAGE_CLOSE_TIMEOUT_MS = 5_000;

/** How long an action waits for a window it may have opened (popups: follow, tabs), in ms. */
const POPUP_GRACE_MS = 150;
/** How long a reference solution's target waits for a window still arriving, in ms. */
const POPUP_WAIT_MS = 3_000;

/** What `act` sees when the action opened a dialog the agent must answer (dialogs: agent). */
const DIALOG_OPENED = Symbol('dialog opened');

/** A mistake of the agent's, told back to it as the action's result. */
export class ActionRefused extends Error {
  override readonly name = 'ActionRefused';
}

/** Where an action points: a ref from the snapshot, or a selector. */
export interface Target {
  ref?: string | undefined;
  selector?: string | undefined;
}

/** A located element and how to name it in a result. */
export interface Located {
  locator: Locator;
  label: string;
  /** Whether the first match could take a click right away (see PROBE). */
  state?: ClickState;
}

/** What a session is made of; the provider builds it. */
export interface SessionParts {
  episodeId: string;
  lease: Lease;
  config: BrowserTaskConfig;
  policy: OriginPolicy;
  /** The first page's URL. */
  startUrl: string;
  /** The site or app serving the pages, stopped on close. */
  site?: RunningSite;
  scorer?: Scorer;
  /** Called once when the session closes. */
  onClose?: () => void;
}

/** `promise`, or a rejection after `ms`; a late rejection of `promise` is handled (ignored). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(ms, undefined, (signal) =>
    raceAbort(promise, signal, (): never => {
      throw new Error(`${what} did not answer within ${ms} ms (a script of the page may be busy)`);
    }),
  );
}

const CLOSED_PATTERN = /has been closed|Target closed|browser has disconnected|crash/i;

export class BrowserSession implements ToolSession {
  readonly tools: readonly Tool[];
  readonly episodeId: string;
  readonly config: BrowserTaskConfig;
  readonly policy: OriginPolicy;
  private readonly parts: SessionParts;
  private readonly activity: PageActivity;
  private current: Page;
  private events: string[] = [];
  private readonly blockedOrigins = new Set<string>();
  private crashed = false;
  private contextClosed = false;
  private closing: Promise<void> | undefined;
  private lastSnapshot = '';
  private openingPage = false;
  private eventsDropped = 0;
  /**
   * Set once a scorer timed out and its page was closed: from then on the episode scores
   * 0 with this note. The page shown next (the previous one, or a blank one) is not what
   * the agent made, and must not be scored: a scorer that checks for an absence would
   * pass on a blank page, so hanging the page would otherwise forge a score.
   */
  private hungNote: string | undefined;
  /** The last score `scoreNow` gave, for turn rewards that pay progress. */
  lastScore: number | undefined;
  /** A dialog the page waits on until the agent answers it (dialogs: agent). */
  private pendingDialog: Dialog | undefined;
  /** Waiting for the next file chooser (browser_upload at a point). */
  private chooserWaiters: ((chooser: FileChooser) => void)[] = [];
  /** Woken when a dialog opens: an action that opened it stops waiting for itself. */
  private dialogWakers: (() => void)[] = [];
  /** The action a dialog interrupted, finished once the dialog is answered. */
  private interrupted: Promise<unknown> | undefined;
  private lastTitle = '';
  /** A DevTools session per page, for screenshots. */
  private readonly cdpSessions = new WeakMap<Page, Promise<CDPSession>>();
  /** Every coordinate action, with the grounding targets' boxes just before it. */
  private readonly pointing: PointingAction[] = [];
  /** The grounding targets' boxes when the page was last shown (with its screenshot). */
  private shownTargets: (Box | undefined)[] | undefined;

  private constructor(parts: SessionParts) {
    this.parts = parts;
    this.episodeId = parts.episodeId;
    this.config = parts.config;
    this.policy = parts.policy;
    this.current = parts.lease.page;
    this.activity = new PageActivity(parts.lease.context);
    this.tools = browserTools(this);
  }

  /**
   * Sets the context up (blocked origins, dialogs, pop-ups, crash detection) and opens
   * the start page. On failure everything is closed before it rejects.
   *
   * @throws PaddockError SANDBOX_START_FAILED (retryable) when the start page cannot be
   *   opened; ABORTED.
   */
  static async open(parts: SessionParts, signal: AbortSignal): Promise<BrowserSession> {
    const session = new BrowserSession(parts);
    try {
      await session.setUp(signal);
      return session;
    } catch (error) {
      await session.close();
      if (signal.aborted) throw new PaddockError(ERROR_CODES.ABORTED, 'aborted', { cause: error });
      if (error instanceof PaddockError) throw error;
      throw new PaddockError(
        ERROR_CODES.SANDBOX_START_FAILED,
        `could not open the start page ${parts.startUrl}: ${summarizeActionError(describeError(error))}`,
        { cause: error, retryable: true, details: { url: parts.startUrl } },
      );
    }
  }

  private async setUp(signal: AbortSignal): Promise<void> {
    const { context } = this.parts.lease;
    const config = this.config;
    context.setDefaultTimeout(config.actionTimeoutMs);
    context.setDefaultNavigationTimeout(config.loadTimeoutMs);
    context.on('close', () => {
      this.contextClosed = true;
    });
    context.on('dialog', (dialog) => {
      if (config.dialogs === 'agent' && dialog.type() !== 'beforeunload') {
        if (this.pendingDialog) {
          // One dialog at a time is the browser's rule too; a second one is answered for it.
          void dialog.dismiss().catch(() => undefined);
          return;
        }
        this.pendingDialog = dialog;
        this.note(`${dialog.type()} dialog "${dialog.message()}" opened: answer it with browser_dialog`);
        for (const wake of this.dialogWakers.splice(0)) wake();
        return;
      }
      const accept = config.dialogs === 'accept' || dialog.type() === 'beforeunload';
      this.note(`${dialog.type()} dialog "${dialog.message()}" (${accept ? 'accepted' : 'dismissed'})`);
      // A dialog answered after its page closed rejects; nothing is left to answer then.
      void (accept ? dialog.accept() : dialog.dismiss()).catch(() => undefined);
    });
    context.on('weberror', (webError) => {
      this.note(`page error: ${webError.error().message}`);
    });
    context.on('page', (page) => this.onNewPage(page));
    this.watch(this.current);
    this.parts.lease.guard.onBlocked = (url, kind) => {
      const origin = URL.canParse(url) ? new URL(url).origin : 'null';
      const key = `${kind} ${origin}`;
      if (this.blockedOrigins.has(key)) return;
      this.blockedOrigins.add(key);
      const where = origin === 'null' ? url.slice(0, 80) : origin;
      this.note(
        `blocked a ${kind === 'websocket' ? 'WebSocket' : 'request'} to ${where} (not an allowed origin)`,
      );
    };
    this.parts.lease.guard.allows = (url) => this.policy.allows(url);
    const { width, height } = config.viewport;
    const viewport = this.current.viewportSize();
    if (viewport?.width !== width || viewport?.height !== height) {
      await withTimeout(
        this.current.setViewportSize({ width, height }),
        config.actionTimeoutMs,
        'setting the viewport',
      );
    }
    throwIfAborted(signal);
    await this.current.goto(this.parts.startUrl, {
      waitUntil: 'commit',
      timeout: config.loadTimeoutMs,
      signal,
    });
    await this.settleUnlessDialog(this.current, {
      timeoutMs: config.loadTimeoutMs,
      navigationsBefore: -1,
      signal,
    });
  }

  /**
   * Waits for the page to settle, or until a dialog the agent answers opens: the page's
   * script is stopped inside it, so the page cannot settle before the agent answers.
   */
  private async settleUnlessDialog(page: Page, options: Parameters<typeof settle>[2]): Promise<void> {
    if (this.config.dialogs !== 'agent') return settle(page, this.activity, options);
    if (this.pendingDialog) return;
    let wake: (() => void) | undefined;
    const opened = new Promise<void>((resolve) => {
      wake = resolve;
      this.dialogWakers.push(resolve);
    });
    const settling = settle(page, this.activity, options);
    settling.catch(() => undefined); // once the dialog won, a late failure is nobody's
    try {
      await Promise.race([settling, opened]);
    } finally {
      this.dialogWakers = this.dialogWakers.filter((item) => item !== wake);
    }
  }

  /** Keeps an event for the next observation (the latest 50; an observation shows 8). */
  private note(event: string): void {
    this.events.push(event);
    if (this.events.length > 50) this.eventsDropped += this.events.splice(0, this.events.length - 50).length;
  }

  private watch(page: Page): void {
    page.on('crash', () => {
      this.crashed = true;
    });
    // Chromium intercepts file choosers only in documents loaded after interception was
    // turned on: a task with uploads listens from before the first navigation.
    if (this.config.uploads.length > 0) {
      page.on('filechooser', (chooser) => {
        const waiter = this.chooserWaiters.shift();
        if (waiter) waiter(chooser);
        else this.note('a file chooser opened: choose files with browser_upload');
      });
    }
  }

  /** The next file chooser a page of the episode opens, or undefined after `timeoutMs`. */
  async nextFileChooser(start: () => Promise<void>, timeoutMs: number): Promise<FileChooser | undefined> {
    let waiter: ((chooser: FileChooser) => void) | undefined;
    const opened = new Promise<FileChooser>((resolve) => {
      waiter = resolve;
      this.chooserWaiters.push(resolve);
    });
    try {
      await start();
      return await withTimeout(opened, timeoutMs, 'the file chooser').catch(() => undefined);
    } finally {
      this.chooserWaiters = this.chooserWaiters.filter((item) => item !== waiter);
    }
  }

  private onNewPage(page: Page): void {
    if (page === this.parts.lease.page || this.openingPage) return;
    if (this.config.popups === 'tabs') {
      this.watch(page);
      this.current = page;
      this.note('a new tab opened and is shown now (browser_tabs lists, switches and closes tabs)');
      return;
    }
    if (this.config.popups === 'block') {
      this.note(
        `blocked a pop-up window${page.url() && page.url() !== 'about:blank' ? ` (${page.url()})` : ''}`,
      );
      void page.close().catch(() => undefined);
      return;
    }
    this.watch(page);
    this.current = page;
    this.note('a pop-up window opened: it is now the page shown (closing it returns to the previous one)');
  }

  /** The page the agent sees: the current one, or the newest still open, or a new blank one. */
  async page(): Promise<Page> {
    if (!this.current.isClosed()) return this.current;
    const open = this.parts.lease.context.pages().filter((page) => !page.isClosed());
    const last = open[open.length - 1];
    if (last) {
      this.current = last;
      this.note('the page closed: back to the previous page');
    } else {
      // The context announces the new page before newPage() resolves: it is ours, not a pop-up.
      this.openingPage = true;
      try {
        this.current = await this.parts.lease.context.newPage();
      } finally {
        this.openingPage = false;
      }
      this.watch(this.current);
      this.note(
        `the page closed itself: a blank page was opened (the task started at ${this.parts.startUrl})`,
      );
    }
    return this.current;
  }

  /** Whether the browser, the context or the page's renderer is gone. */
  get broken(): boolean {
    return !this.parts.lease.browser.isConnected() || this.crashed || (this.contextClosed && !this.closing);
  }

  /**
   * The retryable infrastructure error `error` stands for, if any: the browser died, the
   * context was closed under the episode, or the page's renderer crashed. Playwright may
   * report a closed target before the browser's disconnect event arrives, so such an
   * error is looked at again a moment later.
   */
  async infrastructureFault(error: unknown): Promise<PaddockError | undefined> {
    if (!this.broken && CLOSED_PATTERN.test(describeError(error))) {
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    if (!this.broken) return undefined;
    const what = !this.parts.lease.browser.isConnected()
      ? 'the browser disconnected (crashed or was killed)'
      : this.crashed
        ? "the page's renderer crashed"
        : 'the browser context was closed';
    return new PaddockError(ERROR_CODES.SANDBOX_FAILED, `${what}: ${describeError(error)}`, {
      cause: error,
      retryable: true,
      details: { episodeId: this.episodeId },
    });
  }

  private async rethrowFault(error: unknown, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new PaddockError(ERROR_CODES.ABORTED, 'aborted', { cause: error });
    const fault = await this.infrastructureFault(error);
    if (fault) throw fault;
  }

  /**
   * Finds the element a ref or selector names, on the page the agent sees.
   *
   * @throws ActionRefused when the ref is malformed or stale, or the selector matches no
   *   element or several.
   */
  async locate(page: Page, target: Target): Promise<Located> {
    if (target.ref !== undefined) {
      const ref = target.ref
        .trim()
        .replace(/^\[?ref=/, '')
        .replace(/\]$/, '');
      if (!/^(f\d+)?e\d+$/.test(ref)) {
        throw new ActionRefused(
          `"${target.ref}" is not an element ref: use a ref such as e12 from the page snapshot`,
        );
      }
      const locator = page.getByRef(ref);
      // A ref resolves against the last snapshot, which lives in Playwright's utility world:
      // only a count there says at once that it is stale. The probe (in the page's world,
      // where the element is adopted) would wait for a stale ref instead, so both are asked
      // together and the probe is called off when the count is 0.
      const stale = new AbortController();
      // Never rejects: a probe that failed (the element went away meanwhile) leaves the
      // action to Playwright's own checks.
      const probing = locator
        .evaluate(PROBE, undefined, { timeout: this.config.actionTimeoutMs, signal: stale.signal })
        .catch((): Probe | undefined => undefined);
      const count = await locator.count().catch((error: unknown) => {
        stale.abort();
        throw error;
      });
      if (count === 0) stale.abort();
      const probe = (await probing) ?? { count };
      if (count === 0) {
        throw new ActionRefused(
          `element ${ref} is not on the page any more (the page changed since the snapshot that showed it): use a ref from the snapshot below`,
        );
      }
      const description = describeRef(this.lastSnapshot, ref);
      const label = description ? `${ref} (${description})` : ref;
      return { locator, label, ...(probe.state ? { state: probe.state } : {}) };
    }
    const selector = target.selector ?? '';
    const locator = page.locator(selector);
    const { count, state } = await locator.evaluateAll(PROBE);
    if (count === 0) throw new ActionRefused(`no element matches the selector ${selector}`);
    if (count > 1) {
      throw new ActionRefused(
        `the selector ${selector} matches ${count} elements: make it match exactly one, or use a ref`,
      );
    }
    return { locator, label: selector, ...(state ? { state } : {}) };
  }

  /**
   * Runs one action on the page the agent sees, waits for the page to settle and
   * observes it. `action` returns what it did, in a sentence; it throws ActionRefused (or
   * any Playwright error) for what the agent should read as a failed action.
   *
   * @throws PaddockError SANDBOX_FAILED (retryable) when the browser broke; ABORTED.
   */
  async act(
    signal: AbortSignal,
    action: (page: Page) => Promise<string>,
    options: { timeoutMs?: number; settleTimeoutMs?: number; duringDialog?: boolean } = {},
  ): Promise<ToolOutput> {
    throwIfAborted(signal);
    if (this.pendingDialog && !options.duringDialog) {
      const dialog = this.pendingDialog;
      return this.observe(signal, {
        ok: false,
        text: `a ${dialog.type()} dialog is open ("${dialog.message()}"): answer it with browser_dialog first`,
      });
    }
    let page: Page;
    try {
      page = await this.page();
    } catch (error) {
      await this.rethrowFault(error, signal);
      throw error;
    }
    const navigationsBefore = this.activity.navigationCount(page);
    let result: { ok: boolean; text: string };
    // Playwright's own timeouts bound the actions; this bounds what has none (a count, an
    // evaluation) when a script of the page keeps its main thread busy.
    const boundMs = options.timeoutMs ?? this.config.actionTimeoutMs + 2_000;
    // With dialogs the agent answers, an action that opens one waits on it (the page's
    // script is stopped in confirm()): the action is shown the dialog instead, and
    // finishes once the dialog is answered.
    let wake: (() => void) | undefined;
    const dialogOpened =
      this.config.dialogs === 'agent'
        ? new Promise<typeof DIALOG_OPENED>((resolve) => {
            wake = () => resolve(DIALOG_OPENED);
            this.dialogWakers.push(wake);
          })
        : undefined;
    // A window the action opens arrives a moment after the action returns: in the modes
    // that show it, the action waits for it briefly so that its observation shows it.
    const popup =
      this.config.popups === 'block'
        ? undefined
        : page.waitForEvent('popup', { timeout: POPUP_GRACE_MS }).catch(() => undefined);
    try {
      const running = action(page).then(async (text) => {
        await popup;
        return text;
      });
      const outcome = await withTimeout(
        dialogOpened ? Promise.race([running, dialogOpened]) : running,
        boundMs,
        'the page',
      );
      if (outcome === DIALOG_OPENED) {
        this.interrupted = running.catch(() => undefined);
        return await this.observe(signal, { ok: true, text: 'The action opened a dialog.' });
      }
      result = { ok: true, text: outcome };
    } catch (error) {
      await this.rethrowFault(error, signal);
      result = {
        ok: false,
        text: error instanceof ActionRefused ? error.message : summarizeActionError(describeError(error)),
      };
    } finally {
      if (wake) this.dialogWakers = this.dialogWakers.filter((item) => item !== wake);
    }
    if (this.pendingDialog) return this.observe(signal, result);
    const after = await this.page().catch(() => page);
    await this.settleUnlessDialog(after, {
      timeoutMs: options.settleTimeoutMs ?? this.config.settleTimeoutMs,
      navigationsBefore: after === page ? navigationsBefore : -1,
      signal,
    });
    return this.observe(signal, result);
  }

  /**
   * Observes the page the agent sees: the result of the last action, URL, title, events
   * since the last observation, the trimmed snapshot and, when the task asks, a screenshot.
   *
   * @throws PaddockError SANDBOX_FAILED (retryable) when the browser broke; ABORTED.
   */
  async observe(signal: AbortSignal, result?: { ok: boolean; text: string }, depth = 0): Promise<ToolOutput> {
    throwIfAborted(signal);
    let page: Page;
    try {
      page = await this.page();
    } catch (error) {
      await this.rethrowFault(error, signal);
      throw error;
    }
    if (this.pendingDialog) return this.observeDialog(page, this.pendingDialog, result);
    const config = this.config;
    const [snapshot, info, screenshot, targets] = await Promise.allSettled([
      config.snapshot || config.marks
        ? page.ariaSnapshot({ mode: 'ai', boxes: true, timeout: OBSERVE_TIMEOUT_MS, signal })
        : Promise.resolve(undefined),
      withTimeout(
        page.evaluate<[string, string, number]>('[document.title, document.readyState, devicePixelRatio]'),
        OBSERVE_TIMEOUT_MS,
        'the page',
      ),
      config.screenshot ? this.screenshot(page) : Promise.resolve(undefined),
      // Where the grounding targets are on the page the agent is shown.
      config.grounding && config.screenshot
        ? measureTargets(page, config.grounding.targets, OBSERVE_TIMEOUT_MS)
        : Promise.resolve(undefined),
    ]);
    if (targets.status === 'fulfilled' && targets.value) this.shownTargets = targets.value;
    // A pop-up followed while the page was observed: observe the page it brought instead.
    if (this.current !== page && !this.current.isClosed() && depth < 3) {
      await settle(this.current, this.activity, {
        timeoutMs: this.config.settleTimeoutMs,
        navigationsBefore: -1,
        signal,
      });
      return this.observe(signal, result, depth + 1);
    }
    for (const outcome of [snapshot, info, screenshot]) {
      if (outcome.status === 'rejected') await this.rethrowFault(outcome.reason, signal);
    }
    let shown: ObservationParts['snapshot'];
    if (snapshot.status === 'fulfilled') {
      this.lastSnapshot = snapshot.value ?? '';
      shown =
        snapshot.value === undefined || !config.snapshot
          ? undefined
          : trimSnapshot(snapshot.value, { maxChars: config.maxSnapshotChars });
    } else if (!config.snapshot) {
      this.lastSnapshot = '';
    } else {
      this.lastSnapshot = '';
      shown = { error: summarizeActionError(describeError(snapshot.reason)) };
    }
    const events = this.events;
    const eventsDropped = this.eventsDropped;
    this.events = [];
    this.eventsDropped = 0;
    const [title, readyState, scale] = info.status === 'fulfilled' ? info.value : ['', 'complete', 1];
    this.lastTitle = title;
    const picture = screenshot.status === 'fulfilled' ? screenshot.value : undefined;
    const image =
      picture && config.marks && snapshot.status === 'fulfilled' && snapshot.value
        ? await drawMarks(this.parts.lease.context, picture, snapshot.value, config.viewport).catch(
            () => picture,
          )
        : picture;
    const text = formatObservation({
      ...(result ? { result } : {}),
      url: page.url(),
      title,
      events,
      eventsDropped,
      loading: readyState !== 'complete',
      ...(shown === undefined ? {} : { snapshot: shown }),
      ...(image ? { screen: this.screenLine(scale) } : {}),
    });
    const images: ImagePart[] = image
      ? [{ mimeType: 'image/png', dataBase64: image.toString('base64') }]
      : [];
    return {
      text,
      ...(images.length > 0 ? { images } : {}),
      ...(result && !result.ok ? { isError: true } : {}),
    };
  }

  /**
   * The viewport as a PNG, through the DevTools protocol with Chromium's fast PNG encoder
   * (`optimizeForSpeed`: about a third less time than Playwright's `page.screenshot`, which
   * cannot ask for it). Contexts have device scale 1 (browser-pool.ts), so a screenshot
   * pixel is a CSS pixel. A text field's caret shows as it blinks, as on a screen.
   */
  private async screenshot(page: Page): Promise<Buffer> {
    let cdp = this.cdpSessions.get(page);
    if (!cdp) {
      cdp = page.context().newCDPSession(page);
      this.cdpSessions.set(page, cdp);
      cdp.catch(() => this.cdpSessions.delete(page));
    }
    const session = await withTimeout(cdp, OBSERVE_TIMEOUT_MS, 'the screenshot');
    const shot = await withTimeout(
      session.send('Page.captureScreenshot', { format: 'png', optimizeForSpeed: true }),
      OBSERVE_TIMEOUT_MS,
      'the screenshot',
    );
    return Buffer.from(shot.data, 'base64');
  }

  /** What the screenshot is, and what x and y mean on it. */
  private screenLine(scale: number): string {
    const { width, height } = this.config.viewport;
    const units =
      this.config.coordinates === 'css'
        ? `x, y in CSS pixels from its top-left corner (0–${width - 1}, 0–${height - 1})`
        : 'x, y on a 0–1000 grid from its top-left corner to its bottom-right one';
    const marks = this.config.marks ? '; boxes marked with their element refs' : '';
    return `Screenshot: the viewport, ${width}×${height} CSS pixels (device scale ${scale}); ${units}${marks}.`;
  }

  /** The page while a dialog waits on the agent: the page's script is stopped, so only what the browser knows. */
  private observeDialog(page: Page, dialog: Dialog, result?: { ok: boolean; text: string }): ToolOutput {
    const events = this.events;
    this.events = [];
    const eventsDropped = this.eventsDropped;
    this.eventsDropped = 0;
    const prompt =
      dialog.type() === 'prompt' ? ` (default answer ${JSON.stringify(dialog.defaultValue())})` : '';
    const text = formatObservation({
      ...(result ? { result } : {}),
      url: page.url(),
      title: this.lastTitle,
      events,
      eventsDropped,
      dialog: `${dialog.type()} "${dialog.message()}"${prompt} is open and the page waits for it: answer it with browser_dialog (accept: true for OK, false for Cancel).`,
    });
    return { text, ...(result && !result.ok ? { isError: true } : {}) };
  }

  /** The first page as the agent's first message shows it, with its screenshot when the task asks. */
  async initialObservation(options: { signal: AbortSignal }): Promise<InitialObservation> {
    const output = await this.observe(options.signal);
    const lead =
      this.config.actions === 'none'
        ? 'The browser shows this page'
        : this.config.snapshot
          ? 'The browser shows this page (act on elements by their ref, e.g. ref "e5")'
          : 'The browser shows this page (act on it by points of the screenshot)';
    return { text: `${lead}:\n${output.text}`, ...(output.images ? { images: output.images } : {}) };
  }

  /**
   * A point of the agent's (in its units) as CSS pixels of the viewport.
   *
   * @throws ActionRefused when the point lies outside the screenshot.
   */
  toViewport(point: Point): Point {
    const { width, height } = this.config.viewport;
    if (this.config.coordinates === 'css') {
      // The last pixel column is width − 1: a point at x = width is past the screenshot.
      if (!(point.x >= 0 && point.y >= 0 && point.x < width && point.y < height)) {
        throw new ActionRefused(
          `(${point.x}, ${point.y}) is outside the screenshot (0–${width - 1} across, 0–${height - 1} down)`,
        );
      }
      return point;
    }
    if (!(point.x >= 0 && point.y >= 0 && point.x <= 1000 && point.y <= 1000)) {
      throw new ActionRefused(`(${point.x}, ${point.y}) is outside the screenshot (0–1000 on both axes)`);
    }
    // The grid's far edge (1000) is the screenshot's last pixel.
    const css = toCss(point, this.config);
    return { x: Math.min(css.x, width - 1), y: Math.min(css.y, height - 1) };
  }

  /**
   * Where a coordinate action points, in CSS pixels; kept, with the grounding targets'
   * boxes measured on the page just before the action, for grounding rewards.
   *
   * @throws ActionRefused when the point lies outside the screenshot.
   */
  async pointAt(page: Page, point: Point, tool: string, turnIndex: number): Promise<Point> {
    const css = this.toViewport(point);
    const targets = this.config.grounding
      ? await measureTargets(page, this.config.grounding.targets, this.config.actionTimeoutMs)
      : [];
    this.pointing.push({ turnIndex, tool, point: css, targets });
    return css;
  }

  /** The coordinate actions of the episode so far (of one turn, when given). */
  pointingActions(turnIndex?: number): readonly PointingAction[] {
    return turnIndex === undefined
      ? this.pointing
      : this.pointing.filter((item) => item.turnIndex === turnIndex);
  }

  /** The pages of the episode's tabs, in the order the browser opened them. */
  private tabs(): Page[] {
    return this.parts.lease.context.pages().filter((page) => !page.isClosed());
  }

  /** The tabs, one line each: index, title, URL, and which is shown. */
  async describeTabs(): Promise<string> {
    const tabs = this.tabs();
    const lines = await Promise.all(
      tabs.map(async (page, index) => {
        const title = await withTimeout(page.title(), OBSERVE_TIMEOUT_MS, 'the tab').catch(() => '');
        return `[${index}] ${title === '' ? '(no title)' : title} — ${page.url()}${page === this.current ? ' (shown)' : ''}`;
      }),
    );
    return `Tabs:\n${lines.join('\n')}`;
  }

  /** Shows tab `index`. */
  async switchTab(index: number): Promise<string> {
    const tab = this.tabs()[index];
    if (!tab)
      throw new ActionRefused(
        `there is no tab ${index} (there are ${this.tabs().length}: use browser_tabs list)`,
      );
    this.current = tab;
    await tab.bringToFront();
    return `Switched to tab ${index} (${tab.url()}).`;
  }

  /** Closes tab `index`; closing the shown one shows the newest left. */
  async closeTab(index: number): Promise<string> {
    const tabs = this.tabs();
    const tab = tabs[index];
    if (!tab)
      throw new ActionRefused(`there is no tab ${index} (there are ${tabs.length}: use browser_tabs list)`);
    if (tabs.length === 1) throw new ActionRefused('this is the last tab: it cannot be closed');
    await tab.close({ runBeforeUnload: false });
    if (tab === this.current) {
      this.current = this.tabs().at(-1)!;
      await this.current.bringToFront();
    }
    return `Closed tab ${index}.`;
  }

  /** Answers the dialog the page waits on, lets the action that opened it finish, and observes. */
  answerDialog(signal: AbortSignal, accept: boolean, text?: string): Promise<ToolOutput> {
    return this.act(
      signal,
      async () => {
        const dialog = this.pendingDialog;
        if (!dialog) throw new ActionRefused('no dialog is open');
        this.pendingDialog = undefined;
        if (accept) await dialog.accept(text);
        else await dialog.dismiss();
        const interrupted = this.interrupted;
        this.interrupted = undefined;
        await interrupted;
        const answered =
          accept && text !== undefined && dialog.type() === 'prompt' ? ` with ${JSON.stringify(text)}` : '';
        return `${accept ? 'Accepted' : 'Dismissed'} the ${dialog.type()} dialog "${dialog.message()}"${answered}.`;
      },
      { duringDialog: true },
    );
  }

  /**
   * The file on the host behind an upload name the agent gave (as the task lists it, or
   * its last part).
   *
   * @throws ActionRefused for a file the task does not provide.
   */
  uploadPath(name: string): string {
    const uploads = this.config.uploads;
    const found =
      uploads.find((upload) => upload.name === name) ??
      uploads.find((upload) => upload.name.split('/').at(-1) === name);
    if (!found) {
      throw new ActionRefused(
        `${name} is not a file of this task: choose among ${uploads.map((upload) => upload.name).join(', ')}`,
      );
    }
    return found.path;
  }

  /**
   * Resolves a reference-solution call that names elements where its tool takes points:
   * `at: <target>` (→ x, y), `from:`/`to:` (→ from_x, from_y, to_x, to_y), and a submitted
   * answer `{ point_of: <target> }` or `{ box_of: <target> }` (→ "(x, y)" / "[x1, y1, x2, y2]").
   * The point is the centre of the visible part of the element's box, in the task's units.
   */
  async resolveReference(
    call: { name: string; arguments: Record<string, unknown> },
    options: { signal: AbortSignal },
  ): Promise<Record<string, unknown> | undefined> {
    const args = call.arguments;
    const wanted =
      ['at', 'from', 'to'].some((key) => key in args) ||
      (call.name === 'submit' && typeof args.answer === 'object' && args.answer !== null);
    if (!wanted) return undefined;
    throwIfAborted(options.signal);
    let page = await this.page();
    const boxOf = async (value: unknown, where: string): Promise<Box> => {
      const parsed = GroundingTargetSchema.safeParse(value);
      if (!parsed.success) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `solution ${call.name}.${where}: expected { selector }, { role, name } or { box }`,
        );
      }
      let box = await measureTarget(page, parsed.data, this.config.actionTimeoutMs).catch(() => undefined);
      // A window the last action opened may arrive after the action's grace (a loaded
      // machine): a solution written for the new tab waits for it, up to POPUP_WAIT_MS.
      const waitUntil = performance.now() + POPUP_WAIT_MS;
      while (!box && this.config.popups !== 'block' && performance.now() < waitUntil) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const now = await this.page();
        if (now === page) continue;
        page = now;
        await this.settleUnlessDialog(page, {
          timeoutMs: this.config.settleTimeoutMs,
          navigationsBefore: -1,
          signal: options.signal,
        });
        box = await measureTarget(page, parsed.data, this.config.actionTimeoutMs).catch(() => undefined);
      }
      if (!box) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `solution ${call.name}.${where}: ${describeTarget(parsed.data)} names no single visible element on ${page.url()}`,
        );
      }
      return box;
    };
    const pointOf = async (value: unknown, where: string): Promise<Point> =>
      toAgentUnits(visibleCentre(await boxOf(value, where), this.config.viewport), this.config);
    const out: Record<string, unknown> = { ...args };
    if ('at' in args) {
      const point = await pointOf(args.at, 'at');
      delete out.at;
      Object.assign(out, point);
    }
    if ('from' in args) {
      const point = await pointOf(args.from, 'from');
      delete out.from;
      Object.assign(out, { from_x: point.x, from_y: point.y });
    }
    if ('to' in args) {
      const point = await pointOf(args.to, 'to');
      delete out.to;
      Object.assign(out, { to_x: point.x, to_y: point.y });
    }
    if (call.name === 'submit' && typeof args.answer === 'object' && args.answer !== null) {
      const answer = args.answer as Record<string, unknown>;
      if ('point_of' in answer) {
        const point = await pointOf(answer.point_of, 'answer.point_of');
        out.answer = `(${point.x}, ${point.y})`;
      } else if ('box_of' in answer) {
        const box = await boxOf(answer.box_of, 'answer.box_of');
        const a = toAgentUnits({ x: box.x1, y: box.y1 }, this.config);
        const b = toAgentUnits({ x: box.x2, y: box.y2 }, this.config);
        out.answer = `[${a.x}, ${a.y}, ${b.x}, ${b.y}]`;
      }
    }
    return out;
  }

  /**
   * The scorer's value on the page as it is now (see scorer.ts). A scorer that throws
   * scores 0. Undefined when the task has no scorer.
   *
   * @throws PaddockError SANDBOX_FAILED (retryable) when the browser broke;
   *   VERIFIER_FAILED when the scorer returned something that is not a score; ABORTED.
   */
  async scoreNow(signal: AbortSignal): Promise<number | undefined> {
    return (await this.scoreWithNote(signal))?.value;
  }

  /**
   * The page's score under the name `browser`: a number, or `{ value, note }` when the
   * scorer said why (or threw: value 0, note `scorer threw: …`). Nothing when the task has
   * no scorer.
   *
   * @throws PaddockError as `scoreNow`.
   */
  async score(options: {
    signal: AbortSignal;
    answer?: string;
  }): Promise<Record<string, number | SessionScore>> {
    // The page waits on a dialog nobody answered: the scorer could not run in it.
    if (this.pendingDialog) {
      const dialog = this.pendingDialog;
      this.pendingDialog = undefined;
      await withTimeout(dialog.dismiss(), OBSERVE_TIMEOUT_MS, 'the dialog').catch(() => undefined);
    }
    const scores: Record<string, number | SessionScore> = {};
    if (this.config.grounding && Object.keys(this.config.grounding.rewards).length > 0) {
      // The answer is about the page as it was shown: the targets' boxes measured with its
      // screenshot (measured now when none was taken).
      let target = this.shownTargets?.[0];
      if (this.shownTargets === undefined) {
        const page = await this.page();
        target = await measureTarget(page, this.config.grounding.targets[0]!, OBSERVE_TIMEOUT_MS).catch(
          () => undefined,
        );
      }
      Object.assign(scores, scoreAnswer(options.answer, target, this.config));
    }
    const score = await this.scoreWithNote(options.signal);
    if (score !== undefined) {
      scores.browser = score.note === undefined ? score.value : { value: score.value, note: score.note };
    }
    return scores;
  }

  /** Runs the scorer on the page as it is now: its value and note (see `scoreNow`). */
  private async scoreWithNote(signal: AbortSignal): Promise<ScorerScore | undefined> {
    const scorer = this.parts.scorer;
    if (!scorer) return undefined;
    throwIfAborted(signal);
    if (this.hungNote !== undefined) {
      this.lastScore = 0;
      return { value: 0, note: this.hungNote };
    }
    // The page's script waits on a dialog the agent has not answered: nothing on the page
    // changed since it opened, and a scorer could not run in it.
    if (this.pendingDialog) {
      return {
        value: this.lastScore ?? 0,
        note: 'a dialog was open: the page was scored as it was before it',
      };
    }
    let outcome: ScorerOutcome;
    try {
      const page = await this.page();
      outcome = await evaluateScorer(this.parts.lease.context, page, scorer, {
        timeoutMs: this.config.scoreTimeoutMs,
        signal,
      });
    } catch (error) {
      await this.rethrowFault(error, signal);
      // The page navigated away while the scorer ran, or could not host a world: nothing to score.
      outcome = { kind: 'threw', message: describeError(error) };
    }
    if (outcome.kind === 'invalid') {
      throw new PaddockError(ERROR_CODES.VERIFIER_FAILED, outcome.message, {
        details: { scorer: scorer.origin },
      });
    }
    let score: ScorerScore;
    if (outcome.kind === 'timeout') {
      const closed = await this.closeHungPage();
      score = { value: 0, note: `scorer timed out: ${outcome.message}; ${closed}` };
      this.hungNote = `${score.note} (the episode scores 0 from then on)`;
    } else if (outcome.kind === 'score') {
      score = { value: outcome.value, ...(outcome.note === undefined ? {} : { note: outcome.note }) };
    } else {
      score = { value: 0, note: threwNote(outcome.message) };
    }
    this.lastScore = score.value;
    return score;
  }

  /**
   * Closes the page the agent sees after its main thread stopped answering (a scorer that
   * timed out), so that its renderer stops spinning: the browser closes the target
   * without asking the page (no `beforeunload`), which works on a renderer that answers
   * nothing. The next action or observation gets the previous page or a blank one. Says
   * in a few words what happened, for the score's note. Never rejects.
   */
  private async closeHungPage(): Promise<string> {
    const page = this.current;
    if (page.isClosed()) return 'the page was already closed';
    try {
      await withTimeout(
        page.close({ runBeforeUnload: false }),
        HUNG_PAGE_CLOSE_TIMEOUT_MS,
        'closing the page',
      );
      this.note('the page stopped answering (its main thread is busy) and was closed');
      return 'the page was closed';
    } catch (error) {
      // The episode's context is closed at the end anyway; this one only ended early.
      return `the page could not be closed (${describeError(error)})`;
    }
  }

  /** Closes the context (and every page in it) and stops the site. Idempotent; never rejects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.activity.dispose();
      await withTimeout(this.parts.lease.context.close(), 10_000, 'closing the context').catch(
        () => undefined,
      );
      await this.parts.site?.close().catch(() => undefined);
      this.parts.onClose?.();
    })();
    return this.closing;
  }
}
