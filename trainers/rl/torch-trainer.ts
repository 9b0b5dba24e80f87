/**
 * Typed calls of the torch worker's protocol (trainers/torch/PROTOCOL.md). Results are
 * parsed with schemas: the worker is another process, its answers are outside data.
 */
import { z } from 'zod';
import type { TokenSequence } from './batch.ts';
import { trainerError } from './errors.ts';
import {
  encodeFloat64,
  encodeInt32,
  TorchWorker,
  type TorchWorkerOptions,
  type WorkerHello,
} from './worker.ts';

/**
 * What the worker trains: a Hugging Face causal-LM folder (Llama, Qwen2 and Qwen3 natively,
 * in fp32 master weights; other architectures through `transformers`, or always with
 * `native: false`).
 */
export interface PolicySpec {
  kind: 'hf';
  path: string;
  native?: boolean;
  /**
   * Make the folder's model first when it has none (a model trained from scratch): a
   * randomly initialised `family` model (`hf_native.tiny_config` with `config`'s keys,
   * `vocab_size` required).
   */
  create?: { family: string; seed: number; config: Record<string, unknown> };
}

/** AdamW and the learning-rate schedule. */
export interface OptimizerConfig {
  lr: number;
  betas?: [number, number];
  eps?: number;
  /** @default 0 */
  weight_decay?: number;
  /** @default 0 */
  warmup_steps?: number;
  /** Optimiser steps the schedule spans. */
  total_steps: number;
  /** @default 'constant' */
  schedule?: 'constant' | 'cosine';
  /** Cosine floor as a fraction of lr. @default 0.1 */
  min_lr_ratio?: number;
  /** Gradient-norm clip. @default 1 */
  grad_clip?: number;
}

/** The policy-gradient loss (trainers/torch/PROTOCOL.md, `train_step`). */
export interface LossConfig {
  /** PPO clip below 1. @default 0.2 */
  clip_low?: number;
  /** PPO clip above 1. @default clip_low */
  clip_high?: number;
  /** Dual-clip PPO's c (> 1): for A < 0 the token loss is capped at −c·A. 0 or absent: off. */
  dual_clip?: number;
  /** |log π/π_old| and |log π_ref/π| are clamped to this before exp. @default 20 */
  log_ratio_clamp?: number;
  /** Weight of the KL penalty to the reference. @default 0 */
  kl_coef?: number;
  /** How the KL penalty enters (see trainers/rl/config.ts `kl_estimator`). @default 'k3' */
  kl_estimator?: 'k3' | 'k2' | 'k1-reward';
  /** Run the reference and report `kl` even when `kl_coef` is 0. @default false */
  kl_metric?: boolean;
  /** Weight of the entropy bonus. @default 0 */
  entropy_coef?: number;
  /** The sampling temperature the logprobs were taken at. @default 1 */
  temperature?: number;
  /** @default 'token-mean' */
  agg?: 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum-norm';
  /** `seq-mean-token-sum-norm`'s constant divisor, in tokens (required with it). */
  norm_tokens?: number;
  /**
   * Off-policy rollouts: the ratio against the trainer's own log-probs before the update,
   * tokens weighted by min(π_old/π_rollout, is_cap) (`tis`) or masked outside
   * [1/is_cap, is_cap] (`mask`). @default 'none'
   */
  rollout_correction?: 'none' | 'tis' | 'mask';
  /** The cap of `rollout_correction`. @default 2 */
  is_cap?: number;
}

/** LoRA as PEFT defines it (trainers/torch/lora.py). */
export interface LoraSpec {
  r: number;
  alpha: number;
  dropout?: number;
  /** Module names (a name matches when it ends with `.<entry>`); the attention and MLP projections by default. */
  target_modules?: string[];
}

