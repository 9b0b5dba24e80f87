import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { isPaddockError, type EpisodeRecord } from '../../../harness/index.ts';
import {
  JudgeCache,
  LlmJudge,
  applyGroupRewards,
  judgeGroupReward,
  judgeTrajectoryReward,
  judgeTurnReward,
  parseGroupScores,
  parseJudgeScore,
} from '../../../rewards/index.ts';
import { makeTask } from '../../fakes/tasks.ts';
import { FakeJudgeAgent, lastUser, makeEpisode, makeTurn } from '../../fixtures/rewards/records.ts';
import { scoreOneTurn } from '../../fixtures/rewards/turn-reward.ts';

const signal = new AbortController().signal;
const task = makeTask({ instruction: 'Write a haiku about tests.' });
const RUBRIC = '1 if the poem is a haiku, 0 otherwise.';

describe('parseJudgeScore', () => {
  it.each([
    ['The poem scans.\nSCORE: 0.8', 0.8],
    ['score = 1', 1],
    ['SCORE: **0.25**', 0.25],
    ['first SCORE: 0.1 then SCORE: 0.9', 0.9],
    ['SCORE: 7/10', 0.7],
    ['```json\n{"score": 0.6, "reason": "ok"}\n```', 0.6],
  ])('reads %j', (text, value) => {
    expect(parseJudgeScore(text)).toBeCloseTo(value, 12);
  });

  it('maps the rubric scale onto [0, 1]', () => {
    expect(parseJudgeScore('SCORE: 7', [1, 10])).toBeCloseTo(2 / 3, 12);
  });

  it('refuses scores outside the scale, and replies without a score', () => {
    expect(parseJudgeScore('SCORE: 8')).toBeUndefined();
    expect(parseJudgeScore('SCORE: 11/10')).toBeUndefined();
    expect(parseJudgeScore('I like it.')).toBeUndefined();
    expect(parseJudgeScore('{"verdict": "good"}')).toBeUndefined();
  });
});

describe('parseGroupScores', () => {
  const labels = ['1', '2', '3'];

  it('reads a scores object in label order', () => {
    expect(parseGroupScores('Reasoning…\n{"scores": {"2": 0.9, "1": 0.1, "3": 0.5}}', labels)).toEqual([
      0.1, 0.9, 0.5,
    ]);
    expect(parseGroupScores('{"scores": [0, 1, 0.5]}', labels)).toEqual([0, 1, 0.5]);
  });

  it('reads a ranking, best first, ties sharing their places', () => {
    expect(parseGroupScores('RANKING: 2 > 3 > 1', labels)).toEqual([0, 1, 0.5]);
    expect(parseGroupScores('RANKING: #2 > #1 = #3', labels)).toEqual([0.25, 1, 0.25]);
  });

  it('refuses replies that miss or repeat an attempt, or score out of range', () => {
    expect(parseGroupScores('{"scores": {"1": 0.5, "2": 0.5}}', labels)).toBeUndefined();
    expect(parseGroupScores('{"scores": {"1": 0.5, "2": 0.5, "3": 2}}', labels)).toBeUndefined();
    expect(parseGroupScores('RANKING: 1 > 1 > 2', labels)).toBeUndefined();
    expect(parseGroupScores('RANKING: 1 > 2', labels)).toBeUndefined();
  });
});

