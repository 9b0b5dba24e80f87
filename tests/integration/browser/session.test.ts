/**
 * One browser session against fixture pages in a real Chromium: refs and selectors, stale
 * refs and other agent mistakes as observations, settling, trimming and scrolling, dialogs,
 * screenshots, frames, a frozen page, the scorer's isolation from the page's scripts, and
 * the notes a scorer gives (or throws).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { runEpisode } from '../../../harness/index.ts';
import {
  BrowserToolProvider,
  THREW_NOTE_MAX_CHARS,
  browserTaskExtension,
  browserTurnReward,
  type BrowserSession,
} from '../../../sandboxes/browser/index.ts';
import { loadTasks } from '../../../tasks/index.ts';
import { makeTurn } from '../../fixtures/rewards/records.ts';
import { makeEpisodeContext } from '../../fixtures/rewards/turn-reward.ts';
import { FIXTURES, call, refOf, startFixtureServer, webTask } from './helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const provider = new BrowserToolProvider();
let server: Awaited<ReturnType<typeof startFixtureServer>>;
const signal = new AbortController().signal;
let episode = 0;

async function open(page: string, extra: Record<string, unknown> = {}): Promise<BrowserSession> {
  const id = `session-${++episode}`;
  const session = await provider.open(webTask(id, { url: `${server.origin}/${page}`, ...extra }), {
    labels: { runId: 'it-browser', episodeId: id },
    signal,
  });
  if (!session) throw new Error('no session');
  return session;
}

beforeAll(async () => {
  server = await startFixtureServer();
});
afterAll(async () => {
  await provider.close();
  await server.close();
});

/** The episode of `session` as the loop opens turn rewards with it: its session under the provider's name. */
function rewardEpisode(session: BrowserSession) {
  return makeEpisodeContext({
    task: webTask('x', { url: server.origin }),
    episodeId: session.episodeId,
    sessions: new Map([[provider.name, session]]),
    signal,
  });
}

/** What a turn reward is told after a turn (the page reward reads only the signal). */
const turnContext = { turn: makeTurn(), previousTurns: [], signal };

