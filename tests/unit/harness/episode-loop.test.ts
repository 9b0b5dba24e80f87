import { describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import {
  PaddockError,
  runEpisode,
  type Agent,
  type EpisodeEvent,
  type ToolProvider,
  type TurnRewardFunction,
  defineAgent,
} from '../../../harness/index.ts';
import { MemorySandboxProvider, type CommandHandler } from '../../fakes/memory-sandbox.ts';
import { makeTask } from '../../fakes/tasks.ts';

/** A verifier that writes reward 1 when /app/answer.txt holds "42". */
const handler: CommandHandler = (command, sandbox) => {
  if (command === 'bash /tests/test.sh') {
    const answer = Buffer.from(sandbox.files.get('/app/answer.txt') ?? '').toString();
    sandbox.files.set('/logs/verifier/reward.txt', Buffer.from(answer.trim() === '42' ? '1' : '0'));
    return {};
  }
  if (command === 'echo hi') return { stdout: 'hi\n' };
  if (command === 'false') return { exitCode: 1 };
  return {};
};

function run(
  agent: Agent,
  overrides: Parameters<typeof makeTask>[0] = {},
  extra: Partial<Parameters<typeof runEpisode>[0]> = {},
) {
  const provider = new MemorySandboxProvider(handler);
  const events: EpisodeEvent[] = [];
  const promise = runEpisode({
    task: makeTask(overrides),
    agent,
    runId: 'run-1',
    episodeId: 'suite/task#0',
    sandboxProvider: provider,
    onEvent: (event) => events.push(event),
    ...extra,
  });
  return { provider, events, promise };
}

const write42 = { name: 'write_file', arguments: { path: 'answer.txt', content: '42' } };
const submit = { name: 'submit', arguments: {} };

describe('runEpisode', () => {
  it('runs tool calls, stops on submit and scores with the verifier', async () => {
    const { promise, provider, events } = run(
      new ScriptedAgent({ turns: [{ tool_calls: [write42] }, { tool_calls: [submit] }] }),
    );
    const episode = await promise;
    expect(episode.status).toBe('completed');
    expect(episode.turns).toHaveLength(2);
    expect(episode.reward.total).toBe(1);
    expect(episode.reward.components.verifier).toEqual({ value: 1, weight: 1 });
    expect(provider.started[0]!.labels).toEqual({ runId: 'run-1', episodeId: 'suite/task#0' });
    expect(provider.started[0]!.sandbox.closed).toBe(1);
    expect(events.map((event) => event.type)).toEqual([
      'episode-start',
      'turn-start',
      'tool-call',
      'tool-result',
      'turn-end',
      'turn-start',
      'tool-call',
      'tool-result',
      'turn-end',
      'verify-start',
      'verify-end',
      'episode-end',
    ]);
  });

  it('records the conversation in chat-completions order with tool results answering call ids', async () => {
    const episode = await run(
      new ScriptedAgent({
        turns: [{ text: 'look', tool_calls: [{ name: 'bash', arguments: { command: 'echo hi' } }] }],
      }),
    ).promise;
    expect(episode.messages.map((message) => message.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'assistant',
    ]);
    const assistant = episode.messages[1];
    const tool = episode.messages[2];
    expect(assistant?.role === 'assistant' && assistant.toolCalls?.[0]?.id).toBe('scripted_0_0');
    expect(tool?.role === 'tool' && tool.toolCallId).toBe('scripted_0_0');
    expect(tool?.role === 'tool' && tool.content).toContain('hi');
  });

  it('turns an unknown tool, invalid JSON and bad arguments into observations and counts them', async () => {
    const agent = new ScriptedAgent({
      turns: [
        {
          tool_calls: [
            { name: 'teleport', arguments: {} },
            { name: 'bash', arguments: '{"command": ' },
            { name: 'bash', arguments: { command: 7 } },
            { name: 'bash', arguments: { command: 'false' } },
          ],
        },
        { tool_calls: [write42, submit] },
      ],
    });
    const episode = await run(agent).promise;
    expect(episode.status).toBe('completed');
    const outputs = episode.turns[0]!.toolResults.map((result) => [result.problem, result.isError]);
    expect(outputs).toEqual([
      ['unknown-tool', true],
      ['invalid-json', true],
      ['invalid-arguments', true],
      ['tool-error', true],
    ]);
    expect(episode.turns[0]!.toolResults[0]!.output).toContain('Available tools: bash');
    expect(episode.turns[0]!.toolResults[2]!.output).toContain('command:');
    expect(episode.stats.toolProblems).toEqual({
      'unknown-tool': 1,
      'invalid-json': 1,
      'invalid-arguments': 1,
      'tool-error': 1,
    });
    expect(episode.reward.total).toBe(1);
  });

  it('answers calls after submit in the same turn without running them', async () => {
    const episode = await run(new ScriptedAgent({ turns: [{ tool_calls: [submit, write42] }] })).promise;
    expect(episode.turns[0]!.toolResults[1]!.output).toContain('Not run');
    expect(episode.reward.total).toBe(0);
  });

  it('ends with status limit (turns) after max turns, and still verifies', async () => {
    const looping = new ScriptedAgent({
      turns: Array.from({ length: 5 }, () => ({ tool_calls: [write42] })),
    });
    const episode = await run(looping, {
      limits: { maxTurns: 3, timeoutMs: 10_000, commandTimeoutMs: 1_000 },
    }).promise;
    expect(episode.status).toBe('limit');
    expect(episode.limit).toBe('turns');
    expect(episode.turns).toHaveLength(3);
    expect(episode.verifier?.reward).toBe(1);
  });

  it('ends with status limit (time) when the agent runs past the wall-clock limit', async () => {
    const slow = defineAgent({
      name: 'slow',
      act: ({ turnIndex }, { signal }) =>
        new Promise((_, reject) => {
          if (turnIndex > 0) return;
          signal.addEventListener('abort', () => reject(new PaddockError('ABORTED', 'aborted')), {
            once: true,
          });
        }),
    });
    const episode = await run(slow, { limits: { maxTurns: 3, timeoutMs: 50, commandTimeoutMs: 1_000 } })
      .promise;
    expect(episode.status).toBe('limit');
    expect(episode.limit).toBe('time');
  });

  it('ends with status limit (tokens) when usage passes max tokens', async () => {
    const agent = new ScriptedAgent({
      turns: Array.from({ length: 5 }, () => ({
        tool_calls: [write42],
        usage: { prompt_tokens: 40, completion_tokens: 10 },
      })),
    });
    const episode = await run(agent, {
      limits: { maxTurns: 10, timeoutMs: 10_000, commandTimeoutMs: 1_000, maxTokens: 120 },
    }).promise;
    expect(episode.limit).toBe('tokens');
    expect(episode.turns).toHaveLength(3);
    expect(episode.usage).toEqual({ promptTokens: 120, completionTokens: 30 });
  });

  it('records a failing agent backend as agent-error, not retryable, and closes the sandbox', async () => {
    const broken = defineAgent({
      name: 'broken',
      act: async () => Promise.reject(new PaddockError('MODEL_CALL_FAILED', 'HTTP 401')),
    });
    const { promise, provider } = run(broken);
    const episode = await promise;
    expect(episode.status).toBe('agent-error');
    expect(episode.error).toEqual({ code: 'MODEL_CALL_FAILED', message: 'HTTP 401', retryable: false });
    expect(episode.verifier).toBeUndefined();
    expect(provider.started[0]!.sandbox.closed).toBe(1);
  });

  it('records a sandbox that fails to start as a retryable infra-error', async () => {
    const provider = new MemorySandboxProvider(handler);
    provider.failuresLeft = 1;
    const episode = await runEpisode({
      task: makeTask(),
      agent: new ScriptedAgent({}),
      runId: 'r',
      episodeId: 'e',
      sandboxProvider: provider,
    });
    expect(episode.status).toBe('infra-error');
    expect(episode.error).toMatchObject({ code: 'SANDBOX_START_FAILED', retryable: true });
  });

  it('records a verifier that leaves no reward file as a failure, not a silent zero', async () => {
    const provider = new MemorySandboxProvider(() => ({}));
    const episode = await runEpisode({
      task: makeTask(),
      agent: new ScriptedAgent({ turns: [{ tool_calls: [submit] }] }),
      runId: 'r',
      episodeId: 'e',
      sandboxProvider: provider,
    });
    expect(episode.verifier?.reward).toBeNull();
    expect(episode.verifier?.error).toContain('no reward file');
  });

  it('rejects with ABORTED and records nothing when the run is aborted', async () => {
    const controller = new AbortController();
    const waiting = defineAgent({
      name: 'waiting',
      act: (_, { signal }) =>
        new Promise((_, reject) => {
          controller.abort();
          if (signal.aborted) reject(new PaddockError('ABORTED', 'aborted'));
        }),
    });
    const { promise, provider } = run(waiting, {}, { signal: controller.signal });
    await expect(promise).rejects.toMatchObject({ code: 'ABORTED' });
    expect(provider.started[0]!.sandbox.closed).toBe(1);
  });

  it('scores turn rewards after each turn and combines them with weights', async () => {
    const perCall: TurnRewardFunction = {
      name: 'calls',
      weight: 0.5,
      open: () => ({ score: async ({ turn }) => turn.toolCalls.length }),
    };
    const agent = new ScriptedAgent({
      turns: [{ tool_calls: [write42, write42] }, { tool_calls: [submit] }],
    });
    const episode = await run(agent, {}, { rewards: { turn: [perCall] } }).promise;
    expect(episode.turns.map((turn) => [turn.rewards.calls, turn.reward])).toEqual([
      [2, 1],
      [1, 0.5],
    ]);
  });

  it('adds tool-session tools and scores, closes sessions, and refuses colliding tool names', async () => {
    let closed = 0;
    const provider = (toolName: string): ToolProvider => ({
      name: 'extra',
      open: async () => ({
        tools: [
          {
            name: toolName,
            description: 'ping',
            inputSchema: { type: 'object' },
            execute: async () => ({ text: 'pong' }),
          },
        ],
        score: async () => ({ page: 0.5, form: { value: 0, weight: 2, note: 'the e-mail field is empty' } }),
        initialObservation: async () => 'The page says hello.',
        close: async () => void closed++,
      }),
    });
    const agent = new ScriptedAgent({ turns: [{ tool_calls: [{ name: 'ping', arguments: {} }, submit] }] });
    const episode = await run(agent, {}, { toolProviders: [provider('ping')] }).promise;
    expect(episode.turns[0]!.toolResults[0]!.output).toBe('pong');
    expect(episode.messages[0]).toMatchObject({
      role: 'user',
      content: 'Do the thing.\n\nThe page says hello.',
    });
    expect(episode.reward.components.page).toEqual({ value: 0.5, weight: 1 });
    expect(episode.reward.components.form).toEqual({
      value: 0,
      weight: 2,
      note: 'the e-mail field is empty',
    });
    const collision = await run(agent, {}, { toolProviders: [provider('bash')] }).promise;
    expect(collision.status).toBe('infra-error');
    expect(collision.error?.message).toContain('two tools are named bash');
    expect(closed).toBe(2);
  });
});
