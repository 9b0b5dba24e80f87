/**
 * The tasks/gui suites in a real Chromium: GUI grounding on local pages (a screenshot and
 * an instruction, answered with a point) and multi-turn web tasks played in coordinates.
 * The oracle scores 1 on every task; every web scorer gives 0 on the untouched page; every
 * grounding target is one element inside the screenshot; a point off the target's centre
 * scores by its distance (GUI-G²'s Gaussian, σ = half the target's size); and an agent
 * that only clicks at points it was given solves a web task, or fails it by a misclick.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { runEpisodes, type Agent, type EpisodeRecord, type Task } from '../../../harness/index.ts';
import {
  BrowserToolProvider,
  browserTaskExtension,
  type BrowserSession,
} from '../../../sandboxes/browser/index.ts';
import { creditTaskExtension, rewardsTaskExtension } from '../../../rewards/index.ts';
import { loadTasks } from '../../../tasks/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const tasks = await loadTasks([path.join(ROOT, 'tasks/gui')], {
  extensions: { browser: browserTaskExtension, rewards: rewardsTaskExtension, credit: creditTaskExtension },
  cwd: ROOT,
});
const grounding = tasks.filter((task) => task.id.startsWith('gui/grounding@'));
const web = tasks.filter((task) => task.id.startsWith('gui/web/'));
const provider = new BrowserToolProvider();
const signal = new AbortController().signal;
const VIEWPORT = { width: 1280, height: 720 };
let opened = 0;

afterAll(async () => {
  await provider.close();
});

function task(id: string): Task {
  const found = tasks.find((candidate) => candidate.id === id);
  if (!found) throw new Error(`no task ${id}`);
  return found;
}

/** The grounding target's selector of a dataset row (its `{{target}}`, filled in). */
function targetOf(task: Task): string {
  const section = task.extensions.browser as { grounding: { targets: { selector: string }[] } };
  return section.grounding.targets[0]!.selector;
}

/** Opens a session of `task` on its start page, runs `use` on it, and closes it. */
async function withSession<T>(task: Task, use: (session: BrowserSession) => Promise<T>): Promise<T> {
  const session = (await provider.open(task, {
    labels: { runId: 'it-gui-suite', episodeId: `look-${++opened}` },
    signal,
  })) as BrowserSession;
  try {
    return await use(session);
  } finally {
    await session.close();
  }
}

/** The boxes of elements on `task`'s start page, in CSS pixels of the viewport. */
function boxesOn(task: Task, selectors: string[]) {
  return withSession(task, async (session) => {
    const page = await session.page();
    const boxes = [];
    for (const selector of selectors) {
      const box = await page.locator(selector).boundingBox();
      if (!box) throw new Error(`${selector} has no box on ${task.id}`);
      boxes.push({ ...box, cx: box.x + box.width / 2, cy: box.y + box.height / 2 });
    }
    return boxes;
  });
}

function run(agent: Agent, selected: Task[], concurrency = 1): Promise<EpisodeRecord[]> {
  return runEpisodes({
    runId: `it-gui-${++opened}`,
    tasks: selected,
    agent,
    toolProviders: [provider],
    concurrency,
  });
}

/** An agent that plays the same fixed turns on every task. */
function scripted(turns: { name: string; arguments: Record<string, unknown> }[]): ScriptedAgent {
  return new ScriptedAgent({ turns: turns.map((call) => ({ tool_calls: [call] })) });
}

