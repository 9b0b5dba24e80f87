/** The CLI's wiring of rewards: what `RunPlugins.rewardsFor` gives the episode loop and the trainer. */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunPlugins, loadSuite } from '../../../cli/plugins.ts';
import type { Task } from '../../../harness/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const plugins = new RunPlugins();

afterAll(async () => {
  await plugins.close();
});

describe('RunPlugins.rewardsFor', () => {
  it("passes a task's group judge on to the trainer, and builds a task's rewards once", async () => {
    // The judge agent is made at build time but calls nothing: a local base URL is enough.
    const saved = process.env.OPENAI_BASE_URL;
    process.env.OPENAI_BASE_URL = 'http://127.0.0.1:9/v1';
    try {
      const [task] = (await loadSuite([path.join(ROOT, 'tasks/rewards/judged-summary')])) as [Task];
      const rewards = await plugins.rewardsFor(task);
      expect(rewards.group?.map((fn) => [fn.name, fn.weight])).toEqual([['judge_group', 0.5]]);
      expect(rewards.trajectory?.map((fn) => fn.name)).toContain('judge');
      expect(await plugins.rewardsFor(task)).toBe(rewards);
    } finally {
      if (saved === undefined) delete process.env.OPENAI_BASE_URL;
      else process.env.OPENAI_BASE_URL = saved;
    }
  });

  it('builds page turn rewards for web tasks through the browser plug-in', async () => {
    const [task] = (await loadSuite([path.join(ROOT, 'tasks/rewards/web-wizard')])) as [Task];
    const rewards = await plugins.rewardsFor(task);
    expect(rewards.turn?.map((fn) => [fn.name, fn.weight])).toEqual([
      ['page', 0.5],
      ['invalid_call', 0.1],
    ]);
    expect(rewards.group).toEqual([]);
  });
});
