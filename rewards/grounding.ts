/**
 * GUI-grounding rewards: pure formulas that score where an agent pointed on a screenshot
 * against the box of the element it was asked to find. No browser, no I/O: the caller
 * brings the target box (from the page, the dataset row, the accessibility tree) and the
 * agent's answer (`parseGroundingAnswer` reads what models write).
 *
 * Coordinates are CSS pixels of the screenshot the agent saw: origin top-left, x right,
 * y down. Boxes are `{ x1, y1, x2, y2 }` with x1 < x2 and y1 < y2; a box that is empty,
 * inverted or not finite is refused with an error naming it.
 *
 * Sources (the README's "GUI-grounding rewards" section gives each equation):
 * - GUI-G²: Tang et al. 2025, "GUI-G²: Gaussian Reward Modeling for GUI Grounding",
 *   arXiv 2507.15846 (Eqs. 2–5, α = 0.5).
 * - HyperClick: Zhang et al. 2025, "HyperClick: Advancing Reliable GUI Grounding via
 *   Uncertainty Calibration", arXiv 2510.27266 (v2 Eqs. 1–5, α = 1/4).
 * - GUI-G1: Zhou et al. 2025, "GUI-G1: Understanding R1-Zero-Like Training for Visual
 *   Grounding in GUI Agents", arXiv 2505.15810 (Table 1, R_Box; R_Hit + 0.25·R_IoU + 0.125·R_Box).
 */

/** A position on the screenshot, in CSS pixels (origin top-left). */
export interface Point {
  x: number;
  y: number;
}

/** An axis-aligned box on the screenshot, in CSS pixels: x1 < x2, y1 < y2. */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** The size of the screenshot (or of the page viewport it shows), in CSS pixels. */
export interface Viewport {
  width: number;
  height: number;
}

/** What an agent answered: a point, a box, or both, and optionally its confidence in [0, 1]. */
export interface GroundingAnswer {
  point?: Point;
  box?: Box;
  confidence?: number;
}

/** GUI-G²'s adaptive-variance factor: σx = α·w, σy = α·h (arXiv 2507.15846, §4.1 and Fig. 5). */
export const GUI_G2_ALPHA = 0.5;

/** HyperClick's adaptive-variance factor: the best of α ∈ {1/2, 1/4, 1/6} (arXiv 2510.27266, Table 6). */
export const HYPERCLICK_ALPHA = 0.25;

/** The default normalised grid (Qwen2-VL, UI-TARS): coordinates 0–1000 on each axis. */
export const NORMALISED_GRID = 1000;

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

function formatBox(box: Box): string {
  return `[${box.x1}, ${box.y1}, ${box.x2}, ${box.y2}]`;
}

/** Why `box` is not a usable box (not finite, zero-size, inverted), or undefined when it is. */
function boxProblem(box: Box, what: string): string | undefined {
  if (![box.x1, box.y1, box.x2, box.y2].every(Number.isFinite)) {
    return `${what} ${formatBox(box)} has a coordinate that is not a finite number`;
  }
  if (box.x1 === box.x2 || box.y1 === box.y2) {
    return `${what} ${formatBox(box)} has zero ${box.x1 === box.x2 ? 'width' : 'height'}: it needs x1 < x2 and y1 < y2`;
  }
  if (box.x1 > box.x2 || box.y1 > box.y2)
    return `${what} ${formatBox(box)} is inverted: it needs x1 < x2 and y1 < y2`;
  return undefined;
}

function pointProblem(point: Point, what: string): string | undefined {
  if (Number.isFinite(point.x) && Number.isFinite(point.y)) return undefined;
  return `${what} (${point.x}, ${point.y}) has a coordinate that is not a finite number`;
}

function checkBox(box: Box, what: string): void {
  const problem = boxProblem(box, what);
  if (problem !== undefined) throw new RangeError(problem);
}

function checkPoint(point: Point, what: string): void {
  const problem = pointProblem(point, what);
  if (problem !== undefined) throw new RangeError(problem);
}

