/**
 * Browser environment benchmark, in a real Chromium (prints figures, asserts nothing):
 *  1. one step on a local page — a browser tool call (action + settle + new observation)
 *     p50/p99, side by side with the baseline "action + fixed 0.5 s settle wait +
 *     observation" (targets: ≥ 8× faster, p50 ≤ 60 ms); and the same click as a GUI agent
 *     makes it — `browser_click_at` at a point, observed with a screenshot (PNG) — on the
 *     same page (target p50 ≤ 60 ms);
 *  2. a new isolated context ready for an episode, with the browser up: taken from the
 *     pool (a spare made ahead), and made on demand (target p50 ≤ 100 ms);
 *  3. a whole episode opened: static site up, context, start page loaded, first observation;
 *  4. browser launch time.
 * Run: node --import tsx bench/browser.ts — writes bench/results/browser.json.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { Task, ToolContext } from '../harness/index.ts';
import { BrowserPool, BrowserToolProvider, type BrowserSession } from '../sandboxes/browser/index.ts';
import { ms, percentile, writeResults } from './stats.ts';

const STEPS = 150;
const XY_STEPS = 80;
const BASELINE_STEPS = 20;
const CONTEXTS = 30;
const LAUNCHES = 5;
const OPENS = 15;

/** A small app-like page: a counter, a form and a list of 40 rows with buttons. */
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bench</title></head><body>
<h1>Orders</h1><button id="add" type="button">Add one</button><p>Count: <span id="count">0</span></p>
<form><label>Name <input id="name"></label><label>Plan <select id="plan"><option>A</option><option>B</option></select></label></form>
<ul>${Array.from({ length: 40 }, (_, i) => `<li>Order ${i} <button type="button">Open ${i}</button></li>`).join('')}</ul>
<script>document.getElementById('add').addEventListener('click', () => {
  const count = document.getElementById('count'); count.textContent = String(Number(count.textContent) + 1);
});</script></body></html>`;

const dir = mkdtempSync(path.join(tmpdir(), 'paddock-bench-web-'));
const site = path.join(dir, 'site');
mkdirSync(site);
writeFileSync(path.join(site, 'index.html'), PAGE);

const task: Task = {
  id: 'bench/web',
  dir,
  format: 'paddock',
  instruction: 'benchmark',
  tools: ['submit'],
  limits: { maxTurns: 1_000, timeoutMs: 600_000, commandTimeoutMs: 10_000 },
  metadata: {},
  extensions: { browser: { site: 'site/', start: '/index.html' } },
};
/** The same page for a GUI agent: coordinate actions, a screenshot in every observation. */
const taskXY: Task = {
  ...task,
  id: 'bench/web-xy',
  extensions: { browser: { site: 'site/', start: '/index.html', actions: 'coordinates' } },
};
const signal = new AbortController().signal;
const context: ToolContext = { signal, episodeId: 'bench', turnIndex: 0 };
const sleep = (msToWait: number) => new Promise((resolve) => setTimeout(resolve, msToWait));
const summary = (values: number[]) => ({
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  min: Math.min(...values),
  n: values.length,
});

// --- 4. launch ----------------------------------------------------------------------
const launches: number[] = [];
for (let i = 0; i < LAUNCHES; i++) {
  const pool = new BrowserPool({ spareContexts: 0 });
  const started = performance.now();
  await pool.browser();
  launches.push(performance.now() - started);
  await pool.close();
}

// --- 2. a new isolated context ---------------------------------------------------------
const pooled: number[] = [];
const onDemand: number[] = [];
{
  const pool = new BrowserPool({ spareContexts: 1 });
  await pool.browser();
  const warm = await pool.acquire();
  await warm.context.close();
  for (let i = 0; i < CONTEXTS; i++) {
    await sleep(400); // let the pool make its spare, as it does between episodes
    const started = performance.now();
    const lease = await pool.acquire();
    pooled.push(performance.now() - started);
    await lease.context.close();
  }
  await pool.close();
  const cold = new BrowserPool({ spareContexts: 0 });
  await cold.browser();
  for (let i = 0; i < CONTEXTS; i++) {
    const started = performance.now();
    const lease = await cold.acquire();
    onDemand.push(performance.now() - started);
    await lease.context.close();
  }
  await cold.close();
}

// --- 3 and 1. episodes and steps -------------------------------------------------------
const provider = new BrowserToolProvider();
const opens: number[] = [];
for (let i = 0; i < OPENS; i++) {
  await sleep(400);
  const started = performance.now();
  const session = (await provider.open(task, {
    labels: { runId: 'bench', episodeId: `open-${i}` },
    signal,
  }))!;
  await session.initialObservation({ signal });
  opens.push(performance.now() - started);
  await session.close();
}

const session = (await provider.open(task, {
  labels: { runId: 'bench', episodeId: 'steps' },
  signal,
})) as BrowserSession;
await session.initialObservation({ signal });
const click = session.tools.find((tool) => tool.name === 'browser_click')!;
const fill = session.tools.find((tool) => tool.name === 'browser_fill')!;
for (let i = 0; i < 10; i++) await click.execute({ selector: '#add' }, context);
const steps: number[] = [];
const refSteps: number[] = [];
const fillSteps: number[] = [];
const observationChars: number[] = [];
for (let i = 0; i < STEPS; i++) {
  let started = performance.now();
  const output = await click.execute({ selector: '#add' }, context);
  steps.push(performance.now() - started);
  observationChars.push(output.text.length);
  if (output.isError) throw new Error(output.text);
  // The same click by the ref an agent reads in the observation.
  const ref = /button "Add one"[^\n]*?\[ref=([^\]]+)\]/.exec(output.text)?.[1];
  started = performance.now();
  const byRef = await click.execute({ ref }, context);
  refSteps.push(performance.now() - started);
  if (byRef.isError) throw new Error(byRef.text);
  if (i % 3 === 0) {
    started = performance.now();
    await fill.execute({ selector: '#name', text: `name ${i}` }, context);
    fillSteps.push(performance.now() - started);
  }
}
// The baseline: the same click, a fixed 0.5 s wait instead of settling, the same observation.
const page = await session.page();
const baseline: number[] = [];
for (let i = 0; i < BASELINE_STEPS; i++) {
  const started = performance.now();
  await page.locator('#add').click();
  await page.waitForTimeout(500);
  await session.observe(signal, { ok: true, text: 'Clicked #add.' });
  baseline.push(performance.now() - started);
}
await session.close();

// The click of a GUI agent: a point of the screenshot, and a screenshot back.
const sessionXY = (await provider.open(taskXY, {
  labels: { runId: 'bench', episodeId: 'steps-xy' },
  signal,
})) as BrowserSession;
await sessionXY.initialObservation({ signal });
const clickAt = sessionXY.tools.find((tool) => tool.name === 'browser_click_at')!;
const addBox = (await (await sessionXY.page()).locator('#add').boundingBox())!;
const addPoint = { x: Math.round(addBox.x + addBox.width / 2), y: Math.round(addBox.y + addBox.height / 2) };
for (let i = 0; i < 10; i++) await clickAt.execute(addPoint, context);
const xySteps: number[] = [];
const screenshotBytes: number[] = [];
for (let i = 0; i < XY_STEPS; i++) {
  const started = performance.now();
  const output = await clickAt.execute(addPoint, context);
  xySteps.push(performance.now() - started);
  if (output.isError || output.images?.length !== 1) throw new Error(`click_at: ${output.text}`);
  screenshotBytes.push((output.images[0]!.dataBase64.length * 3) / 4);
}
const count = await (await sessionXY.page()).locator('#count').textContent();
if (count !== String(10 + XY_STEPS)) throw new Error(`the coordinate clicks missed: count ${count}`);
await sessionXY.close();
await provider.close();

const figures = {
  step_click_selector_ms: summary(steps),
  step_click_ref_ms: summary(refSteps),
  step_fill_ms: summary(fillSteps),
  step_click_at_screenshot_ms: summary(xySteps),
  screenshot_bytes_p50: percentile(screenshotBytes, 50),
  baseline_click_fixed_wait_ms: summary(baseline),
  speedup_p50: percentile(baseline, 50) / percentile(refSteps, 50),
  observation_chars_p50: percentile(observationChars, 50),
  context_from_pool_ms: summary(pooled),
  context_on_demand_ms: summary(onDemand),
  episode_open_to_first_observation_ms: summary(opens),
  launch_ms: summary(launches),
  load_average_1m: loadavg()[0],
};
writeResults('browser', figures);

const row = (name: string, values: number[], extra = '') =>
  console.log(
    `${name.padEnd(44)} p50 ${ms(percentile(values, 50)).padStart(10)}  p99 ${ms(percentile(values, 99)).padStart(10)}  n=${values.length}${extra}`,
  );
row('step: browser_click (selector) + settle + obs.', steps, `  (${percentile(observationChars, 50)} chars)`);
row('step: browser_click (ref) + settle + obs.', refSteps);
row(
  'step: browser_click_at + settle + screenshot',
  xySteps,
  `  (PNG ${Math.round(percentile(screenshotBytes, 50) / 1024)} KiB; p50 target ≤ 60 ms)`,
);
row('step: browser_fill + settle + observation', fillSteps);
row('baseline: click + fixed 0.5 s + observation', baseline);
console.log(
  `${'speed-up (p50, baseline / step)'.padEnd(44)} ${figures.speedup_p50.toFixed(1)}×  (target ≥ 8×; p50 target ≤ 60 ms)`,
);
row('context ready, from the pool (spare)', pooled);
row('context ready, made on demand', onDemand, '  (target p50 ≤ 100 ms)');
row('episode open → first observation', opens);
row('browser launch', launches);
console.log(`load average (1 min) at the end: ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs`);
