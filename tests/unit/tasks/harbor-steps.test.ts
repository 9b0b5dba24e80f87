/**
 * Harbor multi-step task folders.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregateSteps, minRewardFailure } from '../../../harness/episode-loop.ts';
import type { StepResult, VerifierResult } from '../../../harness/reward.ts';
import { validateTasks } from '../../../tasks/index.ts';

let root: string;

async function folder(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(root, name);
  for (const [relative, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, relative)), { recursive: true });
    await writeFile(path.join(dir, relative), content);
  }
  return dir;
}

const base = {
  'environment/Dockerfile': 'FROM paddock/base:bookworm\n',
  'tests/test.sh': '#!/bin/bash\n',
  'steps/a/instruction.md': 'Do a.\n',
  'steps/b/instruction.md': 'Do b.\n',
};

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'paddock-harbor-steps-'));
});
afterAll(async () => rm(root, { recursive: true, force: true }));

describe('Harbor [[steps]]', () => {
  it('loads steps in order with the final rule, per-step timeouts and a step dependency', async () => {
    const dir = await folder('ok', {
      ...base,
      'task.toml': [
        'multi_step_reward_strategy = "final"',
        '[verifier]\ntimeout_sec = 10\nenv = { A = "1" }',
        '[[steps]]\nname = "a"\nmin_reward = { correctness = 1 }',
        '[[steps]]\nname = "b"\ndependencies = ["a"]\ninherit_prior_session = true',
        '[steps.verifier]\ntimeout_sec = 5\nenv = { B = "2" }',
      ].join('\n'),
      'steps/b/tests/test.sh': '#!/bin/bash\n',
    });
    const { tasks, problems } = await validateTasks([dir]);
    expect(problems).toEqual([]);
    const steps = tasks[0]!.steps!;
    expect(steps.reward).toBe('final');
    expect(steps.list.map((step) => step.name)).toEqual(['a', 'b']);
    expect(steps.list[0]).toMatchObject({ minReward: { correctness: 1 }, continueSession: false });
    expect(steps.list[1]).toMatchObject({
      continueSession: true,
      verifier: { timeoutMs: 5000, env: { A: '1', B: '2' } },
    });
    // Each step's verifier keeps the task's log folders, so that steps clear and keep them too.
    expect(steps.list[1]!.verifier).toMatchObject({
      logDirs: ['/logs/verifier', '/logs/agent', '/logs/artifacts'],
      keepDir: '/logs/verifier',
    });
    expect(steps.list[1]!.verifier.files.map((file) => path.relative(dir, file.hostPath))).toEqual([
      'tests',
      path.join('steps', 'b', 'tests'),
    ]);
    expect(tasks[0]!.instruction).toBe('Do a.');
  });

  it('refuses a missing step instruction, a step without tests and a dependency on a later step', async () => {
    const dir = await folder('bad', {
      'environment/Dockerfile': 'FROM paddock/base:bookworm\n',
      'steps/a/instruction.md': 'Do a.\n',
      'task.toml': '[[steps]]\nname = "a"\ndepends_on = ["b"]\n[[steps]]\nname = "b"\n',
    });
    const { problems } = await validateTasks([dir]);
    const messages = problems.map((problem) => `${problem.path}: ${problem.message}`).join('\n');
    expect(messages).toContain('steps/b/instruction.md');
    expect(messages).toMatch(/has no test script/);
    expect(messages).toMatch(/steps\.0\.depends_on: "b" runs after this step/);
  });
});

const verified = (name: string, reward: number | null, scores: Record<string, number> = {}): StepResult => ({
  name,
  outcome: 'verified',
  reward,
  turns: { from: 0, to: 0 },
  messages: { from: 0, to: 0 },
  verifier: {
    reward,
    scores: reward === null ? {} : { reward, ...scores },
    exitCode: 0,
    stdout: '',
    stderr: '',
    timedOut: false,
    durationMs: 1,
    warnings: [],
    ...(reward === null ? { error: 'no reward file' } : {}),
  } satisfies VerifierResult,
});

describe('step rewards', () => {
  it('takes per-key means over the steps that ran, a missing key counting 0', () => {
    const result = aggregateSteps([verified('a', 1, { speed: 1 }), verified('b', 0.5)], 'mean');
    expect(result).toMatchObject({
      reward: 0.75,
      aggregate: 'step-mean',
      scores: { reward: 0.75, speed: 0.5 },
    });
  });

  it('counts a step whose verifier failed as 0, so a broken later step never raises the mean', () => {
    const result = aggregateSteps([verified('a', 1), verified('b', null)], 'mean');
    expect(result.reward).toBe(0.5);
    expect(result.warnings.join()).toContain('step b: no reward file');
  });

  it('takes the last step that ran under "final"', () => {
    expect(aggregateSteps([verified('a', 1), verified('b', 0.25)], 'final').reward).toBe(0.25);
  });

  it('gates min_reward on reward, or on each named key (a missing one fails)', () => {
    const step = { minReward: 1 } as Parameters<typeof minRewardFailure>[0];
    expect(minRewardFailure(step, verified('a', 1).verifier!)).toBeUndefined();
    expect(minRewardFailure(step, verified('a', 0.5).verifier!)).toMatch(/reward=0.5 is below/);
    const keyed = { minReward: { safety: 1 } } as unknown as Parameters<typeof minRewardFailure>[0];
    expect(minRewardFailure(keyed, verified('a', 1).verifier!)).toMatch(/safety=-Infinity/);
    expect(minRewardFailure(step, verified('a', null).verifier!)).toMatch(/-Infinity/);
  });
});