function checkPositive(value: number, what: string): void {
  if (!(Number.isFinite(value) && value > 0))
    throw new RangeError(`${what} must be a positive number, got ${value}`);
}

function checkConfidence(confidence: number): void {
  if (!(Number.isFinite(confidence) && confidence >= 0 && confidence <= 1)) {
    throw new RangeError(`confidence must be a number in [0, 1], got ${confidence}`);
  }
}

// ---------------------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------------------

/** The centre of a box. */
export function boxCentre(box: Box): Point {
  return { x: (box.x1 + box.x2) / 2, y: (box.y1 + box.y2) / 2 };
}

/** Whether `point` lies in `box`, edges included. */
function inside(point: Point, box: Box): boolean {
  return point.x >= box.x1 && point.x <= box.x2 && point.y >= box.y1 && point.y <= box.y2;
}

/**
 * 1 when the point lies in the target box, edges included; else 0. The success criterion
 * of ScreenSpot-style benchmarks, and GUI-G1's R_Hit when the point is a predicted box's centre.
 */
export function hitReward(point: Point, target: Box): 0 | 1 {
  checkPoint(point, 'point');
  checkBox(target, 'target box');
  return inside(point, target) ? 1 : 0;
}

/** Intersection over union of two boxes (areas in CSS pixels²); 0 when they only touch or are apart. */
export function iouReward(predicted: Box, target: Box): number {
  checkBox(predicted, 'predicted box');
  checkBox(target, 'target box');
  const width = Math.min(predicted.x2, target.x2) - Math.max(predicted.x1, target.x1);
  const height = Math.min(predicted.y2, target.y2) - Math.max(predicted.y1, target.y1);
  if (width <= 0 || height <= 0) return 0;
  const intersection = width * height;
  const area = (box: Box): number => (box.x2 - box.x1) * (box.y2 - box.y1);
  return intersection / (area(predicted) + area(target) - intersection);
}

// ---------------------------------------------------------------------------------------
// GUI-G² (arXiv 2507.15846)
// ---------------------------------------------------------------------------------------

/** Options of the Gaussian rewards. */
export interface GaussianOptions {
  /** σx = α·(x2 − x1), σy = α·(y2 − y1) (GUI-G² Eq. 5). @default 0.5 */
  alpha?: number;
}

function sigmas(box: Box, alpha: number): { sx: number; sy: number } {
  return { sx: alpha * (box.x2 - box.x1), sy: alpha * (box.y2 - box.y1) };
}

function alphaOf(options: { alpha?: number }, fallback: number): number {
  const alpha = options.alpha ?? fallback;
  checkPositive(alpha, 'alpha');
  return alpha;
}

/** exp(−½((x−cx)²/σx² + (y−cy)²/σy²)) for the target's Gaussian with σ = α·size. */
function gaussianAt(point: Point, target: Box, alpha: number): number {
  const centre = boxCentre(target);
  const { sx, sy } = sigmas(target, alpha);
  const dx = (point.x - centre.x) / sx;
  const dy = (point.y - centre.y) / sy;
  return Math.exp(-0.5 * (dx * dx + dy * dy));
}

/**
 * GUI-G²'s Gaussian point reward (arXiv 2507.15846, Eq. 2): the target is a 2-D Gaussian
 * centred on its box centre with size-adaptive standard deviations σx = α·w, σy = α·h
 * (Eq. 5, α = 0.5), and the reward is its unnormalised density at the point,
 * exp(−½((x−cx)²/σx² + (y−cy)²/σy²)): exactly 1 at the centre, exp(−½) one σ off.
 * GUI-G² scores the centre of a predicted box this way.
 */
export function gaussianPointReward(point: Point, target: Box, options: GaussianOptions = {}): number {
  checkPoint(point, 'point');
  checkBox(target, 'target box');
  return gaussianAt(point, target, alphaOf(options, GUI_G2_ALPHA));
}

