/**
 * `page:` turn rewards through the composition root's wiring (`createPaddock().openRun()`): the tasks/rewards/web-wizard
 * example in a real Chromium pays the change of its page scorer after every turn, the turn
 * rewards add up to the final page score, and progress credit turns them into returns.
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
const plugins = await paddock.openRun();
let episode = 0;

afterAll(async () => {
  await plugins.close();
});

async function play(agent: Agent) {
  return runEpisode({
    task: wizard,
    agent,
    runId: 'it-page-rewards',
    episodeId: `wizard-${++episode}`,
    toolProviders: plugins.toolProviders,
    rewards: await plugins.rewardsFor(wizard),
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
