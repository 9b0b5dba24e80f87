/**
 * How busy the update keeps the trainer with rollouts on an inference server of 200 ms per
 * call, synchronous (`rollout.max_off_policy_steps: 0`) against asynchronous (1) steps,
 * side by side in one run.
 *
 * The engine is the loopback vLLM-shaped training engine (tests/fakes/model-servers/
 * training-engine.ts: chat completions with token ids after 200 ms, the full weights
 * reloaded from disk after every update, as `/collective_rpc reload_weights` does). The
 * policy is a Llama made from scratch (hidden 64, 1 layer: its update takes about as long
 * as a step's rollouts, the regime where overlapping them matters) trained on the toy
 * suite, 16 episodes of 3 turns per step. The figure is the update's share of the wall time of
 * the RL steps: Σ update_ms / Σ step_ms (a step runs from the moment the trainer waits for
 * its rollouts to its metrics row, so the steps tile the loop), over the steps after the
 * first (the first has nothing to overlap with). Target: ≥ 0.8 asynchronous.
 *
 * Run: node --import tsx bench/async-rollouts.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toyTaskExtension, toyToolProvider } from '../sandboxes/toy/index.ts';
import { loadTasks } from '../tasks/index.ts';
import { train, type MetricRow, type TrainConfigInput } from '../trainers/rl/index.ts';
import { startTrainingEngine, toyReply } from '../tests/fakes/model-servers/training-engine.ts';
import { writeResults } from './stats.ts';

const TOY = join(import.meta.dirname, '..', 'tasks', 'toy');
const STEPS = 8;
const LATENCY_MS = 200;

async function measure(maxOffPolicySteps: number): Promise<Record<string, number>> {
  const root = mkdtempSync(join(tmpdir(), `paddock-bench-async-${maxOffPolicySteps}-`));
  const output = join(root, 'run');
  const engine = await startTrainingEngine({
    flavour: 'vllm',
    modelDir: join(output, 'base-model'),
    reply: toyReply,
    latencyMs: LATENCY_MS,
  });
  try {
    const rows: MetricRow[] = [];
    const config: TrainConfigInput = {
      tasks: { train: [join(TOY, 'lookup-train')], per_step: 4 },
      policy: { scratch: { hidden_size: 64, layers: 1, heads: 4, max_len: 512 } },
      algorithm: { name: 'grpo', group_size: 4, lr: 1e-4, micro_batch: 16 },
      sampling: { temperature: 1, max_new_tokens: 64 },
      rollout: {
        engine: 'server',
        concurrency: 16,
        max_off_policy_steps: maxOffPolicySteps,
        server: { kind: 'vllm', url: engine.url },
      },
      steps: STEPS,
      checkpoint: { every: STEPS },
      device: 'cpu',
      seed: 1,
      output,
    };
    const started = performance.now();
    await train(config, {
      loadTasks: (paths) => loadTasks(paths, { extensions: { toy: toyTaskExtension } }),
      toolProviders: [toyToolProvider],
      // Rank the first episode of each group first, so that every step updates.
      rewardsFor: () => ({
        group: [
          {
            name: 'rank',
            weight: 1,
            score: async ({ episodes }) => episodes.map((_, index) => (index === 0 ? 1 : 0)),
          },
        ],
      }),
      onStep: (row) => rows.push(row),
    });
    const wallMs = performance.now() - started;
    const steps = rows.filter((row) => row.type === 'train').slice(1);
    const sum = (key: string): number => steps.reduce((total, row) => total + (row[key] as number), 0);
    return {
      maxOffPolicySteps,
      stepsMeasured: steps.length,
      busy: sum('update_ms') / sum('step_ms'),
      stepMs: sum('step_ms') / steps.length,
      updateMs: sum('update_ms') / steps.length,
      rolloutMs: sum('rollout_ms') / steps.length,
      rolloutWaitMs: sum('rollout_wait_ms') / steps.length,
      publishMs: sum('export_ms') / steps.length,
      stalenessMax: Math.max(...steps.map((row) => row.staleness_max as number)),
      engineCalls: engine.served.length,
      runWallMs: wallMs,
    };
  } finally {
    await engine.close();
    rmSync(root, { recursive: true, force: true });
  }
}

const sync = await measure(0);
const async_ = await measure(1);
const line = (name: string, f: Record<string, number>): string =>
  `${name.padEnd(6)} update busy ${(f.busy! * 100).toFixed(1)}% of step time | step ${f.stepMs!.toFixed(0)} ms = ` +
  `wait for rollouts ${f.rolloutWaitMs!.toFixed(0)} + update ${f.updateMs!.toFixed(0)} + publish ${f.publishMs!.toFixed(0)} ms ` +
  `(rollouts take ${f.rolloutMs!.toFixed(0)} ms) | staleness max ${f.stalenessMax}`;
console.log(`engine latency ${LATENCY_MS} ms per call; ${STEPS} steps, the first left out`);
console.log(line('sync', sync));
console.log(line('async', async_));
console.log(`async / sync busy: ${(async_.busy! / sync.busy!).toFixed(2)}×`);
writeResults('async-rollouts', { latencyMs: LATENCY_MS, sync, async: async_ });
