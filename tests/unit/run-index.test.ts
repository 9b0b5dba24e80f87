/**
 * The run index: its entries say what the records say, its summary equals the records'
 * summary, it follows a live run, and its sidecar is never trusted over the records.
 */
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSyntheticRun } from '../../bench/synthetic-run.ts';
import {
  RunIndex,
  RunStore,
  summariseRun,
  type EpisodeRecord,
  type RunIndexOptions,
  type RunManifest,
} from '../../harness/index.ts';

const keyFile = join(mkdtempSync(join(tmpdir(), 'paddock-index-key-')), 'index-key');
const options: RunIndexOptions = { keyFile };

function manifest(ids: string[]): RunManifest {
  return {
    runId: 'run-1',
    createdAt: '2026-01-01T00:00:00.000Z',
    config: { agent: 'scripted' },
    plan: ids.map((episodeId) => ({ episodeId, taskId: episodeId.split('#')[0]!, epoch: 0, seed: 1 })),
  };
}

function record(
  episodeId: string,
  options: { status?: EpisodeRecord['status']; reward?: number; attempt?: number; output?: string } = {},
): EpisodeRecord {
  const reward = options.reward ?? 0;
  const status = options.status ?? 'completed';
  const error =
    status === 'infra-error'
      ? { code: 'MODEL_UNREACHABLE', message: 'x'.repeat(500), retryable: true }
      : undefined;
  return {
    runId: 'run-1',
    episodeId,
    taskId: episodeId.split('#')[0]!,
    epoch: 0,
    seed: 1,
    attempt: options.attempt ?? 1,
    agent: 'scripted',
    status,
    ...(error ? { error } : {}),
    previousAttempts: [],
    messages: [
      { role: 'user', content: 'Fix the parser.' },
      {
        role: 'assistant',
        content: null,
        toolCalls: [{ id: 'c1', name: 'bash', arguments: '{"command":"ls"}' }],
      },
      {
        role: 'tool',
        toolCallId: 'c1',
        name: 'bash',
        content: options.output ?? 'src tests',
        images: [{ mimeType: 'image/png', dataBase64: 'iVBORw0KGgoAAAANSUhEUg' }],
      },
    ],
    tools: [],
    turns: [
      {
        index: 0,
        text: null,
        toolCalls: [{ id: 'c1', name: 'bash', arguments: '{"command":"ls"}' }],
        toolResults: [
          {
            callId: 'c1',
            name: 'bash',
            output: options.output ?? 'src tests',
            isError: false,
            durationMs: 3,
          },
        ],
        usage: { promptTokens: 100, completionTokens: 10, cacheReadTokens: 40 },
        tokens: { promptIds: [1, 2], completionIds: [3], completionLogprobs: [-0.1] },
        costUsd: 0.002,
        rewards: { progress: 0.5 },
        reward: 0.5,
        startedAt: '2026-01-01T00:00:01.000Z',
        agentMs: 5,
        toolMs: 3,
      },
    ],
    ...(error
      ? {}
      : {
          verifier: {
            reward,
            scores: { correctness: reward, style: 1 },
            exitCode: 0,
            stdout: `verifier says ${reward}`,
            stderr: '',
            timedOut: false,
            durationMs: 9,
            warnings: [],
          },
        }),
    reward: {
      total: reward,
      components: error ? {} : { verifier: { value: reward, weight: 1 } },
      constraints: error ? {} : { tokens: { value: 110, limit: 1000 } },
    },
    usage: { promptTokens: 100, completionTokens: 10, cacheReadTokens: 40 },
    stats: {
      toolCalls: 1,
      toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
      emptyTurns: 0,
    },
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:02.000Z',
    durationMs: 2000,
  };
}

/** A run of `records`, written through the store; returns its folder. */
async function run(
  records: EpisodeRecord[],
  plan = [...new Set(records.map((r) => r.episodeId))],
): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'paddock-index-'));
  const store = RunStore.create(root, manifest(plan));
  store.openForWrite();
  for (const each of records) store.appendEpisode(each, { supersede: true });
  await store.close();
  return store.dir;
}

