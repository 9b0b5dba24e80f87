/**
 * `serveTask`: an external MCP client (the SDK's own Client, playing the agent) does a
 * task through paddock over stdio and streamable HTTP, and gets the reward back.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { RunStore, type EpisodeRecord } from '../../../harness/index.ts';
import { serveTask, type ServedTask } from '../../../sandboxes/mcp/index.ts';
import { FIXTURES, REPO, mcpTask, testServer, tsCommand } from './helpers.ts';

const CALCULATOR = path.join(REPO, 'sandboxes/mcp/servers/calculator.ts');
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  return (result.content as { type: string; text?: string }[]).map((item) => item.text ?? '').join('\n');
}

async function stdioSession(): Promise<{ client: Client; recordFile: string }> {
  const recordFile = path.join(mkdtempSync(path.join(tmpdir(), 'paddock-serve-')), 'record.json');
  const [command, ...args] = tsCommand(
    path.join(FIXTURES, 'serve-stdio.ts'),
    path.join(FIXTURES, 'tasks/answer-file'),
    recordFile,
  );
  const transport = new StdioClientTransport({
    command: command === 'node' ? process.execPath : command!,
    args,
    cwd: REPO,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'external-test-agent', version: '1.0.0' });
  await client.connect(transport);
  cleanups.push(() => client.close());
  return { client, recordFile };
}

async function readRecord(file: string): Promise<EpisodeRecord> {
  await expect.poll(() => existsSync(file), { timeout: 20_000 }).toBe(true);
  return JSON.parse(readFileSync(file, 'utf8')) as EpisodeRecord;
}

describe('serveTask over stdio', () => {
  it('serves the episode’s sandbox and MCP tools, and submit returns the verifier’s reward', async () => {
    const { client, recordFile } = await stdioSession();
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(
      expect.arrayContaining(['bash', 'read_file', 'write_file', 'edit_file', 'submit', 'calc__evaluate']),
    );
    const prompt = await client.getPrompt({ name: 'task' });
    expect(JSON.stringify(prompt.messages)).toContain('Write the number 42');

    const evaluated = await client.callTool({ name: 'calc__evaluate', arguments: { expression: '6 * 7' } });
    expect(text(evaluated)).toContain('42');
    const bash = await client.callTool({
      name: 'bash',
      arguments: { command: 'echo 42 > answer.txt && cat answer.txt' },
    });
    expect(text(bash)).toContain('42');
    const submitted = await client.callTool({ name: 'submit', arguments: {} });
    expect(submitted.structuredContent).toMatchObject({ reward: 1, status: 'completed' });
    expect(text(submitted)).toContain('Reward: 1');
    await client.close();

    const episode = await readRecord(recordFile);
    expect(episode.reward.total).toBe(1);
    expect(episode.verifier?.reward).toBe(1);
    expect(episode.turns.map((turn) => turn.toolCalls[0]?.name)).toEqual([
      'calc__evaluate',
      'bash',
      'submit',
    ]);
    expect(episode.agent).toBe('mcp:external-test-agent');
  });

  it('verifies and records the episode when the client disconnects without submitting', async () => {
    const { client, recordFile } = await stdioSession();
    await client.callTool({ name: 'write_file', arguments: { path: 'answer.txt', content: '41' } });
    await client.close();
    const episode = await readRecord(recordFile);
    expect(episode.status).toBe('completed');
    expect(episode.turns.map((turn) => [turn.toolCalls[0]?.name, turn.finishReason])).toEqual([
      ['write_file', undefined],
      [undefined, 'client-disconnected'],
    ]);
    expect(episode.verifier?.reward).toBe(0);
    expect(episode.reward.total).toBe(0);
  });
});

describe('serveTask over streamable HTTP', () => {
  const task = mcpTask({
    servers: [{ name: 'calc', command: tsCommand(CALCULATOR), tools: ['lookup', 'evaluate', 'record'] }],
    score: [{ server: 'calc', tool: 'ledger', expect: { jsonpath: '$.records.total', equals: 37.5 } }],
  });

  async function serve(
    store?: RunStore,
  ): Promise<{ served: ServedTask; client: Client; transport: StreamableHTTPClientTransport }> {
    const served = await serveTask(task, {
      transport: 'http',
      ...(store ? { runStore: store } : {}),
      // The task's other rewards go through as for any episode (weight 0 here: the total stays the MCP score).
      rewards: {
        trajectory: [{ name: 'answered', weight: 0, score: async ({ episode }) => (episode.answer ? 1 : 0) }],
      },
    });
    cleanups.push(() => served.close());
    const transport = new StreamableHTTPClientTransport(new URL(served.url!));
    const client = new Client({ name: 'http-agent', version: '1.0.0' });
    await client.connect(transport);
    cleanups.push(() => client.close());
    return { served, client, transport };
  }

  it('scores from MCP state, returns the reward to submit, and records the episode in the run store', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'paddock-runs-'));
    const store = RunStore.create(root, {
      runId: 'serve-run',
      createdAt: new Date().toISOString(),
      config: {},
      plan: [{ episodeId: 'mcp-test#mcp', taskId: task.id, epoch: 0, seed: 0 }],
    });
    cleanups.push(() => store.close());
    const { served, client } = await serve(store);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual([
      'submit',
      'calc__lookup',
      'calc__evaluate',
      'calc__record',
    ]);
    expect(text(await client.callTool({ name: 'calc__lookup', arguments: { item: 'widget' } }))).toContain(
      '12.5',
    );
    await client.callTool({ name: 'calc__record', arguments: { key: 'total', value: 37.5 } });
    const submitted = await client.callTool({ name: 'submit', arguments: { answer: '37.5' } });
    expect(submitted.structuredContent).toMatchObject({
      reward: 1,
      components: { 'mcp:calc.ledger': 1, answered: 1 },
    });

    const late = await client.callTool({ name: 'calc__lookup', arguments: { item: 'gizmo' } });
    expect(late.isError).toBe(true);
    expect(text(late)).toContain('No call was made: The episode ended');

    const episode = await served.episode;
    expect(episode).toMatchObject({ runId: 'serve-run', answer: '37.5', status: 'completed' });
    expect(store.episodes().map((recorded) => [recorded.episodeId, recorded.reward.total])).toEqual([
      ['mcp-test#mcp', 1],
    ]);
  });

  it('answers tools/list with the failure when the episode could not start, and records it', async () => {
    const broken = mcpTask([{ name: 'broken', command: testServer('--fail-start') }]);
    const served = await serveTask(broken, { transport: 'http' });
    cleanups.push(() => served.close());
    const client = new Client({ name: 'http-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(served.url!)));
    cleanups.push(() => client.close());
    await expect(client.listTools()).rejects.toThrow(/infra-error: MCP server "broken" failed to start/);
    const call = await client.callTool({ name: 'submit', arguments: {} });
    expect(call.isError).toBe(true);
    expect(text(call)).toContain('No call was made: The episode failed (infra-error');
    expect((await served.episode).status).toBe('infra-error');
  });

  it('records invalid calls as the agent’s mistakes and ends on the session’s DELETE', async () => {
    const { served, client, transport } = await serve();
    const bad = await client.callTool({ name: 'calc__record', arguments: { key: 'total' } });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toContain('Invalid arguments for calc__record');
    const unknown = await client.callTool({ name: 'nope', arguments: {} });
    expect(text(unknown)).toContain('Unknown tool "nope"');
    await transport.terminateSession();
    const episode = await served.episode;
    expect(episode.stats.toolProblems).toMatchObject({ 'invalid-arguments': 1, 'unknown-tool': 1 });
    expect(episode.reward.total).toBe(0);
  });
});
