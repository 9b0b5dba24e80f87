/**
 * `paddock view` as a person sees it, in a real Chromium: runs made by real episodes (the
 * oracle on a web task with screenshots and on an MCP task; the OpenAI agent token-exact
 * against an SGLang-shaped server), a training output written by the trainer's own
 * RunFolder, and a run being written while the page is open.
 *
 * With PADDOCK_VIEWER_SCREENSHOTS=1 the test also writes the README's screenshots to
 * docs/viewer-*.png.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../cli/index.ts';
import { RunStore, type RecordedEpisode } from '../../harness/index.ts';
import { BrowserPool } from '../../sandboxes/browser/index.ts';
import { RunFolder } from '../../trainers/rl/run-folder.ts';
import { serveViewer, type RunningViewer } from '../../viewer/index.ts';
import { startSglangServer } from '../fakes/model-servers/sglang.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SCREENSHOTS = process.env.PADDOCK_VIEWER_SCREENSHOTS === '1';

const root = mkdtempSync(join(tmpdir(), 'paddock-e2e-viewer-'));
const runsDir = join(root, 'runs');
const pool = new BrowserPool({ spareContexts: 0 });
let browser: Browser;
let viewer: RunningViewer;
let page: Page;
let liveStore: RunStore | undefined;
let webRecords: RecordedEpisode[] = [];

/** The oracle on a web task (with screenshots) and an MCP task, two epochs each. */
async function oracleRun(): Promise<void> {
  const suite = join(root, 'suite');
  cpSync(join(ROOT, 'tasks/web/click-button'), join(suite, 'click-button'), { recursive: true });
  const yaml = join(suite, 'click-button/task.yaml');
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('browser:\n', 'browser:\n  screenshot: true\n'));
  const result = await evaluate({
    taskPaths: [join(suite, 'click-button'), join(ROOT, 'tasks/mcp/calc-order-total')],
    agent: 'oracle',
    runsDir,
    runId: 'oracle-web-mcp',
    epochs: 2,
    concurrency: 2,
  });
  webRecords = result.episodes;
}

/**
 * The OpenAI agent, token-exact, against an SGLang-shaped server (which sends token text
 * with the logprobs) whose template drops earlier reasoning: the second turn's prompt drifts.
 */
async function tokenExactRun(): Promise<void> {
  const server = await startSglangServer({
    stripReasoning: true,
    turns: [
      {
        reasoning: 'Look up the widget first.',
        toolCalls: [{ name: 'calc__lookup', arguments: { item: 'widget' } }],
      },
      { content: 'I will stop here.', toolCalls: [{ name: 'submit', arguments: {} }] },
    ],
  });
  const previous = process.env.OPENAI_BASE_URL;
  process.env.OPENAI_BASE_URL = server.baseUrl;
  try {
    await evaluate({
      taskPaths: [join(ROOT, 'tasks/mcp/calc-order-total')],
      agent: 'openai:Qwen/Qwen3-8B?token_exact=true',
      runsDir,
      runId: 'model-token-exact',
      maxAttempts: 1,
    });
  } finally {
    if (previous === undefined) delete process.env.OPENAI_BASE_URL;
    else process.env.OPENAI_BASE_URL = previous;
    await server.close();
  }
}

/** A training output as the trainer writes it: metric rows through RunFolder, and a step's run. */
async function trainingOutput(): Promise<void> {
  const folder = new RunFolder(join(root, 'training'));
  folder.open(false);
  folder.writeRow({ type: 'sft', step: 1, loss: 2.1, accuracy: 0.2 });
  folder.writeRow({ type: 'sft', step: 2, loss: 1.4, accuracy: 0.5 });
  const rewards = [0.1, 0.25, 0.3, 0.55, 0.7, 0.8];
  rewards.forEach((reward, i) => {
    folder.writeRow({
      type: 'train',
      step: i + 1,
      reward_mean: reward,
      pass_rate: reward * 0.8,
      loss: 1 - reward,
      kl: 0.01 * i,
      entropy: 1.5 - 0.1 * i,
    });
    if ((i + 1) % 3 === 0)
      folder.writeRow({ type: 'eval', step: i + 1, success: reward - 0.05, reward_mean: reward });
  });
  const step = RunStore.create(join(root, 'training', 'runs'), {
    runId: 'step-000001',
    createdAt: new Date().toISOString(),
    config: { agent: 'onnx:policy', purpose: 'rollout', step: 1, training: join(root, 'training') },
    plan: webRecords.map((record) => ({
      episodeId: record.episodeId,
      taskId: record.taskId,
      epoch: record.epoch,
      seed: record.seed,
    })),
  });
  step.openForWrite();
  for (const record of webRecords) step.appendEpisode({ ...record, runId: 'step-000001' });
  await step.close();
}

