import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TurnRecord } from '../../../harness/index.ts';
import { buildTokenSequence, writeParquetFile } from '../../../trainers/export/index.ts';

function turn(index: number, tokens?: TurnRecord['tokens']): TurnRecord {
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

describe('writeParquetFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'paddock-parquet-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the Parquet magic at both ends and the footer length before the last one', () => {
    const path = join(dir, 'a.parquet');
    const result = writeParquetFile(
      path,
      [
        { name: 's', type: 'string' },
        { name: 'ids', type: 'int32', list: true },
      ],
      [
        { s: 'x', ids: [1, 2] },
        { s: null, ids: null },
      ],
    );
    const bytes = readFileSync(path);
    expect(result).toEqual({ rows: 2, bytes: bytes.length });
    expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
    expect(bytes.subarray(-4).toString()).toBe('PAR1');
    const footer = bytes.readUInt32LE(bytes.length - 8);
    expect(footer).toBeGreaterThan(0);
    expect(footer).toBeLessThan(bytes.length - 12);
  });

  it('refuses a value of the wrong type, naming the column', () => {
    expect(() =>
      writeParquetFile(join(dir, 'b.parquet'), [{ name: 'n', type: 'int64' }], [{ n: 1.5 }]),
    ).toThrow(/column n/);
  });
});
