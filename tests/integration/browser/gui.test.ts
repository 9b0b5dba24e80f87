/**
 * A GUI agent's browser in a real Chromium: coordinate actions land where they point (CSS
 * pixels or the 0–1000 grid), points off the screen are refused, the first observation is a
 * screenshot of the viewport, right- and double-clicks, hover, drag, wheel and typing at a
 * point; dialogs the agent answers, tabs, uploads, set-of-marks, and grounding scores of an
 * answer and of each turn's actions against the targets' boxes measured before the action.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImagePart, ToolContext, ToolOutput } from '../../../harness/index.ts';
import { BrowserToolProvider, type BrowserSession } from '../../../sandboxes/browser/index.ts';
import { groundingTurnReward } from '../../../sandboxes/browser/provider.ts';
import { makeTurn } from '../../fixtures/rewards/records.ts';
import { makeEpisodeContext } from '../../fixtures/rewards/turn-reward.ts';
import { startFixtureServer, webTask } from './helpers.ts';

const provider = new BrowserToolProvider();
let server: Awaited<ReturnType<typeof startFixtureServer>>;
const signal = new AbortController().signal;
let episode = 0;
/** A task folder with a file to upload. */
const uploadDir = mkdtempSync(path.join(tmpdir(), 'paddock-gui-uploads-'));

async function open(
  page: string,
  extra: Record<string, unknown> = {},
  dir?: string,
): Promise<BrowserSession> {
  const id = `gui-${++episode}`;
  const session = await provider.open(
    webTask(id, { url: `${server.origin}/${page}`, ...extra }, dir === undefined ? {} : { dir }),
    { labels: { runId: 'it-browser-gui', episodeId: id }, signal },
  );
  if (!session) throw new Error('no session');
  return session;
}

/** Calls one of a session's tools by name, in turn `turnIndex`. */
async function call(
  session: BrowserSession,
  name: string,
  args: Record<string, unknown>,
  turnIndex = 0,
): Promise<ToolOutput> {
  const tool = session.tools.find((candidate) => candidate.name === name);
  if (!tool) throw new Error(`no tool ${name} among ${session.tools.map((t) => t.name).join(', ')}`);
  const context: ToolContext = { signal, episodeId: session.episodeId, turnIndex };
  return tool.execute(args, context);
}

/** A value of the agent's page, read in its main world. */
async function read<T>(session: BrowserSession, expression: string): Promise<T> {
  const page = await session.page();
  return page.evaluate<T>(expression);
}

