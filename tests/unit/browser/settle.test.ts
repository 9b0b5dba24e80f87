import { describe, expect, it } from 'vitest';
import { playwrightTimeout } from '../../../sandboxes/browser/settle.ts';

describe('playwrightTimeout', () => {
  it('never turns time that is left into 0, which Playwright reads as no timeout', () => {
    expect(playwrightTimeout(0.0001)).toBe(1);
    expect(playwrightTimeout(1_499.2)).toBe(1_500);
    expect(playwrightTimeout(0)).toBe(0);
    expect(playwrightTimeout(-3)).toBe(0);
  });
});
