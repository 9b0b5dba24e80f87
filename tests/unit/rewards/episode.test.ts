/**
 * The reward layer wired into the real episode loop (in-memory sandbox): turn rewards
 * recorded per turn, the verifier's weight from the section, trajectory rewards, then
 * constraints and per-turn returns computed on the record as the trainer will.
 */
import { describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { runEpisode } from '../../../harness/index.ts';
import { episodeReturns } from '../../../rewards/credit/index.ts';
import { buildRewardFunctions, constraintViolations } from '../../../rewards/index.ts';
import { MemorySandboxProvider, type CommandHandler } from '../../fakes/memory-sandbox.ts';
import { makeTask } from '../../fakes/tasks.ts';

/** `progress X` sets the progress file; `cat progress` prints it; the verifier passes when it is 1. */
const handler: CommandHandler = (command, sandbox) => {
  const file = () => Buffer.from(sandbox.files.get('/app/progress') ?? '0').toString();
  const set = /^progress (\S+)$/.exec(command);
  if (set) {
    sandbox.files.set('/app/progress', Buffer.from(set[1]!));
    return { stdout: '' };
  }
  if (command === 'cat progress') return { stdout: file() };
  if (command === 'fail') return { exitCode: 1, stderr: 'failed' };
  if (command === 'bash /tests/test.sh') {
    sandbox.files.set('/logs/verifier/reward.txt', Buffer.from(file().trim() === '1' ? '1' : '0'));
  }
  return {};
};

const bash = (command: string) => ({ name: 'bash', arguments: { command } });

describe('rewards in the episode loop', () => {
  it('records turn rewards, weights the verifier, and yields returns and constraints', async () => {
    const task = makeTask({
      extensions: {
        rewards: {
          turn: [
            { progress: { command: 'cat progress', parse: 'number' } },
            { rule: 'tool_error', weight: 0.1 },
          ],
          trajectory: [{ verifier: { weight: 2 } }, { answer: { expected: 'done' }, weight: 0.5 }],
          constraints: [{ cost: 'turns', limit: 2 }, { cost: 'tool_calls' }],
        },
        credit: { scheme: 'gated', gate: 2, gamma: 1 },
      },
    });
    const setup = await buildRewardFunctions(task);
    const provider = new MemorySandboxProvider(handler);
    const agent = new ScriptedAgent({
      turns: [
        { tool_calls: [bash('progress 0.5'), bash('fail')] },
        { tool_calls: [bash('progress 0.25')] },
        { tool_calls: [bash('progress 1'), { name: 'submit', arguments: { answer: 'Done!' } }] },
      ],
    });
    const episode = await runEpisode({
      task,
      agent,
      runId: 'r',
      episodeId: 'e',
      sandboxProvider: provider,
      rewards: { turn: setup.turn, trajectory: setup.trajectory, constraints: setup.constraints },
    });

    expect(episode.turns.map((turn) => turn.rewards)).toEqual([
      { progress: 0.5, tool_error: -1 },
      { progress: -0.25, tool_error: 0 },
      { progress: 0.75, tool_error: 0 },
    ]);
    expect(episode.turns.map((turn) => turn.reward)).toEqual([0.4, -0.25, 0.75]);
    expect(episode.reward.components).toEqual({
      verifier: { value: 1, weight: 2 },
      answer: { value: 1, weight: 0.5 },
    });
    expect(episode.reward.total).toBe(2.5);

    // The loop measured the constraints, apart from the reward.
    expect(episode.reward.constraints).toEqual({ turns: { value: 3, limit: 2 }, tool_calls: { value: 5 } });
    expect(episode.reward.total).toBe(2.5);
    expect(constraintViolations(episode.reward.constraints)).toEqual(['turns']);

    // gated, R = 2.5 ≥ 2: c = [0.4, -0.25, 3.25]
    const returns = episodeReturns(episode, setup.credit);
    [3.4, 3, 3.25].forEach((value, t) => expect(returns[t]).toBeCloseTo(value, 12));
  });
});
