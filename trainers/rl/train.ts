/**
 * The rollout → train loop.
 *
 *   load tasks → (record oracle demonstrations) → tokenizer → torch worker: build policy
 *   → supervised warm-start → checkpoint "step 0" → export ONNX → evaluate held-out
 *   → for each step: sample tasks, run G episodes each with the current ONNX policy
 *     (harness runEpisodes), rewards → advantages (rewards/credit) → token batches from
 *     the recorded ids → worker policy-gradient update → export ONNX → swap the agent's
 *     policy; evaluate and checkpoint on their cadence
 *   → final evaluation, summary.json, policy/ (the trained policy folder)
 *
 * The output folder holds: `config.json` (the resolved config), `tokenizer.json`,
 * `demos.jsonl`, `metrics.jsonl` (one JSON row per SFT step, RL step and evaluation),
 * `learning-curve.svg`, `checkpoints/`, `state.json` (the last checkpoint), `policies/`
 * (the ONNX policy of the current step), `policy/` (the final policy), `summary.json`,
 * `worker.log`.
 *
 * Determinism: task sampling, episode seeds and the worker's initialisation derive from
 * `seed` and the step number only, so a run resumed from a checkpoint (after a crash or a
 * kill -9) continues exactly as the uninterrupted run would have (on the same machine and
 * thread count: CPU results are bit-identical, CUDA results close).
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  ERROR_CODES,
  applyGroupRewards,
  PaddockError,
  episodeSeed,
  isAgentOutcome,
  isPaddockError,
  planEpisodes,
  runEpisodes,
  type Agent,
  type AgentInput,
  type AssistantTurn,
  type EpisodeRecord,
  type SandboxProvider,
  type Task,
  type ToolProvider,
  type RunEpisodesOptions,
  type ToolSpec,
} from '../../harness/index.ts';
import { OracleAgent } from '../../agents/oracle/index.ts';
import {
  ChatTemplate,
  DEFAULT_SYSTEM_PROMPT,
  OnnxPolicyAgent,
  PieceTokenizer,
  TOOL_CLOSE,
  TOOL_OPEN,
  buildPieceTokenizer,
  byteTokenizer,
  createRng,
  loadOnnxPolicy,
  mixSeed,
  renderAssistantText,
  renderToolList,
  type OnnxPolicy,
  type PolicyConfig,
} from '../../agents/onnx/index.ts';
import { computeAdvantages } from './advantages.ts';
import { demonstrationSequence, episodeSequences, type Demonstration, type TokenSequence } from './batch.ts';
import { loadTrainConfig, parseTrainConfig, type TrainConfig, type TrainConfigInput } from './config.ts';
import { learningCurveSvg, type CurveRow } from './plot.ts';
import {
  TorchTrainer,
  type OptimizerConfig,
  type PolicySpec,
  type StepMetrics,
  type WorkerInfo,
} from './torch-trainer.ts';
import { toyToolProvider } from '../../sandboxes/toy/index.ts';

/** One row of metrics.jsonl. `type` is `sft`, `train` or `eval`; `step` the step it belongs to. */
export interface MetricRow extends CurveRow {
  type: 'sft' | 'train' | 'eval';
  step: number;
}

/** What an evaluation on held-out tasks found. */
export interface EvalSummary {
  step: number;
  /** Fraction of episodes whose reward reached `pass_threshold` (sampling as `eval.temperature`). */
  success: number;
  /** The same with greedy decoding, when `eval.greedy` is on. */
  successGreedy?: number;
  rewardMean: number;
  episodes: number;
}

export interface TrainOptions {
  /**
   * Loads task folders or suites into tasks. The composition root passes the task loader
   * (with the `toy` extension registered); tests may build tasks directly.
   */
  loadTasks: (paths: readonly string[]) => Promise<Task[]>;
  /** Tool plug-ins for the episodes. @default [toyToolProvider] */
  toolProviders?: readonly ToolProvider[];
  /** Needed when tasks have a sandbox. */
  sandboxProvider?: SandboxProvider;
  /**
   * The reward functions of each task (turn, trajectory, constraints, credit assignment),
   * as the composition root builds them from the tasks' `rewards` / `credit` sections;
   * called for every task before the warm start (so build errors come first; cache what it
   * builds) and again by the rollouts. Tool sessions' scores (the toy tools' `correct`)
   * count without it.
   */
  rewardsFor?: RunEpisodesOptions['rewardsFor'];
  /** Aborting stops the run (rollouts and the worker) and rejects with ABORTED; checkpoints stay. */
  signal?: AbortSignal;
  /** Called with every metrics row as it is written. */
  onStep?: (row: MetricRow) => void;
  /** Progress lines. @default none */
  log?: (line: string) => void;
  /** Extra environment of the torch worker (tests inject faults through it). */
  workerEnv?: Record<string, string>;
}

