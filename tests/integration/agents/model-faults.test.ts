/**
 * Model-server faults, through real HTTP on loopback: whose fault each one is (a server
 * that cannot be reached or keeps failing is MODEL_UNREACHABLE, retryable, and the episode
 * an infra-error; a refused call is MODEL_CALL_FAILED), the per-call deadline under forced
 * garbage collection, the cap on a reply's size, and `probe()`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { AnthropicAgent } from '../../../agents/anthropic/index.ts';
import { OpenAIAgent, parseModelAgentSpec, type OpenAIAgentOptions } from '../../../agents/openai/index.ts';
import { isPaddockError, runEpisode, type PaddockError } from '../../../harness/index.ts';
import { actOnce, type TurnInput } from '../../fakes/agent-session.ts';
import { anthropicError, startAnthropicServer } from '../../fakes/model-servers/anthropic.ts';
import { chatCompletion, errorReply, startOpenAIServer } from '../../fakes/model-servers/openai.ts';
import type { Responder, ScriptedResponse } from '../../fakes/model-servers/scripted-server.ts';
import { fakeTask } from '../../fakes/model-servers/tasks.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** Collects garbage every `everyMs` until stopped (the flag is set at run time, as `--expose-gc` would). */
function forceGc(everyMs = 5): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const timer = setInterval(gc, everyMs);
  cleanups.push(async () => clearInterval(timer));
}

const FAST = { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 };
const input: TurnInput = {
  task: fakeTask(),
  episodeId: 'e',
  messages: [{ role: 'user', content: 'hi' }],
  tools: [],
  turnIndex: 0,
  seed: 1,
};
const signal = new AbortController().signal;

async function openai(script: ScriptedResponse[] | Responder, options: Partial<OpenAIAgentOptions> = {}) {
  const server = await startOpenAIServer(script);
  cleanups.push(() => server.close());
  const agent = new OpenAIAgent({
    model: 'fake-model',
    baseUrl: server.baseUrl,
    retry: FAST,
    env: {},
    ...options,
  });
  return { server, agent };
}

async function failure(promise: Promise<unknown>): Promise<PaddockError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isPaddockError(error)) throw new Error(`expected a PaddockError, got ${String(error)}`);
  return error;
}

