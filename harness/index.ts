/** paddock's core: the contracts every plug-in implements, the episode loop, runs and the run store. */
export type {
  Agent,
  AgentInput,
  AgentDefinition,
  AgentSession,
  AssistantTurn,
  Message,
  Reasoning,
  StopReason,
  TokenRecord,
  ToolCall,
  Usage,
} from './agent.ts';
export { defineAgent } from './agent.ts';
export { definePlugin, importModule, isLazyTaskSection, TYPESCRIPT_LOADER_KEY } from './plugin.ts';
export { createRng, mixSeed, type Rng } from './random.ts';
export type {
  ChatTemplate,
  KvCacheShape,
  LoadedPolicy,
  ParsedCompletion,
  PolicyFolderContents,
  PolicyFormat,
  PolicySampling,
  Tokenizer,
} from './policy.ts';
export { isStopId, parseCompletionIds, renderFollowing } from './policy.ts';
export type {
  AgentKind,
  AgentKindContext,
  PaddockPlugin,
  PluginRun,
  PluginRunContext,
  RewardBuilder,
  RunSandboxProvider,
  SandboxKind,
  SandboxKindOptions,
  LazyTaskSection,
  TaskSection,
  TurnRewardKind,
} from './plugin.ts';
export type {
  EpisodeContext,
  InitialObservation,
  SessionScore,
  ToolProvider,
  ToolSession,
} from './environment.ts';
export { isAgentOutcome } from './episode.ts';
export type {
  EpisodeEvent,
  EpisodeEventListener,
  EpisodeRecord,
  EpisodeStats,
  EpisodeStatus,
  LimitKind,
  RecordedEpisode,
  ToolCallProblem,
  ToolResultRecord,
  TurnRecord,
} from './episode.ts';
export {
  DEFAULT_EPISODE_IMAGE_BUDGET,
  DEFAULT_INLINE_MAX_BYTES,
  IMAGE_FILE_PATTERN,
  OVER_BUDGET,
  RunImageWriter,
  imageExtension,
  imageFilePath,
  isImageFileRef,
  readRecordedImage,
  recordedImageBytes,
  sha256Hex,
  type ImageFileRef,
  type RecordImageOptions,
  type RecordedImage,
  type RecordedImages,
} from './recorded-images.ts';
export { aggregateSteps, minRewardFailure, runEpisode, type EpisodeOptions } from './episode-loop.ts';
export { MAX_TIMER_MS, assertTimerMs, startDeadline, withDeadline, type Deadline } from './deadline.ts';
export {
  ERROR_CODES,
  PaddockError,
  describeError,
  raceAbort,
  settlesWithin,
  isPaddockError,
  throwIfAborted,
  type ErrorCode,
  type PaddockErrorOptions,
} from './errors.ts';
export {
  applyGroupRewards,
  combineRewards,
  scoreTurn,
  type ConstraintFunction,
  type EpisodeRewards,
  type GroupRewardFunction,
  type RewardBreakdown,
  type RewardComponent,
  type KeptFile,
  type StepResult,
  type TrajectoryRewardFunction,
  type TurnReward,
  type TurnRewardFunction,
  type VerifierResult,
} from './reward.ts';
export { episodeSeed, isRetryableRecord, planEpisodes, runEpisodes, type RunEpisodesOptions } from './run.ts';
export type {
  ExecOptions,
  ExecResult,
  ReadFileOptions,
  Sandbox,
  SandboxDiagnosis,
  SealReport,
  SandboxLabels,
  SandboxProcess,
  SandboxProvider,
} from './sandbox.ts';
export {
  RunStore,
  type PlannedEpisode,
  type RunManifest,
  type RunStoreOptions,
  type TornTail,
} from './store.ts';
export {
  RunIndex,
  type EpisodeIndexEntry,
  type EpisodePage,
  type EpisodeQuery,
  type RunIndexOptions,
} from './run-index.ts';
export {
  episodeFigures,
  formatSummary,
  formatTokens,
  formatUsd,
  isErrorEpisode,
  suiteOf,
  summariseRun,
  type EpisodeFigures,
  type RunSummary,
  type TaskSummary,
} from './summary.ts';
export {
  checkTaskPath,
  declareTaskPaths,
  taskPathsOf,
  type TaskPathCheck,
  type TaskPathKind,
  type TaskPathLister,
  type TaskPathRef,
} from './task.ts';
export type {
  BuiltinToolName,
  EnvironmentSpec,
  FileMount,
  ReferenceAction,
  SolutionSpec,
  StepHealthcheck,
  Task,
  TaskArtifact,
  TaskStep,
  TaskSteps,
  TaskLimits,
  RewardRead,
  RewardReadContext,
  RewardReader,
  VerifierIsolation,
  VerifierSpec,
} from './task.ts';
export {
  defineTool,
  formatZodIssues,
  toolSpec,
  type ImagePart,
  type JsonSchema,
  type Tool,
  type ToolContext,
  type ToolOutput,
  type ToolSpec,
} from './tool.ts';
export {
  builtinTools,
  bashTool,
  editFileTool,
  formatExecResult,
  isAgentFileFault,
  readFileTool,
  submitTool,
  writeFileTool,
} from './tools/index.ts';
export {
  KeepFiles,
  readRewardFiles,
  runIsolatedVerifier,
  runVerifier,
  verifyEpisode,
  type VerifyContext,
} from './verify.ts';