export interface TrainResult {
  dir: string;
  /** RL steps done in total. */
  steps: number;
  /** Held-out evaluation of the warm-started policy (step 0), when there are held-out tasks. */
  before?: EvalSummary;
  /** Held-out evaluation of the final policy. */
  after?: EvalSummary;
  /** Wall time of this call, in ms. */
  wallMs: number;
  /** The final ONNX policy folder (`onnx:<policyDir>`). */
  policyDir: string;
  /** SHA-256 of the final weights. */
  weightsSha256: string;
}

const StateSchema = z.object({
  step: z.number().int().min(0),
  checkpoint: z.string(),
  checkpoints: z.array(z.string()),
});
type TrainState = z.infer<typeof StateSchema>;

/**
 * Trains a policy as `config` (a train.yaml path or an object) says, in a fresh output
 * folder. Rejects with CONFIG_INVALID for a bad config or an output folder that holds a run
 * already (use `resumeTraining`), TRAINER_FAILED when the torch worker fails, ABORTED on
 * abort.
 */
export async function train(
  config: string | TrainConfigInput | TrainConfig,
  options: TrainOptions,
): Promise<TrainResult> {
  const cfg = typeof config === 'string' ? loadTrainConfig(config) : parseTrainConfig(config);
  if (existsSync(join(cfg.output, 'config.json'))) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${cfg.output} holds a training run already: continue it with \`paddock train --resume ${cfg.output}\` (resumeTraining), or choose another output`,
    );
  }
  mkdirSync(cfg.output, { recursive: true });
  writeJsonAtomic(join(cfg.output, 'config.json'), cfg);
  return new TrainingRun(cfg, options).run(false);
}

/**
 * Continues the run in `dir` from its last checkpoint (after a crash, kill -9 or abort),
 * with the config it was started with. Rows written after that checkpoint are dropped
 * and recomputed. A run that never reached its first checkpoint starts over.
 */
export async function resumeTraining(dir: string, options: TrainOptions): Promise<TrainResult> {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `${dir} holds no training run`);
  const cfg = parseTrainConfig(readJson(file), { file });
  return new TrainingRun(cfg, options).run(existsSync(join(dir, 'state.json')));
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new PaddockError(ERROR_CODES.STORE_FAILED, `cannot read ${path}`, { cause: error });
  }
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

/**
 * Pieces for the tool-call syntax of the canonical rendering, so that the scaffold of a
 * call costs a few tokens (as tool-call special tokens do in chat models).
 */
const TOOL_CALL_PIECES = [
  `${TOOL_OPEN}{"name":"`,
  '","arguments":{"',
  `"}}${TOOL_CLOSE}`,
  TOOL_OPEN,
  TOOL_CLOSE,
];

const pad = (step: number): string => String(step).padStart(6, '0');

const DemonstrationSchema = z.object({
  messages: z.array(z.record(z.string(), z.unknown())).min(1),
  tools: z.array(
    z.object({ name: z.string(), description: z.string(), inputSchema: z.record(z.string(), z.unknown()) }),
  ),
});

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
}

class TrainingRun {
  private readonly dir: string;
  private trainer: TorchTrainer | undefined;
  private policy: OnnxPolicy | undefined;
  private agent: OnnxPolicyAgent | undefined;
  private evalAgent: OnnxPolicyAgent | undefined;
  private greedyAgent: OnnxPolicyAgent | undefined;
  private tokenizer!: PieceTokenizer;
  private info!: WorkerInfo;
  private rows: MetricRow[] = [];
  private readonly started = performance.now();
  private readonly signal: AbortSignal;