const InfoSchema = z.object({
  device: z.string(),
  dtype: z.string(),
  torch: z.string(),
  cuda: z.boolean(),
  params: z.number(),
  policy: z.object({
    kind: z.string(),
    vocab_size: z.number(),
    max_len: z.number(),
    kv_cache: z.object({ layers: z.number(), heads: z.number(), head_dim: z.number() }).nullable(),
    model: z.record(z.string(), z.unknown()),
  }),
  /** Sampled tokens per chunk of the log-prob computation (0: all at once). */
  logprob_chunk: z.number().optional(),
  activation_checkpointing: z.boolean().optional(),
  /** Parameters the optimiser updates (all of them, or the LoRA adapters'). */
  trainable_params: z.number().optional(),
  /** The LoRA adapters' PEFT config, when the policy trains with LoRA. */
  lora: z.record(z.string(), z.unknown()).nullish(),
  /** Processes the update runs on (torchrun ranks; 1 without torchrun). */
  world_size: z.number().optional(),
  /** Under torchrun: each rank's process id and device. */
  ranks: z.array(z.object({ rank: z.number(), pid: z.number(), device: z.string() })).optional(),
});

export type WorkerInfo = z.infer<typeof InfoSchema>;

/** Numeric metrics of a step; see trainers/torch/PROTOCOL.md for their names. */
const MetricsSchema = z.record(z.string(), z.number());

export type StepMetrics = Record<string, number>;

const ExportSchema = z.object({
  path: z.string(),
  /** The model file's size and its external data files' (a graph over 2 GiB has its weights in those). */
  bytes: z.number(),
  external_data_files: z.number().optional(),
  ms: z.number(),
  describe: InfoSchema.shape.policy,
});
const LoadSchema = z.object({ opt_step: z.number(), meta: z.record(z.string(), z.unknown()) });
const SaveHfSchema = z.object({ path: z.string(), dtype: z.string(), ms: z.number() });
const SaveAdapterSchema = z.object({ path: z.string(), ms: z.number() });
const HashSchema = z.object({ sha256: z.string(), opt_step: z.number() });
const LogprobsSchema = z.object({ logprobs: z.array(z.array(z.number())) });

function parse<T>(schema: z.ZodType<T>, value: unknown, cmd: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw trainerError(`the torch worker answered ${cmd} with an unexpected shape`);
  return parsed.data;
}

/** A started worker with typed calls. */
export class TorchTrainer {
  private constructor(
    readonly worker: TorchWorker,
    readonly hello: WorkerHello,
  ) {}

  /** Spawns the worker (see TorchWorker.start). */
  static async start(options: TorchWorkerOptions = {}): Promise<TorchTrainer> {
    const { worker, hello } = await TorchWorker.start(options);
    return new TorchTrainer(worker, hello);
  }

  /** Builds the policy on `device`, seeding torch first. */
  async init(args: {
    policy: PolicySpec;
    device?: 'auto' | 'cpu' | 'cuda';
    seed?: number;
    threads?: number;
    bf16?: boolean;
    /** Sampled tokens per chunk of the log-prob computation; 0: all at once. @default 1024 */
    logprob_chunk?: number;
    /** Recompute transformer blocks in the backward pass. @default false */
    activation_checkpointing?: boolean;
    /** LoRA adapters on `target_modules` (PEFT's names), everything else frozen: hf policies of a native architecture. */
    lora?: LoraSpec;
  }): Promise<WorkerInfo> {
    return parse(InfoSchema, await this.worker.request('init', args), 'init');
  }

  /** A fresh AdamW and schedule (the schedule's step restarts at 0). */
  async configureOptimizer(optim: OptimizerConfig): Promise<void> {
    await this.worker.request('configure_optimizer', { optim });
  }

  /** Changes the optimiser's hyper-parameters, keeping its state and step. */
  async updateOptimizer(optim: Partial<OptimizerConfig>): Promise<void> {
    await this.worker.request('update_optimizer', { optim });
  }

  /** Freezes the current weights as the KL reference. */
  async setReference(): Promise<void> {
    await this.worker.request('set_reference');
  }

