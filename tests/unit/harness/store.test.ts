import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunStore, type EpisodeRecord, type RunManifest } from '../../../harness/index.ts';

function manifest(runId = 'run-1'): RunManifest {
  return {
    runId,
    createdAt: '2026-01-01T00:00:00.000Z',
    config: { agent: 'oracle' },
    plan: ['a#0', 'b#0', 'c#0'].map((episodeId) => ({
      episodeId,
      taskId: episodeId.slice(0, 1),
      epoch: 0,
      seed: 1,
    })),
  };
}

function episode(episodeId: string, status = 'completed', attempt = 1): EpisodeRecord {
  return {
    episodeId,
    status,
    attempt,
    previousAttempts: [],
    reward: { total: status === 'completed' ? 1 : 0, components: {}, constraints: {} },
  } as unknown as EpisodeRecord;
}

function tornFiles(root: string): string[] {
  return readdirSync(join(root, 'run-1')).filter((name) => name.startsWith('episodes.jsonl.torn-'));
}

describe('RunStore', () => {
  it('records finished episodes durably and reports the missing ones', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    const store = RunStore.create(root, manifest());
    store.openForWrite();
    store.appendEpisode(episode('a#0'));
    await store.close();
    const reopened = RunStore.open(root, 'run-1');
    expect(reopened.episodes().map((record) => record.episodeId)).toEqual(['a#0']);
    expect(reopened.missing().map((planned) => planned.episodeId)).toEqual(['b#0', 'c#0']);
  });

  it('skips a torn last line on read and cuts it off before appending', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    const store = RunStore.create(root, manifest());
    store.openForWrite();
    store.appendEpisode(episode('a#0'));
    await store.close();
    const file = join(root, 'run-1', 'episodes.jsonl');
    appendFileSync(file, '{"episodeId":"b#0","sta'); // what a kill -9 mid-write leaves
    const reopened = RunStore.open(root, 'run-1');
    expect(reopened.episodes()).toHaveLength(1);
    reopened.openForWrite();
    reopened.appendEpisode(episode('b#0'));
    await reopened.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(
      RunStore.open(root, 'run-1')
        .missing()
        .map((planned) => planned.episodeId),
    ).toEqual(['c#0']);
  });

  it('logs events without what the episode record already holds: screenshots keep only type and size', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    const store = RunStore.create(root, manifest());
    store.openForWrite();
    const image = { mimeType: 'image/png', dataBase64: Buffer.alloc(3_000, 7).toString('base64') };
    const turn = {
      index: 0,
      text: null,
      toolCalls: [],
      toolResults: [
        {
          callId: 'c1',
          name: 'browser_click',
          output: 'clicked',
          images: [image],
          isError: false,
          durationMs: 1,
        },
        { callId: 'c2', name: 'bash', output: 'ok', isError: false, durationMs: 1 },
      ],
      rewards: {},
      reward: 0,
      startedAt: '2026-01-01T00:00:00.000Z',
      agentMs: 1,
      toolMs: 1,
    };
    store.appendEvent({ type: 'turn-end', episodeId: 'a#0', turn });
    store.appendEvent({ type: 'episode-end', episode: episode('a#0') });
    await store.close();
    const lines = readFileSync(join(root, 'run-1', 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({
      type: 'turn-end',
      turn: {
        toolResults: [
          { output: 'clicked', images: [{ mimeType: 'image/png', bytes: 3_000 }] },
          { output: 'ok' },
        ],
      },
    });
    expect(JSON.stringify(lines[0])).not.toContain(image.dataBase64.slice(0, 40));
    expect(lines[1]).toEqual({
      at: expect.any(Number),
      type: 'episode-end',
      episodeId: 'a#0',
      status: 'completed',
    });
    expect(turn.toolResults[0]?.images?.[0]).toBe(image); // the caller's record is untouched
  });

  it('refuses to record an episode twice', () => {
    const store = RunStore.create(mkdtempSync(join(tmpdir(), 'paddock-store-')), manifest());
    store.openForWrite();
    store.appendEpisode(episode('a#0'));
    expect(() => store.appendEpisode(episode('a#0'))).toThrow(/already recorded/);
  });

  it('refuses a second writer while the first process lives, and takes over a stale lock', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    RunStore.create(root, manifest());
    writeFileSync(join(root, 'run-1', 'lock'), String(process.ppid));
    expect(() => RunStore.open(root, 'run-1').openForWrite()).toThrow(/being written by process/);
    writeFileSync(join(root, 'run-1', 'lock'), '999999999');
    const store = RunStore.open(root, 'run-1');
    store.openForWrite();
    await store.close();
  });

  it('names a corrupt line that is not the last', () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    RunStore.create(root, manifest());
    writeFileSync(join(root, 'run-1', 'episodes.jsonl'), 'garbage\n{"episodeId":"a#0"}\n');
    expect(() => RunStore.open(root, 'run-1').episodes()).toThrow(/line 1 is not a valid episode record/);
  });

  it('answers an unknown run with RUN_NOT_FOUND', () => {
    expect(() => RunStore.open(mkdtempSync(join(tmpdir(), 'paddock-store-')), 'nope')).toThrow(
      expect.objectContaining({ code: 'RUN_NOT_FOUND' }),
    );
  });

  it('cuts a torn tail off when the run is opened, keeps its bytes in a side file, and lists its episode as missing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    const store = RunStore.create(root, manifest());
    store.openForWrite();
    store.appendEpisode(episode('a#0'));
    await store.close();
    const file = join(root, 'run-1', 'episodes.jsonl');
    const intact = readFileSync(file);
    appendFileSync(file, '{"episodeId":"b#0","status":"comp');
    const reopened = RunStore.open(root, 'run-1');
    expect(reopened.tornTail).toMatchObject({ bytes: 33 });
    expect(readFileSync(file)).toEqual(intact);
    expect(tornFiles(root)).toHaveLength(1);
    expect(readFileSync(join(root, 'run-1', tornFiles(root)[0]!), 'utf8')).toBe(
      '{"episodeId":"b#0","status":"comp',
    );
    expect(reopened.missing().map((planned) => planned.episodeId)).toEqual(['b#0', 'c#0']);
  });

  it('treats an unparseable last line as torn even when it ends with a newline', () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    RunStore.create(root, manifest());
    const file = join(root, 'run-1', 'episodes.jsonl');
    writeFileSync(file, `${JSON.stringify(episode('a#0'))}\n{"episodeId":"b#0","sta\n`);
    const reopened = RunStore.open(root, 'run-1');
    expect(reopened.episodes().map((record) => record.episodeId)).toEqual(['a#0']);
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(episode('a#0'))}\n`);
  });

  it('finds the torn tail from the end of the file, whatever the length of the last records', () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    RunStore.create(root, manifest());
    const file = join(root, 'run-1', 'episodes.jsonl');
    const big = (id: string) => JSON.stringify({ ...episode(id), answer: 'x'.repeat(200_000) });
    const intact = `${big('a#0')}\n${big('b#0')}\n`;
    writeFileSync(file, `${intact}${big('c#0').slice(0, 150_000)}`);
    const reopened = RunStore.open(root, 'run-1');
    expect(reopened.tornTail).toMatchObject({ bytes: 150_000 });
    expect(readFileSync(file, 'utf8')).toBe(intact);
    expect(RunStore.open(root, 'run-1').tornTail).toBeUndefined();
    expect(reopened.episodes().map((record) => record.episodeId)).toEqual(['a#0', 'b#0']);
  });

  it('leaves a torn tail alone while a live process writes the run (a reader only skips it)', () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    RunStore.create(root, manifest());
    const file = join(root, 'run-1', 'episodes.jsonl');
    const content = `${JSON.stringify(episode('a#0'))}\n{"episodeId":"b#0"`;
    writeFileSync(file, content);
    writeFileSync(join(root, 'run-1', 'lock'), String(process.ppid)); // a live writer
    const reader = RunStore.open(root, 'run-1');
    expect(reader.episodes()).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe(content);
    expect(tornFiles(root)).toEqual([]);
  });

  it('appends a re-run of an errored episode after it, and reads the latest attempt of each episode', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    const store = RunStore.create(root, manifest());
    store.openForWrite();
    store.appendEpisode(episode('a#0', 'infra-error'));
    store.appendEpisode(episode('b#0'));
    expect(store.errored().map(({ planned }) => planned.episodeId)).toEqual(['a#0']);
    expect(() => store.appendEpisode(episode('a#0', 'completed', 2))).toThrow(/already recorded/);
    store.appendEpisode(episode('a#0', 'completed', 2), { supersede: true });
    expect(() => store.appendEpisode(episode('a#0', 'completed', 3), { supersede: true })).toThrow(
      /already recorded \(completed\)/,
    );
    await store.close();
    const reopened = RunStore.open(root, 'run-1');
    expect(reopened.records().map((record) => [record.episodeId, record.attempt])).toEqual([
      ['a#0', 1],
      ['b#0', 1],
      ['a#0', 2],
    ]);
    expect(reopened.episodes().map((record) => [record.episodeId, record.status])).toEqual([
      ['b#0', 'completed'],
      ['a#0', 'completed'],
    ]);
    expect(reopened.errored()).toEqual([]);
  });

  it('survives an event log that cannot be written: no unhandled error, episodes still recorded', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-store-'));
    const store = RunStore.create(root, manifest());
    mkdirSync(join(root, 'run-1', 'events.jsonl')); // opening it for append fails with EISDIR
    store.openForWrite();
    store.appendEvent({ type: 'episode-start', episodeId: 'a#0', taskId: 'a', attempt: 1 });
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the stream report its error
    store.appendEvent({ type: 'episode-start', episodeId: 'b#0', taskId: 'b', attempt: 1 });
    store.appendEpisode(episode('a#0'));
    await store.close();
    expect(store.eventsError).toMatchObject({ code: 'EISDIR' });
    expect(
      RunStore.open(root, 'run-1')
        .episodes()
        .map((record) => record.episodeId),
    ).toEqual(['a#0']);
  });
});
