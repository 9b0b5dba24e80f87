/**
 * The rollout → train loop, composed of its parts:
 *
 *   load tasks → warm start (warm-start.ts: demonstrations, tokenizer, SFT through the
 *   torch worker, on one process or several under torchrun) → checkpoint "step 0" →
 *   publish the policy to the rollout engine (rollout-engine.ts: the ONNX policy in process,
 *   live-policy.ts, or an inference server, server-engine.ts) → evaluate held-out
 *   (evaluation.ts)
 *   → for each step (rl-step.ts): rollouts → group rewards (`playStep`, scheduled up to
 *     `rollout.max_off_policy_steps` steps ahead) → advantages → token batches → worker
 *     update → publish (`trainOnRollouts`); evaluate and checkpoint on their cadence
 *   → final evaluation, summary.json, policy/ (the trained ONNX policy) and model/
 *
 * The output folder and resuming from it are run-folder.ts; every episode played is a
 * record in the run store under `<output>/runs` (runs.ts).
 *
 * Determinism: task sampling, episode seeds and the worker's initialisation derive from
 * `seed` and the step number only, so a synchronous run resumed from a checkpoint (after a
 * crash or a kill -9) continues exactly as the uninterrupted run would have (on the same
 * machine and thread count: CPU results are bit-identical, CUDA results close). An
 * asynchronous run resumes with the same tasks and seeds, sampled by the checkpoint's policy.
 */
import { appendFileSync, cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  ERROR_CODES,
  PaddockError,
  isPaddockError,
  type RunEpisodesOptions,
  type SandboxProvider,
  type Task,
  type Tokenizer,
  type ToolProvider,
} from '../../harness/index.ts';
import type { Demonstration } from './batch.ts';
import { loadTrainConfig, parseTrainConfig, type TrainConfig, type TrainConfigInput } from './config.ts';
import { checkAborted, type TrainingContext } from './context.ts';
import { evaluate, evalSummaryOf, type EvalSummary } from './evaluation.ts';
import { LivePolicy } from './live-policy.ts';
import { playStep, rlOptimizer, rolloutCorrection, trainOnRollouts, type StepRollouts } from './rl-step.ts';
import type { RolloutEngine } from './rollout-engine.ts';
import { ServerEngine } from './server-engine.ts';
import { RunFolder, readJson, writeJsonAtomic, type MetricRow } from './run-folder.ts';
import { TorchTrainer, type PolicySpec } from './torch-trainer.ts';
import {
  fineTune,
  modelFolder,
  policyFormatFor,
  readTokenizer,
  recordDemonstrations,
  writeScratchTokenizer,
} from './warm-start.ts';

export type { EvalSummary } from './evaluation.ts';
export type { MetricRow } from './run-folder.ts';

export interface TrainOptions {
  /**
   * Loads task folders or suites into tasks. The composition root passes the task loader
   * (with the `toy` extension registered); tests may build tasks directly.
   */
  loadTasks: (paths: readonly string[]) => Promise<Task[]>;
  /**
   * Tool plug-ins of the episodes (the composition root passes its plug-ins' providers; the
   * toy suite needs `toyToolProvider`). `[]` for tasks whose tools all come from their sandbox.
   */
  toolProviders: readonly ToolProvider[];
  /** Needed when tasks have a sandbox. */
  sandboxProvider?: SandboxProvider;
  /**
   * The reward functions of each task (turn, trajectory, group, constraints, credit
   * assignment), as the composition root builds them from the tasks' `rewards` / `credit`
   * sections; called for every task before the warm start (so build errors come first;
   * cache what it builds) and again by the rollouts. Tool sessions' scores (the toy tools'
   * `correct`) count without it.
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
  /** The final ONNX policy folder (`onnx:<policyDir>`), with the in-process (`onnx`) rollout engine. */
  policyDir?: string;
  /**
   * With a Hugging Face `policy.model` of a native architecture (Llama, Qwen2, Qwen3): the
   * final weights as a Hugging Face folder (`<output>/model`: config.json, safetensors,
   * tokenizer files), loadable by `transformers` and as a later run's `policy.model`.
   */
  modelDir?: string;
  /**
   * With `policy.lora`: the trained adapter as a PEFT folder (`<output>/adapter`:
   * adapter_config.json, adapter_model.safetensors); `modelDir` holds it merged.
   */
  adapterDir?: string;
  /**
   * The run store of every episode the run played (`paddock view <run-id> --runs-dir
   * <runsDir>`): runs `demos`, `step-N`, `eval-N`, `eval-N-greedy`.
   */
  runsDir: string;
  /** SHA-256 of the final weights. */
  weightsSha256: string;
}

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
  if (RunFolder.holdsRun(cfg.output)) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${cfg.output} holds a training run already: continue it with \`paddock train --resume ${cfg.output}\` (resumeTraining), or choose another output`,
    );
  }
  mkdirSync(cfg.output, { recursive: true });
  writeJsonAtomic(join(cfg.output, 'config.json'), cfg);
  return runTraining(cfg, options, false);
}

