/**
 * Benchmark of the model-backed agents against a loopback OpenAI-compatible server.
 *
 * (a) Per-turn overhead of `OpenAIAgent.act` (request building, fetch, zod parsing,
 *     token-exact extraction) next to a raw `fetch` of the same request body to the same
 *     server answering at once (fetch with its defaults, as a user would write it): p50 /
 *     p99 of each, and the difference of the p50s. Target: overhead ≤ 0.2 ms.
 * (b) 64 concurrent episodes (`runEpisodes`, concurrency 64, tasks with no environment)
 *     against the server with 200 ms simulated latency: turns per second against the
 *     ideal 64 / 0.2 s = 320/s, and a check that nothing was lost.
 *
 * The server runs in a child process (this file with `--serve`), as a real model server
 * would, so that its own CPU time does not count against the agent's event loop.
 *
 * Run: `node --import tsx bench/model-agent.ts`. Prints figures and writes
 * bench/results/model-agent.json; asserts nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { OpenAIAgent } from '../agents/openai/index.ts';
import { runEpisodes, type Message, type ToolSpec } from '../harness/index.ts';
import { openFor, type TurnInput } from '../tests/fakes/agent-session.ts';
import { chatCompletion, startOpenAIServer } from '../tests/fakes/model-servers/openai.ts';
import type { Responder } from '../tests/fakes/model-servers/scripted-server.ts';
import { fakeTask, mathTools } from '../tests/fakes/model-servers/tasks.ts';
import { ms, percentile, writeResults } from './stats.ts';

const CALLS = 400;
const WARMUP = 50;
const EPISODES = 64;
const TURNS_PER_EPISODE = 5;
const LATENCY_MS = 200;
const REPEATS = 3;

type Mode = 'plain' | 'exact' | 'episodes';

const tools: ToolSpec[] = ['bash', 'read_file', 'write_file', 'edit_file', 'submit'].map((name) => ({
  name,
  description: `The ${name} tool.`,
  inputSchema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
}));

/** A mid-sized conversation: 3 earlier turns with tool results. */
function conversation(): Message[] {
  const messages: Message[] = [
    { role: 'user', content: 'Fix the failing test in the repository. '.repeat(20) },
  ];
  for (let turn = 0; turn < 3; turn++) {
    messages.push({
      role: 'assistant',
      content: `Step ${turn}: looking around.`,
      toolCalls: [
        { id: `c${turn}`, name: 'bash', arguments: JSON.stringify({ command: 'ls -la && cat README' }) },
      ],
    });
    messages.push({ role: 'tool', toolCallId: `c${turn}`, name: 'bash', content: 'file.txt\n'.repeat(100) });
  }
  return messages;
}

/** The server's answers in each mode. */
function responder(mode: Mode): Responder {
  if (mode !== 'episodes') {
    const completionIds = Array.from({ length: 500 }, (_, i) => 1000 + i);
    const json = chatCompletion({
      text: 'Running the tests now.',
      toolCalls: [
        { id: 'x1', name: 'bash', arguments: { command: 'npm test' } },
        { id: 'x2', name: 'read_file', arguments: { command: 'src/index.ts' } },
      ],
      usage: { prompt: 1500, completion: 500 },
      ...(mode === 'exact'
        ? {
            tokens: {
              promptIds: Array.from({ length: 1500 }, (_, i) => i),
              completionIds,
              logprobs: completionIds.map((id) => -1 / id),
            },
          }
        : {}),
    });
    return () => ({ json });
  }
  // Each episode: echo calls, then a submit whose answer is the marker in its instruction.
  return (request) => {
    const messages = (request.body as { messages: { role: string; content: string }[] }).messages;
    const done = messages.filter((m) => m.role === 'assistant').length;
    const marker = /\[([^\]]+)\]/.exec(messages.find((m) => m.role === 'user')?.content ?? '')?.[1] ?? '?';
    const call =
      done + 1 < TURNS_PER_EPISODE
        ? { name: 'echo', arguments: { text: `${marker} turn ${done}` } }
        : { name: 'submit', arguments: { answer: marker } };
    return { json: chatCompletion({ toolCalls: [call], usage: { prompt: 100, completion: 10 } }) };
  };
}

