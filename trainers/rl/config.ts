/**
 * `train.yaml`: what `paddock train` runs. Strict (an unknown key is an error), snake_case,
 * validated with zod; every error names the file and the field. Paths are relative to the
 * file's folder.
 *
 * ```yaml
 * tasks:
 *   train: [tasks/toy/lookup-train]      # task folders or suites
 *   heldout: [tasks/toy/lookup-heldout]  # evaluated every eval.every steps
 *   per_step: 8                          # tasks sampled per step
 * policy:
 *   scratch: { family: llama, hidden_size: 128, layers: 2, heads: 4, max_len: 256 }   # a new HF folder
 *   # or model: <HF folder> (a checkpoint, with its own tokenizer and chat template)
 * algorithm: { name: grpo, level: trajectory, group_size: 8, lr: 3e-4, clip: 0.2, kl: 0, entropy: 0 }
 * sampling: { temperature: 1, top_p: 1, max_new_tokens: 48 }
 * sft: { data: oracle, episodes: 32, steps: 40, lr: 1e-3 }
 * steps: 60
 * eval: { every: 10 }
 * checkpoint: { every: 5 }
 * device: auto
 * seed: 0
 * output: runs/train-toy
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError, formatZodIssues } from '../../harness/index.ts';

const positiveInt = z.number().int().positive();
const nonNegative = z.number().min(0);

/**
 * A model trained from scratch in Hugging Face's format: the trainer writes its folder
 * (`<output>/base-model`: a byte-level BPE tokenizer learned from the demonstrations and
 * instructions, ChatML with Hermes tool calls, a randomly initialised model of `family`),
 * and from then on it is trained as any `policy.model` is.
 */
export const ScratchPolicySchema = z
  .object({
    /** @default llama */
    family: z.enum(['llama', 'qwen2', 'qwen3']).default('llama'),
    hidden_size: positiveInt,
    layers: positiveInt,
    heads: positiveInt,
    /** Grouped-query attention's key/value heads. @default heads */
    kv_heads: positiveInt.optional(),
    /** The MLP's width. @default 4 × hidden_size */
    intermediate_size: positiveInt.optional(),
    /** Longest context, in tokens (max_position_embeddings). */
    max_len: positiveInt,
    /** RoPE's base. @default 10000 */
    rope_theta: z.number().positive().default(10_000),
    /** Share the input embedding with the output head. @default false */
    tie_embeddings: z.boolean().default(false),
    /** Merges of the byte-level BPE (at most; learning stops when no pair repeats). @default 400 */
    merges: z.number().int().min(0).max(100_000).default(400),
  })
  .strict()
  .refine((model) => model.hidden_size % model.heads === 0, {
    message: 'hidden_size must be a multiple of heads',
    path: ['hidden_size'],
  })
  .refine((model) => model.heads % (model.kv_heads ?? model.heads) === 0, {
    message: 'heads must be a multiple of kv_heads',
    path: ['kv_heads'],
  });

/**
 * An inference server as the rollout engine (`rollout.engine: server`). After each update
 * the trainer writes the new weights (a Hugging Face folder) or the LoRA adapter (a PEFT
 * folder) under `<output>/served/` and tells the server to load them through its own
 * endpoint (trainers/rl/server-engine.ts names each one and the source it was read from).
 */
