import { afterEach, describe, expect, it } from 'vitest';
import { AnthropicAgent, type AnthropicAgentOptions } from '../../../agents/anthropic/index.ts';
import { runEpisode, type Task } from '../../../harness/index.ts';
import {
  anthropicReply,
  signThinking,
  startStrictAnthropicServer,
  thinkingMathModel,
  type StrictAnthropicServer,
} from '../../fakes/model-servers/anthropic.ts';
import type { Responder, ScriptedResponse } from '../../fakes/model-servers/scripted-server.ts';
import { fakeTask, mathTools } from '../../fakes/model-servers/tasks.ts';

let server: StrictAnthropicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const FAST = { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 20 };

async function setup(script: ScriptedResponse[] | Responder, options: Partial<AnthropicAgentOptions> = {}) {
  server = await startStrictAnthropicServer(script);
  const agent = new AnthropicAgent({
    model: 'claude-sonnet-4-5',
    baseUrl: server.baseUrl,
    apiKey: 'sk-ant-test',
    retry: FAST,
    env: {},
    ...options,
  });
  return { server, agent };
}

function play(agent: AnthropicAgent, task: Task = fakeTask()) {
  return runEpisode({ task, agent, runId: 'run-1', episodeId: 'ep-1', seed: 7, toolProviders: [mathTools] });
}

type Block = { type: string; [key: string]: unknown };

describe('AnthropicAgent with thinking, against the strict fake', () => {
  it('completes every turn of a tool episode with a thinking budget, sending thinking blocks back verbatim', async () => {
    const { server, agent } = await setup(thinkingMathModel(), {
      thinking: { type: 'enabled', budgetTokens: 2048 },
    });
    const episode = await play(agent);
    expect(server.rejections).toEqual([]);
    expect(episode.status).toBe('completed');
    expect(episode.answer).toBe('5');
    expect(episode.turns).toHaveLength(3);
    expect(episode.turns.map((t) => t.reasoning?.text)).toEqual([
      'The task: add 2 and 3. First I check the tools work.',
      'The echo worked; now the sum.',
      'The add tool said 5; that is the answer.',
    ]);

    const first = server.requests[0]!.body;
    expect(first.thinking).toEqual({ type: 'enabled', budget_tokens: 2048 });
    expect(first.max_tokens).toBe(2048 + 4096);
    // Turn 2 is asked with turn 1's content exactly as the API gave it, thinking first.
    const answered = server.requests[1]!.body.messages[1];
    const given = episode.turns[0]!.reasoning!.blocks as Block[];
    expect(answered.content).toEqual(given);
    expect(answered.content[0]).toMatchObject({ type: 'thinking', signature: expect.any(String) });
    // Turn 3: the redacted block comes back too, in its place.
    const second = server.requests[2]!.body.messages[3].content as Block[];
    expect(second.map((b) => b.type)).toEqual(['thinking', 'redacted_thinking', 'tool_use']);
  });

  it('completes every turn with adaptive thinking on a model that has only that', async () => {
    const { server, agent } = await setup(thinkingMathModel(), {
      model: 'claude-opus-4-7',
      thinking: { type: 'adaptive' },
      effort: 'high',
      temperature: 0,
    });
    const episode = await play(agent);
    expect(server.rejections).toEqual([]);
    expect(episode.status).toBe('completed');
    expect(episode.turns).toHaveLength(3);
    expect(server.requests[0]!.body).toMatchObject({
      thinking: { type: 'adaptive' },
      output_config: { effort: 'high' },
      max_tokens: 16_000,
    });
    expect(server.requests[0]!.body).not.toHaveProperty('temperature');
    expect(agent.droppedParameters.map((d) => d.name)).toEqual(['temperature']);
  });

  it('is refused on turn 2 when the thinking blocks are not sent back (the fake is as strict as the API)', async () => {
    const { server, agent } = await setup(thinkingMathModel(), {
      thinking: { type: 'enabled', budgetTokens: 2048 },
    });
    // What agents did before: the assistant turn replayed as text and tool_use only.
    const stripping = Object.create(agent) as AnthropicAgent;
    stripping.open = (episode) => {
      const session = agent.open(episode);
      return {
        act: (input, options) =>
          session.act(
            {
              ...input,
              messages: input.messages.map((m) =>
                m.role === 'assistant' ? { ...m, reasoning: undefined } : m,
              ),
            },
            options,
          ),
      };
    };
    const episode = await runEpisode({
      task: fakeTask(),
      agent: stripping,
      runId: 'run-1',
      episodeId: 'ep-1',
      seed: 7,
      toolProviders: [mathTools],
    });
    expect(episode.status).toBe('agent-error');
    expect(server.rejections[0]).toMatch(/Expected `thinking` or `redacted_thinking`, but found `text`/);
  });
});

