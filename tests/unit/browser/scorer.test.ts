import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  NOTE_MAX_CHARS,
  THREW_NOTE_MAX_CHARS,
  scoreValue,
  scorerProgram,
  scorerScore,
  threwNote,
} from '../../../sandboxes/browser/index.ts';

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

describe('scorerScore', () => {
  it('reads a bare score as scoreValue does, without a note', () => {
    expect(scorerScore(true)).toEqual({ value: 1 });
    expect(scorerScore(false)).toEqual({ value: 0 });
    expect(scorerScore(0.25)).toEqual({ value: 0.25 });
  });

  it('reads exactly { score, note? }: the score as a bare one, a string note kept when it says something', () => {
    expect(scorerScore({ score: 0.5, note: 'the e-mail field holds ada@' })).toEqual({
      value: 0.5,
      note: 'the e-mail field holds ada@',
    });
    expect(scorerScore({ score: true, note: 'sent' })).toEqual({ value: 1, note: 'sent' });
    expect(scorerScore({ score: false })).toEqual({ value: 0 });
    expect(scorerScore({ score: 0.75, note: '' })).toEqual({ value: 0.75 });
    const long = scorerScore({ score: 0, note: 'x'.repeat(NOTE_MAX_CHARS + 50) })!;
    expect(long.note).toHaveLength(NOTE_MAX_CHARS);
    expect(long.note!.endsWith('x…')).toBe(true);
    // Nothing but a score and a string note.
    for (const value of [
      { score: 'x' },
      { note: 'y' },
      { score: 1, note: 2 },
      { score: 1, note: null },
      { score: Number.NaN },
      { score: Number.POSITIVE_INFINITY, note: 'n' },
      { score: null },
      { score: { score: 1 } },
      { score: 1, notes: 'a typo' },
      [{ score: 1 }],
      undefined,
      'yes',
    ]) {
      expect(scorerScore(value), JSON.stringify(value)).toBeUndefined();
    }
  });
});

describe('threwNote', () => {
  it("says the scorer threw, with the error's message and without its stack frames", () => {
    const error = new TypeError("Cannot read properties of null (reading 'value')");
    expect(threwNote(error.stack!)).toBe(
      "scorer threw: TypeError: Cannot read properties of null (reading 'value')",
    );
    expect(threwNote('the scorer did not finish within 10000 ms')).toBe(
      'scorer threw: the scorer did not finish within 10000 ms',
    );
  });

  it('keeps a message on one line and clips a long one', () => {
    expect(threwNote('Error: first\n\n  second\tthird\n    at <anonymous>:3:9')).toBe(
      'scorer threw: Error: first second third',
    );
    const note = threwNote(`Error: ${'x'.repeat(1000)}`);
    expect(note).toHaveLength('scorer threw: '.length + THREW_NOTE_MAX_CHARS);
    expect(note).toMatch(/^scorer threw: Error: x+…$/);
    expect(threwNote('')).toBe('scorer threw: no message');
  });
});