describe('LlmJudge', () => {
  const episode = makeEpisode({
    turns: [makeTurn({ text: 'Green tests pass / the build is quiet now / ship it before noon' })],
    answer: 'haiku',
  });

  it('asks the judge with the rubric, the instruction and the transcript, and reads its score', async () => {
    const agent = new FakeJudgeAgent(() => 'It is a haiku.\nSCORE: 1');
    const judge = new LlmJudge({ agent, rubric: RUBRIC });
    expect(await judge.scoreEpisode({ task, episode, signal })).toBe(1);
    const input = agent.inputs[0]!;
    expect(input.tools).toEqual([]);
    expect(input.messages[0]).toMatchObject({ role: 'system' });
    expect(input.messages[0]!.content).toContain(RUBRIC);
    expect(lastUser(input)).toContain('Write a haiku about tests.');
    expect(lastUser(input)).toContain('ship it before noon');
    expect(lastUser(input)).toContain('# Submitted answer\nhaiku');
  });

  it('asks again after an unparseable reply (scripted judge)', async () => {
    const agent = new ScriptedAgent(
      { turns: [{ text: 'Nice poem!' }, { text: 'SCORE: 0.75' }] },
      'scripted-judge',
    );
    const judge = new LlmJudge({ agent, rubric: RUBRIC });
    expect(await judge.scoreEpisode({ task, episode, signal })).toBe(0.75);
    expect(judge.calls).toBe(2);
    const retry = agent.calls[1]!;
    expect(retry.messages.at(-2)).toEqual({ role: 'assistant', content: 'Nice poem!' });
    expect(lastUserOf(retry.messages)).toMatch(/SCORE: <number between 0 and 1>/);
  });

  it('opens the judge for each judgement as an episode of its own, and closes it', async () => {
    const agent = new FakeJudgeAgent((input) => (input.turnIndex === 0 ? 'Hmm.' : 'SCORE: 1'));
    const judge = new LlmJudge({ agent, rubric: RUBRIC });
    await judge.scoreEpisode({ task, episode, signal });
    await judge.scoreEpisode({ task, episode: { ...episode, answer: 'other' }, signal });
    expect(agent.episodes).toHaveLength(2);
    expect(agent.episodes[0]).toMatchObject({ task, runId: 'judge', seed: 0, signal });
    expect(agent.episodes[0]!.sessions.size).toBe(0);
    expect(agent.episodes[0]!.sandbox).toBeUndefined();
    expect(agent.episodes[0]!.episodeId).toMatch(/^judge:suite\/task:[0-9a-f]{16}$/);
    expect(agent.episodes[1]!.episodeId).not.toBe(agent.episodes[0]!.episodeId);
    // Each judgement asked twice (an unreadable reply, then a score) within its one session.
    expect(agent.inputs.map((input) => input.turnIndex)).toEqual([0, 1, 0, 1]);
    expect(agent.sessionsClosed).toBe(2);
  });

  it('closes the judge session when the judgement fails', async () => {
    const agent = new FakeJudgeAgent(() => {
      throw new Error('HTTP 500');
    });
    await expect(
      new LlmJudge({ agent, rubric: RUBRIC }).scoreEpisode({ task, episode, signal }),
    ).rejects.toThrow();
    const unreadable = new FakeJudgeAgent(() => 'no idea');
    await expect(
      new LlmJudge({ agent: unreadable, rubric: RUBRIC, retries: 0 }).scoreEpisode({ task, episode, signal }),
    ).rejects.toMatchObject({ code: 'MODEL_CALL_FAILED' });
    expect([agent.sessionsClosed, unreadable.sessionsClosed]).toEqual([1, 1]);
  });

  it('wraps a judge that fails to open as MODEL_CALL_FAILED', async () => {
    const agent = new FakeJudgeAgent(() => 'SCORE: 1');
    agent.open = () => {
      throw new Error('no such model');
    };
    await expect(
      new LlmJudge({ agent, rubric: RUBRIC }).scoreEpisode({ task, episode, signal }),
    ).rejects.toMatchObject({ code: 'MODEL_CALL_FAILED', message: expect.stringContaining('no such model') });
  });

  it('fails with MODEL_CALL_FAILED after its retries, keeping the replies', async () => {
    const agent = new FakeJudgeAgent(() => 'no idea');
    const judge = new LlmJudge({ agent, rubric: RUBRIC, retries: 1 });
    const error: unknown = await judge
      .scoreEpisode({ task, episode, signal })
      .catch((caught: unknown) => caught);
    expect(isPaddockError(error, 'MODEL_CALL_FAILED')).toBe(true);
    expect((error as { details: { replies: string[] } }).details.replies).toEqual(['no idea', 'no idea']);
    expect(agent.inputs).toHaveLength(2);
  });

  it('wraps a failing judge backend as MODEL_CALL_FAILED', async () => {
    const agent = new FakeJudgeAgent(() => {
      throw new Error('HTTP 500');
    });
    await expect(
      new LlmJudge({ agent, rubric: RUBRIC }).scoreEpisode({ task, episode, signal }),
    ).rejects.toMatchObject({
      code: 'MODEL_CALL_FAILED',
      message: expect.stringContaining('HTTP 500'),
    });
  });

  it('scores the same content once (in flight and afterwards)', async () => {
    const agent = new FakeJudgeAgent(() => 'SCORE: 0.5');
    const judge = new LlmJudge({ agent, rubric: RUBRIC });
    const scores = await Promise.all([1, 2, 3].map(() => judge.scoreEpisode({ task, episode, signal })));
    expect(scores).toEqual([0.5, 0.5, 0.5]);
    expect(await judge.scoreEpisode({ task, episode: { ...episode }, signal })).toBe(0.5);
    expect(agent.inputs).toHaveLength(1);
    await judge.scoreEpisode({ task, episode: { ...episode, answer: 'other' }, signal });
    expect(agent.inputs).toHaveLength(2);
  });

  it('keys the cache by rubric and judge model too', async () => {
    const cache = JudgeCache.memory();
    const first = new FakeJudgeAgent(() => 'SCORE: 0.5', 'judge-a');
    const second = new FakeJudgeAgent(() => 'SCORE: 0.5', 'judge-b');
    await new LlmJudge({ agent: first, rubric: RUBRIC, cache }).scoreEpisode({ task, episode, signal });
    await new LlmJudge({ agent: first, rubric: `${RUBRIC} Be harsh.`, cache }).scoreEpisode({
      task,
      episode,
      signal,
    });
    await new LlmJudge({ agent: second, rubric: RUBRIC, cache }).scoreEpisode({ task, episode, signal });
    await new LlmJudge({ agent: first, rubric: RUBRIC, cache }).scoreEpisode({ task, episode, signal });
    expect([first.inputs.length, second.inputs.length, cache.size]).toEqual([2, 1, 3]);
  });

  it('persists judgements to a JSONL file so that re-scoring is free', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'paddock-judge-')), 'cache', 'judge-cache.jsonl');
    const agent = new FakeJudgeAgent(() => 'SCORE: 0.9');
    const judge = new LlmJudge({ agent, rubric: RUBRIC, cache: await JudgeCache.open(file) });
    await judge.scoreEpisode({ task, episode, signal });
    const line = JSON.parse(readFileSync(file, 'utf8').trim()) as Record<string, unknown>;
    expect(line).toMatchObject({
      value: 0.9,
      model: 'fake-judge',
      key: expect.stringMatching(/^[0-9a-f]{64}$/),
    });

    const again = new FakeJudgeAgent(() => 'SCORE: 0.1');
    const reopened = new LlmJudge({ agent: again, rubric: RUBRIC, cache: await JudgeCache.open(file) });
    expect(await reopened.scoreEpisode({ task, episode, signal })).toBe(0.9);
    expect(again.inputs).toHaveLength(0);
  });

  it('scores a turn in the context of the turns before it', async () => {
    const agent = new FakeJudgeAgent(() => 'SCORE: 0.3');
    const fn = judgeTurnReward(new LlmJudge({ agent, rubric: RUBRIC }), { weight: 0.5 });
    const value = await scoreOneTurn(
      fn,
      makeTurn({ text: 'second try' }),
      [makeTurn({ text: 'first try' })],
      { task },
    );
    expect(value).toBe(0.3);
    expect(lastUser(agent.inputs[0]!)).toContain('Write a haiku about tests.');
    expect(lastUser(agent.inputs[0]!)).toMatch(/first try[\s\S]*# Turn to grade\nsecond try/);
    expect([fn.name, fn.weight]).toEqual(['judge', 0.5]);
  });

  it('is a trajectory reward', async () => {
    const fn = judgeTrajectoryReward(
      new LlmJudge({ agent: new FakeJudgeAgent(() => 'SCORE: 6', 'j'), rubric: RUBRIC, scale: [0, 10] }),
      {
        name: 'style',
        weight: 0.2,
      },
    );
    expect(await fn.score({ task, episode, signal })).toBeCloseTo(0.6, 12);
    expect([fn.name, fn.weight]).toEqual(['style', 0.2]);
  });
});

