/**
 * GUI grounding on the page: where the elements a task names are (their boxes, measured
 * in the page when the agent points, never typed by hand), the points an agent's
 * coordinate actions hit, and the scores of its answer or actions under the reward
 * formulas of rewards/grounding.ts (hit, GUI-G²'s Gaussian point and coverage rewards,
 * HyperClick's calibrated reward, GUI-G1's box-size constraint, IoU).
 *
 * Coordinates are CSS pixels of the viewport, as the screenshot shows it (origin top-left,
 * x right, y down); a task with `coordinates: normalized` speaks a 0–1000 grid over the
 * screenshot instead, converted here at the edge.
 */
import type { Page } from 'playwright-core';
import {
  gaussianPointReward,
  groundingReward,
  hitReward,
  normalisedToCss,
  parseGroundingAnswer,
  type Box,
  type Point,
} from '../../rewards/grounding.ts';
import type { BrowserTaskConfig, GroundingTarget } from './schema.ts';

export type { Box, Point };

/** A coordinate action the agent took: where it pointed and the targets' boxes just before. */
export interface PointingAction {
  turnIndex: number;
  tool: string;
  /** CSS pixels of the viewport. */
  point: Point;
  /** Each grounding target's box when the agent pointed (undefined: not on the page). */
  targets: (Box | undefined)[];
}

/** A target named as the task wrote it, for notes. */
export function describeTarget(target: GroundingTarget): string {
  if ('selector' in target) return `selector ${target.selector}`;
  if ('role' in target)
    return `role=${target.role}${target.name === undefined ? '' : ` name="${target.name}"`}`;
  return `box [${target.box.join(', ')}]`;
}

/**
 * The box of `target` on `page` now, in CSS pixels of the viewport; undefined when no
 * element matches (or several do: a target names one element).
 */
export async function measureTarget(
  page: Page,
  target: GroundingTarget,
  timeoutMs: number,
): Promise<Box | undefined> {
  if ('box' in target) {
    const [x1, y1, x2, y2] = target.box;
    return { x1, y1, x2, y2 };
  }
  const locator =
    'selector' in target
      ? page.locator(target.selector)
      : page.getByRole(target.role as Parameters<Page['getByRole']>[0], {
          ...(target.name === undefined ? {} : { name: target.name, exact: true }),
        });
  if ((await locator.count()) !== 1) return undefined;
  const box = await locator.boundingBox({ timeout: timeoutMs });
  if (!box || box.width <= 0 || box.height <= 0) return undefined;
  return { x1: box.x, y1: box.y, x2: box.x + box.width, y2: box.y + box.height };
}

/** The boxes of every target, in order. */
export function measureTargets(
  page: Page,
  targets: readonly GroundingTarget[],
  timeoutMs: number,
): Promise<(Box | undefined)[]> {
  return Promise.all(targets.map((target) => measureTarget(page, target, timeoutMs).catch(() => undefined)));
}

/**
 * The point to act on for an element: the centre of the part of its box inside the
 * viewport (an element half off-screen is clicked where it can be seen).
 */
export function visibleCentre(box: Box, viewport: { width: number; height: number }): Point {
  const x1 = Math.max(0, box.x1);
  const y1 = Math.max(0, box.y1);
  const x2 = Math.min(viewport.width, box.x2);
  const y2 = Math.min(viewport.height, box.y2);
  const [left, right] = x2 > x1 ? [x1, x2] : [box.x1, box.x2];
  const [top, bottom] = y2 > y1 ? [y1, y2] : [box.y1, box.y2];
  return { x: (left + right) / 2, y: (top + bottom) / 2 };
}

/** CSS pixels → the units the agent speaks (rounded to a pixel, or a grid step). */
export function toAgentUnits(
  point: Point,
  config: Pick<BrowserTaskConfig, 'coordinates' | 'viewport'>,
): Point {
  // Unrounded: the centre of an element is where a reference solution points, exactly.
  if (config.coordinates === 'css') return { x: point.x, y: point.y };
  return {
    x: Math.round((point.x / config.viewport.width) * 1000),
    y: Math.round((point.y / config.viewport.height) * 1000),
  };
}

/** The units the agent speaks → CSS pixels. */
export function toCss(point: Point, config: Pick<BrowserTaskConfig, 'coordinates' | 'viewport'>): Point {
  return config.coordinates === 'css' ? point : normalisedToCss(point, config.viewport);
}

/** A box in the agent's units → CSS pixels. */
export function boxToCss(box: Box, config: Pick<BrowserTaskConfig, 'coordinates' | 'viewport'>): Box {
  if (config.coordinates === 'css') return box;
  const a = normalisedToCss({ x: box.x1, y: box.y1 }, config.viewport);
  const b = normalisedToCss({ x: box.x2, y: box.y2 }, config.viewport);
  return { x1: a.x, y1: a.y, x2: b.x, y2: b.y };
}

/** A score with the reason it is what it is. */
export interface GroundingScore {
  value: number;
  weight: number;
  note?: string;
}

/**
 * The components `grounding.<kind>` of a submitted answer (a point or a box, in the
 * agent's units) against the first target, measured when the page was last shown.
 * An answer that does not parse, or a target not on the page, scores 0 with a note.
 */
export function scoreAnswer(
  answer: string | undefined,
  target: Box | undefined,
  config: Pick<BrowserTaskConfig, 'coordinates' | 'viewport' | 'grounding'>,
): Record<string, GroundingScore> {
  const kinds = Object.entries(config.grounding?.rewards ?? {});
  const scores: Record<string, GroundingScore> = {};
  const parsed = answer === undefined ? { error: 'no answer was submitted' } : parseGroundingAnswer(answer);
  for (const [kind, weight] of kinds) {
    const name = `grounding.${kind}`;
    if ('error' in parsed) {
      scores[name] = { value: 0, weight, note: `the answer gives no point or box: ${parsed.error}` };
      continue;
    }
    if (!target) {
      scores[name] = { value: 0, weight, note: 'the target was not on the page when it was shown' };
      continue;
    }
    const inCss = {
      ...(parsed.point ? { point: toCss(parsed.point, config) } : {}),
      ...(parsed.box ? { box: boxToCss(parsed.box, config) } : {}),
      ...(parsed.confidence === undefined ? {} : { confidence: parsed.confidence }),
    };
    const result = groundingReward(kind as Parameters<typeof groundingReward>[0], inCss, target, {
      viewport: config.viewport,
    });
    scores[name] = { value: result.value, weight, ...(result.note ? { note: result.note } : {}) };
  }
  return scores;
}

/**
 * The grounding reward of one turn's coordinate actions: each action is scored against
 * the current target (the first of the task's targets not hit yet, with its box measured
 * just before the action), and a hit moves on to the next target; the turn's value is the
 * mean over its actions, 0 for a turn without one. Keeps its place in the targets
 * between turns: open one per episode.
 */
export class GroundingTurnScorer {
  private next = 0;

  constructor(private readonly kind: 'hit' | 'gaussian_point') {}

  score(actions: readonly PointingAction[]): number {
    if (actions.length === 0) return 0;
    let sum = 0;
    for (const action of actions) {
      const box = action.targets[Math.min(this.next, action.targets.length - 1)];
      if (!box) continue;
      const hit = hitReward(action.point, box) === 1;
      sum += this.kind === 'hit' ? (hit ? 1 : 0) : gaussianPointReward(action.point, box);
      if (hit && this.next < action.targets.length - 1) this.next++;
    }
    return sum / actions.length;
  }
}
