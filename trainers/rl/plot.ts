/**
 * The learning curve as a standalone SVG (no plotting library): training reward and pass
 * rate per step, held-out success at each evaluation, and a lower panel with entropy and
 * KL. Open the file in any browser.
 */

/** One series: points (x = step) and how to draw it. */
export interface PlotSeries {
  name: string;
  color: string;
  points: readonly { x: number; y: number }[];
  /** Draw markers at the points. @default false */
  markers?: boolean;
  /** Dashed line. @default false */
  dashed?: boolean;
}

export interface PlotPanel {
  title: string;
  series: readonly PlotSeries[];
  /** Fixed y range; computed from the data when absent. */
  yRange?: [number, number];
}

const WIDTH = 760;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 56, right: 170, top: 34, bottom: 36 };

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let value = Math.ceil(min / step) * step; value <= max + step * 1e-9; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  return ticks;
}

function panelSvg(panel: PlotPanel, top: number, xMin: number, xMax: number): string {
  const innerWidth = WIDTH - MARGIN.left - MARGIN.right;
  const innerHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const ys = panel.series.flatMap((series) => series.points.map((point) => point.y)).filter(Number.isFinite);
  const yMin = panel.yRange?.[0] ?? Math.min(0, ...ys);
  let yMax = panel.yRange?.[1] ?? Math.max(...ys, 1e-9);
  if (!(yMax > yMin)) yMax = yMin + 1;
  if (!panel.yRange) yMax += (yMax - yMin) * 0.05;
  const sx = (x: number): number => MARGIN.left + ((x - xMin) / (xMax - xMin || 1)) * innerWidth;
  const sy = (y: number): number =>
    top + MARGIN.top + innerHeight - ((y - yMin) / (yMax - yMin)) * innerHeight;
  const parts: string[] = [];
  parts.push(
    `<text x="${MARGIN.left}" y="${top + 20}" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`,
  );
  for (const tick of niceTicks(yMin, yMax)) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + innerWidth}" y1="${sy(tick)}" y2="${sy(tick)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${sy(tick) + 4}" font-size="11" text-anchor="end">${tick}</text>`,
    );
  }
  for (const tick of niceTicks(xMin, xMax, 8)) {
    parts.push(
      `<line x1="${sx(tick)}" x2="${sx(tick)}" y1="${top + MARGIN.top + innerHeight}" y2="${top + MARGIN.top + innerHeight + 4}" stroke="#333"/>`,
      `<text x="${sx(tick)}" y="${top + MARGIN.top + innerHeight + 16}" font-size="11" text-anchor="middle">${tick}</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${top + MARGIN.top}" width="${innerWidth}" height="${innerHeight}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + innerWidth / 2}" y="${top + PANEL_HEIGHT - 4}" font-size="11" text-anchor="middle">step</text>`,
  );
  panel.series.forEach((series, index) => {
    const points = series.points.filter((point) => Number.isFinite(point.y));
    if (points.length > 0) {
      const path = points.map(
        (point, i) => `${i === 0 ? 'M' : 'L'}${sx(point.x).toFixed(1)},${sy(point.y).toFixed(1)}`,
      );
      parts.push(
        `<path d="${path.join(' ')}" fill="none" stroke="${series.color}" stroke-width="1.8"${series.dashed ? ' stroke-dasharray="5,4"' : ''}/>`,
      );
      if (series.markers) {
        for (const point of points) {
          parts.push(
            `<circle cx="${sx(point.x).toFixed(1)}" cy="${sy(point.y).toFixed(1)}" r="3.5" fill="${series.color}"/>`,
          );
        }
      }
    }
    const ly = top + MARGIN.top + 12 + index * 18;
    const lx = MARGIN.left + innerWidth + 14;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${series.color}" stroke-width="2.5"${series.dashed ? ' stroke-dasharray="5,4"' : ''}/>`,
      `<text x="${lx + 28}" y="${ly}" font-size="12">${escapeXml(series.name)}</text>`,
    );
  });
  return parts.join('\n');
}

/** An SVG document with the panels stacked. */
export function renderPlot(title: string, panels: readonly PlotPanel[]): string {
  const xs = panels.flatMap((panel) =>
    panel.series.flatMap((series) => series.points.map((point) => point.x)),
  );
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const height = 30 + panels.length * PANEL_HEIGHT;
  const body = panels
    .map((panel, index) => panelSvg(panel, 30 + index * PANEL_HEIGHT, xMin, xMax))
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="20" font-size="15" text-anchor="middle">${escapeXml(title)}</text>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}

/** The metric rows the learning curve is drawn from (see train.ts). */
export interface CurveRow {
  type: string;
  step: number;
  [key: string]: unknown;
}

function series(rows: readonly CurveRow[], type: string, key: string): { x: number; y: number }[] {
  return rows
    .filter((row) => row.type === type && typeof row[key] === 'number')
    .map((row) => ({ x: row.step, y: row[key] as number }));
}

/** The learning curve of a training run's metric rows. */
export function learningCurveSvg(rows: readonly CurveRow[], title = 'paddock training'): string {
  return renderPlot(title, [
    {
      title: 'Reward and success',
      yRange: [0, 1],
      series: [
        { name: 'train reward', color: '#1f77b4', points: series(rows, 'train', 'reward_mean') },
        {
          name: 'train pass rate',
          color: '#aec7e8',
          points: series(rows, 'train', 'pass_rate'),
          dashed: true,
        },
        {
          name: 'held-out success',
          color: '#d62728',
          points: series(rows, 'eval', 'success'),
          markers: true,
        },
        {
          name: 'held-out (greedy)',
          color: '#ff9896',
          points: series(rows, 'eval', 'success_greedy'),
          markers: true,
          dashed: true,
        },
      ],
    },
    {
      title: 'Entropy and KL (per token)',
      series: [
        { name: 'entropy', color: '#2ca02c', points: series(rows, 'train', 'entropy') },
        { name: 'KL to reference', color: '#9467bd', points: series(rows, 'train', 'kl') },
      ],
    },
  ]);
}
