/**
 * MCP benchmark against real stdio servers from npm (prints figures, asserts nothing):
 *  1. one tool call through paddock's MCP layer (argument validation, call, result
 *     conversion) p50/p99, side by side with a bare SDK client calling the same server
 *     binary in the same run, calls interleaved (targets: p50 ≤ 1.5 ms, within 1 ms of bare);
 *  2. a server made ready for an episode — spawn + initialize + list tools — cold (a new
 *     process per episode), beside the bare SDK doing the same, and warm (`stateless`: the
 *     shared server is reused);
 *  3. closing an episode's server.
 * Run: node --import tsx bench/mcp.ts — writes bench/results/mcp.json.
 */
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Task, ToolContext } from '../harness/index.ts';
import { McpToolProvider, parseMcpConfig, type McpSession } from '../sandboxes/mcp/index.ts';
import { ms, percentile, writeResults } from './stats.ts';

const CALLS = 3_000;
const WARMUP = 300;
const STARTS = 15;
const WARM_OPENS = 200;

const ROOT = path.resolve(import.meta.dirname, '..');
const EVERYTHING = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const MEMORY = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js');

function task(section: unknown): Task {
  const parsed = parseMcpConfig(section);
  if (!parsed.success) throw new Error('invalid section');
  return {
    id: 'bench/mcp',
    dir: ROOT,
    format: 'paddock',
    instruction: 'benchmark',
    tools: ['submit'],
    limits: { maxTurns: 1_000, timeoutMs: 600_000, commandTimeoutMs: 10_000 },
    metadata: {},
    extensions: { mcp_servers: parsed.data },
  };
}

const signal = new AbortController().signal;
const context: ToolContext = { signal, episodeId: 'bench', turnIndex: 0 };
const labels = { runId: 'bench', episodeId: 'bench' };

async function open(provider: McpToolProvider, benchTask: Task): Promise<McpSession> {
  const session = await provider.open(benchTask, { labels, signal });
  if (!session) throw new Error('no session');
  return session;
}

async function bareClient(server: string): Promise<Client> {
  const client = new Client({ name: 'bare', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [server], stderr: 'pipe' }),
  );
  return client;
}

// --- 1. tool call latency, interleaved with a bare SDK client -------------------------
const provider = new McpToolProvider();
const callSession = await open(
  provider,
  task([{ name: 'everything', command: 'npx -y @modelcontextprotocol/server-everything' }]),
);
const echo = callSession.tools.find((tool) => tool.name === 'everything__echo')!;
const bare = await bareClient(EVERYTHING);
const args = { message: 'hello from the benchmark' };

const paddockCalls: number[] = [];
const bareCalls: number[] = [];
for (let i = 0; i < WARMUP + CALLS; i++) {
  let started = performance.now();
  const output = await echo.execute(args, context);
  const paddockMs = performance.now() - started;
  started = performance.now();
  await bare.callTool({ name: 'echo', arguments: args });
  const bareMs = performance.now() - started;
  if (output.isError) throw new Error(output.text);
  if (i >= WARMUP) {
    paddockCalls.push(paddockMs);
    bareCalls.push(bareMs);
  }
}
await bare.close();
await callSession.close();

// --- 2. server ready for an episode: cold, bare, warm -------------------------------
const memoryTask = task([
  {
    name: 'memory',
    command: 'npx -y @modelcontextprotocol/server-memory',
    env: { MEMORY_FILE_PATH: '{{session_dir}}/m.jsonl' },
  },
]);
const cold: number[] = [];
const closes: number[] = [];
for (let i = 0; i < STARTS; i++) {
  const started = performance.now();
  const session = await open(provider, memoryTask);
  cold.push(performance.now() - started);
  const closing = performance.now();
  await session.close();
  closes.push(performance.now() - closing);
}
const bareStarts: number[] = [];
for (let i = 0; i < STARTS; i++) {
  const started = performance.now();
  const client = await bareClient(MEMORY);
  await client.listTools();
  bareStarts.push(performance.now() - started);
  await client.close();
}
const warmTask = task([
  { name: 'memory', command: 'npx -y @modelcontextprotocol/server-memory', stateless: true },
]);
const warmProvider = new McpToolProvider();
const first = performance.now();
await (await open(warmProvider, warmTask)).close();
const warmFirst = performance.now() - first;
const warm: number[] = [];
for (let i = 0; i < WARM_OPENS; i++) {
  const started = performance.now();
  const session = await open(warmProvider, warmTask);
  warm.push(performance.now() - started);
  await session.close();
}
await warmProvider.close();
await provider.close();

// --- report ------------------------------------------------------------------------
const summary = (values: number[]) => ({
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  mean: values.reduce((sum, value) => sum + value, 0) / values.length,
  n: values.length,
});
const figures = {
  call_paddock_ms: summary(paddockCalls),
  call_bare_sdk_ms: summary(bareCalls),
  call_overhead_p50_ms: percentile(paddockCalls, 50) - percentile(bareCalls, 50),
  start_cold_paddock_ms: summary(cold),
  start_cold_bare_sdk_ms: summary(bareStarts),
  start_warm_stateless_ms: summary(warm),
  start_warm_first_ms: warmFirst,
  close_ms: summary(closes),
  load_average_1m: loadavg()[0],
};
writeResults('mcp', figures);

const row = (name: string, values: number[], extra = '') =>
  console.log(
    `${name.padEnd(52)} p50 ${ms(percentile(values, 50)).padStart(10)}  p99 ${ms(percentile(values, 99)).padStart(10)}  n=${values.length}${extra}`,
  );
row('tool call through paddock (everything echo)', paddockCalls, '  (target p50 ≤ 1.5 ms)');
row('tool call, bare SDK client, same server, same run', bareCalls);
console.log(
  `${'overhead (p50, paddock − bare)'.padEnd(52)} ${ms(figures.call_overhead_p50_ms)}  (target ≤ 1 ms)`,
);
row('server ready: spawn + initialize + list (paddock)', cold, '  (memory server)');
row('server ready: spawn + initialize + list (bare SDK)', bareStarts);
row('server ready: warm, stateless server reused', warm, `  (first start ${ms(warmFirst)})`);
row('episode server closed', closes);
console.log(`load average (1 min) at the end: ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs`);
