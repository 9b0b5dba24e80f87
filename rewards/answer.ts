/**
 * Answer match: the answer the agent submitted (`episode.answer`, from the `submit` tool)
 * against the expected answer(s). Reads nothing else — not the sandbox, not the
 * transcript — so files or text the agent leaves elsewhere cannot change the score.
 * 1 when the answer matches one of the expected answers, else 0 (also without an answer).
 */
import type { TrajectoryRewardFunction } from '../harness/index.ts';
import type { ComponentOptions } from './rules.ts';
import type { AnswerMatch } from './schema.ts';

/** Answers longer than this many characters are cut before matching (bounds regex time). */
const MAX_ANSWER_CHARS = 10_000;

/** Lowercased, punctuation and symbols removed, whitespace collapsed, NFKC-normalised. */
export function normalizeAnswer(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const NUMBER_TOKEN =
  /[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\s*\/\s*\d+(?:\.\d+)?)?%?/g;

function toNumber(token: string): number | undefined {
  let text = token.replace('−', '-').replace(/,/g, '').replace(/\s+/g, '');
  const percent = text.endsWith('%');
  if (percent) text = text.slice(0, -1);
  let value: number;
  const slash = text.indexOf('/');
  if (slash >= 0) {
    const denominator = Number(text.slice(slash + 1));
    value = denominator === 0 ? Number.NaN : Number(text.slice(0, slash)) / denominator;
  } else {
    value = Number(text);
  }
  if (!/\d/.test(text) || !Number.isFinite(value)) return undefined;
  return percent ? value / 100 : value;
}

/**
 * The number an answer states: the whole text when it is one number, else the last
 * number in it (`The answer is 1,234.5` → 1234.5). Understands thousands separators,
 * fractions (`3/4`), percentages (`50%` → 0.5) and scientific notation.
 */
export function extractNumber(text: string): number | undefined {
  const tokens = text.match(NUMBER_TOKEN)?.filter((token) => /\d/.test(token)) ?? [];
  for (const token of tokens.reverse()) {
    const value = toNumber(token);
    if (value !== undefined) return value;
  }
  return undefined;
}

export interface AnswerMatchOptions {
  /** @default 'normalized' */
  match?: AnswerMatch;
  /** numeric: absolute tolerance. @default 1e-6 */
  tolerance?: number;
  /** numeric: relative tolerance (of the expected value). @default 0 */
  relativeTolerance?: number;
  /** regex: flags (`i`, `m`, `s`, `u`). */
  flags?: string;
}

/**
 * Whether `answer` matches `expected` (one accepted answer; for `regex`, a pattern
 * searched in the answer — anchor it with ^…$ for a full match).
 */
export function answerMatches(answer: string, expected: string, options: AnswerMatchOptions = {}): boolean {
  const given = answer.length > MAX_ANSWER_CHARS ? answer.slice(0, MAX_ANSWER_CHARS) : answer;
  switch (options.match ?? 'normalized') {
    case 'exact':
      return given.trim() === expected.trim();
    case 'normalized':
      return normalizeAnswer(given) === normalizeAnswer(expected);
    case 'numeric': {
      const want = extractNumber(expected);
      const got = extractNumber(given);
      if (want === undefined || got === undefined) return false;
      const tolerance = Math.max(
        options.tolerance ?? 1e-6,
        (options.relativeTolerance ?? 0) * Math.abs(want),
      );
      return Math.abs(got - want) <= tolerance;
    }
    case 'regex':
      return new RegExp(expected, options.flags ?? '').test(given.trim());
  }
}

export interface AnswerRewardOptions extends ComponentOptions, AnswerMatchOptions {
  /** The accepted answer(s). */
  expected: string | number | readonly (string | number)[];
}

/** A trajectory reward: 1 when `episode.answer` matches an accepted answer, else 0. */
export function answerReward(options: AnswerRewardOptions): TrajectoryRewardFunction {
  const expected = [options.expected].flat().map(String);
  return {
    name: options.name ?? 'answer',
    weight: options.weight ?? 1,
    async score({ episode }) {
      const answer = episode.answer;
      if (answer === undefined) return 0;
      return expected.some((candidate) => answerMatches(answer, candidate, options)) ? 1 : 0;
    },
  };
}
