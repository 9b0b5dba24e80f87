/**
 * A small JSONPath subset for score expectations — enough to pick values out of a tool
 * result without a dependency:
 *
 *   $              the root
 *   .key  ['key']  a member            [2]  [-1]  an element (negative from the end)
 *   .*  [*]        every member/element ..key      every `key` at any depth
 *   [?(@.a.b == 'x')]  [?(@.n != 3)]  [?(@.flag)]  elements passing a filter
 */

type Step =
  | { kind: 'member'; key: string }
  | { kind: 'index'; index: number }
  | { kind: 'wildcard' }
  | { kind: 'descend'; key: string | undefined }
  | { kind: 'filter'; path: string[]; op?: '==' | '!='; value?: unknown };

/** A JSONPath the parser refused; the message says where. */
export class JsonPathError extends Error {
  override readonly name = 'JsonPathError';
}

/** True when `path` selects at most one value (no wildcard, descent or filter). */
export function isSingularPath(path: string): boolean {
  return parsePath(path).every((step) => step.kind === 'member' || step.kind === 'index');
}

/**
 * Every value `path` selects in `root`, in document order.
 * @throws JsonPathError when `path` is not in the supported subset.
 */
export function queryJsonPath(root: unknown, path: string): unknown[] {
  let current: unknown[] = [root];
  for (const step of parsePath(path)) {
    const next: unknown[] = [];
    for (const value of current) applyStep(step, value, next);
    current = next;
  }
  return current;
}

function applyStep(step: Step, value: unknown, out: unknown[]): void {
  switch (step.kind) {
    case 'member':
      if (isRecord(value) && Object.hasOwn(value, step.key)) out.push(value[step.key]);
      return;
    case 'index':
      if (Array.isArray(value)) {
        const index = step.index < 0 ? value.length + step.index : step.index;
        if (index >= 0 && index < value.length) out.push(value[index]);
      }
      return;
    case 'wildcard':
      if (Array.isArray(value)) out.push(...value);
      else if (isRecord(value)) out.push(...Object.values(value));
      return;
    case 'descend':
      descend(value, step.key, out);
      return;
    case 'filter': {
      const items = Array.isArray(value) ? value : isRecord(value) ? Object.values(value) : [];
      for (const item of items) if (passes(step, item)) out.push(item);
      return;
    }
  }
}

function descend(value: unknown, key: string | undefined, out: unknown[]): void {
  if (Array.isArray(value)) {
    if (key === undefined) out.push(...value);
    for (const item of value) descend(item, key, out);
  } else if (isRecord(value)) {
    if (key === undefined) out.push(...Object.values(value));
    else if (Object.hasOwn(value, key)) out.push(value[key]);
    for (const item of Object.values(value)) descend(item, key, out);
  }
}

function passes(step: Extract<Step, { kind: 'filter' }>, item: unknown): boolean {
  let value: unknown = item;
  for (const key of step.path) {
    if (!isRecord(value) || !Object.hasOwn(value, key)) return false;
    value = value[key];
  }
  if (step.op === undefined) return value !== undefined && value !== null && value !== false;
  const equal = JSON.stringify(value) === JSON.stringify(step.value);
  return step.op === '==' ? equal : !equal;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const cache = new Map<string, Step[]>();

function parsePath(path: string): Step[] {
  const cached = cache.get(path);
  if (cached) return cached;
  const steps = parse(path);
  cache.set(path, steps);
  return steps;
}

function parse(path: string): Step[] {
  if (!path.startsWith('$')) throw new JsonPathError(`a JSONPath starts with $: ${path}`);
  const steps: Step[] = [];
  let i = 1;
  const fail = (why: string): never => {
    throw new JsonPathError(`${why} at position ${i} of ${path}`);
  };
  const name = (): string => {
    const match = /^[A-Za-z_$][\w$-]*/.exec(path.slice(i));
    if (!match) return fail('expected a member name');
    i += match[0].length;
    return match[0];
  };
  while (i < path.length) {
    if (path.startsWith('..', i)) {
      i += 2;
      if (path[i] === '*') {
        i++;
        steps.push({ kind: 'descend', key: undefined });
      } else {
        steps.push({ kind: 'descend', key: name() });
      }
    } else if (path[i] === '.') {
      i++;
      if (path[i] === '*') {
        i++;
        steps.push({ kind: 'wildcard' });
      } else {
        steps.push({ kind: 'member', key: name() });
      }
    } else if (path[i] === '[') {
      const close = bracketEnd(path, i);
      if (close < 0) fail('unclosed [');
      const inner = path.slice(i + 1, close).trim();
      i = close + 1;
      steps.push(bracketStep(inner, fail));
    } else {
      fail('expected ".", ".." or "["');
    }
  }
  return steps;
}

/** Index of the `]` closing the `[` at `open`, skipping quoted strings. */
function bracketEnd(path: string, open: number): number {
  let quote: string | undefined;
  let depth = 0;
  for (let i = open; i < path.length; i++) {
    const char = path[i];
    if (quote) {
      if (char === '\\') i++;
      else if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') quote = char;
    else if (char === '[') depth++;
    else if (char === ']' && --depth === 0) return i;
  }
  return -1;
}

function bracketStep(inner: string, fail: (why: string) => never): Step {
  if (inner === '*') return { kind: 'wildcard' };
  if (/^-?\d+$/.test(inner)) return { kind: 'index', index: Number(inner) };
  const quoted = /^(['"])(.*)\1$/s.exec(inner);
  if (quoted) return { kind: 'member', key: unquote(quoted[2] ?? '') };
  const filter = /^\?\(\s*@((?:\.[A-Za-z_$][\w$-]*)+)\s*(?:(==|!=)\s*(.+?))?\s*\)$/s.exec(inner);
  if (filter) {
    const path = (filter[1] ?? '').slice(1).split('.');
    if (filter[2] === undefined) return { kind: 'filter', path };
    return { kind: 'filter', path, op: filter[2] as '==' | '!=', value: literal(filter[3] ?? '', fail) };
  }
  return fail(`unsupported selector [${inner}]`);
}

function unquote(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}

function literal(text: string, fail: (why: string) => never): unknown {
  const quoted = /^(['"])(.*)\1$/s.exec(text);
  if (quoted) return unquote(quoted[2] ?? '');
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text === 'null') return null;
  const number = Number(text);
  if (text !== '' && Number.isFinite(number)) return number;
  return fail(`expected a string, number, true, false or null in a filter, got ${text}`);
}
