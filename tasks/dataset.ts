/**
 * Dataset expansion: a task with `dataset: { file: rows.jsonl }` becomes one task per row.
 * `{{field}}` in the instruction, the verifier's command and env, and the solution's env
 * (and string arguments of reference actions, and string values of plug-in sections such as
 * `browser:`) is filled from the row; every field also
 * reaches the verifier and the solution as `PADDOCK_FIELD_<NAME>`. Row values never reach
 * the agent's environment: expected answers stay out of the agent's sight.
 */
import path from 'node:path';
import { z } from 'zod';
import type { ReferenceAction, Task } from '../harness/task.ts';
import { readText, tooDeep, MAX_NESTING_DEPTH } from './files.ts';
import { describeValue, type TaskProblem } from './problems.ts';

/** `{{ name }}`: a row field. */
const TEMPLATE_FIELD = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Ids of rows: what a task id may hold after the `@`. */
const ROW_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const RowSchema = z.record(z.string(), z.unknown());

/** A dataset row: one JSON object. */
export type DatasetRow = z.infer<typeof RowSchema>;

/** The dataset a task expands over, as written in task.yaml. */
export interface DatasetSpec {
  /** JSONL file, relative to the task folder, as written. */
  file: string;
  /** The file on the host, already checked to lie inside the task folder. @default `file` resolved against the task folder */
  hostPath?: string;
  /** Field naming each row. @default 'id' (rows without it are named by line number) */
  idField?: string;
}