/** A loopback port nothing listens on (a server was there and closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a model server that never answers', () => {
  it('fails the call within 1 s of timeoutMs while garbage is collected all the time', async () => {
    const { server, agent } = await openai([{ hang: true }], { timeoutMs: 1_500, retry: { maxAttempts: 1 } });
    forceGc();
    const started = performance.now();
    const error = await failure(actOnce(agent, input, { signal }));
    const lateness = performance.now() - started - 1_500;
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('no answer within 1500 ms');
    expect(lateness).toBeGreaterThanOrEqual(-5);
    expect(lateness).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
    console.log(`model call deadline 1500 ms under forced GC: fired ${Math.round(lateness)} ms late`);
  });

  it('retries each silent attempt and then fails as MODEL_UNREACHABLE, every attempt kept', async () => {
    const { server, agent } = await openai([{ hang: true }, { hang: true }], {
      timeoutMs: 300,
      retry: { ...FAST, maxAttempts: 2 },
    });
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.message).toMatch(/no answer within 300 ms \(after 2 attempts\)/);
    expect((error.details.attempts as unknown[]).length).toBe(2);
    expect(server.requests).toHaveLength(2);
  });

  it('makes the episode an infra-error (retryable), not the agent’s outcome', async () => {
    const { agent } = await openai([{ hang: true }], { timeoutMs: 200, retry: { maxAttempts: 1 } });
    const episode = await runEpisode({ task: fakeTask(), agent, runId: 'r', episodeId: 'e', seed: 0 });
    expect(episode.status).toBe('infra-error');
    expect(episode.error).toMatchObject({ code: 'MODEL_UNREACHABLE', retryable: true });
  });
});

describe('a model server that stops in the middle of its reply', () => {
  it('fails the call at its deadline, not as a malformed body', async () => {
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write('{"choices": [');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const agent = new OpenAIAgent({
      model: 'm',
      baseUrl,
      timeoutMs: 500,
      retry: { maxAttempts: 1 },
      env: {},
    });
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.message).toContain('no answer within 500 ms');
  });
});

describe('a time limit that passes during a model call', () => {
  it('is an infra-error when the server answers nothing at all (probe: no answer within 5 s)', async () => {
    const { server, agent } = await openai(() => ({ hang: true }), { timeoutMs: 60_000 });
    const episode = await runEpisode({
      task: fakeTask('t', { timeoutMs: 1_000 }),
      agent,
      runId: 'r',
      episodeId: 'e',
      seed: 0,
    });
    expect(episode.status).toBe('infra-error');
    expect(episode.error).toMatchObject({ code: 'MODEL_UNREACHABLE', retryable: true });
    expect(episode.error?.message).toContain('no answer within 5000 ms');
    expect(server.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      'POST /v1/chat/completions',
      'GET /v1/models',
    ]);
  });

  it('is the limit when the server answers its probe (a slow model, not a dead server)', async () => {
    const { agent } = await openai(
      (request) => (request.method === 'GET' ? { json: { object: 'list', data: [] } } : { hang: true }),
      { timeoutMs: 60_000 },
    );
    const episode = await runEpisode({
      task: fakeTask('t', { timeoutMs: 1_000 }),
      agent,
      runId: 'r',
      episodeId: 'e',
      seed: 0,
    });
    expect(episode.status).toBe('limit');
    expect(episode.limit).toBe('time');
  });
});

describe('faults of the connection', () => {
  it('a refused connection is MODEL_UNREACHABLE after the retries, with ECONNREFUSED on each attempt', async () => {
    const port = await closedPort();
    const agent = new OpenAIAgent({
      model: 'm',
      baseUrl: `http://127.0.0.1:${port}/v1`,
      retry: FAST,
      env: {},
    });
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.retryable).toBe(true);
    const attempts = error.details.attempts as { errorCode?: string }[];
    expect(attempts.map((attempt) => attempt.errorCode)).toEqual([
      'ECONNREFUSED',
      'ECONNREFUSED',
      'ECONNREFUSED',
    ]);
  });

  it('a connection reset on every attempt is MODEL_UNREACHABLE', async () => {
    const { server, agent } = await openai([{ drop: true }, { drop: true }, { drop: true }]);
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.message).toMatch(/connection failed/);
    expect(server.requests).toHaveLength(3);
  });

  it('a host name that does not resolve is MODEL_UNREACHABLE', async () => {
    const agent = new OpenAIAgent({
      model: 'm',
      baseUrl: 'http://paddock-no-such-host.invalid/v1',
      retry: { ...FAST, maxAttempts: 2 },
      env: {},
    });
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });
});

describe('HTTP statuses', () => {
  it.each([
    [503, 'overloaded'],
    [500, 'internal'],
    [429, 'slow down'],
  ])('a %i that persists through the retries is MODEL_UNREACHABLE, retryable', async (status, message) => {
    const { server, agent } = await openai(() => errorReply(status, message));
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.details.status).toBe(status);
    expect(error.message).toContain(`HTTP ${status}: ${message} (after 3 attempts)`);
    expect(server.requests).toHaveLength(3);
  });

  it.each([400, 401, 403, 404, 422])('a %i is MODEL_CALL_FAILED at once, not retryable', async (status) => {
    const { server, agent } = await openai(() => errorReply(status, 'refused'));
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_CALL_FAILED');
    expect(error.retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it('a 401 ends the episode as agent-error, not retryable', async () => {
    const { agent } = await openai(() => errorReply(401, 'bad key'));
    const episode = await runEpisode({ task: fakeTask(), agent, runId: 'r', episodeId: 'e', seed: 0 });
    expect(episode.status).toBe('agent-error');
    expect(episode.error).toMatchObject({ code: 'MODEL_CALL_FAILED', retryable: false });
  });

  it('Anthropic’s 529 overloaded that persists is MODEL_UNREACHABLE; its 401 is MODEL_CALL_FAILED', async () => {
    const overloaded = await startAnthropicServer(() => anthropicError(529, 'Overloaded'));
    cleanups.push(() => overloaded.close());
    const agent = new AnthropicAgent({ model: 'c', baseUrl: overloaded.baseUrl, retry: FAST, env: {} });
    const error = await failure(actOnce(agent, input, { signal }));
    expect(error.code).toBe('MODEL_UNREACHABLE');
    expect(error.details.status).toBe(529);

    const refusing = await startAnthropicServer(() => anthropicError(401, 'invalid x-api-key'));
    cleanups.push(() => refusing.close());
    const refused = new AnthropicAgent({ model: 'c', baseUrl: refusing.baseUrl, retry: FAST, env: {} });
    expect((await failure(actOnce(refused, input, { signal }))).code).toBe('MODEL_CALL_FAILED');
  });
});

/** A server that answers 200 with `bytes` of a JSON string, chunked (no content-length) or not. */
async function bigReplyServer(bytes: number, chunked: boolean): Promise<string> {
  const server: Server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, {
        'content-type': 'application/json',
        ...(chunked ? {} : { 'content-length': String(bytes) }),
      });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let sent = 0;
      const pump = (): void => {
        while (sent < bytes) {
          const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
          sent += part.length;
          if (!response.write(part)) return void response.once('drain', pump);
        }
        response.end();
      };
      response.on('close', () => (sent = bytes));
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

