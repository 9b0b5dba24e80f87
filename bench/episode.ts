/**
 * Episode-loop benchmark, on the real Docker engine:
 *  1. harness overhead per turn — a scripted agent calling `bash true` for many turns with
 *     the run store on, side by side with `sandbox.exec('true')` alone on the same kind of
 *     container (the baseline): overhead = turn p50 − exec p50;
 *  2. 8 concurrent episodes on this machine: all complete, none fails.
 * Prints figures; asserts nothing. Run: node --import tsx bench/episode.ts
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScriptedAgent } from '../agents/scripted/index.ts';
import { RunStore, planEpisodes, runEpisodes, type Task } from '../harness/index.ts';
import { DockerSandboxProvider } from '../sandboxes/docker/index.ts';
import { ms, percentile, writeResults } from './stats.ts';

const TURNS = 300;
const provider = new DockerSandboxProvider();

function benchTask(id: string, maxTurns: number): Task {
  return {
    id,
    dir: import.meta.dirname,
    format: 'paddock',
    instruction: 'benchmark',
    environment: {
      image: 'paddock/base:bookworm',
      cpus: 1,
      memoryMb: 512,
      pids: 256,
      network: false,
      env: {},
      files: [],
    },
    tools: ['bash', 'submit'],
    limits: { maxTurns, timeoutMs: 600_000, commandTimeoutMs: 10_000 },
    verifier: {
      files: [],
      command: 'test -f /tmp/done',
      env: {},
      timeoutMs: 10_000,
      reward: { kind: 'exit-code' },
    },
    metadata: {},
    extensions: {},
  };
}

// --- baseline: exec `true` straight through the Sandbox API ---------------------------
const sandbox = await provider.start(benchTask('baseline', 1).environment!, {
  labels: { runId: 'bench', episodeId: 'baseline' },
});
for (let i = 0; i < 20; i++) await sandbox.exec('true');
const execTimes: number[] = [];
for (let i = 0; i < TURNS; i++) {
  const started = performance.now();
  await sandbox.exec('true');
  execTimes.push(performance.now() - started);
}
await sandbox.close();

// --- per-turn time in a full episode, store on ------------------------------------------
const root = mkdtempSync(join(tmpdir(), 'paddock-bench-'));
const turnTask = benchTask('bench/turns', TURNS + 1);
const store = RunStore.create(root, {
  runId: 'bench-turns',
  createdAt: new Date().toISOString(),
  config: {},
  plan: planEpisodes([turnTask]),
});
store.openForWrite();
const turnStarts = new Map<number, number>();
const turnTimes: number[] = [];
const agent = new ScriptedAgent({
  turns: [
    ...Array.from({ length: TURNS }, () => ({
      tool_calls: [{ name: 'bash', arguments: { command: 'true' } }],
    })),
    { tool_calls: [{ name: 'submit', arguments: {} }] },
  ],
});
await runEpisodes({
  runId: 'bench-turns',
  tasks: [turnTask],
  agent,
  sandboxProvider: provider,
  store,
  onEvent: (event) => {
    if (event.type === 'turn-start') turnStarts.set(event.turnIndex, performance.now());
    if (event.type === 'turn-end' && event.turn.index < TURNS)
      turnTimes.push(performance.now() - turnStarts.get(event.turn.index)!);
  },
});
await store.close();
const steady = turnTimes.slice(20);

// --- 8 concurrent episodes ---------------------------------------------------------------
const concurrentTasks = Array.from({ length: 8 }, (_, index) => benchTask(`bench/concurrent-${index}`, 10));
const work = new ScriptedAgent({
  turns: [
    { tool_calls: [{ name: 'bash', arguments: { command: 'seq 1 100000 | sort -n | tail -1 > /tmp/out' } }] },
    {
      tool_calls: [
        { name: 'bash', arguments: { command: 'python3 -c "print(sum(range(10**6)))" && touch /tmp/done' } },
      ],
    },
    { tool_calls: [{ name: 'submit', arguments: {} }] },
  ],
});
const concurrentStarted = performance.now();
const episodes = await runEpisodes({
  runId: 'bench-concurrent',
  tasks: concurrentTasks,
  agent: work,
  sandboxProvider: provider,
  concurrency: 8,
});
const concurrentMs = performance.now() - concurrentStarted;
const failures = episodes.filter(
  (episode) => episode.status !== 'completed' || episode.reward.total !== 1,
).length;

const figures = {
  execTrueP50Ms: percentile(execTimes, 50),
  execTrueP99Ms: percentile(execTimes, 99),
  turnP50Ms: percentile(steady, 50),
  turnP99Ms: percentile(steady, 99),
  overheadP50Ms: percentile(steady, 50) - percentile(execTimes, 50),
  concurrentEpisodes: episodes.length,
  concurrentFailures: failures,
  concurrentWallMs: concurrentMs,
};
console.log(`episode loop — ${TURNS} turns of \`bash true\`, store on; 8 concurrent episodes`);
console.log('');
console.log(`  ${'measure'.padEnd(44)} ${'p50'.padStart(10)} ${'p99'.padStart(10)}`);
console.log(
  `  ${'sandbox.exec("true") alone (baseline)'.padEnd(44)} ${ms(figures.execTrueP50Ms).padStart(10)} ${ms(figures.execTrueP99Ms).padStart(10)}`,
);
console.log(
  `  ${'one turn: agent + bash tool + store'.padEnd(44)} ${ms(figures.turnP50Ms).padStart(10)} ${ms(figures.turnP99Ms).padStart(10)}`,
);
console.log(
  `  ${'harness overhead per turn (turn − exec)'.padEnd(44)} ${ms(figures.overheadP50Ms).padStart(10)}`,
);
console.log('');
console.log(
  `  8 concurrent episodes: ${episodes.length} finished, ${failures} failed, ${(concurrentMs / 1000).toFixed(1)} s wall`,
);
writeResults('episode', figures);
