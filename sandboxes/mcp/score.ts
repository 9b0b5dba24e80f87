/**
 * Scores read from MCP servers after the agent stopped: a `score` entry calls a tool
 * (the agent's allow-list does not apply) and checks expectations on its result, or runs
 * a scorer module. Each entry becomes one reward component, `mcp:<name>`, in [0, 1].
 *
 * A scorer module (`score: [{ script: scorer.ts }]`, relative to the task folder) exports
 * as default (or as `score`) a function
 *
 * ```ts
 * export default async function score({ call, task, signal }: McpScorerContext) {
 *   const graph = await call('memory', 'read_graph');
 *   return graph.value.entities.length === 2 ? 1 : 0;   // or { part_a: 1, part_b: 0.5 }
 * }
 * ```
 *
 * returning a number (component `mcp:<name>`), a boolean (1 or 0), or an object of numbers
 * (components `mcp:<name>.<key>`).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SessionScore, Task } from '../../harness/index.ts';
import { ERROR_CODES, PaddockError, describeError, importModule } from '../../harness/index.ts';
import { JsonPathError, isSingularPath, queryJsonPath } from './jsonpath.ts';
import { resultValue, toToolOutput } from './results.ts';
import type { McpExpectation, McpScoreSpec } from './schema.ts';

/** A scoring call's result, in the forms scorers want. */
export interface McpCallResult {
  /** The call failed (the result's `isError`, or the server could not answer). */
  isError: boolean;
  /** The observation text an agent would have seen. */
  text: string;
  /** Structured content, else the text parsed as JSON, else the text. */
  value: unknown;
  /** The text items parsed as JSON, else the text (what `from: text` checks). */
  textValue: unknown;
  /** The raw `tools/call` result, when the server answered. */
  raw?: unknown;
}

/** What a scorer module is given. */
export interface McpScorerContext {
  /** Calls `tool` of `server` (any tool, allow-listed or not). Never rejects on a tool failure. */
  call: (server: string, tool: string, args?: Record<string, unknown>) => Promise<McpCallResult>;
  task: Task;
  signal: AbortSignal;
}

/** The outcome of checking expectations. */
export interface ExpectationReport {
  /** Expectations met / total. */
  passed: number;
  total: number;
  /** One line per unmet expectation. */
  failures: string[];
}

/** Checks every expectation against one call result: its `value`, or its `textValue` with `from: 'text'`. */
export function checkExpectations(
  result: McpCallResult,
  expectations: readonly McpExpectation[],
  from: 'structured' | 'text' = 'structured',
): ExpectationReport {
  const failures: string[] = [];
  const checked = from === 'text' ? { ...result, value: result.textValue } : result;
  for (const expectation of expectations) {
    const why = checkOne(checked, expectation);
    if (why !== undefined) failures.push(why);
  }
  return { passed: expectations.length - failures.length, total: expectations.length, failures };
}

function checkOne(result: McpCallResult, expectation: McpExpectation): string | undefined {
  const wantError = expectation.isError ?? false;
  if (result.isError !== wantError) {
    return wantError ? 'expected the call to fail' : `the call failed: ${result.text.slice(0, 200)}`;
  }
  let selected: unknown = result.value;
  let found = result.value !== undefined && result.value !== '';
  if (expectation.jsonpath !== undefined) {
    let matches: unknown[];
    try {
      matches = queryJsonPath(result.value, expectation.jsonpath);
    } catch (error) {
      if (error instanceof JsonPathError) return error.message;
      throw error;
    }
    found = matches.length > 0;
    selected = isSingularPath(expectation.jsonpath) ? matches[0] : matches;
  }
  const where = expectation.jsonpath ?? 'the result';
  if (expectation.exists !== undefined && found !== expectation.exists) {
    return expectation.exists ? `${where} selected nothing` : `${where} selected something`;
  }
  // A path that selects nothing fails, unless the expectation is about that (exists, length).
  if (
    expectation.jsonpath !== undefined &&
    expectation.exists === undefined &&
    expectation.length === undefined &&
    !found
  ) {
    return `${where} selected nothing`;
  }
  if (Object.hasOwn(expectation, 'equals') && !deepEqual(selected, expectation.equals)) {
    return `${where} is ${short(selected)}, expected ${short(expectation.equals)}`;
  }
  if (expectation.contains !== undefined && !asText(selected).includes(expectation.contains)) {
    return `${where} does not contain ${JSON.stringify(expectation.contains)}`;
  }
  if (expectation.matches !== undefined && !new RegExp(expectation.matches).test(asText(selected))) {
    return `${where} does not match /${expectation.matches}/`;
  }
  for (const wanted of expectation.includes ?? []) {
    if (!holds(selected, wanted)) return `${where} does not include ${short(wanted)}`;
  }
  for (const unwanted of expectation.excludes ?? []) {
    if (holds(selected, unwanted)) return `${where} includes ${short(unwanted)}`;
  }
  if (expectation.length !== undefined) {
    const length = Array.isArray(selected) || typeof selected === 'string' ? selected.length : undefined;
    if (length !== expectation.length)
      return `${where} has length ${length ?? 'n/a'}, expected ${expectation.length}`;
  }
  return undefined;
}

