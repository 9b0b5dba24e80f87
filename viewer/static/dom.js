// @ts-check
/**
 * DOM and formatting helpers of the viewer's pages. Every text from a record goes in
 * through textContent (never innerHTML): transcripts hold whatever the agent wrote.
 */

/**
 * Makes an element: `h('a', { href: '#/' }, 'runs')`. Attributes starting with `on` are
 * listeners; `class`, `title`, `hidden` and the rest are set as attributes or properties.
 * @param {string} tag
 * @param {Record<string, unknown> | null} [attrs]
 * @param {...(Node | string | number | null | undefined | false | (Node | string | null | undefined | false)[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    } else if (key === 'value' && 'value' in element) {
      /** @type {HTMLInputElement} */ (element).value = String(value);
    } else if (key === 'checked' || key === 'selected') {
      /** @type {any} */ (element)[key] = Boolean(value);
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

/**
 * @param {Element} parent
 * @param {unknown[]} children
 */
function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Fetches JSON from the viewer's API; a failure throws with the server's message.
 * @param {string} url
 * @returns {Promise<any>}
 */
export async function api(url) {
  const response = await fetch(url);
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

/** @param {number | null | undefined} value @param {number} [digits] */
export function num(value, digits = 3) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** @param {number | null | undefined} value */
export function int(value) {
  return typeof value === 'number' ? value.toLocaleString('en-US') : '–';
}

/** @param {number | null | undefined} value */
export function usd(value) {
  if (typeof value !== 'number' || value === 0) return '–';
  return value < 0.01 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
}

/** @param {number | null | undefined} ms */
export function duration(ms) {
  if (typeof ms !== 'number') return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** @param {string | null | undefined} iso */
export function when(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().replace('T', ' ').slice(0, 19);
}

/**
 * A signed difference, green when better and red when worse.
 * @param {number | null | undefined} value
 * @param {number} [digits]
 * @param {boolean} [lowerIsBetter] true for spend (tokens, cost)
 */
export function diff(value, digits = 3, lowerIsBetter = false) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return h('span', { class: 'muted' }, '–');
  const text = `${value > 0 ? '+' : ''}${value.toFixed(digits)}`;
  const better = lowerIsBetter ? value < 0 : value > 0;
  return h('span', { class: value === 0 ? 'muted' : better ? 'pos' : 'neg' }, text);
}

/** @param {string} status */
export function statusTag(status) {
  return h('span', { class: `status status-${status}` }, status);
}

/** Characters shown before a long text is folded. */
const FOLD_CHARS = 1500;
/** Lines shown before a long text is folded. */
const FOLD_LINES = 24;

/**
 * A preformatted text, folded when long, with a "show all" button.
 * @param {string} text
 * @param {string} [className]
 */
export function folded(text, className) {
  const lines = text.split('\n');
  const long = text.length > FOLD_CHARS || lines.length > FOLD_LINES;
  if (!long) return h('pre', { class: className }, text);
  const short = lines.slice(0, FOLD_LINES).join('\n').slice(0, FOLD_CHARS);
  const pre = h('pre', { class: className }, short + ' …');
  const button = h(
    'button',
    {
      class: 'more',
      type: 'button',
      onclick: () => {
        const open = pre.dataset.open === '1';
        pre.textContent = open ? short + ' …' : text;
        pre.dataset.open = open ? '0' : '1';
        button.textContent = open ? `show all (${text.length.toLocaleString('en-US')} chars)` : 'show less';
      },
    },
    `show all (${text.length.toLocaleString('en-US')} chars)`,
  );
  return h('div', null, pre, button);
}

/** The URL fragment of a run: one encoded segment. @param {string} id */
export const enc = (id) => encodeURIComponent(id);