  constructor(
    private readonly cfg: TrainConfig,
    private readonly options: TrainOptions,
  ) {
    this.dir = cfg.output;
    this.signal = options.signal ?? new AbortController().signal;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private checkAborted(): void {
    if (this.signal.aborted)
      throw new PaddockError(ERROR_CODES.ABORTED, 'training was aborted', { cause: this.signal.reason });
  }

  async run(resume: boolean): Promise<TrainResult> {
    try {
      return await this.body(resume);
    } catch (error) {
      if (this.signal.aborted && !isPaddockError(error, ERROR_CODES.ABORTED)) {
        throw new PaddockError(ERROR_CODES.ABORTED, 'training was aborted', { cause: error });
      }
      throw error;
    } finally {
      await this.agent?.close();
      await this.evalAgent?.close();
      await this.greedyAgent?.close();
      await this.policy?.close();
      await this.trainer?.close();
    }
  }

  private async body(resume: boolean): Promise<TrainResult> {
    const cfg = this.cfg;
    const trainTasks = await this.options.loadTasks(cfg.tasks.train);
    const heldout = cfg.tasks.heldout.length > 0 ? await this.options.loadTasks(cfg.tasks.heldout) : [];
    if (trainTasks.length === 0)
      throw new PaddockError(ERROR_CODES.TASK_NOT_FOUND, 'no train tasks were loaded');
    const taskMap = new Map([...trainTasks, ...heldout].map((task) => [task.id, task]));
    // Every task's rewards are built before the warm start: one that cannot be built (a
    // judge without a key, a missing model) stops the run now, not minutes later.
    if (this.options.rewardsFor) for (const task of taskMap.values()) await this.options.rewardsFor(task);

    mkdirSync(join(this.dir, 'checkpoints'), { recursive: true });
    mkdirSync(join(this.dir, 'policies'), { recursive: true });
    const state = resume ? StateSchema.parse(readJson(join(this.dir, 'state.json'))) : undefined;
    if (!state) {
      // A fresh start (or a run that died before its first checkpoint): nothing of before counts.
      for (const name of ['metrics.jsonl', 'summary.json', 'learning-curve.svg', 'worker.log']) {
        rmSync(join(this.dir, name), { force: true });
      }
    }

    // --- demonstrations and tokenizer -------------------------------------------------
    let demos: Demonstration[] = [];
    if (!state && cfg.sft) demos = await this.demonstrations(trainTasks);
    this.tokenizer = state
      ? PieceTokenizer.fromFile(join(this.dir, 'tokenizer.json'))
      : this.buildTokenizer(trainTasks, demos);
    if (!state) writeJsonAtomic(join(this.dir, 'tokenizer.json'), this.tokenizer.toJSON());
    const template = new ChatTemplate(this.tokenizer, { toolDescriptions: cfg.policy.tool_descriptions });

    // --- worker ---------------------------------------------------------------------
    const workerLog = join(this.dir, 'worker.log');
    this.trainer = await TorchTrainer.start({
      ...(cfg.worker.python ? { python: cfg.worker.python } : {}),
      requestTimeoutMs: cfg.worker.timeout_sec * 1000,
      signal: this.signal,
      onStderr: (text) => appendFileSync(workerLog, text),
      ...(this.options.workerEnv ? { env: this.options.workerEnv } : {}),
    });
    const policySpec: PolicySpec = cfg.policy.builtin
      ? { kind: 'builtin', config: { vocab_size: this.tokenizer.vocabSize, ...cfg.policy.builtin } }
      : { kind: 'hf', path: cfg.policy.model! };
    this.info = await this.trainer.init({
      policy: policySpec,
      device: cfg.device,
      seed: cfg.seed,
      ...(cfg.threads ? { threads: cfg.threads } : {}),
    });
    this.log(
      `worker: torch ${this.info.torch} on ${this.info.device} (${this.info.dtype}), ${this.info.params} parameters`,
    );

    let step = 0;
    let before: EvalSummary | undefined;
    if (state) {
      const loaded = await this.trainer.load(join(this.dir, state.checkpoint));
      step = state.step;
      this.rows = this.readRows().filter((row) => row.type === 'sft' || row.step <= step);
      writeFileSync(
        join(this.dir, 'metrics.jsonl'),
        this.rows.map((row) => JSON.stringify(row) + '\n').join(''),
      );
      // The config's RL hyper-parameters apply (the same as the checkpoint's unless edited).
      await this.trainer.updateOptimizer(this.rlOptimizer());
      this.log(`resumed from ${state.checkpoint} (step ${step}, optimiser step ${loaded.opt_step})`);
      const first = this.rows.find((row) => row.type === 'eval' && row.step === 0);
      if (first) before = this.evalSummaryOf(first);
    } else {
      if (cfg.sft && cfg.sft.steps > 0) await this.supervised(demos, template);
      await this.trainer.configureOptimizer(this.rlOptimizer());
      if (cfg.algorithm.reference || cfg.algorithm.kl > 0) await this.trainer.setReference();
      await this.checkpoint(0, undefined);
    }

    await this.swapPolicy(step);
    if (!state && heldout.length > 0) before = await this.evaluate(heldout, 0);

    let after = before && step === cfg.steps ? before : undefined;
    for (step = step + 1; step <= cfg.steps; step++) {
      this.checkAborted();
      await this.rlStep(step, trainTasks, taskMap);
      const last = step === cfg.steps;
      if (heldout.length > 0 && (step % cfg.eval.every === 0 || last)) {
        const result = await this.evaluate(heldout, step);
        if (last) after = result;
      }
      if (step % cfg.checkpoint.every === 0 || last)
        await this.checkpoint(step, StateSchema.safeParse(this.readState()).data);
    }
    if (!after && heldout.length > 0) {
      const final = [...this.rows].reverse().find((row) => row.type === 'eval' && row.step === cfg.steps);
      if (final) after = this.evalSummaryOf(final);
    }

    const policyDir = join(this.dir, 'policy');
    rmSync(policyDir, { recursive: true, force: true });
    cpSync(this.policy!.dir, policyDir, { recursive: true });
    const hash = await this.trainer.stateHash();
    const result: TrainResult = {
      dir: this.dir,
      steps: cfg.steps,
      ...(before ? { before } : {}),
      ...(after ? { after } : {}),
      wallMs: performance.now() - this.started,
      policyDir,
      weightsSha256: hash.sha256,
    };
    writeJsonAtomic(join(this.dir, 'summary.json'), result);
    this.log(
      `done: ${cfg.steps} steps${before && after ? `, held-out success ${before.success.toFixed(3)} → ${after.success.toFixed(3)}` : ''}`,
    );
    return result;
  }

  private rlOptimizer(): OptimizerConfig {
    const algorithm = this.cfg.algorithm;
    return {
      lr: algorithm.lr,
      total_steps: Math.max(1, this.cfg.steps * algorithm.epochs * algorithm.mini_batches),
      warmup_steps: algorithm.warmup_steps,
      schedule: algorithm.schedule,
      min_lr_ratio: algorithm.min_lr_ratio,
      weight_decay: algorithm.weight_decay,
      grad_clip: algorithm.grad_clip,
    };
  }

  // --- demonstrations, tokenizer, SFT ----------------------------------------------------

  private async demonstrations(trainTasks: readonly Task[]): Promise<Demonstration[]> {
    const sft = this.cfg.sft!;
    const file = join(this.dir, 'demos.jsonl');
    if (sft.data !== 'oracle') return this.readDemonstrations(sft.data);
    const rng = createRng(this.cfg.seed, 0x5f7);
    const order = [...trainTasks];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const chosen = order.slice(0, Math.min(sft.episodes, order.length));
    const episodes = await runEpisodes({
      runId: 'sft-demonstrations',
      tasks: chosen,
      plan: planEpisodes(chosen, { seed: this.cfg.seed }),
      agent: new OracleAgent(),
      ...this.episodeOptions(),
    });
    const demos: Demonstration[] = [];
    for (const episode of episodes) {
      if (episode.reward.total < this.cfg.pass_threshold) continue;
      demos.push({ messages: episode.messages, tools: episode.tools });
    }
    if (demos.length === 0)
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        'the oracle passed no train task: there is nothing to warm-start from',
      );
    writeFileSync(file, demos.map((demo) => JSON.stringify(demo) + '\n').join(''));
    this.log(`recorded ${demos.length} oracle demonstrations`);
    return demos;
  }