/** Child mode: serve until stdin closes, printing the base URL. */
async function serve(mode: Mode, latencyMs: number): Promise<void> {
  const server = await startOpenAIServer(responder(mode), { latencyMs });
  process.stdout.write(`${JSON.stringify({ baseUrl: server.baseUrl })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    void server.close().then(() => process.exit(0));
  });
}

/** Starts the loopback server in a child process. */
async function startServer(
  mode: Mode,
  latencyMs: number,
): Promise<{ baseUrl: string; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [...process.execArgv, import.meta.filename, '--serve', mode, String(latencyMs)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the server process exited (${code})`)));
  });
  const { baseUrl } = JSON.parse(first) as { baseUrl: string };
  return {
    baseUrl,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin!.end();
      }),
  };
}

async function overhead(mode: 'plain' | 'exact'): Promise<Record<string, number>> {
  const server = await startServer(mode, 0);
  const onExit: (() => unknown)[] = [];
  try {
    const agent = new OpenAIAgent({
      model: 'bench',
      baseUrl: server.baseUrl,
      tokenExact: mode === 'exact',
      env: {},
    });
    const input: TurnInput = {
      task: fakeTask(),
      episodeId: 'bench',
      messages: conversation(),
      tools,
      turnIndex: 3,
      seed: 1,
    };
    const signal = new AbortController().signal;
    // One session, as an episode has: the overhead of a turn, not of opening an episode.
    const session = await openFor(agent, input);
    onExit.push(() => session.close?.());
    const { episodeId: _episodeId, seed: _seed, ...turn } = input;
    const url = `${server.baseUrl}/chat/completions`;
    const raw = async (): Promise<void> => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(agent.requestBody(input)),
      });
      await response.json();
    };
    const agentTimes: number[] = [];
    const rawTimes: number[] = [];
    for (let i = 0; i < WARMUP + CALLS; i++) {
      // Interleaved, so that both see the same machine state.
      let started = performance.now();
      await session.act(turn, { signal });
      const a = performance.now() - started;
      started = performance.now();
      await raw();
      const r = performance.now() - started;
      if (i >= WARMUP) {
        agentTimes.push(a);
        rawTimes.push(r);
      }
    }
    return {
      agentP50Ms: percentile(agentTimes, 50),
      agentP99Ms: percentile(agentTimes, 99),
      rawFetchP50Ms: percentile(rawTimes, 50),
      rawFetchP99Ms: percentile(rawTimes, 99),
      overheadP50Ms: percentile(agentTimes, 50) - percentile(rawTimes, 50),
      serverDelayMs: 0,
    };
  } finally {
    for (const close of onExit) await close();
    await server.stop();
  }
}

interface ConcurrentRun {
  turnsPerSecond: number;
  wallMs: number;
  /** Episodes not completed as scripted, plus turns missing. */
  lost: number;
}

const median = (runs: ConcurrentRun[]): ConcurrentRun =>
  [...runs].sort((a, b) => a.turnsPerSecond - b.turnsPerSecond)[Math.floor(runs.length / 2)]!;