describe('AnthropicAgent stop reasons', () => {
  it('continues a pause_turn within the same turn, sending the paused content back as is', async () => {
    const paused = anthropicReply({
      content: [
        { type: 'thinking', thinking: 'Searching first.', signature: '' },
        { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'sum' } },
      ],
      stopReason: 'pause_turn',
      usage: { input: 10, output: 5 },
    });
    // Signed as the fake signs its own thinking.
    const pausedBody = paused as { json: { content: Block[] } };
    pausedBody.json.content[0]!.signature = signThinking('Searching first.');
    const { server, agent } = await setup(
      [
        paused,
        anthropicReply({
          text: 'Found it.',
          toolUses: [{ name: 'submit', input: { answer: '5' } }],
          usage: { input: 20, output: 7 },
        }),
      ],
      { thinking: { type: 'enabled', budgetTokens: 2048 } },
    );
    const episode = await play(agent);
    expect(server.rejections).toEqual([]);
    expect(episode.status).toBe('completed');
    expect(episode.turns).toHaveLength(1);
    expect(server.requests).toHaveLength(2);
    const continued = server.requests[1]!.body.messages;
    expect(continued.at(-1)).toEqual({ role: 'assistant', content: pausedBody.json.content });
    expect(episode.turns[0]).toMatchObject({
      text: 'Found it.',
      finishReason: 'tool_use',
      usage: { promptTokens: 30, completionTokens: 12 },
    });
    expect((episode.turns[0]!.reasoning!.blocks as Block[]).map((b) => b.type)).toEqual([
      'thinking',
      'server_tool_use',
      'text',
      'tool_use',
    ]);
    expect(agent.stats.pauses).toBe(1);
  });

  it('ends a turn that keeps pausing as truncated, after the bounded continuations', async () => {
    const { server, agent } = await setup(
      () => anthropicReply({ text: 'Still working', stopReason: 'pause_turn' }),
      { maxPauseContinuations: 2 },
    );
    const episode = await play(agent);
    expect(server.requests).toHaveLength(3);
    expect(episode.status).toBe('truncated');
    expect(episode.turns[0]!.finishReason).toBe('pause_turn');
  });

  it.each([
    ['max_tokens', 'truncated', { truncation: 'length' }],
    ['model_context_window_exceeded', 'truncated', { truncation: 'context-exceeded' }],
    ['refusal', 'refused', { refusal: 'refusal' }],
    ['end_turn', 'completed', {}],
    ['stop_sequence', 'completed', {}],
  ] as const)('maps stop_reason %s to an episode %s', async (stopReason, status, extra) => {
    const { agent } = await setup([anthropicReply({ text: 'Partial answer', stopReason })]);
    const episode = await play(agent);
    expect(episode).toMatchObject({ status, ...extra });
  });

  it('keeps a refusal out of the content and runs none of its tool calls', async () => {
    const { agent } = await setup([
      anthropicReply({
        text: 'I will not',
        toolUses: [{ name: 'echo', input: { text: 'x' } }],
        stopReason: 'refusal',
        stopDetails: { category: 'cyber' },
      }),
    ]);
    const episode = await play(agent);
    expect(episode.status).toBe('refused');
    expect(episode.turns[0]).toMatchObject({ text: null, toolCalls: [], finishReason: 'refusal' });
    expect(episode.messages.at(-1)).toMatchObject({ role: 'assistant', content: null });
  });
});