describe('tasks/gui', () => {
  it('has a grounding dataset of at least 16 instances on at least 3 pages, and a web suite', () => {
    expect(grounding.length).toBeGreaterThanOrEqual(16);
    const pages = new Set(grounding.map((task) => (task.metadata.row as { page: string }).page));
    expect(pages.size).toBeGreaterThanOrEqual(3);
    expect(web.map((task) => task.id.slice('gui/web/'.length)).sort()).toEqual(
      expect.arrayContaining([
        'canvas-target',
        'click-button-xy',
        'confirm-delete',
        'confirm-keep',
        'drag-to-bin',
        'fill-form-xy',
        'new-tab',
        'upload-report',
      ]),
    );
  });

  it('names, on every grounding instance, one element lying inside the screenshot; no browser tools', async () => {
    // One session per page: the instances of a page share its layout.
    const byPage = new Map<string, Task[]>();
    for (const instance of grounding) {
      const page = (instance.metadata.row as { page: string }).page;
      byPage.set(page, [...(byPage.get(page) ?? []), instance]);
    }
    for (const [page, instances] of byPage) {
      await withSession(instances[0]!, async (session) => {
        expect(session.tools, page).toEqual([]);
        const first = await session.initialObservation({ signal });
        expect(first.images, page).toHaveLength(1);
        expect(first.text, page).not.toMatch(/\[ref=/);
        const shown = await session.page();
        for (const instance of instances) {
          const target = shown.locator(targetOf(instance));
          expect(await target.count(), instance.id).toBe(1);
          const box = (await target.boundingBox())!;
          expect(box.width * box.height, instance.id).toBeGreaterThan(0);
          expect(box.x, instance.id).toBeGreaterThanOrEqual(0);
          expect(box.y, instance.id).toBeGreaterThanOrEqual(0);
          expect(box.x + box.width, instance.id).toBeLessThanOrEqual(VIEWPORT.width);
          expect(box.y + box.height, instance.id).toBeLessThanOrEqual(VIEWPORT.height);
          // Nothing covers the target's centre: a click there reaches it.
          const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
          const selector = JSON.stringify(targetOf(instance));
          const reached = await shown.evaluate(
            `document.querySelector(${selector}).contains(document.elementFromPoint(${x}, ${y}))`,
          );
          expect(reached, instance.id).toBe(true);
        }
      });
    }
  });

  it('scores 0 on every untouched web page, which the agent sees as a screenshot with coordinate tools', async () => {
    for (const webTask of web) {
      await withSession(webTask, async (session) => {
        const names = session.tools.map((tool) => tool.name);
        expect(names, webTask.id).toEqual(
          expect.arrayContaining(['browser_click_at', 'browser_drag', 'browser_type']),
        );
        expect(names, webTask.id).not.toContain('browser_click');
        const first = await session.initialObservation({ signal });
        expect(first.images, webTask.id).toHaveLength(1);
        expect(first.text, webTask.id).not.toMatch(/\[ref=/);
        const { browser } = await session.score({ signal });
        expect(typeof browser === 'number' ? browser : browser?.value, webTask.id).toBe(0);
      });
    }
  });

  it('scores 1 on every task with the oracle', async () => {
    const episodes = await run(new OracleAgent(), tasks, 2);
    expect(episodes).toHaveLength(tasks.length);
    const failed = episodes
      .filter((episode) => episode.status !== 'completed' || episode.reward.total !== 1)
      .map((episode) => ({
        task: episode.taskId,
        status: episode.status,
        error: episode.error?.message,
        reward: episode.reward,
        results: episode.turns.map((turn) => turn.toolResults[0]?.output.split('\n')[0]),
      }));
    expect(failed).toEqual([]);
    for (const episode of episodes) {
      expect(episode.attempt, episode.taskId).toBe(1);
      expect(episode.stats.toolProblems['tool-error'], episode.taskId).toBe(0);
      // The first message carries the screenshot.
      const firstUser = episode.messages.find((message) => message.role === 'user');
      expect(firstUser && 'images' in firstUser ? firstUser.images : [], episode.taskId).toHaveLength(1);
      if (episode.taskId.startsWith('gui/grounding@')) {
        expect(episode.reward.components, episode.taskId).toEqual({
          'grounding.hit': { value: 1, weight: 0.5 },
          'grounding.gaussian_point': { value: 1, weight: 0.5 },
        });
        expect(episode.turns, episode.taskId).toHaveLength(1);
        expect(JSON.parse(episode.turns[0]!.toolCalls[0]!.arguments).answer).toMatch(
          /^\(\d+(\.\d+)?, \d+(\.\d+)?\)$/,
        );
      } else {
        expect(episode.reward.components.browser, episode.taskId).toEqual({ value: 1, weight: 1 });
        for (const turn of episode.turns.slice(0, -1)) {
          expect(turn.toolCalls[0]!.name, episode.taskId).toMatch(/^browser_/);
          // Coordinate solutions reach the page as points, never as selectors.
          expect(turn.toolCalls[0]!.arguments, episode.taskId).not.toMatch(/"(at|from|to|selector)"/);
        }
      }
    }
  });

  it('scores a grounding answer off the centre by its distance: hit inside the box, a Gaussian with σ = half its size', async () => {
    const instance = task('gui/grounding@shop-add-alpine');
    const [box] = await boxesOn(instance, [targetOf(instance)]);
    const { cx, cy, width, height } = box!;
    const gaussian = (dx: number, dy: number) =>
      Math.exp(-0.5 * ((dx / (0.5 * width)) ** 2 + (dy / (0.5 * height)) ** 2));
    // 40 px right and 10 px down stay on the button; 150 px right is past its edge.
    for (const [dx, dy, hit] of [
      [40, 0, 1],
      [0, 10, 1],
      [150, 0, 0],
    ] as const) {
      expect(Math.abs(dx) < width / 2 && Math.abs(dy) < height / 2).toBe(hit === 1);
      const answer = `(${cx + dx}, ${cy + dy})`;
      const [episode] = await run(scripted([{ name: 'submit', arguments: { answer } }]), [instance]);
      const components = episode!.reward.components;
      expect(components['grounding.hit'], answer).toEqual({ value: hit, weight: 0.5 });
      expect(components['grounding.gaussian_point']!.value, answer).toBeCloseTo(gaussian(dx, dy), 9);
      expect(components['grounding.gaussian_point']!.value, answer).toBeLessThan(1);
      expect(episode!.reward.total, answer).toBeCloseTo(0.5 * hit + 0.5 * gaussian(dx, dy), 9);
    }
    // An answer that names no point scores nothing.
    const [wordy] = await run(scripted([{ name: 'submit', arguments: { answer: 'the green button' } }]), [
      instance,
    ]);
    expect(wordy!.reward.total).toBe(0);
  });

  it('is solved by an agent that only clicks at points, and failed by a misclick', async () => {
    const seats = task('gui/web/click-grid');
    const [seat14C, seat14E, confirm] = await boxesOn(seats, [
      '[data-seat="14C"]',
      '[data-seat="14E"]',
      '#confirm',
    ]);
    const clickAt = (point: { cx: number; cy: number }) => ({
      name: 'browser_click_at',
      arguments: { x: Math.round(point.cx), y: Math.round(point.cy) },
    });
    const [solved] = await run(
      scripted([clickAt(seat14C!), clickAt(confirm!), { name: 'submit', arguments: {} }]),
      [seats],
    );
    expect(solved!.status).toBe('completed');
    expect(solved!.reward.components.browser).toEqual({ value: 1, weight: 1 });
    expect(solved!.turns[0]!.toolResults[0]!.output).toMatch(/^Result: Clicked at \(\d+, \d+\)\./);

    const [missed] = await run(
      scripted([clickAt(seat14E!), clickAt(confirm!), { name: 'submit', arguments: {} }]),
      [seats],
    );
    expect(missed!.reward.components.browser).toEqual({
      value: 0,
      weight: 1,
      note: 'seat 14E was confirmed',
    });

    // Dragging the card onto the Archive instead of the Trash fails the task.
    const board = task('gui/web/drag-to-bin');
    const [card, bin] = await boxesOn(board, ['#card-old-pricing', '#zone-archive']);
    const [archived] = await run(
      scripted([
        {
          name: 'browser_drag',
          arguments: { from_x: card!.cx, from_y: card!.cy, to_x: bin!.cx, to_y: bin!.cy },
        },
        { name: 'submit', arguments: {} },
      ]),
      [board],
    );
    expect(archived!.reward.components.browser?.value).toBe(0);
    expect(archived!.reward.components.browser?.note).toMatch(/"zone":"archive"/);
  });
});