async function concurrentEpisodes(): Promise<Record<string, unknown>> {
  const tasks = Array.from({ length: EPISODES }, (_, i) =>
    fakeTask(
      `bench/t${i}`,
      { maxTurns: TURNS_PER_EPISODE + 2 },
      { instruction: `Echo, then submit [bench/t${i}].` },
    ),
  );
  const server = await startServer('episodes', LATENCY_MS);
  const episodeRuns: ConcurrentRun[] = [];
  const fetchRuns: ConcurrentRun[] = [];
  try {
    const agent = new OpenAIAgent({ model: 'bench', baseUrl: server.baseUrl, env: {} });
    for (let repeat = 0; repeat <= REPEATS; repeat++) {
      const started = performance.now();
      const episodes = await runEpisodes({
        runId: `bench-${repeat}`,
        tasks,
        agent,
        toolProviders: [mathTools],
        concurrency: EPISODES,
      });
      const wallMs = performance.now() - started;
      const turns = episodes.reduce((sum, episode) => sum + episode.turns.length, 0);
      const good = episodes.filter(
        (episode) =>
          episode.status === 'completed' &&
          episode.turns.length === TURNS_PER_EPISODE &&
          episode.answer === episode.taskId &&
          episode.stats.toolProblems['tool-error'] + episode.stats.toolProblems['unknown-tool'] === 0,
      ).length;
      // The first run warms up (JIT, connections) and is not counted.
      if (repeat > 0) {
        episodeRuns.push({
          turnsPerSecond: turns / (wallMs / 1000),
          wallMs,
          lost: EPISODES - good + (EPISODES * TURNS_PER_EPISODE - turns),
        });
      }
    }
    // Baseline: the same number of sequential request chains with raw fetch, no harness.
    const url = `${server.baseUrl}/chat/completions`;
    for (let repeat = 0; repeat <= REPEATS; repeat++) {
      const started = performance.now();
      let turns = 0;
      await Promise.all(
        tasks.map(async (task) => {
          const messages: unknown[] = [{ role: 'user', content: task.instruction }];
          for (let turn = 0; turn < TURNS_PER_EPISODE; turn++) {
            const response = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ model: 'bench', messages }),
            });
            const body = (await response.json()) as { choices: { message: unknown }[] };
            messages.push(body.choices[0]!.message);
            turns++;
          }
        }),
      );
      const wallMs = performance.now() - started;
      if (repeat > 0) {
        fetchRuns.push({
          turnsPerSecond: turns / (wallMs / 1000),
          wallMs,
          lost: EPISODES * TURNS_PER_EPISODE - turns,
        });
      }
    }
  } finally {
    await server.stop();
  }
  const ideal = EPISODES / (LATENCY_MS / 1000);
  const agentMedian = median(episodeRuns);
  const fetchMedian = median(fetchRuns);
  return {
    episodes: EPISODES,
    turnsPerEpisode: TURNS_PER_EPISODE,
    latencyMs: LATENCY_MS,
    idealTurnsPerSecond: ideal,
    idealWallMs: TURNS_PER_EPISODE * LATENCY_MS,
    episodesTurnsPerSecond: agentMedian.turnsPerSecond,
    episodesWallMs: agentMedian.wallMs,
    episodesEfficiency: agentMedian.turnsPerSecond / ideal,
    rawFetchTurnsPerSecond: fetchMedian.turnsPerSecond,
    rawFetchWallMs: fetchMedian.wallMs,
    lost: episodeRuns.reduce((sum, run) => sum + run.lost, 0),
    episodeRuns,
    rawFetchRuns: fetchRuns,
  };
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3] as Mode, Number(process.argv[4] ?? 0));
} else {
  const plain = await overhead('plain');
  const exact = await overhead('exact');
  const concurrent = await concurrentEpisodes();

  console.log('model-agent benchmark (loopback OpenAI-compatible server in a child process)\n');
  console.log(`(a) per-turn overhead, ${CALLS} calls after ${WARMUP} warm-up, the server answering at once`);
  for (const [name, figures] of [
    ['plain turn', plain],
    ['token-exact turn (1500 prompt + 500 completion ids, logprobs)', exact],
  ] as const) {
    console.log(`  ${name}`);
    console.log(`    OpenAIAgent.act  p50 ${ms(figures.agentP50Ms!)}  p99 ${ms(figures.agentP99Ms!)}`);
    console.log(`    raw fetch        p50 ${ms(figures.rawFetchP50Ms!)}  p99 ${ms(figures.rawFetchP99Ms!)}`);
    console.log(`    overhead p50     ${ms(figures.overheadP50Ms!)}`);
  }
  const c = concurrent as {
    idealTurnsPerSecond: number;
    idealWallMs: number;
    episodesTurnsPerSecond: number;
    episodesWallMs: number;
    episodesEfficiency: number;
    rawFetchTurnsPerSecond: number;
    rawFetchWallMs: number;
    lost: number;
  };
  console.log(
    `\n(b) ${EPISODES} concurrent episodes × ${TURNS_PER_EPISODE} turns, ${LATENCY_MS} ms server latency (median of ${REPEATS})`,
  );
  console.log(
    `  episodes   ${c.episodesTurnsPerSecond.toFixed(1)} turns/s, wall ${ms(c.episodesWallMs)} ` +
      `(${(c.episodesEfficiency * 100).toFixed(1)} % of the ideal ${c.idealTurnsPerSecond}/s, ${ms(c.idealWallMs)})`,
  );
  console.log(`  raw fetch  ${c.rawFetchTurnsPerSecond.toFixed(1)} turns/s, wall ${ms(c.rawFetchWallMs)}`);
  console.log(`  lost: ${c.lost}`);
  writeResults('model-agent', { overheadPlain: plain, overheadTokenExact: exact, concurrent });
}
