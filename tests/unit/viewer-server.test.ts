/**
 * The viewer's HTTP API without a browser: runs found under the root, episode pages,
 * filters, records without image bytes, images with their type and cache headers, token
 * records, refused traversal, training outputs and the live stream.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore, type EpisodeRecord, type EpisodeStatus } from '../../harness/index.ts';
import { serveViewer, type RunningViewer } from '../../viewer/index.ts';
import { writeSyntheticRun } from '../../bench/synthetic-run.ts';

/** A 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

function record(runId: string, n: number, status: EpisodeStatus, reward: number): EpisodeRecord {
  const taskId = n % 2 === 0 ? 'suite/even' : 'suite/odd';
  const image = { mimeType: 'image/png', dataBase64: PNG.toString('base64') };
  return {
    runId,
    episodeId: `${taskId}#${n}`,
    taskId,
    epoch: n,
    seed: n,
    attempt: 1,
    agent: 'scripted',
    status,
    ...(status === 'infra-error'
      ? { error: { code: 'SANDBOX_START_FAILED', message: 'engine down', retryable: true } }
      : {}),
    previousAttempts: [],
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: `task ${n}: find the needle-${n}` },
      { role: 'assistant', content: 'looking', toolCalls: [{ id: 'c1', name: 'shot', arguments: '{}' }] },
      { role: 'tool', toolCallId: 'c1', name: 'shot', content: 'a screenshot', images: [image] },
    ],
    tools: [{ name: 'shot', description: 'takes a screenshot', inputSchema: { type: 'object' } }],
    turns: [
      {
        index: 0,
        text: 'looking',
        toolCalls: [{ id: 'c1', name: 'shot', arguments: '{}' }],
        toolResults: [
          {
            callId: 'c1',
            name: 'shot',
            output: 'a screenshot',
            images: [image],
            isError: false,
            durationMs: 3,
          },
        ],
        tokens: {
          promptIds: [1, 2, 3],
          completionIds: [7, 8],
          completionLogprobs: [-0.1, -2],
          completionTexts: ['look', 'ing'],
          driftAt: 2,
        },
        rewards: { step: 0.5 },
        reward: 0.5,
        startedAt: '2026-12-01T00:00:00.000Z',
        agentMs: 10,
        toolMs: 3,
      },
    ],
    reward: { total: reward, components: { verifier: { value: reward, weight: 1 } }, constraints: {} },
    usage: { promptTokens: 100, completionTokens: 20 },
    stats: {
      toolCalls: 1,
      toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
      emptyTurns: 0,
    },
    startedAt: '2026-12-01T00:00:00.000Z',
    endedAt: '2026-12-01T00:00:01.000Z',
    durationMs: 1000 + n,
  };
}

const root = mkdtempSync(join(tmpdir(), 'paddock-viewer-'));
const runsDir = join(root, 'evals');
let viewer: RunningViewer;
let liveStore: RunStore;

function writeRun(dir: string, runId: string, count: number): RunStore {
  const store = RunStore.create(dir, {
    runId,
    createdAt: '2026-12-01T00:00:00.000Z',
    config: { agent: 'scripted', taskPaths: ['suite'] },
    plan: Array.from({ length: count + 2 }, (_, n) => ({
      episodeId: `${n % 2 === 0 ? 'suite/even' : 'suite/odd'}#${n}`,
      taskId: n % 2 === 0 ? 'suite/even' : 'suite/odd',
      epoch: n,
      seed: n,
    })),
  });
  store.openForWrite();
  for (let n = 0; n < count; n++)
    store.appendEpisode(record(runId, n, n === 3 ? 'infra-error' : 'completed', n % 3 === 0 ? 1 : 0));
  return store;
}

beforeAll(async () => {
  await writeRun(runsDir, 'run-a', 12).close();
  liveStore = writeRun(runsDir, 'run-live', 2);
  const training = join(root, 'train-out');
  mkdirSync(join(training, 'runs'), { recursive: true });
  writeFileSync(
    join(training, 'metrics.jsonl'),
    [
      { type: 'train', step: 1, reward_mean: 0.2, pass_rate: 0.1, loss: 0.9 },
      { type: 'eval', step: 1, success: 0.3 },
      { type: 'train', step: 2, reward_mean: 0.4, pass_rate: 0.3, loss: 0.7 },
    ]
      .map((row) => JSON.stringify(row))
      .join('\n') + '\n',
  );
  await writeRun(join(training, 'runs'), 'step-000001', 2).close();
  viewer = await serveViewer({ root, port: 0, livePollMs: 50 });
});

afterAll(async () => {
  await viewer.close();
  await liveStore.close();
  rmSync(root, { recursive: true, force: true });
});

async function get(path: string): Promise<Response> {
  return fetch(new URL(path, viewer.url));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are read loosely
async function json(path: string): Promise<any> {
  const response = await get(path);
  expect(response.status, `${path}: ${await response.clone().text()}`).toBe(200);
  return response.json();
}

const A = encodeURIComponent('evals/run-a');

describe('the viewer API', () => {
  it('listens on loopback by default', () => {
    expect(new URL(viewer.url).hostname).toBe('127.0.0.1');
  });

  it('answers only loopback host names on loopback (no DNS rebinding)', async () => {
    const port = new URL(viewer.url).port;
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const request = httpGet(
          { host: '127.0.0.1', port, path: '/api/runs', headers: { host } },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        );
        request.on('error', reject);
      });
    expect(await status('evil.example:' + port)).toBe(403);
    expect(await status('localhost:' + port)).toBe(200);
    expect(await status('127.0.0.1:' + port)).toBe(200);
  });

  it('finds runs and training outputs under the root, with done/planned and mean reward', async () => {
    const body = await json('/api/runs');
    const ids = body.runs.map((run: { id: string }) => run.id).sort();
    expect(ids).toEqual(['evals/run-a', 'evals/run-live', 'train-out/runs/step-000001']);
    const a = body.runs.find((run: { id: string }) => run.id === 'evals/run-a');
    expect(a).toMatchObject({ done: 12, planned: 14, agent: 'scripted', tasks: 2, errors: 1, live: false });
    expect(body.runs.find((run: { id: string }) => run.id === 'evals/run-live').live).toBe(true);
    expect(body.trainings).toEqual([{ id: 'train-out', runs: 1 }]);
  });

  it('pages the episode list: limit and offset, with the total', async () => {
    const first = await json(`/api/runs/${A}/episodes?limit=5&sort=durationMs`);
    const second = await json(`/api/runs/${A}/episodes?limit=5&offset=5&sort=durationMs`);
    expect(first.total).toBe(12);
    expect(first.entries).toHaveLength(5);
    expect(second.entries.map((e: { durationMs: number }) => e.durationMs)).toEqual([
      1005, 1006, 1007, 1008, 1009,
    ]);
  });

  it('filters by status and task, and refuses an unknown status naming the allowed ones', async () => {
    const errors = await json(`/api/runs/${A}/episodes?status=infra-error`);
    expect(errors.entries.map((e: { episodeId: string }) => e.episodeId)).toEqual(['suite/odd#3']);
    const even = await json(`/api/runs/${A}/episodes?task=suite/even&limit=100`);
    expect(even.total).toBe(6);
    const bad = await get(`/api/runs/${A}/episodes?status=done`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/status must be one of completed/);
  });

  it('sends a record with links in place of image bytes and a token summary in place of ids', async () => {
    const body = await json(`/api/runs/${A}/episodes/${encodeURIComponent('suite/even#0')}`);
    const text = JSON.stringify(body);
    expect(text).not.toContain(PNG.toString('base64'));
    expect(text).not.toContain('dataBase64');
    expect(body.messages[3].images[0]).toMatchObject({ mimeType: 'image/png', bytes: PNG.length });
    expect(body.turns[0].tokens).toMatchObject({
      promptLength: 3,
      completionLength: 2,
      driftAt: 2,
      decoded: true,
    });
    expect(body.turns[0].tokens.promptIds).toBeUndefined();
  });

  it('serves an image with its content type, length and an immutable cache header', async () => {
    const body = await json(`/api/runs/${A}/episodes/${encodeURIComponent('suite/even#0')}`);
    const response = await get(body.messages[3].images[0].url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('cache-control')).toContain('immutable');
    expect(Buffer.from(await response.arrayBuffer())).toEqual(PNG);
  });

  it("serves one turn's token record whole", async () => {
    const tokens = await json(`/api/runs/${A}/episodes/${encodeURIComponent('suite/even#0')}/turns/0/tokens`);
    expect(tokens).toMatchObject({
      promptIds: [1, 2, 3],
      completionIds: [7, 8],
      completionLogprobs: [-0.1, -2],
      completionTexts: ['look', 'ing'],
      driftAt: 2,
    });
  });

  it('refuses paths outside the runs it found and the static folder', async () => {
    for (const path of [
      `/api/runs/${encodeURIComponent('../../etc')}`,
      `/api/runs/${encodeURIComponent('/etc')}`,
      `/api/runs/${encodeURIComponent('evals/run-a/../../..')}/episodes`,
      '/..%2f..%2fpackage.json',
      '/%2e%2e/server.ts',
      '/..%2Fserver.ts',
    ]) {
      const response = await get(path);
      expect(response.status, path).toBe(404);
    }
    for (const path of [
      `/api/runs/${A}/files/${encodeURIComponent('../run.json')}`,
      `/api/runs/${A}/files/..%2F..%2Frun-live%2Frun.json`,
      `/api/runs/${A}/run.json`,
    ]) {
      const response = await get(path);
      expect([403, 404], path).toContain(response.status);
      expect(await response.text()).not.toContain('"plan"');
    }
  });

  it("serves a training output's metric rows and its step runs", async () => {
    const body = await json('/api/trainings/train-out');
    expect(body.rows.map((row: { type: string }) => row.type)).toEqual(['train', 'eval', 'train']);
    expect(body.runs).toEqual([
      { id: 'train-out/runs/step-000001', name: 'step-000001', kind: 'rollout', step: 1 },
    ]);
  });

  it('compares two runs per task', async () => {
    const body = await json(`/api/compare?a=${A}&b=${encodeURIComponent('evals/run-live')}`);
    expect(body.tasks.map((t: { task: string }) => t.task)).toEqual(['suite/even', 'suite/odd']);
    expect(body.tasks[0].a.episodes).toBe(6);
    expect(body.tasks[0].b.episodes).toBe(1);
  });

  it('pushes an update on the live stream when a record is appended', async () => {
    const controller = new AbortController();
    const response = await fetch(
      new URL(`/api/runs/${encodeURIComponent('evals/run-live')}/live`, viewer.url),
      {
        signal: controller.signal,
      },
    );
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const nextUpdate = async (): Promise<string> => {
      for (;;) {
        const match = /event: update\ndata: (.*)\n\n/.exec(seen);
        if (match) {
          seen = seen.slice(match.index + match[0].length);
          return match[1]!;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        seen += decoder.decode(value, { stream: true });
      }
    };
    expect(JSON.parse(await nextUpdate())).toMatchObject({ done: 2, live: true });
    liveStore.appendEpisode(record('run-live', 2, 'completed', 1));
    expect(JSON.parse(await nextUpdate())).toMatchObject({ done: 3 });
    controller.abort();
  });

  it('serves the pages', async () => {
    const page = await get('/');
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('app.js');
    const script = await get('/app.js');
    expect(script.headers.get('content-type')).toContain('javascript');
  });
});

describe('a run without a saved index', () => {
  it('opens at once with the records indexed so far, and catches up in the background', async () => {
    const bigRoot = mkdtempSync(join(tmpdir(), 'paddock-viewer-cold-'));
    const { dir } = await writeSyntheticRun(bigRoot, { episodes: 300, seed: 5, index: false });
    const size = statSync(join(dir, 'episodes.jsonl')).size;
    const cold = await serveViewer({ root: bigRoot, port: 0, indexSliceBytes: Math.floor(size / 25) });
    try {
      const id = encodeURIComponent(relative(bigRoot, dir));
      const first = (await (await fetch(new URL(`/api/runs/${id}`, cold.url))).json()) as {
        done: number;
        indexing?: { indexedBytes: number; totalBytes: number };
      };
      expect(first.indexing).toMatchObject({ totalBytes: size });
      expect(first.done).toBeLessThan(300);
      let latest = first;
      for (let waited = 0; latest.indexing && waited < 30_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        latest = (await (await fetch(new URL(`/api/runs/${id}`, cold.url))).json()) as typeof first;
      }
      expect(latest.indexing).toBeUndefined();
      expect(latest.done).toBe(300);
      expect(readdirSync(dir)).toContain('episodes.index');
    } finally {
      await cold.close();
      rmSync(bigRoot, { recursive: true, force: true });
    }
  });
});
