/**
 * Rewards: turn-level functions (rules, progress commands, ONNX reward/progress models,
 * LLM judges), trajectory-level functions (verifier weight, answer match, judges, ONNX
 * models), group judges, and constraints — built from a task's `rewards:` section with
 * `buildRewardFunctions`. Credit assignment lives in `rewards/credit`.
 *
 * Register the task.yaml sections with the loader:
 * `loadTasks(paths, { extensions: { rewards: rewardsTaskExtension, credit: creditTaskExtension } })`.
 */

/** The `rewards:` section of task.yaml and its parts. */
export {
  ANSWER_MATCHES,
  CONSTRAINT_KINDS,
  TURN_RULES,
  rewardsTaskExtension,
  type AnswerMatch,
  type ConstraintEntry,
  type ConstraintKind,
  type RewardsSection,
  type TrajectoryRewardEntry,
  type TurnRewardEntry,
  type TurnRuleName,
} from './schema.ts';
/** The `credit:` section (re-exported from rewards/credit for one-stop registration). */
export { creditTaskExtension } from './credit/index.ts';

/** Building a task's reward functions, and the resources they share across a run. */
export {
  RewardResources,
  buildRewardFunctions,
  rewardsSection,
  verifierReward,
  type BuildRewardOptions,
  type JudgeAgentFactory,
  type RewardResourcesOptions,
  type RewardSetup,
} from './build.ts';

/** Rule rewards over one turn (penalties ≤ 0). */
export {
  actionKey,
  costReward,
  formatReward,
  invalidCallReward,
  refusedReward,
  truncatedReward,
  repeatReward,
  ruleReward,
  tokensReward,
  toolErrorReward,
  type ComponentOptions,
  type FormatRewardOptions,
  type RepeatRewardOptions,
  type TokensRewardOptions,
} from './rules.ts';

/** Progress commands: potential-based shaping from a command run in the sandbox. */
export {
  ProgressReward,
  jsonNumber,
  lastNumber,
  parseProgress,
  passedFraction,
  type ProgressParser,
  type ProgressRewardOptions,
} from './progress.ts';

/** ONNX reward and progress models (onnxruntime-node, on the host). */
export {
  OnnxRewardModel,
  RewardModelSpecSchema,
  encodeText,
  modelFiles,
  onnxTrajectoryReward,
  onnxTurnReward,
  type OnnxRewardModelOptions,
  type OnnxTrajectoryRewardOptions,
  type OnnxTurnRewardOptions,
  type RewardModelSpec,
} from './onnx-model.ts';

/** LLM judges of turns, episodes and groups; the judgement cache. */
export {
  LlmJudge,
  judgeGroupReward,
  judgeTrajectoryReward,
  judgeTurnReward,
  parseGroupScores,
  parseJudgeScore,
  type LlmJudgeOptions,
} from './judge.ts';
/** Group rewards are a harness contract; re-exported here beside the group judge. */
export { applyGroupRewards, type GroupRewardFunction } from '../harness/index.ts';
export { JUDGE_CACHE_FILE, JudgeCache, type CachedValue } from './cache.ts';

/** Answer match on `episode.answer`. */
export {
  answerMatches,
  answerReward,
  extractNumber,
  normalizeAnswer,
  type AnswerMatchOptions,
  type AnswerRewardOptions,
} from './answer.ts';

/** Constraints kept apart from the reward. */
export {
  constraintFunction,
  constraintViolations,
  measureConstraints,
  withConstraints,
  type ConstraintEpisode,
  type ConstraintFunction,
} from './constraints.ts';

/** Text renderings that models and judges read, and content hashing. */
export { canonicalJson, contentHash, renderTranscript, turnText, type RenderedTurn } from './text.ts';
