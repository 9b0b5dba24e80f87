import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import type { EpisodeRecord, ToolSpec, TurnRecord } from '../../../harness/index.ts';
import {
  buildTokenSequence,
  episodeRow,
  exportRun,
  inferParquetType,
  writeParquetFile,
  type ExportRow,
} from '../../../export/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'paddock-export-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const duck = await (await DuckDBInstance.create(':memory:')).connect();

/** Rows of a DuckDB query, as JSON-ready values (BIGINT as strings). */
async function query(sql: string): Promise<Record<string, unknown>[]> {
  return (await duck.runAndReadAll(sql)).getRowObjectsJson();
}

async function hyparquet(path: string): Promise<Record<string, unknown>[]> {
  const bytes = readFileSync(path);
  return parquetReadObjects({
    file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  });
}

function turn(index: number, tokens?: TurnRecord['tokens'], reasoning?: string): TurnRecord {
  return {
    index,
    text: null,
    toolCalls: [],
    toolResults: [],
    rewards: {},
    reward: 0,
    startedAt: '',
    agentMs: 0,
    toolMs: 0,
    ...(tokens ? { tokens } : {}),
    ...(reasoning ? { reasoning: { text: reasoning } } : {}),
  };
}

const ADD: ToolSpec = {
  name: 'add',
  description: 'Adds two numbers.',
  inputSchema: {
    type: 'object',
    properties: { a: { type: 'number' }, b: { type: 'number' } },
    required: ['a', 'b'],
    additionalProperties: false,
  },
};
const SUBMIT: ToolSpec = {
  name: 'submit',
  description: 'Submits the answer.',
  inputSchema: { type: 'object', properties: { answer: { type: 'string' } } },
};

function record(episodeId: string, overrides: Partial<EpisodeRecord> = {}): EpisodeRecord {
  return {
    runId: 'run-u',
    episodeId,
    taskId: 'suite/task',
    epoch: 0,
    seed: 1,
    attempt: 1,
    agent: 'openai:policy',
    status: 'completed',
    previousAttempts: [],
    messages: [
      { role: 'system', content: 'You are an agent.' },
      { role: 'user', content: 'What is 2 + 3?' },
      {
        role: 'assistant',
        content: null,
        reasoning: { text: 'I should add them.' },
        toolCalls: [{ id: 'c1', name: 'add', arguments: '{"a":2,"b":3}' }],
      },
      { role: 'tool', toolCallId: 'c1', name: 'add', content: '5' },
      { role: 'assistant', content: 'The answer is 5.' },
    ],
    tools: [ADD, SUBMIT],
    turns: [
      turn(
        0,
        { promptIds: [1, 2], completionIds: [3, 4], completionLogprobs: [-0.1, -0.2] },
        'I should add them.',
      ),
      turn(1, { promptIds: [1, 2, 3, 4, 5], completionIds: [6], completionLogprobs: [-0.3] }),
    ],
    answer: '5',
    reward: { total: 1, components: { verifier: { value: 1, weight: 1 } }, constraints: {} },
    usage: { promptTokens: 7, completionTokens: 3 },
    stats: {
      toolCalls: 1,
      toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
      emptyTurns: 0,
    },
    startedAt: '',
    endedAt: '',
    durationMs: 12.5,
    ...overrides,
  };
}

describe('buildTokenSequence', () => {
  it('masks in each turn’s completion span of the last turn’s sequence', () => {
    const sequence = buildTokenSequence([
      turn(0, { promptIds: [1, 2], completionIds: [3, 4], completionLogprobs: [-0.1, -0.2] }),
      turn(1, { promptIds: [1, 2, 3, 4, 5], completionIds: [6], completionLogprobs: [-0.3] }),
    ]);
    expect(sequence).toEqual({
      ids: [1, 2, 3, 4, 5, 6],
      lossMask: [0, 0, 1, 1, 0, 1],
      logprobs: [0, 0, -0.1, -0.2, 0, -0.3],
      spans: [
        { turn: 0, start: 2, end: 4 },
        { turn: 1, start: 5, end: 6 },
      ],
      mismatchedTurns: [],
      missingTurns: [],
    });
  });

  it('masks out a turn whose ids the next prompt re-rendered differently, and lists it', () => {
    const sequence = buildTokenSequence([
      turn(0, { promptIds: [1, 2], completionIds: [3, 4], completionLogprobs: [-0.1, -0.2] }),
      turn(1),
      turn(2, { promptIds: [1, 2, 3, 9, 5], completionIds: [6], completionLogprobs: [-0.3] }),
    ])!;
    expect(sequence.lossMask).toEqual([0, 0, 0, 0, 0, 1]);
    expect(sequence.mismatchedTurns).toEqual([0]);
    expect(sequence.missingTurns).toEqual([1]);
  });

  it('is undefined when no turn has token data', () => {
    expect(buildTokenSequence([turn(0)])).toBeUndefined();
  });
});

