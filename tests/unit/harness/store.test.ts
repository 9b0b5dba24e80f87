import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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

function episode(episodeId: string): EpisodeRecord {
  return {
    episodeId,
    status: 'completed',
    reward: { total: 1, components: {}, constraints: {} },
  } as unknown as EpisodeRecord;
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
    expect(() => RunStore.open(root, 'run-1').episodes()).toThrow(/line 1 is not valid JSON/);
  });

  it('answers an unknown run with RUN_NOT_FOUND', () => {
    expect(() => RunStore.open(mkdtempSync(join(tmpdir(), 'paddock-store-')), 'nope')).toThrow(
      expect.objectContaining({ code: 'RUN_NOT_FOUND' }),
    );
  });
});
