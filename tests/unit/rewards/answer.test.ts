import { describe, expect, it } from 'vitest';
import { answerMatches, answerReward, extractNumber, normalizeAnswer } from '../../../rewards/index.ts';
import { makeTask } from '../../fakes/tasks.ts';
import { makeEpisode } from '../../fixtures/rewards/records.ts';

describe('normalizeAnswer', () => {
  it('ignores case, punctuation and whitespace', () => {
    expect(normalizeAnswer('  The  Eiffel-Tower! ')).toBe('the eiffel tower');
  });
});

describe('extractNumber', () => {
  it.each([
    ['42', 42],
    ['The answer is 42.', 42],
    ['-3.5', -3.5],
    ['1,234,567.5 apples', 1234567.5],
    ['3/4', 0.75],
    ['50%', 0.5],
    ['about 1e-3', 0.001],
    ['first 7 then 9', 9],
  ])('reads %s as %d', (text, value) => {
    expect(extractNumber(text)).toBeCloseTo(value, 12);
  });

  it('returns undefined without a number', () => {
    expect(extractNumber('forty-two')).toBeUndefined();
  });
});

describe('answerMatches', () => {
  it('exact compares trimmed text', () => {
    expect(answerMatches(' Paris ', 'Paris', { match: 'exact' })).toBe(true);
    expect(answerMatches('paris', 'Paris', { match: 'exact' })).toBe(false);
  });

  it('normalized forgives case, punctuation and spacing', () => {
    expect(answerMatches('paris.', 'Paris', { match: 'normalized' })).toBe(true);
    expect(answerMatches('Lyon', 'Paris')).toBe(false);
  });

  it('numeric accepts values within the tolerance', () => {
    expect(answerMatches('The answer is 42.0000001', '42', { match: 'numeric', tolerance: 1e-6 })).toBe(true);
    expect(answerMatches('42.01', '42', { match: 'numeric', tolerance: 1e-6 })).toBe(false);
    expect(answerMatches('105', '100', { match: 'numeric', relativeTolerance: 0.05 })).toBe(true);
    expect(answerMatches('no idea', '42', { match: 'numeric' })).toBe(false);
  });

  it('regex searches the answer with the given flags', () => {
    expect(answerMatches('Answer: B', '^answer:\\s*b$', { match: 'regex', flags: 'i' })).toBe(true);
    expect(answerMatches('Answer: C', '^answer:\\s*b$', { match: 'regex', flags: 'i' })).toBe(false);
  });
});

describe('answerReward', () => {
  const signal = new AbortController().signal;

  it('is 1 when episode.answer matches one of the accepted answers, else 0', async () => {
    const fn = answerReward({ expected: ['42', 'forty-two'], match: 'normalized' });
    const score = (answer?: string) =>
      fn.score({ task: makeTask(), episode: makeEpisode(answer === undefined ? {} : { answer }), signal });
    expect(await score('Forty two')).toBe(1);
    expect(await score('42')).toBe(1);
    expect(await score('41')).toBe(0);
    expect(await score(undefined)).toBe(0);
  });

  it('accepts a number as the expected answer', async () => {
    const fn = answerReward({ expected: 0.5, match: 'numeric' });
    expect(await fn.score({ task: makeTask(), episode: makeEpisode({ answer: '1/2' }), signal })).toBe(1);
    expect(fn.name).toBe('answer');
  });
});
