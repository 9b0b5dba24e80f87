/**
 * Images beside the episode: the run store writes each large image once to
 * `images/<sha256>.<ext>` and records a reference; small ones stay inline; an episode's
 * images past its budget are marked omitted; references that name another file, a link
 * or changed bytes are refused; runs written with inline images still read.
 */
import {
  appendFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  OVER_BUDGET,
  RunIndex,
  RunStore,
  isImageFileRef,
  readRecordedImage,
  sha256Hex,
  type ImageFileRef,
  type RecordedEpisode,
  type RecordedImage,
} from '../../../harness/index.ts';
import { screenshotEpisode, screenshotManifest, shot, shotBytes } from '../../fakes/screenshots.ts';

function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'paddock-store-images-'));
}

/** Every image of a record, messages first, then tool results. */
function imagesOf(record: RecordedEpisode): RecordedImage[] {
  return [
    ...record.messages.flatMap((message) => ('images' in message ? (message.images ?? []) : [])),
    ...record.turns.flatMap((turn) => turn.toolResults.flatMap((result) => result.images ?? [])),
  ];
}

function imageFiles(runDir: string): string[] {
  return existsSync(join(runDir, 'images')) ? readdirSync(join(runDir, 'images')).sort() : [];
}

describe('RunStore: images beside the episode', () => {
  it('stores each distinct screenshot once across turns and episodes, and episodes.jsonl holds no large base64', async () => {
    const root = tempRoot();
    const distinct = [0, 1, 2].map((n) => shotBytes(`screen-${n}`, 60_000));
    const small = shotBytes('icon', 1_000);
    const ids = Array.from({ length: 8 }, (_, n) => `web/click#${n}`);
    const store = RunStore.create(root, screenshotManifest(ids));
    store.openForWrite();
    const live = ids.map((id, n) =>
      screenshotEpisode(id, {
        first: shot(distinct[0]!),
        // 20 turns cycling through the three screens, plus a small image on one turn.
        shots: Array.from({ length: 20 }, (_, t) => shot(t === 7 ? small : distinct[(t + n) % 3]!)),
      }),
    );
    for (const record of live) store.appendEpisode(record);
    await store.close();

    const dir = store.dir;
    expect(imageFiles(dir)).toEqual(distinct.map((bytes) => `${sha256Hex(bytes)}.png`).sort());
    const text = readFileSync(join(dir, 'episodes.jsonl'), 'utf8');
    for (const bytes of distinct) expect(text).not.toContain(bytes.toString('base64').slice(0, 64));
    // Small images stay inline.
    expect(text).toContain(small.toString('base64'));
    // The caller's records keep their bytes.
    expect(live[0]!.turns[0]!.toolResults[0]!.images![0]).toHaveProperty('dataBase64');

    const records = RunStore.open(root, 'run-1').episodes();
    expect(records).toHaveLength(ids.length);
    for (const record of records) {
      for (const image of imagesOf(record)) {
        const bytes = readRecordedImage(dir, image)!;
        if (bytes.length === small.length) {
          expect(isImageFileRef(image)).toBe(false);
          continue;
        }
        expect(image).toEqual({
          mimeType: 'image/png',
          file: `images/${sha256Hex(bytes)}.png`,
          bytes: 60_000,
          sha256: sha256Hex(bytes),
        });
        expect(distinct.some((candidate) => candidate.equals(bytes))).toBe(true);
      }
    }
    // The index counts images as before.
    const index = RunIndex.open(dir);
    expect(index.latest()[0]!.images).toBe(21);
    index.close();
  });

  it('writes a screenshot again only when its file is not the one recorded (resume checks it by hash)', async () => {
    const root = tempRoot();
    const bytes = shotBytes('screen', 20_000);
    const store = RunStore.create(root, screenshotManifest(['a#0', 'b#0', 'c#0']));
    store.openForWrite();
    store.appendEpisode(screenshotEpisode('a#0', { shots: [shot(bytes)] }));
    await store.close();
    const file = join(store.dir, 'images', `${sha256Hex(bytes)}.png`);
    const written = lstatSync(file).mtimeMs;

    const resumed = RunStore.open(root, 'run-1');
    resumed.openForWrite();
    resumed.appendEpisode(screenshotEpisode('b#0', { shots: [shot(bytes)] }));
    expect(lstatSync(file).mtimeMs).toBe(written); // checked, kept
    writeFileSync(file, 'not the screenshot');
    const again = RunStore.open(root, 'run-1');
    await resumed.close();
    again.openForWrite();
    again.appendEpisode(screenshotEpisode('c#0', { shots: [shot(bytes)] }));
    await again.close();
    expect(readFileSync(file)).toEqual(bytes); // rewritten
    expect(imageFiles(store.dir)).toEqual([`${sha256Hex(bytes)}.png`]); // no temporary file left
  });

  it('marks images past the episode budget omitted, never dropping them, and gives each episode its own budget', async () => {
    const root = tempRoot();
    const shots = [0, 1, 2].map((n) => shotBytes(`budget-${n}`, 50_000));
    const store = RunStore.create(root, screenshotManifest(['a#0', 'b#0']), {
      images: { episodeBudgetBytes: 120_000 },
    });
    store.openForWrite();
    // Screen 0 twice (counted once), then 1, then 2 (over: 150,000 > 120,000), then 0 again
    // (kept already), then a small one (it would fit, but the budget is spent).
    const small = shotBytes('small', 5_000);
    const episode = screenshotEpisode('a#0', {
      shots: [...[0, 0, 1, 2, 0].map((n) => shot(shots[n]!)), shot(small)],
    });
    store.appendEpisode(episode);
    store.appendEpisode(screenshotEpisode('b#0', { shots: [shot(shots[2]!)] }));
    await store.close();

    const [a, b] = RunStore.open(root, 'run-1').episodes();
    const results = a!.turns.map((turn) => turn.toolResults[0]!.images![0]!);
    expect(
      results.map((image) => (isImageFileRef(image) ? (image.omitted ?? image.file) : 'inline')),
    ).toEqual([
      `images/${sha256Hex(shots[0]!)}.png`,
      `images/${sha256Hex(shots[0]!)}.png`,
      `images/${sha256Hex(shots[1]!)}.png`,
      OVER_BUDGET,
      `images/${sha256Hex(shots[0]!)}.png`,
      OVER_BUDGET,
    ]);
    const omitted = results[3] as ImageFileRef;
    expect(omitted).toEqual({
      mimeType: 'image/png',
      bytes: 50_000,
      sha256: sha256Hex(shots[2]!),
      omitted: "over the episode's image budget",
    });
    expect(readRecordedImage(store.dir, omitted)).toBeUndefined();
    // The tool message holds the same decision as its tool result.
    const toolMessages = a!.messages.filter((message) => message.role === 'tool');
    expect(toolMessages[3]!.images![0]).toEqual(omitted);
    // The next episode starts with a whole budget: screen 2 is kept there.
    expect(b!.turns[0]!.toolResults[0]!.images![0]).toMatchObject({
      file: `images/${sha256Hex(shots[2]!)}.png`,
    });
  });

  it('refuses references that name another file, an absolute path, a link or changed bytes, with a clear error', async () => {
    const root = tempRoot();
    const bytes = shotBytes('secret-screen', 10_000);
    const store = RunStore.create(root, screenshotManifest(['a#0']));
    store.openForWrite();
    store.appendEpisode(screenshotEpisode('a#0', { shots: [shot(bytes)] }));
    await store.close();
    const dir = store.dir;
    const ref = RunStore.open(root, 'run-1').episodes()[0]!.turns[0]!.toolResults[0]!
      .images![0] as ImageFileRef;
    expect(readRecordedImage(dir, ref)).toEqual(bytes);

    const outside = join(root, 'outside.txt');
    writeFileSync(outside, 'root:x:0:0');
    const sha = sha256Hex(readFileSync(outside));
    for (const file of [
      '../../etc/passwd',
      '/etc/passwd',
      `images/../../outside.txt`,
      `images/${sha}.png/..`,
    ]) {
      expect(() => readRecordedImage(dir, { ...ref, file, sha256: sha })).toThrow(
        /refusing image file .* a record may name only images\/<sha256>\.<ext>/,
      );
    }
    expect(() => readRecordedImage(dir, { ...ref, sha256: sha })).toThrow(
      /does not match the record's sha256/,
    );

    // A link planted where the file is, even to bytes with the recorded hash, is refused.
    const path = join(dir, ref.file!);
    const copy = join(root, 'copy.png');
    writeFileSync(copy, bytes);
    rmSync(path);
    symlinkSync(copy, path);
    expect(() => readRecordedImage(dir, ref)).toThrow(/refusing image file .*symbolic link/);
    // A link to another file, named for that file's hash, is refused too.
    const planted = join(dir, 'images', `${sha}.png`);
    symlinkSync(outside, planted);
    expect(() => readRecordedImage(dir, { ...ref, file: `images/${sha}.png`, sha256: sha })).toThrow(
      /symbolic link/,
    );
    // Changed bytes.
    rmSync(path);
    writeFileSync(path, Buffer.concat([bytes.subarray(1), Buffer.from([0])]));
    expect(() => readRecordedImage(dir, ref)).toThrow(/does not hold the bytes the record names/);
    // A missing file says so.
    rmSync(path);
    expect(() => readRecordedImage(dir, ref)).toThrow(/missing .*images\/ folder/);
    // The images folder itself as a link.
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, `${ref.sha256}.png`), bytes);
    rmSync(join(dir, 'images'), { recursive: true });
    symlinkSync(elsewhere, join(dir, 'images'));
    expect(() => readRecordedImage(dir, ref)).toThrow(/images is a symbolic link/);
  });

  it('never writes through a link planted in the run folder', async () => {
    const root = tempRoot();
    const bytes = shotBytes('screen', 10_000);
    const store = RunStore.create(root, screenshotManifest(['a#0', 'b#0']));
    const victim = join(root, 'victim.txt');
    writeFileSync(victim, 'keep me');
    mkdirSync(join(store.dir, 'images'));
    const path = join(store.dir, 'images', `${sha256Hex(bytes)}.png`);
    symlinkSync(victim, path);
    store.openForWrite();
    store.appendEpisode(screenshotEpisode('a#0', { shots: [shot(bytes)] }));
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    expect(lstatSync(path).isFile()).toBe(true);
    expect(readFileSync(path)).toEqual(bytes);

    // An images folder that is a link is refused: the record is not written.
    const other = RunStore.create(root, screenshotManifest(['a#0'], 'run-2'));
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(other.dir, 'images'));
    other.openForWrite();
    expect(() => other.appendEpisode(screenshotEpisode('a#0', { shots: [shot(bytes)] }))).toThrow(
      /images is a symbolic link/,
    );
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(other.missing().map((planned) => planned.episodeId)).toEqual(['a#0']);
    await Promise.all([store.close(), other.close()]);
  });

  it('still reads runs whose records hold their images inline', () => {
    const root = tempRoot();
    const store = RunStore.create(root, screenshotManifest(['a#0']));
    const bytes = shotBytes('old-screen', 30_000);
    // A line as the store wrote it before image files: base64 in the record.
    appendFileSync(
      join(store.dir, 'episodes.jsonl'),
      `${JSON.stringify(screenshotEpisode('a#0', { shots: [shot(bytes)] }))}\n`,
    );
    const [record] = RunStore.open(root, 'run-1').episodes();
    const image = record!.turns[0]!.toolResults[0]!.images![0]!;
    expect(isImageFileRef(image)).toBe(false);
    expect(readRecordedImage(store.dir, image)).toEqual(bytes);
  });

  it('logs tool results in the event log with their images’ type and size only', async () => {
    const root = tempRoot();
    const store = RunStore.create(root, screenshotManifest(['a#0']));
    store.openForWrite();
    const bytes = shotBytes('event', 9_000);
    const result = screenshotEpisode('a#0', { shots: [shot(bytes)] }).turns[0]!.toolResults[0]!;
    store.appendEvent({ type: 'tool-result', episodeId: 'a#0', turnIndex: 0, result });
    await store.close();
    const line = JSON.parse(readFileSync(join(store.dir, 'events.jsonl'), 'utf8').trim()) as Record<
      string,
      unknown
    >;
    expect(line).toMatchObject({
      type: 'tool-result',
      result: { images: [{ mimeType: 'image/png', bytes: 9_000 }] },
    });
    expect(JSON.stringify(line)).not.toContain(bytes.toString('base64').slice(0, 40));
  });

  it('keeps inline every image up to the inline limit it is given', async () => {
    const root = tempRoot();
    const store = RunStore.create(root, screenshotManifest(['a#0']), { images: { inlineMaxBytes: 100_000 } });
    store.openForWrite();
    store.appendEpisode(screenshotEpisode('a#0', { shots: [shot(shotBytes('x', 50_000))] }));
    await store.close();
    expect(imageFiles(store.dir)).toEqual([]);
    expect(() =>
      RunStore.create(root, screenshotManifest(['a#0'], 'run-3'), { images: { inlineMaxBytes: -1 } }),
    ).toThrow(/inlineMaxBytes must be a number of bytes/);
  });
});
