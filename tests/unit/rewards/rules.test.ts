import { describe, expect, it } from 'vitest';
import type { TurnRecord, TurnRewardFunction } from '../../../harness/index.ts';
import {
  actionKey,
  costReward,
  formatReward,
  invalidCallReward,
  repeatReward,
  ruleReward,
  tokensReward,
  toolErrorReward,
} from '../../../rewards/index.ts';
import { bashTurn, makeTurn } from '../../fixtures/rewards/records.ts';
import { scoreOneTurn } from '../../fixtures/rewards/turn-reward.ts';

function score(fn: TurnRewardFunction, turn: TurnRecord, previousTurns: TurnRecord[] = []): Promise<number> {
  return scoreOneTurn(fn, turn, previousTurns);
}

const twoCalls = makeTurn({
  toolCalls: [
    { id: 'a', name: 'bash', arguments: '{"command":"false"}' },
    { id: 'b', name: 'nope', arguments: '{}' },
    { id: 'c', name: 'bash', arguments: '{"command": ' },
    { id: 'd', name: 'bash', arguments: '{"command":"exit 2"}' },
  ],
  toolResults: [
    { callId: 'a', name: 'bash', output: 'exit 1', isError: true, problem: 'tool-error', durationMs: 1 },
    {
      callId: 'b',
      name: 'nope',
      output: 'Unknown tool',
      isError: true,
      problem: 'unknown-tool',
      durationMs: 0,
    },
    { callId: 'c', name: 'bash', output: 'not JSON', isError: true, problem: 'invalid-json', durationMs: 0 },
    { callId: 'd', name: 'bash', output: 'exit 2', isError: true, problem: 'tool-error', durationMs: 1 },
  ],
});

describe('tool_error', () => {
  it('is -1 per failing tool call', async () => {
    expect(await score(toolErrorReward(), twoCalls)).toBe(-2);
  });

  it('is 0 for a turn whose calls succeeded', async () => {
    expect(await score(toolErrorReward(), bashTurn('ls', 'a b'))).toBe(0);
  });

  it('does not count calls skipped after a submit', async () => {
    const turn = makeTurn({
      toolCalls: [{ id: 'x', name: 'bash', arguments: '{}' }],
      toolResults: [{ callId: 'x', name: 'bash', output: 'Not run', isError: true, durationMs: 0 }],
    });
    expect(await score(toolErrorReward(), turn)).toBe(0);
  });

  it('keeps its name and weight', () => {
    const fn = toolErrorReward({ weight: 0.1 });
    expect([fn.name, fn.weight]).toEqual(['tool_error', 0.1]);
  });
});

describe('invalid_call', () => {
  it('is -1 per unknown tool, invalid JSON or invalid arguments', async () => {
    expect(await score(invalidCallReward(), twoCalls)).toBe(-2);
    expect(await score(invalidCallReward(), bashTurn('ls', 'x', 'invalid-arguments'))).toBe(-1);
  });
});

describe('format', () => {
  const textOnly = makeTurn({ text: 'Thinking.' });
  const callOnly = { ...bashTurn('ls', ''), text: '' };
  const both = { ...bashTurn('ls', ''), text: 'Listing.' };
  const empty = makeTurn({ text: '   ' });

  it('by default wants text or a tool call', async () => {
    expect(await score(formatReward(), textOnly)).toBe(0);
    expect(await score(formatReward(), callOnly)).toBe(0);
    expect(await score(formatReward(), empty)).toBe(-1);
  });

  it('can require a tool call, text, or both', async () => {
    expect(await score(formatReward({ require: 'tool_call' }), textOnly)).toBe(-1);
    expect(await score(formatReward({ require: 'text' }), callOnly)).toBe(-1);
    expect(await score(formatReward({ require: 'text_and_tool_call' }), callOnly)).toBe(-1);
    expect(await score(formatReward({ require: 'text_and_tool_call' }), both)).toBe(0);
  });

  it('can require the text to match a pattern', async () => {
    const fn = formatReward({ require: 'text', pattern: '<think>[\\s\\S]*</think>' });
    expect(await score(fn, makeTurn({ text: '<think>plan</think> go' }))).toBe(0);
    expect(await score(fn, makeTurn({ text: 'go' }))).toBe(-1);
  });
});

