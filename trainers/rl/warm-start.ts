/**
 * The warm start: demonstrations (the oracle's on train tasks, recorded in the run store
 * as run `demos`, or a JSONL file of `{messages, tools}`), the model's tokenizer (a
 * checkpoint's own, or for a model trained from scratch a byte-level BPE learned from the
 * demonstrations and instructions), and supervised fine-tuning on the demonstrations
 * through the worker (mask on the assistant's tokens).
 *
 * Which demonstrations the oracle plays and the order of the SFT batches derive from
 * `seed` only.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, planEpisodes, runEpisodes, type Task } from '../../harness/index.ts';
import type { ChatTemplate, PolicyFormat, Tokenizer } from '../../harness/index.ts';
import { OracleAgent } from '../../agents/oracle/index.ts';
import {
  HF_TOKENIZER_FILES,
  hfOnnxPolicyFormat,
  scratchTokenizerFiles,
  type OnnxPolicy,
} from '../../agents/onnx/index.ts';
import { demonstrationSequence, type Demonstration } from './batch.ts';
import type { TrainConfig } from './config.ts';
import { checkAborted, type TrainingContext } from './context.ts';
import { createRng, shuffle } from './random.ts';
import { writeJsonAtomic } from './run-folder.ts';
import { TRAINING_RUN_IDS } from './runs.ts';
import type { TorchTrainer } from './torch-trainer.ts';

const DemonstrationSchema = z.object({
  messages: z.array(z.record(z.string(), z.unknown())).min(1),
  tools: z.array(
    z.object({ name: z.string(), description: z.string(), inputSchema: z.record(z.string(), z.unknown()) }),
  ),
});

/**
 * The oracle's passing episodes on `sft.episodes` train tasks (chosen by `seed`), played
 * as run `demos` of the training run and kept in `demos.jsonl`; or the file `sft.data`.
 * Throws CONFIG_INVALID when the oracle passes none, or the file is not `{messages, tools}` lines.
 */
export async function recordDemonstrations(
  context: TrainingContext,
  trainTasks: readonly Task[],
): Promise<Demonstration[]> {
  const { cfg, folder } = context;
  const sft = cfg.sft!;
  if (sft.data !== 'oracle') return readDemonstrations(sft.data);
  const order = shuffle([...trainTasks], createRng(cfg.seed, 0x5f7));
  const chosen = order.slice(0, Math.min(sft.episodes, order.length));
  const agent = new OracleAgent();
  const plan = planEpisodes(chosen, { seed: cfg.seed });
  const runId = TRAINING_RUN_IDS.demonstrations;
  const episodes = await folder.runs.record(
    { runId, plan, config: { agent: agent.name, purpose: 'demonstrations', training: folder.dir } },
    (store) => runEpisodes({ runId, tasks: chosen, plan, agent, ...context.episodes, store }),
  );
  const demos: Demonstration[] = [];
  for (const episode of episodes) {
    if (episode.reward.total < cfg.pass_threshold) continue;
    demos.push({ messages: episode.messages, tools: episode.tools });
  }
  if (demos.length === 0)
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      'the oracle passed no train task: there is nothing to warm-start from',
    );
  writeFileSync(folder.path('demos.jsonl'), demos.map((demo) => JSON.stringify(demo) + '\n').join(''));
  context.log(`recorded ${demos.length} oracle demonstrations`);
  return demos;
}

