/**
 * The tasks/web suite in a real Chromium: the oracle scores 1 on every task through
 * `runEpisodes`, every scorer gives 0 on the untouched start page, and the episodes are
 * recorded in the run store like any other (the trainer reads them from there). Tasks with
 * an `environment:` (pages served from inside their Docker sandbox) get one.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { RunStore, planEpisodes, runEpisodes } from '../../../harness/index.ts';
import { BrowserToolProvider, browserTaskExtension } from '../../../sandboxes/browser/index.ts';
import { DockerSandboxProvider, reapContainers } from '../../../sandboxes/docker/index.ts';
import { loadTasks } from '../../../tasks/index.ts';
import { ensureBaseImage, testRunId } from '../docker/helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const tasks = await loadTasks([path.join(ROOT, 'tasks/web')], {
  extensions: { browser: browserTaskExtension },
  cwd: ROOT,
});
const provider = new BrowserToolProvider();
const sandboxProvider = new DockerSandboxProvider();
const runId = testRunId('web-suite');
const signal = new AbortController().signal;

beforeAll(async () => {
  if (tasks.some((task) => task.environment)) await ensureBaseImage();
});

afterAll(async () => {
  await provider.close();
  await reapContainers({ runId });
});

describe('tasks/web', () => {
  it('scores 0 on every untouched start page', async () => {
    for (const task of tasks) {
      const labels = { runId, episodeId: `initial-${task.id}` };
      const sandbox = task.environment
        ? await sandboxProvider.start(task.environment, { labels })
        : undefined;
      try {
        const session = await provider.open(task, { labels, signal, ...(sandbox ? { sandbox } : {}) });
        try {
          expect(await session!.score({ signal }), task.id).toEqual({ browser: 0 });
        } finally {
          await session!.close();
        }
      } finally {
        await sandbox?.close();
      }
    }
  });

  it('scores 1 on every task with the oracle, and records the episodes in the run store', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'paddock-web-runs-'));
    const plan = planEpisodes(tasks);
    const store = RunStore.create(root, {
      runId: 'web-oracle',
      createdAt: new Date().toISOString(),
      config: {},
      plan,
    });
    store.openForWrite();
    const episodes = await runEpisodes({
      runId: 'web-oracle',
      tasks,
      agent: new OracleAgent(),
      toolProviders: [provider],
      sandboxProvider,
      store,
      concurrency: 3,
    });
    await store.close();
    expect(episodes).toHaveLength(tasks.length);
    for (const episode of episodes) {
      expect(episode.status, episode.taskId).toBe('completed');
      expect(episode.attempt, episode.taskId).toBe(1);
      expect(episode.reward.total, episode.taskId).toBe(1);
      expect(episode.stats.toolProblems['tool-error'], episode.taskId).toBe(0);
    }
    const recorded = RunStore.open(root, 'web-oracle').episodes();
    expect(recorded.map((episode) => episode.taskId).sort()).toEqual(tasks.map((task) => task.id).sort());
    for (const episode of recorded) {
      const browserTurns = episode.turns.filter((turn) => turn.toolCalls[0]?.name.startsWith('browser_'));
      expect(browserTurns.length, episode.taskId).toBeGreaterThan(0);
      for (const turn of browserTurns)
        expect(turn.toolResults[0]!.output).toMatch(/^Result: .*\nURL: http:\/\/127\.0\.0\.1:\d+\//);
      expect(episode.messages.filter((message) => message.role === 'tool')).toHaveLength(
        episode.turns.length,
      );
    }
  });
});
