/**
 * Tools of the toy suite (`tasks/toy/`): multi-turn tool-use tasks that need no sandbox,
 * so that a policy can be trained on them in minutes.
 *
 * A task opts in with a `toy:` section in task.yaml (registered with the loader through
 * `toyTaskExtension`) naming the fields of its dataset row:
 * ```yaml
 * toy:
 *   table: table       # row field: an object of key → number, what `lookup` reads
 *   answer: expected   # row field: the answer `submit` is scored against
 * ```
 * The session gives three tools — `lookup(key)`, `calc(expression)`, `submit(answer)` —
 * and scores `correct` = 1 when the submitted answer equals the expected one (trimmed),
 * else 0. The task lists no built-in tools (`tools: []`): `submit` comes from here so that
 * the session sees the answer.
 */
import { z } from 'zod';
import {
  defineTool,
  ERROR_CODES,
  PaddockError,
  type Task,
  type ToolProvider,
  type ToolSession,
} from '../../harness/index.ts';

/** The `toy:` section of task.yaml. */
export const toyTaskExtension = z
  .object({
    /** Row field holding the lookup table. @default 'table' */
    table: z.string().min(1).default('table'),
    /** Row field holding the expected answer. @default 'expected' */
    answer: z.string().min(1).default('expected'),
  })
  .strict();

export type ToySection = z.infer<typeof toyTaskExtension>;

const TableSchema = z.record(z.string(), z.union([z.number(), z.string()]));

/** Evaluates + - * and parentheses over integers; returns undefined when the text is not such an expression. */
export function evaluateExpression(text: string): number | undefined {
  const tokens = text.match(/\d+|[-+*()]|\S/g) ?? [];
  let position = 0;
  const peek = (): string | undefined => tokens[position];
  const factor = (): number | undefined => {
    const token = tokens[position++];
    if (token === undefined) return undefined;
    if (token === '-') {
      const value = factor();
      return value === undefined ? undefined : -value;
    }
    if (token === '(') {
      const value = sum();
      if (tokens[position++] !== ')') return undefined;
      return value;
    }
    return /^\d+$/.test(token) ? Number(token) : undefined;
  };
  const product = (): number | undefined => {
    let value = factor();
    while (value !== undefined && peek() === '*') {
      position++;
      const right = factor();
      value = right === undefined ? undefined : value * right;
    }
    return value;
  };
  const sum = (): number | undefined => {
    let value = product();
    while (value !== undefined && (peek() === '+' || peek() === '-')) {
      const operator = tokens[position++];
      const right = product();
      value = right === undefined ? undefined : operator === '+' ? value + right : value - right;
    }
    return value;
  };
  const value = sum();
  return position === tokens.length && value !== undefined && Number.isSafeInteger(value) ? value : undefined;
}

function rowOf(task: Task): Record<string, unknown> {
  const row = task.metadata.row;
  return row !== null && typeof row === 'object' ? (row as Record<string, unknown>) : {};
}

/** Opens the toy tools for tasks with a `toy:` section. */
export const toyToolProvider: ToolProvider = {
  name: 'toy',
  async open(task): Promise<ToolSession | undefined> {
    if (task.extensions.toy === undefined) return undefined;
    const section = toyTaskExtension.safeParse(task.extensions.toy);
    if (!section.success)
      throw new PaddockError(ERROR_CODES.TASK_INVALID, `task ${task.id}: invalid toy section`, {
        details: { task: task.id },
      });
    const row = rowOf(task);
    const table = TableSchema.safeParse(row[section.data.table]);
    const answer = row[section.data.answer];
    const expected =
      typeof answer === 'string' || typeof answer === 'number' ? String(answer).trim() : undefined;
    if (!table.success || expected === undefined) {
      throw new PaddockError(
        ERROR_CODES.TASK_INVALID,
        `task ${task.id}: the dataset row needs "${section.data.table}" (an object of numbers) and "${section.data.answer}" (a string or number)`,
        { details: { task: task.id } },
      );
    }
    const entries = table.data;
    let submitted: string | undefined;
    const tools = [
      defineTool({
        name: 'lookup',
        description: 'Look up the number stored under a key.',
        args: z.object({ key: z.string() }).strict(),
        async execute({ key }) {
          const value = entries[key];
          return value === undefined
            ? { text: `no entry ${key}`, isError: true }
            : { text: `${key} = ${value}` };
        },
      }),
      defineTool({
        name: 'calc',
        description: 'Evaluate an integer expression with + - * and parentheses.',
        args: z.object({ expression: z.string() }).strict(),
        async execute({ expression }) {
          const value = evaluateExpression(expression);
          return value === undefined ? { text: 'not an expression', isError: true } : { text: String(value) };
        },
      }),
      defineTool({
        name: 'submit',
        description: 'Submit the final answer.',
        args: z.object({ answer: z.union([z.string(), z.number()]) }).strict(),
        async execute({ answer }) {
          submitted = String(answer);
          return { text: 'Submitted.', stop: true, answer: submitted };
        },
      }),
    ];
    return {
      tools,
      async score() {
        return { correct: submitted !== undefined && submitted.trim() === expected ? 1 : 0 };
      },
      async close() {},
    };
  },
};
