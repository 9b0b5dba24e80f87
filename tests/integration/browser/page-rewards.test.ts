/**
 * `page:` turn rewards through the composition root's wiring (`createPaddock().openRun()`): the tasks/rewards/web-wizard
 * example in a real Chromium pays the change of its page scorer after every turn, the turn
 * rewards add up to the final page score, and progress credit turns them into returns.
 * `grounding:` turn rewards the same way: tasks/gui/web/click-button-xy pays each click by
 * where it landed on the button's box.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { createPaddock } from '../../../cli/paddock.ts';
import { runEpisode, type Agent, type Task } from '../../../harness/index.ts';
import { BrowserToolProvider, pageTurnReward } from '../../../sandboxes/browser/index.ts';
import { webTask } from './helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const paddock = createPaddock();
const [wizard] = (await paddock.loadSuite([path.join(ROOT, 'tasks/rewards/web-wizard')])) as [Task];
const [clickXy] = (await paddock.loadSuite([path.join(ROOT, 'tasks/gui/web/click-button-xy')])) as [Task];
const plugins = await paddock.openRun();
let episode = 0;

afterAll(async () => {
  await plugins.close();
});

async function play(agent: Agent, task: Task = wizard) {
  return runEpisode({
    task,
    agent,
    runId: 'it-page-rewards',
    episodeId: `wizard-${++episode}`,
    toolProviders: plugins.toolProviders,
    rewards: await plugins.rewardsFor(task),
  });
}

describe('page turn rewards', () => {
  it("pay each turn the change of the page's score, adding up to the final score", async () => {
    const record = await play(new OracleAgent());
    expect(record.status).toBe('completed');
    expect(record.reward.components.browser).toEqual({ value: 1, weight: 1 });
    const page = record.turns.map((turn) => turn.rewards.page);
    // The oracle's six browser steps, then submit: only the three Continue/Place order clicks move the page.
    expect(page.map((value) => Math.round(value! * 3))).toEqual([0, 0, 1, 0, 1, 1, 0]);
    expect(page.reduce((sum, value) => sum! + value!, 0)).toBeCloseTo(1, 10);
    expect(record.turns.map((turn) => turn.reward)).toEqual(page.map((value) => value! * 0.5));
    // Progress credit: the outcome (1) split over the turns that moved the page, as return-to-go.
    expect(record.turns.map((turn) => turn.return)).toEqual(
      [1, 1, 1, 2 / 3, 2 / 3, 1 / 3, 0].map((value) => expect.closeTo(value, 10)),
    );
  });

  it('pay nothing for turns that leave the page where it was', async () => {
    const click = { name: 'browser_click', arguments: { selector: 'role=button[name="Continue"]' } };
    const record = await play(
      new ScriptedAgent({
        turns: [
          { tool_calls: [click] }, // nothing filled in: the form refuses
          { tool_calls: [{ name: 'browser_fill', arguments: { selector: '#name', text: 'Ada Lovelace' } }] },
          { tool_calls: [{ name: 'browser_fill', arguments: { selector: '#city', text: 'London' } }] },
          { tool_calls: [click] }, // the wrong address: step 1 is done, but not right
          { tool_calls: [{ name: 'browser_nonsense', arguments: {} }] },
          { tool_calls: [{ name: 'submit', arguments: { answer: 'done' } }] },
        ],
      }),
    );
    expect(record.status).toBe('completed');
    expect(record.reward.components.browser).toEqual({ value: 0, weight: 1 });
    expect(record.turns.map((turn) => turn.rewards.page)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(record.turns.map((turn) => turn.rewards.invalid_call)).toEqual([0, 0, 0, 0, -1, 0]);
    expect(record.turns.map((turn) => turn.return)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('refuse a task without a browser section or without a scorer', () => {
    const provider = new BrowserToolProvider();
    const noBrowser = { ...webTask('plain', { url: 'http://127.0.0.1:9/' }), extensions: {} };
    expect(() => pageTurnReward(provider, noBrowser)).toThrow(/has no browser section/);
    expect(() => pageTurnReward(provider, webTask('unscored', { url: 'http://127.0.0.1:9/' }))).toThrow(
      /has no browser\.score/,
    );
    expect(pageTurnReward(provider, wizard, { name: 'page', weight: 0.5 })).toMatchObject({
      name: 'page',
      weight: 0.5,
    });
  });
});

describe('grounding turn rewards (tasks/gui/web/click-button-xy)', () => {
  it("score each click by where it landed on the target's box: GUI-G²'s point reward", async () => {
    const record = await play(new OracleAgent(), clickXy);
    expect(record.reward.components.browser).toEqual({ value: 1, weight: 1 });
    // The oracle clicks the button's centre, then submits (a turn without a click scores 0).
    expect(record.turns.map((turn) => turn.rewards.grounding)).toEqual([1, 0]);
    expect(record.turns.map((turn) => turn.reward)).toEqual([0.5, 0]);
  });

  it('pay less the farther a click lands from the centre, by a Gaussian of the distance', async () => {
    // The oracle's click is the button's centre, resolved on the page.
    const oracle = await play(new OracleAgent(), clickXy);
    const centre = JSON.parse(oracle.turns[0]!.toolCalls[0]!.arguments) as { x: number; y: number };
    const clickAt = async (dx: number): Promise<number> => {
      const record = await play(
        new ScriptedAgent({
          turns: [
            { tool_calls: [{ name: 'browser_click_at', arguments: { x: centre.x + dx, y: centre.y } }] },
          ],
        }),
        clickXy,
      );
      return record.turns[0]!.rewards.grounding!;
    };
    const [near, far] = [await clickAt(5), await clickAt(10)];
    expect(near).toBeGreaterThan(far);
    expect(far).toBeGreaterThan(0);
    // exp(−½ (dx/σx)²): twice the distance, four times the exponent, whatever σ the size gives.
    expect(Math.log(far) / Math.log(near)).toBeCloseTo(4, 6);
    const beside = await play(
      new ScriptedAgent({
        turns: [{ tool_calls: [{ name: 'browser_click_at', arguments: { x: 1, y: 1 } }] }],
      }),
      clickXy,
    );
    expect(beside.turns[0]!.rewards.grounding).toBeLessThan(1e-6);
  });
});
