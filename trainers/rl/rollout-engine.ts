/**
 * What samples a training run's episodes (`rollout.engine`): the in-process ONNX policy
 * (live-policy.ts) or an inference server (server-engine.ts). Either way the trainer owns
 * the weights; after each update `publish` makes them the engine's policy, and every turn
 * the engine's agents sample records the version it ran under (policy-versions.ts).
 */
import type { Agent } from '../../harness/index.ts';
import type { PolicyGate } from './policy-versions.ts';

export interface RolloutEngine {
  /** The version now sampling, and the gate every turn goes through. */
  readonly gate: PolicyGate;
  /** The agent of the rollouts (the config's sampling). */
  readonly agent: Agent;
  /** The agents of evaluations: sampled at `eval.temperature`, and greedy with `eval.greedy`. */
  readonly evalAgents: { sampled: Agent; greedy?: Agent };
  /** Makes the trainer's current weights the policy of version `step`; returns ms spent. */
  publish(step: number): Promise<number>;
  /** Stops what the engine started. Idempotent. */
  close(): Promise<void>;
}
