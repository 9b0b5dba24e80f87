/**
 * The torch worker as the trainer uses it: a real Python process speaking the protocol.
 * Needs Debian's python3-torch (or PADDOCK_PYTHON naming an interpreter with torch).
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPieceTokenizer, loadOnnxPolicy, writeOnnxPolicyFolder } from '../../../agents/onnx/index.ts';
import { isPaddockError, type PaddockError } from '../../../harness/index.ts';
import { TRAINER_FAILED, TorchTrainer, type PolicySpec } from '../../../trainers/rl/index.ts';

const tokenizer = buildPieceTokenizer(['look up the key and submit the answer', 'look up the key'], {});
/** A tiny Llama made from scratch (the first worker to start writes it; the others load it). */
const policy: PolicySpec = {
  kind: 'hf',
  path: join(mkdtempSync(join(tmpdir(), 'paddock-worker-model-')), 'model'),
  create: {
    family: 'llama',
    seed: 3,
    config: {
      vocab_size: tokenizer.vocabSize,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 8,
      max_position_embeddings: 64,
    },
  },
};

async function failure(promise: Promise<unknown>): Promise<PaddockError> {
  try {
    await promise;
  } catch (error) {
    if (isPaddockError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

function sequences(count: number) {
  return Array.from({ length: count }, (_, i) => {
    const ids = tokenizer.encode(`look up the key ${i} and submit the answer`);
    return {
      ids,
      mask: ids.map((_, k) => (k >= 5 ? 1 : 0)),
      advantages: ids.map(() => (i % 2 === 0 ? 1 : -1)),
      logprobs: ids.map(() => 0),
      episodeId: `e${i}`,
      turns: [0],
    };
  });
}

describe('torch worker', () => {
  let trainer: TorchTrainer;
  const dir = mkdtempSync(join(tmpdir(), 'paddock-worker-'));

  beforeAll(async () => {
    trainer = await TorchTrainer.start();
    await trainer.init({ policy, device: 'cpu', seed: 3 });
    await trainer.configureOptimizer({ lr: 1e-3, total_steps: 10 });
  });
  afterAll(async () => {
    await trainer.close();
  });

  /** The worker's policy exported to `policyDir` as an ONNX policy folder with the test tokenizer. */
  async function exportPolicy(policyDir: string): Promise<Awaited<ReturnType<TorchTrainer['exportOnnx']>>> {
    mkdirSync(policyDir, { recursive: true });
    const exported = await trainer.exportOnnx(join(policyDir, 'model.onnx'));
    const { vocab_size: vocabSize, max_len: maxLen, kv_cache: kv } = exported.describe;
    writeOnnxPolicyFolder(policyDir, {
      model: {
        vocabSize,
        maxLen,
        kvCache: kv && { layers: kv.layers, heads: kv.heads, headDim: kv.head_dim },
      },
      tokenizer,
      sampling: {},
    });
    return exported;
  }

  it('exports an ONNX policy whose logprobs match the worker on the same tokens', async () => {
    const policyDir = join(dir, 'policy');
    await exportPolicy(policyDir);
    const onnx = await loadOnnxPolicy(policyDir);
    const ids = sequences(3).map((sequence) => sequence.ids);
    const expected = await trainer.logprobs(ids, 0.7);
    let maxDiff = 0;
    for (let i = 0; i < ids.length; i++) {
      const actual = await onnx.sequenceLogprobs(ids[i]!, 0.7);
      actual.forEach((value, k) => (maxDiff = Math.max(maxDiff, Math.abs(value - expected[i]![k]!))));
    }
    await onnx.close();
    console.log(`ONNX vs worker logprobs: max abs difference ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('decodes concurrent states in one batched onnxruntime call with the logits of one-by-one decoding', async () => {
    const policyDir = join(dir, 'policy-batched');
    const exported = await exportPolicy(policyDir);
    const onnx = await loadOnnxPolicy(policyDir, { batchDecode: true });
    try {
      expect(onnx.batchDecode).toBe(true);
      const vocab = exported.describe.vocab_size;
      const prompts = [
        'look up',
        'look up the key and submit',
        'the key',
        'look up the key and submit the answer',
      ].map((text) => tokenizer.encode(text));
      expect(new Set(prompts.map((prompt) => prompt.length)).size).toBe(4);
      const steps = 6;
      const next = (step: number, b: number): number => (step * 7 + b * 3 + 1) % vocab;
      /** Logits of every decoded token, per state, and the final caches. */
      const decode = async (batched: boolean) => {
        onnx.setBatching(batched);
        const states = prompts.map(() => onnx.newState());
        for (const [b, prompt] of prompts.entries()) await onnx.extend(states[b]!, prompt);
        const logits: Float32Array[][] = prompts.map(() => []);
        for (let step = 0; step < steps; step++) {
          // The last state joins two steps late: the batch changes composition.
          const active = prompts.map((_, b) => b).filter((b) => b < 3 || step >= 2);
          const run = (b: number) => onnx.extend(states[b]!, [next(step, b)]);
          const rows = batched ? await Promise.all(active.map(run)) : [];
          if (!batched) for (const b of active) rows.push(await run(b));
          active.forEach((b, k) => logits[b]!.push(rows[k]!));
        }
        return { logits, states };
      };
      const before = { ...onnx.batchStats };
      const together = await decode(true);
      expect(onnx.batchStats.calls - before.calls).toBe(steps);
      expect(onnx.batchStats.decoded - before.decoded).toBe(3 * steps + steps - 2);
      const alone = await decode(false);
      expect(onnx.batchStats.calls - before.calls).toBe(steps);
      let worst = 0;
      for (const [b, rows] of alone.logits.entries()) {
        expect(together.logits[b]).toHaveLength(rows.length);
        rows.forEach((row, k) =>
          row.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - together.logits[b]![k]![j]!)))),
        );
        const a = alone.states[b]!;
        const t = together.states[b]!;
        expect(t.ids).toEqual(a.ids);
        for (const [j, tensor] of a.kv!.entries()) {
          expect(t.kv![j]!.dims).toEqual(tensor.dims);
          const x = tensor.data as Float32Array;
          const y = t.kv![j]!.data as Float32Array;
          for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
        }
      }
      console.log(`batched vs one-by-one decoding: max abs difference ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-4);
    } finally {
      await onnx.close();
    }
  });

  it('takes a policy-gradient step and reports its metrics', async () => {
    const metrics = await trainer.trainStep(sequences(4), {
      loss: { kl_coef: 0, entropy_coef: 0.01 },
      microBatch: 2,
    });
    expect(metrics.optimizer_steps).toBe(1);
    expect(metrics.tokens).toBeGreaterThan(0);
    expect(metrics.grad_norm).toBeGreaterThan(0);
    for (const key of ['loss', 'pg_loss', 'entropy', 'clip_frac', 'ratio_mean', 'lr'])
      expect(Number.isFinite(metrics[key])).toBe(true);
  });

  it('answers a bad request with TRAINER_FAILED carrying the Python error, and keeps serving', async () => {
    const error = await failure(
      trainer.trainStep([{ ...sequences(1)[0]!, mask: [1] }], { loss: {}, microBatch: 1 }),
    );
    expect(error.code).toBe(TRAINER_FAILED);
    expect(error.message).toMatch(/mask has 1 values/);
    expect(error.details.traceback).toEqual(expect.stringContaining('Traceback'));
    expect((await trainer.stateHash()).sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('torch worker supervision', () => {
  it('turns a crash into TRAINER_FAILED with the tail of its stderr, not a hang', async () => {
    const trainer = await TorchTrainer.start({ env: { PADDOCK_WORKER_FAULT: 'exit:train_step' } });
    await trainer.init({ policy, device: 'cpu' });
    const error = await failure(trainer.trainStep(sequences(2), { loss: {}, microBatch: 2 }));
    expect(error.code).toBe(TRAINER_FAILED);
    expect(error.message).toMatch(/exited \(code 70\)/);
    expect(error.message).toContain('injected fault while handling train_step');
    await expect(trainer.stateHash()).rejects.toMatchObject({ code: TRAINER_FAILED });
    await trainer.close();
  });

  it('keeps what native code writes to stdout out of the protocol stream (it goes to stderr)', async () => {
    let stderr = '';
    const trainer = await TorchTrainer.start({
      env: { PADDOCK_WORKER_FAULT: 'print:state_hash' },
      onStderr: (text) => (stderr += text),
    });
    try {
      await trainer.init({ policy, device: 'cpu' });
      expect((await trainer.stateHash()).sha256).toMatch(/^[0-9a-f]{64}$/);
      expect((await trainer.stateHash()).sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(stderr).toContain('native code writing to fd 1 while handling state_hash');
    } finally {
      await trainer.close();
    }
  });

  it('kills a worker that does not answer in time', async () => {
    const trainer = await TorchTrainer.start({
      env: { PADDOCK_WORKER_FAULT: 'hang:state_hash' },
      requestTimeoutMs: 1_500,
    });
    await trainer.init({ policy, device: 'cpu' });
    const error = await failure(trainer.stateHash());
    expect(error.message).toMatch(/did not answer state_hash within 1500 ms and was killed/);
    await trainer.close();
  });

  it('fails to start with TRAINER_FAILED when the interpreter does not exist', async () => {
    const error = await failure(TorchTrainer.start({ python: '/nonexistent/python3' }));
    expect(error.code).toBe(TRAINER_FAILED);
  });

  it('kills the worker and rejects with ABORTED when the signal aborts', async () => {
    const controller = new AbortController();
    const trainer = await TorchTrainer.start({
      env: { PADDOCK_WORKER_FAULT: 'hang:state_hash' },
      signal: controller.signal,
    });
    await trainer.init({ policy, device: 'cpu' });
    const pending = trainer.stateHash();
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    await trainer.close();
  });
});