/** A list holds an item (deep equality); text holds a substring. */
function holds(selected: unknown, item: unknown): boolean {
  return Array.isArray(selected)
    ? selected.some((candidate) => deepEqual(candidate, item))
    : asText(selected).includes(typeof item === 'string' ? item : JSON.stringify(item));
}

/** Deep equality of JSON values, ignoring key order. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  return (
    keys.length === Object.keys(right).length &&
    keys.every((key) => Object.hasOwn(right, key) && deepEqual(left[key], right[key]))
  );
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

/** Makes an McpCallResult from a converted call. */
export function callResult(
  outcome: { ok: true; result: unknown } | { ok: false; text: string },
): McpCallResult {
  if (!outcome.ok) return { isError: true, text: outcome.text, value: undefined, textValue: undefined };
  const output = toToolOutput(outcome.result, { maxOutputBytes: Number.MAX_SAFE_INTEGER });
  return {
    isError: output.isError ?? false,
    text: output.text,
    value: resultValue(outcome.result),
    textValue: resultValue(outcome.result, 'text'),
    raw: outcome.result,
  };
}

/**
 * Runs the score entries and returns components `mcp:<name>` (see the module comment);
 * an entry whose expectations failed carries them as its note, and in `notes`.
 */
export async function runScores(
  entries: readonly McpScoreSpec[],
  context: McpScorerContext,
): Promise<{ scores: Record<string, SessionScore>; notes: string[] }> {
  const scores: Record<string, SessionScore> = {};
  const notes: string[] = [];
  for (const entry of entries) {
    if (entry.kind === 'call') {
      const result = await context.call(entry.server, entry.tool, entry.arguments);
      const report = checkExpectations(result, entry.expect, entry.from);
      const value = entry.partial
        ? report.passed / Math.max(1, report.total)
        : report.failures.length === 0
          ? 1
          : 0;
      scores[`mcp:${entry.name}`] =
        report.failures.length === 0 ? { value } : { value, note: report.failures.join('; ') };
      for (const failure of report.failures) notes.push(`mcp:${entry.name}: ${failure}`);
      continue;
    }
    const scorer = await loadScorer(context.task, entry.script);
    let value: unknown;
    try {
      value = await scorer(context);
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.VERIFIER_FAILED,
        `scorer ${entry.script} of task ${context.task.id} failed: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
    if (typeof value === 'boolean') scores[`mcp:${entry.name}`] = { value: value ? 1 : 0 };
    else if (typeof value === 'number' && Number.isFinite(value)) scores[`mcp:${entry.name}`] = { value };
    else if (value !== null && typeof value === 'object') {
      for (const [key, score] of Object.entries(value)) {
        if (typeof score === 'number' && Number.isFinite(score))
          scores[`mcp:${entry.name}.${key}`] = { value: score };
      }
    } else {
      throw new PaddockError(
        ERROR_CODES.VERIFIER_FAILED,
        `scorer ${entry.script} of task ${context.task.id} returned ${short(value)}, expected a number, a boolean or an object of numbers`,
      );
    }
  }
  return { scores, notes };
}

type Scorer = (context: McpScorerContext) => unknown;

async function loadScorer(task: Task, script: string): Promise<Scorer> {
  const file = path.resolve(task.dir, script);
  let module: { default?: unknown; score?: unknown };
  try {
    // importModule: a TypeScript scorer works from the built dist/ too (tsx is registered on demand).
    module = await importModule(pathToFileURL(file).href);
  } catch (error) {
    throw new PaddockError(
      ERROR_CODES.VERIFIER_FAILED,
      `cannot load scorer ${file}: ${describeError(error)}`,
      { cause: error },
    );
  }
  const scorer = typeof module.default === 'function' ? module.default : module.score;
  if (typeof scorer !== 'function') {
    throw new PaddockError(
      ERROR_CODES.VERIFIER_FAILED,
      `scorer ${file} exports no function (default or score)`,
    );
  }
  return scorer as Scorer;
}
