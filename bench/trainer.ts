/**
 * Trainer benchmark:
 *  1. one policy-gradient step (trainers/torch/bench.py, the worker's own train_step):
 *     tokens/s and MFU. With CUDA it is a Qwen2.5-0.5B-shaped model on 2,048-token
 *     sequences in bf16; without, the same code on a small model on the CPU — the result
 *     says which, and CPU figures say nothing about GPUs;
 *  2. rollout speed of the ONNX policy agent on the toy suite's model shape: prefill
 *     tokens/s and the p50 / p99 of one decode step with the KV cache.
 * Prints figures; asserts nothing. Run: node --import tsx bench/trainer.ts
 *
 * A GPU machine has PyTorch but no Node: run part 1 there directly,
 *   python3 trainers/torch/bench.py --device cuda --preset 0.5b --out trainer-cuda.json
 * and copy the JSON into bench/results/trainer-cuda.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPieceTokenizer, loadOnnxPolicy } from '../agents/onnx/index.ts';
import { DEFAULT_PYTHON, TorchTrainer } from '../trainers/rl/index.ts';
import { ms, percentile, writeResults } from './stats.ts';

const python = process.env.PADDOCK_PYTHON ?? DEFAULT_PYTHON;
const script = join(import.meta.dirname, '..', 'trainers', 'torch', 'bench.py');

// --- 1. policy-gradient step ------------------------------------------------------------
const run = spawnSync(python, [script, '--device', 'auto', '--steps', '3', '--warmup', '1'], {
  encoding: 'utf8',
});
if (run.status !== 0) {
  console.error(run.stderr);
  throw new Error(`trainers/torch/bench.py failed with status ${run.status}`);
}
const step = JSON.parse(run.stdout) as Record<string, unknown>;
const onCpu = step.device === 'cpu';
console.log(
  onCpu
    ? 'No CUDA device: the policy-gradient step ran on the CPU with a small model (fp32). ' +
        'These figures say nothing about GPU throughput; see the header of this file for the CUDA run.'
    : `Policy-gradient step on ${String(step.device)} (${String(step.dtype)}).`,
);
console.log(
  `  model: ${(Number(step.params) / 1e6).toFixed(1)} M parameters, sequences of ${String(step.seq_len)} tokens × ${String(step.batch)}`,
);
console.log(
  `  step: ${Number(step.step_s_median).toFixed(3)} s median → ${Number(step.tokens_per_s).toFixed(0)} tokens/s`,
);
console.log(
  `  achieved ${Number(step.achieved_tflops).toFixed(3)} TFLOP/s` +
    (step.mfu === null
      ? ' (MFU: no known peak for this device)'
      : `, MFU ${(Number(step.mfu) * 100).toFixed(1)}%`),
);

// --- 2. rollout: ONNX policy prefill and decode -----------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'paddock-bench-policy-'));
const tokenizer = buildPieceTokenizer(['Look up the number stored under a key, add it, submit.'], {});
const trainer = await TorchTrainer.start();
// The toy suite's model (tasks/toy/train.yaml): a tiny Llama, hidden 128, 2 layers, 4 heads.
const model = {
  vocab_size: tokenizer.vocabSize,
  hidden_size: 128,
  intermediate_size: 512,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  head_dim: 32,
  max_position_embeddings: 256,
};
await trainer.init({
  policy: { kind: 'hf', path: join(dir, 'hf-model'), create: { family: 'llama', seed: 0, config: model } },
  device: 'cpu',
  seed: 0,
});
const exported = await trainer.exportOnnx(join(dir, 'model.onnx'));
await trainer.close();
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({
    format: 'paddock-onnx-policy',
    version: 1,
    vocab_size: exported.describe.vocab_size,
    max_len: exported.describe.max_len,
    kv_cache: exported.describe.kv_cache,
  }),
);
writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
const policy = await loadOnnxPolicy(dir);
const prefillTimes: number[] = [];
const decodeTimes: number[] = [];
const PROMPT = 128;
for (let round = 0; round < 20; round++) {
  const state = policy.newState();
  const prompt = Array.from({ length: PROMPT }, (_, i) => 10 + ((i * 7 + round) % 200));
  let started = performance.now();
  await policy.extend(state, prompt);
  prefillTimes.push(performance.now() - started);
  for (let i = 0; i < 64; i++) {
    started = performance.now();
    await policy.extend(state, [20 + (i % 50)]);
    decodeTimes.push(performance.now() - started);
  }
}
await policy.close();
const prefillTokensPerS = (PROMPT / percentile(prefillTimes, 50)) * 1000;
console.log(
  `ONNX policy (the toy suite's Llama: hidden 128, 2 layers, ${model.vocab_size} tokens), onnxruntime-node on 1 thread:`,
);
console.log(
  `  prefill of ${PROMPT} tokens: p50 ${ms(percentile(prefillTimes, 50))} (${prefillTokensPerS.toFixed(0)} tokens/s)`,
);
console.log(
  `  decode step with KV cache: p50 ${ms(percentile(decodeTimes, 50))}, p99 ${ms(percentile(decodeTimes, 99))} ` +
    `(${(1000 / percentile(decodeTimes, 50)).toFixed(0)} tokens/s per episode)`,
);

writeResults('trainer', {
  policyGradientStep: { ...step, note: onCpu ? 'CPU fallback with a small model; not a GPU figure' : 'CUDA' },
  rollout: {
    model,
    prefillTokens: PROMPT,
    prefillP50Ms: percentile(prefillTimes, 50),
    decodeP50Ms: percentile(decodeTimes, 50),
    decodeP99Ms: percentile(decodeTimes, 99),
  },
});