/**
 * Continues the run in `dir` from its last checkpoint (after a crash, kill -9 or abort),
 * with the config it was started with. Rows and episode runs of the steps after that
 * checkpoint are dropped and recomputed. A run that never reached its first checkpoint
 * starts over.
 */
export async function resumeTraining(dir: string, options: TrainOptions): Promise<TrainResult> {
  const folder = new RunFolder(dir);
  if (!RunFolder.holdsRun(dir))
    throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `${dir} holds no training run`);
  const file = folder.path('config.json');
  const cfg = parseTrainConfig(readJson(file), { file });
  return runTraining(cfg, options, existsSync(folder.path('state.json')));
}

/**
 * What the worker makes a model trained from scratch from: `policy.scratch` as a Hugging
 * Face config of its family, sized to the tokenizer, initialised from `seed` (its special
 * ids come from the folder's generation_config.json, written with the tokenizer).
 */
function scratchModel(
  scratch: NonNullable<TrainConfig['policy']['scratch']>,
  tokenizer: Tokenizer,
  seed: number,
): NonNullable<PolicySpec['create']> {
  return {
    family: scratch.family,
    seed,
    config: {
      vocab_size: tokenizer.vocabSize,
      hidden_size: scratch.hidden_size,
      intermediate_size: scratch.intermediate_size ?? 4 * scratch.hidden_size,
      num_hidden_layers: scratch.layers,
      num_attention_heads: scratch.heads,
      num_key_value_heads: scratch.kv_heads ?? scratch.heads,
      head_dim: scratch.hidden_size / scratch.heads,
      max_position_embeddings: scratch.max_len,
      rope_theta: scratch.rope_theta,
      tie_word_embeddings: scratch.tie_embeddings,
    },
  };
}

