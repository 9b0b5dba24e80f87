/**
 * ONNX export of a model over protobuf's 2 GiB limit: a Llama of ~590M parameters (2.3 GB
 * in fp32, random weights) made by the worker from scratch, exported by the worker's
 * `export_onnx` (weights as external data files beside model.onnx), opened by
 * onnxruntime-node from its path, and its log-probs on 24 tokens compared with the
 * worker's. Prints the export time, the bytes and files written, and the largest
 * log-prob difference. Baseline in the same run: the same export of a 2-layer model of
 * the same width (under the limit, one file).
 *
 * Needs ~10 GB of memory and a few minutes of CPU. Run: node --import tsx bench/onnx-export-large.ts
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { logSoftmax } from '../agents/onnx/index.ts';
import { TorchTrainer } from '../trainers/rl/index.ts';
import { writeResults } from './stats.ts';

const VOCAB = 32_000;
const WIDTH = { hidden_size: 1536, intermediate_size: 4096, num_attention_heads: 12, num_key_value_heads: 2 };

async function exportAndCompare(layers: number): Promise<Record<string, number | boolean>> {
  const dir = mkdtempSync(join(tmpdir(), `paddock-onnx-large-${layers}-`));
  const trainer = await TorchTrainer.start({ requestTimeoutMs: 1_800_000 });
  try {
    const info = await trainer.init({
      policy: {
        kind: 'hf',
        path: join(dir, 'model'),
        create: {
          family: 'llama',
          seed: 0,
          config: {
            vocab_size: VOCAB,
            ...WIDTH,
            head_dim: 128,
            num_hidden_layers: layers,
            max_position_embeddings: 256,
          },
        },
      },
      device: 'cpu',
      seed: 0,
    });
    const policyDir = join(dir, 'policy');
    mkdirSync(policyDir);
    const started = performance.now();
    const exported = await trainer.exportOnnx(join(policyDir, 'model.onnx'));
    const exportMs = performance.now() - started;
    const ids = Array.from({ length: 24 }, (_, i) => (i * 7919 + 13) % VOCAB);
    const [expected] = await trainer.logprobs([ids]);

    const session = await ort.InferenceSession.create(join(policyDir, 'model.onnx'));
    const kv = exported.describe.kv_cache!;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(ids, (_, t) => BigInt(t)),
        [1, ids.length],
      ),
    };
    for (let i = 0; i < kv.layers; i++) {
      for (const name of ['past_key', 'past_value'])
        feeds[`${name}_${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, kv.heads, 0, kv.head_dim]);
    }
    const logits = (await session.run(feeds)).logits!.data as Float32Array;
    let maxDiff = 0;
    for (let t = 0; t + 1 < ids.length; t++) {
      const logprob = logSoftmax(logits, t * VOCAB, VOCAB)[ids[t + 1]!]!;
      maxDiff = Math.max(maxDiff, Math.abs(logprob - expected![t]!));
    }
    await session.release();
    const files = readdirSync(policyDir).length;
    return {
      layers,
      params: info.params,
      exportMs,
      bytes: exported.bytes,
      overTwoGiB: exported.bytes > 2 ** 31,
      externalDataFiles: exported.external_data_files ?? 0,
      filesInFolder: files,
      maxLogprobDiff: maxDiff,
    };
  } finally {
    await trainer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const baseline = await exportAndCompare(2);
const large = await exportAndCompare(20);
for (const [name, figures] of [
  ['under the limit (baseline)', baseline],
  ['over 2 GiB', large],
] as const) {
  console.log(
    `${name.padEnd(27)} ${(Number(figures.params) / 1e6).toFixed(0)}M parameters, ` +
      `${(Number(figures.bytes) / 2 ** 30).toFixed(2)} GiB in ${String(figures.filesInFolder)} files ` +
      `(${String(figures.externalDataFiles)} external data), export ${(Number(figures.exportMs) / 1000).toFixed(1)} s, ` +
      `ONNX vs worker log-probs: max |Δ| ${Number(figures.maxLogprobDiff).toExponential(2)}`,
  );
}
writeResults('onnx-export-large', { baseline, large });
