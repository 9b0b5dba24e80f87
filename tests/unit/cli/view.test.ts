/**
 * `paddock view` in the terminal and as JSON: the run list, a run's table and page of
 * episodes with tokens and cost, and a transcript trimmed for a terminal.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderEpisode, viewRun, viewRunJson } from '../../../cli/view.ts';
import { RunStore, type EpisodeRecord } from '../../../harness/index.ts';

describe('renderEpisode', () => {
  it('shows each component and, under the reward line, why a component scored what it did', () => {
    const episode = {
      episodeId: 'calc#0',
      taskId: 'calc',
      agent: 'oracle',
      attempt: 1,
      status: 'completed',
      previousAttempts: [],
      messages: [],
      turns: [],
      reward: {
        total: 0.5,
        components: {
          'mcp:ledger': { value: 0, weight: 1, note: '$.records.tax selected nothing' },
          verifier: { value: 1, weight: 1 },
        },
        constraints: {},
      },
    } as unknown as EpisodeRecord;
    const lines = renderEpisode(episode).split('\n');
    expect(lines[2]).toBe('reward 0.500  mcp:ledger=0×1 verifier=1×1');
    expect(lines[3]).toBe('  mcp:ledger: $.records.tax selected nothing');
  });

  it("shows each turn's reward components, its reward and its return, and the constraints", () => {
    const turn = (index: number, page: number, value: number) => ({
      index,
      rewards: { page, invalid_call: 0 },
      reward: page * 0.5,
      return: value,
    });
    const episode = {
      episodeId: 'web#0',
      taskId: 'web',
      agent: 'oracle',
      attempt: 1,
      status: 'completed',
      previousAttempts: [],
      messages: [],
      turns: [turn(0, 0, 1), turn(1, 1 / 3, 1), turn(2, 2 / 3, 0.667)],
      reward: {
        total: 1,
        components: { browser: { value: 1, weight: 1 } },
        constraints: { tokens: { value: 1200, limit: 20000 } },
      },
    } as unknown as EpisodeRecord;
    const lines = renderEpisode(episode).split('\n');
    expect(lines.slice(3, 8)).toEqual([
      'constraint tokens=1200 (limit 20000)',
      '  turn   page  invalid_call  reward  return',
      '     0  0.000         0.000   0.000   1.000',
      '     1  0.333         0.000   0.167   1.000',
      '     2  0.667         0.000   0.333   0.667',
    ]);
  });

  it('lists the errors of earlier attempts under the status of a re-run episode', () => {
    const episode = {
      episodeId: 'calc#0',
      taskId: 'calc',
      agent: 'oracle',
      attempt: 3,
      status: 'completed',
      previousAttempts: [
        { code: 'MODEL_UNREACHABLE', message: 'connection refused' },
        { code: 'SANDBOX_FAILED', message: 'the container vanished' },
      ],
      messages: [],
      turns: [],
      reward: { total: 1, components: { verifier: { value: 1, weight: 1 } }, constraints: {} },
    } as unknown as EpisodeRecord;
    const lines = renderEpisode(episode).split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'episode calc#0 — task calc, agent oracle, attempt 3',
      'status completed',
      '  earlier attempt 1: MODEL_UNREACHABLE: connection refused',
      '  earlier attempt 2: SANDBOX_FAILED: the container vanished',
    ]);
  });

  it("lists a multi-step episode's steps and the verifier files kept beside the run", () => {
    const episode = {
      episodeId: 'steps#0',
      taskId: 'steps',
      agent: 'oracle',
      attempt: 1,
      status: 'completed',
      previousAttempts: [],
      messages: [],
      turns: [],
      reward: { total: 1, components: { verifier: { value: 1, weight: 1 } }, constraints: {} },
      verifier: {
        reward: 1,
        scores: { reward: 1 },
        exitCode: 0,
        stdout: '',
        stderr: '',
        timedOut: false,
        durationMs: 10,
        warnings: [],
        steps: [
          {
            name: 'first',
            outcome: 'verified',
            reward: 1,
            turns: { from: 0, to: 2 },
            messages: { from: 0, to: 4 },
          },
        ],
        files: [
          {
            path: 'files/steps#0/attempt-1/verifier/ctrf.json',
            source: '/logs/verifier/ctrf.json',
            bytes: 42,
          },
        ],
        filesNotes: ['artifact /app/big.bin was cut at 10 MiB'],
      },
    } as unknown as EpisodeRecord;
    const text = renderEpisode(episode);
    expect(text).toContain('step first: verified reward 1 (turns 0–1)');
    expect(text).toContain(
      'file files/steps#0/attempt-1/verifier/ctrf.json (/logs/verifier/ctrf.json, 42 bytes)',
    );
    expect(text).toContain('files: artifact /app/big.bin was cut at 10 MiB');
  });
});

describe('viewRun and viewRunJson', () => {
  const snapshot = `- heading "Checkout" [ref=e1]\n${'- listitem "product" [ref=e2]\n'.repeat(200)}- button "Pay" [ref=e9]`;
  function record(episodeId: string, reward: number): EpisodeRecord {
    return {
      runId: 'run-1',
      episodeId,
      taskId: episodeId.split('#')[0]!,
      epoch: 0,
      seed: 1,
      attempt: 1,
      agent: 'openai:m',
      status: 'completed',
      previousAttempts: [],
      messages: [
        { role: 'user', content: 'Buy the product.' },
        { role: 'assistant', content: null, toolCalls: [{ id: 'c1', name: 'snapshot', arguments: '{}' }] },
        {
          role: 'tool',
          toolCallId: 'c1',
          name: 'snapshot',
          content: snapshot,
          images: [{ mimeType: 'image/png', dataBase64: 'A'.repeat(46_000) }],
        },
      ],
      tools: [],
      turns: [
        {
          index: 0,
          text: null,
          toolCalls: [],
          toolResults: [],
          usage: { promptTokens: 12_000, completionTokens: 300 },
          costUsd: 0.05,
          rewards: {},
          reward: 0,
          startedAt: '2026-01-01T00:00:00.000Z',
          agentMs: 1,
          toolMs: 1,
        },
      ],
      reward: { total: reward, components: { verifier: { value: reward, weight: 1 } }, constraints: {} },
      usage: { promptTokens: 12_000, completionTokens: 300 },
      stats: { toolCalls: 1, toolProblems: {}, emptyTurns: 0 },
      startedAt: '2026-01-01T00:00:00.000Z',
      endedAt: '2026-01-01T00:00:01.000Z',
      durationMs: 1000,
    } as unknown as EpisodeRecord;
  }

  async function runsDir(): Promise<string> {
    const root = mkdtempSync(join(tmpdir(), 'paddock-view-'));
    const ids = ['web/buy#0', 'web/buy#1', 'web/buy#2'];
    const store = RunStore.create(root, {
      runId: 'run-1',
      createdAt: '2026-01-01T00:00:00.000Z',
      config: { agent: 'openai:m' },
      plan: [...ids, 'web/buy#3'].map((episodeId) => ({ episodeId, taskId: 'web/buy', epoch: 0, seed: 1 })),
    });
    store.openForWrite();
    ids.forEach((id, n) => store.appendEpisode(record(id, n === 0 ? 1 : 0)));
    await store.close();
    return root;
  }

  it('lists runs with their episodes done and planned, mean reward, tokens and cost', async () => {
    const text = viewRun({ runsDir: await runsDir() });
    expect(text).toMatch(
      /^run-1 {2}openai:m {2}3\/4 episodes {2}mean reward 0\.333 {2}36\.0k in \/ 900 out, \$0\.150 {2}created 2026-01-01/,
    );
  });

  it("shows a run's table with tokens and cost, and one page of its episodes with how many there are", async () => {
    const text = viewRun({ runsDir: await runsDir(), runId: 'run-1', limit: 2 });
    expect(text).toMatch(/tokens in +tokens out +cost/);
    expect(text).toMatch(/^web\/buy#0\tcompleted reward=1\.000\t1 turns\t12\.0k in \/ 300 out, \$0\.0500$/m);
    expect(text).not.toMatch(/web\/buy#2\t/);
    expect(text).toMatch(/episodes 1–2 of 3/);
    expect(text).toMatch(/1 planned episode\(s\) not run yet/);
  });

  it('trims a long snapshot with a marker saying how much was cut, and shows images by type and size', async () => {
    const dir = await runsDir();
    const text = viewRun({ runsDir: dir, runId: 'run-1', episodeId: 'web/buy#0' });
    const cut = /\[… (\d+) characters cut; --full shows all …\]/.exec(text);
    expect(Number(cut?.[1])).toBe(snapshot.length - 800);
    expect(text).toContain('[image png 34 KB]');
    expect(text).toContain('tokens 12000 prompt + 300 completion; cost $0.0500');
    expect(text).not.toContain('AAAA');
    const full = viewRun({ runsDir: dir, runId: 'run-1', episodeId: 'web/buy#0', full: true });
    expect(full).toContain(snapshot);
    expect(full).not.toMatch(/characters cut/);
  });

  it('gives programs the run list, and a run with its summary and a page of entries without offsets', async () => {
    const dir = await runsDir();
    expect(viewRunJson({ runsDir: dir })).toEqual({
      runs: [
        expect.objectContaining({
          runId: 'run-1',
          planned: 4,
          done: 3,
          tokens: { input: 36_000, output: 900, cached: 0 },
          costUsd: expect.closeTo(0.15, 10) as number,
        }),
      ],
    });
    const run = viewRunJson({ runsDir: dir, runId: 'run-1', limit: 2 });
    expect(run).toMatchObject({ runId: 'run-1', episodes: { total: 3, offset: 0, limit: 2 } });
    const { episodes, summary } = run as Extract<typeof run, { episodes: unknown }>;
    expect(episodes.entries.map((entry) => entry.episodeId)).toEqual(['web/buy#0', 'web/buy#1']);
    expect(episodes.entries[0]).not.toHaveProperty('offset');
    expect(episodes.entries[0]).toMatchObject({
      inputTokens: 12_000,
      outputTokens: 300,
      costUsd: 0.05,
      images: 1,
    });
    expect(summary.total.usage.promptTokens).toBe(36_000);
  });

  it('answers an unknown run with RUN_NOT_FOUND naming it', async () => {
    const dir = await runsDir();
    expect(() => viewRun({ runsDir: dir, runId: 'nope' })).toThrow(
      expect.objectContaining({
        code: 'RUN_NOT_FOUND',
        message: expect.stringMatching(/no run nope/) as string,
      }),
    );
  });
});
