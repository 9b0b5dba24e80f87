/**
 * A synthetic run folder for the viewer and index benchmarks: `run.json` written by the
 * store, and `episodes.jsonl` holding records shaped like real ones — several suites and
 * tasks, every status, retried errors (a later attempt appended after an `infra-error`),
 * 1–8 turns of bash calls with tool output, rewards with components, constraints, turn
 * rewards and named verifier scores, tokens and cost, some token-exact turns and a few
 * small PNG screenshots. About 3 KB a record.
 *
 * Lines are written as the store writes them (`JSON.stringify(record)` and a newline), in
 * large batches: the store's `appendEpisode` fsyncs every record, which is right for a run
 * and far too slow for making 100,000 of them.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  RunIndex,
  RunStore,
  createRng,
  type EpisodeRecord,
  type EpisodeStatus,
  type Message,
  type PlannedEpisode,
  type Rng,
  type TurnRecord,
} from '../harness/index.ts';

/** What `writeSyntheticRun` made. */
export interface SyntheticRun {
  runId: string;
  /** The run folder (`<root>/<runId>`). */
  dir: string;
  /** Record lines written (planned episodes plus retried attempts). */
  records: number;
  /** Size of episodes.jsonl in bytes. */
  bytes: number;
}

/** Options of `writeSyntheticRun`. */
export interface SyntheticRunOptions {
  /** Planned episodes, each with one record (some with a second attempt). */
  episodes: number;
  /** Seeds every choice: the same seed writes the same bytes (timestamps included). */
  seed: number;
  /** @default `synthetic-<episodes>` */
  runId?: string;
  /**
   * Bring the run's index sidecar up to date at the end, as the store does when its writer
   * closes (`RunStore.close`); false leaves a run as a crashed writer would (its first open
   * indexes the records). @default true
   */
  index?: boolean;
}

// A 16×16 PNG (a grey square), as screenshots are stored: base64 in the tool result.
const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAKElEQVR4nGNkYPjPQApgIkn1qIZRDaMaRjWMahjVMKphVMOohsGoAQDOzQEfDmCWHgAAAABJRU5ErkJggg==';

const SUITES = ['swe', 'web', 'mcp'] as const;
const TASKS_PER_SUITE = 17;
const STATUSES: [EpisodeStatus, number][] = [
  ['completed', 0.72],
  ['limit', 0.1],
  ['truncated', 0.02],
  ['refused', 0.01],
  ['sandbox-killed', 0.01],
  ['agent-error', 0.04],
  ['infra-error', 0.1],
];
const WORDS = (
  'the build failed because a test expects the parser to accept trailing commas in arrays ' +
  'so we change the tokenizer and run the suite again until every check passes cleanly ' +
  'reading config files listing directories grep for the function and patch its callers'
).split(' ');

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

function words(rng: Rng, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(pick(rng, WORDS));
  return out.join(' ');
}

function statusOf(rng: Rng): EpisodeStatus {
  let draw = rng();
  for (const [status, share] of STATUSES) {
    if (draw < share) return status;
    draw -= share;
  }
  return 'completed';
}

