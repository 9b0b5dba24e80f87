/**
 * The torch worker's numerics, tested in Python (fixtures/torch_units.py): chunked
 * log-probs equal unchunked ones, the PPO loss's log-ratio clamp and dual clip, which
 * divergence each KL estimator's gradient follows, Dr. GRPO's aggregation, the reference
 * skipped at KL 0, activation checkpointing, and bench.py's causal-attention FLOPs.
 * CPU only, a few seconds. Needs Debian's python3-torch (or PADDOCK_PYTHON naming an
 * interpreter with torch).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PYTHON, TorchTrainer, lossConfig, parseTrainConfig } from '../../../trainers/rl/index.ts';

const script = fileURLToPath(new URL('./fixtures/torch_units.py', import.meta.url));

describe('torch worker numerics (Python unit tests)', () => {
  it('pass', () => {
    const python = process.env.PADDOCK_PYTHON ?? DEFAULT_PYTHON;
    const result = spawnSync(python, [script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CUDA_VISIBLE_DEVICES: '', OMP_NUM_THREADS: '1' },
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/Ran \d+ tests/);
    expect(output).toMatch(/\nOK\b/);
  });
});

describe('the algorithm options through the protocol', () => {
  it('init takes logprob_chunk and activation_checkpointing; train_step takes every loss option', async () => {
    const trainer = await TorchTrainer.start();
    try {
      const info = await trainer.init({
        policy: {
          kind: 'hf',
          path: join(mkdtempSync(join(tmpdir(), 'paddock-units-')), 'model'),
          create: {
            family: 'llama',
            seed: 1,
            config: {
              vocab_size: 40,
              hidden_size: 16,
              num_hidden_layers: 1,
              num_attention_heads: 2,
              num_key_value_heads: 2,
              head_dim: 8,
              max_position_embeddings: 32,
            },
          },
        },
        device: 'cpu',
        seed: 1,
        logprob_chunk: 4,
        activation_checkpointing: true,
      });
      expect(info).toMatchObject({ logprob_chunk: 4, activation_checkpointing: true });
      await trainer.configureOptimizer({ lr: 1e-3, total_steps: 4 });
      await trainer.setReference();
      const cfg = parseTrainConfig({
        tasks: { train: ['t'] },
        policy: { scratch: { hidden_size: 16, layers: 1, heads: 2, max_len: 32 } },
        steps: 1,
        output: 'out',
        algorithm: {
          kl: 0.05,
          kl_estimator: 'k1-reward',
          dual_clip: true,
          loss_agg: 'seq-mean-token-sum-norm',
          scale_by_std: false,
        },
      });
      const sequences = [0, 1, 2].map((i) => {
        const ids = Array.from({ length: 12 + i }, (_, k) => (k * 7 + i) % 40);
        return {
          ids,
          mask: ids.map((_, k) => (k >= 3 ? 1 : 0)),
          advantages: ids.map(() => (i === 0 ? 1 : -0.5)),
          logprobs: ids.map(() => -3.7),
          episodeId: `e${i}`,
          turns: [0],
        };
      });
      const metrics = await trainer.trainStep(sequences, { loss: lossConfig(cfg, 32), microBatch: 2 });
      expect(metrics.optimizer_steps).toBe(1);
      expect(metrics.kl).toBe(0); // the reference is the policy before the step
      expect(metrics.dual_clip_frac).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(metrics.loss)).toBe(true);
    } finally {
      await trainer.close();
    }
  });
});
