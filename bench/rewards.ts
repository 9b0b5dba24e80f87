/**
 * Reward-layer benchmark:
 *  1. per-turn reward overhead, on the real Docker engine — the turn rewards of the
 *     fix-bug-progress example (rules + one pytest progress command) scored as the episode
 *     loop scores them, side by side with the progress command alone through
 *     `sandbox.exec` (interleaved): overhead = with-rewards p50 − command p50 (and the p50
 *     of the paired differences), plus the rules timed alone (the overhead is small next
 *     to the command's own jitter, so the difference is noisy on a loaded machine);
 *  2. the ONNX reward models of tests/fixtures/rewards (int32 ids; int64 ids + attention
 *     mask) on a turn of 512 tokens: p50 of one call, and a group of 16 scored in one batch
 *     vs 16 single calls (ratio), plus 16 concurrent `score()` calls (gathered into one
 *     batch by the model); the same for a small transformer made by transformer-reward.py
 *     (untrained, for timing), whose work per token leaves less for batching to save.
 * Prints figures; asserts nothing. Run: node --import tsx bench/rewards.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  scoreTurn,
  type EpisodeContext,
  type Task,
  type TurnRecord,
  type TurnRewardFunction,
} from '../harness/index.ts';
import { DockerSandboxProvider } from '../sandboxes/docker/index.ts';
import { loadTasks } from '../tasks/index.ts';
import {
  OnnxRewardModel,
  ProgressReward,
  buildRewardFunctions,
  creditTaskExtension,
  ruleReward,
  rewardsTaskExtension,
} from '../rewards/index.ts';
import { DEFAULT_PYTHON } from '../trainers/rl/index.ts';
import { ms, percentile, writeResults } from './stats.ts';

const TURN_SAMPLES = 40;
const MODEL_SAMPLES = 200;
const GROUP = 16;
const GROUP_SAMPLES = 300;

// --- 1. per-turn overhead: rules + one progress command in Docker ---------------------
const [task] = (await loadTasks([join(import.meta.dirname, '..', 'tasks', 'rewards', 'fix-bug-progress')], {
  extensions: { rewards: rewardsTaskExtension, credit: creditTaskExtension },
})) as [Task];
const setup = await buildRewardFunctions(task);
const functions = [...setup.turn, ruleReward('format'), ruleReward('tokens'), ruleReward('cost')];
const progress = setup.turn.find((fn): fn is ProgressReward => fn instanceof ProgressReward)!;
const command = task.extensions.rewards as { turn: { progress?: { command: string } }[] };
const progressCommand = command.turn.find((entry) => entry.progress)!.progress!.command;

const provider = new DockerSandboxProvider();
const sandbox = await provider.start(task.environment!, { labels: { runId: 'bench', episodeId: 'rewards' } });
const signal = new AbortController().signal;
const turn = (index: number): TurnRecord => ({
  index,
  text: 'Running the tests.',
  toolCalls: [
    {
      id: `c${index}`,
      name: 'bash',
      arguments: JSON.stringify({ command: `python3 -m pytest -q #${index}` }),
    },
  ],
  toolResults: [
    {
      callId: `c${index}`,
      name: 'bash',
      output: '2 failed, 2 passed',
      isError: true,
      problem: 'tool-error',
      durationMs: 1,
    },
  ],
  usage: { promptTokens: 1200, completionTokens: 80 },
  costUsd: 0.0004,
  rewards: {},
  reward: 0,
  startedAt: new Date().toISOString(),
  agentMs: 0,
  toolMs: 0,
});
const history = Array.from({ length: 10 }, (_, index) => turn(index));

const episode: EpisodeContext = {
  task,
  runId: 'bench',
  episodeId: 'rewards',
  seed: 0,
  sandbox,
  sessions: new Map(),
  signal,
};
/** Opens `fns` for the bench's episode, as the episode loop does before turn 0 (progress measures Φ(start)). */
const openAll = (fns: readonly TurnRewardFunction[]) =>
  Promise.all(fns.map(async (fn) => ({ fn, opened: await fn.open(episode) })));
