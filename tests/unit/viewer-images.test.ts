/**
 * The viewer and `paddock view --text` with images kept beside the episode: an image the
 * store wrote to `images/` is linked with its size and served from its file; one past the
 * episode's budget is shown as not kept; a record whose reference names another file is
 * refused.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunIndex, RunStore } from '../../harness/index.ts';
import { renderEpisode } from '../../cli/view.ts';
import { serveViewer, type RunningViewer } from '../../viewer/index.ts';
import { screenshotEpisode, screenshotManifest, shot, shotBytes } from '../fakes/screenshots.ts';

const root = mkdtempSync(join(tmpdir(), 'paddock-viewer-images-'));
const BIG = shotBytes('screen', 40_000);
const OVER = shotBytes('over', 40_000);
let viewer: RunningViewer;
let runDir: string;

beforeAll(async () => {
  const store = RunStore.create(root, screenshotManifest(['web/a#0', 'web/b#0']), {
    images: { episodeBudgetBytes: 50_000 },
  });
  store.openForWrite();
  store.appendEpisode(screenshotEpisode('web/a#0', { shots: [shot(BIG), shot(OVER)] }));
  await store.close();
  runDir = store.dir;
  // A record edited to name a file outside the run.
  const tampered = screenshotEpisode('web/b#0', { shots: [] });
  tampered.messages.push({
    role: 'tool',
    toolCallId: 'c9',
    name: 'browser_click',
    content: 'clicked',
    images: [
      { mimeType: 'image/png', file: '../../../etc/passwd', bytes: 10, sha256: '0'.repeat(64) },
    ] as never,
  });
  appendFileSync(join(runDir, 'episodes.jsonl'), `${JSON.stringify(tampered)}\n`);
  viewer = await serveViewer({ root, port: 0 });
});

afterAll(async () => {
  await viewer.close();
  rmSync(root, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are read loosely
async function json(path: string): Promise<any> {
  const response = await fetch(new URL(path, viewer.url));
  expect(response.status, `${path}: ${await response.clone().text()}`).toBe(200);
  return response.json();
}

const RUN = encodeURIComponent('run-1');

describe('the viewer with images beside the episode', () => {
  it('links an externalised image with its size and serves its bytes from the file', async () => {
    const body = await json(`/api/runs/${RUN}/episodes/${encodeURIComponent('web/a#0')}`);
    expect(JSON.stringify(body)).not.toContain(BIG.toString('base64').slice(0, 40));
    const tool = body.messages.filter((message: { role: string }) => message.role === 'tool');
    expect(tool[0].images[0]).toMatchObject({ mimeType: 'image/png', bytes: 40_000 });
    const response = await fetch(new URL(tool[0].images[0].url, viewer.url));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await response.arrayBuffer())).toEqual(BIG);
    // The tool result's copy of the same screenshot is served too.
    const result = body.turns[0].toolResults[0].images[0];
    expect(Buffer.from(await (await fetch(new URL(result.url, viewer.url))).arrayBuffer())).toEqual(BIG);
  });

  it('shows an image past the budget as not kept, with no URL, and answers 404 for it', async () => {
    const body = await json(`/api/runs/${RUN}/episodes/${encodeURIComponent('web/a#0')}`);
    const tool = body.messages.filter((message: { role: string }) => message.role === 'tool');
    expect(tool[1].images[0]).toEqual({
      mimeType: 'image/png',
      bytes: 40_000,
      omitted: "over the episode's image budget",
    });
    const key = body.messages.indexOf(tool[1]);
    const response = await fetch(
      new URL(`/api/runs/${RUN}/episodes/${encodeURIComponent('web/a#0')}/images/m${key}-0`, viewer.url),
    );
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: string }).error).toMatch(
      /was not kept: over the episode's image budget/,
    );
  });

  it('refuses a record whose image reference names a file outside the run', async () => {
    const body = await json(`/api/runs/${RUN}/episodes/${encodeURIComponent('web/b#0')}`);
    const url = body.messages.at(-1).images[0].url as string;
    const response = await fetch(new URL(url, viewer.url));
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).toMatch(/refusing image file/);
    expect(text).not.toContain('root:');
  });
});

describe('paddock view --text with images beside the episode', () => {
  it('shows each image by type and size, and says when one was not kept', () => {
    const index = RunIndex.open(runDir);
    try {
      const text = renderEpisode(index.record('web/a#0'));
      expect(text).toContain('[image png 39 KB]');
      expect(text).toContain("[image png 39 KB — omitted: over the episode's image budget]");
    } finally {
      index.close();
    }
  });
});
