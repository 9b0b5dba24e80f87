/**
 * Images in training exports: `image_url` parts in the messages, files copied beside the
 * export and an `images` column (`files`, the default) or `data:` URLs (`inline`), in
 * JSONL and Parquet (read back with hyparquet, as the other export tests do); images the
 * record did not keep become a text part; `token_images` says how many images the token
 * sequence's prompt holds.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import { RunStore, sha256Hex } from '../../../harness/index.ts';
import { exportRun, type ExportRow } from '../../../export/index.ts';
import { screenshotEpisode, screenshotManifest, shot, shotBytes } from '../../fakes/screenshots.ts';

const dir = mkdtempSync(join(tmpdir(), 'paddock-export-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function hyparquet(path: string): Promise<Record<string, unknown>[]> {
  const bytes = readFileSync(path);
  return parquetReadObjects({
    file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  });
}

function jsonl(path: string): ExportRow[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ExportRow);
}

/** The URLs of a row's image parts, in order (JSONL lists of parts or Parquet `content_parts`). */
function partUrls(row: { messages: unknown }): string[] {
  return (row.messages as { content?: unknown; content_parts?: unknown }[]).flatMap((message) => {
    const parts = Array.isArray(message.content) ? message.content : message.content_parts;
    return Array.isArray(parts)
      ? (parts as { type: string; image_url?: { url: string } }[]).flatMap((part) =>
          part.type === 'image_url' ? [part.image_url!.url] : [],
        )
      : [];
  });
}

/** Every text of a row's parts. */
function partTexts(row: { messages: unknown }): string[] {
  return (row.messages as { content?: unknown; content_parts?: unknown }[]).flatMap((message) => {
    const parts = Array.isArray(message.content) ? message.content : message.content_parts;
    return Array.isArray(parts)
      ? (parts as { type: string; text?: string }[]).flatMap((part) =>
          part.type === 'text' ? [part.text!] : [],
        )
      : [];
  });
}

// A run: screen A on the first user message, then turns seeing B, C (small: inline), D, B.
const A = shotBytes('A', 30_000);
const B = shotBytes('B', 40_000);
const C = shotBytes('C', 900);
const D = shotBytes('D', 50_000);
const E = shotBytes('E', 50_000);
const F = shotBytes('F', 60_000);
const root = mkdtempSync(join(dir, 'runs-'));
const store = RunStore.create(root, screenshotManifest(['web/a#0', 'web/b#0', 'text/c#0']), {
  images: { episodeBudgetBytes: 190_000 },
});
store.openForWrite();
store.appendEpisode(
  screenshotEpisode('web/a#0', {
    first: shot(A),
    shots: [shot(B), shot(C), shot(D), shot(B)],
    tokenTurns: [0, 1, 2],
  }),
);
// Over its budget at E (40,000 + 50,000 + 60,000 + 50,000 > 190,000): E and A are not kept.
store.appendEpisode(
  screenshotEpisode('web/b#0', {
    shots: [shot(B), shot(D), shot(F), shot(E), shot(A)],
    tokenTurns: [0, 1, 2, 3, 4],
  }),
);
store.appendEpisode(screenshotEpisode('text/c#0', { shots: [] }));
await store.close();
const runDir = store.dir;
const name = (bytes: Buffer) => `${sha256Hex(bytes)}.png`;

