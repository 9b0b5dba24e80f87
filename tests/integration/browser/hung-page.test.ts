/**
 * A page whose main thread never returns (`for (;;) {}` on load, or in a click handler
 * the agent triggers) cannot hang a run, in a real Chromium, while garbage is collected
 * all the time (Node 20 loses `AbortSignal.any` + `AbortSignal.timeout` deadlines then):
 * the scorer's deadline fires within 1 s of its limit, the page scores 0 with the note
 * `scorer timed out`, the stuck page is closed, and the browser goes on serving episodes.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { runEpisode } from '../../../harness/index.ts';
import { BrowserToolProvider, type BrowserSession } from '../../../sandboxes/browser/index.ts';
import { evaluateScorer, scorerProgram } from '../../../sandboxes/browser/scorer.ts';
import { call, startFixtureServer, webTask } from './helpers.ts';

const provider = new BrowserToolProvider();
let server: Awaited<ReturnType<typeof startFixtureServer>>;
const signal = new AbortController().signal;
let episode = 0;
let stopGc: (() => void) | undefined;

beforeAll(async () => {
  server = await startFixtureServer();
});
afterEach(() => {
  stopGc?.();
  stopGc = undefined;
});
afterAll(async () => {
  await provider.close();
  await server.close();
});

/** Collects garbage every `everyMs` until stopped (the flag is set at run time, as `--expose-gc` would). */
function forceGc(everyMs = 5): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const timer = setInterval(gc, everyMs);
  stopGc = () => clearInterval(timer);
}

const SCORE_TIMEOUT_SEC = 2;
const SCORER = { expression: "document.querySelector('h1') !== null" };

function task(page: string) {
  const id = `hung-${++episode}`;
  return webTask(id, {
    url: `${server.origin}/${page}`,
    score: SCORER,
    action_timeout_sec: 1,
    load_timeout_sec: 2,
    settle_timeout_sec: 1,
    score_timeout_sec: SCORE_TIMEOUT_SEC,
  });
}

async function open(page: string): Promise<BrowserSession> {
  const t = task(page);
  const session = await provider.open(t, { labels: { runId: 'it-hung', episodeId: t.id }, signal });
  if (!session) throw new Error('no session');
  return session;
}

describe('a page stuck in an endless loop', () => {
  it('abandons the scorer within 1 s of its limit under forced GC', async () => {
    const session = await open('loop-on-load.html');
    try {
      const page = await session.page();
      // The load handler has started spinning once the page stops answering.
      const answers = (): Promise<string> =>
        Promise.race([
          page.evaluate('1').then(() => 'answers'),
          new Promise<string>((resolve) => setTimeout(() => resolve('stuck'), 500)),
        ]);
      await expect.poll(answers, { timeout: 10_000 }).toBe('stuck');
      forceGc();
      const started = performance.now();
      const outcome = await evaluateScorer(
        page.context(),
        page,
        { program: scorerProgram(SCORER.expression), origin: 'inline' },
        { timeoutMs: 1_500, signal },
      );
      const lateness = performance.now() - started - 1_500;
      expect(outcome.kind).toBe('timeout');
      expect(lateness).toBeGreaterThanOrEqual(-5);
      expect(lateness).toBeLessThan(1_000);
      console.log(`page scorer deadline 1500 ms under forced GC: fired ${Math.round(lateness)} ms late`);
    } finally {
      await session.close();
    }
  });

  it('on load: scores 0 with "scorer timed out", closes the page, and the next episode scores normally', async () => {
    const session = await open('loop-on-load.html');
    forceGc();
    let closedAt: number;
    const started = performance.now();
    try {
      const score = await session.score({ signal });
      expect(performance.now() - started).toBeLessThan(SCORE_TIMEOUT_SEC * 1000 + 2_000);
      expect(score.browser).toEqual({
        value: 0,
        note: expect.stringMatching(/^scorer timed out: .*the page was closed$/),
      });
    } finally {
      const closing = performance.now();
      await session.close();
      closedAt = performance.now() - closing;
    }
    expect(closedAt).toBeLessThan(2_000);
    stopGc?.();

    const next = await open('refs.html');
    try {
      const first = (await next.initialObservation({ signal })).text;
      expect(first).toContain('Freeze the page');
      expect((await next.score({ signal })).browser).toBeDefined();
    } finally {
      await next.close();
    }
  });

  it('in a handler the agent triggers: the episode ends after submit, scored 0 with the note', async () => {
    forceGc();
    const t = task('loop-on-click.html');
    const started = performance.now();
    const record = await runEpisode({
      task: t,
      agent: new ScriptedAgent({
        turns: [
          { tool_calls: [{ name: 'browser_click', arguments: { selector: '#spin' } }] },
          { tool_calls: [{ name: 'submit', arguments: { answer: 'done' } }] },
        ],
      }),
      runId: 'it-hung',
      episodeId: t.id,
      toolProviders: [provider],
    });
    expect(record.status).toBe('completed');
    expect(record.reward.components.browser).toMatchObject({
      value: 0,
      note: expect.stringMatching(/^scorer timed out/),
    });
    expect(record.reward.total).toBe(0);
    // The click (its 1 s bound), one observation (5 s bound) and the scorer (2 s), with margin.
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('in a handler the agent triggers: the click comes back, and the session still closes', async () => {
    const session = await open('loop-on-click.html');
    try {
      await session.initialObservation({ signal });
      const started = performance.now();
      const clicked = await call(session, 'browser_click', { selector: '#spin' });
      expect(performance.now() - started).toBeLessThan(15_000);
      expect(clicked.text).toMatch(/did not answer|Timeout|snapshot unavailable/);
    } finally {
      await session.close();
    }
  });
});
