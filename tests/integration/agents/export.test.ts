import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import { OpenAIAgent } from '../../../agents/openai/index.ts';
import { runEpisode, type EpisodeRecord } from '../../../harness/index.ts';
import { exportRun, type ExportRow } from '../../../export/index.ts';
import { reply, startOpenAIServer, type FakeTokens } from '../../fakes/model-servers/openai.ts';
import { fakeTask, mathTools } from '../../fakes/model-servers/tasks.ts';

const dir = mkdtempSync(join(tmpdir(), 'paddock-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Three turns as a chat-templating server renders them: each prompt extends the last
// prompt + completion with observation tokens; odd logprobs test exact doubles.
const P0 = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109];
const C0 = [200, 201, 202, 203];
const P1 = [...P0, ...C0, 300, 301, 302];
const C1 = [210, 211];
const P2 = [...P1, ...C1, 310, 311];
const C2 = [220, 221, 222];
const TURNS: FakeTokens[] = [
  { promptIds: P0, completionIds: C0, logprobs: [-0.1234567890123456, -1e-12, -2.5, -0.0000152587890625] },
  { promptIds: P1, completionIds: C1, logprobs: [-9999, -0.3333333333333333], promptIdsOn: 'choice' },
  {
    promptIds: P2,
    completionIds: C2,
    logprobs: [-1.7976931348623157e308, -5e-324, -0.75],
    idsOnlyInLogprobs: true,
  },
];

async function recordEpisode(): Promise<EpisodeRecord> {
  const server = await startOpenAIServer([
    reply({
      toolCalls: [{ id: 'a', name: 'add', arguments: { a: 2, b: 3 } }],
      tokens: TURNS[0]!,
      usage: { prompt: 10, completion: 4 },
    }),
    reply({
      text: 'Checking.',
      toolCalls: [{ id: 'b', name: 'echo', arguments: { text: '5' } }],
      tokens: TURNS[1]!,
    }),
    reply({ toolCalls: [{ id: 'c', name: 'submit', arguments: { answer: '5' } }], tokens: TURNS[2]! }),
  ]);
  try {
    const agent = new OpenAIAgent({ model: 'policy', baseUrl: server.baseUrl, tokenExact: true, env: {} });
    return await runEpisode({
      task: fakeTask(),
      agent,
      runId: 'run-x',
      episodeId: 'fake/task#0',
      seed: 3,
      toolProviders: [mathTools],
      rewards: {
        turn: [{ name: 'step', weight: 0.5, open: () => ({ score: async ({ turn }) => turn.index + 1 }) }],
        trajectory: [
          { name: 'answer', weight: 1, score: async ({ episode }) => (episode.answer === '5' ? 1 : 0) },
        ],
        assignReturns: (record) => record.turns.map((_, index) => 10 - index),
      },
    });
  } finally {
    await server.close();
  }
}

const episode = await recordEpisode();

const expectedIds = [...P2, ...C2];
const expectedMask = expectedIds.map((_, i) =>
  (i >= 10 && i < 14) || (i >= 17 && i < 19) || (i >= 21 && i < 24) ? 1 : 0,
);
const expectedLogprobs = expectedIds.map(() => 0);
[
  [10, TURNS[0]!],
  [17, TURNS[1]!],
  [21, TURNS[2]!],
].forEach(([start, turn]) => {
  (turn as FakeTokens).logprobs.forEach((logprob, k) => (expectedLogprobs[(start as number) + k] = logprob));
});

function checkRow(row: Record<string, unknown>, json: (value: unknown) => unknown): void {
  expect(row.run_id).toBe('run-x');
  expect(row.episode_id).toBe('fake/task#0');
  expect(row.task_id).toBe('fake/task');
  expect(row.status).toBe('completed');
  expect(row.input_ids).toEqual(expectedIds);
  expect(row.labels).toEqual(expectedIds.map((id, i) => (expectedMask[i] === 1 ? id : -100)));
  expect(row.loss_mask).toEqual(expectedMask);
  // Byte for byte: every double as the server sent it (including the extremes).
  const logprobs = row.logprobs as number[];
  expect(Buffer.from(new Float64Array(logprobs).buffer)).toEqual(
    Buffer.from(new Float64Array(expectedLogprobs).buffer),
  );
  expect(row.prompt_length).toBe(10);
  expect(row.turn_rewards).toEqual([0.5, 1, 1.5]);
  expect(row.turn_returns).toEqual([10, 9, 8]);
  expect(row.reward).toBe(1);
  expect(row.token_spans).toEqual([
    { turn: 0, start: 10, end: 14 },
    { turn: 1, start: 17, end: 19 },
    { turn: 2, start: 21, end: 24 },
  ]);
  expect(row.token_mismatched_turns).toEqual([]);
  // What the trainer must know about each turn's logprobs travels with the row.
  expect(row.turn_logprobs_mode).toEqual(episode.turns.map((turn) => turn.tokens?.logprobsMode ?? null));
  expect(row.turn_drift_at).toEqual(episode.turns.map((turn) => turn.tokens?.driftAt ?? null));
  const messages = row.messages as { role: string; tool_call_id?: string; tool_calls?: unknown[] }[];
  // The agent's default system prompt is recorded: it is part of what the model saw.
  expect(messages.map((m) => m.role)).toEqual([
    'system',
    'user',
    'assistant',
    'tool',
    'assistant',
    'tool',
    'assistant',
    'tool',
  ]);
  expect(messages[2]!.tool_calls).toEqual([
    { id: 'a', type: 'function', function: { name: 'add', arguments: '{"a":2,"b":3}' } },
  ]);
  expect(messages[3]!.tool_call_id).toBe('a');
  // Every row carries the tools the episode was offered, from its record.
  const tools = row.tools as { type: string; function: { name: string } }[];
  expect(tools.map((tool) => tool.function.name)).toEqual(episode.tools.map((tool) => tool.name));
  expect(tools.every((tool) => tool.type === 'function')).toBe(true);
  expect(json(row.reward_breakdown)).toEqual(episode.reward);
}

describe('exportRun', () => {
  it('records the server’s token ids and logprobs on every turn of the episode', () => {
    expect(episode.turns.map((turn) => turn.tokens)).toMatchObject(
      TURNS.map((t) => ({
        promptIds: t.promptIds,
        completionIds: t.completionIds,
        completionLogprobs: t.logprobs,
      })),
    );
  });

  it('exports JSONL with ids, logprobs and loss mask that match what the server sent', async () => {
    const out = join(dir, 'episodes.jsonl');
    const result = await exportRun([episode], { format: 'jsonl', out });
    expect(result.rows).toBe(1);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    checkRow(JSON.parse(lines[0]!), (value) => value);
  });

  it('exports the tools the record keeps, and the ones it is given instead when asked', async () => {
    expect(episode.tools.length).toBeGreaterThan(0);
    const out = join(dir, 'tools.jsonl');
    await exportRun([episode], {
      format: 'jsonl',
      out,
      tools: { 'fake/task': [{ name: 'submit', description: 'Submit.', inputSchema: { type: 'object' } }] },
    });
    const row = JSON.parse(readFileSync(out, 'utf8')) as ExportRow;
    expect(row.tools).toEqual([
      {
        type: 'function',
        function: { name: 'submit', description: 'Submit.', parameters: { type: 'object' } },
      },
    ]);
  });

  const plain = (value: unknown): unknown =>
    value === undefined // hyparquet reads a null list as undefined
      ? null
      : typeof value === 'bigint'
        ? Number(value)
        : Array.isArray(value)
          ? value.map(plain)
          : typeof value === 'object' && value !== null
            ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
            : value;
  const other = {
    ...episode,
    episodeId: 'fake/task#1',
    turns: episode.turns.map(({ tokens: _t, ...turn }) => turn),
  };
  const parquetOut = join(dir, 'episodes.parquet');

  it('exports Parquet that an independent reader (hyparquet) reads back exactly', async () => {
    await exportRun([episode, other], { format: 'parquet', out: parquetOut, rowGroupSize: 1 });
    const bytes = readFileSync(parquetOut);
    const rows = await parquetReadObjects({
      file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    });
    expect(rows).toHaveLength(2);
    // JSON-typed columns come back decoded or as text, depending on the reader.
    const json = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : value);
    checkRow(plain(rows[0]!) as Record<string, unknown>, json);
    expect(plain(rows[1]!)).toMatchObject({
      episode_id: 'fake/task#1',
      input_ids: null,
      labels: null,
      loss_mask: null,
      logprobs: null,
    });
  });

  it('exports Parquet that DuckDB reads with messages as a list of structs and tools in every row', async () => {
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const types = Object.fromEntries(
      (await db.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${parquetOut}')`))
        .getRowObjectsJson()
        .map((column) => [column.column_name, column.column_type]),
    );
    expect(types.messages).toMatch(/^STRUCT\("role" VARCHAR, "content" VARCHAR, .*\)\[\]$/);
    expect(types.tools).toMatch(/^STRUCT\("type" VARCHAR, "function" STRUCT\(.*\)\[\]$/);
    const rows = (
      await db.runAndReadAll(
        `SELECT episode_id, [m.role FOR m IN messages] AS roles, messages[3].tool_calls[1].function.name AS call,
                [t.function.name FOR t IN tools] AS tools
         FROM read_parquet('${parquetOut}') ORDER BY episode_id`,
      )
    ).getRowObjectsJson();
    const names = episode.tools.map((tool) => tool.name);
    const roles = ['system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'tool'];
    expect(rows).toEqual([
      { episode_id: 'fake/task#0', roles, call: 'add', tools: names },
      { episode_id: 'fake/task#1', roles, call: 'add', tools: names },
    ]);
  });
});
