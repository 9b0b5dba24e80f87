/**
 * Multi-turn policy-gradient RL: the rollout → train loop, its configuration, token
 * batches, advantages, the torch worker and its supervision, and the learning-curve plot.
 * The policy it trains is reached through the harness's policy contract
 * (harness/policy.ts); its episodes are runs in `<output>/runs`.
 */

/** Train from a train.yaml (or object); resume a run from its last checkpoint. */
export {
  resumeTraining,
  train,
  type EvalSummary,
  type MetricRow,
  type TrainOptions,
  type TrainResult,
} from './train.ts';
/** The run ids of a training run's episode runs (`demos`, `step-N`, `eval-N`, `eval-N-greedy`). */
export { TRAINING_RUN_IDS, type TrainingRunConfig } from './runs.ts';
/** train.yaml: schema, parsing (errors name file and field), loading. */
export {
  TrainConfigSchema,
  loadTrainConfig,
  parseTrainConfig,
  type TrainConfig,
  type TrainConfigInput,
} from './config.ts';
/** Token batches from recorded ids, demonstrations, and the drift check. */
export {
  checkTokenDrift,
  demonstrationSequence,
  episodeSequences,
  type Demonstration,
  type TokenDrift,
  type TokenSequence,
} from './batch.ts';
/** Per-turn advantages of a step's groups (estimators from rewards/credit). */
export { computeAdvantages, groupsWithSignal, type AdvantageSettings } from './advantages.ts';
/** The worker's loss settings (`train_step`'s `loss`) of a config. */
export { lossConfig, rolloutCorrection } from './rl-step.ts';
/** Policy versions: the gate every rollout turn goes through, and the agent wrapper that records them. */
export { PolicyGate, versionedAgent } from './policy-versions.ts';
export type { RolloutEngine } from './rollout-engine.ts';
/** The torch worker: process supervision and typed protocol calls. */
export {
  DEFAULT_PYTHON,
  TorchWorker,
  WORKER_SCRIPT,
  encodeFloat64,
  encodeInt32,
  type EncodedArray,
  type TorchWorkerOptions,
  type DistributedOptions,
  type WorkerHello,
} from './worker.ts';
export {
  TorchTrainer,
  type LossConfig,
  type OptimizerConfig,
  type PolicySpec,
  type StepMetrics,
  type WorkerInfo,
} from './torch-trainer.ts';
/** The trainer's error code (pending an ERROR_CODES entry in the harness). */
export { TRAINER_FAILED, trainerError } from './errors.ts';
/** The learning-curve SVG. */
export { learningCurveSvg, renderPlot, type PlotPanel, type PlotSeries } from './plot.ts';