/** Reads a JSONL file of `{messages, tools}`. Throws CONFIG_INVALID naming the file and line. */
export function readDemonstrations(path: string): Demonstration[] {
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

/**
 * The Hugging Face folder a run trains: `policy.model`, or `<output>/base-model` for a model
 * trained from scratch (`policy.scratch`, written by `writeScratchTokenizer` and the worker).
 */
export function modelFolder(cfg: TrainConfig): string {
  return cfg.policy.model ?? join(cfg.output, SCRATCH_MODEL_DIR);
}

/** Where a run keeps the model it trains from scratch, in its output folder. */
export const SCRATCH_MODEL_DIR = 'base-model';

/** The policy folders a run writes: its model's ONNX export with the model's own tokenizer and chat template. */
export function policyFormatFor(cfg: TrainConfig): PolicyFormat<OnnxPolicy> {
  return hfOnnxPolicyFormat(
    modelFolder(cfg),
    cfg.policy.enable_thinking === undefined ? {} : { enableThinking: cfg.policy.enable_thinking },
  );
}

/**
 * Writes the tokenizer files of a model trained from scratch into its folder (a
 * byte-level BPE learned from the instructions and demonstrations, rendered by its chat
 * template; see agents/onnx/scratch-tokenizer.ts). The worker then writes the model beside
 * them.
 */
export function writeScratchTokenizer(
  cfg: TrainConfig,
  trainTasks: readonly Task[],
  demos: readonly Demonstration[],
): void {
  const dir = modelFolder(cfg);
  const files = scratchTokenizerFiles(
    { texts: trainTasks.map((task) => task.instruction), conversations: demos },
    { merges: cfg.policy.scratch!.merges },
  );
  mkdirSync(dir, { recursive: true });
  for (const [name, value] of [
    [HF_TOKENIZER_FILES.tokenizer, files.tokenizer],
    [HF_TOKENIZER_FILES.config, files.config],
    [HF_TOKENIZER_FILES.generationConfig, files.generationConfig],
  ] as const) {
    writeJsonAtomic(join(dir, name), value);
  }
}

/** The model's own tokenizer, read from its folder. */
export function readTokenizer(cfg: TrainConfig): Tokenizer {
  return policyFormatFor(cfg).readTokenizer(join(modelFolder(cfg), HF_TOKENIZER_FILES.tokenizer));
}

/**
 * Supervised fine-tuning: `sft.steps` batches of demonstrations (shuffled by `seed`, each
 * pass anew), rendered with `template`, through the worker's `sft_step`; a metrics row per
 * step. Throws CONFIG_INVALID when a demonstration is longer than the policy's context.
 */
export async function fineTune(
  context: TrainingContext,
  trainer: TorchTrainer,
  maxLen: number,
  demos: readonly Demonstration[],
  template: ChatTemplate,
): Promise<void> {
  const { cfg } = context;
  const sft = cfg.sft!;
  const sequences = demos.map((demo) => demonstrationSequence(demo, template));
  const tooLong = sequences.filter((sequence) => sequence.ids.length > maxLen).length;
  if (tooLong > 0) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${tooLong} demonstrations are longer than the policy's max_len (${maxLen} tokens)`,
    );
  }
  await trainer.configureOptimizer({
    lr: sft.lr,
    total_steps: sft.steps,
    warmup_steps: sft.warmup_steps,
    schedule: sft.schedule,
    grad_clip: cfg.algorithm.grad_clip,
  });
  const rng = createRng(cfg.seed, 0x5f7, 1);
  let order: number[] = [];
  for (let step = 1; step <= sft.steps; step++) {
    checkAborted(context.signal);
    const batch: typeof sequences = [];
    while (batch.length < Math.min(sft.batch_size, sequences.length)) {
      if (order.length === 0)
        order = shuffle(
          sequences.map((_, i) => i),
          rng,
        );
      batch.push(sequences[order.pop()!]!);
    }
    const metrics = await trainer.sftStep(batch, {
      microBatch: sft.micro_batch,
      labelSmoothing: sft.label_smoothing,
      signal: context.signal,
    });
    context.folder.writeRow({ type: 'sft', step, ...metrics });
    if (step % 10 === 0 || step === sft.steps)
      context.log(
        `sft ${step}/${sft.steps}: loss ${metrics.loss!.toFixed(4)} accuracy ${metrics.accuracy!.toFixed(3)}`,
      );
  }
}
