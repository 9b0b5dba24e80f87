/**
 * The Hugging Face building blocks of the torch worker, tested in Python
 * (fixtures/test_hf_native.py): safetensors read and written by hand (strict header
 * checks, shards), native Llama / Qwen2 / Qwen3 (save → reload, KV cache, padding, RoPE
 * scaling, head_dim, sliding windows), fp32 master weights from a bf16 checkpoint, LoRA and
 * PEFT's adapter folder, a native policy through the Trainer, bench/gpu_check.py's CPU smoke
 * run, and parity with `transformers` (skipped, and said so, where it is not importable).
 * Then the native model's ONNX export with a KV cache, run by onnxruntime-node (the ONNX
 * agent's runtime) against the native logits, also for a left-padded batch of sequences of
 * different lengths (attention_mask, position_ids). CPU only, a few seconds. Needs Debian's
 * python3-torch (or PADDOCK_PYTHON naming an interpreter with torch).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PYTHON } from '../../../trainers/rl/index.ts';

const script = fileURLToPath(new URL('./fixtures/test_hf_native.py', import.meta.url));
const python = process.env.PADDOCK_PYTHON ?? DEFAULT_PYTHON;
const env = {
  ...process.env,
  CUDA_VISIBLE_DEVICES: '',
  OMP_NUM_THREADS: '1',
  PYTHONDONTWRITEBYTECODE: '1',
};

describe('native Hugging Face models, safetensors and LoRA (Python unit tests)', () => {
  it('pass', () => {
    const result = spawnSync(python, [script], { encoding: 'utf8', timeout: 120_000, env });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/Ran \d+ tests/);
    expect(output).toMatch(/\nOK\b/);
    // The parity test runs where transformers is importable and says so where it is not.
    expect(output).toMatch(/max \|Δlogit\||skipped=1/);
  });
});

describe('the native model exported to ONNX with a KV cache', () => {
  it('gives the native logits in onnxruntime, in one pass and token by token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-native-onnx-'));
    try {
      const result = spawnSync(python, [script, '--export-onnx', dir], {
        encoding: 'utf8',
        timeout: 120_000,
        env,
      });
      expect(result.status, `${result.stdout}${result.stderr}`).toBe(0);
      const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
        ids: number[];
        vocab_size: number;
        kv_cache: { layers: number; heads: number; head_dim: number };
        logits: number[];
        batch: { ids: number[][]; logits: number[][] };
      };
      const { layers, heads, head_dim: headDim } = ref.kv_cache;
      const vocab = ref.vocab_size;
      const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
      try {
        expect(session.inputNames.slice(0, 3)).toEqual(['input_ids', 'attention_mask', 'position_ids']);
        const feeds = (ids: number[], past: ort.Tensor[] | null): Record<string, ort.Tensor> => {
          const pastLen = past?.[0]?.dims[2] ?? 0;
          const out: Record<string, ort.Tensor> = {
            input_ids: new ort.Tensor(
              'int64',
              BigInt64Array.from(ids, (id) => BigInt(id)),
              [1, ids.length],
            ),
            attention_mask: new ort.Tensor('int64', new BigInt64Array(pastLen + ids.length).fill(1n), [
              1,
              pastLen + ids.length,
            ]),
            position_ids: new ort.Tensor(
              'int64',
              BigInt64Array.from(ids, (_, t) => BigInt(pastLen + t)),
              [1, ids.length],
            ),
          };
          for (let i = 0; i < layers; i++) {
            for (const [k, kind] of ['key', 'value'].entries()) {
              out[`past_${kind}_${i}`] =
                past?.[2 * i + k] ?? new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]);
            }
          }
          return out;
        };
        const maxDiff = (got: Float32Array, from: number, rows: number): number => {
          let worst = 0;
          for (let j = 0; j < rows * vocab; j++) {
            worst = Math.max(worst, Math.abs(got[j]! - ref.logits[from * vocab + j]!));
          }
          return worst;
        };
        const n = ref.ids.length;
        const full = await session.run(feeds(ref.ids, null));
        expect(maxDiff(full.logits!.data as Float32Array, 0, n)).toBeLessThan(1e-4);

        let past: ort.Tensor[] | null = null;
        let worst = 0;
        for (const [start, end] of [[0, 4], ...Array.from({ length: n - 4 }, (_, i) => [4 + i, 5 + i])]) {
          const out = await session.run(feeds(ref.ids.slice(start, end), past));
          worst = Math.max(worst, maxDiff(out.logits!.data as Float32Array, start!, end! - start!));
          past = [];
          for (let i = 0; i < layers; i++) past.push(out[`present_key_${i}`]!, out[`present_value_${i}`]!);
        }
        expect(past![0]!.dims).toEqual([1, heads, n, headDim]);
        expect(worst).toBeLessThan(1e-4);

        // Three sequences of different lengths, left-padded into one batch: all but the
        // last token in one pass, then the last token of each on the padded cache.
        const seqs = ref.batch.ids;
        const rows = seqs.length;
        const width = Math.max(...seqs.map((seq) => seq.length)) - 1;
        const pads = seqs.map((seq) => width - (seq.length - 1));
        const int64 = (values: number[], dims: number[]): ort.Tensor =>
          new ort.Tensor(
            'int64',
            BigInt64Array.from(values, (x) => BigInt(x)),
            dims,
          );
        const mask = seqs.flatMap((_, b) => Array.from({ length: width }, (_, t) => (t < pads[b]! ? 0 : 1)));
        const prefill: Record<string, ort.Tensor> = {
          input_ids: int64(
            seqs.flatMap((seq, b) => [...Array<number>(pads[b]!).fill(0), ...seq.slice(0, -1)]),
            [rows, width],
          ),
          attention_mask: int64(mask, [rows, width]),
          position_ids: int64(
            seqs.flatMap((_, b) => Array.from({ length: width }, (_, t) => Math.max(0, t - pads[b]!))),
            [rows, width],
          ),
        };
        for (let i = 0; i < layers; i++) {
          for (const kind of ['key', 'value']) {
            prefill[`past_${kind}_${i}`] = new ort.Tensor('float32', new Float32Array(0), [
              rows,
              heads,
              0,
              headDim,
            ]);
          }
        }
        const first = await session.run(prefill);
        const step: Record<string, ort.Tensor> = {
          input_ids: int64(
            seqs.map((seq) => seq.at(-1)!),
            [rows, 1],
          ),
          attention_mask: int64(
            seqs.flatMap((_, b) => [...mask.slice(b * width, (b + 1) * width), 1]),
            [rows, width + 1],
          ),
          position_ids: int64(
            seqs.map((seq) => seq.length - 1),
            [rows, 1],
          ),
        };
        for (let i = 0; i < layers; i++) {
          for (const kind of ['key', 'value']) step[`past_${kind}_${i}`] = first[`present_${kind}_${i}`]!;
        }
        const second = await session.run(step);
        let batchWorst = 0;
        const prefillLogits = first.logits!.data as Float32Array;
        const stepLogits = second.logits!.data as Float32Array;
        for (const [b, seq] of seqs.entries()) {
          const expected = ref.batch.logits[b]!;
          for (let t = 0; t < seq.length; t++) {
            for (let j = 0; j < vocab; j++) {
              const got =
                t < seq.length - 1
                  ? prefillLogits[(b * width + pads[b]! + t) * vocab + j]!
                  : stepLogits[b * vocab + j]!;
              batchWorst = Math.max(batchWorst, Math.abs(got - expected[t * vocab + j]!));
            }
          }
        }
        expect(batchWorst).toBeLessThan(1e-4);
      } finally {
        await session.release();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