async function runTraining(cfg: TrainConfig, options: TrainOptions, resume: boolean): Promise<TrainResult> {
  const started = performance.now();
  const signal = options.signal ?? new AbortController().signal;
  const folder = new RunFolder(cfg.output, options.onStep);
  const context: TrainingContext = {
    cfg,
    folder,
    signal,
    episodes: {
      toolProviders: options.toolProviders,
      ...(options.sandboxProvider ? { sandboxProvider: options.sandboxProvider } : {}),
      ...(options.rewardsFor ? { rewardsFor: options.rewardsFor } : {}),
      signal,
      concurrency: cfg.rollout.concurrency,
    },
    log: (line) => options.log?.(line),
  };
  // What the run started, closed whatever happens.
  let worker: TorchTrainer | undefined;
  let live: RolloutEngine | undefined;
  try {
    // --- tasks, and every task's rewards built before the warm start (a judge without a
    // key, a missing model stop the run now, not minutes later) ---------------------------
    const trainTasks = await options.loadTasks(cfg.tasks.train);
    const heldout = cfg.tasks.heldout.length > 0 ? await options.loadTasks(cfg.tasks.heldout) : [];
    if (trainTasks.length === 0)
      throw new PaddockError(ERROR_CODES.TASK_NOT_FOUND, 'no train tasks were loaded');
    const taskMap = new Map([...trainTasks, ...heldout].map((task) => [task.id, task]));
    if (options.rewardsFor) for (const task of taskMap.values()) await options.rewardsFor(task);

    // --- the folder, demonstrations and tokenizer -----------------------------------------
    const state = folder.open(resume);
    let demos: Demonstration[] = [];
    if (!state && cfg.sft) demos = await recordDemonstrations(context, trainTasks);
    const format = policyFormatFor(cfg);
    // A model trained from scratch gets its tokenizer files first; resumed, it has them.
    if (!state && cfg.policy.scratch) writeScratchTokenizer(cfg, trainTasks, demos);
    const tokenizer = readTokenizer(cfg);

    // --- worker ---------------------------------------------------------------------------
    const trainer = await TorchTrainer.start({
      ...(cfg.worker.python ? { python: cfg.worker.python } : {}),
      requestTimeoutMs: cfg.worker.timeout_sec * 1000,
      signal,
      onStderr: (text) => appendFileSync(folder.path('worker.log'), text),
      ...(options.workerEnv ? { env: options.workerEnv } : {}),
      ...(cfg.worker.torchrun
        ? {
            distributed: {
              nprocPerNode: cfg.worker.torchrun.nproc_per_node,
              nnodes: cfg.worker.torchrun.nnodes,
              nodeRank: cfg.worker.torchrun.node_rank,
              masterAddr: cfg.worker.torchrun.master_addr,
              ...(cfg.worker.torchrun.master_port ? { masterPort: cfg.worker.torchrun.master_port } : {}),
              backend: cfg.worker.torchrun.backend,
            },
          }
        : {}),
    });
    worker = trainer;
    const policySpec: PolicySpec = {
      kind: 'hf',
      path: modelFolder(cfg),
      ...(cfg.policy.scratch ? { create: scratchModel(cfg.policy.scratch, tokenizer, cfg.seed) } : {}),
    };
    const info = await trainer.init({
      policy: policySpec,
      device: cfg.device,
      seed: cfg.seed,
      ...(cfg.threads ? { threads: cfg.threads } : {}),
      logprob_chunk: cfg.algorithm.logprob_chunk,
      activation_checkpointing: cfg.algorithm.activation_checkpointing,
      ...(cfg.policy.lora
        ? {
            lora: {
              r: cfg.policy.lora.rank,
              alpha: cfg.policy.lora.alpha ?? 2 * cfg.policy.lora.rank,
              dropout: cfg.policy.lora.dropout,
              ...(cfg.policy.lora.target_modules ? { target_modules: cfg.policy.lora.target_modules } : {}),
            },
          }
        : {}),
    });
    context.log(
      `worker: torch ${info.torch} on ${info.device} (${info.dtype}), ${info.params} parameters` +
        (info.lora ? `, ${info.trainable_params} of them in LoRA adapters` : '') +
        (info.ranks && info.ranks.length > 1
          ? `, ${info.ranks.length} ranks (pids ${info.ranks.map((rank) => rank.pid).join(', ')})`
          : ''),
    );

    // --- step 0: warm start, or the checkpoint resumed from ------------------------------
    let step = 0;
    if (state) {
      const loaded = await trainer.load(folder.path(state.checkpoint));
      step = state.step;
      // The config's RL hyper-parameters apply (the same as the checkpoint's unless edited).
      await trainer.updateOptimizer(rlOptimizer(cfg));
      context.log(`resumed from ${state.checkpoint} (step ${step}, optimiser step ${loaded.opt_step})`);
    } else {
      if (cfg.sft && cfg.sft.steps > 0) {
        const template = format.chatTemplate(tokenizer);
        await fineTune(context, trainer, info.policy.max_len, demos, template);
      }
      await trainer.configureOptimizer(rlOptimizer(cfg));
      if (cfg.algorithm.reference || cfg.algorithm.kl > 0 || cfg.algorithm.kl_metric)
        await trainer.setReference();
      await folder.checkpoint(0, cfg.checkpoint.keep, (path) => trainer.save(path, { step: 0 }));
    }

    const policy: RolloutEngine =
      cfg.rollout.engine === 'server'
        ? await ServerEngine.start({ cfg, folder, trainer, signal, log: (line) => context.log(line) })
        : new LivePolicy(cfg, folder, trainer, tokenizer, format);
    live = policy;
    await policy.publish(step);
    const evaluationAt = (at: number): EvalSummary | undefined => {
      const row = [...folder.rows]
        .reverse()
        .find((candidate) => candidate.type === 'eval' && candidate.step === at);
      return row && evalSummaryOf(row);
    };
    let before = evaluationAt(0);
    // Step 0's evaluation follows its checkpoint: a run killed before it ended evaluates again.
    if (!before && step === 0 && heldout.length > 0)
      before = await evaluate(context, heldout, 0, policy.evalAgents);

    // --- the RL steps ---------------------------------------------------------------------
    // Rollouts are played one step after another; step t's may start once the policy is at
    // version t − 1 − max_off_policy_steps, so with 0 each step's rollouts follow the previous
    // update (synchronous), and with k > 0 they run during the k updates before theirs.
    const offPolicy = cfg.rollout.max_off_policy_steps;
    const correction = rolloutCorrection(cfg);
    const rolloutsAbort = new AbortController();
    const stopRollouts = (): void => rolloutsAbort.abort();
    signal.addEventListener('abort', stopRollouts, { once: true });
    const rolloutContext: TrainingContext = {
      ...context,
      signal: rolloutsAbort.signal,
      episodes: { ...context.episodes, signal: rolloutsAbort.signal },
    };
    const scheduled = new Map<number, Promise<StepRollouts>>();
    let played: Promise<unknown> = Promise.resolve();
    let nextToSchedule = step + 1;
    const schedule = (at: number): void => {
      const rollouts = played.then(async () => {
        await policy.gate.reached(at - 1 - offPolicy, rolloutsAbort.signal);
        return playStep(rolloutContext, at, trainTasks, taskMap, policy.agent);
      });
      rollouts.catch(() => undefined); // awaited by its step; a failure is reported there
      played = rollouts;
      scheduled.set(at, rollouts);
    };
    try {
      for (step = step + 1; step <= cfg.steps; step++) {
        checkAborted(signal);
        for (; nextToSchedule <= Math.min(step + offPolicy, cfg.steps); nextToSchedule++)
          schedule(nextToSchedule);
        const waitStartedAt = performance.now();
        const rollouts = await scheduled.get(step)!;
        scheduled.delete(step);
        await trainOnRollouts(context, rollouts, taskMap, {
          trainer,
          maxLen: info.policy.max_len,
          publish: (at) => policy.publish(at),
          correction,
          waitStartedAt,
        });
        // A skipped update leaves the weights as they were: they are this step's version too.
        if (policy.gate.version < step) await policy.gate.swap(step, async () => undefined);
        if (heldout.length > 0 && (step % cfg.eval.every === 0 || step === cfg.steps))
          await evaluate(context, heldout, step, policy.evalAgents);
        if (step % cfg.checkpoint.every === 0 || step === cfg.steps) {
          const at = step;
          await folder.checkpoint(at, cfg.checkpoint.keep, (path) => trainer.save(path, { step: at }));
        }
      }
    } finally {
      signal.removeEventListener('abort', stopRollouts);
      rolloutsAbort.abort();
      await Promise.allSettled(scheduled.values());
    }

    // --- the result -----------------------------------------------------------------------
    const after = heldout.length > 0 ? evaluationAt(cfg.steps) : undefined;
    let policyDir: string | undefined;
    if (policy instanceof LivePolicy) {
      policyDir = folder.path('policy');
      rmSync(policyDir, { recursive: true, force: true });
      cpSync(policy.dir, policyDir, { recursive: true });
    }
    let modelDir: string | undefined;
    if (info.policy.kind === 'hf-native') {
      modelDir = folder.path('model');
      rmSync(modelDir, { recursive: true, force: true });
      await trainer.saveHf(modelDir);
    }
    let adapterDir: string | undefined;
    if (cfg.policy.lora) {
      adapterDir = folder.path('adapter');
      rmSync(adapterDir, { recursive: true, force: true });
      await trainer.saveAdapter(adapterDir);
    }
    const hash = await trainer.stateHash();
    const result: TrainResult = {
      dir: cfg.output,
      steps: cfg.steps,
      ...(before ? { before } : {}),
      ...(after ? { after } : {}),
      wallMs: performance.now() - started,
      ...(policyDir ? { policyDir } : {}),
      ...(modelDir ? { modelDir } : {}),
      ...(adapterDir ? { adapterDir } : {}),
      runsDir: folder.runs.dir,
      weightsSha256: hash.sha256,
    };
    writeJsonAtomic(folder.path('summary.json'), result);
    context.log(
      `done: ${cfg.steps} steps${before && after ? `, held-out success ${before.success.toFixed(3)} → ${after.success.toFixed(3)}` : ''}`,
    );
    return result;
  } catch (error) {
    if (signal.aborted && !isPaddockError(error, ERROR_CODES.ABORTED)) {
      throw new PaddockError(ERROR_CODES.ABORTED, 'training was aborted', { cause: error });
    }
    throw error;
  } finally {
    await live?.close();
    await worker?.close();
  }
}
