import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPaddockError, type PaddockError } from '../../../harness/index.ts';
import {
  loadTrainConfig,
  lossConfig,
  parseTrainConfig,
  rolloutCorrection,
} from '../../../trainers/rl/index.ts';

const minimal = {
  tasks: { train: ['tasks/a'] },
  policy: { scratch: { hidden_size: 32, layers: 1, heads: 2, max_len: 64 } },
  steps: 3,
  output: 'out',
};

function failure(run: () => unknown): PaddockError {
  try {
    run();
  } catch (error) {
    if (isPaddockError(error)) return error;
    throw error;
  }
  throw new Error('expected a PaddockError');
}

describe('train.yaml', () => {
  it('fills documented defaults and resolves paths against the base folder', () => {
    const config = parseTrainConfig(minimal, { baseDir: '/base' });
    expect(config.tasks.train).toEqual(['/base/tasks/a']);
    expect(config.output).toBe('/base/out');
    expect(config.algorithm).toMatchObject({
      name: 'grpo',
      level: 'trajectory',
      group_size: 8,
      clip: 0.2,
      kl: 0,
    });
    expect(config.sampling).toEqual({ temperature: 1, top_p: 1, max_new_tokens: 64 });
    expect(config.eval.every).toBe(10);
    expect(config.device).toBe('auto');
  });

  it("fills the algorithm options' documented defaults (trainers/rl/README.md)", () => {
    const { algorithm } = parseTrainConfig(minimal, { baseDir: '/base' });
    expect(algorithm).toMatchObject({
      pooling: 'index',
      filter_groups: false,
      scale_by_std: true,
      dual_clip: false,
      log_ratio_clamp: 20,
      kl_estimator: 'k3',
      kl_metric: false,
      loss_agg: 'token-mean',
      reference: true,
      logprob_chunk: 1024,
      activation_checkpointing: false,
    });
    expect(algorithm.loss_norm).toBeUndefined();
  });

  it("turns the algorithm options into the worker's loss settings", () => {
    const defaults = parseTrainConfig(minimal);
    expect(lossConfig(defaults, 256)).toEqual({
      clip_low: 0.2,
      clip_high: 0.2,
      log_ratio_clamp: 20,
      kl_coef: 0,
      kl_estimator: 'k3',
      kl_metric: false,
      entropy_coef: 0,
      temperature: 1,
      agg: 'token-mean',
    });
    const drGrpo = parseTrainConfig({
      ...minimal,
      algorithm: {
        scale_by_std: false,
        loss_agg: 'seq-mean-token-sum-norm',
        dual_clip: true,
        kl: 0.01,
        kl_estimator: 'k2',
      },
    });
    expect(lossConfig(drGrpo, 256)).toMatchObject({
      agg: 'seq-mean-token-sum-norm',
      norm_tokens: 256,
      dual_clip: 3,
      kl_coef: 0.01,
      kl_estimator: 'k2',
    });
    const explicit = parseTrainConfig({
      ...minimal,
      algorithm: { loss_agg: 'seq-mean-token-sum-norm', loss_norm: 1000, dual_clip: 5 },
    });
    expect(lossConfig(explicit, 256)).toMatchObject({ norm_tokens: 1000, dual_clip: 5 });
    expect(() => parseTrainConfig({ ...minimal, algorithm: { dual_clip: 0.5 } })).toThrow(/dual_clip/);
    expect(() => parseTrainConfig({ ...minimal, algorithm: { kl_estimator: 'k4' } })).toThrow(/kl_estimator/);
  });

  it('refuses unknown keys, naming the file and the field', () => {
    const error = failure(() =>
      parseTrainConfig({ ...minimal, algorithm: { name: 'grpo', learning_rate: 1 } }, { file: 'train.yaml' }),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('train.yaml: algorithm');
    expect(error.message).toContain('learning_rate');
  });

  it('names each bad field', () => {
    const error = failure(() =>
      parseTrainConfig(
        { ...minimal, steps: -1, algorithm: { name: 'ppo', group_size: 1 } },
        { file: 'x.yaml' },
      ),
    );
    expect(error.message).toMatch(/x\.yaml: steps:/);
    expect(error.message).toMatch(/x\.yaml: algorithm\.name:/);
    expect(error.message).toMatch(/x\.yaml: algorithm\.group_size:/);
  });

  it('wants exactly one of a model made from scratch and a model folder', () => {
    const error = failure(() =>
      parseTrainConfig({ ...minimal, policy: { model: 'hf', scratch: minimal.policy.scratch } }),
    );
    expect(error.message).toMatch(/exactly one of policy\.model and policy\.scratch/);
  });

  it('says what replaced the built-in model', () => {
    const error = failure(() =>
      parseTrainConfig(
        { ...minimal, policy: { builtin: { d_model: 32, n_layers: 1, n_heads: 2, max_len: 64 } } },
        { file: 'train.yaml' },
      ),
    );
    expect(error.message).toMatch(/train\.yaml: policy\.builtin: policy\.builtin is gone.*policy\.scratch/);
  });

  it('checks the model shape', () => {
    const error = failure(() =>
      parseTrainConfig({ ...minimal, policy: { scratch: { ...minimal.policy.scratch, heads: 3 } } }),
    );
    expect(error.message).toMatch(/policy\.scratch\.hidden_size: hidden_size must be a multiple of heads/);
    const lora = failure(() =>
      parseTrainConfig({ ...minimal, policy: { ...minimal.policy, lora: { rank: 0 } } }),
    );
    expect(lora.message).toMatch(/policy\.lora\.rank/);
  });

  it('loads YAML files relative to their folder and reports syntax errors with the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-cfg-'));
    const file = join(dir, 'train.yaml');
    writeFileSync(
      file,
      'tasks: { train: [t] }\npolicy: { scratch: { hidden_size: 8, layers: 1, heads: 2, max_len: 16 } }\nsteps: 1\noutput: runs/x\n',
    );
    expect(loadTrainConfig(file).output).toBe(join(dir, 'runs/x'));
    writeFileSync(file, 'tasks: [\n');
    const error = failure(() => loadTrainConfig(file));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(file);
  });

  it('validates the rollout engine, the staleness bound, the correction and torchrun', () => {
    const defaults = parseTrainConfig(minimal, { baseDir: '/base' });
    expect(defaults.rollout).toMatchObject({ engine: 'onnx', max_off_policy_steps: 0, batch_decode: false });
    expect(parseTrainConfig({ ...minimal, rollout: { batch_decode: true } }).rollout.batch_decode).toBe(true);
    expect(
      failure(() =>
        parseTrainConfig(
          {
            ...minimal,
            rollout: {
              engine: 'server',
              batch_decode: true,
              server: { kind: 'vllm', url: 'http://127.0.0.1:8000' },
            },
          },
          { file: 't.yaml' },
        ),
      ).message,
    ).toMatch(/t\.yaml: rollout\.batch_decode: .*engine: onnx/);
    expect(defaults.algorithm).toMatchObject({ rollout_correction: 'auto', is_cap: 2 });
    // auto: none for synchronous in-process rollouts, tis once they may be off-policy.
    expect(rolloutCorrection(defaults)).toEqual({ rollout_correction: 'none' });
    const async_ = parseTrainConfig({ ...minimal, rollout: { max_off_policy_steps: 2 } });
    expect(rolloutCorrection(async_)).toEqual({ rollout_correction: 'tis', is_cap: 2 });
    const server = parseTrainConfig({
      ...minimal,
      rollout: { engine: 'server', server: { kind: 'sglang', url: 'http://127.0.0.1:30000' } },
      algorithm: { rollout_correction: 'mask', is_cap: 3 },
    });
    expect(rolloutCorrection(server)).toEqual({ rollout_correction: 'mask', is_cap: 3 });
    expect(server.rollout.server).toMatchObject({ tito: 'off', start_timeout_sec: 900, timeout_sec: 600 });

    expect(
      failure(() => parseTrainConfig({ ...minimal, rollout: { engine: 'server' } }, { file: 't.yaml' }))
        .message,
    ).toMatch(/t\.yaml: rollout\.server: rollout\.engine: server needs rollout\.server/);
    const bad = failure(() =>
      parseTrainConfig(
        {
          ...minimal,
          rollout: { engine: 'server', max_off_policy_steps: -1, server: { kind: 'tgi', url: 'nowhere' } },
          algorithm: { is_cap: 1 },
          worker: { torchrun: { nproc_per_node: 0 } },
        },
        { file: 't.yaml' },
      ),
    );
    for (const field of [
      'rollout.max_off_policy_steps',
      'rollout.server.kind',
      'rollout.server.url',
      'algorithm.is_cap',
      'worker.torchrun.nproc_per_node',
    ])
      expect(bad.message).toContain(`t.yaml: ${field}`);
    const serverAt = { engine: 'server', server: { kind: 'vllm', url: 'http://127.0.0.1:8000' } } as const;
    expect(
      failure(() =>
        parseTrainConfig(
          { ...minimal, rollout: serverAt, sampling: { temperature: 0.7 } },
          { file: 't.yaml' },
        ),
      ).message,
    ).toMatch(/t\.yaml: rollout\.server\.logprobs_mode: .*--logprobs-mode processed_logprobs/);
    expect(() =>
      parseTrainConfig({
        ...minimal,
        rollout: { ...serverAt, server: { ...serverAt.server, logprobs_mode: 'processed' } },
        sampling: { temperature: 0.7 },
      }),
    ).not.toThrow();
    expect(
      failure(() =>
        parseTrainConfig({
          ...minimal,
          rollout: { ...serverAt, server: { ...serverAt.server, sync: 'lora' } },
        }),
      ).message,
    ).toMatch(/rollout\.server\.sync: sync: lora needs policy\.lora/);
    const torchrun = parseTrainConfig({ ...minimal, worker: { torchrun: { nproc_per_node: 2 } } });
    expect(torchrun.worker.torchrun).toEqual({
      nproc_per_node: 2,
      nnodes: 1,
      node_rank: 0,
      master_addr: '127.0.0.1',
      backend: 'auto',
    });
  });

  it('reads every train.yaml of the toy suite', () => {
    const toy = join(import.meta.dirname, '..', '..', '..', 'tasks', 'toy');
    const files = readdirSync(toy).filter((file) => file.endsWith('.yaml'));
    expect(files).toEqual(
      expect.arrayContaining(['train.yaml', 'train-async.yaml', 'train-torchrun.yaml', 'train-vllm.yaml']),
    );
    for (const file of files) expect(() => loadTrainConfig(join(toy, file))).not.toThrow();
    expect(loadTrainConfig(join(toy, 'train-vllm.yaml')).rollout.server?.command).toContain('{model}');
  });
});
