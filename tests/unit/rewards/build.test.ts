import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PaddockError, isPaddockError, type Task, type TurnRewardFunction } from '../../../harness/index.ts';
import { browserTaskExtension } from '../../../sandboxes/browser/index.ts';
import { loadTasks } from '../../../tasks/index.ts';
import {
  RewardResources,
  buildRewardFunctions,
  creditTaskExtension,
  rewardsTaskExtension,
} from '../../../rewards/index.ts';
import { makeTask } from '../../fakes/tasks.ts';
import { FakeJudgeAgent, makeEpisode, makeTurn } from '../../fixtures/rewards/records.ts';
import { scoreOneTurn } from '../../fixtures/rewards/turn-reward.ts';

const MODEL_DIR = fileURLToPath(new URL('../../fixtures/rewards/byte-reward', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../../tasks/rewards', import.meta.url));
const signal = new AbortController().signal;

/** A task folder holding a rubric and a copy of the fixture model under rewards/. */
function taskDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'paddock-reward-task-'));
  writeFileSync(path.join(dir, 'rubric.md'), 'Score 1 when the answer is right.');
  mkdirSync(path.join(dir, 'rewards'));
  copyFileSync(path.join(MODEL_DIR, 'model.onnx'), path.join(dir, 'rewards', 'model.onnx'));
  copyFileSync(path.join(MODEL_DIR, 'spec.json'), path.join(dir, 'rewards', 'spec.json'));
  return dir;
}

function taskWith(rewards: unknown, overrides: Partial<Task> = {}, credit?: unknown): Task {
  return makeTask({
    dir: taskDir(),
    extensions: { rewards, ...(credit === undefined ? {} : { credit }) },
    ...overrides,
  });
}

const judgeAgentFactory = (spec: string) => new FakeJudgeAgent(() => 'SCORE: 0.5', spec);

