/**
 * Truncated and refused outputs end an episode with their own status (never `completed`),
 * and such episodes are the agent's outcome: scored and counted.
 */
import { describe, expect, it } from 'vitest';
import {
  isAgentOutcome,
  runEpisode,
  summariseRun,
  formatSummary,
  type Agent,
  type AssistantTurn,
  defineAgent,
} from '../../../harness/index.ts';
import { fakeTask, mathTools } from '../../fakes/model-servers/tasks.ts';

/** An agent that calls `add` once, then gives `last` (with its stop reason). */
function agentEndingWith(last: AssistantTurn): Agent {
  return defineAgent({
    name: 'fake',
    async act(input) {
      if (input.turnIndex === 0)
        return {
          text: null,
          toolCalls: [{ id: 'a', name: 'add', arguments: '{"a":2,"b":3}' }],
          stopReason: 'tool-calls',
        };
      return last;
    },
  });
}

async function run(last: AssistantTurn) {
  return runEpisode({
    task: fakeTask(),
    agent: agentEndingWith(last),
    runId: 'r',
    episodeId: 'e',
    toolProviders: [mathTools],
  });
}

describe('stop reasons', () => {
  it.each([
    ['length', 'truncated', { truncation: 'length' }],
    ['context-exceeded', 'truncated', { truncation: 'context-exceeded' }],
    ['refusal', 'refused', { refusal: 'refusal' }],
    ['content-filter', 'refused', { refusal: 'content-filter' }],
  ] as const)('a turn that stopped for %s ends the episode as %s', async (stopReason, status, detail) => {
    const episode = await run({
      text: 'The sum is 5 and',
      toolCalls: [{ id: 'b', name: 'add', arguments: '{"a":5,' }],
      stopReason,
    });
    expect(episode.status).toBe(status);
    expect(episode).toMatchObject(detail);
    expect(episode.turns).toHaveLength(2);
    expect(isAgentOutcome(episode)).toBe(true);
  });

  it('an ordinary stop stays completed, and the summary names the other endings', async () => {
    const done = await run({ text: 'done', toolCalls: [], stopReason: 'stop' });
    const cut = await run({ text: 'cut', toolCalls: [], stopReason: 'length' });
    expect(done.status).toBe('completed');
    expect(done.truncation).toBeUndefined();
    const summary = summariseRun([done, cut]);
    expect(summary.total.statuses).toEqual({ completed: 1, truncated: 1 });
    expect(summary.total.errors).toBe(0);
    expect(formatSummary(summary)).toContain('also ended: truncated 1');
  });
});