const opened = await openAll(functions);
for (let i = 0; i < 3; i++) await sandbox.exec(progressCommand, { user: 'root', cwd: '/app' });
const alone: number[] = [];
const withRewards: number[] = [];
for (let i = 0; i < TURN_SAMPLES; i++) {
  let started = performance.now();
  await sandbox.exec(progressCommand, {
    user: 'root',
    cwd: '/app',
    timeoutMs: 60_000,
    signal,
    maxOutputBytes: 64 * 1024,
  });
  alone.push(performance.now() - started);

  const current = turn(history.length);
  started = performance.now();
  await scoreTurn(current, history, opened, signal);
  withRewards.push(performance.now() - started);
}

// The same with a progress command that costs almost nothing, so that what the rewards
// add is not lost in the ±30 ms noise of a test run: rules + progress(cat) vs cat alone.
const CHEAP_SAMPLES = 300;
await sandbox.exec('echo 0.5 > /tmp/progress', { user: 'root' });
const cheap = new ProgressReward({ command: 'cat /tmp/progress', parse: 'number' });
const cheapOpened = await openAll([...functions.filter((fn) => fn !== progress), cheap]);
const cheapAlone: number[] = [];
const cheapWith: number[] = [];
for (let i = 0; i < CHEAP_SAMPLES; i++) {
  let started = performance.now();
  await sandbox.exec('cat /tmp/progress', { user: 'root', signal });
  cheapAlone.push(performance.now() - started);
  const current = turn(history.length);
  started = performance.now();
  await scoreTurn(current, history, cheapOpened, signal);
  cheapWith.push(performance.now() - started);
}
await sandbox.close();

// The rules alone (no command): what the rewards add besides the progress command itself.
const rules = opened.filter(({ fn }) => fn !== progress);
const rulesOnly: number[] = [];
for (let i = 0; i < 2_000; i++) {
  const current = turn(history.length);
  const started = performance.now();
  await scoreTurn(current, history, rules, signal);
  rulesOnly.push(performance.now() - started);
}
for (const { opened: reward } of [...opened, ...cheapOpened]) await reward.close?.();
await setup.close();

const aloneP50 = percentile(alone, 50);
const withP50 = percentile(withRewards, 50);
const turnFigures = {
  functions: functions.map((fn) => fn.name),
  progressCommand,
  samples: TURN_SAMPLES,
  commandAloneP50Ms: aloneP50,
  commandAloneP90Ms: percentile(alone, 90),
  withRewardsP50Ms: withP50,
  withRewardsP90Ms: percentile(withRewards, 90),
  overheadP50Ms: withP50 - aloneP50,
  pairedOverheadP50Ms: percentile(
    withRewards.map((value, index) => value - alone[index]!),
    50,
  ),
  rulesOnlyP50Ms: percentile(rulesOnly, 50),
  rulesOnlyP99Ms: percentile(rulesOnly, 99),
  cheapCommandAloneP50Ms: percentile(cheapAlone, 50),
  cheapWithRewardsP50Ms: percentile(cheapWith, 50),
  cheapOverheadP50Ms: percentile(cheapWith, 50) - percentile(cheapAlone, 50),
};
console.log('per-turn rewards (rules + one progress command, Docker)');
console.log(`  progress command alone   p50 ${ms(aloneP50)}   p90 ${ms(turnFigures.commandAloneP90Ms)}`);
console.log(`  all turn rewards         p50 ${ms(withP50)}   p90 ${ms(turnFigures.withRewardsP90Ms)}`);
console.log(
  `  overhead of the rewards  p50 ${ms(turnFigures.overheadP50Ms)}   (paired differences p50 ${ms(turnFigures.pairedOverheadP50Ms)})`,
);
console.log(
  `  the ${rules.length} rules alone       p50 ${ms(turnFigures.rulesOnlyP50Ms)}   p99 ${ms(turnFigures.rulesOnlyP99Ms)}`,
);
console.log(
  `  with \`cat\` as the progress command: alone p50 ${ms(turnFigures.cheapCommandAloneP50Ms)}, ` +
    `all turn rewards p50 ${ms(turnFigures.cheapWithRewardsP50Ms)} → overhead ${ms(turnFigures.cheapOverheadP50Ms)} (target ≤ 2 ms)`,
);