describe('the cap on a reply’s size', () => {
  it.each([
    ['announced by content-length', false],
    ['streamed without a length', true],
  ])(
    'fails a reply over max_response_bytes (%s), saying the cap bit, without retrying',
    async (_name, chunked) => {
      const baseUrl = await bigReplyServer(3 * 1024 * 1024, chunked);
      const agent = parseModelAgentSpec(`openai:m?max_response_bytes=${1024 * 1024}&max_attempts=3`, {
        OPENAI_BASE_URL: baseUrl,
      });
      const error = await failure(actOnce(agent, input, { signal }));
      expect(error.code).toBe('MODEL_CALL_FAILED');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain('passed the cap of 1048576 bytes (max_response_bytes)');
      expect(error.details.maxResponseBytes).toBe(1024 * 1024);
      expect((error.details.attempts as unknown[]).length).toBe(1);
    },
  );

  it('records the cap on the episode’s error', async () => {
    const baseUrl = await bigReplyServer(2 * 1024 * 1024, true);
    const agent = new OpenAIAgent({
      model: 'm',
      baseUrl,
      maxResponseBytes: 1024 * 1024,
      retry: FAST,
      env: {},
    });
    const episode = await runEpisode({ task: fakeTask(), agent, runId: 'r', episodeId: 'e', seed: 0 });
    expect(episode.status).toBe('agent-error');
    expect(episode.error?.message).toContain('max_response_bytes');
  });

  it('reads a reply just under the cap', async () => {
    const body = JSON.stringify(chatCompletion({ text: 'x'.repeat(10_000) }));
    const { agent } = await openai([{ raw: body, headers: { 'content-type': 'application/json' } }], {
      maxResponseBytes: Buffer.byteLength(body),
    });
    const turn = await actOnce(agent, input, { signal });
    expect(turn.text).toHaveLength(10_000);
  });

  it('refuses a max_response_bytes that is not a positive integer', () => {
    expect(() =>
      parseModelAgentSpec('openai:m?max_response_bytes=0', { OPENAI_BASE_URL: 'http://x/v1' }),
    ).toThrow(/max_response_bytes/);
    expect(() =>
      parseModelAgentSpec('openai:m?timeout_ms=2147483648', { OPENAI_BASE_URL: 'http://x/v1' }),
    ).toThrow(/timeout_ms/);
  });
});

describe('probe()', () => {
  it('asks an OpenAI-compatible server GET <base>/models and says it answers', async () => {
    const { server, agent } = await openai(() => ({ json: { object: 'list', data: [] } }), {
      apiKey: 'sk-test',
    });
    const result = await agent.probe();
    expect(result.ok).toBe(true);
    expect(result.detail).toMatch(/HTTP 200/);
    expect(server.requests[0]).toMatchObject({ method: 'GET', path: '/v1/models' });
    expect(server.requests[0]!.headers.authorization).toBe('Bearer sk-test');
  });

  it('asks an Anthropic server GET /v1/models with its key and version headers', async () => {
    const server = await startAnthropicServer(() => ({ json: { data: [], has_more: false } }));
    cleanups.push(() => server.close());
    const agent = new AnthropicAgent({ model: 'c', baseUrl: server.baseUrl, apiKey: 'k', env: {} });
    expect((await agent.probe()).ok).toBe(true);
    expect(server.requests[0]).toMatchObject({ method: 'GET', path: '/v1/models' });
    expect(server.requests[0]!.headers['x-api-key']).toBe('k');
    expect(server.requests[0]!.headers['anthropic-version']).toBe('2023-06-01');
  });

  it('counts a 401 as an answer and a 503 as none', async () => {
    const { agent } = await openai(() => errorReply(401, 'no key'));
    expect((await agent.probe()).ok).toBe(true);
    const { agent: failing } = await openai(() => errorReply(503, 'down'));
    const result = await failing.probe();
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/HTTP 503/);
  });

  it('says a refused connection is no answer, without throwing', async () => {
    const port = await closedPort();
    const agent = new OpenAIAgent({ model: 'm', baseUrl: `http://127.0.0.1:${port}/v1`, env: {} });
    const result = await agent.probe();
    expect(result.ok).toBe(false);
    expect(result.detail).toContain('ECONNREFUSED');
  });

  it('gives up on a silent server after its own 5 s deadline, under forced GC', async () => {
    const { agent } = await openai([{ hang: true }]);
    forceGc();
    const started = performance.now();
    const result = await agent.probe();
    const lateness = performance.now() - started - 5_000;
    expect(result).toMatchObject({ ok: false, detail: expect.stringContaining('no answer within 5000 ms') });
    expect(lateness).toBeGreaterThanOrEqual(-5);
    expect(lateness).toBeLessThan(1_000);
  });

  it('stops when its signal aborts', async () => {
    const { server, agent } = await openai([{ hang: true }]);
    const controller = new AbortController();
    const probing = agent.probe({ signal: controller.signal });
    await server.waitForRequests(1);
    controller.abort();
    expect(await probing).toMatchObject({ ok: false, detail: expect.stringContaining('aborted') });
  });
});