  private readDemonstrations(path: string): Demonstration[] {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `sft.data: cannot read ${path}`, { cause: error });
    }
    return text
      .split('\n')
      .map((line, index) => ({ line: line.trim(), number: index + 1 }))
      .filter(({ line }) => line !== '')
      .map(({ line, number }) => {
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (error) {
          throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${path}:${number}: invalid JSON`, {
            cause: error,
          });
        }
        const parsed = DemonstrationSchema.safeParse(value);
        if (!parsed.success)
          throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${path}:${number}: expected {messages, tools}`);
        return parsed.data as unknown as Demonstration;
      });
  }

  private buildTokenizer(trainTasks: readonly Task[], demos: readonly Demonstration[]): PieceTokenizer {
    const spec = this.cfg.policy.tokenizer;
    if ('file' in spec) return PieceTokenizer.fromFile(spec.file);
    if (spec.kind === 'bytes') return byteTokenizer();
    const texts: string[] = trainTasks.map((task) => task.instruction);
    for (const demo of demos) {
      const system = demo.messages[0]?.role === 'system' ? demo.messages[0].content : DEFAULT_SYSTEM_PROMPT;
      texts.push(system, renderToolList(demo.tools, { toolDescriptions: this.cfg.policy.tool_descriptions }));
      for (const message of demo.messages) {
        if (message.role === 'system') continue;
        texts.push(
          message.role === 'assistant'
            ? renderAssistantText(message.content, message.toolCalls)
            : message.content,
        );
      }
    }
    return buildPieceTokenizer(texts, {
      maxPieces: spec.max_pieces,
      minCount: spec.min_count,
      forced: TOOL_CALL_PIECES,
      numbers: spec.numbers,
      splitDigits: spec.split_digits,
    });
  }

  private async supervised(demos: readonly Demonstration[], template: ChatTemplate): Promise<void> {
    const sft = this.cfg.sft!;
    const sequences = demos.map((demo) => demonstrationSequence(demo, template));
    const tooLong = sequences.filter((sequence) => sequence.ids.length > this.info.policy.max_len).length;
    if (tooLong > 0) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${tooLong} demonstrations are longer than the policy's max_len (${this.info.policy.max_len} tokens)`,
      );
    }
    await this.trainer!.configureOptimizer({
      lr: sft.lr,
      total_steps: sft.steps,
      warmup_steps: sft.warmup_steps,
      schedule: sft.schedule,
      grad_clip: this.cfg.algorithm.grad_clip,
    });
    const rng = createRng(this.cfg.seed, 0x5f7, 1);
    let order: number[] = [];
    for (let step = 1; step <= sft.steps; step++) {
      this.checkAborted();
      const batch: typeof sequences = [];
      while (batch.length < Math.min(sft.batch_size, sequences.length)) {
        if (order.length === 0) {
          order = sequences.map((_, i) => i);
          for (let i = order.length - 1; i > 0; i--) {
            const j = Math.floor(rng() * (i + 1));
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
        }
        batch.push(sequences[order.pop()!]!);
      }
      const metrics = await this.trainer!.sftStep(batch, {
        microBatch: sft.micro_batch,
        labelSmoothing: sft.label_smoothing,
        signal: this.signal,
      });
      this.writeRow({ type: 'sft', step, ...metrics });
      if (step % 10 === 0 || step === sft.steps)
        this.log(
          `sft ${step}/${sft.steps}: loss ${metrics.loss!.toFixed(4)} accuracy ${metrics.accuracy!.toFixed(3)}`,
        );
    }
  }

  // --- RL step ------------------------------------------------------------------------

  private episodeOptions(): Pick<
    Parameters<typeof runEpisodes>[0],
    'toolProviders' | 'sandboxProvider' | 'rewardsFor' | 'signal' | 'concurrency'
  > {
    return {
      toolProviders: this.options.toolProviders ?? [toyToolProvider],
      ...(this.options.sandboxProvider ? { sandboxProvider: this.options.sandboxProvider } : {}),
      ...(this.options.rewardsFor ? { rewardsFor: this.options.rewardsFor } : {}),
      signal: this.signal,
      concurrency: this.cfg.rollout.concurrency,
    };
  }

  private async rlStep(
    step: number,
    trainTasks: readonly Task[],
    taskMap: ReadonlyMap<string, Task>,
  ): Promise<void> {
    const cfg = this.cfg;
    const algorithm = cfg.algorithm;
    const stepStarted = performance.now();

    // Tasks and seeds are functions of (seed, step) only.
    const rng = createRng(cfg.seed, step, 0x7a5c);
    const pool = [...trainTasks];
    const count = Math.min(cfg.tasks.per_step, pool.length);
    for (let i = 0; i < count; i++) {
      const j = i + Math.floor(rng() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    const tasks = pool.slice(0, count);
    const baseSeed = mixSeed(cfg.seed, step);
    const plan = tasks.flatMap((task) =>
      Array.from({ length: algorithm.group_size }, (_, g) => ({
        episodeId: `${task.id}#${step}.${g}`,
        taskId: task.id,
        epoch: g,
        seed: episodeSeed(baseSeed, task.id, g),
      })),
    );
    const rolloutStarted = performance.now();
    const episodes = await runEpisodes({
      runId: `train-${pad(step)}`,
      tasks,
      plan,
      agent: this.agent!,
      ...this.episodeOptions(),
      maxAttempts: 2,
      retryDelayMs: 100,
    });
    const rolloutMs = performance.now() - rolloutStarted;

    const byTask = new Map<string, EpisodeRecord[]>();
    for (const episode of episodes) {
      if (!isAgentOutcome(episode)) continue;
      const group = byTask.get(episode.taskId) ?? [];
      group.push(episode);
      byTask.set(episode.taskId, group);
    }
    const finished = tasks.map((task) => byTask.get(task.id) ?? []).filter((group) => group.length > 0);
    // Episodes of a group are ordered by their index, whatever order they finished in.
    for (const group of finished) group.sort((a, b) => a.epoch - b.epoch);
    const groupStarted = performance.now();
    const groups = await this.scoreGroups(finished, taskMap);
    const groupMs = performance.now() - groupStarted;
    const usable = groups.flat();
    const advantages = computeAdvantages(groups, taskMap, {
      estimator: algorithm.name,
      level: algorithm.level,
      scaleByStd: algorithm.scale_by_std,
      pooling: algorithm.pooling,
    });
    const maxLen = this.info.policy.max_len;
    const built: TokenSequence[] = groups
      .flat()
      .flatMap((episode) => episodeSequences(episode, advantages.get(episode.episodeId) ?? []));
    // The agent never samples past max_len; a longer sequence would come from another agent.
    const sequences = built.filter((sequence) => sequence.ids.length <= maxLen);

    const rewards = usable.map((episode) => episode.reward.total);
    const completionTokens = usable.reduce((sum, episode) => sum + episode.usage.completionTokens, 0);
    const signalGroups = groups.filter((group) =>
      group.some((e) => e.reward.total !== group[0]!.reward.total),
    ).length;
    const anySignal = sequences.some((sequence) => sequence.advantages.some((value) => value !== 0));

    let metrics: StepMetrics = {};
    let updateMs = 0;
    if (sequences.length > 0 && (anySignal || algorithm.kl > 0 || algorithm.entropy > 0)) {
      const updateStarted = performance.now();
      metrics = await this.trainer!.trainStep(sequences, {
        loss: {
          clip_low: algorithm.clip,
          clip_high: algorithm.clip_high ?? algorithm.clip,
          kl_coef: algorithm.kl,
          entropy_coef: algorithm.entropy,
          temperature: cfg.sampling.temperature,
          agg: algorithm.loss_agg,
        },
        microBatch: algorithm.micro_batch,
        epochs: algorithm.epochs,
        miniBatches: algorithm.mini_batches,
        signal: this.signal,
      });
      updateMs = performance.now() - updateStarted;
    }
    const exportMs = metrics.optimizer_steps ? await this.swapPolicy(step) : 0;

    const { time_ms: _workerMs, ...workerMetrics } = metrics;
    const trainedTokens = sequences.reduce((sum, s) => sum + s.mask.reduce((a, b) => a + b, 0), 0);
    const totalTokens = sequences.reduce((sum, s) => sum + s.ids.length, 0);
    const row: MetricRow = {
      type: 'train',
      step,
      reward_mean: mean(rewards),
      pass_rate: mean(rewards.map((reward) => (reward >= cfg.pass_threshold ? 1 : 0))),
      episodes: usable.length,
      errors: episodes.length - usable.length,
      episode_turns: mean(usable.map((episode) => episode.turns.length)),
      completion_tokens: usable.length === 0 ? 0 : completionTokens / usable.length,
      tool_problems: usable.reduce(
        (sum, episode) => sum + Object.values(episode.stats.toolProblems).reduce((a, b) => a + b, 0),
        0,
      ),
      groups_with_signal: signalGroups,
      sequences: sequences.length,
      dropped_sequences: built.length - sequences.length,
      trained_tokens: trainedTokens,
      skipped_update: metrics.optimizer_steps ? 0 : 1,
      ...workerMetrics,
      rollout_ms: rolloutMs,
      group_reward_ms: groupMs,
      update_ms: updateMs,
      export_ms: exportMs,
      step_ms: performance.now() - stepStarted,
      rollout_tokens_per_s: rolloutMs > 0 ? (completionTokens / rolloutMs) * 1000 : 0,
      train_tokens_per_s: updateMs > 0 ? (totalTokens / updateMs) * 1000 : 0,
    };
    this.writeRow(row);
    this.log(
      `step ${step}/${cfg.steps}: reward ${mean(rewards).toFixed(3)} pass ${(row.pass_rate as number).toFixed(3)} ` +
        `entropy ${(metrics.entropy ?? 0).toFixed(3)} kl ${(metrics.kl ?? 0).toFixed(4)} ` +
        `rollout ${(rolloutMs / 1000).toFixed(1)}s update ${(updateMs / 1000).toFixed(1)}s`,
    );
  }

  /**
   * Group rewards (e.g. a judge ranking the G episodes of a task against each other): each
   * task's `group` functions score its finished group, and the turns' returns are assigned
   * again from the new totals. Groups of tasks without them are returned as they are.
   */
  private async scoreGroups(
    groups: readonly EpisodeRecord[][],
    taskMap: ReadonlyMap<string, Task>,
  ): Promise<EpisodeRecord[][]> {
    const rewardsFor = this.options.rewardsFor;
    if (!rewardsFor) return [...groups];
    return Promise.all(
      groups.map(async (group) => {
        const task = taskMap.get(group[0]!.taskId)!;
        const rewards = await rewardsFor(task);
        if (!rewards.group?.length) return group;
        return applyGroupRewards(task, group, rewards.group, {
          signal: this.signal,
          ...(rewards.assignReturns ? { assignReturns: rewards.assignReturns } : {}),
        });
      }),
    );
  }

  /** Exports the worker's policy for `step`, loads it, and makes the agents sample from it. Returns ms spent. */
  private async swapPolicy(step: number): Promise<number> {
    const started = performance.now();
    const dir = join(this.dir, 'policies', `step-${pad(step)}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const exported = await this.trainer!.exportOnnx(join(dir, 'model.onnx'));
    const config: PolicyConfig = {
      format: 'paddock-onnx-policy',
      version: 1,
      vocab_size: exported.describe.vocab_size,
      max_len: exported.describe.max_len,
      kv_cache: exported.describe.kv_cache,
      chat: { template: 'paddock-v1', tool_descriptions: this.cfg.policy.tool_descriptions },
      sampling: {
        temperature: this.cfg.sampling.temperature,
        top_p: this.cfg.sampling.top_p,
        max_new_tokens: this.cfg.sampling.max_new_tokens,
      },
      model: exported.describe.model,
      step,
    };
    writeJsonAtomic(join(dir, 'config.json'), config);
    writeJsonAtomic(join(dir, 'tokenizer.json'), this.tokenizer.toJSON());
    const policy = await loadOnnxPolicy(dir);
    const previous = this.policy;
    this.policy = policy;
    if (!this.agent) {
      this.agent = new OnnxPolicyAgent(policy, { name: 'onnx:train' });
      this.evalAgent = new OnnxPolicyAgent(policy, {
        name: 'onnx:eval',
        ...(this.cfg.eval.temperature === undefined ? {} : { temperature: this.cfg.eval.temperature }),
      });
      if (this.cfg.eval.greedy)
        this.greedyAgent = new OnnxPolicyAgent(policy, { name: 'onnx:greedy', temperature: 0 });
    } else {
      this.agent.setPolicy(policy);
      this.evalAgent!.setPolicy(policy);
      this.greedyAgent?.setPolicy(policy);
    }
    if (previous) {
      await previous.close();
      rmSync(previous.dir, { recursive: true, force: true });
    }
    return performance.now() - started;
  }

  private async evaluate(heldout: readonly Task[], step: number): Promise<EvalSummary> {
    const started = performance.now();
    const tasks = heldout.slice(0, this.cfg.eval.max_tasks ?? heldout.length);
    const play = async (agent: Agent, name: string): Promise<number[]> => {
      const episodes = await runEpisodes({
        runId: `${name}-${pad(step)}`,
        tasks,
        plan: planEpisodes(tasks, {
          epochs: this.cfg.eval.episodes_per_task,
          seed: mixSeed(this.cfg.seed, 0xe7a1),
        }),
        agent,
        ...this.episodeOptions(),
        maxAttempts: 2,
        retryDelayMs: 100,
      });
      return episodes.map((episode) => (isAgentOutcome(episode) ? episode.reward.total : 0));
    };
    const passRate = (rewards: readonly number[]): number =>
      mean(rewards.map((reward) => (reward >= this.cfg.pass_threshold ? 1 : 0)));
    const rewards = await play(this.evalAgent!, 'eval');
    const greedy = this.greedyAgent ? await play(this.greedyAgent, 'eval-greedy') : undefined;
    const summary: EvalSummary = {
      step,
      success: passRate(rewards),
      rewardMean: mean(rewards),
      episodes: rewards.length,
      ...(greedy ? { successGreedy: passRate(greedy) } : {}),
    };
    this.writeRow({
      type: 'eval',
      step,
      success: summary.success,
      reward_mean: summary.rewardMean,
      episodes: summary.episodes,
      ...(greedy ? { success_greedy: summary.successGreedy } : {}),
      eval_ms: performance.now() - started,
    });
    this.log(
      `eval at step ${step}: held-out success ${summary.success.toFixed(3)}` +
        (greedy ? ` (greedy ${summary.successGreedy!.toFixed(3)})` : '') +
        ` over ${summary.episodes} episodes`,
    );
    return summary;
  }

  private evalSummaryOf(row: MetricRow): EvalSummary {
    return {
      step: row.step,
      success: Number(row.success),
      rewardMean: Number(row.reward_mean),
      episodes: Number(row.episodes),
      ...(typeof row.success_greedy === 'number' ? { successGreedy: row.success_greedy } : {}),
    };
  }

  // --- checkpoints and metrics ------------------------------------------------------------

  private readState(): unknown {
    const path = join(this.dir, 'state.json');
    return existsSync(path) ? readJson(path) : undefined;
  }

  private async checkpoint(step: number, previous: TrainState | undefined): Promise<void> {
    const name = `checkpoints/step-${pad(step)}.pt`;
    await this.trainer!.save(join(this.dir, name), { step });
    const kept = [...(previous?.checkpoints ?? []).filter((path) => path !== name), name];
    const keep = this.cfg.checkpoint.keep;
    const dropped = kept.splice(0, Math.max(0, kept.length - keep));
    writeJsonAtomic(join(this.dir, 'state.json'), {
      step,
      checkpoint: name,
      checkpoints: kept,
    } satisfies TrainState);
    // Only once state.json names the new checkpoint may older ones go.
    for (const path of dropped) rmSync(join(this.dir, path), { force: true });
  }

  private readRows(): MetricRow[] {
    const path = join(this.dir, 'metrics.jsonl');
    if (!existsSync(path)) return [];
    const rows: MetricRow[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        rows.push(JSON.parse(line) as MetricRow);
      } catch {
        // A line cut short by a kill is dropped: its step is recomputed from the checkpoint.
      }
    }
    return rows;
  }

  private writeRow(row: MetricRow): void {
    this.rows.push(row);
    appendFileSync(join(this.dir, 'metrics.jsonl'), JSON.stringify(row) + '\n');
    if (row.type !== 'sft')
      writeFileSync(
        join(this.dir, 'learning-curve.svg'),
        learningCurveSvg(this.rows, 'paddock training: ' + this.dir.split('/').pop()),
      );
    this.options.onStep?.(row);
  }
}