/** Options of the Gaussian coverage reward. */
export interface CoverageOptions extends GaussianOptions {
  /**
   * `bhattacharyya`: the paper's coverage reward, the Bhattacharyya coefficient between the
   * predicted box's Gaussian and the target's (GUI-G² Eqs. 3–4). `mass`: the probability mass
   * of the target's Gaussian inside the predicted box — a reading some summaries give, which
   * rewards ever larger boxes (see the README). @default 'bhattacharyya'
   */
  measure?: 'bhattacharyya' | 'mass';
}

/**
 * GUI-G²'s Gaussian coverage reward (arXiv 2507.15846, Eqs. 3–4): each box becomes a
 * Gaussian (centre, σ = α·size), and the reward is their Bhattacharyya coefficient,
 * BC = exp(−⅛ Δμᵀ Σ̄⁻¹ Δμ − ½ ln(det Σ̄ / √(det Σp · det Σgt))), Σ̄ = (Σp + Σgt)/2.
 * 1 only when the boxes coincide; it falls with centre distance and with size mismatch, so
 * neither growing nor shrinking the box pays. With `measure: 'mass'`: the mass of the
 * target's Gaussian inside the predicted box, Π ½[erf((b−c)/(σ√2)) − erf((a−c)/(σ√2))].
 */
export function gaussianCoverageReward(predicted: Box, target: Box, options: CoverageOptions = {}): number {
  checkBox(predicted, 'predicted box');
  checkBox(target, 'target box');
  const alpha = alphaOf(options, GUI_G2_ALPHA);
  const g = boxCentre(target);
  const gs = sigmas(target, alpha);
  if ((options.measure ?? 'bhattacharyya') === 'mass') {
    const axis = (a: number, b: number, c: number, s: number): number =>
      0.5 * (erf((b - c) / (s * Math.SQRT2)) - erf((a - c) / (s * Math.SQRT2)));
    return axis(predicted.x1, predicted.x2, g.x, gs.sx) * axis(predicted.y1, predicted.y2, g.y, gs.sy);
  }
  const p = boxCentre(predicted);
  const ps = sigmas(predicted, alpha);
  // Diagonal covariances: the coefficient factors by axis. For one axis with standard
  // deviations s1, s2 and centre distance d, v = (s1² + s2²)/2:
  // exp(−d²/(8v) − ½ ln(v/(s1·s2))) = √(s1·s2/v) · exp(−d²/(8v)).
  const axis = (d: number, s1: number, s2: number): number => {
    const v = (s1 * s1 + s2 * s2) / 2;
    return Math.sqrt((s1 * s2) / v) * Math.exp((-d * d) / (8 * v));
  };
  return axis(p.x - g.x, ps.sx, gs.sx) * axis(p.y - g.y, ps.sy, gs.sy);
}

/**
 * The error function, erf(x) = 2/√π ∫₀ˣ e^(−t²) dt, to about 1e-15 absolute. For |x| < 6 it
 * sums the series erf(x) = 2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)) (Abramowitz &
 * Stegun 7.1.6), whose terms are all positive, so nothing cancels; beyond, erf(x) = ±1 to
 * double precision (erfc(6) ≈ 2e-17).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === 0) return x; // keeps −0
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  if (a >= 6) return sign;
  const twoX2 = 2 * a * a;
  let term = a;
  let sum = a;
  for (let n = 1; n < 500; n++) {
    term *= twoX2 / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sign * Math.min(1, (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum);
}

// ---------------------------------------------------------------------------------------
// HyperClick (arXiv 2510.27266)
// ---------------------------------------------------------------------------------------

/** Options of the HyperClick reward. */
export interface HyperClickOptions {
  /** σx = α·(x2 − x1), σy = α·(y2 − y1) of the spatial-confidence target (Eq. 2). @default 0.25 */
  alpha?: number;
  /** Weight of the confidence-alignment term; the paper sums the terms unweighted (Eq. 5). @default 1 */
  confidenceWeight?: number;
}

