/**
 * The short version of the trainer's learning proof (tasks/toy/train.yaml runs the long
 * one, on three seeds in trainers/rl/README.md): from the proof's warm start — a tiny Llama
 * made from scratch in Hugging Face's format (its own byte-level BPE and ChatML template)
 * after its SFT on oracle demonstrations, kept as fixtures/warm-start-<seed>/ by
 * fixtures/make-warm-starts.ts — GRPO with its ONNX export in the loop must raise held-out success —
 * on two seeds, each on its own (the two runs go side by side: each worker takes a core):
 * seed 1 synchronous, seed 2 asynchronous (tasks/toy/train-async.yaml's
 * `max_off_policy_steps: 1`, truncated importance sampling; both modes' three-seed proofs
 * are in trainers/rl/README.md). Every synchronous step's rollout logprobs must match the
 * worker's; asynchronous turns must stay within one update of the policy being updated.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createOnnxAgent } from '../../../agents/onnx/index.ts';
import { train, type MetricRow, type TrainResult } from '../../../trainers/rl/index.ts';
import { warmStartConfig, warmStartDir } from './fixtures/make-warm-starts.ts';
import { TOY_DIR, TOY_TOOLS, loadToyTasks } from './fixtures/toy.ts';

const STEPS = 15;

async function run(
  seed: number,
  maxOffPolicySteps: number,
): Promise<{ result: TrainResult; rows: MetricRow[]; output: string }> {
  const output = join(mkdtempSync(join(tmpdir(), `paddock-learn-${seed}-`)), 'run');
  const rows: MetricRow[] = [];
  const { tasks, sampling } = warmStartConfig(seed, output);
  const result = await train(
    {
      tasks: { ...tasks, heldout: [join(TOY_DIR, 'lookup-heldout')] },
      // The proof's warm start (fixtures/make-warm-starts.ts: its model after its SFT).
      policy: { model: warmStartDir(seed) },
      algorithm: { name: 'grpo', group_size: 8, lr: 2e-4, micro_batch: 16 },
      sampling,
      rollout: { max_off_policy_steps: maxOffPolicySteps },
      steps: STEPS,
      eval: { every: STEPS },
      checkpoint: { every: STEPS },
      device: 'cpu',
      threads: 1,
      seed,
      output,
    },
    { loadTasks: loadToyTasks, toolProviders: TOY_TOOLS, onStep: (row) => rows.push(row) },
  );
  return { result, rows, output };
}

describe('training on the toy suite', () => {
  it('raises held-out success over the warm-started policy, synchronously on seed 1 and asynchronously on seed 2', async () => {
    const runs = await Promise.all([run(1, 0), run(2, 1)]);
    for (const [index, { result, rows, output }] of runs.entries()) {
      const mode = index === 0 ? 'synchronous' : 'asynchronous';
      const before = result.before!.success;
      const after = result.after!.success;
      console.log(
        `seed ${index + 1} (${mode}): held-out success ${before.toFixed(3)} → ${after.toFixed(3)} in ${(result.wallMs / 1000).toFixed(0)} s`,
      );
      expect(after - before, `seed ${index + 1}`).toBeGreaterThanOrEqual(0.1);

      const trainRows = rows.filter((row) => row.type === 'train');
      expect(trainRows).toHaveLength(STEPS);
      if (index === 0) {
        for (const row of trainRows) {
          expect(row.staleness_max).toBe(0);
          if (row.rollout_logprob_diff_max !== undefined)
            expect(row.rollout_logprob_diff_max).toBeLessThan(1e-3);
        }
        expect(trainRows.some((row) => row.rollout_logprob_diff_max !== undefined)).toBe(true);
      } else {
        for (const row of trainRows) expect(row.staleness_max).toBeLessThanOrEqual(1);
        expect(trainRows.some((row) => row.staleness_max === 1)).toBe(true);
        expect(trainRows.every((row) => row.is_weight_mean !== undefined || row.skipped_update === 1)).toBe(
          true,
        );
      }
      expect(existsSync(join(output, 'learning-curve.svg'))).toBe(true);
      expect(readFileSync(join(output, 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBe(rows.length);

      // The trained policy is an ordinary onnx: agent, and the trained model a Hugging Face folder.
      const agent = await createOnnxAgent(`onnx:${result.policyDir}`);
      expect(agent.policy.config.step).toBe(STEPS);
      await agent.close();
      expect(existsSync(join(result.modelDir!, 'model.safetensors'))).toBe(true);
    }
  }, 900_000);
});
