/**
 * Set-of-marks (Yang et al. 2023, arXiv 2310.11441; as WebVoyager and VisualWebArena use
 * it): the screenshot with a numbered box drawn around each interactive element, labelled
 * with the element's ref from the snapshot, so that a model can name what it sees.
 *
 * The marks are drawn on a copy of the screenshot in a page of its own (one per browser,
 * in a context of its own, used by one drawing at a time), never into the agent's page:
 * the page's scripts (a MutationObserver, the scorer) never see them.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { parseSnapshot } from './observation.ts';

/** Roles of elements a person acts on: the ones marked. */
const INTERACTIVE = new Set([
  'button',
  'link',
  'textbox',
  'searchbox',
  'checkbox',
  'radio',
  'combobox',
  'listbox',
  'option',
  'menuitem',
  'menuitemcheckbox',
  'menuitemradio',
  'tab',
  'slider',
  'spinbutton',
  'switch',
  'treeitem',
  'gridcell',
]);

/** A mark: the element's ref and its box in CSS pixels of the viewport. */
export interface Mark {
  ref: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The interactive elements of a snapshot (taken with `boxes: true`) that show in the viewport. */
export function marksOf(snapshot: string, viewport: { width: number; height: number }): Mark[] {
  const marks: Mark[] = [];
  for (const line of parseSnapshot(snapshot)) {
    const match = /^\s*- ([a-z]+)\b.*\[ref=(e\d+)\]/.exec(line.text);
    if (!match || !line.box || !INTERACTIVE.has(match[1]!)) continue;
    const { x, y, width, height } = line.box;
    if (
      width <= 0 ||
      height <= 0 ||
      x >= viewport.width ||
      y >= viewport.height ||
      x + width <= 0 ||
      y + height <= 0
    )
      continue;
    marks.push({ ref: match[2]!, x, y, width, height });
  }
  return marks;
}

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#800000'];

/** The page that draws marks, per browser. */
const painters = new WeakMap<Browser, { page: Promise<Page>; queue: Promise<unknown> }>();

/**
 * The screenshot with the marks of `snapshot` drawn on it (a PNG of the same size).
 * Rejects when drawing fails; the caller shows the plain screenshot then.
 */
export async function drawMarks(
  context: BrowserContext,
  png: Buffer,
  snapshot: string,
  viewport: { width: number; height: number },
): Promise<Buffer> {
  const marks = marksOf(snapshot, viewport);
  if (marks.length === 0) return png;
  const browser = context.browser();
  if (!browser) return png;
  let painter = painters.get(browser);
  if (!painter) {
    const page = browser
      .newContext({ viewport, javaScriptEnabled: false, offline: true })
      .then((made) => made.newPage());
    painter = { page, queue: Promise.resolve() };
    painters.set(browser, painter);
    page.catch(() => painters.delete(browser));
  }
  const run = painter.queue.then(async () => {
    const page = await painter.page;
    await page.setViewportSize(viewport);
    await page.setContent(overlayHtml(png, marks, viewport), { waitUntil: 'load', timeout: 5_000 });
    return page.screenshot({ type: 'png', timeout: 5_000, scale: 'css' });
  });
  painter.queue = run.catch(() => undefined);
  return run;
}

function overlayHtml(
  png: Buffer,
  marks: readonly Mark[],
  viewport: { width: number; height: number },
): string {
  const boxes = marks
    .map((mark, index) => {
      const colour = PALETTE[index % PALETTE.length]!;
      const labelTop = mark.y >= 14 ? -14 : 0;
      return (
        `<div style="position:absolute;left:${mark.x}px;top:${mark.y}px;width:${mark.width}px;height:${mark.height}px;` +
        `border:2px solid ${colour};box-sizing:border-box">` +
        `<span style="position:absolute;left:-2px;top:${labelTop}px;background:${colour};color:#fff;` +
        `font:bold 11px/14px sans-serif;padding:0 3px">${mark.ref}</span></div>`
      );
    })
    .join('');
  return (
    `<!doctype html><html><body style="margin:0;width:${viewport.width}px;height:${viewport.height}px;position:relative;overflow:hidden">` +
    `<img src="data:image/png;base64,${png.toString('base64')}" style="position:absolute;left:0;top:0;width:${viewport.width}px;height:${viewport.height}px">` +
    `${boxes}</body></html>`
  );
}