describe('a browser session', () => {
  it('acts by ref and by selector; a ref stays the same while its element lives', async () => {
    const session = await open('refs.html');
    try {
      const first = (await session.initialObservation({ signal })).text;
      const add = refOf(first, 'button "Add one"');
      const after = await call(session, 'browser_click', { ref: add });
      expect(after.isError).toBeUndefined();
      expect(after.text).toContain(`Result: Clicked ${add} (button "Add one").`);
      expect(after.text).toContain('Count: 1');
      expect(refOf(after.text, 'button "Add one"')).toBe(add);
      const again = await call(session, 'browser_click', { selector: '#add' });
      expect(again.text).toContain('Count: 2');
    } finally {
      await session.close();
    }
  });

  it('answers a stale ref, a malformed ref and an ambiguous or empty selector with an observation', async () => {
    const session = await open('refs.html');
    try {
      const first = (await session.initialObservation({ signal })).text;
      const add = refOf(first, 'button "Add one"');
      await call(session, 'browser_click', { selector: '#remove' });
      const stale = await call(session, 'browser_click', { ref: add });
      expect(stale.isError).toBe(true);
      expect(stale.text).toMatch(new RegExp(`^Error: element ${add} is not on the page any more`));
      expect(stale.text).toContain('Page:');
      const malformed = await call(session, 'browser_click', { ref: 'the add button' });
      expect(malformed.text).toMatch(/^Error: "the add button" is not an element ref/);
      const ambiguous = await call(session, 'browser_click', { selector: 'button.delete' });
      expect(ambiguous.text).toMatch(/^Error: the selector button.delete matches 2 elements/);
      const none = await call(session, 'browser_click', { selector: '#nothing' });
      expect(none.text).toMatch(/^Error: no element matches the selector #nothing/);
      const both = await call(session, 'browser_click', { ref: 'e1', selector: '#add' });
      expect(both).toMatchObject({ isError: true, invalidArguments: true });
    } finally {
      await session.close();
    }
  });

  it('gives an element whose name changed a new ref, and reaches elements inside a frame', async () => {
    const session = await open('refs.html');
    try {
      const first = (await session.initialObservation({ signal })).text;
      const start = refOf(first, 'button "Start"');
      const toggled = await call(session, 'browser_click', { ref: start });
      expect(toggled.text).toContain('button "Stop"');
      const inner = refOf(toggled.text, 'button "Inner button"');
      expect(inner).toMatch(/^f\d+e\d+$/);
      await call(session, 'browser_click', { ref: inner });
      const page = await session.page();
      expect(await page.evaluate('document.body.dataset.inner')).toBe('clicked');
    } finally {
      await session.close();
    }
  });

  it('reports a page that keeps its main thread busy instead of hanging, and still closes', async () => {
    const session = await open('refs.html', { action_timeout_sec: 1, settle_timeout_sec: 1 });
    try {
      const started = performance.now();
      const frozen = await call(session, 'browser_click', { selector: '#busy' });
      expect(performance.now() - started).toBeLessThan(20_000);
      // The click itself went through; what follows it cannot be observed.
      expect(frozen.text).toMatch(/Page snapshot unavailable|did not answer/);
    } finally {
      await session.close();
    }
  });

  it('does not click through a pop-up that covers the element, and says what is in the way', async () => {
    const id = `session-${++episode}`;
    const task = webTask(
      id,
      { site: 'site/', start: '/index.html', action_timeout_sec: 1 },
      { dir: path.join(ROOT, 'tasks/web/popup-dismiss') },
    );
    const session = (await provider.open(task, { labels: { runId: 'it-browser', episodeId: id }, signal }))!;
    try {
      const covered = await call(session, 'browser_click', {
        selector: 'role=button[name="Download Q3 report"]',
      });
      expect(covered.isError).toBe(true);
      expect(covered.text).toMatch(/^Error: Timeout 1000ms exceeded\. \(.*intercepts pointer events\)/);
      const page = await session.page();
      expect(await page.evaluate("sessionStorage.getItem('download')")).toBeNull();
    } finally {
      await session.close();
    }
  });

  it('reports and answers dialogs', async () => {
    const session = await open('dialog.html', { dialogs: 'dismiss' });
    try {
      const output = await call(session, 'browser_click', { selector: '#ask' });
      expect(output.text).toContain('- alert dialog "Careful now" (dismissed)');
      expect(output.text).toContain('- confirm dialog "Really delete?" (dismissed)');
      expect(output.text).toContain('status [ref=e');
      expect(output.text).toContain('kept');
    } finally {
      await session.close();
    }
  });

  it('trims a long page around the viewport, and scrolling shows the rest', async () => {
    const session = await open('long.html', { max_snapshot_chars: 2_000 });
    try {
      const first = (await session.initialObservation({ signal })).text;
      expect(first).toMatch(
        /Page \(trimmed to the viewport: \d+ of \d+ lines shown; \d+ below \(scroll down\)\)/,
      );
      expect(first).toContain('Entry 0');
      expect(first).not.toContain('Entry 350');
      expect(first.length).toBeLessThan(2_600);
      let seen = first;
      for (let i = 0; i < 20 && !seen.includes('Pick entry 350'); i++) {
        seen = (await call(session, 'browser_scroll', { direction: 'down' })).text;
      }
      expect(seen).toContain('above (scroll up)');
      const pick = refOf(seen, 'button "Pick entry 350"');
      await call(session, 'browser_click', { ref: pick });
      const page = await session.page();
      expect(await page.evaluate('document.body.dataset.picked')).toBe('Pick entry 350');
    } finally {
      await session.close();
    }
  });

  it('attaches a PNG screenshot when the task asks for one', async () => {
    const session = await open('refs.html', { screenshot: true });
    try {
      const output = await call(session, 'browser_snapshot', {});
      expect(output.images).toHaveLength(1);
      expect(output.images![0]!.mimeType).toBe('image/png');
      expect(Buffer.from(output.images![0]!.dataBase64, 'base64').subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await session.close();
    }
  });

  it('waits for text, goes back, and refuses to go back past the first page', async () => {
    const session = await open('refs.html');
    try {
      const waited = await call(session, 'browser_wait_for', { text: 'Count:' });
      expect(waited.text).toMatch(/^Result: "Count:" is there\./);
      const missing = await call(session, 'browser_wait_for', { text: 'Never shown', timeout_sec: 0.3 });
      expect(missing.isError).toBe(true);
      await call(session, 'browser_goto', { url: '/dialog.html' });
      const back = await call(session, 'browser_back', {});
      expect(back.text).toContain(`URL: ${server.origin}/refs.html`);
      const further = await call(session, 'browser_back', {});
      expect(further.text).toMatch(/^Error: there is no previous page in this tab/);
    } finally {
      await session.close();
    }
  });
});

describe('the scorer', () => {
  it('is not fooled by a page that patches prototypes, JSON and storage, or defines its own score', async () => {
    const session = await open('cheat.html', { score: 'cheat-scorer.js' });
    try {
      // The page's own scripts claim success: they see their fakes…
      const page = await session.page();
      expect(
        await page.evaluate("document.querySelector('#done') !== null && localStorage.getItem('done')"),
      ).toBe('yes');
      // …the scorer, in its isolated world, sees the page as it is.
      expect(await session.score({ signal })).toEqual({ browser: 0 });
      await call(session, 'browser_click', { selector: '#finish' });
      expect(await session.score({ signal })).toEqual({ browser: 1 });
    } finally {
      await session.close();
    }
  });

  it('cannot be changed through the address bar: javascript: URLs are refused', async () => {
    const session = await open('cheat.html', { score: 'cheat-scorer.js' });
    try {
      const output = await call(session, 'browser_goto', {
        url: "javascript:document.body.append(Object.assign(document.createElement('p'), {id: 'done'}));localStorage.setItem('done','yes')",
      });
      expect(output.isError).toBe(true);
      expect(output.text).toMatch(/only http\(s\) URLs can be opened, not javascript: URLs/);
      expect(await session.score({ signal })).toEqual({ browser: 0 });
    } finally {
      await session.close();
    }
  });

  it('scores a throwing scorer 0 with what it threw as the note, on one line and clipped', async () => {
    const throwing = await open('refs.html', {
      score: { expression: "() => document.querySelector('#none').textContent === 'x'" },
    });
    try {
      expect(await throwing.score({ signal })).toEqual({
        browser: {
          value: 0,
          note: expect.stringMatching(
            /^scorer threw: TypeError: Cannot read properties of null \(reading 'textContent'\)$/,
          ),
        },
      });
      expect(await throwing.scoreNow(signal)).toBe(0);
      expect(throwing.lastScore).toBe(0);
    } finally {
      await throwing.close();
    }
    const long = await open('refs.html', {
      score: { expression: "() => { throw new Error('no e-mail field\\n' + 'x'.repeat(1000)); }" },
    });
    try {
      const { browser } = (await long.score({ signal })) as { browser: { value: number; note: string } };
      expect(browser.value).toBe(0);
      expect(browser.note).toMatch(/^scorer threw: Error: no e-mail field x+…$/);
      expect(browser.note).toHaveLength('scorer threw: '.length + THREW_NOTE_MAX_CHARS);
    } finally {
      await long.close();
    }
  });

  it('keeps the note of a scorer that returns { score, note }, and a bare score stays a number', async () => {
    const noted = await open('refs.html', { score: 'note-scorer.js' });
    try {
      expect(await noted.score({ signal })).toEqual({ browser: { value: 0, note: 'the counter shows 0' } });
      await call(noted, 'browser_click', { selector: '#add' });
      expect(await noted.score({ signal })).toEqual({ browser: { value: 0.5, note: 'the counter shows 1' } });
      // Per-turn rewards read the number only.
      expect(await noted.scoreNow(signal)).toBe(0.5);
      expect(noted.lastScore).toBe(0.5);
    } finally {
      await noted.close();
    }
    const flags = await open('refs.html', {
      score: { expression: "({ score: document.title === 'Refs', note: '' })" },
    });
    try {
      // An empty note is no note.
      expect(await flags.score({ signal })).toEqual({ browser: 1 });
    } finally {
      await flags.close();
    }
    const bare = await open('refs.html', { score: { expression: "() => document.title === 'Refs'" } });
    try {
      expect(await bare.score({ signal })).toEqual({ browser: 1 });
    } finally {
      await bare.close();
    }
  });

  it('refuses a scorer that returns no score, saying what a score is', async () => {
    const refused = async (score: unknown): Promise<unknown> => {
      const session = await open('refs.html', { score });
      try {
        return await session.score({ signal }).then(
          () => undefined,
          (error: unknown) => error,
        );
      } finally {
        await session.close();
      }
    };
    const expected = 'not a number, a boolean or { score: number | boolean, note?: string }';
    expect(await refused({ expression: "'solved'" })).toMatchObject({
      code: 'VERIFIER_FAILED',
      message: `the scorer inline returned "solved", ${expected}`,
    });
    expect(await refused('bad-note-scorer.js')).toMatchObject({
      code: 'VERIFIER_FAILED',
      message: `the scorer ${path.join(FIXTURES, 'bad-note-scorer.js')} returned {"score":1,"note":42}, ${expected}`,
    });
    for (const [expression, shown] of [
      ["({ score: 'x' })", '{"score":"x"}'],
      ["({ note: 'y' })", '{"note":"y"}'],
      ["({ score: 1, notes: 'z' })", '{"score":1,"notes":"z"}'],
      ['({ score: 1 / 0 })', '{"score":null}'],
    ] as const) {
      expect(await refused({ expression }), expression).toMatchObject({
        code: 'VERIFIER_FAILED',
        message: `the scorer inline returned ${shown}, ${expected}`,
      });
    }
  });

  it('gives the note to the episode reward, and the number to turn rewards', async () => {
    const id = `noted-${++episode}`;
    const record = await runEpisode({
      task: webTask(id, { url: `${server.origin}/refs.html`, score: 'note-scorer.js' }),
      agent: new ScriptedAgent({
        turns: [
          { tool_calls: [{ name: 'browser_click', arguments: { selector: '#add' } }] },
          { tool_calls: [{ name: 'submit', arguments: { answer: 'done' } }] },
        ],
      }),
      runId: 'it-browser',
      episodeId: id,
      toolProviders: [provider],
      rewards: { turn: [browserTurnReward(provider)] },
    });
    expect(record.status).toBe('completed');
    expect(record.reward.components.browser).toEqual({ value: 0.5, weight: 1, note: 'the counter shows 1' });
    expect(record.turns.map((turn) => turn.rewards.browser)).toEqual([0.5, 0]);
  });

  it('gives turn rewards that add up to the final score', async () => {
    const session = await open('cheat.html', { score: 'cheat-scorer.js' });
    try {
      const episode = rewardEpisode(session);
      const reward = await browserTurnReward(provider).open(episode);
      expect(await reward.score(turnContext)).toBe(0);
      await call(session, 'browser_click', { selector: '#finish' });
      expect(await reward.score(turnContext)).toBe(1);
      expect(await reward.score(turnContext)).toBe(0);
      const value = browserTurnReward(provider, { mode: 'value', name: 'page' });
      expect(value.name).toBe('page');
      expect(await (await value.open(episode)).score(turnContext)).toBe(1);
    } finally {
      await session.close();
    }
  });

  it("keeps each episode's page score apart, one reward serving both", async () => {
    const [first, second] = [
      await open('cheat.html', { score: 'cheat-scorer.js' }),
      await open('cheat.html', { score: 'cheat-scorer.js' }),
    ];
    try {
      const fn = browserTurnReward(provider);
      const a = await fn.open(rewardEpisode(first));
      const b = await fn.open(rewardEpisode(second));
      await call(first, 'browser_click', { selector: '#finish' });
      expect(await b.score(turnContext)).toBe(0);
      expect(await a.score(turnContext)).toBe(1);
      await call(second, 'browser_click', { selector: '#finish' });
      expect(await a.score(turnContext)).toBe(0);
      expect(await b.score(turnContext)).toBe(1);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('pays 0 to an episode without a browser session, and refuses a session of another kind', async () => {
    const fn = browserTurnReward(provider);
    const bare = await fn.open(makeEpisodeContext({ signal }));
    expect(await bare.score(turnContext)).toBe(0);
    const impostor = { tools: [], close: async () => undefined };
    await expect(
      Promise.resolve(
        fn.open(makeEpisodeContext({ sessions: new Map([[provider.name, impostor]]), signal })),
      ),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/not a browser session/),
    });
  });

  it('scores every turn of an episode through the episode loop', async () => {
    const [task] = await loadTasks([path.join(ROOT, 'tasks/web/fill-form')], {
      extensions: { browser: browserTaskExtension },
      cwd: ROOT,
    });
    const record = await runEpisode({
      task: task!,
      agent: new OracleAgent(),
      runId: 'it-browser',
      episodeId: `turn-rewards-${++episode}`,
      toolProviders: [provider],
      rewards: { turn: [browserTurnReward(provider)] },
    });
    expect(record.status).toBe('completed');
    expect(record.reward.components.browser).toEqual({ value: 1, weight: 1 });
    const perTurn = record.turns.map((turn) => turn.rewards.browser);
    // Only sending the form (the fifth action) changes the page's score.
    expect(perTurn).toEqual([0, 0, 0, 0, 1, 0]);
  });
});
