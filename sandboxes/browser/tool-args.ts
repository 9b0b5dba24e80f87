/** Arguments the browser tools share: how an element is named. */
import { z } from 'zod';
import type { Target } from './session.ts';

export const refField = z
  .string()
  .min(1)
  .optional()
  .describe('The element\'s ref from the latest page snapshot, e.g. "e12".');

export const selectorField = z
  .string()
  .min(1)
  .optional()
  .describe(
    'Instead of a ref: a CSS selector, or role=button[name="Buy"], or text=Buy. Must match one element.',
  );

/** True when exactly one of ref and selector is given. */
export function exactlyOneTarget(value: Target): boolean {
  return (value.ref === undefined) !== (value.selector === undefined);
}

export const ONE_TARGET = { error: 'give exactly one of ref or selector', path: ['ref'] };

export const directionField = z.enum(['up', 'down', 'left', 'right']).optional().describe('Default down.');

export const amountField = z
  .number()
  .int()
  .positive()
  .max(100_000)
  .optional()
  .describe('Pixels. Default: 80% of the viewport.');

/** What a scroll's direction and amount (default 80% of the viewport) mean in pixels. */
export function scrollDelta(
  args: { direction?: 'up' | 'down' | 'left' | 'right' | undefined; amount?: number | undefined },
  viewport: { width: number; height: number },
): { direction: string; amount: number; dx: number; dy: number } {
  const direction = args.direction ?? 'down';
  const vertical = direction === 'up' || direction === 'down';
  const amount = args.amount ?? Math.round((vertical ? viewport.height : viewport.width) * 0.8);
  const sign = direction === 'up' || direction === 'left' ? -1 : 1;
  return { direction, amount, dx: vertical ? 0 : sign * amount, dy: vertical ? sign * amount : 0 };
}