/**
 * HyperClick's spatial-confidence target C(p) (arXiv 2510.27266, Eqs. 1–2): the target's
 * Gaussian exp(−½((x−cx)²/σx² + (y−cy)²/σy²)), σ = α·size with α = 1/4, truncated to the
 * box — 0 outside it. 1 at the centre; exp(−2) at the middle of an edge with α = 1/4.
 */
export function hyperClickSpatialConfidence(
  point: Point,
  target: Box,
  options: HyperClickOptions = {},
): number {
  checkPoint(point, 'point');
  checkBox(target, 'target box');
  const alpha = alphaOf(options, HYPERCLICK_ALPHA);
  return inside(point, target) ? gaussianAt(point, target, alpha) : 0;
}

/**
 * The confidence-alignment term 1 − (c − C)² (HyperClick Eq. 4): one minus the Brier score
 * of the stated confidence c against the spatial-confidence target C. In [0, 1].
 */
export function confidenceAlignment(confidence: number, spatialConfidence: number): number {
  checkConfidence(confidence);
  if (!(spatialConfidence >= 0 && spatialConfidence <= 1)) {
    throw new RangeError(`spatial confidence must be in [0, 1], got ${spatialConfidence}`);
  }
  const gap = confidence - spatialConfidence;
  return 1 - gap * gap;
}

/**
 * HyperClick's reward without its format term (arXiv 2510.27266, Eqs. 3–5):
 * R = 1[p ∈ box] + w·(1 − (c − C(p))²), w = `confidenceWeight` (1). In [0, 1 + w].
 * `confidence` is the agent's stated confidence in [0, 1]; when it stated none the
 * alignment term is 0, so stating any confidence pays at least as much as stating none.
 */
export function hyperClickReward(
  point: Point,
  target: Box,
  confidence: number | undefined,
  options: HyperClickOptions = {},
): number {
  const spatial = hyperClickSpatialConfidence(point, target, options);
  const correctness = inside(point, target) ? 1 : 0;
  if (confidence === undefined) return correctness;
  const weight = options.confidenceWeight ?? 1;
  if (!(Number.isFinite(weight) && weight >= 0)) {
    throw new RangeError(`confidenceWeight must be a number ≥ 0, got ${weight}`);
  }
  return correctness + weight * confidenceAlignment(confidence, spatial);
}

// ---------------------------------------------------------------------------------------
// GUI-G1 (arXiv 2505.15810)
// ---------------------------------------------------------------------------------------

/** Options of the box-size constraint. */
export interface BoxSizeOptions {
  /** The screenshot's size: the paper normalises each coordinate error by the image width or height. */
  viewport: Viewport;
}

/**
 * GUI-G1's box-size constraint R_Box (arXiv 2505.15810, Table 1 and §3.2): the harmonic
 * mean of the four coordinate agreements 1 − |x̂1 − x1|/W, 1 − |x̂2 − x2|/W, 1 − |ŷ1 − y1|/H,
 * 1 − |ŷ2 − y2|/H, i.e. R_Box = 4 / (Σ 1/(1 − |error|/size)). 1 only for the target box
 * itself; a box that grows or shrinks loses on every side that moved. An agreement ≤ 0
 * (an error of a whole screen) gives 0. The paper adds it to R_Hit + 0.25·R_IoU with weight
 * 0.125 and reports that R_Box alone does not train.
 */
export function boxSizeConstraint(predicted: Box, target: Box, options: BoxSizeOptions): number {
  checkBox(predicted, 'predicted box');
  checkBox(target, 'target box');
  const { width, height } = options.viewport;
  checkPositive(width, 'viewport width');
  checkPositive(height, 'viewport height');
  const agreements = [
    1 - Math.abs(predicted.x1 - target.x1) / width,
    1 - Math.abs(predicted.x2 - target.x2) / width,
    1 - Math.abs(predicted.y1 - target.y1) / height,
    1 - Math.abs(predicted.y2 - target.y2) / height,
  ];
  if (agreements.some((agreement) => agreement <= 0)) return 0;
  return 4 / agreements.reduce((sum, agreement) => sum + 1 / agreement, 0);
}