describe('buildRewardFunctions', () => {
  it('builds every kind from the section, with names and weights', async () => {
    const task = taskWith(
      {
        turn: [
          { progress: { command: 'cat progress', parse: 'number' } },
          { rule: 'tool_error', weight: 0.1 },
          { rule: 'format', require: 'tool_call', name: 'needs_call' },
          { model: { onnx: 'rewards', input: 'turn_text', weight: 0.3 } },
          {
            model: { onnx: 'rewards/model.onnx', input: 'transcript', mode: 'progress' },
            name: 'model_progress',
          },
          { judge: { agent: 'openai:gpt-4.1-mini', rubric: 'rubric.md' }, name: 'turn_judge', weight: 0.05 },
        ],
        trajectory: [
          { verifier: { weight: 2 } },
          { judge: { agent: 'openai:gpt-4.1-mini', rubric: 'rubric.md', weight: 0.2 } },
          { judge: { agent: 'openai:gpt-4.1-mini', rubric: 'rubric.md', group: true }, name: 'rank' },
          { answer: { expected: '42', match: 'numeric', tolerance: 1e-6 } },
          { model: { onnx: 'rewards', input: 'answer' }, name: 'answer_model' },
        ],
        constraints: [{ cost: 'tokens', limit: 20000 }, { cost: 'turns' }],
      },
      {},
      { scheme: 'gated', gamma: 0.95, gate: 1 },
    );
    const setup = await buildRewardFunctions(task, { judgeAgentFactory });
    try {
      expect(setup.turn.map((fn) => [fn.name, fn.weight])).toEqual([
        ['progress', 1],
        ['tool_error', 0.1],
        ['needs_call', 1],
        ['model', 0.3],
        ['model_progress', 1],
        ['turn_judge', 0.05],
      ]);
      expect(setup.trajectory.map((fn) => [fn.name, fn.weight])).toEqual([
        ['verifier', 2],
        ['judge', 0.2],
        ['answer', 1],
        ['answer_model', 1],
      ]);
      expect(setup.group.map((fn) => [fn.name, fn.weight])).toEqual([['rank', 1]]);
      expect(setup.constraints.map((fn) => [fn.name, fn.limit])).toEqual([
        ['tokens', 20000],
        ['turns', undefined],
      ]);
      expect(setup.credit).toEqual({
        scheme: 'gated',
        gamma: 0.95,
        gate: 1,
        progressComponents: ['progress', 'model_progress'],
      });
      expect(setup.verifierWeight).toBe(2);

      const episode = makeEpisode({
        answer: '42.0',
        verifier: {
          reward: 1,
          scores: {},
          exitCode: 0,
          stdout: '',
          stderr: '',
          timedOut: false,
          durationMs: 1,
          warnings: [],
        },
      });
      const values = await Promise.all(setup.trajectory.map((fn) => fn.score({ task, episode, signal })));
      expect(values.slice(0, 3)).toEqual([1, 0.5, 1]);
      const turnJudge = setup.turn[5]!;
      expect(await scoreOneTurn(turnJudge, makeTurn(), [], { task, signal })).toBe(0.5);
    } finally {
      await setup.close();
    }
  });

  it('gives a task without a rewards section no functions and the default credit', async () => {
    const setup = await buildRewardFunctions(makeTask());
    expect([setup.turn, setup.trajectory, setup.group, setup.constraints]).toEqual([[], [], [], []]);
    expect(setup.credit).toEqual({ scheme: 'dense', gamma: 1, gate: 1, progressComponents: [] });
    expect(setup.verifierWeight).toBe(1);
  });

  it('fills {{field}} of an expected answer from the dataset row', async () => {
    const task = taskWith(
      { trajectory: [{ answer: { expected: '{{answer}}', match: 'numeric' } }] },
      { metadata: { row: { answer: 12 } } },
    );
    const setup = await buildRewardFunctions(task);
    expect(await setup.trajectory[0]!.score({ task, episode: makeEpisode({ answer: '12' }), signal })).toBe(
      1,
    );
    await expect(
      buildRewardFunctions(
        taskWith({ trajectory: [{ answer: { expected: '{{missing}}' } }] }, { metadata: { row: {} } }),
      ),
    ).rejects.toThrow(/\{\{missing\}\} names no field/);
  });

  it.each([
    [
      'a judge without a judge agent factory',
      { trajectory: [{ judge: { agent: 'openai:x', rubric: 'rubric.md' } }] },
      {},
      /no judge agent factory/,
    ],
    [
      'a judge its factory cannot make',
      { trajectory: [{ answer: { expected: '1' } }, { judge: { agent: 'openai:x', rubric: 'rubric.md' } }] },
      {
        judgeAgentFactory: () => {
          throw new Error('set OPENAI_API_KEY');
        },
      },
      /rewards\.trajectory\.1: cannot make the judge "openai:x": set OPENAI_API_KEY/,
    ],
    [
      'a missing rubric',
      { trajectory: [{ judge: { agent: 'openai:x', rubric: 'nope.md' } }] },
      { judgeAgentFactory },
      /cannot read the rubric/,
    ],
    ['a missing model', { turn: [{ model: { onnx: 'missing' } }] }, {}, /cannot read its spec/],
    [
      'a non-numeric expected answer for numeric match',
      { trajectory: [{ answer: { expected: 'many', match: 'numeric' } }] },
      {},
      /holds no number/,
    ],
    [
      'an invalid section',
      { turn: [{ rule: 'nope' }] },
      {},
      /invalid rewards section:\nrewards\.turn\.0\.rule/,
    ],
  ])('refuses %s with CONFIG_INVALID', async (_what, rewards, options, message) => {
    const error: unknown = await buildRewardFunctions(taskWith(rewards), options).catch(
      (caught: unknown) => caught,
    );
    expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a progress command for a task without a sandbox, and the verifier for a task without one', async () => {
    const progress = { turn: [{ progress: { command: 'true', parse: 'number' } }] };
    await expect(buildRewardFunctions(taskWith(progress, { environment: undefined }))).rejects.toThrow(
      /has no environment/,
    );
    await expect(
      buildRewardFunctions(taskWith({ trajectory: [{ verifier: {} }] }, { verifier: undefined })),
    ).rejects.toThrow(/lists the verifier, but the task has none/);
  });

  it('makes page rewards through the pageTurnReward factory, and counts delta pages as progress', async () => {
    const asked: unknown[] = [];
    const pageTurnReward = (task: Task, options: { name: string; weight: number; mode: string }) => {
      asked.push({ task: task.id, ...options });
      return {
        name: options.name,
        weight: options.weight,
        open: () => ({ score: async () => 0.25 }),
      } as TurnRewardFunction;
    };
    const task = taskWith(
      {
        turn: [
          { page: { mode: 'delta' }, weight: 0.5 },
          { page: { mode: 'value', name: 'page_value' } },
          { page: {}, name: 'page_again' },
        ],
      },
      { id: 'web' },
      { scheme: 'progress' },
    );
    const setup = await buildRewardFunctions(task, { pageTurnReward });
    expect(asked).toEqual([
      { task: 'web', name: 'page', weight: 0.5, mode: 'delta' },
      { task: 'web', name: 'page_value', weight: 1, mode: 'value' },
      { task: 'web', name: 'page_again', weight: 1, mode: 'delta' },
    ]);
    expect(setup.turn.map((fn) => fn.name)).toEqual(['page', 'page_value', 'page_again']);
    expect(setup.credit.progressComponents).toEqual(['page', 'page_again']);
  });

  it('refuses a page reward without a browser plug-in, or for a task it cannot score', async () => {
    const task = taskWith({ turn: [{ rule: 'tool_error' }, { page: {} }] });
    await expect(buildRewardFunctions(task)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/rewards\.turn\.1\.page: .*no browser plug-in/),
    });
    const refusing = () => {
      throw new PaddockError('CONFIG_INVALID', 'task x has no browser.score');
    };
    await expect(buildRewardFunctions(task, { pageTurnReward: refusing })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/rewards\.turn\.1\.page: task x has no browser\.score/),
    });
  });

  it('shares models and judge agents across tasks through RewardResources', async () => {
    const made: FakeJudgeAgent[] = [];
    const resources = new RewardResources({
      judgeAgentFactory: (spec) => {
        const agent = new FakeJudgeAgent(() => 'SCORE: 1', spec);
        made.push(agent);
        return agent;
      },
    });
    const section = {
      turn: [{ model: { onnx: 'rewards' } }],
      trajectory: [{ judge: { agent: 'openai:x', rubric: 'rubric.md' } }],
    };
    const dir = taskDir();
    const first = await buildRewardFunctions(makeTask({ id: 'a', dir, extensions: { rewards: section } }), {
      resources,
    });
    const second = await buildRewardFunctions(makeTask({ id: 'b', dir, extensions: { rewards: section } }), {
      resources,
    });
    expect(made).toHaveLength(1);
    const model = await resources.model(path.join(dir, 'rewards'));
    const before = model.inferences;
    await scoreOneTurn(second.turn[0]!, makeTurn(), [], { signal });
    expect(model.inferences).toBe(before + 1);
    await first.close();
    expect(made[0]!.closed).toBe(0);
    await resources.close();
    await resources.close();
    expect(made[0]!.closed).toBe(1);
    await expect(model.score('x')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await second.close();
  });
});