/** The width and height a PNG states in its IHDR chunk. */
function pngSize(image: ImagePart): { width: number; height: number } {
  const bytes = Buffer.from(image.dataBase64, 'base64');
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** The element's box in CSS pixels of the viewport, measured in the page. */
async function boxOf(
  session: BrowserSession,
  selector: string,
): Promise<{ x: number; y: number; width: number; height: number }> {
  return read(
    session,
    `(() => { const r = document.querySelector(${JSON.stringify(selector)}).getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; })()`,
  );
}

interface CanvasEvent {
  kind: string;
  x: number;
  y: number;
  button: number;
}
const canvasEvents = (session: BrowserSession) =>
  read<CanvasEvent[]>(session, "JSON.parse(sessionStorage.getItem('events') ?? '[]')");

beforeAll(async () => {
  server = await startFixtureServer();
  mkdirSync(path.join(uploadDir, 'files'));
  writeFileSync(path.join(uploadDir, 'files/note.txt'), 'hello from the task');
});
afterAll(async () => {
  await provider.close();
  await server.close();
  rmSync(uploadDir, { recursive: true, force: true });
});

describe('coordinate actions', () => {
  it('clicks exactly at the CSS pixel given', async () => {
    const session = await open('gui-canvas.html', { actions: 'coordinates' });
    try {
      const output = await call(session, 'browser_click_at', { x: 123, y: 457 });
      expect(output.isError).toBeUndefined();
      expect(output.text).toMatch(/^Result: Clicked at \(123, 457\)\./);
      await call(session, 'browser_click_at', { x: 1, y: 2 });
      await call(session, 'browser_click_at', { x: 1279, y: 719 });
      expect(await canvasEvents(session)).toEqual([
        { kind: 'click', x: 123, y: 457, button: 0 },
        { kind: 'click', x: 1, y: 2, button: 0 },
        { kind: 'click', x: 1279, y: 719, button: 0 },
      ]);
    } finally {
      await session.close();
    }
  });

  it('reads x and y on the 0–1000 grid with coordinates: normalized', async () => {
    const session = await open('gui-canvas.html', { actions: 'coordinates', coordinates: 'normalized' });
    try {
      const output = await call(session, 'browser_click_at', { x: 500, y: 500 });
      expect(output.text).toMatch(/^Result: Clicked at \(500, 500\)\./);
      expect(output.text).toContain('x, y on a 0–1000 grid');
      await call(session, 'browser_click_at', { x: 250, y: 100 });
      expect(await canvasEvents(session)).toEqual([
        { kind: 'click', x: 640, y: 360, button: 0 },
        { kind: 'click', x: 320, y: 72, button: 0 },
      ]);
    } finally {
      await session.close();
    }
  });

  it('refuses points off the screenshot, naming the range, and invalid arguments', async () => {
    const css = await open('gui-canvas.html', { actions: 'coordinates' });
    const grid = await open('gui-canvas.html', { actions: 'coordinates', coordinates: 'normalized' });
    try {
      for (const args of [
        { x: 1500, y: 10 },
        { x: 10, y: 721 },
        { x: -1, y: 10 },
      ]) {
        const refused = await call(css, 'browser_click_at', args);
        expect(refused.isError, JSON.stringify(args)).toBe(true);
        expect(refused.invalidArguments).toBeUndefined();
        expect(refused.text).toMatch(
          new RegExp(
            `^Error: \\(${args.x}, ${args.y}\\) is outside the screenshot \\(0–1279 across, 0–719 down\\)`,
          ),
        );
        // Still an observation of the page.
        expect(refused.text).toContain(`URL: ${server.origin}/gui-canvas.html`);
      }
      const hover = await call(css, 'browser_hover_at', { x: 2000, y: 2000 });
      expect(hover.text).toMatch(/^Error: \(2000, 2000\) is outside the screenshot/);
      const drop = await call(css, 'browser_drag', { from_x: 10, from_y: 10, to_x: 10, to_y: 900 });
      expect(drop.text).toMatch(/^Error: \(10, 900\) is outside the screenshot/);
      const wheel = await call(css, 'browser_scroll_at', { x: 5000, y: 10 });
      expect(wheel.text).toMatch(/^Error: \(5000, 10\) is outside the screenshot/);
      const offGrid = await call(grid, 'browser_click_at', { x: 1001, y: 500 });
      expect(offGrid.isError).toBe(true);
      expect(offGrid.text).toMatch(/^Error: \(1001, 500\) is outside the screenshot \(0–1000 on both axes\)/);
      // Nothing was clicked.
      expect(await canvasEvents(css)).toEqual([]);
      expect(await canvasEvents(grid)).toEqual([]);

      for (const args of [
        { x: 'left', y: 10 },
        { x: 10 },
        { x: 10, y: 10, ref: 'e1' },
        { x: 10, y: 10, button: 'back' },
        { x: Number.NaN, y: 10 },
      ]) {
        const invalid = await call(css, 'browser_click_at', args);
        expect(invalid, JSON.stringify(args)).toMatchObject({ isError: true, invalidArguments: true });
        expect(invalid.text).toMatch(/^Invalid arguments for browser_click_at:/);
      }
      // In coordinates mode the key and wait tools name no element.
      expect(await call(css, 'browser_press', { key: 'Tab', ref: 'e1' })).toMatchObject({
        invalidArguments: true,
      });
      expect(await call(css, 'browser_wait_for', { selector: '#canvas' })).toMatchObject({
        invalidArguments: true,
      });
    } finally {
      await css.close();
      await grid.close();
    }
  });

  it('never reports a click at x = width as done when it reached nothing: the last pixel is width − 1', async () => {
    const session = await open('gui-canvas.html', { actions: 'coordinates' });
    try {
      const first = (await session.initialObservation({ signal })).text;
      expect(first).toContain('x, y in CSS pixels from its top-left corner (0–1279, 0–719)');
      await call(session, 'browser_click_at', { x: 1279, y: 719 });
      expect(await canvasEvents(session)).toEqual([{ kind: 'click', x: 1279, y: 719, button: 0 }]);
      // 1280 lies past the last pixel the agent was told of: refused, or clicked on the last pixel.
      const past = await call(session, 'browser_click_at', { x: 1280, y: 10 });
      if (past.isError) {
        expect(past.text).toMatch(/^Error: \(1280, 10\) is outside the screenshot \(0–1279 across/);
      } else {
        expect(await canvasEvents(session)).toContainEqual({ kind: 'click', x: 1279, y: 10, button: 0 });
      }
    } finally {
      await session.close();
    }
  });

  it('lands a click at the far corner of the 0–1000 grid on the last pixel of the page', async () => {
    const session = await open('gui-canvas.html', { actions: 'coordinates', coordinates: 'normalized' });
    try {
      const corner = await call(session, 'browser_click_at', { x: 1000, y: 1000 });
      expect(corner.isError).toBeUndefined();
      expect(await canvasEvents(session)).toEqual([{ kind: 'click', x: 1279, y: 719, button: 0 }]);
    } finally {
      await session.close();
    }
  });

  it('right-clicks (contextmenu) and double-clicks at the point', async () => {
    const session = await open('gui-canvas.html', { actions: 'coordinates' });
    try {
      const right = await call(session, 'browser_click_at', { x: 300, y: 200, button: 'right' });
      expect(right.text).toMatch(/^Result: Right-clicked at \(300, 200\)\./);
      const double = await call(session, 'browser_click_at', { x: 50, y: 60, double: true });
      expect(double.text).toMatch(/^Result: Double-clicked at \(50, 60\)\./);
      const events = await canvasEvents(session);
      expect(events[0]).toEqual({ kind: 'contextmenu', x: 300, y: 200, button: 2 });
      expect(events.filter((event) => event.kind === 'click')).toHaveLength(2);
      expect(events.at(-1)).toEqual({ kind: 'dblclick', x: 50, y: 60, button: 0 });
    } finally {
      await session.close();
    }
  });

  it('hovers, drags with a path of moves, scrolls the area under the point, and types into the focus', async () => {
    const session = await open('gui-pointer.html', { actions: 'coordinates' });
    try {
      const hover = await call(session, 'browser_hover_at', { x: 120, y: 50 });
      expect(hover.text).toMatch(/^Result: Moved the mouse to \(120, 50\)\./);
      expect(await read(session, 'document.body.dataset.hovered')).toBe('yes');

      const drag = await call(session, 'browser_drag', { from_x: 60, from_y: 160, to_x: 660, to_y: 460 });
      expect(drag.text).toMatch(/^Result: Dragged from \(60, 160\) to \(660, 460\)\./);
      const drop = JSON.parse(await read<string>(session, 'document.body.dataset.drop')) as {
        x: number;
        y: number;
        moves: number;
      };
      expect(drop).toMatchObject({ x: 660, y: 460 });
      expect(drop.moves).toBeGreaterThan(1);
      expect(await boxOf(session, '#handle')).toMatchObject({ x: 620, y: 420 });

      const wheel = await call(session, 'browser_scroll_at', { x: 550, y: 120, amount: 300 });
      expect(wheel.text).toMatch(/^Result: Scrolled down by 300 px at \(550, 120\)\./);
      await expect
        .poll(() => read<number>(session, "document.getElementById('scroller').scrollTop"))
        .toBeGreaterThan(0);
      expect(await read(session, 'window.scrollY')).toBe(0);
      // Over no scrollable area, the wheel scrolls the page.
      await call(session, 'browser_scroll_at', { x: 1000, y: 600, amount: 200 });
      await expect.poll(() => read<number>(session, 'window.scrollY')).toBeGreaterThan(0);
      await call(session, 'browser_scroll_at', { x: 1000, y: 600, direction: 'up', amount: 5000 });
      await expect.poll(() => read<number>(session, 'window.scrollY')).toBe(0);

      const field = await boxOf(session, '#name');
      await call(session, 'browser_click_at', {
        x: Math.round(field.x + field.width / 2),
        y: Math.round(field.y + field.height / 2),
      });
      const typed = await call(session, 'browser_type', { text: 'Ada Lovelace', submit: true });
      expect(typed.text).toMatch(/^Result: Typed "Ada Lovelace" and pressed Enter\./);
      expect(await read(session, "document.getElementById('name').value")).toBe('Ada Lovelace');
      expect(await read(session, 'document.body.dataset.submitted')).toBe('Ada Lovelace');
    } finally {
      await session.close();
    }
  });
});

describe('observations of a GUI agent', () => {
  it('opens with a screenshot the size of the viewport and the Screenshot line, without refs', async () => {
    const session = await open('gui-target.html', {
      actions: 'coordinates',
      viewport: { width: 1000, height: 600 },
    });
    try {
      const first = await session.initialObservation({ signal });
      expect(first.text).toMatch(/^The browser shows this page \(act on it by points of the screenshot\):/);
      expect(first.text).toContain(
        'Screenshot: the viewport, 1000×600 CSS pixels (device scale 1); x, y in CSS pixels from its top-left corner (0–999, 0–599).',
      );
      expect(first.text).not.toContain('[ref=');
      expect(first.text).not.toContain('Page:');
      expect(first.images).toHaveLength(1);
      expect(first.images![0]!.mimeType).toBe('image/png');
      expect(pngSize(first.images![0]!)).toEqual({ width: 1000, height: 600 });
      // Every later observation has one too.
      const after = await call(session, 'browser_hover_at', { x: 5, y: 5 });
      expect(after.images).toHaveLength(1);
      expect(pngSize(after.images![0]!)).toEqual({ width: 1000, height: 600 });

      expect(session.tools.map((tool) => tool.name).sort()).toEqual(
        [
          'browser_click_at',
          'browser_hover_at',
          'browser_drag',
          'browser_scroll_at',
          'browser_type',
          'browser_press',
          'browser_goto',
          'browser_back',
          'browser_wait_for',
          'browser_snapshot',
        ].sort(),
      );
    } finally {
      await session.close();
    }
  });

  it('gives an agent that only answers (actions: none) no tools, and the page as a screenshot', async () => {
    const session = await open('gui-target.html', { actions: 'none' });
    try {
      expect(session.tools).toEqual([]);
      const first = await session.initialObservation({ signal });
      expect(first.text).toMatch(/^The browser shows this page:\n/);
      expect(first.text).toContain('Screenshot: the viewport, 1280×720 CSS pixels');
      expect(first.text).not.toContain('[ref=');
      expect(pngSize(first.images![0]!)).toEqual({ width: 1280, height: 720 });
    } finally {
      await session.close();
    }
  });

  it('shows refs and offers both kinds of tools with actions: both', async () => {
    const session = await open('gui-target.html', { actions: 'both' });
    try {
      const first = await session.initialObservation({ signal });
      expect(first.text).toMatch(/button "Save" \[ref=e\d+\]/);
      // Screenshots stay off by default for an agent that can act by ref.
      expect(first.images).toBeUndefined();
      const names = session.tools.map((tool) => tool.name);
      for (const name of ['browser_click', 'browser_fill', 'browser_hover', 'browser_scroll']) {
        expect(names).toContain(name);
      }
      for (const name of [
        'browser_click_at',
        'browser_hover_at',
        'browser_drag',
        'browser_scroll_at',
        'browser_type',
      ]) {
        expect(names).toContain(name);
      }
      expect(new Set(names).size).toBe(names.length);
      const clicked = await call(session, 'browser_click_at', { x: 640, y: 360 });
      expect(clicked.text).toContain('[ref=');
      expect(await read(session, 'document.body.dataset.saved')).toBe('yes');
    } finally {
      await session.close();
    }
  });

  it('draws set-of-marks on a copy of the screenshot, never in the page', async () => {
    const plain = await open('gui-marks.html', { actions: 'coordinates' });
    const marked = await open('gui-marks.html', { actions: 'coordinates', marks: true });
    try {
      const without = await plain.initialObservation({ signal });
      const withMarks = await marked.initialObservation({ signal });
      expect(pngSize(withMarks.images![0]!)).toEqual(pngSize(without.images![0]!));
      expect(pngSize(withMarks.images![0]!)).toEqual({ width: 1280, height: 720 });
      expect(withMarks.images![0]!.dataBase64).not.toBe(without.images![0]!.dataBase64);
      expect(withMarks.text).toMatch(/^Screenshot: .*; boxes marked with their element refs\.$/m);
      expect(without.text).not.toContain('marked');
      // The snapshot behind the marks is not shown to an agent that acts by points.
      expect(withMarks.text).not.toContain('[ref=');
      // The agent's page holds nothing the marks added.
      const count = 'document.querySelectorAll("*").length';
      expect(await read(marked, count)).toBe(await read(plain, count));
    } finally {
      await plain.close();
      await marked.close();
    }
  });
});

describe('dialogs the agent answers', () => {
  it('stops at a confirm() the click opened, refuses other actions, and lets the page go on once answered', async () => {
    const session = await open('gui-dialogs.html', { actions: 'coordinates', dialogs: 'agent' });
    try {
      expect(session.tools.map((tool) => tool.name)).toContain('browser_dialog');
      const opened = await call(session, 'browser_click_at', { x: 120, y: 40 });
      expect(opened.isError).toBeUndefined();
      expect(opened.text).toMatch(/^Result: The action opened a dialog\./);
      expect(opened.text).toContain(
        'Dialog: confirm "Delete the file?" is open and the page waits for it: answer it with browser_dialog',
      );
      expect(opened.text).toContain(
        'confirm dialog "Delete the file?" opened: answer it with browser_dialog',
      );

      const refused = await call(session, 'browser_click_at', { x: 120, y: 160 });
      expect(refused.isError).toBe(true);
      expect(refused.text).toMatch(
        /^Error: a confirm dialog is open \("Delete the file\?"\): answer it with browser_dialog first/,
      );
      expect(refused.text).toContain('Dialog: confirm "Delete the file?"');

      const answered = await call(session, 'browser_dialog', { accept: false });
      expect(answered.isError).toBeUndefined();
      expect(answered.text).toMatch(/^Result: Dismissed the confirm dialog "Delete the file\?"\./);
      expect(answered.text).not.toContain('Dialog:');
      expect(answered.images).toHaveLength(1);
      expect(await read(session, "document.getElementById('confirmed').textContent")).toBe('false');
      // The refused click never reached the page.
      expect(await read(session, 'document.body.dataset.other ?? null')).toBeNull();

      const none = await call(session, 'browser_dialog', { accept: true });
      expect(none.isError).toBe(true);
      expect(none.text).toMatch(/^Error: no dialog is open/);

      const prompt = await call(session, 'browser_click_at', { x: 120, y: 100 });
      expect(prompt.text).toMatch(/^Result: The action opened a dialog\./);
      expect(prompt.text).toContain('Dialog: prompt "Your name?" (default answer "nobody") is open');
      const named = await call(session, 'browser_dialog', { accept: true, text: 'Ada' });
      expect(named.text).toMatch(/^Result: Accepted the prompt dialog "Your name\?" with "Ada"\./);
      expect(await read(session, "document.getElementById('named').textContent")).toBe('Ada');

      // The page is free again.
      await call(session, 'browser_click_at', { x: 120, y: 160 });
      expect(await read(session, 'document.body.dataset.other')).toBe('clicked');
    } finally {
      await session.close();
    }
  });

  it('shows the next dialog when answering one lets the page open another', async () => {
    const session = await open('dialog.html', { actions: 'both', dialogs: 'agent' });
    try {
      const alert = await call(session, 'browser_click', { selector: '#ask' });
      expect(alert.text).toMatch(/^Result: The action opened a dialog\./);
      expect(alert.text).toContain('Dialog: alert "Careful now" is open');
      const confirm = await call(session, 'browser_dialog', { accept: true });
      expect(confirm.text).toMatch(/^Result: The action opened a dialog\./);
      expect(confirm.text).toContain('Dialog: confirm "Really delete?" is open');
      const done = await call(session, 'browser_dialog', { accept: false });
      expect(done.text).toMatch(/^Result: Dismissed the confirm dialog "Really delete\?"\./);
      expect(done.text).toMatch(/status \[ref=e\d+\]: kept/);
    } finally {
      await session.close();
    }
  });

  it('shows a dialog the start page opens in the first observation, without waiting out the load timeout', async () => {
    const started = performance.now();
    const session = await open('gui-load-alert.html', {
      actions: 'coordinates',
      dialogs: 'agent',
      load_timeout_sec: 15,
    });
    try {
      const first = await session.initialObservation({ signal });
      expect(first.text).toContain('Dialog: alert "Welcome" is open');
      // The page cannot finish loading until the agent answers: nothing to wait for.
      expect(performance.now() - started).toBeLessThan(8_000);
      const answered = await call(session, 'browser_dialog', { accept: true });
      expect(answered.text).toMatch(/^Result: Accepted the alert dialog "Welcome"\./);
      expect(await read(session, "document.getElementById('greeting').textContent")).toBe('Welcomed');
    } finally {
      await session.close();
    }
  });

  it('still accepts dialogs by itself by default, without a dialog tool', async () => {
    const session = await open('gui-dialogs.html', { actions: 'coordinates' });
    try {
      expect(session.tools.map((tool) => tool.name)).not.toContain('browser_dialog');
      const output = await call(session, 'browser_click_at', { x: 120, y: 40 });
      expect(output.text).toMatch(/^Result: Clicked at \(120, 40\)\./);
      expect(output.text).toContain('- confirm dialog "Delete the file?" (accepted)');
      expect(output.text).not.toContain('Dialog:');
      expect(await read(session, "document.getElementById('confirmed').textContent")).toBe('true');
    } finally {
      await session.close();
    }
  });
});

describe('tabs', () => {
  it('shows a target=_blank link in a new tab; lists, switches and closes tabs, never the last', async () => {
    const session = await open('gui-tabs.html', { actions: 'coordinates', popups: 'tabs' });
    try {
      const opened = await call(session, 'browser_click_at', { x: 120, y: 40 });
      expect(opened.images).toHaveLength(1);
      // The new tab is shown by the click's observation, or by a later one when it took
      // longer to open than the page took to settle.
      let seen = opened.text;
      await expect
        .poll(async () => {
          if (!seen.includes(`URL: ${server.origin}/gui-target.html`)) {
            seen += (await call(session, 'browser_snapshot', {})).text;
          }
          return seen;
        })
        .toContain(`URL: ${server.origin}/gui-target.html`);
      expect(seen).toContain('a new tab opened and is shown now');

      const listed = await call(session, 'browser_tabs', { action: 'list' });
      expect(listed.text).toContain(
        `Tabs:\n[0] GUI tabs — ${server.origin}/gui-tabs.html\n[1] GUI target — ${server.origin}/gui-target.html (shown)`,
      );

      const switched = await call(session, 'browser_tabs', { action: 'switch', index: 0 });
      expect(switched.text).toMatch(/^Result: Switched to tab 0 \(/);
      expect(switched.text).toContain(`URL: ${server.origin}/gui-tabs.html`);
      expect((await session.page()).url()).toBe(`${server.origin}/gui-tabs.html`);

      const closed = await call(session, 'browser_tabs', { action: 'close', index: 1 });
      expect(closed.text).toMatch(/^Result: Closed tab 1\./);
      const left = await call(session, 'browser_tabs', { action: 'list' });
      expect(left.text).toContain(`Tabs:\n[0] GUI tabs — ${server.origin}/gui-tabs.html (shown)\nURL:`);

      const last = await call(session, 'browser_tabs', { action: 'close', index: 0 });
      expect(last.isError).toBe(true);
      expect(last.text).toMatch(/^Error: this is the last tab: it cannot be closed/);
      const missing = await call(session, 'browser_tabs', { action: 'switch', index: 3 });
      expect(missing.text).toMatch(/^Error: there is no tab 3 \(there are 1: use browser_tabs list\)/);
      const noIndex = await call(session, 'browser_tabs', { action: 'close' });
      expect(noIndex.text).toMatch(/^Error: give the index of the tab to close/);
      expect((await session.page()).isClosed()).toBe(false);

      // Closing the tab shown shows the one left.
      await call(session, 'browser_click_at', { x: 120, y: 40 });
      await expect.poll(async () => (await session.page()).url()).toBe(`${server.origin}/gui-target.html`);
      const shownClosed = await call(session, 'browser_tabs', { action: 'close', index: 1 });
      expect(shownClosed.text).toMatch(/^Result: Closed tab 1\./);
      expect(shownClosed.text).toContain(`URL: ${server.origin}/gui-tabs.html`);
    } finally {
      await session.close();
    }
  });
});

describe('uploads', () => {
  const uploaded = (session: BrowserSession) =>
    expect.poll(async () => {
      const value = await read<string | undefined>(session, 'document.body.dataset.upload');
      return value === undefined ? undefined : (JSON.parse(value) as unknown);
    });

  it('chooses a task file for an input named by selector', async () => {
    const session = await open(
      'gui-upload.html',
      { actions: 'both', uploads: ['files/note.txt'] },
      uploadDir,
    );
    try {
      const upload = session.tools.find((tool) => tool.name === 'browser_upload');
      expect(upload?.description).toContain('files/note.txt');
      const output = await call(session, 'browser_upload', { files: ['note.txt'], selector: '#file' });
      expect(output.isError).toBeUndefined();
      expect(output.text).toMatch(/^Result: Chose note\.txt in #file\./);
      await uploaded(session).toEqual({ name: 'note.txt', content: 'hello from the task' });
    } finally {
      await session.close();
    }
  });

  it('chooses a task file in the chooser a click at (x, y) opens; refuses files the task does not give', async () => {
    const session = await open(
      'gui-upload.html',
      { actions: 'coordinates', uploads: ['files/note.txt'], action_timeout_sec: 1 },
      uploadDir,
    );
    try {
      const outside = await call(session, 'browser_upload', { files: ['secret.txt'], x: 120, y: 40 });
      expect(outside.isError).toBe(true);
      expect(outside.text).toMatch(
        /^Error: secret\.txt is not a file of this task: choose among files\/note\.txt/,
      );
      const escaping = await call(session, 'browser_upload', { files: ['../files/note.txt'], x: 120, y: 40 });
      expect(escaping.isError).toBe(true);

      const nothing = await call(session, 'browser_upload', { files: ['note.txt'], x: 120, y: 120 });
      expect(nothing.isError).toBe(true);
      expect(nothing.text).toMatch(/^Error: clicking at \(120, 120\) opened no file chooser/);

      // By element only where the action space has elements.
      expect(await call(session, 'browser_upload', { files: ['note.txt'], selector: '#file' })).toMatchObject(
        { invalidArguments: true },
      );
      expect(await call(session, 'browser_upload', { files: ['note.txt'], x: 120 })).toMatchObject({
        invalidArguments: true,
      });

      const output = await call(session, 'browser_upload', { files: ['files/note.txt'], x: 120, y: 40 });
      expect(output.isError).toBeUndefined();
      expect(output.text).toMatch(
        /^Result: Chose files\/note\.txt in the file chooser opened at \(120, 40\)\./,
      );
      await uploaded(session).toEqual({ name: 'note.txt', content: 'hello from the task' });
    } finally {
      await session.close();
    }
  });
});

describe('grounding', () => {
  const rewards = { hit: 1, gaussian_point: 0.5 };

  it('scores an answer point: 1 at the centre, the Gaussian of the distance beside it, 0 with a note for garbage', async () => {
    const session = await open('gui-target.html', {
      actions: 'coordinates',
      grounding: { target: { selector: '#target' }, rewards },
    });
    try {
      await session.initialObservation({ signal });
      const box = await boxOf(session, '#target');
      const cx = box.x + box.width / 2;
      const cy = box.y + box.height / 2;
      expect(await session.score({ signal, answer: `(${cx}, ${cy})` })).toEqual({
        'grounding.hit': { value: 1, weight: 1 },
        'grounding.gaussian_point': { value: 1, weight: 0.5 },
      });
      const beside = await session.score({ signal, answer: `The Save button is at (${cx + 10}, ${cy}).` });
      expect(beside['grounding.hit']).toEqual({ value: 1, weight: 1 });
      const expected = Math.exp(-0.5 * (10 / (0.5 * box.width)) ** 2);
      expect((beside['grounding.gaussian_point'] as { value: number }).value).toBeCloseTo(expected, 10);
      const outside = await session.score({ signal, answer: '{"x": 10, "y": 10}' });
      expect(outside['grounding.hit']).toEqual({ value: 0, weight: 1 });
      expect((outside['grounding.gaussian_point'] as { value: number }).value).toBeLessThan(1e-6);

      const garbage = await session.score({ signal, answer: 'the green one' });
      for (const kind of ['grounding.hit', 'grounding.gaussian_point']) {
        expect(garbage[kind]).toMatchObject({
          value: 0,
          note: expect.stringMatching(/^the answer gives no point or box: /),
        });
      }
      const missing = await session.score({ signal });
      expect(missing['grounding.hit']).toMatchObject({
        value: 0,
        note: expect.stringContaining('no answer'),
      });
      // A task without a scorer has no page score.
      expect(Object.keys(missing).sort()).toEqual(['grounding.gaussian_point', 'grounding.hit']);
    } finally {
      await session.close();
    }
  });

  it('scores 0 with a note when the target names no single element of the page shown', async () => {
    const session = await open('gui-target.html', {
      actions: 'none',
      grounding: { target: { selector: 'button' }, rewards: { hit: 1 } },
    });
    try {
      await session.initialObservation({ signal });
      expect(await session.score({ signal, answer: '(640, 360)' })).toEqual({
        'grounding.hit': { value: 0, weight: 1, note: 'the target was not on the page when it was shown' },
      });
    } finally {
      await session.close();
    }
  });

  it('converts answers on the 0–1000 grid', async () => {
    const session = await open('gui-target.html', {
      actions: 'coordinates',
      coordinates: 'normalized',
      grounding: { target: { selector: '#target' }, rewards },
    });
    try {
      await session.initialObservation({ signal });
      expect(await session.score({ signal, answer: '(500, 500)' })).toEqual({
        'grounding.hit': { value: 1, weight: 1 },
        'grounding.gaussian_point': { value: 1, weight: 0.5 },
      });
      const box = await boxOf(session, '#target');
      // 505 on the grid is 646.4 px: 6.4 px right of the centre.
      const beside = await session.score({ signal, answer: '(505, 500)' });
      expect((beside['grounding.gaussian_point'] as { value: number }).value).toBeCloseTo(
        Math.exp(-0.5 * (6.4 / (0.5 * box.width)) ** 2),
        10,
      );
      // (640, 360) read as grid units is (819.2, 259.2) px: off the target.
      expect((await session.score({ signal, answer: '(640, 360)' }))['grounding.hit']).toEqual({
        value: 0,
        weight: 1,
      });
      expect(
        await session.resolveReference(
          { name: 'browser_click_at', arguments: { at: { selector: '#target' } } },
          { signal },
        ),
      ).toEqual({ x: 500, y: 500 });
    } finally {
      await session.close();
    }
  });

  it("resolves a reference solution's elements to their centres and boxes", async () => {
    const session = await open('gui-target.html', {
      actions: 'coordinates',
      grounding: { target: { selector: '#target' }, rewards },
    });
    try {
      const target = await boxOf(session, '#target');
      const second = await boxOf(session, '#second');
      const centre = (box: typeof target) => ({ x: box.x + box.width / 2, y: box.y + box.height / 2 });
      expect(
        await session.resolveReference(
          { name: 'browser_click_at', arguments: { at: { selector: '#target' }, button: 'right' } },
          { signal },
        ),
      ).toEqual({ ...centre(target), button: 'right' });
      expect(
        await session.resolveReference(
          {
            name: 'browser_drag',
            arguments: { from: { role: 'button', name: 'Second' }, to: { selector: '#target' } },
          },
          { signal },
        ),
      ).toEqual({
        from_x: centre(second).x,
        from_y: centre(second).y,
        to_x: centre(target).x,
        to_y: centre(target).y,
      });
      expect(
        await session.resolveReference(
          { name: 'submit', arguments: { answer: { point_of: { selector: '#target' } } } },
          { signal },
        ),
      ).toEqual({ answer: `(${centre(target).x}, ${centre(target).y})` });
      expect(
        await session.resolveReference(
          { name: 'submit', arguments: { answer: { box_of: { selector: '#second' } } } },
          { signal },
        ),
      ).toEqual({
        answer: `[${second.x}, ${second.y}, ${second.x + second.width}, ${second.y + second.height}]`,
      });
      // Nothing to resolve.
      expect(
        await session.resolveReference({ name: 'browser_click_at', arguments: { x: 1, y: 2 } }, { signal }),
      ).toBeUndefined();
      await expect(
        session.resolveReference(
          { name: 'browser_click_at', arguments: { at: { selector: '#nowhere' } } },
          { signal },
        ),
      ).rejects.toThrow(/solution browser_click_at\.at: selector #nowhere names no single visible element/);
      // The resolved point clicks the element.
      const resolved = await session.resolveReference(
        { name: 'browser_click_at', arguments: { at: { selector: '#target' } } },
        { signal },
      );
      await call(session, 'browser_click_at', resolved!);
      expect(await read(session, 'document.body.dataset.saved')).toBe('yes');
    } finally {
      await session.close();
    }
  });

  it("logs each coordinate action with the targets' boxes measured before it, and scores turns by them", async () => {
    const session = await open('gui-target.html', {
      actions: 'coordinates',
      grounding: { targets: [{ selector: '#target' }, { selector: '#second' }], rewards: { hit: 1 } },
    });
    try {
      await session.initialObservation({ signal });
      const before = await boxOf(session, '#target');
      const second = await boxOf(session, '#second');
      const asBox = (box: typeof before) => ({
        x1: box.x,
        y1: box.y,
        x2: box.x + box.width,
        y2: box.y + box.height,
      });

      // Turn 0: the click moves the target away.
      await call(session, 'browser_click_at', { x: 640, y: 360 }, 0);
      const moved = await boxOf(session, '#target');
      expect(moved.x).not.toBe(before.x);
      expect(session.pointingActions(0)).toEqual([
        {
          turnIndex: 0,
          tool: 'browser_click_at',
          point: { x: 640, y: 360 },
          targets: [asBox(before), asBox(second)],
        },
      ]);
      // Turn 1: the second target; a wheel is not pointing at anything.
      await call(session, 'browser_scroll_at', { x: 10, y: 10, amount: 10 }, 1);
      await call(session, 'browser_click_at', { x: 130, y: 120 }, 1);
      expect(session.pointingActions(1)).toEqual([
        {
          turnIndex: 1,
          tool: 'browser_click_at',
          point: { x: 130, y: 120 },
          targets: [asBox(moved), asBox(second)],
        },
      ]);
      // Turn 2: a miss, and a refused point (not logged).
      await call(session, 'browser_hover_at', { x: 5, y: 5 }, 2);
      await call(session, 'browser_click_at', { x: 5000, y: 5 }, 2);
      expect(session.pointingActions(2)).toHaveLength(1);
      expect(session.pointingActions()).toHaveLength(3);

      const episodeContext = makeEpisodeContext({
        episodeId: session.episodeId,
        sessions: new Map([[provider.name, session]]),
        signal,
      });
      const turns = [0, 1, 2, 3].map((index) => makeTurn({ index }));
      const scoreAll = async (kind: 'hit' | 'gaussian_point') => {
        const reward = await groundingTurnReward(kind).open(episodeContext);
        const values: number[] = [];
        for (const [index, turn] of turns.entries()) {
          values.push(await reward.score({ turn, previousTurns: turns.slice(0, index), signal }));
        }
        return values;
      };
      // Turn 0 hits the target where it was; turn 1 the second; turn 2 misses; turn 3 has no action.
      expect(await scoreAll('hit')).toEqual([1, 1, 0, 0]);
      const gaussian = await scoreAll('gaussian_point');
      expect(gaussian[0]).toBe(1);
      expect(gaussian[1]).toBe(1);
      expect(gaussian[2]).toBeLessThan(0.01);
      expect(gaussian[3]).toBe(0);
    } finally {
      await session.close();
    }
  });
});