// ---------------------------------------------------------------------------------------
// Normalised coordinates
// ---------------------------------------------------------------------------------------

function checkGrid(viewport: Viewport, grid: number): void {
  checkPositive(viewport.width, 'viewport width');
  checkPositive(viewport.height, 'viewport height');
  checkPositive(grid, 'grid');
}

function scale<T extends Point | Box>(value: T, sx: number, sy: number): T {
  if ('x1' in value) {
    return { x1: value.x1 * sx, y1: value.y1 * sy, x2: value.x2 * sx, y2: value.y2 * sy } as T;
  }
  return { x: value.x * sx, y: value.y * sy } as T;
}

/**
 * A point or box on a normalised grid (0–`grid` on each axis, 1000 for Qwen2-VL and
 * UI-TARS) in CSS pixels of a viewport: x_css = x / grid · width, y_css = y / grid · height.
 * Not for models that answer in pixels of their resized input (Qwen2.5-VL): scale those by
 * viewport / input size instead.
 */
export function normalisedToCss<T extends Point | Box>(
  value: T,
  viewport: Viewport,
  grid = NORMALISED_GRID,
): T {
  checkGrid(viewport, grid);
  return scale(value, viewport.width / grid, viewport.height / grid);
}

/** The inverse of `normalisedToCss`: x = x_css / width · grid, y = y_css / height · grid. */
export function cssToNormalised<T extends Point | Box>(
  value: T,
  viewport: Viewport,
  grid = NORMALISED_GRID,
): T {
  checkGrid(viewport, grid);
  return scale(value, grid / viewport.width, grid / viewport.height);
}

// ---------------------------------------------------------------------------------------
// Parsing what models write
// ---------------------------------------------------------------------------------------

const NUMBER = String.raw`[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?`;
const NUMBER_G = new RegExp(NUMBER, 'g');
const EXACT_NUMBER = new RegExp(String.raw`^\s*${NUMBER}\s*$`);

/** Characters of a `{` … `}` candidate read as JSON (longer objects are not grounding answers). */
const MAX_JSON_CHARS = 10_000;

const EXAMPLE = 'answer with a point such as {"x": 120, "y": 45} or a box such as [x1, y1, x2, y2]';

type Located = GroundingAnswer | { error: string };

interface Candidate {
  index: number;
  result: Located;
}

function fromNumbers(numbers: readonly number[], form: string): Located {
  if (!numbers.every(Number.isFinite)) return { error: `${form}: coordinates must be finite numbers` };
  if (numbers.length === 2) return { point: { x: numbers[0] as number, y: numbers[1] as number } };
  if (numbers.length === 4) {
    const [x1, y1, x2, y2] = numbers as [number, number, number, number];
    const box = { x1, y1, x2, y2 };
    const problem = boxProblem(box, 'box');
    return problem === undefined ? { box } : { error: problem };
  }
  return { error: `${form} holds ${numbers.length} numbers: give 2 (a point) or 4 (a box)` };
}

function numbersIn(text: string): number[] {
  return (text.match(NUMBER_G) ?? []).map(Number);
}

/** The first match of `pattern` in `text` as a candidate, read by `read`. */
function firstMatch(
  text: string,
  pattern: RegExp,
  read: (match: RegExpExecArray) => Located,
): Candidate | undefined {
  const match = pattern.exec(text);
  return match === null ? undefined : { index: match.index, result: read(match) };
}

/** A JSON value as a number: a number, or a string holding one. */
function jsonNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && EXACT_NUMBER.test(value)) return Number(value);
  return undefined;
}

function jsonNumbers(value: unknown): number[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const numbers = value.map(jsonNumber);
  return numbers.every((n) => n !== undefined) ? numbers : undefined;
}