/** One synthetic record of a planned episode. */
function syntheticRecord(
  runId: string,
  planned: PlannedEpisode,
  attempt: number,
  status: EpisodeStatus,
  rng: Rng,
  startMs: number,
): EpisodeRecord {
  const suite = planned.taskId.split('/')[0]!;
  const turnCount = status === 'infra-error' ? 1 : 1 + Math.floor(rng() * rng() * 6);
  const tokenExact = rng() < 0.05;
  const screenshot = suite === 'web' && rng() < 0.03;
  const messages: Message[] = [
    { role: 'system', content: 'You are a careful engineer. Use the tools; submit when done.' },
    { role: 'user', content: `Task ${planned.taskId}: ${words(rng, 25)}` },
  ];
  const turns: TurnRecord[] = [];
  let at = startMs;
  let promptTokens = 0;
  let completionTokens = 0;
  let cached = 0;
  for (let index = 0; index < turnCount; index++) {
    const text = words(rng, 4 + Math.floor(rng() * 10));
    const command = `grep -rn "${pick(rng, WORDS)}" src | head -${5 + index}`;
    const call = { id: `call_${index}`, name: 'bash', arguments: JSON.stringify({ command }) };
    const output = `${words(rng, 10 + Math.floor(rng() * 30))}\nexit code ${rng() < 0.8 ? 0 : 1}`;
    const images =
      screenshot && index === 0 ? [{ mimeType: 'image/png', dataBase64: PNG_BASE64 }] : undefined;
    const prompt = 800 + index * 350 + Math.floor(rng() * 200);
    const completion = 40 + Math.floor(rng() * 160);
    const cacheRead = index === 0 ? 0 : Math.floor(prompt * 0.8);
    promptTokens += prompt;
    completionTokens += completion;
    cached += cacheRead;
    const turnReward = suite === 'web' ? Math.round(rng() * 100) / 300 : undefined;
    turns.push({
      index,
      text,
      toolCalls: [call],
      toolResults: [
        {
          callId: call.id,
          name: 'bash',
          output,
          ...(images ? { images } : {}),
          isError: false,
          durationMs: 5 + Math.floor(rng() * 200),
        },
      ],
      finishReason: 'tool_calls',
      stopReason: 'tool-calls',
      usage: { promptTokens: prompt, completionTokens: completion, cacheReadTokens: cacheRead },
      ...(tokenExact
        ? {
            tokens: {
              promptIds: Array.from({ length: 24 }, () => Math.floor(rng() * 32_000)),
              completionIds: Array.from({ length: 12 }, () => Math.floor(rng() * 32_000)),
              completionLogprobs: Array.from({ length: 12 }, () => -Math.round(rng() * 3000) / 1000),
              logprobsMode: 'processed' as const,
            },
          }
        : {}),
      costUsd: Math.round((prompt * 0.4 + completion * 1.6) * 1e-3) / 1e3,
      rewards: turnReward === undefined ? {} : { page: turnReward },
      reward: turnReward ?? 0,
      startedAt: new Date(at).toISOString(),
      agentMs: 300 + Math.floor(rng() * 2000),
      toolMs: 5 + Math.floor(rng() * 200),
    });
    messages.push({ role: 'assistant', content: text, toolCalls: [call] });
    messages.push({
      role: 'tool',
      toolCallId: call.id,
      name: 'bash',
      content: output,
      ...(images ? { images } : {}),
    });
    at += 500 + Math.floor(rng() * 3000);
  }
  const error = status === 'infra-error' || status === 'agent-error';
  const multiScore = suite === 'swe' && planned.taskId.endsWith('1');
  const correctness = rng() < 0.6 ? 1 : 0;
  const performance = Math.round(rng() * 10) / 10;
  const verifierReward = error ? 0 : multiScore ? (correctness + performance) / 2 : rng() < 0.55 ? 1 : 0;
  const reward = status === 'sandbox-killed' ? 0 : verifierReward;
  const durationMs = at - startMs;
  return {
    runId,
    episodeId: planned.episodeId,
    taskId: planned.taskId,
    epoch: planned.epoch,
    seed: planned.seed,
    attempt,
    agent: 'openai:gpt-4.1-mini',
    status,
    ...(status === 'limit' ? { limit: pick(rng, ['turns', 'time', 'tokens'] as const) } : {}),
    ...(status === 'truncated' ? { truncation: 'length' as const } : {}),
    ...(status === 'refused' ? { refusal: 'content-filter' as const } : {}),
    ...(status === 'infra-error'
      ? {
          error: {
            code: pick(rng, ['MODEL_UNREACHABLE', 'SANDBOX_FAILED', 'SANDBOX_START_FAILED']),
            message: `the model server did not answer within 60000 ms: ${words(rng, 12)}`,
            retryable: true,
          },
        }
      : status === 'agent-error'
        ? { error: { code: 'MODEL_CALL_FAILED', message: `HTTP 400: ${words(rng, 10)}`, retryable: false } }
        : status === 'sandbox-killed'
          ? { error: { code: 'SANDBOX_KILLED', message: 'the agent ran kill -9 -1', retryable: false } }
          : {}),
    previousAttempts: [],
    messages,
    tools: [
      {
        name: 'bash',
        description: 'Runs a shell command in the sandbox.',
        inputSchema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
      },
    ],
    turns,
    ...(error
      ? {}
      : {
          verifier: {
            reward: verifierReward,
            scores: multiScore ? { correctness, performance } : { reward: verifierReward },
            exitCode: verifierReward >= 1 ? 0 : 1,
            stdout: `collected 12 items\n${words(rng, 20)}\n${verifierReward >= 1 ? '12 passed' : '3 failed, 9 passed'}`,
            stderr: '',
            timedOut: false,
            durationMs: 800 + Math.floor(rng() * 4000),
            warnings: [],
          },
        }),
    reward: {
      total: reward,
      components: error ? {} : { verifier: { value: reward, weight: 1 } },
      constraints: error ? {} : { tokens: { value: promptTokens + completionTokens, limit: 200_000 } },
    },
    usage: { promptTokens, completionTokens, cacheReadTokens: cached },
    stats: {
      toolCalls: turnCount,
      toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
      emptyTurns: 0,
    },
    startedAt: new Date(startMs).toISOString(),
    endedAt: new Date(at).toISOString(),
    durationMs,
  };
}

