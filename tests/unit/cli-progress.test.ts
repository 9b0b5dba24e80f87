/**
 * Run progress on stderr (cli/progress.ts): a line per episode off a terminal, one line
 * rewritten in place on one, with done/total, rate, ETA, mean reward, tokens, cost and
 * errors. The clock is injected; the stream is a recorder of what was written.
 */
import { describe, expect, it } from 'vitest';
import type { EpisodeRecord } from '../../harness/index.ts';
import { RunProgress, formatCount, formatDuration, formatUsd } from '../../cli/progress.ts';

/** An episode record with what progress reads; `turnCosts` are the turns' costs in USD. */
function episode(
  id: string,
  fields: {
    status?: EpisodeRecord['status'];
    reward?: number;
    tokens?: [number, number];
    turnCosts?: number[];
  } = {},
): EpisodeRecord {
  const [promptTokens, completionTokens] = fields.tokens ?? [0, 0];
  return {
    episodeId: id,
    taskId: id.split('#')[0]!,
    status: fields.status ?? 'completed',
    reward: { total: fields.reward ?? 1, components: {}, constraints: {} },
    usage: { promptTokens, completionTokens },
    turns: (fields.turnCosts ?? []).map((costUsd, index) => ({ index, rewards: {}, costUsd })),
    durationMs: 2_000,
    ...(fields.status === 'infra-error'
      ? { error: { code: 'SANDBOX_START_FAILED', message: 'the engine said no', retryable: true } }
      : {}),
  } as unknown as EpisodeRecord;
}

/** A stream that keeps what is written; `tty` decides how progress draws. */
function recorder(tty: boolean, columns?: number) {
  const chunks: string[] = [];
  return {
    chunks,
    stream: { isTTY: tty, ...(columns ? { columns } : {}), write: (chunk: string) => chunks.push(chunk) },
    text: () => chunks.join(''),
    /** What was written with each "back to the line's start and clear it" shown as ⟲. */
    shown: () => chunks.join('').replaceAll('\r\x1b[2K', '⟲'),
  };
}

describe('run progress off a terminal', () => {
  it('prints one line per episode with rate, ETA, mean reward, tokens, cost and errors', () => {
    let now = 0;
    const out = recorder(false);
    const progress = new RunProgress({ stream: out.stream, now: () => now });
    progress.start(4);
    now = 60_000;
    progress.recorded(episode('s/a#0', { reward: 1, tokens: [1_200, 300], turnCosts: [0.002, 0.001] }));
    now = 120_000;
    progress.recorded(episode('s/b#0', { reward: 0, tokens: [800, 40], turnCosts: [0.0005] }));
    now = 150_000;
    progress.recorded(episode('s/c#0', { status: 'infra-error', reward: 0, tokens: [10, 0] }));
    progress.finish();
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toEqual([
      '[1/4] s/a#0 completed reward=1.000 2.0s · 1.0/min · ETA 3m00s · mean 1.000 · tokens 1.2k in / 300 out · $0.00300 · 0 errors',
      '[2/4] s/b#0 completed reward=0.000 2.0s · 1.0/min · ETA 2m00s · mean 0.500 · tokens 2.0k in / 340 out · $0.00350 · 0 errors',
      expect.stringMatching(
        /^\[3\/4\] s\/c#0 infra-error reward=0\.000 — SANDBOX_START_FAILED: the engine said no 2\.0s · 1\.2\/min · ETA 50s · mean 0\.500 · tokens 2\.0k in \/ 340 out · \$0\.00350 · 1 error$/,
      ),
    ]);
  });

  it('prints lines given to log as they are, without any control character', () => {
    const out = recorder(false);
    const progress = new RunProgress({ stream: out.stream });
    progress.start(1);
    progress.log('building image for tasks/x: step 1/2 FROM paddock/base:bookworm');
    expect(out.text()).toBe('building image for tasks/x: step 1/2 FROM paddock/base:bookworm\n');
  });
});

describe('run progress on a terminal', () => {
  it('rewrites one line in place, keeps logged lines and errors above it, and ends with a newline', () => {
    let now = 0;
    const out = recorder(true);
    const progress = new RunProgress({ stream: out.stream, now: () => now, throttleMs: 0 });
    progress.start(3);
    now = 30_000;
    progress.recorded(episode('s/a#0', { tokens: [100, 10] }));
    progress.log('paddock: warning: a disk limit is not enforced');
    now = 60_000;
    progress.recorded(episode('s/b#0', { status: 'infra-error', reward: 0 }));
    progress.finish();
    const text = out.shown();
    // Every redraw starts by going back to the line's start and clearing it.
    expect(text.startsWith('⟲[0/3] -/min · ETA - · mean - ·')).toBe(true);
    expect(text).toContain(
      '⟲[1/3] 2.0/min · ETA 1m00s · mean 1.000 · tokens 100 in / 10 out · $0 · 0 errors · last s/a#0 completed reward=1.000',
    );
    // A logged line replaces the live line, stays, and the live line is drawn again below it.
    expect(text).toContain('⟲paddock: warning: a disk limit is not enforced\n⟲[1/3]');
    // An error stays on screen as a line of its own.
    expect(text).toMatch(
      /⟲\[2\/3\] s\/b#0 infra-error reward=0\.000 — SANDBOX_START_FAILED: the engine said no 2\.0s\n/,
    );
    // The last state stays, followed by a newline.
    expect(text).toMatch(/⟲\[2\/3\] [^\n]* · 1 error · last s\/b#0 infra-error[^\n]*\n$/);
  });

  it('redraws at most once per throttle interval, and draws the latest state when the interval ends', async () => {
    let now = 0;
    const out = recorder(true);
    const progress = new RunProgress({ stream: out.stream, now: () => now, throttleMs: 50 });
    progress.start(10);
    const drawsAfterStart = out.chunks.length;
    for (let index = 0; index < 5; index++) progress.recorded(episode(`s/t${index}#0`));
    expect(out.chunks.length).toBe(drawsAfterStart); // within the interval: no redraw yet
    now = 100;
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(out.shown()).toMatch(/⟲\[5\/10\] [^⟲]* · last s\/t4#0 completed[^⟲]*$/);
    progress.finish();
  });

  it('cuts the live line to the terminal width', () => {
    const out = recorder(true, 40);
    const progress = new RunProgress({ stream: out.stream, throttleMs: 0 });
    progress.start(2);
    progress.recorded(episode('some-suite/a-task-with-a-long-name#0'));
    for (const chunk of out.chunks) expect(chunk.replace('\r\x1b[2K', '').length).toBeLessThanOrEqual(39);
    progress.finish();
  });
});

describe('progress figures', () => {
  it('formats counts, dollars and durations compactly', () => {
    expect([formatCount(950), formatCount(1_234), formatCount(12_345), formatCount(4_560_000)]).toEqual([
      '950',
      '1.2k',
      '12k',
      '4.56M',
    ]);
    expect([formatUsd(0), formatUsd(0.001234), formatUsd(4.2)]).toEqual(['$0', '$0.00123', '$4.20']);
    expect([formatDuration(45_000), formatDuration(125_000), formatDuration(3_720_000)]).toEqual([
      '45s',
      '2m05s',
      '1h02m',
    ]);
  });
});