const POINT_KEYS = ['point', 'point_2d', 'coordinate'] as const;
const BOX_KEYS = ['box', 'bbox', 'bbox_2d'] as const;

/** A parsed JSON object as an answer, or undefined when it holds none of the known keys. */
function fromJsonObject(object: Record<string, unknown>): Located | undefined {
  let located: Located | undefined;
  const x = jsonNumber(object.x);
  const y = jsonNumber(object.y);
  if (x !== undefined && y !== undefined) located = fromNumbers([x, y], 'JSON "x", "y"');
  for (const key of POINT_KEYS) {
    if (located !== undefined || !(key in object)) continue;
    const numbers = jsonNumbers(object[key]);
    located =
      numbers?.length === 2
        ? fromNumbers(numbers, `JSON "${key}"`)
        : { error: `JSON "${key}" must be an array of 2 numbers [x, y]` };
  }
  for (const key of BOX_KEYS) {
    if (located !== undefined || !(key in object)) continue;
    const numbers = jsonNumbers(object[key]);
    located =
      numbers?.length === 4
        ? fromNumbers(numbers, `JSON "${key}"`)
        : { error: `JSON "${key}" must be an array of 4 numbers [x1, y1, x2, y2]` };
  }
  if (located === undefined || 'error' in located || !('confidence' in object)) return located;
  const confidence = jsonNumber(object.confidence);
  if (confidence === undefined) return { error: 'JSON "confidence" must be a number in [0, 1], such as 0.8' };
  return { ...located, confidence };
}

/** The end (exclusive) of the balanced `{…}` starting at `start`, or undefined. */
function closingBrace(text: string, start: number): number | undefined {
  let depth = 0;
  let inString = false;
  const end = Math.min(text.length, start + MAX_JSON_CHARS);
  for (let i = start; i < end; i++) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{') depth++;
    else if (char === '}' && --depth === 0) return i + 1;
  }
  return undefined;
}

function firstJson(text: string): Candidate | undefined {
  for (let start = text.indexOf('{'); start >= 0; start = text.indexOf('{', start + 1)) {
    const end = closingBrace(text, start);
    if (end === undefined) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.slice(start, end));
    } catch {
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) continue;
    const result = fromJsonObject(parsed as Record<string, unknown>);
    if (result !== undefined) return { index: start, result };
  }
  return undefined;
}