export const ServerEngineSchema = z
  .object({
    /** `vllm` or `sglang`: which update endpoints it has. */
    kind: z.enum(['vllm', 'sglang']),
    /** The server's root URL (its OpenAI API is `<url>/v1`). */
    url: z.string().url(),
    /**
     * A shell command that starts the server, run by paddock (and stopped at the end) when
     * the URL does not answer yet; `{model}` is replaced by the policy's Hugging Face folder.
     * Absent: the server runs already.
     */
    command: z.string().min(1).optional(),
    /** How long the server may take to answer its health endpoint. @default 900 */
    start_timeout_sec: z.number().positive().default(900),
    /** The served model's name in requests. @default the first of `<url>/v1/models` */
    model: z.string().min(1).optional(),
    /**
     * How the new policy reaches it: `weights` (the full weights from disk: SGLang
     * `/update_weights_from_disk`, vLLM `/collective_rpc` with `reload_weights`), `lora`
     * (the adapter loaded at run time: `/load_lora_adapter`; needs `policy.lora`).
     * @default lora with policy.lora, else weights
     */
    sync: z.enum(['weights', 'lora']).optional(),
    /** The dtype of the weights written for it. @default the checkpoint's */
    dtype: z.enum(['float32', 'bfloat16', 'float16']).optional(),
    /**
     * Which distribution the server's logprobs come from, as it was started (vLLM
     * `--logprobs-mode`: `raw` by default, `processed` with `processed_logprobs`; SGLang:
     * `temperature-scaled`). The loss needs the sampling distribution's, so with a
     * temperature other than 1, vLLM must run with `--logprobs-mode processed_logprobs` and
     * this say `processed`. @default the server's default
     */
    logprobs_mode: z.enum(['raw', 'temperature-scaled', 'processed']).optional(),
    /** Token-in/token-out mode of the rollout agent (agents/openai `tito`). @default off */
    tito: z.enum(['off', 'chat', 'completions']).default('off'),
    /** Bearer token of the server. @default none */
    api_key: z.string().min(1).optional(),
    /** Limit of one model call, in seconds. @default 600 */
    timeout_sec: z.number().positive().default(600),
  })
  .strict();