describe('the example tasks', () => {
  it('load with the rewards and credit sections registered, and build', async () => {
    const tasks = await loadTasks([EXAMPLES], {
      extensions: {
        rewards: rewardsTaskExtension,
        credit: creditTaskExtension,
        browser: browserTaskExtension,
      },
    });
    const ids = tasks.map((task) => task.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'rewards/fix-bug-progress',
        'rewards/judged-summary',
        'rewards/math-answer@apples',
        'rewards/onnx-reward',
        'rewards/web-wizard',
      ]),
    );
    const pages: string[] = [];
    const resources = new RewardResources({
      judgeAgentFactory,
      pageTurnReward: (task, options) => {
        pages.push(task.id);
        return { ...options, open: () => ({ score: async () => 0 }) };
      },
    });
    try {
      for (const task of tasks) {
        const setup = await buildRewardFunctions(task, { resources });
        expect(setup.turn.length + setup.trajectory.length + setup.group.length).toBeGreaterThan(0);
      }
      const fixBug = await buildRewardFunctions(
        tasks.find((task) => task.id === 'rewards/fix-bug-progress')!,
        { resources },
      );
      expect(fixBug.credit).toEqual({
        scheme: 'gated',
        gamma: 0.95,
        gate: 1,
        progressComponents: ['progress'],
      });
      const wizard = await buildRewardFunctions(
        tasks.find((task) => task.id === 'rewards/web-wizard')!,
        {
          resources,
        },
      );
      expect(pages).toContain('rewards/web-wizard');
      expect(wizard.credit).toMatchObject({ scheme: 'progress', progressComponents: ['page'] });
      const math = tasks.find((task) => task.id === 'rewards/math-answer@speed')!;
      const mathSetup = await buildRewardFunctions(math, { resources });
      expect(
        await mathSetup.trajectory[0]!.score({
          task: math,
          episode: makeEpisode({ answer: '84 km/h' }),
          signal,
        }),
      ).toBe(1);
    } finally {
      await resources.close();
    }
  });
});