/** The environment variable that carries a row field: `PADDOCK_FIELD_<NAME>` (uppercase, `_` for other characters). */
export function fieldEnvName(field: string): string {
  return `PADDOCK_FIELD_${field.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** Largest dataset file read, in bytes. */
export const MAX_DATASET_BYTES = 256 * 1024 * 1024;

/** Longest line (one row) of a dataset file, in characters. */
export const MAX_ROW_CHARS = 1024 * 1024;

/** Bad rows reported one by one; past this many, one more problem counts the rest. */
const MAX_ROW_PROBLEMS = 50;

/** A row value as text: strings as they are, anything else as JSON. */
function fieldText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The fields `template` refers to. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(TEMPLATE_FIELD)].map((match) => match[1] ?? '');
}

/** Fills `{{field}}` from `row`. Callers check first that every field is present. */
export function renderTemplate(template: string, row: DatasetRow): string {
  return template.replace(TEMPLATE_FIELD, (_whole, field: string) => fieldText(row[field]));
}

/** Every template of a task with where it sits (for error messages). */
function templatesOf(task: Task): { where: string; template: string }[] {
  const found: { where: string; template: string }[] = [{ where: 'instruction', template: task.instruction }];
  if (task.verifier) {
    found.push({ where: 'verifier.command', template: task.verifier.command });
    for (const [key, value] of Object.entries(task.verifier.env)) {
      found.push({ where: `verifier.env.${key}`, template: value });
    }
  }
  if (task.solution?.kind === 'script') {
    for (const [key, value] of Object.entries(task.solution.env)) {
      found.push({ where: `solution.env.${key}`, template: value });
    }
  }
  if (task.solution?.kind === 'actions') {
    task.solution.actions.forEach((action, index) => {
      for (const [where, template] of stringsIn(action.arguments, `solution.${index}.arguments`)) {
        found.push({ where, template });
      }
    });
  }
  for (const [key, section] of Object.entries(task.extensions)) {
    for (const [where, template] of stringsIn(section, key)) {
      if (templateFields(template).length > 0) found.push({ where, template });
    }
  }
  return found;
}

function stringsIn(value: unknown, where: string): [string, string][] {
  if (typeof value === 'string') return [[where, value]];
  if (Array.isArray(value)) return value.flatMap((item, index) => stringsIn(item, `${where}.${index}`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => stringsIn(item, `${where}.${key}`));
  }
  return [];
}

function renderDeep(value: unknown, row: DatasetRow): unknown {
  if (typeof value === 'string') return renderTemplate(value, row);
  if (Array.isArray(value)) return value.map((item) => renderDeep(item, row));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, renderDeep(item, row)]));
  }
  return value;
}

function renderEnv(env: Record<string, string>, row: DatasetRow): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, renderTemplate(value, row)]));
}

/**
 * A deep copy of a task: plain objects and arrays copied, functions (a reward reader's,
 * `outputWarnings`) shared as they are, anything else through `structuredClone` (which
 * refuses functions, so it cannot copy the whole task).
 */
function cloneTask<T>(value: T): T {
  if (typeof value === 'function' || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item: unknown) => cloneTask(item)) as T;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return structuredClone(value);
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, cloneTask(item)])) as T;
}

/** One task for one row of the dataset. */
function taskForRow(base: Task, row: DatasetRow, rowId: string, datasetFile: string, line: number): Task {
  const fieldEnv = Object.fromEntries(
    Object.entries(row).map(([field, value]) => [fieldEnvName(field), fieldText(value)]),
  );
  const task: Task = cloneTask(base);
  task.id = `${base.id}@${rowId}`;
  task.instruction = renderTemplate(base.instruction, row);
  if (task.verifier && base.verifier) {
    task.verifier.command = renderTemplate(base.verifier.command, row);
    task.verifier.env = { ...fieldEnv, ...renderEnv(base.verifier.env, row) };
  }
  if (task.solution?.kind === 'script' && base.solution?.kind === 'script') {
    task.solution.env = { ...fieldEnv, ...renderEnv(base.solution.env, row) };
  }
  if (task.solution?.kind === 'actions') {
    task.solution.actions = task.solution.actions.map((action): ReferenceAction => ({
      tool: action.tool,
      arguments: renderDeep(action.arguments, row) as Record<string, unknown>,
    }));
  }
  // Plug-in sections (a page to open, a target to point at) vary by row too.
  task.extensions = Object.fromEntries(
    Object.entries(base.extensions).map(([key, section]) => [key, renderDeep(section, row)]),
  );
  task.metadata = { ...base.metadata, row, dataset: { file: datasetFile, line, id: rowId } };
  return task;
}

/**
 * Expands `base` (whose strings are still templates) over the rows of its dataset file.
 * Every bad row is a problem naming `<file>:<line>` and the field; no task comes back then.
 */
export async function expandDataset(
  base: Task,
  dataset: DatasetSpec,
): Promise<{ tasks: Task[]; problems: TaskProblem[] }> {
  const file = path.resolve(base.dir, dataset.file);
  const read = await readText(dataset.hostPath ?? file, MAX_DATASET_BYTES);
  if (!read.ok) return { tasks: [], problems: read.problems.map((found) => ({ ...found, file })) };

  const templates = templatesOf(base);
  const idField = dataset.idField ?? 'id';
  const seen = new Map<string, number>();
  const tasks: Task[] = [];
  const problems: TaskProblem[] = [];
  const lines = read.text.split(/\r?\n/);

  let rowsWithProblems = 0;
  let unreported = 0;
  lines.forEach((text, index) => {
    const line = index + 1;
    if (text.trim() === '') return;
    if (rowsWithProblems >= MAX_ROW_PROBLEMS) {
      unreported++;
      return;
    }
    const problemsBefore = problems.length;
    checkRow(text, line);
    if (problems.length > problemsBefore) rowsWithProblems++;
  });
  function checkRow(text: string, line: number): void {
    const problem = (where: string, message: string) => problems.push({ file, line, path: where, message });
    if (text.length > MAX_ROW_CHARS) {
      problem('', `the row has ${text.length} characters: expected at most ${MAX_ROW_CHARS}`);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      // Said without the row's text: the parser's message quotes it.
      const at = /position (\d+)/.exec((error as Error).message)?.[1];
      problem(
        '',
        `invalid JSON${at === undefined ? '' : ` at column ${Number(at) + 1}`}: expected one JSON object per line`,
      );
      return;
    }
    const deep = tooDeep(json);
    if (deep !== undefined) {
      problem(deep, `nested more than ${MAX_NESTING_DEPTH} levels deep: expected a flatter row`);
      return;
    }
    const parsed = RowSchema.safeParse(json);
    if (!parsed.success || Array.isArray(json)) {
      problem('', `expected a JSON object, got ${describeValue(json)}`);
      return;
    }
    const row = parsed.data;

    let rowId = String(line);
    const idValue = row[idField];
    if (idValue === undefined) {
      if (dataset.idField !== undefined)
        problem(idField, 'required: the row id field (dataset.id_field) is missing');
    } else if ((typeof idValue === 'string' || typeof idValue === 'number') && ROW_ID.test(String(idValue))) {
      rowId = String(idValue);
    } else {
      problem(
        idField,
        `expected a row id of letters, digits, ".", "_" and "-", got ${describeValue(idValue)}`,
      );
    }
    const earlier = seen.get(rowId);
    if (earlier !== undefined) problem(idField, `duplicate row id "${rowId}" (first on line ${earlier})`);
    else seen.set(rowId, line);

    const missing = new Map<string, string[]>();
    for (const { where, template } of templates) {
      for (const field of templateFields(template)) {
        if (row[field] === undefined) missing.set(field, [...(missing.get(field) ?? []), where]);
      }
    }
    for (const [field, uses] of missing) {
      problem(field, `missing field: {{${field}}} is used by ${uses.join(', ')}`);
    }
    if (problems.length === 0) tasks.push(taskForRow(base, row, rowId, dataset.file, line));
  }
  if (unreported > 0) {
    problems.push({
      file,
      path: '',
      message: `${unreported} more row(s) not checked after ${MAX_ROW_PROBLEMS} bad rows: fix those first`,
    });
  }

  if (problems.length === 0 && tasks.length === 0) {
    problems.push({ file, path: '', message: 'the dataset has no rows' });
  }
  return problems.length > 0 ? { tasks: [], problems } : { tasks, problems };
}
