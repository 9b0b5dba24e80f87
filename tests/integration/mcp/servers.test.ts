/**
 * Servers reached over streamable HTTP, servers inside a sandbox through its `spawn()`,
 * and rewards read from server state (expectations and scorer modules).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { isPaddockError, runEpisode, type Task } from '../../../harness/index.ts';
import { McpToolProvider, type McpSession } from '../../../sandboxes/mcp/index.ts';
import { serveCalculatorHttp } from '../../../sandboxes/mcp/servers/calculator.ts';
import { LocalSandboxProvider, type LocalSandbox } from './fixtures/local-sandbox.ts';
import { LABELS, REPO, mcpTask, testServer, toolContext, tsCommand } from './helpers.ts';

const CALCULATOR = path.join(REPO, 'sandboxes/mcp/servers/calculator.ts');
const provider = new McpToolProvider();
const sessions: McpSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((session) => session.close()));
});
afterAll(() => provider.close());

async function open(task: Task, sandbox?: LocalSandbox): Promise<McpSession> {
  const session = await provider.open(task, {
    labels: LABELS,
    signal: new AbortController().signal,
    ...(sandbox ? { sandbox } : {}),
  });
  sessions.push(session!);
  return session!;
}

describe('a server over streamable HTTP', () => {
  let http: Awaited<ReturnType<typeof serveCalculatorHttp>>;
  beforeAll(async () => {
    http = await serveCalculatorHttp(0);
  });
  afterAll(() => http.close());

  it('offers its tools, keeps one session per episode, and scores from its state', async () => {
    const url = `http://127.0.0.1:${http.port}/mcp`;
    const task = mcpTask({
      servers: [{ name: 'calc', url }],
      score: [{ server: 'calc', tool: 'ledger', expect: { jsonpath: '$.records.total', equals: 37.5 } }],
    });
    const agent = new ScriptedAgent({
      turns: [
        { tool_calls: [{ name: 'calc__evaluate', arguments: { expression: '3 * 12.5' } }] },
        { tool_calls: [{ name: 'calc__record', arguments: { key: 'total', value: 37.5 } }] },
        { tool_calls: [{ name: 'submit' }] },
      ],
    });
    const episode = await runEpisode({ task, agent, runId: 'r', episodeId: 'e', toolProviders: [provider] });
    expect(episode.turns[0]?.toolResults[0]?.output).toBe('{"value":37.5}');
    expect(episode.reward.components).toEqual({ 'mcp:calc.ledger': { value: 1, weight: 1 } });

    // A new episode is a new HTTP session with a fresh ledger.
    const session = await open(task);
    expect(await session.score({ signal: new AbortController().signal })).toMatchObject({
      'mcp:calc.ledger': { value: 0 },
    });
  });

  it('tells the agent when the server cannot be reached', async () => {
    const closed = await serveCalculatorHttp(0);
    const session = await open(mcpTask([{ name: 'calc', url: `http://127.0.0.1:${closed.port}/mcp` }]));
    await closed.close();
    const output = await session.tools
      .find((tool) => tool.name === 'calc__list_items')!
      .execute({}, toolContext());
    expect(output.isError).toBe(true);
    expect(output.text).toMatch(/^calc__list_items failed: /);
  });
});

describe('a server inside the sandbox (where: sandbox, over Sandbox.spawn)', () => {
  const sandboxes = new LocalSandboxProvider();
  afterAll(async () => {
    await Promise.all(sandboxes.started.map((sandbox) => sandbox.close()));
  });

  it('runs through the sandbox’s spawn() and its tools work', async () => {
    const sandbox = await sandboxes.start({
      cpus: 1,
      memoryMb: 256,
      pids: 64,
      network: false,
      env: {},
      files: [],
    });
    const session = await open(
      mcpTask([{ name: 'calc', command: tsCommand(CALCULATOR), where: 'sandbox' }]),
      sandbox,
    );
    const output = await session.tools
      .find((tool) => tool.name === 'calc__evaluate')!
      .execute({ expression: '2 ^ 10' }, toolContext());
    expect(output.text).toBe('{"value":1024}');
  });

  it('copies an npx package installed on the host into the sandbox and runs it there', async () => {
    const sandbox = await sandboxes.start({
      cpus: 1,
      memoryMb: 256,
      pids: 64,
      network: false,
      env: {},
      files: [],
    });
    const session = await open(
      mcpTask([
        {
          name: 'memory',
          command: 'npx -y @modelcontextprotocol/server-memory',
          where: 'sandbox',
          env: { MEMORY_FILE_PATH: '/tmp/m.jsonl' },
        },
      ]),
      sandbox,
    );
    await session.tools
      .find((tool) => tool.name === 'memory__create_entities')!
      .execute({ entities: [{ name: 'Ada', entityType: 'person', observations: [] }] }, toolContext());
    expect(
      existsSync(
        sandbox.hostPath('/opt/paddock-mcp/node_modules/@modelcontextprotocol/server-memory/package.json'),
      ),
    ).toBe(true);
    const graph = await session.tools
      .find((tool) => tool.name === 'memory__read_graph')!
      .execute({}, toolContext());
    expect(graph.text).toContain('"Ada"');
  });

  it('reports a crash of a server in the sandbox to the agent', async () => {
    const sandbox = await sandboxes.start({
      cpus: 1,
      memoryMb: 256,
      pids: 64,
      network: false,
      env: {},
      files: [],
    });
    const session = await open(mcpTask([{ name: 'test', command: testServer(), where: 'sandbox' }]), sandbox);
    const output = await session.tools
      .find((tool) => tool.name === 'test__crash')!
      .execute({}, toolContext());
    expect(output.isError).toBe(true);
    expect(output.text).toContain('boom: crashing on purpose');
  });

  it('refuses where: sandbox for a task without a sandbox', async () => {
    const error = await open(
      mcpTask([{ name: 'calc', command: tsCommand(CALCULATOR), where: 'sandbox' }]),
    ).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain('the task has no environment');
  });
});

describe("Harbor's raw mcp_servers tables", () => {
  const harborTask = (section: unknown): Task => ({ ...mcpTask([]), extensions: { mcp_servers: section } });

  it('are read when the session opens, a stdio server running on the host when there is no sandbox', async () => {
    const [command, ...args] = tsCommand(CALCULATOR);
    const session = await open(
      harborTask([{ name: 'calc', transport: 'stdio', command, args, extra: 'ignored' }]),
    );
    expect(session.tools.map((tool) => tool.name)).toContain('calc__evaluate');
  });

  it('are refused with TASK_INVALID naming the field when invalid', async () => {
    const error = await open(harborTask([{ name: 'calc', transport: 'stdio' }])).catch(
      (caught: unknown) => caught,
    );
    expect(isPaddockError(error, 'TASK_INVALID')).toBe(true);
    expect((error as Error).message).toContain('0.command: required: a stdio server needs a command');
  });
});

describe('rewards from MCP state', () => {
  const calc = { name: 'calc', command: tsCommand(CALCULATOR) };
  const record = (session: McpSession, key: string, value: number) =>
    session.tools.find((tool) => tool.name === 'calc__record')!.execute({ key, value }, toolContext());

  it('gives the fraction of expectations met with partial, and all-or-nothing otherwise', async () => {
    const expect2 = [
      { jsonpath: '$.records.total', equals: 37.5 },
      { jsonpath: '$.records.tax', equals: 7.5 },
    ];
    const session = await open(
      mcpTask({
        servers: [calc],
        score: [
          { name: 'strict', server: 'calc', tool: 'ledger', expect: expect2 },
          { name: 'partial', server: 'calc', tool: 'ledger', expect: expect2, partial: true },
        ],
      }),
    );
    await record(session, 'total', 37.5);
    expect(await session.score({ signal: new AbortController().signal })).toEqual({
      'mcp:strict': { value: 0, note: '$.records.tax selected nothing' },
      'mcp:partial': { value: 0.5, note: '$.records.tax selected nothing' },
    });
    expect(session.scoreNotes).toEqual([
      'mcp:strict: $.records.tax selected nothing',
      'mcp:partial: $.records.tax selected nothing',
    ]);
  });

  it('runs a scorer module that calls the servers, any tool, allow-listed or not', async () => {
    const session = await open(
      mcpTask({ servers: [{ ...calc, tools: ['record'] }], score: [{ script: 'scorers/ledger-scorer.ts' }] }),
    );
    expect(session.tools.map((tool) => tool.name)).toEqual(['calc__record']);
    await record(session, 'total', 37.5);
    expect(await session.score({ signal: new AbortController().signal })).toEqual({
      'mcp:ledger-scorer.total': { value: 1 },
      'mcp:ledger-scorer.count': { value: 1 },
    });
  });

  it('scores 0 when the server died before scoring', async () => {
    const session = await open(
      mcpTask({
        servers: [{ name: 'test', command: testServer() }],
        score: [{ server: 'test', tool: 'echo', arguments: { text: 'x' }, expect: { equals: 'x' } }],
      }),
    );
    await session.tools.find((tool) => tool.name === 'test__crash')!.execute({}, toolContext());
    expect(await session.score({ signal: new AbortController().signal })).toMatchObject({
      'mcp:test.echo': { value: 0, note: expect.any(String) },
    });
  });
});
