import { describe, expect, it } from 'vitest';
import type { Task } from '../../../harness/index.ts';
import { evaluateExpression, toyToolProvider } from '../../../sandboxes/toy/index.ts';

function task(extensions: Record<string, unknown>, row: Record<string, unknown>): Task {
  return {
    id: 'toy@1',
    dir: '/',
    format: 'paddock',
    instruction: 'x',
    tools: [],
    limits: { maxTurns: 5, timeoutMs: 1000, commandTimeoutMs: 1000 },
    metadata: { row },
    extensions,
  };
}

const context = { signal: new AbortController().signal, episodeId: 'e', turnIndex: 0 };
const labels = { runId: 'r', episodeId: 'e' };

describe('toy tools', () => {
  it('evaluates integer expressions and refuses anything else', () => {
    expect(evaluateExpression('40 + 5')).toBe(45);
    expect(evaluateExpression('2 * (3 - 10)')).toBe(-14);
    expect(evaluateExpression('-4+1')).toBe(-3);
    expect(evaluateExpression('4 +')).toBeUndefined();
    expect(evaluateExpression('process.exit()')).toBeUndefined();
  });

  it('opens no session for a task without a toy section', async () => {
    expect(await toyToolProvider.open(task({}, {}), { labels, signal: context.signal })).toBeUndefined();
  });

  it('looks up, computes and scores the submitted answer', async () => {
    const session = (await toyToolProvider.open(task({ toy: {} }, { table: { k1: 40 }, expected: '45' }), {
      labels,
      signal: context.signal,
    }))!;
    const tool = (name: string) => session.tools.find((candidate) => candidate.name === name)!;
    expect((await tool('lookup').execute({ key: 'k1' }, context)).text).toBe('k1 = 40');
    expect((await tool('lookup').execute({ key: 'zz' }, context)).isError).toBe(true);
    expect((await tool('calc').execute({ expression: '40 + 5' }, context)).text).toBe('45');
    expect(await session.score!({ signal: context.signal })).toEqual({ correct: 0 });
    const submitted = await tool('submit').execute({ answer: ' 45 ' }, context);
    expect(submitted).toMatchObject({ stop: true, answer: ' 45 ' });
    expect(await session.score!({ signal: context.signal })).toEqual({ correct: 1 });
    await session.close();
  });

  it('refuses a row without its table', async () => {
    await expect(
      toyToolProvider.open(task({ toy: {} }, {}), { labels, signal: context.signal }),
    ).rejects.toMatchObject({
      code: 'TASK_INVALID',
    });
  });
});
