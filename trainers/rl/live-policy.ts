/**
 * The in-process rollout engine (`rollout.engine: onnx`): after each update the worker's
 * weights are exported into a policy folder (`policies/step-N/`, through the policy
 * contract's format) and loaded; then, through the policy gate (no turn in flight), swapped
 * into the agents — the rollout agent, the evaluation agent and the greedy one — so that the
 * next turns run the new policy and record its version. The previous folder is removed.
 * With `rollout.batch_decode`, the loaded policy batches the next-token calls of concurrent
 * episodes; the three agents share it, so batches span rollouts and evaluations.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Agent, PolicyFormat, Tokenizer } from '../../harness/index.ts';
import { OnnxPolicyAgent, type OnnxPolicy } from '../../agents/onnx/index.ts';
import type { TrainConfig } from './config.ts';
import { trainerError } from './errors.ts';
import { PolicyGate, versionedAgents, type EngineAgents } from './policy-versions.ts';
import type { RolloutEngine } from './rollout-engine.ts';
import type { RunFolder } from './run-folder.ts';
import type { TorchTrainer } from './torch-trainer.ts';

export class LivePolicy implements RolloutEngine {
  readonly gate = new PolicyGate();
  private current: OnnxPolicy | undefined;
  private rollout: OnnxPolicyAgent | undefined;
  private sampled: OnnxPolicyAgent | undefined;
  private greedy: OnnxPolicyAgent | undefined;
  private agents: EngineAgents | undefined;

  constructor(
    private readonly cfg: TrainConfig,
    private readonly folder: RunFolder,
    private readonly trainer: TorchTrainer,
    private readonly tokenizer: Tokenizer,
    /** How the folders are written and loaded (the model's: `policyFormatFor`). */
    private readonly format: PolicyFormat<OnnxPolicy>,
  ) {}

  /** The folder of the policy now sampling. Throws before the first `publish`. */
  get dir(): string {
    return this.policy().dir;
  }

  /** The agent of the rollouts (the config's sampling). */
  get agent(): Agent {
    this.policy();
    return this.agents!.rollout;
  }

  /** The agents of evaluations: sampled at `eval.temperature`, and greedy with `eval.greedy`. */
  get evalAgents(): { sampled: Agent; greedy?: Agent } {
    this.policy();
    const { sampled, greedy } = this.agents!;
    return { sampled, ...(greedy ? { greedy } : {}) };
  }

  /** Exports the worker's policy as `step`'s, loads it, and makes the agents sample from it. Returns ms spent. */
  async publish(step: number): Promise<number> {
    const started = performance.now();
    const cfg = this.cfg;
    const dir = this.folder.policyDir(step);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const exported = await this.trainer.exportOnnx(join(dir, this.format.weightsFile));
    const { describe } = exported;
    this.format.write(dir, {
      model: {
        vocabSize: describe.vocab_size,
        maxLen: describe.max_len,
        kvCache: describe.kv_cache && {
          layers: describe.kv_cache.layers,
          heads: describe.kv_cache.heads,
          headDim: describe.kv_cache.head_dim,
        },
        details: describe.model,
      },
      tokenizer: this.tokenizer,
      sampling: {
        temperature: cfg.sampling.temperature,
        topP: cfg.sampling.top_p,
        maxNewTokens: cfg.sampling.max_new_tokens,
      },
      step,
    });
    const policy = await this.format.load(dir);
    if (cfg.rollout.batch_decode) policy.setBatching(true);
    const previous = this.current;
    if (!this.rollout) {
      this.rollout = new OnnxPolicyAgent(policy, { name: 'onnx:train' });
      this.sampled = new OnnxPolicyAgent(policy, {
        name: 'onnx:eval',
        ...(cfg.eval.temperature === undefined ? {} : { temperature: cfg.eval.temperature }),
      });
      if (cfg.eval.greedy) this.greedy = new OnnxPolicyAgent(policy, { name: 'onnx:greedy', temperature: 0 });
      this.agents = versionedAgents(
        { rollout: this.rollout, sampled: this.sampled, ...(this.greedy ? { greedy: this.greedy } : {}) },
        this.gate,
      );
    }
    await this.gate.swap(step, async () => {
      this.current = policy;
      this.rollout!.setPolicy(policy);
      this.sampled!.setPolicy(policy);
      this.greedy?.setPolicy(policy);
    });
    if (previous) {
      await previous.close();
      rmSync(previous.dir, { recursive: true, force: true });
    }
    return performance.now() - started;
  }

  /** Closes the agents and the policy. Idempotent. */
  async close(): Promise<void> {
    await this.rollout?.close();
    await this.sampled?.close();
    await this.greedy?.close();
    await this.current?.close();
  }

  private policy(): OnnxPolicy {
    if (!this.current) throw trainerError('no policy was published yet');
    return this.current;
  }
}