  /** One policy-gradient update (or `epochs × mini_batches` of them) on `sequences`. */
  async trainStep(
    sequences: readonly TokenSequence[],
    options: {
      loss: LossConfig;
      microBatch: number;
      epochs?: number;
      miniBatches?: number;
      signal?: AbortSignal;
    },
  ): Promise<StepMetrics> {
    const result = await this.worker.request(
      'train_step',
      {
        sequences: sequences.map((sequence) => ({
          ids: encodeInt32(sequence.ids),
          mask: encodeInt32(sequence.mask),
          advantages: encodeFloat64(sequence.advantages),
          logprobs: encodeFloat64(sequence.logprobs),
        })),
        loss: options.loss,
        micro_batch: options.microBatch,
        epochs: options.epochs ?? 1,
        mini_batches: options.miniBatches ?? 1,
      },
      options.signal ? { signal: options.signal } : {},
    );
    return parse(MetricsSchema, result, 'train_step');
  }

  /** One supervised step: cross-entropy on tokens whose mask is 1. */
  async sftStep(
    sequences: readonly { ids: readonly number[]; mask: readonly number[] }[],
    options: { microBatch: number; labelSmoothing?: number; signal?: AbortSignal },
  ): Promise<StepMetrics> {
    const result = await this.worker.request(
      'sft_step',
      {
        sequences: sequences.map((sequence) => ({
          ids: encodeInt32(sequence.ids),
          mask: encodeInt32(sequence.mask),
        })),
        micro_batch: options.microBatch,
        label_smoothing: options.labelSmoothing ?? 0,
      },
      options.signal ? { signal: options.signal } : {},
    );
    return parse(MetricsSchema, result, 'sft_step');
  }

  /** Log-probabilities of `ids[1..]` of each sequence under the worker's current weights. */
  async logprobs(sequences: readonly (readonly number[])[], temperature = 1): Promise<number[][]> {
    const result = await this.worker.request('logprobs', {
      sequences: sequences.map((ids) => encodeInt32(ids)),
      temperature,
    });
    return parse(LogprobsSchema, result, 'logprobs').logprobs;
  }

  /** Writes the policy as ONNX to `path` (atomically). */
  async exportOnnx(path: string, opset = 14): Promise<z.infer<typeof ExportSchema>> {
    return parse(ExportSchema, await this.worker.request('export_onnx', { path, opset }), 'export_onnx');
  }

  /**
   * Writes the current weights as a Hugging Face folder at `path` (config.json, safetensors,
   * generation_config.json and the source folder's tokenizer files): `hf` policies of a
   * natively implemented architecture (llama, qwen2, qwen3) only. `dtype` defaults to the
   * checkpoint's declared one.
   */
  async saveHf(
    path: string,
    dtype?: 'float32' | 'bfloat16' | 'float16',
  ): Promise<z.infer<typeof SaveHfSchema>> {
    return parse(
      SaveHfSchema,
      await this.worker.request('save_hf', { path, ...(dtype ? { dtype } : {}) }),
      'save_hf',
    );
  }

  /** Writes the LoRA adapter as a PEFT folder (adapter_config.json, adapter_model.safetensors). */
  async saveAdapter(path: string): Promise<z.infer<typeof SaveAdapterSchema>> {
    return parse(SaveAdapterSchema, await this.worker.request('save_adapter', { path }), 'save_adapter');
  }

  /** Saves a checkpoint (weights, reference, optimiser, schedule step, RNG states, `meta`) atomically. */
  async save(path: string, meta: Record<string, unknown> = {}): Promise<void> {
    await this.worker.request('save', { path, meta });
  }

  /** Loads a checkpoint; returns its optimiser step and `meta`. */
  async load(path: string): Promise<z.infer<typeof LoadSchema>> {
    return parse(LoadSchema, await this.worker.request('load', { path }), 'load');
  }

  /** SHA-256 of the weights (for checking that two runs ended the same). */
  async stateHash(): Promise<z.infer<typeof HashSchema>> {
    return parse(HashSchema, await this.worker.request('state_hash'), 'state_hash');
  }

  /** Stops the worker (see TorchWorker.close). */
  close(): Promise<void> {
    return this.worker.close();
  }
}