/**
 * Writes a synthetic run of `episodes` planned episodes into `root` (created when absent):
 * its manifest through `RunStore.create`, its records as the store writes them, and (unless
 * `index: false`) its index sidecar, as a store's writer leaves it when it closes. About 10%
 * of the episodes end in `infra-error`; half of those have a second attempt appended at the
 * end of the file, as `resume --retry-errors` does.
 */
export async function writeSyntheticRun(root: string, options: SyntheticRunOptions): Promise<SyntheticRun> {
  const rng = createRng(options.seed);
  const runId = options.runId ?? `synthetic-${options.episodes}`;
  const tasks = SUITES.flatMap((suite) =>
    Array.from({ length: TASKS_PER_SUITE }, (_, n) => `${suite}/task-${String(n).padStart(2, '0')}`),
  );
  const epochs = Math.max(1, Math.ceil(options.episodes / tasks.length));
  const plan: PlannedEpisode[] = [];
  for (let epoch = 0; epoch < epochs && plan.length < options.episodes; epoch++) {
    for (const taskId of tasks) {
      if (plan.length >= options.episodes) break;
      plan.push({
        episodeId: `${taskId}#${epoch}`,
        taskId,
        epoch,
        seed: options.seed * 1_000_003 + plan.length,
      });
    }
  }
  const createdAt = new Date(Date.UTC(2026, 11, 1));
  const store = RunStore.create(root, {
    runId,
    createdAt: createdAt.toISOString(),
    config: { agent: 'openai:gpt-4.1-mini', tasks: ['tasks/synthetic'], synthetic: true },
    plan,
  });
  const fd = openSync(join(store.dir, 'episodes.jsonl'), 'w');
  let bytes = 0;
  let records = 0;
  let batch: string[] = [];
  let batchLength = 0;
  const flush = (): void => {
    const data = Buffer.from(batch.join(''));
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    bytes += data.length;
    batch = [];
    batchLength = 0;
  };
  const write = (record: EpisodeRecord): void => {
    const line = `${JSON.stringify(record)}\n`;
    batch.push(line);
    batchLength += line.length;
    records++;
    if (batchLength > 4 << 20) flush();
  };
  try {
    let clock = createdAt.getTime();
    const retried: { planned: PlannedEpisode; first: EpisodeRecord }[] = [];
    for (const planned of plan) {
      const status = statusOf(rng);
      const first = syntheticRecord(runId, planned, 1, status, rng, clock);
      write(first);
      clock += 1_000 + Math.floor(rng() * 2_000);
      if (status === 'infra-error' && rng() < 0.5) retried.push({ planned, first });
    }
    for (const { planned, first } of retried) {
      const status = statusOf(rng);
      const record = syntheticRecord(
        runId,
        planned,
        2,
        status === 'infra-error' ? 'completed' : status,
        rng,
        clock,
      );
      record.previousAttempts = first.error ? [{ code: first.error.code, message: first.error.message }] : [];
      write(record);
      clock += 1_000 + Math.floor(rng() * 2_000);
    }
    flush();
  } finally {
    closeSync(fd);
  }
  if (options.index !== false) RunIndex.open(store.dir).close();
  return { runId, dir: store.dir, records, bytes };
}
