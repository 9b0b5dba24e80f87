import { describe, expect, it } from 'vitest';
import type { ExecResult } from '../../../harness/index.ts';
import {
  ProgressReward,
  jsonNumber,
  lastNumber,
  parseProgress,
  passedFraction,
} from '../../../rewards/index.ts';
import { MemorySandbox } from '../../fakes/memory-sandbox.ts';
import { makeTurn } from '../../fixtures/rewards/records.ts';
import { makeEpisodeContext, scoreTurns } from '../../fixtures/rewards/turn-reward.ts';

describe('passedFraction', () => {
  it.each([
    ['3 passed in 0.12s', 1],
    ['3 passed, 1 failed in 0.12s', 0.75],
    ['1 failed, 1 passed, 2 errors in 1.0s', 0.25],
    ['===== 2 failed, 2 passed, 1 skipped, 3 warnings in 0.5s =====', 0.5],
    ['2 failed in 0.1s', 0],
    ['no tests ran in 0.01s', 0],
    ['collected 4 items\n\n....\n4 passed in 0.02s\n', 1],
  ])('reads %j as %d', (output, value) => {
    expect(passedFraction(output)).toBe(value);
  });

  it('uses the last summary line', () => {
    expect(passedFraction('1 passed, 1 failed in 0.1s\nrerun:\n2 passed in 0.1s')).toBe(1);
  });

  it('is undefined without a summary', () => {
    expect(passedFraction('bash: pytest: command not found')).toBeUndefined();
  });
});

describe('parseProgress', () => {
  it('reads the last number', () => {
    expect(lastNumber('step 3 of 4: 0.75')).toBe(0.75);
    expect(parseProgress('progress 0.4\n', 'number')).toBe(0.4);
  });

  it('reads a dotted key of a JSON object', () => {
    expect(jsonNumber('{"tests": {"fraction": 0.5}}', 'tests.fraction')).toBe(0.5);
    expect(parseProgress('log line\n{"done": 0.25}\n', 'json:done')).toBe(0.25);
    expect(parseProgress('{"ok": true}', 'json:ok')).toBe(1);
    expect(parseProgress('{"done": "a lot"}', 'json:done')).toBeUndefined();
  });

  it('clamps values into [0, 1]', () => {
    expect(parseProgress('1000', 'number')).toBe(1);
    expect(parseProgress('-5', 'number')).toBe(0);
  });

  it('is undefined for output it cannot read', () => {
    expect(parseProgress('nothing here', 'number')).toBeUndefined();
    expect(parseProgress('not json', 'json:x')).toBeUndefined();
  });
});

/** A sandbox whose progress command prints the next value of `outputs`. */
function sandboxPrinting(outputs: (Partial<ExecResult> | string)[]): MemorySandbox {
  return new MemorySandbox('s', () => {
    const next = outputs.shift() ?? '';
    return typeof next === 'string' ? { stdout: next } : next;
  });
}

describe('ProgressReward', () => {
  const signal = new AbortController().signal;
  const options = {
    command: 'python3 -m pytest -q tests/visible | tail -1',
    parse: 'passed_fraction' as const,
  };

  /** Opens `reward` for an episode in `sandbox` and scores `turns` turns. */
  function play(reward: ProgressReward, sandbox: MemorySandbox, turns: number): Promise<number[]> {
    const records = Array.from({ length: turns }, (_, index) => makeTurn({ index }));
    return scoreTurns(reward, records, { sandbox, signal });
  }

  it('rewards the change of progress, measuring the start before turn 0', async () => {
    const sandbox = sandboxPrinting([
      '1 passed, 3 failed',
      '2 passed, 2 failed',
      '1 passed, 3 failed',
      '4 passed',
    ]);
    const values = await play(new ProgressReward(options), sandbox, 3);
    expect(values).toEqual([0.25, -0.25, 0.75]);
    // Potential-based: the rewards sum to Φ(end) − Φ(start).
    expect(values.reduce((a, b) => a + b, 0)).toBe(0.75);
  });

  it('measures the start when opened, before any turn', async () => {
    const sandbox = sandboxPrinting(['0.25', '0.5']);
    const reward = new ProgressReward({ command: 'cat p', parse: 'number' });
    const opened = await reward.open(makeEpisodeContext({ sandbox, signal }));
    expect(sandbox.commands).toHaveLength(1);
    expect(await opened.score({ turn: makeTurn(), previousTurns: [], signal })).toBe(0.25);
  });

  it('runs the command as root in the sandbox with a timeout', async () => {
    const sandbox = sandboxPrinting(['0']);
    await new ProgressReward({ ...options, timeoutMs: 5_000, cwd: '/app' }).open(
      makeEpisodeContext({ sandbox, signal }),
    );
    expect(sandbox.commands).toEqual([
      {
        command: options.command,
        options: expect.objectContaining({ user: 'root', timeoutMs: 5_000, cwd: '/app', signal }),
      },
    ]);
  });

  it('takes `initial` as the start when the start reads nothing', async () => {
    const sandbox = sandboxPrinting(['', '1 passed, 1 failed', '2 passed']);
    expect(await play(new ProgressReward(options), sandbox, 2)).toEqual([0.5, 0.5]);
    const other = sandboxPrinting(['garbage', '1 passed, 1 failed']);
    expect(await play(new ProgressReward({ ...options, initial: 0.5 }), other, 1)).toEqual([0]);
    const slow = sandboxPrinting([
      { stdout: '4 passed', timedOut: true, exitCode: 137 },
      '1 passed, 1 failed',
    ]);
    expect(await play(new ProgressReward({ ...options, initial: 0.25 }), slow, 1)).toEqual([0.25]);
  });

  it('measures 0 when the command times out or prints nothing readable', async () => {
    const sandbox = sandboxPrinting([
      '1 passed',
      { stdout: '1 passed', timedOut: true, exitCode: 137 },
      'garbage',
    ]);
    expect(await play(new ProgressReward(options), sandbox, 2)).toEqual([-1, 0]);
  });

  it('keeps the potential of each episode apart (concurrent episodes)', async () => {
    const reward = new ProgressReward({ command: 'cat p', parse: 'number' });
    const a = await reward.open(
      makeEpisodeContext({ episodeId: 'a', sandbox: sandboxPrinting(['0.1', '0.5']) }),
    );
    const b = await reward.open(
      makeEpisodeContext({ episodeId: 'b', sandbox: sandboxPrinting(['0.7', '0.8']) }),
    );
    const turn = makeTurn();
    expect(await b.score({ turn, previousTurns: [], signal })).toBeCloseTo(0.1, 12);
    expect(await a.score({ turn, previousTurns: [], signal })).toBeCloseTo(0.4, 12);
  });

  it('scores 0 without a sandbox', async () => {
    expect(await scoreTurns(new ProgressReward(options), [makeTurn(), makeTurn({ index: 1 })])).toEqual([
      0, 0,
    ]);
    expect(new ProgressReward(options).name).toBe('progress');
  });
});