export const TrainConfigSchema = z
  .object({
    tasks: z
      .object({
        train: z.array(z.string().min(1)).min(1),
        heldout: z.array(z.string().min(1)).default([]),
        /** Tasks sampled per step. @default 8 */
        per_step: positiveInt.default(8),
      })
      .strict(),
    policy: z
      .object({
        scratch: ScratchPolicySchema.optional(),
        /** Replaced by `scratch` (kept only to say so). */
        builtin: z.unknown().optional(),
        /**
         * A Hugging Face causal-LM folder: Llama, Qwen2 and Qwen3 load natively in the worker
         * (other architectures need `transformers` in its Python). The model's own tokenizer
         * and chat template are used.
         */
        model: z.string().min(1).optional(),
        /**
         * With `model` or `scratch`: train LoRA adapters (PEFT's definition) instead of every
         * weight. The run ends with the adapter as a PEFT folder (`<output>/adapter`) and the
         * merged model (`<output>/model`); rollouts use the merged weights.
         */
        lora: z
          .object({
            rank: positiveInt,
            /** Scaling is alpha / rank. @default 2 × rank */
            alpha: z.number().positive().optional(),
            dropout: z.number().min(0).max(1).default(0),
            /** PEFT's names: a module matches when its name ends with `.<entry>`. @default the attention and MLP projections */
            target_modules: z.array(z.string().min(1)).min(1).optional(),
          })
          .strict()
          .optional(),
        /** With `model`: the chat template's `enable_thinking` (Qwen3), passed only when set. */
        enable_thinking: z.boolean().optional(),
      })
      .strict()
      .refine((policy) => policy.builtin === undefined, {
        message:
          'policy.builtin is gone: the toy model is now made in Hugging Face format — use policy.scratch: { family: llama, hidden_size, layers, heads, max_len } (see tasks/toy/train.yaml)',
        path: ['builtin'],
      })
      .refine((policy) => (policy.model === undefined) !== (policy.scratch === undefined), {
        message: 'give exactly one of policy.model and policy.scratch',
      }),
    algorithm: z
      .object({
        name: z.enum(['grpo', 'rloo', 'reinforce']).default('grpo'),
        level: z.enum(['trajectory', 'turn']).default('trajectory'),
        /** Episodes per task per step (G). @default 8 */
        group_size: z.number().int().min(2).default(8),
        /** GRPO: divide advantages by the group's standard deviation. @default true */
        scale_by_std: z.boolean().default(true),
        /**
         * Turn level: normalise each turn against the turns at the same index in its group
         * (`index`: identical episodes get 0 on every turn), or against all turns of the
         * group together (`all`: the advantage then depends on the turn's position). @default index
         */
        pooling: z.enum(['all', 'index']).default('index'),
        /**
         * Drop groups with no signal (every advantage exactly 0, e.g. all rewards equal) from
         * the update — DAPO's dynamic sampling, without resampling. Counted in `dropped_groups`.
         * @default false
         */
        filter_groups: z.boolean().default(false),
        lr: z.number().positive().default(1e-4),
        warmup_steps: z.number().int().min(0).default(0),
        schedule: z.enum(['constant', 'cosine']).default('constant'),
        min_lr_ratio: z.number().min(0).max(1).default(0.1),
        weight_decay: nonNegative.default(0),
        grad_clip: z.number().positive().default(1),
        /** PPO clip ε (below 1, and above unless clip_high is given). @default 0.2 */
        clip: z.number().positive().default(0.2),
        clip_high: z.number().positive().optional(),
        /**
         * Dual-clip PPO (Ye et al. 2020): for A < 0 the token loss is capped at −c·A, so a
         * ratio far above 1 cannot make a negative-advantage token's loss unbounded. `true`
         * is c = 3; a number > 1 is c. @default false
         */
        dual_clip: z.union([z.boolean(), z.number().gt(1)]).default(false),
        /** |log π/π_old| and |log π_ref/π| are clamped to this before exp. @default 20 */
        log_ratio_clamp: z.number().positive().default(20),
        /** Weight of the KL penalty to the reference (the warm-started policy). @default 0 */
        kl: nonNegative.default(0),
        /**
         * How the KL penalty enters (Schulman's estimators, r = π_ref/π, samples from π):
         * `k3` ((r − 1) − log r as a loss — GRPO's; its value is unbiased for KL(π‖π_ref),
         * but its gradient follows KL(π_ref‖π)); `k2` (½(log r)² as a loss: the gradient of
         * KL(π‖π_ref) on-policy); `k1-reward` (log π_old/π_ref summed to go over the
         * sequence's sampled tokens, detached, subtracted from the advantage: the gradient
         * of KL(π‖π_ref), as in PPO-RLHF). @default k3
         */
        kl_estimator: z.enum(['k3', 'k2', 'k1-reward']).default('k3'),
        /**
         * Run the reference and report `kl` even when the `kl` weight is 0 (one more forward
         * pass per micro-batch). @default false
         */
        kl_metric: z.boolean().default(false),
        /** Weight of the entropy bonus. @default 0 */
        entropy: nonNegative.default(0),
        /**
         * `token-mean` (over the mini-batch's sampled tokens), `seq-mean-token-mean` (per
         * sequence, then over sequences), `seq-mean-token-sum-norm` (each sequence's token
         * sum ÷ `loss_norm`, then over sequences: Dr. GRPO's constant normaliser; with
         * `scale_by_std: false` this is Dr. GRPO). @default token-mean
         */
        loss_agg: z
          .enum(['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'])
          .default('token-mean'),
        /** `seq-mean-token-sum-norm`: the constant divisor, in tokens. @default the policy's max_len */
        loss_norm: positiveInt.optional(),
        /** Sequences per forward/backward pass. @default 16 */
        micro_batch: positiveInt.default(16),
        /** Passes over each step's batch. @default 1 */
        epochs: positiveInt.default(1),
        /** Optimiser steps per pass. @default 1 */
        mini_batches: positiveInt.default(1),
        /**
         * Correction for rollouts the policy being updated did not sample itself (an older
         * version, with `rollout.max_off_policy_steps`; an inference server's numerics): the
         * PPO ratio is taken against the trainer's own log-probs before the update, and each
         * token's loss is weighted by w = π_old/π_rollout truncated at `is_cap` (`tis`,
         * truncated importance sampling), or kept only where 1/is_cap ≤ w ≤ is_cap (`mask`).
         * `auto`: `tis` when rollouts may be off-policy (asynchronous steps or a server
         * engine), `none` for synchronous in-process rollouts (the ratio against the
         * rollout's logprobs, as PPO has it). @default auto
         */
        rollout_correction: z.enum(['auto', 'none', 'tis', 'mask']).default('auto'),
        /** The cap C of `rollout_correction` (verl's `tis_imp_ratio_cap`). @default 2 */
        is_cap: z.number().gt(1).default(2),
        /** Keep a frozen reference (checkpointed; what `kl` and `kl_metric` compare with). @default true */
        reference: z.boolean().default(true),
        /**
         * Sampled tokens per chunk of the log-prob computation: the output head, log-softmax
         * and entropy run chunk by chunk (recomputed in the backward pass), so the full
         * [tokens × vocabulary] fp32 logits never exist at once. 0: all tokens at once.
         * @default 1024
         */
        logprob_chunk: z.number().int().min(0).default(1024),
        /** Recompute each transformer block in the backward pass instead of keeping its activations. @default false */
        activation_checkpointing: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    sampling: z
      .object({
        temperature: z.number().positive().default(1),
        top_p: z.number().gt(0).max(1).default(1),
        max_new_tokens: positiveInt.default(64),
      })
      .strict()
      .prefault({}),
    /** RL steps. */
    steps: z.number().int().min(0),
    sft: z
      .object({
        /** `oracle` (record the oracle on train tasks) or a JSONL file of {messages, tools}. */
        data: z.string().min(1),
        /** Demonstrations recorded with `oracle`. @default 32 */
        episodes: positiveInt.default(32),
        steps: z.number().int().min(0).default(50),
        batch_size: positiveInt.default(16),
        lr: z.number().positive().default(1e-3),
        warmup_steps: z.number().int().min(0).default(0),
        schedule: z.enum(['constant', 'cosine']).default('cosine'),
        micro_batch: positiveInt.default(16),
        /** Label smoothing of the cross-entropy. @default 0 */
        label_smoothing: z.number().min(0).max(0.5).default(0),
      })
      .strict()
      .optional(),
    eval: z
      .object({
        /** Evaluate on held-out tasks every this many steps (and before the first, and after the last). @default 10 */
        every: positiveInt.default(10),
        episodes_per_task: positiveInt.default(1),
        /** @default sampling.temperature */
        temperature: nonNegative.optional(),
        /** Evaluate on at most this many held-out tasks (the first ones). */
        max_tasks: positiveInt.optional(),
        /** Also evaluate with greedy decoding (`success_greedy`). @default false */
        greedy: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    checkpoint: z
      .object({ every: positiveInt.default(10), keep: positiveInt.default(2) })
      .strict()
      .prefault({}),
    rollout: z
      .object({
        /** Episodes played at once. @default 8 */
        concurrency: positiveInt.default(8),
        /**
         * Who samples the rollouts: `onnx` (the policy exported after each update, run
         * in-process by onnxruntime) or `server` (an OpenAI-compatible inference server with
         * token ids — vLLM or SGLang — that receives the new weights after each update; see
         * `server`). @default onnx
         */
        engine: z.enum(['onnx', 'server']).default('onnx'),
        /**
         * Asynchronous steps: the rollouts of step k + 1 may run while step k trains, with
         * every sampled turn at most this many updates behind the policy being updated (its
         * version is recorded per turn). 0 is synchronous, strictly on-policy training.
         * @default 0
         */
        max_off_policy_steps: z.number().int().min(0).default(0),
        /**
         * `engine: onnx` only: the next-token calls of concurrent episodes (rollouts and
         * evaluations, which share the loaded policy) that are pending at the same moment run
         * as one batched onnxruntime call, on left-padded KV caches. Logits equal one-by-one
         * decoding to float rounding, not bit for bit, so a sample may differ where a draw
         * sits on a boundary: rollouts are then not bit-reproducible across batch
         * compositions. Needs a policy exported with `attention_mask` / `position_ids` (the
         * Hugging Face models); others decode one episode per call. @default false
         */
        batch_decode: z.boolean().default(false),
        server: ServerEngineSchema.optional(),
      })
      .strict()
      .refine((rollout) => (rollout.engine === 'server') === (rollout.server !== undefined), {
        message: 'rollout.engine: server needs rollout.server (and rollout.server needs engine: server)',
        path: ['server'],
      })
      .refine((rollout) => !rollout.batch_decode || rollout.engine === 'onnx', {
        message: 'rollout.batch_decode batches the in-process engine (engine: onnx); a server batches itself',
        path: ['batch_decode'],
      })
      .prefault({}),
    /** An episode passes when its reward is at least this. @default 1 */
    pass_threshold: z.number().default(1),
    device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
    /** Torch threads in the worker; the worker's default when absent. */
    threads: positiveInt.optional(),
    seed: z.number().int().min(0).default(0),
    /** Output folder (metrics, checkpoints, policies, plot). */
    output: z.string().min(1),
    worker: z
      .object({
        /** @default $PADDOCK_PYTHON, else /usr/bin/python3 */
        python: z.string().min(1).optional(),
        /** Limit of one worker request. @default 1800 */
        timeout_sec: z.number().positive().default(1800),
        /**
         * Run the update on several processes through torchrun (data parallel: each rank
         * takes a share of the batch, gradients are summed across ranks; checkpoints and
         * resume unchanged). Absent: one process.
         */
        torchrun: z
          .object({
            nproc_per_node: positiveInt,
            nnodes: positiveInt.default(1),
            node_rank: z.number().int().min(0).default(0),
            master_addr: z.string().min(1).default('127.0.0.1'),
            master_port: z.number().int().min(1).max(65_535).optional(),
            /** @default auto: nccl with CUDA, else gloo */
            backend: z.enum(['auto', 'gloo', 'nccl']).default('auto'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, context) => {
    const server = config.rollout.server;
    if (!server) return;
    // The loss needs the sampling distribution's logprobs; vLLM's default is the raw softmax.
    const mode = server.logprobs_mode ?? (server.kind === 'vllm' ? 'raw' : 'temperature-scaled');
    if (mode === 'raw' && config.sampling.temperature !== 1) {
      context.addIssue({
        code: 'custom',
        path: ['rollout', 'server', 'logprobs_mode'],
        message: `sampling.temperature is ${config.sampling.temperature}, but ${server.kind} gives raw logprobs (before temperature) and the loss needs the sampling distribution's: start vLLM with --logprobs-mode processed_logprobs and set logprobs_mode: processed`,
      });
    }
    if (server.sync === 'lora' && !config.policy.lora) {
      context.addIssue({
        code: 'custom',
        path: ['rollout', 'server', 'sync'],
        message: 'sync: lora needs policy.lora (the adapter is what the server loads); use sync: weights',
      });
    }
  });

/** A train.yaml as written. */
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
/** A validated train.yaml, defaults applied, paths absolute. */
export type TrainConfig = z.output<typeof TrainConfigSchema>;

/**
 * Validates a config object; relative paths are resolved against `baseDir`. Throws
 * CONFIG_INVALID listing each bad field (prefixed with `file` when given).
 */
export function parseTrainConfig(
  data: unknown,
  options: { file?: string; baseDir?: string } = {},
): TrainConfig {
  const parsed = TrainConfigSchema.safeParse(data);
  const where = options.file ? `${options.file}: ` : '';
  if (!parsed.success) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${where}invalid training config:\n${formatZodIssues(parsed.error.issues)
        .split('\n')
        .map((line) => `${options.file ? `${options.file}: ` : ''}${line}`)
        .join('\n')}`,
      {
        details: {
          ...(options.file ? { file: options.file } : {}),
          issues: parsed.error.issues.map((issue) => ({
            path: issue.path.map(String).join('.'),
            message: issue.message,
          })),
        },
      },
    );
  }
  const base = options.baseDir ?? process.cwd();
  const at = (path: string): string => (isAbsolute(path) ? path : resolve(base, path));
  const config = parsed.data;
  config.tasks.train = config.tasks.train.map(at);
  config.tasks.heldout = config.tasks.heldout.map(at);
  if (config.policy.model !== undefined) config.policy.model = at(config.policy.model);
  if (config.sft && config.sft.data !== 'oracle') config.sft.data = at(config.sft.data);
  config.output = at(config.output);
  return config;
}

/** Reads and validates a train.yaml (YAML or JSON). Throws CONFIG_INVALID naming the file and field. */
export function loadTrainConfig(file: string): TrainConfig {
  let data: unknown;
  try {
    data = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${file}: ${describeError(error)}`, {
      cause: error,
      details: { file },
    });
  }
  return parseTrainConfig(data, { file, baseDir: dirname(resolve(file)) });
}
