import { afterEach, describe, expect, it } from 'vitest';
import { AnthropicAgent, type AnthropicAgentOptions } from '../../../agents/anthropic/index.ts';
import { isPaddockError, runEpisode, type Task } from '../../../harness/index.ts';
import { actOnce, type TurnInput } from '../../fakes/agent-session.ts';
import { anthropicError, anthropicReply, startAnthropicServer } from '../../fakes/model-servers/anthropic.ts';
import type {
  Responder,
  ScriptedResponse,
  ScriptedServer,
} from '../../fakes/model-servers/scripted-server.ts';
import { PIXEL_PNG, fakeTask, mathTools } from '../../fakes/model-servers/tasks.ts';

let server: (ScriptedServer & { baseUrl: string }) | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const FAST = { maxAttempts: 5, initialDelayMs: 5, maxDelayMs: 20 };

async function setup(script: ScriptedResponse[] | Responder, options: Partial<AnthropicAgentOptions> = {}) {
  server = await startAnthropicServer(script);
  const agent = new AnthropicAgent({
    model: 'fake-claude',
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

function input(): TurnInput {
  return {
    task: fakeTask(),
    messages: [{ role: 'user', content: 'hi' }],
    tools: [],
    episodeId: 'e',
    turnIndex: 0,
    seed: 1,
  };
}

async function failure(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isPaddockError(error)) throw new Error(`expected a PaddockError, got ${String(error)}`);
  return error;
}

const submit = () => anthropicReply({ toolUses: [{ name: 'submit', input: { answer: '5' } }] });

describe('AnthropicAgent', () => {
  it('sends tool_use and merges the tool results of a turn into one user message, in order', async () => {
    const { server, agent } = await setup([
      anthropicReply({
        text: 'Adding and looking.',
        toolUses: [
          { id: 'toolu_a', name: 'add', input: { a: 2, b: 3 } },
          { id: 'toolu_b', name: 'look', input: {} },
        ],
        usage: { input: 100, output: 20, cacheRead: 50 },
      }),
      submit(),
    ]);
    const episode = await play(agent);
    expect(episode.status).toBe('completed');
    expect(episode.answer).toBe('5');
    expect(episode.turns[0]).toMatchObject({
      text: 'Adding and looking.',
      toolCalls: [
        { id: 'toolu_a', name: 'add', arguments: '{"a":2,"b":3}' },
        { id: 'toolu_b', name: 'look', arguments: '{}' },
      ],
      finishReason: 'tool_use',
      usage: { promptTokens: 150, completionTokens: 20 },
    });

    const first = server.requests[0]!;
    expect(first.path).toBe('/v1/messages');
    expect(first.headers['x-api-key']).toBe('sk-ant-test');
    expect(first.headers['anthropic-version']).toBe('2023-06-01');
    expect(first.body).toMatchObject({
      model: 'fake-claude',
      max_tokens: 4096,
      system: [{ type: 'text', text: expect.stringMatching(/tools/), cache_control: { type: 'ephemeral' } }],
    });
    expect(first.body.tools[1]).toEqual({
      name: 'add',
      description: 'Adds two numbers.',
      input_schema: expect.objectContaining({ type: 'object' }),
    });
    expect(first.body).not.toHaveProperty('seed');

    const messages = server.requests[1]!.body.messages;
    expect(messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(messages[1].content).toEqual([
      { type: 'text', text: 'Adding and looking.' },
      { type: 'tool_use', id: 'toolu_a', name: 'add', input: { a: 2, b: 3 } },
      { type: 'tool_use', id: 'toolu_b', name: 'look', input: {} },
    ]);
    expect(messages[2].content).toEqual([
      { type: 'tool_result', tool_use_id: 'toolu_a', content: '5' },
      {
        type: 'tool_result',
        tool_use_id: 'toolu_b',
        content: [
          { type: 'text', text: 'a picture' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PIXEL_PNG } },
        ],
        cache_control: { type: 'ephemeral' },
      },
    ]);
  });

  it('keeps the task’s system prompt apart from the messages', async () => {
    const { server, agent } = await setup([submit()]);
    await play(agent, fakeTask('fake/task', {}, { systemPrompt: 'Be terse.' }));
    expect(server.requests[0]!.body.system).toEqual([
      { type: 'text', text: 'Be terse.', cache_control: { type: 'ephemeral' } },
    ]);
    expect(server.requests[0]!.body.messages[0].role).toBe('user');
  });

  it('turns unknown tools and bad arguments into observations', async () => {
    const { agent } = await setup([
      anthropicReply({
        toolUses: [
          { name: 'multiply', input: { a: 1 } },
          { name: 'add', input: { a: 'one', b: 2 } },
        ],
      }),
      submit(),
    ]);
    const episode = await play(agent);
    expect(episode.status).toBe('completed');
    expect(episode.stats.toolProblems['unknown-tool']).toBe(1);
    expect(episode.stats.toolProblems['invalid-arguments']).toBe(1);
  });

  it('retries 529 overloaded and a 429 honouring retry-after', async () => {
    const { server, agent } = await setup([
      anthropicError(529, 'Overloaded'),
      anthropicError(429, 'rate limited', { 'retry-after': '1' }),
      submit(),
    ]);
    const turn = await actOnce(agent, input(), { signal: new AbortController().signal });
    expect(turn.toolCalls[0]!.name).toBe('submit');
    expect(server.requests).toHaveLength(3);
    expect(server.requests[2]!.at - server.requests[1]!.at).toBeGreaterThanOrEqual(990);
  });

  it('fails at once on a 401, with the API’s message', async () => {
    const { server, agent } = await setup([anthropicError(401, 'invalid x-api-key'), submit()]);
    const error = await failure(actOnce(agent, input(), { signal: new AbortController().signal }));
    expect(error.code).toBe('MODEL_CALL_FAILED');
    expect(error.message).toContain('HTTP 401: invalid x-api-key');
    expect(error.retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry after an abort', async () => {
    const { server, agent } = await setup([{ hang: true }, submit()]);
    const controller = new AbortController();
    const pending = failure(actOnce(agent, input(), { signal: controller.signal }));
    await server.waitForRequests(1);
    controller.abort();
    expect((await pending).code).toBe('ABORTED');
    expect(server.requests).toHaveLength(1);
  });

  it('prices each turn and ends the episode on the cost budget', async () => {
    const { agent } = await setup(
      () =>
        anthropicReply({
          toolUses: [{ name: 'echo', input: { text: 'x' } }],
          usage: { input: 1000, output: 100 },
        }),
      { price: { inputPerMTok: 3, outputPerMTok: 15 } },
    );
    const episode = await play(agent, fakeTask('fake/task', { maxCostUsd: 0.01 }));
    expect(episode).toMatchObject({ status: 'limit', limit: 'cost' });
    expect(episode.turns[0]!.costUsd).toBeCloseTo(0.0045, 10);
    expect(episode.turns).toHaveLength(3);
  });

  it('sends max_tokens, temperature and top_p as given to a model that takes both', async () => {
    const { server, agent } = await setup([submit()], { maxTokens: 512, temperature: 0, topP: 0.5 });
    await actOnce(agent, input(), { signal: new AbortController().signal });
    expect(server.requests[0]!.body).toMatchObject({ max_tokens: 512, temperature: 0, top_p: 0.5 });
  });
});
