/** Builders of episode records for the trainer's unit tests. */
import type { EpisodeRecord, TokenRecord, TurnRecord } from '../../../harness/index.ts';

export function turn(
  index: number,
  tokens: TokenRecord | undefined,
  extra: Partial<TurnRecord> = {},
): TurnRecord {
  return {
    index,
    text: null,
    toolCalls: [],
    toolResults: [],
    ...(tokens ? { tokens } : {}),
    rewards: {},
    reward: 0,
    startedAt: '2026-01-01T00:00:00.000Z',
    agentMs: 0,
    toolMs: 0,
    ...extra,
  };
}

export function episode(id: string, turns: TurnRecord[], reward: number, taskId = 'task'): EpisodeRecord {
  return {
    runId: 'run',
    episodeId: id,
    taskId,
    epoch: 0,
    seed: 0,
    attempt: 1,
    agent: 'test',
    status: 'completed',
    previousAttempts: [],
    messages: [],
    tools: [],
    turns,
    reward: { total: reward, components: {}, constraints: {} },
    usage: { promptTokens: 0, completionTokens: 0 },
    stats: {
      toolCalls: 0,
      toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
      emptyTurns: 0,
    },
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 0,
  };
}