describe('exportRun: images', () => {
  it('copies images beside a JSONL export and lists them in an images column, in order (files)', async () => {
    const out = join(dir, 'files.jsonl');
    await exportRun(RunStore.open(root, 'run-1'), { format: 'jsonl', out });
    const [a, b, c] = jsonl(out);
    const url = (bytes: Buffer) => `files.jsonl.images/${name(bytes)}`;
    expect(partUrls(a!)).toEqual([url(A), url(B), url(C), url(D), url(B)]);
    expect(a!.images).toEqual([url(A), url(B), url(C), url(D), url(B)]);
    // Tool results' images follow them in a user message, as OpenAI's format needs.
    expect(a!.messages.map((message) => message.role)).toEqual([
      'system',
      'user',
      'assistant',
      'tool',
      'user',
      'assistant',
      'tool',
      'user',
      'assistant',
      'tool',
      'user',
      'assistant',
      'tool',
      'user',
    ]);
    expect(a!.messages[1]!.content).toEqual([
      { type: 'text', text: 'Click the button.' },
      { type: 'image_url', image_url: { url: url(A) } },
    ]);
    // Every image once in the folder, inline ones too, with its bytes.
    const folder = `${out}.images`;
    expect(readdirSync(folder).sort()).toEqual([A, B, C, D, F].map(name).sort());
    for (const bytes of [A, B, C, D, F]) expect(readFileSync(join(folder, name(bytes)))).toEqual(bytes);
    // Past its budget, E and A are notes, not images.
    expect(b!.images).toEqual([url(B), url(D), url(F)]);
    expect(partTexts(b!)).toEqual(
      expect.arrayContaining([
        "[image image/png, 50000 bytes, not kept: over the episode's image budget]",
        "[image image/png, 30000 bytes, not kept: over the episode's image budget]",
      ]),
    );
    // A text-only episode has an empty list.
    expect(c!.images).toEqual([]);
  });

  it('writes data: URLs and no images column when asked for inline images', async () => {
    const out = join(dir, 'inline.jsonl');
    await exportRun(RunStore.open(root, 'run-1'), { format: 'jsonl', out, images: 'inline' });
    const [a] = jsonl(out);
    expect(a).not.toHaveProperty('images');
    expect(partUrls(a!)).toEqual(
      [A, B, C, D, B].map((bytes) => `data:image/png;base64,${bytes.toString('base64')}`),
    );
    expect(existsSync(`${out}.images`)).toBe(false);
  });

  it('says how many images the token sequence holds, and null when one of them was not kept', async () => {
    const out = join(dir, 'tokens.jsonl');
    await exportRun(RunStore.open(root, 'run-1'), { format: 'jsonl', out });
    const [a, b, c] = jsonl(out);
    // Last token-exact turn: 2; its prompt shows A (user), B and C (results of turns 0 and 1).
    expect(a!.token_images).toBe(3);
    // Episode b's last token-exact turn comes after E, which was not kept.
    expect(b!.token_images).toBeNull();
    expect(c!.token_images).toBeNull();
  });

  it('writes Parquet whose content_parts and images column name the copied files (files), or data: URLs (inline)', async () => {
    const out = join(dir, 'files.parquet');
    await exportRun(RunStore.open(root, 'run-1'), { format: 'parquet', out });
    const rows = await hyparquet(out);
    const url = (bytes: Buffer) => `files.parquet.images/${name(bytes)}`;
    expect(rows[0]!.images).toEqual([url(A), url(B), url(C), url(D), url(B)]);
    expect(partUrls(rows[0] as { messages: unknown })).toEqual(rows[0]!.images);
    expect((rows[0]!.messages as { content: unknown }[])[1]!.content).toBe('Click the button.');
    expect(rows[2]!.images).toEqual([]);
    expect(readFileSync(join(`${out}.images`, name(D)))).toEqual(D);

    const inline = join(dir, 'inline.parquet');
    await exportRun(RunStore.open(root, 'run-1'), { format: 'parquet', out: inline, images: 'inline' });
    const [first] = await hyparquet(inline);
    expect(first).not.toHaveProperty('images');
    expect(partUrls(first as { messages: unknown })[0]).toBe(`data:image/png;base64,${A.toString('base64')}`);
  });

  it('has no images column when no exported episode has an image', async () => {
    const out = join(dir, 'text.parquet');
    await exportRun(RunStore.open(root, 'run-1'), {
      format: 'parquet',
      out,
      filter: (episode) => episode.taskId === 'text/c',
    });
    const [row] = await hyparquet(out);
    expect(row).not.toHaveProperty('images');
    expect(existsSync(`${out}.images`)).toBe(false);
  });

  it('reads references of records given without their store from runDir, and refuses tampered ones', async () => {
    const records = RunStore.open(root, 'run-1').episodes();
    const out = join(dir, 'records.jsonl');
    await expect(exportRun(records, { format: 'jsonl', out })).rejects.toThrow(
      /pass the RunStore, or `runDir`/,
    );
    await exportRun(records, { format: 'jsonl', out, runDir });
    expect(jsonl(out)[0]!.images).toHaveLength(5);

    const tampered = structuredClone(records[0]!);
    const result = tampered.turns[0]!.toolResults[0]!;
    result.images = [{ mimeType: 'image/png', file: '../../etc/passwd', bytes: 10, sha256: '0'.repeat(64) }];
    tampered.messages = tampered.messages.map((message) =>
      message.role === 'tool' && message.toolCallId === result.callId
        ? { ...message, images: result.images }
        : message,
    );
    await expect(exportRun([tampered], { format: 'jsonl', out, runDir })).rejects.toThrow(
      /refusing image file "\.\.\/\.\.\/etc\/passwd"/,
    );
    // A file changed after it was written is refused by its hash.
    const file = join(runDir, 'images', name(B));
    const original = readFileSync(file);
    writeFileSync(file, 'changed');
    try {
      await expect(exportRun(records, { format: 'jsonl', out, runDir })).rejects.toThrow(
        /does not hold the bytes the record names/,
      );
    } finally {
      writeFileSync(file, original);
    }
  });
});
