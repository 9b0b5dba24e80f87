/**
 * What the agent reads after every browser action, as plain functions of their inputs
 * (no browser needed, so they are unit-tested on their own):
 *
 * - `trimSnapshot`: bounds an accessibility snapshot (Playwright's `ariaSnapshot({ mode:
 *   'ai', boxes: true })`) to a character budget. A page that fits is shown whole; a longer
 *   one is cut to a window that starts at the viewport (so scrolling shows the rest), keeps
 *   the ancestors of that window for context, and says what it left out.
 * - `formatObservation`: the last action's result, URL, title, page events and snapshot.
 * - `summarizeActionError`: a Playwright error cut to the sentence an agent can act on.
 */

/** A box in CSS pixels relative to the viewport, as `[box=x,y,width,height]` gives it. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One line of a snapshot, without its box annotation. */
export interface SnapshotLine {
  text: string;
  /** Leading spaces. */
  indent: number;
  /** The element's box, where the line names an element. */
  box?: Box;
}

const BOX_PATTERN = / \[box=(-?[\d.]+),(-?[\d.]+),(-?[\d.]+),(-?[\d.]+)\]/;

/** Splits a snapshot into lines, taking each `[box=…]` annotation off its line. */
export function parseSnapshot(snapshot: string): SnapshotLine[] {
  if (snapshot.trim() === '') return [];
  return snapshot.split('\n').map((raw) => {
    const match = BOX_PATTERN.exec(raw);
    const text = match ? raw.replace(BOX_PATTERN, '') : raw;
    const indent = text.length - text.trimStart().length;
    if (!match) return { text, indent };
    const [x, y, width, height] = match.slice(1, 5).map(Number) as [number, number, number, number];
    return { text, indent, box: { x, y, width, height } };
  });
}

/** A snapshot cut to its budget. */
export interface TrimmedSnapshot {
  /** The text shown, with `… N lines not shown` markers where lines were left out. */
  text: string;
  trimmed: boolean;
  totalLines: number;
  shownLines: number;
  /** Lines left out before the first shown line of the window (above the viewport). */
  hiddenAbove: number;
  /** Lines left out after the last shown line (below). */
  hiddenBelow: number;
}

export interface TrimOptions {
  /** Budget of the shown text, in characters. */
  maxChars: number;
  /** Longest single line; longer ones end with `…`. @default 400 */
  maxLineChars?: number;
}

function capLine(text: string, maxLineChars: number): string {
  return text.length <= maxLineChars ? text : `${text.slice(0, maxLineChars - 1)}…`;
}

/**
 * The box each line is placed by: its own, except inside an iframe, whose boxes are
 * relative to the iframe's viewport and so are replaced by the iframe's box.
 */
function placementBoxes(lines: readonly SnapshotLine[]): (Box | undefined)[] {
  const frames: { indent: number; box: Box | undefined }[] = [];
  return lines.map((line) => {
    while (frames.length > 0 && line.indent <= frames[frames.length - 1]!.indent) frames.pop();
    const placed = frames.length > 0 ? frames[frames.length - 1]!.box : line.box;
    if (/^\s*- iframe\b/.test(line.text)) frames.push({ indent: line.indent, box: placed });
    return placed;
  });
}

/** The first line whose element starts at or below the top of the viewport. */
function viewportAnchor(lines: readonly SnapshotLine[]): number {
  const boxes = placementBoxes(lines);
  let lastAbove = 0;
  for (const [index, box] of boxes.entries()) {
    if (!box || (box.width <= 0 && box.height <= 0)) continue;
    if (box.y >= 0) return index;
    if (box.y + box.height > 0) lastAbove = index;
  }
  return lastAbove;
}

/**
 * Cuts a snapshot to `maxChars`. See the module comment. Lines are never cut in the
 * middle except when one alone is longer than `maxLineChars`.
 */
