/**
 * Batched decoding in the in-process ONNX engine (`OnnxPolicy` with `batchDecode`,
 * `rollout.batch_decode` in train.yaml) against one onnxruntime call per episode.
 *
 * A small random Llama (hidden 256, 4 layers, 4 query / 2 KV heads, vocabulary 4096) is
 * made and exported by the torch worker, as the trainer exports its policies. 16
 * concurrent episodes, with prompts of 16–61 tokens (prefilled first, not timed), each
 * decode 32 tokens, one `extend` per token, as OnnxPolicyAgent does: once with batching off
 * (the baseline: each episode's call runs alone, onnxruntime calls overlapping on libuv's
 * threads) and once with it on (the pending calls run as one). Both feed the same ids, so
 * their logits are compared too. Each mode runs 5 times, alternating; the best run of each
 * counts, and the median of the 5 paired speedups is given too (for a machine under load).
 * Both run onnxruntime with one thread per call (the engine's default), so the baseline's
 * overlapping calls can use every core while a batched call uses one.
 *
 * Run: `node --import tsx bench/onnx-batch-decode.ts`. Prints decoded tokens per second of
 * each mode and the speedup, and writes bench/results/onnx-batch-decode.json.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildPieceTokenizer,
  loadOnnxPolicy,
  writeOnnxPolicyFolder,
  type OnnxPolicy,
} from '../agents/onnx/index.ts';
import { TorchTrainer } from '../trainers/rl/index.ts';
import { writeResults } from './stats.ts';

const EPISODES = 16;
const TOKENS = 32;
const REPEATS = 5;
const VOCAB = 4096;
const MODEL = {
  vocab_size: VOCAB,
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 64,
  max_position_embeddings: 256,
};

/** Exports the model into `dir` as a policy folder. */
async function exportPolicy(dir: string): Promise<void> {
  const trainer = await TorchTrainer.start({ requestTimeoutMs: 600_000 });
  try {
    await trainer.init({
      policy: { kind: 'hf', path: join(dir, 'model'), create: { family: 'llama', seed: 0, config: MODEL } },
      device: 'cpu',
      seed: 0,
    });
    const policyDir = join(dir, 'policy');
    mkdirSync(policyDir);
    const exported = await trainer.exportOnnx(join(policyDir, 'model.onnx'));
    const { vocab_size: vocabSize, max_len: maxLen, kv_cache: kv } = exported.describe;
    writeOnnxPolicyFolder(policyDir, {
      model: {
        vocabSize,
        maxLen,
        kvCache: kv && { layers: kv.layers, heads: kv.heads, headDim: kv.head_dim },
      },
      tokenizer: buildPieceTokenizer(['decode the next token'], {}),
      sampling: {},
    });
  } finally {
    await trainer.close();
  }
}

/** 16 concurrent episodes decoding 32 tokens each: decoded tokens/s and every logits row. */
async function decode(
  policy: OnnxPolicy,
  batched: boolean,
): Promise<{ tokensPerSec: number; logits: Float32Array[][] }> {
  policy.setBatching(batched);
  const states = Array.from({ length: EPISODES }, () => policy.newState());
  for (const [b, state] of states.entries()) {
    await policy.extend(
      state,
      Array.from({ length: 16 + 3 * b }, (_, t) => (t * 131 + b * 977 + 7) % VOCAB),
    );
  }
  const logits: Float32Array[][] = states.map(() => []);
  const started = performance.now();
  await Promise.all(
    states.map(async (state, b) => {
      for (let step = 0; step < TOKENS; step++) {
        logits[b]!.push(await policy.extend(state, [(step * 31 + b * 17 + 3) % VOCAB]));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { tokensPerSec: (EPISODES * TOKENS) / seconds, logits };
}

const dir = mkdtempSync(join(tmpdir(), 'paddock-batch-decode-'));
try {
  await exportPolicy(dir);
  const policy = await loadOnnxPolicy(join(dir, 'policy'));
  if (!policy.canBatch) throw new Error('the exported graph has no attention_mask / position_ids');
  await decode(policy, false); // warm-up
  await decode(policy, true);
  const runs = { unbatched: [] as number[], batched: [] as number[] };
  let maxLogitDiff = 0;
  for (let r = 0; r < REPEATS; r++) {
    const alone = await decode(policy, false);
    const before = { ...policy.batchStats };
    const together = await decode(policy, true);
    runs.unbatched.push(alone.tokensPerSec);
    runs.batched.push(together.tokensPerSec);
    if (r === 0) {
      const calls = policy.batchStats.calls - before.calls;
      console.log(
        `batched: ${calls} onnxruntime calls for ${EPISODES * TOKENS} tokens ` +
          `(mean batch ${((policy.batchStats.decoded - before.decoded) / calls).toFixed(1)})`,
      );
    }
    alone.logits.forEach((rows, b) =>
      rows.forEach((row, k) =>
        row.forEach(
          (x, j) => (maxLogitDiff = Math.max(maxLogitDiff, Math.abs(x - together.logits[b]![k]![j]!))),
        ),
      ),
    );
  }
  await policy.close();
  const unbatched = Math.max(...runs.unbatched);
  const batched = Math.max(...runs.batched);
  const pairedSpeedups = runs.batched.map((value, r) => value / runs.unbatched[r]!);
  const figures = {
    model: MODEL,
    episodes: EPISODES,
    tokensPerEpisode: TOKENS,
    cpus: availableParallelism(),
    intraOpThreads: 1,
    unbatchedTokensPerSec: unbatched,
    batchedTokensPerSec: batched,
    speedup: batched / unbatched,
    medianPairedSpeedup: pairedSpeedups.sort((a, b) => a - b)[Math.floor(REPEATS / 2)]!,
    runs,
    maxLogitDiff,
  };
  console.log(`one call per episode (baseline) ${unbatched.toFixed(0)} tokens/s`);
  console.log(`batched across episodes         ${batched.toFixed(0)} tokens/s`);
  console.log(
    `speedup ×${figures.speedup.toFixed(2)} (median of paired runs ×${figures.medianPairedSpeedup.toFixed(2)}); ` +
      `batched vs unbatched logits: max |Δ| ${maxLogitDiff.toExponential(2)}`,
  );
  writeResults('onnx-batch-decode', figures);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
