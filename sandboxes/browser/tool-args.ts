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
