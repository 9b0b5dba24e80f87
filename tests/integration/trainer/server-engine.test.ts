/**
 * `paddock train` with an inference server as the rollout engine, against loopback servers
 * shaped as vLLM's and SGLang's (tests/fakes/model-servers/training-engine.ts: their chat
 * responses with token ids, and the endpoints that load new weights and adapters, with
 * their checks). Each step's new policy must reach the server before the next rollouts,
 * every turn must record the version that sampled it, and the update must train on the
 * server's token ids with the off-policy correction on.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RunStore, type EpisodeRecord } from '../../../harness/index.ts';
import {
  TRAINING_RUN_IDS,
  train,
  type MetricRow,
  type TrainConfigInput,
} from '../../../trainers/rl/index.ts';
import {
  startTrainingEngine,
  toyReply,
  type TrainingEngine,
} from '../../fakes/model-servers/training-engine.ts';
import { FIRST_BEST, TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const STEPS = 2;

function config(output: string, url: string, kind: 'vllm' | 'sglang', lora: boolean): TrainConfigInput {
  return {
    tasks: { train: [join(TOY_DIR, 'lookup-train')], per_step: 2 },
    policy: {
      scratch: { hidden_size: 32, layers: 1, heads: 2, max_len: 512 },
      ...(lora ? { lora: { rank: 4 } } : {}),
    },
    algorithm: { name: 'grpo', group_size: 3, lr: 1e-3, micro_batch: 8 },
    sampling: { temperature: 1, max_new_tokens: 64 },
    sft: { data: 'oracle', episodes: 4, steps: 1, batch_size: 4 },
    rollout: { engine: 'server', concurrency: 3, server: { kind, url } },
    steps: STEPS,
    checkpoint: { every: STEPS },
    device: 'cpu',
    threads: 1,
    seed: 3,
    output,
  };
}

async function trainOn(
  root: string,
  kind: 'vllm' | 'sglang',
  lora: boolean,
): Promise<{ engine: TrainingEngine; rows: MetricRow[]; steps: EpisodeRecord[][]; output: string }> {
  const output = join(root, `${kind}-${lora ? 'lora' : 'weights'}`);
  const engine = await startTrainingEngine({
    flavour: kind,
    modelDir: join(output, 'base-model'),
    reply: toyReply,
    lora,
  });
  try {
    const rows: MetricRow[] = [];
    const result = await train(config(output, engine.url, kind, lora), {
      loadTasks: loadToyTasks,
      toolProviders: TOY_TOOLS,
      rewardsFor: () => ({ group: [FIRST_BEST] }),
      onStep: (row) => rows.push(row),
    });
    expect(result.policyDir).toBeUndefined();
    const steps = Array.from(
      { length: STEPS },
      (_, i) =>
        RunStore.open(result.runsDir, TRAINING_RUN_IDS.step(i + 1)).records() as unknown as EpisodeRecord[],
    );
    return { engine, rows: rows.filter((row) => row.type === 'train'), steps, output };
  } finally {
    await engine.close();
  }
}

function expectVersionsRecorded(steps: readonly EpisodeRecord[][], rows: readonly MetricRow[]): void {
  for (const [index, episodes] of steps.entries()) {
    expect(episodes.length).toBe(6);
    for (const episode of episodes) {
      expect(episode.status).toBe('completed');
      for (const turn of episode.turns) {
        expect(turn.tokens?.completionIds.length).toBeGreaterThan(0);
        expect(turn.tokens?.policyVersion).toBe(index); // step index + 1 samples version index
      }
    }
  }
  for (const row of rows) {
    expect(row.skipped_update).toBe(0);
    expect(row.staleness_max).toBe(0);
    expect(row.is_weight_mean).toBeGreaterThan(0); // the correction is on for a server engine
  }
}

describe('rollouts on an inference server', () => {
  const root = mkdtempSync(join(tmpdir(), 'paddock-server-engine-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('vLLM: the full weights of every version reach the server before its rollouts', async () => {
    const { engine, rows, steps, output } = await trainOn(root, 'vllm', false);
    // Version 0 (the warm-started weights), then one per step, each through pause → reload → resume.
    const weights = engine.loads.filter((load) => load.kind === 'weights');
    expect(weights.map((load) => load.path)).toEqual(
      [0, 1, 2].map((step) => join(output, 'served', `step-${String(step).padStart(6, '0')}`)),
    );
    const paths = engine.requests.map((request) => request.path);
    const reload = paths.indexOf('/collective_rpc');
    expect(paths.slice(reload - 1, reload + 4)).toEqual([
      '/pause?mode=wait',
      '/collective_rpc',
      '/reset_prefix_cache',
      '/update_weight_version',
      '/resume',
    ]);
    // Each rollout request was served by the weights of the version its turn records.
    const versions = steps
      .flat()
      .flatMap((episode) => episode.turns.map((turn) => String(turn.tokens!.policyVersion)));
    const servedVersions = engine.served.map((served) => served.version);
    expect(servedVersions.sort()).toEqual(versions.sort());
    expectVersionsRecorded(steps, rows);
    // The server's folder of the last version stays; the earlier ones are removed.
    expect(existsSync(join(output, 'served', 'step-000002'))).toBe(true);
    expect(existsSync(join(output, 'served', 'step-000001'))).toBe(false);
  });

  it('SGLang: every version is a LoRA adapter loaded at run time, requests name it, the previous is unloaded', async () => {
    const { engine, rows, steps } = await trainOn(root, 'sglang', true);
    // Adapter names: paddock-<engine session>-step-<version>.
    const session = /^paddock-(\w+)-step-0$/.exec((engine.loads[0] as { name: string }).name)?.[1];
    expect(session).toBeDefined();
    expect(engine.loads.map((load) => `${load.kind} ${'name' in load ? load.name : ''}`)).toEqual([
      `adapter paddock-${session}-step-0`,
      `adapter paddock-${session}-step-1`,
      `unload paddock-${session}-step-0`,
      `adapter paddock-${session}-step-2`,
      `unload paddock-${session}-step-1`,
    ]);
    // Each turn's version is the adapter that served it.
    const byVersion = steps
      .flat()
      .flatMap((episode) =>
        episode.turns.map((turn) => `paddock-${session}-step-${turn.tokens!.policyVersion}`),
      );
    expect(engine.served.map((served) => served.adapter).sort()).toEqual(byVersion.sort());
    expectVersionsRecorded(steps, rows);
  });
});

/** A port nothing listens on (one the system just gave out and took back). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const MAIN = fileURLToPath(new URL('../../fakes/model-servers/training-engine-main.ts', import.meta.url));

describe('the inference server paddock starts itself', () => {
  const root = mkdtempSync(join(tmpdir(), 'paddock-server-command-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const options = {
    loadTasks: loadToyTasks,
    toolProviders: TOY_TOOLS,
    rewardsFor: () => ({ group: [FIRST_BEST] }),
  };

  it('starts `command` on a folder of the current weights, trains through it, and stops it at the end', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const cfg = config(join(root, 'started'), url, 'vllm', false);
    cfg.rollout!.server!.command = `${process.execPath} --import tsx ${MAIN} vllm {model} ${port}`;
    cfg.steps = 1;
    const result = await train(cfg, options);
    const log = readFileSync(join(result.dir, 'server.log'), 'utf8');
    expect(log).toContain(`serving ${join(result.dir, 'served', 'model')} at ${url}`);
    // Stopped with the run: nothing answers any more.
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    const records = RunStore.open(
      result.runsDir,
      TRAINING_RUN_IDS.step(1),
    ).records() as unknown as EpisodeRecord[];
    expect(records.every((record) => record.status === 'completed')).toBe(true);
  });

  it('says what went wrong when the server cannot be reached or started', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const none = config(join(root, 'none'), url, 'vllm', false);
    await expect(train(none, options)).rejects.toThrow(
      /does not answer .*rollout\.server\.command is not set/,
    );

    const failing = config(join(root, 'failing'), url, 'sglang', false);
    failing.rollout!.server!.command = 'echo no GPU here >&2; exit 3';
    const error = await train(failing, options).catch((caught: unknown) => caught);
    expect(String(error)).toMatch(/exited \(code 3\) before .* answered; its output is in .*server\.log/);
    expect(readFileSync(join(root, 'failing', 'server.log'), 'utf8')).toContain('no GPU here');

    const engine = await startTrainingEngine({
      flavour: 'vllm',
      modelDir: join(root, 'no-dev', 'base-model'),
      reply: toyReply,
      devMode: false,
    });
    try {
      await expect(train(config(join(root, 'no-dev'), engine.url, 'vllm', false), options)).rejects.toThrow(
        /VLLM_SERVER_DEV_MODE=1/,
      );
    } finally {
      await engine.close();
    }
  });
});