export function trimSnapshot(snapshot: string, options: TrimOptions): TrimmedSnapshot {
  const maxLineChars = options.maxLineChars ?? 400;
  const lines = parseSnapshot(snapshot).map((line) => ({ ...line, text: capLine(line.text, maxLineChars) }));
  const total = lines.reduce((sum, line) => sum + line.text.length + 1, 0);
  if (total <= options.maxChars) {
    return {
      text: lines.map((line) => line.text).join('\n'),
      trimmed: false,
      totalLines: lines.length,
      shownLines: lines.length,
      hiddenAbove: 0,
      hiddenBelow: 0,
    };
  }
  const anchor = viewportAnchor(lines);
  // Room for the gap markers the rendering inserts.
  let budget = options.maxChars - 120;
  const shown = new Set<number>();
  const take = (index: number): boolean => {
    const cost = lines[index]!.text.length + 1;
    if (cost > budget) return false;
    budget -= cost;
    shown.add(index);
    return true;
  };
  // The anchor's ancestors first: short lines that say where the window sits.
  let indent = lines[anchor]!.indent;
  const ancestors: number[] = [];
  for (let index = anchor - 1; index >= 0 && indent > 0; index--) {
    if (lines[index]!.indent < indent) {
      ancestors.push(index);
      indent = lines[index]!.indent;
    }
  }
  for (const index of ancestors.reverse()) if (!take(index)) break;
  let last = anchor - 1;
  for (let index = anchor; index < lines.length && take(index); index++) last = index;
  // The end of the page is in view: spend what is left on the lines above the window.
  if (last === lines.length - 1) {
    for (let index = anchor - 1; index >= 0; index--) if (!shown.has(index) && !take(index)) break;
  }

  const rendered: string[] = [];
  let hiddenAbove = 0;
  let hiddenBelow = 0;
  let gap = 0;
  let gapStart = 0;
  // A gap is marked at the indentation of the first line it stands for.
  const flush = () => {
    if (gap === 0) return;
    rendered.push(`${' '.repeat(lines[gapStart]!.indent)}- … ${gap} line${gap === 1 ? '' : 's'} not shown`);
    if (gapStart < anchor) hiddenAbove += gap;
    else hiddenBelow += gap;
    gap = 0;
  };
  for (const [index, line] of lines.entries()) {
    if (!shown.has(index)) {
      if (gap === 0) gapStart = index;
      gap++;
      continue;
    }
    flush();
    rendered.push(line.text);
  }
  flush();
  return {
    text: rendered.join('\n'),
    trimmed: true,
    totalLines: lines.length,
    shownLines: shown.size,
    hiddenAbove,
    hiddenBelow,
  };
}

/** What one observation is made of. */
export interface ObservationParts {
  /** What the last action did, or why it failed. Absent for the first observation. */
  result?: { ok: boolean; text: string };
  url: string;
  title: string;
  /** Things that happened since the last observation: dialogs, pop-ups, page errors, blocked requests. */
  events: readonly string[];
  /** Events left out before `events` (kept only the latest). @default 0 */
  eventsDropped?: number;
  /** True while the page has not fired `load` yet. */
  loading?: boolean;
  /** The snapshot, or why none could be taken; absent when observations show none (a GUI agent's). */
  snapshot?: TrimmedSnapshot | { error: string };
  /** What the screenshot is and what its coordinates mean, when one is attached. */
  screen?: string;
  /** A dialog the page shows and waits on (the agent answers it). */
  dialog?: string;
}

/** Most events listed in one observation; older ones are counted, not shown. */
export const MAX_EVENTS = 8;