function storeOf(dir: string): RunStore {
  return RunStore.open(join(dir, '..'), 'run-1');
}

describe('RunIndex', () => {
  it('has one entry per record line, saying what the record says', async () => {
    const dir = await run([record('a#0', { reward: 1 }), record('b#0', { status: 'infra-error' })]);
    const index = RunIndex.open(dir, options);
    const [a, b] = index.all();
    expect(a).toMatchObject({
      episodeId: 'a#0',
      taskId: 'a',
      attempt: 1,
      agent: 'scripted',
      status: 'completed',
      reward: 1,
      rewardComponents: { verifier: 1 },
      constraints: { tokens: 110 },
      turnRewards: { progress: 0.5 },
      scores: { correctness: 1, style: 1 },
      turns: 1,
      toolCalls: 1,
      inputTokens: 100,
      outputTokens: 10,
      cachedTokens: 40,
      costUsd: 0.002,
      durationMs: 2000,
      tokenExact: true,
      images: 1,
      offset: 0,
    });
    expect(b).toMatchObject({ status: 'infra-error', errorCode: 'MODEL_UNREACHABLE', offset: a!.length });
    expect(b!.errorMessage!.length).toBeLessThanOrEqual(300);
    expect(a!.length + b!.length).toBe(readFileSync(join(dir, 'episodes.jsonl')).length);
    expect(index.record('a#0')).toEqual(record('a#0', { reward: 1 }));
  });

  it('summarises as summariseRun does over the records, on the first open and from the sidecar', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-index-'));
    const { dir, runId } = await writeSyntheticRun(root, { episodes: 400, seed: 7, index: false });
    const expected = summariseRun(RunStore.open(root, runId).episodes());
    expect(expected.total.usage.cachedTokens).toBeGreaterThan(0);
    expect(RunIndex.open(dir, options).summary()).toEqual(expected);
    expect(readdirSync(dir)).toContain('episodes.index');
    const reopened = RunIndex.open(dir, options);
    expect(reopened.summary()).toEqual(expected);
    expect(reopened.latest().map((entry) => entry.episodeId)).toEqual(
      RunStore.open(root, runId).manifest.plan.map((planned) => planned.episodeId),
    );
  });

  it('opens a run without a sidecar a budget at a time, and once caught up equals a whole open and saves the sidecar', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-index-'));
    const { dir, runId } = await writeSyntheticRun(root, { episodes: 300, seed: 3, index: false });
    const expected = summariseRun(RunStore.open(root, runId).episodes());
    const size = readFileSync(join(dir, 'episodes.jsonl')).length;
    const budget = Math.floor(size / 10);
    const index = RunIndex.open(dir, { ...options, openBudgetBytes: budget });
    expect(index.behind).toEqual({ indexedBytes: expect.any(Number) as number, totalBytes: size });
    expect(index.behind!.indexedBytes).toBeLessThanOrEqual(budget);
    expect(index.all().length).toBeGreaterThan(0);
    expect(index.all().length).toBeLessThan(300);
    expect(readdirSync(dir)).not.toContain('episodes.index'); // a partial index is not saved at open
    let steps = 0;
    while (index.behind) {
      const before = index.all().length;
      expect(index.refresh(budget)).toBe(true);
      expect(index.all().length).toBeGreaterThan(before);
      steps++;
    }
    expect(steps).toBeGreaterThanOrEqual(8);
    expect(index.refresh(budget)).toBe(false);
    expect(index.summary()).toEqual(expected);
    expect(readdirSync(dir)).toContain('episodes.index'); // written by the call that caught up
    const whole = RunIndex.open(dir, { ...options, openBudgetBytes: 1 });
    expect(whole.behind).toBeUndefined(); // the sidecar covers it all
    expect(whole.all()).toEqual(index.all());
  });

  it('makes progress with a budget smaller than one record line', async () => {
    const dir = await run([record('a#0', { reward: 1 }), record('b#0'), record('c#0')]);
    rmSync(join(dir, 'episodes.index'), { force: true });
    const index = RunIndex.open(dir, { ...options, sidecar: false, openBudgetBytes: 10 });
    expect(index.all().map((entry) => entry.episodeId)).toEqual(['a#0']);
    index.refresh(10);
    index.refresh(10);
    expect(index.behind).toBeUndefined();
    expect(index.all().map((entry) => entry.episodeId)).toEqual(['a#0', 'b#0', 'c#0']);
  });

  it('keeps every attempt of a re-run episode, and gives the latest by default', async () => {
    const dir = await run([
      record('a#0', { status: 'infra-error' }),
      record('b#0', { reward: 1 }),
      record('a#0', { attempt: 2, reward: 0.5 }),
    ]);
    const index = RunIndex.open(dir, options);
    expect(index.all().map((entry) => [entry.episodeId, entry.attempt])).toEqual([
      ['a#0', 1],
      ['b#0', 1],
      ['a#0', 2],
    ]);
    expect(index.latest().map((entry) => [entry.episodeId, entry.attempt])).toEqual([
      ['a#0', 2],
      ['b#0', 1],
    ]);
    expect(index.record('a#0').attempt).toBe(2);
    expect(index.record('a#0', 1).status).toBe('infra-error');
    expect(() => index.record('a#0', 3)).toThrow(expect.objectContaining({ code: 'RUN_NOT_FOUND' }));
    expect(() => index.record('zz#0')).toThrow(expect.objectContaining({ code: 'RUN_NOT_FOUND' }));
    expect(index.summary()).toEqual(summariseRun(storeOf(dir).episodes()));
    expect((await index.query({ attempts: 'all' })).total).toBe(3);
  });

  it('takes in records a live writer appends when refreshed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-index-'));
    const store = RunStore.create(root, manifest(['a#0', 'b#0']));
    store.openForWrite();
    store.appendEpisode(record('a#0', { reward: 1 }));
    const index = RunIndex.open(store.dir, options);
    expect(index.latest()).toHaveLength(1);
    expect(index.refresh()).toBe(false);
    store.appendEpisode(record('b#0', { reward: 0 }));
    expect(index.refresh()).toBe(true);
    expect(index.latest().map((entry) => entry.episodeId)).toEqual(['a#0', 'b#0']);
    expect(index.summary().total).toMatchObject({ episodes: 2, meanReward: 0.5 });
    expect(index.record('b#0').episodeId).toBe('b#0');
    await store.close();
    index.close();
    // The next open starts from the sidecar and still agrees with the records.
    expect(RunIndex.open(store.dir, options).summary()).toEqual(summariseRun(store.episodes()));
  });

  it('leaves a torn last line out while a writer lives, and takes it in once whole', async () => {
    const dir = await run([record('a#0', { reward: 1 })], ['a#0', 'b#0']);
    const line = `${JSON.stringify(record('b#0', { reward: 1 }))}\n`;
    appendFileSync(join(dir, 'episodes.jsonl'), line.slice(0, 40));
    writeFileSync(join(dir, 'lock'), String(process.ppid)); // a live writer
    const index = RunIndex.open(dir, options);
    expect(index.latest().map((entry) => entry.episodeId)).toEqual(['a#0']);
    appendFileSync(join(dir, 'episodes.jsonl'), line.slice(40));
    expect(index.refresh()).toBe(true);
    expect(index.latest().map((entry) => entry.episodeId)).toEqual(['a#0', 'b#0']);
  });

  it('cuts a torn tail off when no writer lives, as the store does, and keeps its bytes aside', async () => {
    const dir = await run([record('a#0', { reward: 1 })], ['a#0', 'b#0']);
    const intact = readFileSync(join(dir, 'episodes.jsonl'));
    appendFileSync(join(dir, 'episodes.jsonl'), '{"episodeId":"b#0","sta');
    const index = RunIndex.open(dir, options);
    expect(index.all()).toHaveLength(1);
    expect(readFileSync(join(dir, 'episodes.jsonl'))).toEqual(intact);
    expect(readdirSync(dir).filter((name) => name.startsWith('episodes.jsonl.torn-'))).toHaveLength(1);
  });

  it('does not let a tampered sidecar change a score: the record wins', async () => {
    const dir = await run([record('a#0', { reward: 0 }), record('b#0', { reward: 1 })]);
    RunIndex.open(dir, options).close();
    const path = join(dir, 'episodes.index');
    const [mac, header, batch] = readFileSync(path, 'utf8').split('\n');
    const rows = JSON.parse(batch!) as unknown[][];
    expect(rows[0]![0]).toBe('a#0');
    rows[0]![12] = 1; // the reward column
    const forged = JSON.stringify(rows);
    writeFileSync(path, [mac, header, forged].join('\n'));
    const index = RunIndex.open(dir, options);
    expect(index.latest()[0]).toMatchObject({ episodeId: 'a#0', reward: 0 });
    expect(index.summary()).toEqual(summariseRun(storeOf(dir).episodes()));
    // Rebuilt: the sidecar on disk is a valid one again.
    expect(readFileSync(path, 'utf8').split('\n')[2]).not.toBe(forged);
  });

  it('rebuilds a sidecar that is corrupt, signed with another key, or stale after the records were edited', async () => {
    const dir = await run([record('a#0', { reward: 0 }), record('b#0', { reward: 1 })]);
    RunIndex.open(dir, options).close();
    const path = join(dir, 'episodes.index');
    writeFileSync(path, readFileSync(path).subarray(0, 100));
    expect(
      RunIndex.open(dir, options)
        .latest()
        .map((entry) => entry.reward),
    ).toEqual([0, 1]);

    const otherKey = join(mkdtempSync(join(tmpdir(), 'paddock-index-key-')), 'index-key');
    RunIndex.open(dir, { keyFile: otherKey }).close();
    expect(
      RunIndex.open(dir, options)
        .latest()
        .map((entry) => entry.reward),
    ).toEqual([0, 1]);

    // An edit of the records in place (same length): the index follows the records.
    const episodes = join(dir, 'episodes.jsonl');
    writeFileSync(
      episodes,
      readFileSync(episodes, 'utf8').replace('"reward":{"total":0,', '"reward":{"total":1,'),
    );
    const index = RunIndex.open(dir, options);
    expect(index.latest().map((entry) => entry.reward)).toEqual([1, 1]);
    expect(index.summary()).toEqual(summariseRun(storeOf(dir).episodes()));
  });

  it('extends its sidecar by the records appended since, keeping what it covered', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-index-'));
    const store = RunStore.create(root, manifest(['a#0', 'b#0']));
    store.openForWrite();
    store.appendEpisode(record('a#0', { reward: 1 }));
    RunIndex.open(store.dir, options).close();
    store.appendEpisode(record('b#0', { reward: 0 }));
    await store.close();
    const index = RunIndex.open(store.dir, options);
    expect(index.latest().map((entry) => entry.episodeId)).toEqual(['a#0', 'b#0']);
    const header = JSON.parse(readFileSync(join(store.dir, 'episodes.index'), 'utf8').split('\n')[1]!) as {
      covers: number;
    };
    expect(header.covers).toBe(readFileSync(join(store.dir, 'episodes.jsonl')).length);
  });

  it('is brought up to date by the store when a writer closes', async () => {
    const before = process.env.PADDOCK_INDEX_KEY_FILE;
    process.env.PADDOCK_INDEX_KEY_FILE = keyFile;
    try {
      const dir = await run([record('a#0', { reward: 1 }), record('b#0')]);
      const [, header] = readFileSync(join(dir, 'episodes.index'), 'utf8').split('\n');
      expect(JSON.parse(header!)).toMatchObject({
        covers: readFileSync(join(dir, 'episodes.jsonl')).length,
        count: 2,
        summary: summariseRun(storeOf(dir).episodes()),
      });
    } finally {
      if (before === undefined) delete process.env.PADDOCK_INDEX_KEY_FILE;
      else process.env.PADDOCK_INDEX_KEY_FILE = before;
    }
  });

  it('answers RUN_NOT_FOUND for a folder without a run', () => {
    expect(() => RunIndex.open(mkdtempSync(join(tmpdir(), 'paddock-index-')), options)).toThrow(
      expect.objectContaining({ code: 'RUN_NOT_FOUND' }),
    );
  });
});

