import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import {
  RunStore,
  formatSummary,
  planEpisodes,
  runEpisodes,
  summariseRun,
  defineAgent,
} from '../../../harness/index.ts';
import { MemorySandboxProvider } from '../../fakes/memory-sandbox.ts';
import { makeTask } from '../../fakes/tasks.ts';

const rewardOne = new MemorySandboxProvider((command, sandbox) => {
  if (command.includes('test.sh')) sandbox.files.set('/logs/verifier/reward.txt', Buffer.from('1'));
  return {};
});
const submitting = new ScriptedAgent({ turns: [{ tool_calls: [{ name: 'submit', arguments: {} }] }] });
const tasks = ['a', 'b', 'c', 'd', 'e'].map((id) => makeTask({ id }));

describe('planEpisodes', () => {
  it('plans epochs × tasks with stable ids and seeds', () => {
    const plan = planEpisodes(tasks.slice(0, 2), { epochs: 2, seed: 7 });
    expect(plan.map((planned) => planned.episodeId)).toEqual(['a#0', 'b#0', 'a#1', 'b#1']);
    expect(planEpisodes(tasks.slice(0, 2), { epochs: 2, seed: 7 })).toEqual(plan);
    expect(new Set(plan.map((planned) => planned.seed)).size).toBe(4);
  });
});

describe('runEpisodes', () => {
  it('never runs more than `concurrency` episodes at once', async () => {
    let running = 0;
    let peak = 0;
    const agent = defineAgent({
      name: 'counting',
      act: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return { text: null, toolCalls: [{ id: '', name: 'submit', arguments: '{}' }] };
      },
    });
    const episodes = await runEpisodes({
      runId: 'r',
      tasks,
      agent,
      sandboxProvider: rewardOne,
      concurrency: 2,
    });
    expect(episodes).toHaveLength(5);
    expect(peak).toBe(2);
  });

  it('runs 32 episodes at once on one signal without a MaxListenersExceededWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const many = Array.from({ length: 32 }, (_, i) => makeTask({ id: `w${i}` }));
      const agent = defineAgent({
        name: 'slow',
        act: async () => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return { text: null, toolCalls: [{ id: '', name: 'submit', arguments: '{}' }] };
        },
      });
      const episodes = await runEpisodes({
        runId: 'r',
        tasks: many,
        agent,
        sandboxProvider: rewardOne,
        concurrency: 32,
        signal: new AbortController().signal,
      });
      expect(episodes).toHaveLength(32);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('retries infrastructure failures and keeps every attempt’s error', async () => {
    const flaky = new MemorySandboxProvider((command, sandbox) => {
      if (command.includes('test.sh')) sandbox.files.set('/logs/verifier/reward.txt', Buffer.from('1'));
      return {};
    });
    flaky.failuresLeft = 2;
    const [episode] = await runEpisodes({
      runId: 'r',
      tasks: tasks.slice(0, 1),
      agent: submitting,
      sandboxProvider: flaky,
      retryDelayMs: 1,
    });
    expect(episode!.status).toBe('completed');
    expect(episode!.attempt).toBe(3);
    expect(episode!.previousAttempts.map((attempt) => attempt.code)).toEqual([
      'SANDBOX_START_FAILED',
      'SANDBOX_START_FAILED',
    ]);
  });

  it('gives up after maxAttempts and records the episode as infra-error', async () => {
    const broken = new MemorySandboxProvider();
    broken.failuresLeft = 10;
    const [episode] = await runEpisodes({
      runId: 'r',
      tasks: tasks.slice(0, 1),
      agent: submitting,
      sandboxProvider: broken,
      maxAttempts: 2,
      retryDelayMs: 1,
    });
    expect(episode!.status).toBe('infra-error');
    expect(episode!.attempt).toBe(2);
    expect(episode!.previousAttempts).toHaveLength(1);
  });

  it('skips episodes already in the store, so a resumed run runs only what is missing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paddock-run-'));
    const plan = planEpisodes(tasks);
    const store = RunStore.create(root, { runId: 'r', createdAt: '', config: {}, plan });
    store.openForWrite();
    await runEpisodes({
      runId: 'r',
      tasks: tasks.slice(0, 2),
      plan: plan.slice(0, 2),
      agent: submitting,
      sandboxProvider: rewardOne,
      store,
    });
    const second = await runEpisodes({
      runId: 'r',
      tasks,
      plan,
      agent: submitting,
      sandboxProvider: rewardOne,
      store,
    });
    await store.close();
    expect(second.map((episode) => episode.episodeId)).toEqual(['c#0', 'd#0', 'e#0']);
    const recorded = RunStore.open(root, 'r')
      .episodes()
      .map((episode) => episode.episodeId);
    expect(recorded.sort()).toEqual(['a#0', 'b#0', 'c#0', 'd#0', 'e#0']);
    expect(summariseRun(RunStore.open(root, 'r').episodes()).total).toMatchObject({
      episodes: 5,
      meanReward: 1,
      passRate: 1,
      errors: 0,
    });
  });

  it('stops starting episodes when aborted and rejects with ABORTED', async () => {
    const controller = new AbortController();
    const agent = defineAgent({
      name: 'aborting',
      act: async () => {
        controller.abort();
        return { text: null, toolCalls: [] };
      },
    });
    await expect(
      runEpisodes({
        runId: 'r',
        tasks,
        agent,
        sandboxProvider: rewardOne,
        concurrency: 1,
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('summariseRun', () => {
  it('groups dataset rows under their task and reports component and constraint means', () => {
    const episode = (taskId: string, total: number, tokens: number) =>
      ({
        taskId,
        status: 'completed',
        turns: [
          { rewards: { page: total / 2, tool_error: 0 } },
          { rewards: { page: total / 2, tool_error: -1 } },
        ],
        reward: {
          total,
          components: { verifier: { value: total, weight: 1 }, judge: { value: 0.5, weight: 0.2 } },
          constraints: { tokens: { value: tokens, limit: 100 } },
        },
      }) as unknown as Parameters<typeof summariseRun>[0][number];
    const summary = summariseRun([
      episode('math@1', 1, 10),
      episode('math@2', 0, 30),
      episode('other', 1, 20),
    ]);
    expect(summary.tasks.map((task) => [task.task, task.episodes, task.passRate])).toEqual([
      ['math', 2, 0.5],
      ['other', 1, 1],
    ]);
    expect(summary.tasks[0]!.components).toEqual({ verifier: 0.5, judge: 0.5 });
    expect(summary.tasks[0]!.constraints).toEqual({ tokens: 20 });
    expect(summary.tasks[0]!.turnComponents).toEqual({ page: 0.5, tool_error: -1 });
    expect(formatSummary(summary)).toContain(
      'math: verifier=0.500  judge=0.500  turn.page=0.500  turn.tool_error=-1.000  [tokens]=20.000',
    );
  });
});