/** Renders an observation as the text the agent reads. */
export function formatObservation(parts: ObservationParts): string {
  const lines: string[] = [];
  if (parts.result) lines.push(`${parts.result.ok ? 'Result' : 'Error'}: ${parts.result.text}`);
  lines.push(`URL: ${parts.url}`, `Title: ${parts.title === '' ? '(none)' : parts.title}`);
  if (parts.loading) lines.push('The page is still loading.');
  if (parts.events.length > 0) {
    lines.push('Events:');
    const skipped = Math.max(0, parts.events.length - MAX_EVENTS) + (parts.eventsDropped ?? 0);
    if (skipped > 0) lines.push(`- (${skipped} earlier event${skipped === 1 ? '' : 's'} not shown)`);
    for (const event of parts.events.slice(-MAX_EVENTS)) lines.push(`- ${capLine(event, 300)}`);
  }
  if (parts.dialog !== undefined) lines.push(`Dialog: ${parts.dialog}`);
  if (parts.screen !== undefined) lines.push(parts.screen);
  const snapshot = parts.snapshot;
  if (snapshot === undefined) {
    // A GUI agent reads the screenshot.
  } else if ('error' in snapshot) {
    lines.push(`Page snapshot unavailable: ${snapshot.error}`);
  } else if (snapshot.trimmed) {
    const where = [
      snapshot.hiddenAbove > 0 ? `${snapshot.hiddenAbove} above (scroll up)` : '',
      snapshot.hiddenBelow > 0 ? `${snapshot.hiddenBelow} below (scroll down)` : '',
    ].filter(Boolean);
    lines.push(
      `Page (trimmed to the viewport: ${snapshot.shownLines} of ${snapshot.totalLines} lines shown${where.length > 0 ? `; ${where.join(', ')}` : ''}):`,
      snapshot.text,
    );
  } else {
    lines.push('Page:', snapshot.text === '' ? '(empty)' : snapshot.text);
  }
  return lines.join('\n');
}

// eslint-disable-next-line no-control-regex -- ANSI colour codes are control characters
const ANSI = /\u001b\[[0-9;]*m/g;

/** Call-log lines that tell why an action could not happen, most useful first. */
const REASONS = [
  /intercepts pointer events/,
  /element is not visible/,
  /element is not enabled/,
  /element is not editable/,
  /element is outside of the viewport/,
  /element is not stable/,
  /did not find some options/,
  /not an? <[^>]+> element/,
  /element is not attached/,
];

/**
 * A Playwright error message cut to what an agent can act on: the first line without the
 * API name, plus the call-log line that says why the element was not actionable.
 */
export function summarizeActionError(message: string, maxChars = 600): string {
  const clean = message.replace(ANSI, '');
  const [first = '', ...rest] = clean.split('\n');
  let head = first
    .replace(/^[a-zA-Z]+\.[a-zA-Z]+: /, '')
    .replace(/^Error: /, '')
    .trim();
  head = head.replace(/locator\('aria-ref=([^']+)'\)/g, 'element $1');
  const log = rest.map((line) => line.trim().replace(/^- /, ''));
  let reason: string | undefined;
  for (const pattern of REASONS) {
    reason = log.findLast((line) => pattern.test(line));
    if (reason) break;
  }
  const strict = /strict mode violation/.test(head);
  if (strict) {
    const matches = log.filter((line) => /^\d+\) /.test(line)).slice(0, 3);
    if (matches.length > 0) reason = `first matches: ${matches.join('; ')}`;
  }
  const text = reason ? `${head} (${reason.replace(/^\d+ × /, '')})` : head;
  return capLine(text, maxChars);
}

/**
 * What a snapshot says about the element `ref`: its role and name as the snapshot prints
 * them (`button "Buy now"`), or undefined when the snapshot does not show it.
 */
export function describeRef(snapshot: string, ref: string): string | undefined {
  const marker = `[ref=${ref}]`;
  const line = snapshot.split('\n').find((candidate) => candidate.includes(marker));
  if (!line) return undefined;
  const head = line.trim().replace(/^- /, '');
  const cut = head.indexOf(' [');
  const description = (cut === -1 ? head.replace(/:.*$/, '') : head.slice(0, cut)).trim();
  return description === '' ? undefined : capLine(description, 120);
}
