/**
 * The torch worker on several processes (torchrun, gloo on the CPU): a data-parallel step on
 * 2 ranks equals one process's step (metrics and weights), and no rank outlives the worker —
 * after close, after a rank is killed, after an abort. Needs Debian's python3-torch (or
 * PADDOCK_PYTHON naming an interpreter with torch).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPaddockError, type PaddockError } from '../../../harness/index.ts';
import {
  TRAINER_FAILED,
  TorchTrainer,
  resumeTraining,
  train,
  type PolicySpec,
  type TrainConfigInput,
  type StepMetrics,
  type TorchWorkerOptions,
} from '../../../trainers/rl/index.ts';
import { FIRST_BEST, TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const VOCAB = 48;
const env = { OMP_NUM_THREADS: '1', CUDA_VISIBLE_DEVICES: '' };

/** A tiny Llama made from scratch in a folder of its own (the same seed gives the same weights). */
function policy(): PolicySpec {
  return {
    kind: 'hf',
    path: join(mkdtempSync(join(tmpdir(), 'paddock-ddp-')), 'model'),
    create: {
      family: 'llama',
      seed: 3,
      config: {
        vocab_size: VOCAB,
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
}

interface Ranks {
  world_size: number;
  ranks: { rank: number; pid: number; device: string }[];
}

async function start(distributed: boolean, options: TorchWorkerOptions = {}): Promise<TorchTrainer> {
  return TorchTrainer.start({
    env,
    ...(distributed ? { distributed: { nprocPerNode: 2, backend: 'gloo' } } : {}),
    ...options,
  });
}

/** `init` through the raw request, whose result keeps `world_size` and `ranks`. */
async function init(trainer: TorchTrainer): Promise<Partial<Ranks>> {
  const info = await trainer.worker.request<Partial<Ranks>>('init', {
    policy: policy(),
    device: 'cpu',
    seed: 3,
  });
  await trainer.configureOptimizer({ lr: 1e-2, total_steps: 10 });
  return info;
}

/** Six sequences of different lengths (7..17 tokens) and masks. */
function sequences(shift = 0) {
  return Array.from({ length: 6 }, (_, i) => {
    const ids = Array.from({ length: 7 + 2 * i }, (_, k) => (k * 5 + i * 3 + 1) % VOCAB);
    return {
      ids,
      mask: ids.map((_, k) => (k >= 2 + (i % 3) ? 1 : 0)),
      advantages: ids.map(() => (i % 2 === 0 ? 1 : -0.7)),
      logprobs: ids.map(() => -3.9 + shift),
      episodeId: `e${i}`,
      turns: [0],
    };
  });
}

const probe = [[3, 9, 14, 20, 27, 33, 41, 2, 5]];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pids: number[], ms = 5_000): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((resolve) => setTimeout(resolve, 100));
  return pids.filter(alive);
}

async function failure(promise: Promise<unknown>): Promise<PaddockError> {
  try {
    await promise;
  } catch (error) {
    if (isPaddockError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

function expectSameMetrics(one: StepMetrics, two: StepMetrics): void {
  const keys = Object.keys(one).filter((key) => key !== 'time_ms');
  expect(
    Object.keys(two)
      .filter((key) => key !== 'time_ms')
      .sort(),
  ).toEqual(keys.sort());
  for (const key of keys)
    expect(Math.abs(one[key]! - two[key]!), `${key}: ${one[key]} vs ${two[key]}`).toBeLessThanOrEqual(
      1e-5 * Math.max(1, Math.abs(one[key]!)),
    );
}

async function maxLogprobDiff(one: TorchTrainer, two: TorchTrainer): Promise<number> {
  const [a, b] = await Promise.all([one.logprobs(probe), two.logprobs(probe)]);
  return Math.max(...a[0]!.map((value, k) => Math.abs(value - b[0]![k]!)));
}

describe('the torch worker on 2 ranks (torchrun, gloo)', () => {
  let single: TorchTrainer;
  let multi: TorchTrainer;
  let ranks: Ranks['ranks'] = [];
  /** The same call on one process and on 2 ranks, at once. */
  const both = <T>(call: (trainer: TorchTrainer) => Promise<T>): Promise<[T, T]> =>
    Promise.all([call(single), call(multi)]);

  beforeAll(async () => {
    [single, multi] = await Promise.all([start(false), start(true)]);
  });
  afterAll(async () => {
    await Promise.all([single?.close(), multi?.close()]);
  });

  it('takes the same steps as one process', async () => {
    expect(multi.hello.world_size).toBe(2);
    const [one, two] = await Promise.all([init(single), init(multi)]);
    expect(one.world_size).toBeUndefined();
    expect(two.world_size).toBe(2);
    ranks = two.ranks!;
    expect(ranks.map((rank) => rank.rank)).toEqual([0, 1]);
    expect(new Set(ranks.map((rank) => rank.pid)).size).toBe(2);
    expect(ranks[0]!.pid).toBe(multi.hello.pid);
    expect(await maxLogprobDiff(single, multi)).toBe(0); // rank 0's weights are every rank's

    await Promise.all([single.setReference(), multi.setReference()]);
    // Two mini-batches (two optimiser steps) of two micro-batches: one on each rank.
    const loss = { entropy_coef: 0.01, kl_coef: 0.05, kl_estimator: 'k2' as const };
    const pg = await both((t) => t.trainStep(sequences(), { loss, microBatch: 2, miniBatches: 2 }));
    expect(pg[0].optimizer_steps).toBe(2);
    expectSameMetrics(pg[0], pg[1]);
    expect(await maxLogprobDiff(single, multi)).toBeLessThanOrEqual(1e-5);

    // Three micro-batches, two on rank 0.
    const sft = await both((t) => t.sftStep(sequences(), { microBatch: 2, labelSmoothing: 0.1 }));
    expectSameMetrics(sft[0], sft[1]);
    expect(await maxLogprobDiff(single, multi)).toBeLessThanOrEqual(1e-5);

    // Rollout correction (the old log-probs' pre-pass); one micro-batch: rank 1 has none.
    const tis = await both((t) =>
      t.trainStep(sequences(0.3), { loss: { rollout_correction: 'tis', is_cap: 1.5 }, microBatch: 6 }),
    );
    expect(tis[0].is_weight_mean).toBeGreaterThan(0);
    expectSameMetrics(tis[0], tis[1]);
    expect(await maxLogprobDiff(single, multi)).toBeLessThanOrEqual(1e-5);
    expect((await multi.stateHash()).opt_step).toBe(4);

    // A request that fails validation is answered on every rank alike; the worker goes on.
    const error = await failure(
      multi.trainStep([{ ...sequences()[0]!, mask: [1] }], { loss: {}, microBatch: 1 }),
    );
    expect(error.message).toMatch(/mask has 1 values/);
    expect((await multi.stateHash()).opt_step).toBe(4);
  });

  it('leaves no rank running after close', async () => {
    expect(ranks).toHaveLength(2);
    const torchrun = multi.worker.pid!;
    await multi.close();
    expect(await gone([torchrun, ...ranks.map((rank) => rank.pid)])).toEqual([]);
  });
});

describe('a 2-rank worker whose rank dies', () => {
  it.each(['pending', 'next'] as const)(
    'fails the %s request with TRAINER_FAILED naming the rank, and leaves no rank running',
    async (when) => {
      const trainer = await start(true);
      try {
        const { ranks } = await init(trainer);
        const pids = ranks!.map((rank) => rank.pid);
        let next: () => Promise<unknown> = () => trainer.trainStep(sequences(), { loss: {}, microBatch: 1 });
        // Rank 1 killed while a request runs, or between requests (rank 0 waits on stdin).
        if (when === 'pending') {
          const pending = next();
          next = () => pending;
          process.kill(pids[1]!, 'SIGKILL');
        } else {
          process.kill(pids[1]!, 'SIGKILL');
          expect(await gone([pids[1]!])).toEqual([]);
        }
        const error = await failure(next());
        expect(error.code).toBe(TRAINER_FAILED);
        expect(error.message).toMatch(/rank 1 of 2 was killed \(signal 9, SIGKILL\)/);
        await expect(trainer.stateHash()).rejects.toMatchObject({ code: TRAINER_FAILED });
        expect(await gone([trainer.worker.pid!, ...pids])).toEqual([]);
      } finally {
        await trainer.close();
      }
    },
  );

  it('kills every rank when the signal aborts', async () => {
    const controller = new AbortController();
    const trainer = await start(true, { signal: controller.signal });
    try {
      const { ranks } = await init(trainer);
      const pending = trainer.trainStep(sequences(), { loss: {}, microBatch: 1 });
      controller.abort();
      await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
      expect(await gone([trainer.worker.pid!, ...ranks!.map((rank) => rank.pid)])).toEqual([]);
    } finally {
      await trainer.close();
    }
  });
});

describe('a training run on 2 ranks', () => {
  it('fails clearly when a rank is killed, and resumes from its last checkpoint', async () => {
    const output = join(mkdtempSync(join(tmpdir(), 'paddock-ddp-train-')), 'run');
    const config: TrainConfigInput = {
      tasks: { train: [join(TOY_DIR, 'lookup-train')], per_step: 2 },
      policy: { scratch: { hidden_size: 32, layers: 1, heads: 2, max_len: 512 } },
      algorithm: { name: 'grpo', group_size: 3, lr: 1e-3, micro_batch: 2 },
      sampling: { temperature: 1, max_new_tokens: 16 },
      sft: { data: 'oracle', episodes: 4, steps: 2, batch_size: 4, micro_batch: 2 },
      steps: 3,
      checkpoint: { every: 1 },
      device: 'cpu',
      threads: 1,
      seed: 2,
      output,
      worker: { torchrun: { nproc_per_node: 2, backend: 'gloo' } },
    };
    let pids: number[] = [];
    const options = {
      loadTasks: loadToyTasks,
      toolProviders: TOY_TOOLS,
      rewardsFor: () => ({ group: [FIRST_BEST] }),
      workerEnv: env,
    };
    const killed = await train(config, {
      ...options,
      log: (line: string) => {
        const match = /(\d+) ranks \(pids ([\d, ]+)\)/.exec(line);
        if (match) pids = match[2]!.split(', ').map(Number);
      },
      // Step 2's row is written before its checkpoint: kill rank 1 then.
      onStep: (row) => {
        if (row.type === 'train' && row.step === 2) process.kill(pids[1]!, 'SIGKILL');
      },
    }).catch((error: unknown) => error);
    expect(pids.length).toBe(2);
    expect(isPaddockError(killed, TRAINER_FAILED)).toBe(true);
    expect((killed as Error).message).toMatch(/rank 1 of 2 was killed \(signal 9/);

    const resumed = await resumeTraining(output, options);
    expect(resumed.steps).toBe(3);
    const rows = readFileSync(join(output, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; step: number });
    // Step 1 was kept; steps 2 and 3 were trained after the resume, once each.
    expect(rows.filter((row) => row.type === 'train').map((row) => row.step)).toEqual([1, 2, 3]);
  });
});