describe('RunIndex.query', () => {
  async function sample(): Promise<RunIndex> {
    const dir = await run([
      record('web/a#0', { reward: 1, output: 'Page loaded: Checkout complete' }),
      record('web/a#1', { reward: 0.25, output: 'timeout waiting for selector' }),
      record('swe/b#0', { status: 'infra-error' }),
      record('swe/b#1', { reward: 0.5, output: 'all "tests" passed\nchecked' }),
      record('swe/c#0', { status: 'limit', reward: 0 }),
    ]);
    return RunIndex.open(dir, options);
  }

  it('filters by task, status, error code, reward and turns', async () => {
    const index = await sample();
    const ids = async (query: Parameters<RunIndex['query']>[0]) =>
      (await index.query(query)).entries.map((entry) => entry.episodeId);
    expect(await ids({ task: 'web/' })).toEqual(['web/a#0', 'web/a#1']);
    expect(await ids({ status: ['limit', 'infra-error'] })).toEqual(['swe/b#0', 'swe/c#0']);
    expect(await ids({ errorCode: 'MODEL_UNREACHABLE' })).toEqual(['swe/b#0']);
    expect(await ids({ minReward: 0.3, maxReward: 0.9 })).toEqual(['swe/b#1']);
    expect(await ids({ minTurns: 2 })).toEqual([]);
  });

  it('sorts, stably, either way, and pages with the total of all matches', async () => {
    const index = await sample();
    const page = await index.query({ sort: 'reward', descending: true, offset: 1, limit: 2 });
    expect(page.total).toBe(5);
    expect(page.entries.map((entry) => entry.episodeId)).toEqual(['swe/b#1', 'web/a#1']);
    const byTask = await index.query({ sort: 'task' });
    expect(byTask.entries.map((entry) => entry.episodeId)).toEqual([
      'swe/b#0',
      'swe/b#1',
      'swe/c#0',
      'web/a#0',
      'web/a#1',
    ]);
  });

  it('finds text in tool results case-insensitively, quotes and newlines included, but never in keys or image data', async () => {
    const index = await sample();
    const ids = async (text: string) => (await index.query({ text })).entries.map((entry) => entry.episodeId);
    expect(await ids('checkout COMPLETE')).toEqual(['web/a#0']);
    expect(await ids('"tests" passed\nch')).toEqual(['swe/b#1']);
    expect(await ids('toolCallId')).toEqual([]);
    expect(await ids('iVBORw0KGgo')).toEqual([]);
    expect(await ids('model_unreachable')).toEqual(['swe/b#0']);
    expect(await index.query({ text: 'selector', status: ['completed'], task: 'swe' })).toMatchObject({
      total: 0,
    });
  });

  it('searches a file larger than its chunk size with reads no larger than a chunk or a line', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-index-'));
    const { dir, runId } = await writeSyntheticRun(root, { episodes: 120, seed: 3, index: false });
    const chunkBytes = 8 * 1024;
    const index = RunIndex.open(dir, { ...options, chunkBytes });
    const fileBytes = readFileSync(join(dir, 'episodes.jsonl')).length;
    expect(fileBytes).toBeGreaterThan(20 * chunkBytes);
    const longest = Math.max(...index.all().map((entry) => entry.length));
    const page = await index.query({ text: 'EXIT CODE 1', limit: 1000 });
    expect(page.searched!.largestReadBytes).toBeLessThanOrEqual(Math.max(chunkBytes, longest));
    const expected = RunStore.open(root, runId)
      .episodes()
      .filter((episode) =>
        episode.messages.some(
          (message) => typeof message.content === 'string' && /exit code 1/i.test(message.content),
        ),
      )
      .map((episode) => episode.episodeId)
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    expect(page.entries.map((entry) => entry.episodeId).sort()).toEqual(expected);
  });
});
