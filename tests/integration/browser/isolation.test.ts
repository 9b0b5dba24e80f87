/**
 * Many web episodes at once in one shared browser: none fails, and none sees what another
 * left behind — localStorage, sessionStorage or cookies — even on the very same origin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { runEpisodes } from '../../../harness/index.ts';
import { BrowserToolProvider } from '../../../sandboxes/browser/index.ts';
import { startFixtureServer, webTask } from './helpers.ts';

const provider = new BrowserToolProvider();
let server: Awaited<ReturnType<typeof startFixtureServer>>;

beforeAll(async () => {
  server = await startFixtureServer();
});
afterAll(async () => {
  await provider.close();
  await server.close();
});

/** Clicks "Remember" (which writes localStorage, sessionStorage and a cookie), then submits. */
const agent = new ScriptedAgent({
  turns: [
    { tool_calls: [{ name: 'browser_click', arguments: { selector: 'role=button[name="Remember"]' } }] },
    { tool_calls: [{ name: 'submit', arguments: {} }] },
  ],
});

describe('concurrent web episodes', () => {
  it('run 8 at once without failure and leave nothing for each other, on one shared origin', async () => {
    // Every episode opens the same origin: only the per-episode context keeps them apart.
    const tasks = Array.from({ length: 8 }, (_, index) =>
      webTask(`storage/${index}`, { url: `${server.origin}/storage.html`, score: 'storage-scorer.js' }),
    );
    for (const round of [1, 2]) {
      const episodes = await runEpisodes({
        runId: `it-browser-isolation-${round}`,
        tasks,
        agent,
        toolProviders: [provider],
        concurrency: 8,
        maxAttempts: 1,
      });
      expect(episodes).toHaveLength(8);
      for (const episode of episodes) {
        expect(episode.status, episode.taskId).toBe('completed');
        // 1: this episode wrote its visit and found none from any other episode.
        expect(episode.reward.components.browser, episode.taskId).toEqual({ value: 1, weight: 1 });
        expect(episode.messages[0]!.content).toContain('Left by earlier visits: none');
      }
    }
    // Every episode's context is gone; at most the pool's spare remains.
    const browser = await provider.pool.browser();
    expect(browser.contexts().length).toBeLessThanOrEqual(1);
  });
});
