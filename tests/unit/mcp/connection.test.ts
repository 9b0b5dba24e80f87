/**
 * McpServerConnection and ProcessStdioTransport against in-process servers: the SDK's
 * in-memory transport pair, and a fake SandboxProcess whose pipes are PassThroughs.
 */
import { PassThrough } from 'node:stream';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isPaddockError, type SandboxProcess } from '../../../harness/index.ts';
import { McpServerConnection, ProcessStdioTransport } from '../../../sandboxes/mcp/index.ts';

function makeServer(): McpServer {
  const server = new McpServer({ name: 'unit', version: '1.0.0' });
  let count = 0;
  server.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  server.registerTool('count', {}, async () => ({ content: [{ type: 'text', text: String(++count) }] }));
  server.registerTool('hang', {}, () => new Promise<never>(() => undefined));
  return server;
}

/** A connection to a fresh in-memory server per (re)start; `servers` holds them. */
function inMemory(restart = false) {
  const servers: { server: McpServer; transport: InMemoryTransport }[] = [];
  const connection = new McpServerConnection({
    name: 'unit',
    startupTimeoutMs: 5_000,
    restart,
    connect: async () => {
      const [client, serverSide] = InMemoryTransport.createLinkedPair();
      const server = makeServer();
      await server.connect(serverSide);
      servers.push({ server, transport: serverSide });
      return { transport: client, stderrTail: () => 'last words' };
    },
  });
  return { connection, servers };
}

const signal = new AbortController().signal;

describe('McpServerConnection', () => {
  it('lists tools at start and calls them', async () => {
    const { connection } = inMemory();
    await connection.start(signal);
    expect(connection.tools.map((tool) => tool.name)).toEqual(['echo', 'count', 'hang']);
    expect(await connection.callTool('echo', { text: 'hi' }, { signal, timeoutMs: 1_000 })).toEqual({
      ok: true,
      result: { content: [{ type: 'text', text: 'hi' }] },
    });
    await connection.close();
  });

  it('answers a call past its timeout with a failure, and stays usable', async () => {
    const { connection } = inMemory();
    await connection.start(signal);
    const outcome = await connection.callTool('hang', {}, { signal, timeoutMs: 50 });
    expect(outcome).toEqual({
      ok: false,
      text: 'unit__hang timed out: the server did not answer within 0.1 s and the call was cancelled.',
    });
    expect((await connection.callTool('count', {}, { signal, timeoutMs: 1_000 })).ok).toBe(true);
    await connection.close();
  });

  it('reports a server that went away, with its stderr tail, and does not restart it unless asked', async () => {
    const { connection, servers } = inMemory();
    await connection.start(signal);
    await servers[0]!.transport.close();
    const outcome = await connection.callTool('count', {}, { signal, timeoutMs: 1_000 });
    expect(outcome).toMatchObject({ ok: false });
    expect(!outcome.ok && outcome.text).toContain('last words');
    expect(servers).toHaveLength(1);
    await connection.close();
  });

  it('restarts a server that went away when restart is on, and its state starts over', async () => {
    const { connection, servers } = inMemory(true);
    await connection.start(signal);
    await connection.callTool('count', {}, { signal, timeoutMs: 1_000 });
    await servers[0]!.transport.close();
    const outcome = await connection.callTool('count', {}, { signal, timeoutMs: 1_000 });
    expect(outcome).toEqual({ ok: true, result: { content: [{ type: 'text', text: '1' }] } });
    expect(connection.restarts).toBe(1);
    await connection.close();
  });

  it('rejects with ABORTED when the call is aborted', async () => {
    const { connection } = inMemory();
    await connection.start(signal);
    const controller = new AbortController();
    const pending = connection.callTool('hang', {}, { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort();
    const error = await pending.catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'ABORTED')).toBe(true);
    await connection.close();
  });

  it('fails to start with SANDBOX_START_FAILED when the transport cannot start', async () => {
    const connection = new McpServerConnection({
      name: 'nothing',
      startupTimeoutMs: 1_000,
      connect: () => {
        throw new Error('no way');
      },
    });
    const error = await connection.start(signal).catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'SANDBOX_START_FAILED')).toBe(true);
    expect((error as Error).message).toBe('MCP server "nothing" failed to start: no way');
  });
});

/** A SandboxProcess whose other end is an in-process server on StdioServerTransport. */
function fakeProcess(): { process: SandboxProcess; exit(code: number): void; killed: () => number } {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  let kills = 0;
  void makeServer().connect(new StdioServerTransport(stdin, stdout));
  stderr.write('server starting\n');
  return {
    process: {
      stdin,
      stdout,
      stderr,
      exited,
      kill: async () => {
        kills++;
        resolveExit(143);
      },
    },
    exit: (code) => resolveExit(code),
    killed: () => kills,
  };
}

describe('ProcessStdioTransport', () => {
  it('speaks newline-delimited JSON-RPC over the process’s pipes and passes stderr on', async () => {
    const fake = fakeProcess();
    let stderr = '';
    const transport = new ProcessStdioTransport(async () => fake.process, {
      closeGraceMs: 10,
      onStderr: (chunk) => (stderr += chunk.toString()),
    });
    const connection = new McpServerConnection({
      name: 'piped',
      startupTimeoutMs: 5_000,
      connect: () => ({ transport, stderrTail: () => stderr }),
    });
    await connection.start(signal);
    expect(
      await connection.callTool('echo', { text: 'through pipes' }, { signal, timeoutMs: 1_000 }),
    ).toMatchObject({ ok: true });
    await expect.poll(() => stderr).toBe('server starting\n');
    await connection.close();
  });

  it('closes by ending stdin, and kills a process that does not exit within the grace period', async () => {
    const fake = fakeProcess();
    const transport = new ProcessStdioTransport(async () => fake.process, { closeGraceMs: 20 });
    let closed = 0;
    transport.onclose = () => closed++;
    await transport.start();
    await transport.close();
    expect((fake.process.stdin as PassThrough).writableEnded).toBe(true);
    expect(fake.killed()).toBe(1);
    expect(closed).toBe(1);
    await transport.close();
    expect(closed).toBe(1);
  });

  it('reports the process’s exit as a close', async () => {
    const fake = fakeProcess();
    const transport = new ProcessStdioTransport(async () => fake.process);
    const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
    await transport.start();
    fake.exit(1);
    await closed;
    expect(transport.exited).toBe(1);
  });

  it('skips a line that is not JSON-RPC and closes on a message over the size limit', async () => {
    const fake = fakeProcess();
    const transport = new ProcessStdioTransport(async () => fake.process, {
      maxMessageBytes: 64,
      closeGraceMs: 10,
    });
    const errors: string[] = [];
    transport.onerror = (error) => errors.push(error.message);
    const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
    await transport.start();
    (fake.process.stdout as PassThrough).write('not json\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toHaveLength(1);
    (fake.process.stdout as PassThrough).write(`${'x'.repeat(100)}\n`);
    await closed;
    expect(errors.at(-1)).toContain('exceeded maximum size');
  });
});
