/**
 * Tasks with no environment and a tool provider with a few pure tools, for running whole
 * episodes against the loopback model servers without Docker.
 */
import { z } from 'zod';
import { defineTool, type Task, type TaskLimits, type ToolProvider } from '../../../harness/index.ts';

/** A task with no sandbox and only the `submit` built-in (plus what tool providers add). */
export function fakeTask(
  id = 'fake/task',
  limits: Partial<TaskLimits> = {},
  extra: Partial<Task> = {},
): Task {
  return {
    id,
    dir: '/nonexistent',
    format: 'paddock',
    instruction: 'Add 2 and 3, then submit the sum.',
    tools: ['submit'],
    limits: { maxTurns: 10, timeoutMs: 30_000, commandTimeoutMs: 10_000, ...limits },
    metadata: {},
    extensions: {},
    ...extra,
  };
}

/** A 1×1 PNG, base64. */
export const PIXEL_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** Tools: `add` ({a, b} numbers), `echo` ({text}), `look` (returns an image). */
export const mathTools: ToolProvider = {
  name: 'math',
  async open() {
    return {
      tools: [
        defineTool({
          name: 'add',
          description: 'Adds two numbers.',
          args: z.object({ a: z.number(), b: z.number() }).strict(),
          async execute({ a, b }) {
            return { text: String(a + b) };
          },
        }),
        defineTool({
          name: 'echo',
          description: 'Returns its text.',
          args: z.object({ text: z.string() }).strict(),
          async execute({ text }) {
            return { text };
          },
        }),
        defineTool({
          name: 'look',
          description: 'Returns a picture.',
          args: z.object({}).strict(),
          async execute() {
            return { text: 'a picture', images: [{ mimeType: 'image/png', dataBase64: PIXEL_PNG }] };
          },
        }),
      ],
      async close() {},
    };
  },
};