describe('episodeRow', () => {
  const row = episodeRow(record('e#0'));

  it('carries the tools the episode record keeps, as OpenAI tool schemas', () => {
    expect(row.tools).toEqual([
      {
        type: 'function',
        function: { name: 'add', description: ADD.description, parameters: ADD.inputSchema },
      },
      {
        type: 'function',
        function: { name: 'submit', description: SUBMIT.description, parameters: SUBMIT.inputSchema },
      },
    ]);
  });

  it('puts the model’s reasoning on its assistant message as reasoning_content, and per turn', () => {
    expect(row.messages[2]).toEqual({
      role: 'assistant',
      content: null,
      reasoning_content: 'I should add them.',
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'add', arguments: '{"a":2,"b":3}' } }],
    });
    expect(row.messages[4]).toEqual({ role: 'assistant', content: 'The answer is 5.' });
    expect(row.turn_reasoning).toEqual(['I should add them.', null]);
  });

  it('names the tool on a tool message beside the call it answers', () => {
    expect(row.messages[3]).toEqual({ role: 'tool', content: '5', tool_call_id: 'c1', name: 'add' });
  });

  it('labels the policy’s tokens with their ids and every other token with -100', () => {
    expect(row.input_ids).toEqual([1, 2, 3, 4, 5, 6]);
    expect(row.labels).toEqual([-100, -100, 3, 4, -100, 6]);
    expect(row.loss_mask).toEqual([0, 0, 1, 1, 0, 1]);
  });

  it('has an empty tools list, never null, for an episode offered none', () => {
    expect(episodeRow(record('e#1', { tools: [] })).tools).toEqual([]);
  });
});

