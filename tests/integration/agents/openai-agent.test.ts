import { afterEach, describe, expect, it } from 'vitest';
import { OpenAIAgent, type OpenAIAgentOptions } from '../../../agents/openai/index.ts';
import { isPaddockError, runEpisode, type Task } from '../../../harness/index.ts';
import { actOnce, type TurnInput } from '../../fakes/agent-session.ts';
import { errorReply, reply, startOpenAIServer, type FakeTokens } from '../../fakes/model-servers/openai.ts';
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

/** Fast retries, so that backoff tests take milliseconds unless the server asks for more. */
const FAST = { maxAttempts: 5, initialDelayMs: 5, maxDelayMs: 20 };

async function setup(script: ScriptedResponse[] | Responder, options: Partial<OpenAIAgentOptions> = {}) {
  server = await startOpenAIServer(script);
  const agent = new OpenAIAgent({
    model: 'fake-model',
    baseUrl: server.baseUrl,
    retry: FAST,
    env: {},
    ...options,
  });
  return { server, agent };
}

function play(agent: OpenAIAgent, task: Task = fakeTask(), signal?: AbortSignal) {
  return runEpisode({
    task,
    agent,
    runId: 'run-1',
    episodeId: 'ep-1',
    seed: 7,
    toolProviders: [mathTools],
    ...(signal ? { signal } : {}),
  });
}