/** A run still being written: one record now, more while the page is open. */
function startLiveRun(): void {
  const plan = webRecords.map((record, n) => ({
    episodeId: `live#${n}`,
    taskId: record.taskId,
    epoch: n,
    seed: n,
  }));
  liveStore = RunStore.create(runsDir, {
    runId: 'live-run',
    createdAt: new Date().toISOString(),
    config: { agent: 'oracle' },
    plan,
  });
  liveStore.openForWrite();
  liveStore.appendEpisode({ ...webRecords[0]!, runId: 'live-run', episodeId: 'live#0' });
}

async function shoot(name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'docs', `viewer-${name}.png`), fullPage: false });
}

async function open(hash: string): Promise<void> {
  await page.goto(new URL(hash, viewer.url).toString());
}

beforeAll(async () => {
  await oracleRun();
  await tokenExactRun();
  await trainingOutput();
  startLiveRun();
  viewer = await serveViewer({ root, port: 0, livePollMs: 200 });
  browser = await pool.browser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
}, 300_000);

afterAll(async () => {
  await liveStore?.close();
  await viewer?.close();
  await pool.close();
  rmSync(root, { recursive: true, force: true });
});

describe('paddock view in Chromium', () => {
  it('lists the runs with their agent, done/planned and a live marker, and the training output', async () => {
    await open('#/');
    const table = page.locator('#runs');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(4);
    const oracle = table.locator('tr[data-run="runs/oracle-web-mcp"]');
    await expect.poll(() => oracle.innerText()).toContain('oracle');
    expect(await oracle.innerText()).toContain('4 / 4');
    expect(await table.locator('tr[data-run="runs/live-run"] .live-mark').count()).toBe(1);
    expect(await page.locator('#trainings').innerText()).toContain('training');
    await shoot('runs');
  });

  it("shows a run's per-task table with every reward component, tokens and cost", async () => {
    await open(`#/run/${encodeURIComponent('runs/oracle-web-mcp')}`);
    const tasks = page.locator('#tasks');
    await tasks.waitFor();
    const header = await tasks.locator('thead').innerText();
    expect(header).toMatch(/mean reward/);
    expect(header).toMatch(/browser/); // the web task's page score
    expect(header).toMatch(/tokens in \/ out/);
    expect(await tasks.locator('tr[data-task="suite/click-button"]').innerText()).toMatch(/\b2\b.*1\.000/s);
    expect(await tasks.locator('tr[data-task="mcp/calc-order-total"]').count()).toBe(1);
    await shoot('run');
  });

  it('filters the episode list by status and finds episodes by text, server-side', async () => {
    const run = encodeURIComponent('runs/model-token-exact');
    await open(`#/run/${run}`);
    const rows = page.locator('#episode-table tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    await page.selectOption('#filters select[name="status"]', 'infra-error');
    await expect.poll(() => page.locator('#page-info').innerText()).toBe('no episodes match');
    expect(page.url()).toContain('status=infra-error');

    await open(`#/run/${encodeURIComponent('runs/oracle-web-mcp')}`);
    await expect.poll(() => rows.count()).toBe(4);
    await page.fill('#filters input[name="text"]', 'Confirm');
    await page.press('#filters input[name="text"]', 'Enter');
    await expect.poll(() => rows.count()).toBe(2);
    for (const text of await rows.allInnerTexts()) expect(text).toContain('suite/click-button');
  });

  it('sorts the episode list when a header is clicked', async () => {
    await open(`#/run/${encodeURIComponent('runs/oracle-web-mcp')}`);
    await page.locator('#episode-table th[data-sort="task"]').click();
    await expect.poll(() => page.url()).toContain('sort=task');
    const tasks = async () => await page.locator('#episode-table tbody tr td:nth-child(2)').allInnerTexts();
    await expect
      .poll(tasks)
      .toEqual(['mcp/calc-order-total', 'mcp/calc-order-total', 'suite/click-button', 'suite/click-button']);
    await page.locator('#episode-table th[data-sort="task"]').click();
    await expect
      .poll(tasks)
      .toEqual(['suite/click-button', 'suite/click-button', 'mcp/calc-order-total', 'mcp/calc-order-total']);
  });

  it('shows a transcript with its screenshot loaded, tool calls and per-turn rewards', async () => {
    const web = webRecords.find((record) => record.taskId === 'suite/click-button')!;
    await open(
      `#/run/${encodeURIComponent('runs/oracle-web-mcp')}/episode/${encodeURIComponent(web.episodeId)}`,
    );
    const shot = page.locator('#transcript img.shot').first();
    await shot.waitFor();
    await expect
      .poll(() =>
        shot.evaluate((element) => {
          // No DOM types here: the page's own image element, read as a plain object.
          const img = element as unknown as { complete: boolean; naturalWidth: number };
          return img.complete ? img.naturalWidth : 0;
        }),
      )
      .toBeGreaterThan(0);
    const text = await page.locator('#transcript').innerText();
    expect(text).toContain('browser_click');
    expect(text).toMatch(/turn 0 · reward/);
    expect(await page.locator('#reward-breakdown').innerText()).toContain('browser');
    await shot.scrollIntoViewIfNeeded();
    await shoot('episode');
  });

  it('shows the token view: prompt greyed, completion coloured by logprob with decoded text, and the drift mark', async () => {
    const run = encodeURIComponent('runs/model-token-exact');
    await open(`#/run/${run}`);
    await page.locator('#episode-table tbody tr a').first().click();
    await page.locator('#transcript').waitFor();
    const links = page.locator('a.token-link');
    expect(await links.count()).toBe(2);
    await links.nth(1).click();
    const completion = page.locator('#completion-tokens .tok.completion');
    await expect.poll(() => completion.count()).toBeGreaterThan(10);
    // Decoded text, not ids: the tokens spell the model's words.
    expect((await completion.allInnerTexts()).join('')).toContain('I will stop here.');
    expect(await completion.first().getAttribute('title')).toMatch(/id \d+ · logprob -?\d/);
    expect(await completion.first().getAttribute('style')).toContain('background');
    expect(await page.locator('#prompt-tokens .tok.prompt').count()).toBeGreaterThan(100);
    expect(await page.locator('#drift').count()).toBe(1);
    await shoot('tokens');
  });

  it('compares two runs per task, with the difference', async () => {
    await open(`#/run/${encodeURIComponent('runs/oracle-web-mcp')}`);
    await page.locator('#compare-with').waitFor();
    await page.selectOption('#compare-with', 'runs/model-token-exact');
    const row = page.locator('#compare tr[data-task="mcp/calc-order-total"]');
    await row.waitFor();
    const cells = await row.locator('td').allInnerTexts();
    // mean reward: the oracle 1, the scripted model 0, difference −1.
    expect(cells.slice(1, 4)).toEqual(['1.000', '0.000', '-1.000']);
    expect(await page.locator('#compare tr[data-task="suite/click-button"]').innerText()).toContain('1.000');
    await shoot('compare');
  });

  it("draws a training output's learning curves and links each step's rollouts", async () => {
    await open('#/training/training');
    const curves = page.locator('#curves svg');
    await expect.poll(() => curves.count()).toBe(3);
    const reward = page.locator('#curves path[data-series="train reward"]');
    expect(await reward.getAttribute('d')).toMatch(/^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+){5}$/);
    expect(await page.locator('#curves path[data-series="eval success"]').count()).toBe(1);
    expect(await page.locator('#curves path[data-series="KL to reference"]').count()).toBe(1);
    await shoot('training');
    await page.locator('#step-runs a', { hasText: 'step-000001' }).click();
    await page.locator('#tasks').waitFor();
    expect(await page.locator('h1').innerText()).toBe('training/runs/step-000001');
  });

  it('updates a run page by itself while the run is being written', async () => {
    await open(`#/run/${encodeURIComponent('runs/live-run')}`);
    const rows = page.locator('#episode-table tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    await expect.poll(() => page.locator('#live').isVisible()).toBe(true);
    liveStore!.appendEpisode({ ...webRecords[1]!, runId: 'live-run', episodeId: 'live#1' });
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2);
    await expect.poll(() => page.locator('#done').innerText()).toBe(`2 / ${webRecords.length}`);
  });
});