describe('exportRun', () => {
  it('leaves the token columns out when no episode was recorded token-exactly (auto)', async () => {
    const out = join(dir, 'no-tokens.jsonl');
    const plain = record('e#2', { turns: [turn(0), turn(1)] });
    await exportRun([plain], { format: 'jsonl', out });
    const row = JSON.parse(readFileSync(out, 'utf8')) as ExportRow;
    expect(row).not.toHaveProperty('input_ids');
    expect(row.tools).toHaveLength(2);
    await exportRun([plain], { format: 'jsonl', out, tokenColumns: true });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ input_ids: null, labels: null });
  });

  it('writes Parquet whose messages DuckDB reads as a list of structs and whose every row has its tools', async () => {
    const out = join(dir, 'episodes.parquet');
    const episodes = [
      record('e#0'),
      record('e#1', { tools: [SUBMIT], turns: [turn(0), turn(1)] }),
      record('e#2', { tools: [] }),
    ];
    const result = await exportRun(episodes, { format: 'parquet', out, rowGroupSize: 2 });
    expect(result.rows).toBe(3);
    const types = Object.fromEntries(
      (await query(`DESCRIBE SELECT * FROM read_parquet('${out}')`)).map((c) => [
        c.column_name,
        c.column_type,
      ]),
    );
    expect(types.messages).toMatch(
      /^STRUCT\("role" VARCHAR, "content" VARCHAR, reasoning_content VARCHAR, tool_calls STRUCT\(/,
    );
    expect(types.messages).toMatch(/\)\[\]$/);
    expect(types.tools).toMatch(
      /^STRUCT\("type" VARCHAR, "function" STRUCT\("name" VARCHAR, description VARCHAR, parameters STRUCT/,
    );
    expect(types.input_ids).toBe('BIGINT[]');
    const rows = await query(
      `SELECT episode_id, len(tools) AS n, [t.function.name FOR t IN tools] AS names,
              messages[3].reasoning_content AS reasoning, messages[4].name AS tool_name, labels
       FROM read_parquet('${out}') ORDER BY episode_id`,
    );
    expect(rows).toEqual([
      {
        episode_id: 'e#0',
        n: '2',
        names: ['add', 'submit'],
        reasoning: 'I should add them.',
        tool_name: 'add',
        labels: ['-100', '-100', '3', '4', '-100', '6'],
      },
      {
        episode_id: 'e#1',
        n: '1',
        names: ['submit'],
        reasoning: 'I should add them.',
        tool_name: 'add',
        labels: null,
      },
      {
        episode_id: 'e#2',
        n: '0',
        names: [],
        reasoning: 'I should add them.',
        tool_name: 'add',
        labels: ['-100', '-100', '3', '4', '-100', '6'],
      },
    ]);
    const groups = await query(`SELECT DISTINCT row_group_id FROM parquet_metadata('${out}') ORDER BY 1`);
    expect(groups).toHaveLength(2);
  });

  it('writes tools that hyparquet reads back as the records’ schemas', async () => {
    const out = join(dir, 'tools.parquet');
    await exportRun([record('e#0', { tools: [ADD] })], { format: 'parquet', out });
    const [row] = await hyparquet(out);
    expect(row!.tools).toEqual([
      {
        type: 'function',
        function: { name: 'add', description: ADD.description, parameters: ADD.inputSchema },
      },
    ]);
  });
});

describe('inferParquetType', () => {
  it('gives objects the union of their keys, and empty objects and lists the type of the others', () => {
    expect(
      inferParquetType([
        { properties: { a: { type: 'number' } }, required: ['a'] },
        { properties: {}, required: [] },
        { properties: { b: { type: 'string' } } },
      ]),
    ).toEqual({
      struct: {
        properties: { struct: { a: { struct: { type: 'string' } }, b: { struct: { type: 'string' } } } },
        required: { list: 'string' },
      },
    });
  });

  it('widens integers to int64 or double, and writes values of conflicting kinds as JSON', () => {
    expect(inferParquetType([1, 2 ** 40])).toBe('int64');
    expect(inferParquetType([1, 0.5])).toBe('double');
    expect(inferParquetType([{ x: false }, { x: { type: 'string' } }])).toEqual({ struct: { x: 'json' } });
    expect(inferParquetType([{}, { x: null }])).toEqual({ struct: { x: 'json' } });
    expect(inferParquetType([{}, []])).toBe('json');
    expect(inferParquetType([null])).toBeUndefined();
  });
});

describe('writeParquetFile', () => {
  const columns = [
    { name: 's', type: 'string' as const },
    { name: 'ids', type: { list: 'int64' as const } },
    { name: 'm', type: { list: { struct: { role: 'string' as const, n: 'int32' as const } } } },
  ];
  const rows = [
    { s: 'x', ids: [1, 2], m: [{ role: 'user', n: 1 }] },
    { s: null, ids: null, m: [] },
    { s: 'z', ids: [], m: [{ role: 'assistant' }, { role: 'tool', n: 2 }] },
  ];

  it('writes nested rows that hyparquet and DuckDB read back as written', async () => {
    const path = join(dir, 'nested.parquet');
    expect(writeParquetFile(path, columns, rows, { rowGroupSize: 2 }).rows).toBe(3);
    expect(await query(`SELECT * FROM read_parquet('${path}')`)).toEqual([
      { s: 'x', ids: ['1', '2'], m: [{ role: 'user', n: 1 }] },
      { s: null, ids: null, m: [] },
      {
        s: 'z',
        ids: [],
        m: [
          { role: 'assistant', n: null },
          { role: 'tool', n: 2 },
        ],
      },
    ]);
    const back = await hyparquet(path);
    expect(back[2]).toEqual({
      s: 'z',
      ids: [],
      m: [
        { role: 'assistant', n: null },
        { role: 'tool', n: 2 },
      ],
    });
  });

  it.each(['snappy', 'gzip', 'uncompressed'] as const)(
    'compresses every column chunk with %s',
    async (compression) => {
      const path = join(dir, `${compression}.parquet`);
      writeParquetFile(path, columns, rows, { compression });
      const codecs = await query(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`);
      expect(codecs).toEqual([{ compression: compression.toUpperCase() }]);
    },
  );

  const hasZstd = 'zstdCompressSync' in zlib;
  it.runIf(hasZstd)('compresses with zstd where Node.js has it', async () => {
    const path = join(dir, 'zstd.parquet');
    writeParquetFile(path, columns, rows, { compression: 'zstd' });
    expect(await query(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`)).toEqual([
      { compression: 'ZSTD' },
    ]);
  });
  it.skipIf(hasZstd)('refuses zstd with CONFIG_INVALID where Node.js has no zstd', () => {
    expect(() => writeParquetFile(join(dir, 'zstd.parquet'), columns, rows, { compression: 'zstd' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('writes one row group per rowGroupSize rows', async () => {
    const path = join(dir, 'groups.parquet');
    const many = Array.from({ length: 10 }, (_, i) => ({ s: `r${i}`, ids: [i], m: [] }));
    writeParquetFile(path, columns, many, { rowGroupSize: 4 });
    const groups = await query(
      `SELECT row_group_id, row_group_num_rows AS n FROM parquet_metadata('${path}') GROUP BY ALL ORDER BY 1`,
    );
    expect(groups.map((g) => Number(g.n))).toEqual([4, 4, 2]);
  });

  it('refuses a value of the wrong type, naming the nested field', () => {
    expect(() =>
      writeParquetFile(join(dir, 'bad.parquet'), columns, [
        { s: 'x', ids: [], m: [{ role: 'user', n: 1.5 }] },
      ]),
    ).toThrow(/column m\[0\]\.n/);
  });
});