describe('repeat', () => {
  it('is -1 when the turn makes the same calls as an earlier turn, whatever the key order', async () => {
    const first = makeTurn({
      toolCalls: [{ id: '1', name: 'bash', arguments: '{"command":"ls","timeout":5}' }],
    });
    const again = makeTurn({
      toolCalls: [{ id: '2', name: 'bash', arguments: '{ "timeout": 5, "command": "ls" }' }],
    });
    const other = makeTurn({ toolCalls: [{ id: '3', name: 'bash', arguments: '{"command":"pwd"}' }] });
    expect(await score(repeatReward(), again, [first])).toBe(-1);
    expect(await score(repeatReward(), other, [first])).toBe(0);
    expect(actionKey(first)).toBe(actionKey(again));
  });

  it('compares text when the turn has no calls', async () => {
    expect(await score(repeatReward(), makeTurn({ text: 'Done. ' }), [makeTurn({ text: 'Done.' })])).toBe(-1);
  });

  it('only looks back `window` turns', async () => {
    const ls = bashTurn('ls', '');
    const pwd = bashTurn('pwd', '');
    expect(await score(repeatReward({ window: 1 }), ls, [ls, pwd])).toBe(0);
    expect(await score(repeatReward({ window: 2 }), ls, [ls, pwd])).toBe(-1);
  });

  it('compares invalid JSON arguments as raw text', async () => {
    const bad = makeTurn({ toolCalls: [{ id: '1', name: 'bash', arguments: '{"command": ' }] });
    expect(await score(repeatReward(), bad, [bad])).toBe(-1);
  });
});

describe('tokens and cost', () => {
  const turn = makeTurn({ usage: { promptTokens: 3000, completionTokens: 500 }, costUsd: 0.002 });

  it('costs completion tokens per thousand by default', async () => {
    expect(await score(tokensReward(), turn)).toBe(-0.5);
  });

  it('can count total tokens with another unit', async () => {
    expect(await score(tokensReward({ count: 'total', per: 100 }), turn)).toBe(-35);
  });

  it('is 0 without usage', async () => {
    expect(await score(tokensReward(), makeTurn())).toBe(0);
  });

  it('costs the dollars spent', async () => {
    expect(await score(costReward(), turn)).toBe(-0.002);
    expect(await score(costReward(), makeTurn())).toBe(0);
  });
});

describe('ruleReward', () => {
  it('makes the rule named by the task file', async () => {
    const fn = ruleReward('format', { require: 'tool_call', weight: 0.5, name: 'needs_call' });
    expect([fn.name, fn.weight]).toEqual(['needs_call', 0.5]);
    expect(await score(fn, makeTurn())).toBe(-1);
  });
});

describe('truncated and refused rules', () => {
  it('cost −1 on a cut or refused turn and 0 otherwise', async () => {
    const { truncatedReward, refusedReward } = await import('../../../rewards/index.ts');
    const turn = (stopReason?: TurnRecord['stopReason']): TurnRecord => ({
      index: 0,
      text: 'x',
      toolCalls: [],
      toolResults: [],
      rewards: {},
      reward: 0,
      startedAt: '',
      agentMs: 0,
      toolMs: 0,
      ...(stopReason ? { stopReason } : {}),
    });
    const score = (fn: ReturnType<typeof truncatedReward>, t: TurnRecord) => scoreOneTurn(fn, t);
    expect(await score(truncatedReward(), turn('length'))).toBe(-1);
    expect(await score(truncatedReward(), turn('context-exceeded'))).toBe(-1);
    expect(await score(truncatedReward(), turn('stop'))).toBe(0);
    expect(await score(refusedReward(), turn('refusal'))).toBe(-1);
    expect(await score(refusedReward(), turn('content-filter'))).toBe(-1);
    expect(await score(refusedReward(), turn())).toBe(0);
  });
});