describe('AnthropicAgent prompt caching and parameters', () => {
  it('puts breakpoints on the tools, the system prompt and the last user turn, and prices cache writes and reads', async () => {
    const { server, agent } = await setup(
      [
        anthropicReply({
          toolUses: [{ name: 'add', input: { a: 2, b: 3 } }],
          usage: { input: 10, output: 10, cacheWrite: 1000 },
        }),
        anthropicReply({
          toolUses: [{ name: 'submit', input: { answer: '5' } }],
          usage: { input: 10, output: 10, cacheRead: 1000, cacheWrite: 50 },
        }),
      ],
      { price: { inputPerMTok: 3, outputPerMTok: 15 } },
    );
    const episode = await play(agent);
    expect(server.rejections).toEqual([]);
    const body = server.requests[1]!.body;
    expect(body.tools.at(-1).cache_control).toEqual({ type: 'ephemeral' });
    expect(body.tools.slice(0, -1).every((t: { cache_control?: unknown }) => !t.cache_control)).toBe(true);
    expect(body.system[0].cache_control).toEqual({ type: 'ephemeral' });
    expect(body.messages.at(-1).content.at(-1)).toMatchObject({
      type: 'tool_result',
      cache_control: { type: 'ephemeral' },
    });
    // Only the latest user turn carries one: 3 breakpoints in all.
    expect(JSON.stringify(body).match(/cache_control/g)).toHaveLength(3);
    // 10 × $3 + 1000 × $3.75 (5-minute write) + 10 × $15
    expect(episode.turns[0]!.costUsd).toBeCloseTo((10 * 3 + 1000 * 3.75 + 10 * 15) / 1e6, 12);
    // 10 × $3 + 1000 × $0.30 (read) + 50 × $3.75 + 10 × $15
    expect(episode.turns[1]!.costUsd).toBeCloseTo((10 * 3 + 1000 * 0.3 + 50 * 3.75 + 10 * 15) / 1e6, 12);
    expect(episode.turns[1]!.usage).toEqual({ promptTokens: 1060, completionTokens: 10 });
  });

  it('asks for 1-hour entries and prices their writes at the given price; cache=false sends none', async () => {
    const { server, agent } = await setup(
      [
        anthropicReply({
          toolUses: [{ name: 'submit', input: { answer: '5' } }],
          usage: { input: 0, output: 0, cacheWrite: 100 },
        }),
      ],
      { cache: { ttl: '1h' }, price: { inputPerMTok: 3, outputPerMTok: 15, cacheWrite1hPerMTok: 7 } },
    );
    const episode = await play(agent);
    expect(server.requests[0]!.body.system[0].cache_control).toEqual({ type: 'ephemeral', ttl: '1h' });
    expect(episode.turns[0]!.costUsd).toBeCloseTo((100 * 7) / 1e6, 12);
    await server.close();

    const off = await setup([anthropicReply({ toolUses: [{ name: 'submit', input: { answer: '5' } }] })], {
      cache: false,
    });
    await play(off.agent);
    expect(JSON.stringify(off.server.requests[0]!.body)).not.toContain('cache_control');
    expect(typeof off.server.requests[0]!.body.system).toBe('string');
  });

  it('sends only temperature to a model that refuses temperature with top_p, and the fake accepts it', async () => {
    const { server, agent } = await setup(
      [anthropicReply({ toolUses: [{ name: 'submit', input: { answer: '5' } }] })],
      {
        temperature: 0.2,
        topP: 0.9,
      },
    );
    const episode = await play(agent);
    expect(server.rejections).toEqual([]);
    expect(episode.status).toBe('completed');
    expect(server.requests[0]!.body).toMatchObject({ temperature: 0.2 });
    expect(server.requests[0]!.body).not.toHaveProperty('top_p');
    expect(agent.droppedParameters).toEqual([expect.objectContaining({ name: 'top_p', value: 0.9 })]);
  });
});
