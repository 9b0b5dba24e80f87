/**
 * Code that runs in the page, kept as source text: a function compiled from TypeScript
 * here would carry compiler helpers (such as the `__name` wrapper of name-keeping builds)
 * that do not exist in the page, and the page's DOM types are not this project's.
 */

/** Builds a function from its source text, so that Playwright sends exactly that text to the page. */
export function pageFunction<Arg, Result>(source: string): (element: unknown, arg: Arg) => Result {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- page code is kept as text on purpose (see above)
  return new Function(`return (${source});`)() as (element: unknown, arg: Arg) => Result;
}

/** Whether the first matched element can take a click at its centre right now. */
export type ClickState = 'ok' | 'hidden' | 'disabled' | 'offscreen' | 'covered' | 'frame';

/** What `PROBE` finds for a locator: how many elements match, and the state of the first. */
export interface Probe {
  count: number;
  state?: ClickState;
}

/**
 * Given the matched elements (or one element), counts them and checks, in one round
 * trip, whether the first one could be
 * clicked as it is: visible, enabled, inside the viewport, and the element hit at its
 * centre is itself or inside it. Anything else (and elements inside frames) takes
 * Playwright's full actionability checks.
 */
export const PROBE = pageFunction<void, Probe>(`(matched) => {
  const elements = Array.isArray(matched) ? matched : [matched];
  const element = elements[0];
  if (!element) return { count: 0 };
  const count = elements.length;
  if (window.top !== window) return { count, state: 'frame' };
  const style = getComputedStyle(element);
  const rect = element.getBoundingClientRect();
  if (style.visibility !== 'visible' || rect.width === 0 || rect.height === 0) return { count, state: 'hidden' };
  if (element.disabled === true || element.closest('[aria-disabled="true"], fieldset[disabled]')) return { count, state: 'disabled' };
  const x = rect.left + rect.width / 2;
  const y = rect.top + rect.height / 2;
  if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return { count, state: 'offscreen' };
  const root = element.getRootNode();
  const hit = (typeof root.elementFromPoint === 'function' ? root : document).elementFromPoint(x, y);
  if (!hit || (hit !== element && !element.contains(hit))) return { count, state: 'covered' };
  return { count, state: 'ok' };
}`);

/**
 * Scrolls the element's nearest scrollable ancestor (itself included; the document when
 * there is none) instantly, then waits one frame so that scroll handlers have run.
 */
export const SCROLL_ELEMENT = pageFunction<
  { dx: number; dy: number },
  Promise<void>
>(`(element, { dx, dy }) => {
  let node = element;
  while (node && node !== document.documentElement) {
    const style = getComputedStyle(node);
    const canY = dy !== 0 && node.scrollHeight > node.clientHeight && /(auto|scroll|overlay)/.test(style.overflowY);
    const canX = dx !== 0 && node.scrollWidth > node.clientWidth && /(auto|scroll|overlay)/.test(style.overflowX);
    if (canY || canX) break;
    node = node.parentElement;
  }
  if (!node || node === document.documentElement) node = document.scrollingElement || document.documentElement;
  node.scrollBy({ left: dx, top: dy, behavior: 'instant' });
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}`);

/** An expression that scrolls the whole page by (dx, dy) and waits one frame. */
export function scrollPageScript(dx: number, dy: number): string {
  return `(() => { (document.scrollingElement || document.documentElement).scrollBy({ left: ${dx}, top: ${dy}, behavior: 'instant' }); return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0))); })()`;
}
