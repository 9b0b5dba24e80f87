// @ts-check
/** Line charts as inline SVG, for a training run's learning curves. */

const SVG = 'http://www.w3.org/2000/svg';

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {string} [text]
 */
function s(tag, attrs, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * @typedef {{ name: string, color: string, points: { x: number, y: number }[], dashed?: boolean }} Series
 */

/** Round tick values between lo and hi. @param {number} lo @param {number} hi @param {number} count */
function ticks(lo, hi, count) {
  const span = hi - lo || 1;
  const step0 = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((m) => span / m <= count) ?? magnitude * 10;
  const values = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    values.push(Number(v.toPrecision(12)));
  return values;
}

/**
 * A line chart of several series over training steps.
 * @param {string} title
 * @param {Series[]} series
 * @param {{ width?: number, height?: number, yRange?: [number, number] }} [options]
 * @returns {SVGSVGElement}
 */
export function lineChart(title, series, options = {}) {
  const width = options.width ?? 560;
  const height = options.height ?? 320;
  const pad = { left: 52, right: 14, top: 28, bottom: 78 };
  const drawn = series.filter((one) => one.points.length > 0);
  const xs = drawn.flatMap((one) => one.points.map((p) => p.x));
  const ys = drawn.flatMap((one) => one.points.map((p) => p.y));
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  let [y0, y1] = options.yRange ?? (ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1]);
  if (options.yRange && ys.length) [y0, y1] = [Math.min(y0, ...ys), Math.max(y1, ...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const px = (/** @type {number} */ x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const py = (/** @type {number} */ y) =>
    height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const svg = /** @type {SVGSVGElement} */ (
    s('svg', {
      class: 'chart',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': title,
    })
  );
  svg.append(s('text', { x: pad.left, y: 17, class: 'title' }, title));
  for (const y of ticks(y0, y1, 5)) {
    svg.append(s('line', { x1: pad.left, x2: width - pad.right, y1: py(y), y2: py(y), stroke: '#eceff3' }));
    svg.append(s('text', { x: pad.left - 6, y: py(y) + 4, 'text-anchor': 'end' }, String(y)));
  }
  for (const x of ticks(x0, x1, 8).filter((x) => Number.isInteger(x))) {
    svg.append(s('text', { x: px(x), y: height - pad.bottom + 15, 'text-anchor': 'middle' }, String(x)));
  }
  svg.append(
    s(
      'text',
      { x: (pad.left + width - pad.right) / 2, y: height - pad.bottom + 29, 'text-anchor': 'middle' },
      'step',
    ),
  );
  svg.append(
    s('rect', {
      x: pad.left,
      y: pad.top,
      width: width - pad.left - pad.right,
      height: height - pad.top - pad.bottom,
      fill: 'none',
      stroke: '#c9ced6',
    }),
  );
  if (drawn.length === 0) {
    svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'no data'));
  }
  drawn.forEach((one) => {
    const d = one.points
      .map((p, i) => `${i ? 'L' : 'M'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`)
      .join(' ');
    const path = s('path', {
      d,
      fill: 'none',
      stroke: one.color,
      'stroke-width': 2,
      'data-series': one.name,
    });
    if (one.dashed) path.setAttribute('stroke-dasharray', '5 3');
    svg.append(path);
    for (const p of one.points) {
      const dot = s('circle', {
        cx: px(p.x),
        cy: py(p.y),
        r: one.points.length > 40 ? 1.5 : 3,
        fill: one.color,
      });
      dot.append(s('title', {}, `${one.name} at step ${p.x}: ${p.y.toPrecision(4)}`));
      svg.append(dot);
    }
  });
  // Legend under the plot, wrapping every three series.
  series.forEach((one, i) => {
    const lx = pad.left + (i % 3) * 165;
    const ly = height - pad.bottom + 50 + Math.floor(i / 3) * 15;
    svg.append(
      s('line', {
        x1: lx,
        x2: lx + 18,
        y1: ly - 4,
        y2: ly - 4,
        stroke: one.color,
        'stroke-width': 2,
        ...(one.dashed ? { 'stroke-dasharray': '5 3' } : {}),
      }),
    );
    svg.append(s('text', { x: lx + 22, y: ly }, one.points.length ? one.name : `${one.name} (none)`));
  });
  return svg;
}
