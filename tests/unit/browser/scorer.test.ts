import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { scoreValue, scorerProgram } from '../../../sandboxes/browser/index.ts';

/** Runs a scorer program in a fresh V8 context with `globals`, as the page's isolated world would. */
async function run(source: string, globals: Record<string, unknown> = {}): Promise<unknown> {
  return (await vm.runInNewContext(scorerProgram(source), { ...globals })) as unknown;
}

describe('scorerProgram', () => {
  it('evaluates an expression', async () => {
    expect(await run("title === 'Done'", { title: 'Done' })).toBe(true);
  });

  it('calls a function, sync or async, and awaits it', async () => {
    expect(await run('() => 0.5')).toBe(0.5);
    expect(await run('async () => { const x = await Promise.resolve(2); return x * 0.25; }')).toBe(0.5);
    expect(await run('function score() { return 1; }')).toBe(1);
  });

  it('accepts a leading export default, a trailing semicolon and comments on the last line', async () => {
    expect(await run('export default () => true;')).toBe(true);
    expect(await run('// solved when true\n() => true // the end')).toBe(true);
  });
});

describe('scoreValue', () => {
  it('counts booleans as 1 and 0 and finite numbers as themselves', () => {
    expect(scoreValue(true)).toBe(1);
    expect(scoreValue(false)).toBe(0);
    expect(scoreValue(0.25)).toBe(0.25);
  });

  it('refuses what is no score', () => {
    for (const value of [undefined, null, 'yes', Number.NaN, Number.POSITIVE_INFINITY, {}, [1]]) {
      expect(scoreValue(value)).toBeUndefined();
    }
  });
});