// --- 2. ONNX reward model on 512-token turns ---------------------------------------------
const text = (seed: number): string => {
  // 512 bytes = 512 tokens for the byte-level model.
  const line = `turn ${seed}: ran pytest, ${seed % 5} failed, ${4 - (seed % 5)} passed; editing src/module_${seed}.py\n`;
  return line.repeat(Math.ceil(512 / line.length)).slice(0, 512);
};
const texts = Array.from({ length: GROUP }, (_, index) => text(index));

/** One model folder: a single call, and a group of 16 as 16 single calls, one batch, 16 concurrent `score()`. */
async function measureModel(location: string, target?: string) {
  const folder = basename(location);
  const model = await OnnxRewardModel.load(location);
  if (model.encode(texts[0]!).length !== 512) throw new Error('the benchmark turn is not 512 tokens');
  for (let i = 0; i < 50; i++) {
    await model.scoreTexts(texts);
    for (const one of texts) await model.scoreTexts([one]);
  }
  const single: number[] = [];
  for (let i = 0; i < MODEL_SAMPLES; i++) {
    const started = performance.now();
    await model.scoreTexts([texts[i % GROUP]!]);
    single.push(performance.now() - started);
  }
  // Interleaved, so that the machine's load weighs on the three alike.
  const sequential: number[] = [];
  const batched: number[] = [];
  const concurrent: number[] = [];
  for (let i = 0; i < GROUP_SAMPLES; i++) {
    let started = performance.now();
    for (const one of texts) await model.scoreTexts([one]);
    sequential.push(performance.now() - started);
    started = performance.now();
    await model.scoreTexts(texts);
    batched.push(performance.now() - started);
    started = performance.now();
    await Promise.all(texts.map((one) => model.score(one)));
    concurrent.push(performance.now() - started);
  }
  const inputs = model.spec.inputs;
  await model.close();
  const figures = {
    model: folder,
    inputs: `${inputs.dtype ?? 'int64'} ids${inputs.mask ? ' + mask' : ''}`,
    tokens: 512,
    threads: 1,
    singleP50Ms: percentile(single, 50),
    singleP99Ms: percentile(single, 99),
    group: GROUP,
    sixteenSinglesP50Ms: percentile(sequential, 50),
    batchOf16P50Ms: percentile(batched, 50),
    batchSpeedup: percentile(sequential, 50) / percentile(batched, 50),
    sixteenConcurrentScoreP50Ms: percentile(concurrent, 50),
    concurrentSpeedup: percentile(sequential, 50) / percentile(concurrent, 50),
  };
  console.log(`\nONNX reward model ${folder} (${figures.inputs}), 512-token turn, 1 thread`);
  console.log(`  one call                 p50 ${ms(figures.singleP50Ms)}   p99 ${ms(figures.singleP99Ms)}`);
  console.log(`  16 single calls          p50 ${ms(figures.sixteenSinglesP50Ms)}`);
  console.log(
    `  one batch of 16          p50 ${ms(figures.batchOf16P50Ms)}   (${figures.batchSpeedup.toFixed(1)}× faster${target ? `; ${target}` : ''})`,
  );
  console.log(
    `  16 concurrent score()    p50 ${ms(figures.sixteenConcurrentScoreP50Ms)}   (${figures.concurrentSpeedup.toFixed(1)}× faster)`,
  );
  return figures;
}

const fixtures = join(import.meta.dirname, '..', 'tests', 'fixtures', 'rewards');
const onnxFigures = await measureModel(join(fixtures, 'byte-reward'), 'target ≥ 4×');
const onnxInt64Figures = await measureModel(join(fixtures, 'byte-reward-int64'), 'target ≥ 4×');
// For comparison: a model with real work per token (made here, untrained) gains less.
const transformerDir = join(mkdtempSync(join(tmpdir(), 'paddock-bench-')), 'transformer-reward');
execFileSync(
  process.env.PADDOCK_PYTHON ?? DEFAULT_PYTHON,
  [join(import.meta.dirname, 'transformer-reward.py'), transformerDir],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
const onnxTransformerFigures = await measureModel(transformerDir, 'for comparison: heavy work per token');

writeResults('rewards', {
  turn: turnFigures,
  onnx: onnxFigures,
  onnxInt64: onnxInt64Figures,
  onnxTransformer: onnxTransformerFigures,
});