/** The forms other than JSON, most specific first (earlier wins a tie at the same index). */
const TEXT_FORMS: ReadonlyArray<{ pattern: RegExp; read: (match: RegExpExecArray) => Located }> = [
  {
    // UI-TARS: click(start_box='(x,y)'), also '<|box_start|>(x,y)<|box_end|>' or four numbers inside.
    pattern: /\bstart_box\s*=\s*(['"])(.*?)\1/s,
    read: (match) => fromNumbers(numbersIn(match[2] ?? ''), 'start_box'),
  },
  {
    // UI-TARS / computer-use: click(x=120, y=45)
    pattern: new RegExp(String.raw`\b[A-Za-z_]\w*\(\s*x\s*=\s*(${NUMBER})\s*,\s*y\s*=\s*(${NUMBER})`),
    read: (match) => fromNumbers([Number(match[1]), Number(match[2])], 'x=…, y=…'),
  },
  {
    // Qwen2-VL: <|box_start|>(x1,y1),(x2,y2)<|box_end|>
    pattern: /<\|box_start\|>(.*?)<\|box_end\|>/s,
    read: (match) => fromNumbers(numbersIn(match[1] ?? ''), '<|box_start|>'),
  },
  {
    // <point>x y</point>, also <point>[x, y]</point>
    pattern: /<point>(.*?)<\/point>/is,
    read: (match) => fromNumbers(numbersIn(match[1] ?? ''), '<point>'),
  },
  {
    // [x1, y1, x2, y2] or [x, y]
    pattern: new RegExp(
      String.raw`\[\s*(${NUMBER})\s*,\s*(${NUMBER})\s*(?:,\s*(${NUMBER})\s*,\s*(${NUMBER})\s*)?\]`,
    ),
    read: (match) =>
      fromNumbers(
        match
          .slice(1)
          .filter((group) => group !== undefined)
          .map(Number),
        '[…]',
      ),
  },
  {
    // (x, y)
    pattern: new RegExp(String.raw`\(\s*(${NUMBER})\s*,\s*(${NUMBER})\s*\)`),
    read: (match) => fromNumbers([Number(match[1]), Number(match[2])], '(x, y)'),
  },
];

const TEXT_CONFIDENCE = new RegExp(
  String.raw`<confidence>\s*(${NUMBER})\s*</confidence>|\bconfidence["']?\s*[:=]\s*["']?(${NUMBER})`,
  'i',
);

/**
 * Reads a grounding answer the way models write it: JSON `{"x": …, "y": …}`,
 * `{"point": [x, y]}` (also `point_2d`, `coordinate`), `{"box": [x1, y1, x2, y2]}` (also
 * `bbox`, `bbox_2d`); `(x, y)`; `[x, y]`; `[x1, y1, x2, y2]`; `<point>x y</point>`;
 * `<|box_start|>(x1,y1),(x2,y2)<|box_end|>` (Qwen2-VL); `click(x=…, y=…)` and
 * `click(start_box='(x,y)')` (UI-TARS). The form that starts first in the text wins; text
 * around it is ignored. A confidence comes from the JSON object's `"confidence"`, else
 * from the first `confidence: 0.8` (or `=`) or `<confidence>0.8</confidence>` in the text.
 * Returns `{ error }`, a message an agent can act on, when nothing parses, a box is empty or
 * inverted, a number is not finite, or the confidence is outside [0, 1].
 */
export function parseGroundingAnswer(text: string): GroundingAnswer | { error: string } {
  const candidates: Candidate[] = [];
  const json = firstJson(text);
  if (json !== undefined) candidates.push(json);
  for (const form of TEXT_FORMS) {
    const candidate = firstMatch(text, form.pattern, form.read);
    if (candidate !== undefined) candidates.push(candidate);
  }
  // The earliest form in the text; at the same index, JSON first, then TEXT_FORMS' order.
  const chosen = candidates.reduce<Candidate | undefined>(
    (best, candidate) => (best === undefined || candidate.index < best.index ? candidate : best),
    undefined,
  );
  if (chosen === undefined) return { error: `no point or box found: ${EXAMPLE}` };
  const result = chosen.result;
  if ('error' in result) return result;
  let confidence = result.confidence;
  if (confidence === undefined) {
    const match = TEXT_CONFIDENCE.exec(text);
    if (match !== null) confidence = Number(match[1] ?? match[2]);
  }
  if (confidence === undefined) return result;
  if (!(Number.isFinite(confidence) && confidence >= 0 && confidence <= 1)) {
    return { error: `confidence ${confidence} is outside [0, 1]: give a number such as 0.8` };
  }
  return { ...result, confidence };
}

// ---------------------------------------------------------------------------------------
// Dispatcher
// ---------------------------------------------------------------------------------------

/** The grounding rewards `groundingReward` knows. */
export const GROUNDING_REWARD_KINDS = [
  'hit',
  'gaussian_point',
  'gaussian_coverage',
  'hyperclick',
  'box_size',
  'iou',
] as const;

/** One of `GROUNDING_REWARD_KINDS`. */
export type GroundingRewardKind = (typeof GROUNDING_REWARD_KINDS)[number];

/** Options of every kind together; each kind reads its own. */
export interface GroundingRewardOptions extends CoverageOptions, HyperClickOptions {
  /** GUI-G²'s α for `gaussian_point` / `gaussian_coverage` (0.5), HyperClick's for `hyperclick` (0.25). */
  alpha?: number;
  /** The screenshot's size; required by `box_size`. */
  viewport?: Viewport;
}

/** A reward value, with a note when the answer lacked what the kind scores. */
export interface GroundingRewardResult {
  value: number;
  note?: string;
}

const POINT_KINDS: ReadonlySet<GroundingRewardKind> = new Set(['hit', 'gaussian_point', 'hyperclick']);

/** Why the answer's own values are unusable, or undefined. */
function answerProblem(answer: GroundingAnswer): string | undefined {
  if (answer.point !== undefined) {
    const problem = pointProblem(answer.point, 'the answer point');
    if (problem !== undefined) return problem;
  }
  if (answer.box !== undefined) {
    const problem = boxProblem(answer.box, 'the answer box');
    if (problem !== undefined) return problem;
  }
  const confidence = answer.confidence;
  if (confidence !== undefined && !(Number.isFinite(confidence) && confidence >= 0 && confidence <= 1)) {
    return `the answer confidence ${confidence} is outside [0, 1]`;
  }
  return undefined;
}

/**
 * Scores an answer against the target box with the reward `kind`.
 *
 * - Point kinds (`hit`, `gaussian_point`, `hyperclick`) score `answer.point`; given only a
 *   box they score its centre (what GUI-G² and GUI-G1 do with a predicted box), with a note.
 * - Box kinds (`gaussian_coverage`, `box_size`, `iou`) score `answer.box`; given only a point
 *   they are 0, with a note: a point is a zero-size box, whose IoU and Gaussian coverage are
 *   0 in the limit, and `box_size` gives it 0 too rather than credit a collapsed box.
 * - `hyperclick` without a confidence scores correctness alone, with a note.
 * - An answer with nothing usable (no point or box, a non-finite value, an empty or inverted
 *   box, a confidence outside [0, 1]) is 0, with a note saying why.
 *
 * A bad target box or bad options (a missing `viewport` for `box_size`) are the task's
 * errors, not the agent's: they throw.
 */
export function groundingReward(
  kind: GroundingRewardKind,
  answer: GroundingAnswer,
  target: Box,
  options: GroundingRewardOptions = {},
): GroundingRewardResult {
  checkBox(target, 'target box');
  if (!GROUNDING_REWARD_KINDS.includes(kind)) {
    throw new RangeError(
      `unknown grounding reward "${String(kind)}": one of ${GROUNDING_REWARD_KINDS.join(', ')}`,
    );
  }
  if (kind === 'box_size' && options.viewport === undefined) {
    throw new RangeError('box_size needs options.viewport (the screenshot size): R_Box normalises by it');
  }
  const problem = answerProblem(answer);
  if (problem !== undefined) return { value: 0, note: problem };
  if (answer.point === undefined && answer.box === undefined) {
    return { value: 0, note: 'the answer has no point or box' };
  }

  if (POINT_KINDS.has(kind)) {
    let point = answer.point;
    const notes: string[] = [];
    if (point === undefined && answer.box !== undefined) {
      point = boxCentre(answer.box);
      notes.push(`scored the centre (${point.x}, ${point.y}) of the answer box`);
    }
    if (point === undefined) return { value: 0, note: 'the answer has no point or box' };
    let value: number;
    if (kind === 'hit') value = hitReward(point, target);
    else if (kind === 'gaussian_point') value = gaussianPointReward(point, target, options);
    else {
      if (answer.confidence === undefined) notes.push('no confidence stated: the alignment term is 0');
      value = hyperClickReward(point, target, answer.confidence, options);
    }
    return notes.length === 0 ? { value } : { value, note: notes.join('; ') };
  }

  if (answer.box === undefined)
    return { value: 0, note: `${kind} scores a box; the answer gave only a point` };
  if (kind === 'gaussian_coverage') return { value: gaussianCoverageReward(answer.box, target, options) };
  if (kind === 'iou') return { value: iouReward(answer.box, target) };
  return { value: boxSizeConstraint(answer.box, target, { viewport: options.viewport as Viewport }) };
}