function input(task: Task = fakeTask()): TurnInput {
  return {
    task,
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

const submit = (answer = '5') => reply({ toolCalls: [{ name: 'submit', arguments: { answer } }] });

describe('OpenAIAgent in episodes', () => {
  it('turns malformed tool calls into observations, counts them, and goes on', async () => {
    const { server, agent } = await setup([
      reply({
        text: 'Trying things.',
        toolCalls: [
          { id: 'c1', name: 'add', arguments: { a: 2, b: 3 } },
          { id: 'c2', name: 'add', arguments: '{"a": 2,' },
          { id: 'c3', name: 'multiply', arguments: { a: 2, b: 3 } },
          { id: 'c4', name: 'add', arguments: { a: 'two', b: 3 } },
        ],
        usage: { prompt: 50, completion: 20 },
      }),
      submit(),
    ]);
    const episode = await play(agent);
    expect(episode.status).toBe('completed');
    expect(episode.answer).toBe('5');
    expect(episode.stats.toolCalls).toBe(5);
    expect(episode.stats.toolProblems).toEqual({
      'unknown-tool': 1,
      'invalid-json': 1,
      'invalid-arguments': 1,
      'tool-error': 0,
    });
    expect(episode.turns[0]!.toolResults.map((result) => result.problem)).toEqual([
      undefined,
      'invalid-json',
      'unknown-tool',
      'invalid-arguments',
    ]);
    expect(episode.turns[0]!.usage).toEqual({ promptTokens: 50, completionTokens: 20 });
    expect(episode.turns[0]!.finishReason).toBe('tool_calls');
    // The second request carries each observation, answering its call by id, in call order.
    const tools = server.requests[1]!.body.messages.filter((m: { role: string }) => m.role === 'tool');
    expect(tools.map((m: { tool_call_id: string }) => m.tool_call_id)).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(tools[0].content).toBe('5');
    expect(tools[1].content).toMatch(/not valid JSON/);
    expect(tools[2].content).toMatch(/Unknown tool "multiply"/);
    expect(tools[3].content).toMatch(/Invalid arguments for add/);
  });

  it('round-trips the conversation: assistant tool_calls, then tool results by id, then their images', async () => {
    const { server, agent } = await setup([
      reply({
        text: 'Adding and looking.',
        toolCalls: [
          { id: 'call_a', name: 'add', arguments: { a: 2, b: 3 } },
          { id: 'call_b', name: 'look', arguments: {} },
        ],
      }),
      submit(),
    ]);
    await play(agent);
    expect(server.requests).toHaveLength(2);
    const first = server.requests[0]!;
    expect(first.path).toBe('/v1/chat/completions');
    expect(first.body.model).toBe('fake-model');
    expect(first.body).not.toHaveProperty('seed'); // sent only when asked for
    expect(first.body.tools.map((tool: { function: { name: string } }) => tool.function.name)).toEqual([
      'submit',
      'add',
      'echo',
      'look',
    ]);
    expect(first.body.tools[1]).toEqual({
      type: 'function',
      function: {
        name: 'add',
        description: 'Adds two numbers.',
        parameters: expect.objectContaining({ type: 'object', required: ['a', 'b'] }),
      },
    });
    const second = server.requests[1]!.body.messages;
    expect(second.map((m: { role: string }) => m.role)).toEqual([
      'system',
      'user',
      'assistant',
      'tool',
      'tool',
      'user',
    ]);
    expect(second[2]).toEqual({
      role: 'assistant',
      content: 'Adding and looking.',
      tool_calls: [
        { id: 'call_a', type: 'function', function: { name: 'add', arguments: '{"a":2,"b":3}' } },
        { id: 'call_b', type: 'function', function: { name: 'look', arguments: '{}' } },
      ],
    });
    expect(second[3]).toEqual({ role: 'tool', tool_call_id: 'call_a', content: '5' });
    expect(second[4]).toEqual({ role: 'tool', tool_call_id: 'call_b', content: 'a picture' });
    expect(second[5].content[1]).toEqual({
      type: 'image_url',
      image_url: { url: `data:image/png;base64,${PIXEL_PNG}` },
    });
  });

  it('uses the default system prompt, and the task’s own when it has one', async () => {
    const { server, agent } = await setup([submit(), submit()]);
    await play(agent);
    expect(server.requests[0]!.body.messages[0]).toEqual({
      role: 'system',
      content: expect.stringMatching(/tools/),
    });
    await play(agent, fakeTask('fake/task', {}, { systemPrompt: 'Be terse.' }));
    expect(server.requests[1]!.body.messages[0]).toEqual({ role: 'system', content: 'Be terse.' });
    expect(
      server.requests[1]!.body.messages.filter((m: { role: string }) => m.role === 'system'),
    ).toHaveLength(1);
  });

  it('returns an empty turn as is; the loop counts it and stops', async () => {
    const { agent } = await setup([reply({ text: null })]);
    const episode = await play(agent);
    expect(episode.status).toBe('completed');
    expect(episode.stats.emptyTurns).toBe(1);
    expect(episode.turns[0]).toMatchObject({ text: null, toolCalls: [], finishReason: 'stop' });
  });

  it('returns a refusal as the turn’s text and ends the episode as refused', async () => {
    const { agent } = await setup([reply({ refusal: 'I can’t help with that.' })]);
    const episode = await play(agent);
    expect(episode.turns[0]!.text).toBe('I can’t help with that.');
    expect(episode.status).toBe('refused');
  });

  it('sends the key, the sampling options and the price', async () => {
    const { server, agent } = await setup([submit()], {
      apiKey: 'sk-test',
      temperature: 0.3,
      topP: 0.9,
      maxTokens: 256,
      seed: 42,
      price: { inputPerMTok: 2, outputPerMTok: 8 },
    });
    const turn = await actOnce(agent, input(), { signal: new AbortController().signal });
    const request = server.requests[0]!;
    expect(request.headers.authorization).toBe('Bearer sk-test');
    expect(request.body).toMatchObject({ temperature: 0.3, top_p: 0.9, max_tokens: 256, seed: 42 });
    expect(turn.costUsd).toBeUndefined(); // the reply had no usage
  });
});

describe('OpenAIAgent retries', () => {
  it('retries a 429 after the wait its retry-after asks for', async () => {
    const { server, agent } = await setup([errorReply(429, 'slow down', { 'retry-after': '1' }), submit()]);
    const turn = await actOnce(agent, input(), { signal: new AbortController().signal });
    expect(turn.toolCalls[0]!.name).toBe('submit');
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(990);
    expect(agent.stats.retries).toBe(1);
  });

  it('honours retry-after-ms', async () => {
    const { server, agent } = await setup([
      errorReply(429, 'slow down', { 'retry-after-ms': '300' }),
      submit(),
    ]);
    await actOnce(agent, input(), { signal: new AbortController().signal });
    const gap = server.requests[1]!.at - server.requests[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(295);
    expect(gap).toBeLessThan(1_000);
  });

  it('retries a 500 and a dropped connection', async () => {
    const { server, agent } = await setup([errorReply(500, 'boom'), { drop: true }, submit()]);
    const episode = await play(agent);
    expect(episode.status).toBe('completed');
    expect(server.requests).toHaveLength(3);
  });

  it.each([400, 401, 404])('fails at once on a %i', async (status) => {
    const { server, agent } = await setup([errorReply(status, 'no'), submit()]);
    const error = await failure(actOnce(agent, input(), { signal: new AbortController().signal }));
    expect(error.code).toBe('MODEL_CALL_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`HTTP ${status}: no`);
    expect(error.details.status).toBe(status);
    expect(error.details.attempts).toHaveLength(1);
    expect(server.requests).toHaveLength(1);
  });

  it('ends the episode as agent-error on a 401', async () => {
    const { server, agent } = await setup([errorReply(401, 'invalid api key')]);
    const episode = await play(agent);
    expect(episode.status).toBe('agent-error');
    expect(episode.error).toMatchObject({ code: 'MODEL_CALL_FAILED', retryable: false });
    expect(server.requests).toHaveLength(1);
  });

  it('keeps every attempt’s error when the retries run out, as MODEL_UNREACHABLE', async () => {
    const { server, agent } = await setup([errorReply(500, 'one'), errorReply(503, 'two'), { drop: true }], {
      retry: { ...FAST, maxAttempts: 3 },
    });
    const error = await failure(actOnce(agent, input(), { signal: new AbortController().signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/after 3 attempts/);
    const attempts = error.details.attempts as { attempt: number; status?: number; message: string }[];
    expect(attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 500],
      [2, 503],
      [3, undefined],
    ]);
    expect(attempts[0]!.message).toContain('one');
    expect(attempts[2]!.message).toMatch(/connection failed/);
    expect(server.requests).toHaveLength(3);
  });

  it('does not retry after an abort', async () => {
    const { server, agent } = await setup([{ hang: true }, submit()]);
    const controller = new AbortController();
    const pending = failure(actOnce(agent, input(), { signal: controller.signal }));
    await server.waitForRequests(1);
    controller.abort();
    const error = await pending;
    expect(error.code).toBe('ABORTED');
    expect(server.requests).toHaveLength(1);
  });

  it('gives up on a call that does not answer within timeoutMs', async () => {
    const { server, agent } = await setup([{ hang: true }], { timeoutMs: 200, retry: { maxAttempts: 1 } });
    const error = await failure(actOnce(agent, input(), { signal: new AbortController().signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.message).toContain('no answer within 200 ms');
    expect(error.retryable).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a call that timed out', async () => {
    const { server, agent } = await setup([{ hang: true }, submit()], { timeoutMs: 200 });
    const turn = await actOnce(agent, input(), { signal: new AbortController().signal });
    expect(turn.toolCalls).toHaveLength(1);
    expect(server.requests).toHaveLength(2);
  });

  it.each([
    ['a body that is not JSON', { raw: '<html>oops</html>' }],
    ['JSON that is not a chat completion', { json: { choices: [] } }],
  ])('fails with MODEL_CALL_FAILED on %s, without retrying', async (_name, response) => {
    const { server, agent } = await setup([response, submit()]);
    const error = await failure(actOnce(agent, input(), { signal: new AbortController().signal }));
    expect(error.code).toBe('MODEL_CALL_FAILED');
    expect(server.requests).toHaveLength(1);
  });
});

describe('OpenAIAgent and limits', () => {
  const echo = (usage = { prompt: 60, completion: 10 }) =>
    reply({ toolCalls: [{ name: 'echo', arguments: { text: 'again' } }], usage });

  it('ends the episode on max tokens', async () => {
    const { agent } = await setup(() => echo());
    const episode = await play(agent, fakeTask('fake/task', { maxTokens: 100 }));
    expect(episode).toMatchObject({ status: 'limit', limit: 'tokens' });
    expect(episode.turns).toHaveLength(2);
    expect(episode.usage).toEqual({ promptTokens: 120, completionTokens: 20 });
  });

  it('ends the episode on max model calls', async () => {
    const { server, agent } = await setup(() => echo());
    const episode = await play(agent, fakeTask('fake/task', { maxModelCalls: 3 }));
    expect(episode).toMatchObject({ status: 'limit', limit: 'model-calls' });
    expect(server.requests).toHaveLength(3);
  });

  it('ends the episode on the cost budget, pricing each turn', async () => {
    const { agent } = await setup(() => echo({ prompt: 1000, completion: 100 }), {
      price: { inputPerMTok: 1, outputPerMTok: 2 },
    });
    const episode = await play(agent, fakeTask('fake/task', { maxCostUsd: 0.002 }));
    expect(episode).toMatchObject({ status: 'limit', limit: 'cost' });
    expect(episode.turns).toHaveLength(2);
    expect(episode.turns[0]!.costUsd).toBeCloseTo(0.0012, 10);
  });

  it('ends the episode on wall time, even during a model call', async () => {
    const { agent } = await setup(() => ({ ...echo(), delayMs: 120 }));
    const episode = await play(agent, fakeTask('fake/task', { timeoutMs: 400 }));
    expect(episode).toMatchObject({ status: 'limit', limit: 'time' });
    expect(episode.turns.length).toBeGreaterThanOrEqual(2);
    expect(episode.turns.length).toBeLessThanOrEqual(4);
  });
});

describe('OpenAIAgent token-exact turns', () => {
  const turns: FakeTokens[] = [
    { promptIds: [1, 2, 3, 4], completionIds: [10, 11, 12], logprobs: [-0.5, -0.25, -1.5e-7] },
    {
      promptIds: [1, 2, 3, 4, 10, 11, 12, 20, 21],
      completionIds: [30, 31],
      logprobs: [-0.125, -9999],
      promptIdsOn: 'choice',
      idsOnlyInLogprobs: true,
    },
  ];

  it('records the ids and logprobs of every turn exactly as the server sent them', async () => {
    const { server, agent } = await setup(
      [
        reply({ toolCalls: [{ name: 'echo', arguments: { text: 'x' } }], tokens: turns[0]! }),
        reply({ toolCalls: [{ name: 'submit', arguments: {} }], tokens: turns[1]! }),
      ],
      { tokenExact: true },
    );
    const episode = await play(agent);
    expect(episode.turns.map((turn) => turn.tokens)).toMatchObject(
      turns.map((t) => ({
        promptIds: t.promptIds,
        completionIds: t.completionIds,
        completionLogprobs: t.logprobs,
      })),
    );
    expect(server.requests[0]!.body).toMatchObject({
      logprobs: true,
      return_token_ids: true,
      return_tokens_as_token_ids: true,
    });
    expect(agent.tokenExactUnavailable).toBe(0);
  });

  it('leaves tokens unset and counts it when the server sends no ids', async () => {
    const { agent } = await setup([submit()], { tokenExact: true });
    const episode = await play(agent);
    expect(episode.turns[0]!.tokens).toBeUndefined();
    expect(agent.tokenExactUnavailable).toBe(1);
  });

  it('asks for no token fields when tokenExact is false', async () => {
    const { server, agent } = await setup([submit()], { tokenExact: false });
    await play(agent);
    expect(server.requests[0]!.body).not.toHaveProperty('logprobs');
    expect(server.requests[0]!.body).not.toHaveProperty('return_token_ids');
  });

  it('in auto mode, drops the token fields for good when the server refuses them', async () => {
    const { server, agent } = await setup([
      errorReply(400, 'Unrecognized request argument supplied: return_token_ids'),
      submit(),
      submit(),
    ]);
    await actOnce(agent, input(), { signal: new AbortController().signal });
    await actOnce(agent, input(), { signal: new AbortController().signal });
    expect(server.requests[0]!.body.return_token_ids).toBe(true);
    expect(server.requests[1]!.body).not.toHaveProperty('return_token_ids');
    expect(server.requests[2]!.body).not.toHaveProperty('return_token_ids');
  });
});
