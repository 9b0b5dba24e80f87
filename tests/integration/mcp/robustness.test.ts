/**
 * The MCP layer against real server processes that misbehave: they fail to start, hang,
 * crash, send huge or malformed results, or offer colliding tool names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import {
  isPaddockError,
  runEpisode,
  type Task,
  type ToolProvider,
  type ToolSession,
} from '../../../harness/index.ts';
import { McpToolProvider, type McpSession } from '../../../sandboxes/mcp/index.ts';
import { LABELS, mcpTask, processAlive, rawServer, testServer, toolContext } from './helpers.ts';

const providers: McpToolProvider[] = [];
const sessions: McpSession[] = [];

function provider(options: ConstructorParameters<typeof McpToolProvider>[0] = {}): McpToolProvider {
  const created = new McpToolProvider(options);
  providers.push(created);
  return created;
}

async function open(task: Task, using = provider()): Promise<McpSession> {
  const session = await using.open(task, { labels: LABELS, signal: new AbortController().signal });
  if (!session) throw new Error('no session');
  sessions.push(session);
  return session;
}

async function call(session: McpSession, name: string, args: unknown = {}) {
  const tool = session.tools.find((candidate) => candidate.name === name);
  if (!tool) throw new Error(`no tool ${name}`);
  return tool.execute(args, toolContext());
}

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((session) => session.close()));
  await Promise.all(providers.splice(0).map((created) => created.close()));
});

describe('MCP servers that fail to start', () => {
  it('reject open with SANDBOX_START_FAILED naming the server and the tail of its stderr', async () => {
    const task = mcpTask([{ name: 'broken', command: testServer('--fail-start') }]);
    const error = await open(task).catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'SANDBOX_START_FAILED')).toBe(true);
    expect((error as Error).message).toContain('MCP server "broken" failed to start');
    expect((error as Error).message).toContain('fatal: cannot open /nonexistent/config.json');
  });

  it('end the episode as an infra-error whose message names the server', async () => {
    const task = mcpTask([{ name: 'broken', command: testServer('--fail-start') }]);
    const episode = await runEpisode({
      task,
      agent: new ScriptedAgent({ turns: [] }),
      runId: 'r',
      episodeId: 'e',
      toolProviders: [provider()],
    });
    expect(episode.status).toBe('infra-error');
    expect(episode.error?.code).toBe('SANDBOX_START_FAILED');
    expect(episode.error?.message).toContain('"broken"');
  });

  it('name a command that does not exist', async () => {
    const task = mcpTask([{ name: 'ghost', command: 'paddock-no-such-mcp-server --flag' }]);
    const error = await open(task).catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'SANDBOX_START_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/"ghost" failed to start: .*ENOENT/);
  });

  it('give up after startup_timeout_sec and leave no process behind', async () => {
    const task = mcpTask([
      { name: 'sluggish', command: testServer('--start-delay-ms', '20000'), startup_timeout_sec: 0.5 },
    ]);
    const started = performance.now();
    const error = await open(task).catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'SANDBOX_START_FAILED')).toBe(true);
    expect((error as Error).message).toContain('within 500 ms');
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe('MCP calls that go wrong mid-episode', () => {
  it('time out a hanging call with an observation, and the episode goes on', async () => {
    const task = mcpTask([{ name: 'test', command: testServer(), call_timeout_sec: 0.5 }]);
    const agent = new ScriptedAgent({
      turns: [
        { tool_calls: [{ name: 'test__hang', arguments: {} }] },
        { tool_calls: [{ name: 'test__echo', arguments: { text: 'still alive' } }] },
        { tool_calls: [{ name: 'submit', arguments: {} }] },
      ],
    });
    const episode = await runEpisode({
      task,
      agent,
      runId: 'r',
      episodeId: 'e',
      toolProviders: [provider()],
    });
    expect(episode.status).toBe('completed');
    const [hang, echo] = episode.turns.map((turn) => turn.toolResults[0]!);
    expect(hang).toMatchObject({ isError: true, problem: 'tool-error' });
    expect(hang!.output).toContain('did not answer within 0.5 s');
    expect(echo).toMatchObject({ isError: false, output: 'still alive' });
  });

  it('tell the agent about a crash, with the stderr tail, and keep the tools down without restart', async () => {
    const session = await open(mcpTask([{ name: 'test', command: testServer() }]));
    const crashed = await call(session, 'test__crash');
    expect(crashed.isError).toBe(true);
    expect(crashed.text).toContain('boom: crashing on purpose');
    expect(crashed.text).toContain('unavailable for the rest of the episode');
    const after = await call(session, 'test__echo', { text: 'hi' });
    expect(after).toMatchObject({ isError: true });
    expect(after.text).toContain('is not running');
  });

  it('restart a crashed server when restart is true, and its state starts over', async () => {
    const session = await open(mcpTask([{ name: 'test', command: testServer(), restart: true }]));
    await call(session, 'test__counter');
    const second = JSON.parse((await call(session, 'test__counter')).text) as { count: number; pid: number };
    expect(second.count).toBe(2);
    const crashed = await call(session, 'test__crash');
    expect(crashed.isError).toBe(true);
    expect(crashed.text).toContain('It was restarted');
    const fresh = JSON.parse((await call(session, 'test__counter')).text) as { count: number; pid: number };
    expect(fresh.count).toBe(1);
    expect(fresh.pid).not.toBe(second.pid);
    expect(processAlive(second.pid)).toBe(false);
  });

  it('cap a huge result and say that it was cut', async () => {
    const session = await open(mcpTask([{ name: 'test', command: testServer(), max_output_bytes: 1000 }]));
    const output = await call(session, 'test__huge', { bytes: 200_000 });
    expect(output.isError).toBeUndefined();
    expect(output.text).toContain('[output truncated: showing 1000 of 200000 bytes]');
    expect(output.text.length).toBeLessThan(1100);
  });

  it('treat a message over the transport limit as a crash, not a hang', async () => {
    const session = await open(
      mcpTask([{ name: 'test', command: testServer(), restart: true }]),
      provider({ maxMessageBytes: 100_000 }),
    );
    const output = await call(session, 'test__huge', { bytes: 1_000_000 });
    expect(output.isError).toBe(true);
    expect(output.text).toContain('It was restarted');
    expect(await call(session, 'test__echo', { text: 'ok' })).toMatchObject({ text: 'ok' });
  });

  it('turn malformed results into observations', async () => {
    const session = await open(mcpTask([{ name: 'raw', command: rawServer(), call_timeout_sec: 0.5 }]));
    const malformed = await call(session, 'raw__malformed');
    expect(malformed.isError).toBe(true);
    expect(malformed.text).toContain('malformed tool result');
    const items = await call(session, 'raw__bad_items');
    expect(items.text).toContain('[malformed text item');
    expect(items.text).toContain('[unsupported content item of type "hologram"]');
    expect(items.text).toContain('still here');
    expect(await call(session, 'raw__garbage_then_ok')).toMatchObject({ text: 'ok after garbage' });
    const silent = await call(session, 'raw__silent');
    expect(silent.isError).toBe(true);
    expect(silent.text).toContain('timed out');
  });

  it('answer invalid arguments before the server with invalidArguments set', async () => {
    const session = await open(mcpTask([{ name: 'test', command: testServer() }]));
    expect(await call(session, 'test__echo', { text: 5 })).toMatchObject({
      isError: true,
      invalidArguments: true,
    });
    expect(await call(session, 'test__echo', [1, 2])).toMatchObject({
      isError: true,
      invalidArguments: true,
    });
  });

  it('aborting the episode during a hanging call rejects with ABORTED at once', async () => {
    const task = mcpTask([{ name: 'test', command: testServer() }]);
    const controller = new AbortController();
    const agent = new ScriptedAgent({ turns: [{ tool_calls: [{ name: 'test__hang', arguments: {} }] }] });
    const running = runEpisode({
      task,
      agent,
      runId: 'r',
      episodeId: 'e',
      toolProviders: [provider()],
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'tool-call') setTimeout(() => controller.abort(), 50);
      },
    });
    const error = await running.catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'ABORTED')).toBe(true);
  });
});

describe('MCP results', () => {
  it('bring images, structured content and resource links to the agent', async () => {
    const session = await open(mcpTask([{ name: 'test', command: testServer() }]));
    const image = await call(session, 'test__image');
    expect(image.text).toBe('a tiny image');
    expect(image.images).toEqual([{ mimeType: 'image/png', dataBase64: expect.any(String) as string }]);
    expect(JSON.parse((await call(session, 'test__structured')).text)).toEqual({
      total: 3,
      items: ['a', 'b', 'c'],
    });
    const links = await call(session, 'test__links');
    expect(links.text).toContain(
      '[resource link: report.csv <file:///data/report.csv> (text/csv) — the report]',
    );
    expect(links.text).toContain('remember the milk');
    expect(await call(session, 'test__fail')).toEqual({ text: 'the tool failed on purpose', isError: true });
  });

  it('work with the reference everything server from npm', async () => {
    const session = await open(
      mcpTask([{ name: 'everything', command: 'npx -y @modelcontextprotocol/server-everything' }]),
    );
    expect(await call(session, 'everything__echo', { message: 'hello' })).toMatchObject({
      text: 'Echo: hello',
    });
    const image = await call(session, 'everything__get-tiny-image');
    expect(image.images?.[0]?.mimeType).toBe('image/png');
    const sum = await call(session, 'everything__get-sum', { a: 2, b: 3 });
    expect(sum.text).toContain('5');
  });
});

describe('MCP tool names', () => {
  it('refuse tools of one server whose names collide once made safe', async () => {
    const error = await open(
      mcpTask([{ name: 'test', command: testServer('--tools-named', 'a.b,a_b') }]),
    ).catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toContain('would be named test__a_b');
  });

  it('refuse an MCP tool named like another provider’s tool', async () => {
    const other: ToolProvider = {
      name: 'other',
      async open(): Promise<ToolSession> {
        return {
          tools: [
            {
              name: 'test__echo',
              description: 'x',
              inputSchema: { type: 'object' },
              execute: async () => ({ text: '' }),
            },
          ],
          close: async () => undefined,
        };
      },
    };
    const episode = await runEpisode({
      task: mcpTask([{ name: 'test', command: testServer() }]),
      agent: new ScriptedAgent({ turns: [] }),
      runId: 'r',
      episodeId: 'e',
      toolProviders: [provider(), other],
    });
    expect(episode.status).toBe('infra-error');
    expect(episode.error?.message).toContain('two tools are named test__echo');
  });

  it('offer only allow-listed tools and refuse one the server does not have', async () => {
    const session = await open(
      mcpTask([{ name: 'test', command: testServer(), tools: ['echo', 'counter'] }]),
    );
    expect(session.tools.map((tool) => tool.name)).toEqual(['test__echo', 'test__counter']);
    const error = await open(mcpTask([{ name: 'test', command: testServer(), tools: ['nope'] }])).catch(
      (caught: unknown) => caught,
    );
    expect((error as Error).message).toContain('has no tool "nope"');
  });
});

describe('MCP server lifetimes', () => {
  it('stop the server process when the session closes', async () => {
    const session = await open(mcpTask([{ name: 'test', command: testServer() }]));
    const { pid } = JSON.parse((await call(session, 'test__counter')).text) as { pid: number };
    await session.close();
    expect(processAlive(pid)).toBe(false);
  });

  it('kill a server that ignores its closed stdin and SIGTERM', async () => {
    const session = await open(mcpTask([{ name: 'test', command: testServer('--stubborn') }]));
    const { pid } = JSON.parse((await call(session, 'test__counter')).text) as { pid: number };
    await session.close();
    await expect.poll(() => processAlive(pid), { timeout: 3_000 }).toBe(false);
  });

  it('share one warm server across episodes when stateless', async () => {
    const shared = provider();
    const task = mcpTask([{ name: 'test', command: testServer(), stateless: true }]);
    const first = await open(task, shared);
    const one = JSON.parse((await call(first, 'test__counter')).text) as { count: number; pid: number };
    await first.close();
    const second = await open(task, shared);
    const two = JSON.parse((await call(second, 'test__counter')).text) as { count: number; pid: number };
    expect(two).toEqual({ count: one.count + 1, pid: one.pid });
    await second.close();
    expect(processAlive(one.pid)).toBe(true);
    await shared.close();
    await expect.poll(() => processAlive(one.pid), { timeout: 5_000 }).toBe(false);
  });
});