function lastUserOf(messages: readonly { role: string; content: string | null }[]): string {
  return [...messages].reverse().find((message) => message.role === 'user')?.content ?? '';
}

describe('group judging', () => {
  const episodes = ['alpha attempt', 'beta attempt', 'gamma attempt', 'delta attempt'].map((text, index) =>
    makeEpisode({ episodeId: `suite/task#${index}`, turns: [makeTurn({ text })] }),
  );
  const quality: Record<string, number> = { alpha: 0.2, beta: 1, gamma: 0, delta: 0.6 };

  /** A judge that scores each attempt shown by the word in it. */
  const grader = () =>
    new FakeJudgeAgent((input) => {
      const shown = [
        ...lastUser(input).matchAll(/# Attempt (\d+)\n[\s\S]*?(alpha|beta|gamma|delta) attempt/g),
      ];
      const scores = Object.fromEntries(shown.map((match) => [match[1]!, quality[match[2]!]!]));
      return `Comparing.\n${JSON.stringify({ scores })}`;
    });

  it('ranks all episodes of a group in one call and maps scores back to them', async () => {
    const agent = grader();
    const judge = new LlmJudge({ agent, rubric: RUBRIC });
    expect(await judge.scoreGroup({ task, episodes, signal })).toEqual([0.2, 1, 0, 0.6]);
    expect(agent.inputs).toHaveLength(1);
    const prompt = lastUser(agent.inputs[0]!);
    expect(prompt.match(/# Attempt \d+/g)).toHaveLength(4);
  });

  it('shows the attempts shuffled by content, whatever order they come in (a cache hit)', async () => {
    const agent = grader();
    const judge = new LlmJudge({ agent, rubric: RUBRIC });
    await judge.scoreGroup({ task, episodes, signal });
    const shown = [...lastUser(agent.inputs[0]!).matchAll(/(alpha|beta|gamma|delta) attempt/g)].map(
      (m) => m[1],
    );
    expect(shown).not.toEqual(['alpha', 'beta', 'gamma', 'delta']);
    expect(await judge.scoreGroup({ task, episodes: [...episodes].reverse(), signal })).toEqual([
      0.6, 0, 1, 0.2,
    ]);
    expect(agent.inputs).toHaveLength(1);
  });

  it('does not call the judge for a group of one', async () => {
    const agent = grader();
    expect(
      await new LlmJudge({ agent, rubric: RUBRIC }).scoreGroup({ task, episodes: [episodes[0]!], signal }),
    ).toEqual([0.5]);
    expect(agent.inputs).toHaveLength(0);
  });

  it('adds the group component to each episode and recombines the totals', async () => {
    const withVerifier: EpisodeRecord[] = episodes.map((episode) => ({
      ...episode,
      reward: {
        total: 1,
        components: { verifier: { value: 1, weight: 1 } },
        constraints: { tokens: { value: 10 } },
      },
    }));
    withVerifier[2] = { ...withVerifier[2]!, status: 'infra-error' };
    const fn = judgeGroupReward(new LlmJudge({ agent: grader(), rubric: RUBRIC }), { weight: 0.5 });
    const scored = await applyGroupRewards(task, withVerifier, [fn]);
    expect(scored.map((episode) => episode.reward.total)).toEqual([1.1, 1.5, 1, 1.3]);
    expect(scored[0]!.reward.components.judge).toEqual({ value: 0.2, weight: 0.5 });
    expect(scored[2]!.reward.components.judge).toBeUndefined();
    expect(scored[0]!.reward.constraints).toEqual({ tokens: { value: 10 } });
    expect(withVerifier[0]!.reward.components.judge).toBeUndefined();
  });

  it('assigns the returns again from the new totals, and refuses a value count that does not match', async () => {
    const finished = episodes.map((episode) => ({
      ...episode,
      turns: [makeTurn({ index: 0 }), makeTurn({ index: 1 })],
      reward: { total: 0, components: {}, constraints: {} },
    }));
    const ranks = { name: 'rank', weight: 1, score: async () => [1, 0, 0, 0.5] };
    const scored = await applyGroupRewards(task, finished, [ranks], {
      assignReturns: (episode) => [episode.reward.total, episode.reward.total / 2],
    });
    expect(scored.map((episode) => episode.turns.map((turn) => turn.return))).toEqual([
      [1, 0.5],
      [0, 0],
      [0, 0],
      [0.5, 0.25],
    ]);
    expect(finished[0]!.turns[0]!.return).toBeUndefined();
    const short = { name: 'short', weight: 1, score: async () => [1] };
    await expect(applyGroupRewards(task, finished, [short])).rejects.toMatchObject({
      code: 'VERIFIER_FAILED',
      message: expect.stringContaining('gave 1 values for 4 episodes'),
    });
  });
});
