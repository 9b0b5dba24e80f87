/**
 * The package's main entry (`paddock`): the core contracts and loop, the task loaders, the
 * sandbox and agent plug-ins, and the high-level `evaluate` / `resume` functions.
 *
 * Every name is listed: adding one here is an API decision. The Docker, browser, MCP and
 * ONNX plug-ins have entries of their own as well (`paddock/docker`, `paddock/browser`,
 * `paddock/mcp`, `paddock/onnx`), with their whole surface; fakes and the conformance
 * suite for plug-in authors are at `paddock/testing`.
 */

// --- Contracts (harness/) -----------------------------------------------------------

// Agents: what the loop asks for a turn, and what it gets back.
export { defineAgent } from '../harness/index.ts';
export type {
  Agent,
  AgentDefinition,
  AgentInput,
  AgentSession,
  AssistantTurn,
  Message,
  Reasoning,
  StopReason,
  TokenRecord,
  ToolCall,
  Usage,
} from '../harness/index.ts';

// Plug-ins: sandbox kinds, agent kinds and reward kinds put together by a run.
export { definePlugin, importModule, isLazyTaskSection } from '../harness/index.ts';
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
} from '../harness/index.ts';
// The built-in plug-ins (each also in its own entry where it has one: paddock/docker, …).
export { agentsPlugin } from '../agents/plugin.ts';
export { onnxPlugin } from '../agents/onnx/plugin.ts';
export { rewardsPlugin } from '../rewards/plugin.ts';
export { browserPlugin } from '../sandboxes/browser/plugin.ts';
export { dockerPlugin } from '../sandboxes/docker/plugin.ts';
export { mcpPlugin } from '../sandboxes/mcp/plugin.ts';
export { toyPlugin } from '../sandboxes/toy/plugin.ts';

// The trainer ↔ policy contract: a tokenizer, a chat template, a policy folder format.
export type {
  ChatTemplate,
  KvCacheShape,
  LoadedPolicy,
  ParsedCompletion,
  PolicyFolderContents,
  PolicyFormat,
  PolicySampling,
  Tokenizer,
} from '../harness/index.ts';

// Sandboxes and the tool providers an episode opens sessions of.
export type {
  EpisodeContext,
  ExecOptions,
  ExecResult,
  ReadFileOptions,
  Sandbox,
  SandboxDiagnosis,
  SandboxLabels,
  SandboxProcess,
  SandboxProvider,
  SealReport,
  SessionScore,
  ToolProvider,
  ToolSession,
} from '../harness/index.ts';

// Tasks as the harness sees them, whatever file they were loaded from.
export { checkTaskPath, declareTaskPaths, taskPathsOf } from '../harness/index.ts';
export type {
  BuiltinToolName,
  EnvironmentSpec,
  FileMount,
  ReferenceAction,
  SolutionSpec,
  StepHealthcheck,
  Task,
  TaskArtifact,
  TaskLimits,
  TaskPathCheck,
  TaskPathKind,
  TaskPathLister,
  TaskPathRef,
  TaskStep,
  TaskSteps,
  VerifierIsolation,
  VerifierSpec,
} from '../harness/index.ts';

// Tools: defining one, and the built-in tools over a sandbox.
export {
  bashTool,
  builtinTools,
  defineTool,
  editFileTool,
  formatExecResult,
  formatZodIssues,
  isAgentFileFault,
  readFileTool,
  submitTool,
  toolSpec,
  writeFileTool,
} from '../harness/index.ts';
export type { ImagePart, JsonSchema, Tool, ToolContext, ToolOutput, ToolSpec } from '../harness/index.ts';

// Rewards: per turn, per trajectory, per group, and how they combine.
export { applyGroupRewards, combineRewards, scoreTurn } from '../harness/index.ts';
export type {
  ConstraintFunction,
  EpisodeRewards,
  GroupRewardFunction,
  KeptFile,
  RewardBreakdown,
  RewardComponent,
  StepResult,
  TrajectoryRewardFunction,
  TurnReward,
  TurnRewardFunction,
  VerifierResult,
} from '../harness/index.ts';

// Verification: running a task's verifier and reading what it reports.
export {
  KeepFiles,
  readRewardFiles,
  runIsolatedVerifier,
  runVerifier,
  verifyEpisode,
} from '../harness/index.ts';
export type { VerifyContext } from '../harness/index.ts';

// --- Episodes, runs and the run store (harness/) --------------------------------------

export { aggregateSteps, isAgentOutcome, minRewardFailure, runEpisode } from '../harness/index.ts';
export type {
  EpisodeEvent,
  EpisodeEventListener,
  EpisodeOptions,
  EpisodeRecord,
  EpisodeStats,
  EpisodeStatus,
  LimitKind,
  RecordedEpisode,
  ToolCallProblem,
  ToolResultRecord,
  TurnRecord,
} from '../harness/index.ts';
// Images of records read back: inline, or files of the run (`images/<sha256>.<ext>`).
export { isImageFileRef, readRecordedImage, recordedImageBytes } from '../harness/index.ts';
export type { ImageFileRef, RecordImageOptions, RecordedImage } from '../harness/index.ts';
export { episodeSeed, isRetryableRecord, planEpisodes, runEpisodes } from '../harness/index.ts';
export type { RunEpisodesOptions } from '../harness/index.ts';
export {
  RunIndex,
  RunStore,
  episodeFigures,
  formatSummary,
  formatTokens,
  formatUsd,
  isErrorEpisode,
  summariseRun,
} from '../harness/index.ts';
export type {
  EpisodeFigures,
  EpisodeIndexEntry,
  EpisodePage,
  EpisodeQuery,
  PlannedEpisode,
  RunIndexOptions,
  RunManifest,
  RunStoreOptions,
  RunSummary,
  TaskSummary,
  TornTail,
} from '../harness/index.ts';

// --- Errors, cancellation and deadlines (harness/) ------------------------------------

export {
  ERROR_CODES,
  PaddockError,
  describeError,
  isPaddockError,
  raceAbort,
  settlesWithin,
  throwIfAborted,
} from '../harness/index.ts';
export type { ErrorCode, PaddockErrorOptions } from '../harness/index.ts';
export { MAX_TIMER_MS, assertTimerMs, startDeadline, withDeadline } from '../harness/index.ts';
export type { Deadline } from '../harness/index.ts';

// --- Task files (tasks/) --------------------------------------------------------------

export {
  fieldEnvName,
  formatTaskProblem,
  loadTasks,
  matchesTaskPattern,
  selectTasks,
  TaskFileSchema,
  taskJsonSchema,
  taskTags,
  validateTasks,
} from '../tasks/index.ts';
export type {
  LoadTasksOptions,
  TaskFile,
  TaskProblem,
  TaskSelection,
  TaskValidation,
} from '../tasks/index.ts';
export { DEFAULT_IMAGE, NO_TURN_LIMIT, REWARD_DIR, SOLUTION_DIR, TESTS_DIR } from '../tasks/index.ts';
// What a pytest verifier reports (its JUnit file, the outcome it stands for).
export { PYTEST_REPORT_DIR, parseJunitCounts, pytestOutcome, pytestPassed } from '../tasks/index.ts';

// --- The Docker sandbox (sandboxes/docker/; all of it at `paddock/docker`) -----------

export {
  DEFAULT_CAPABILITIES,
  DEFAULT_EXEC_TIMEOUT_MS,
  DEFAULT_MAX_OUTPUT_BYTES,
  DockerSandbox,
  DockerSandboxProvider,
  LABELS,
} from '../sandboxes/docker/index.ts';
export type { DockerSandboxProviderOptions, DockerSandboxTuning } from '../sandboxes/docker/index.ts';
export {
  DEFAULT_DOCKER_SOCKET,
  checkEngine,
  dockerClient,
  resolveEngineEndpoint,
} from '../sandboxes/docker/index.ts';
export type { EngineEndpoint, EngineInfo, EngineOptions } from '../sandboxes/docker/index.ts';
export {
  BASE_IMAGE,
  BASE_PACKAGES,
  baseImageExists,
  bootstrapBaseImage,
  findDebianMirror,
} from '../sandboxes/docker/index.ts';
export type { BootstrapOptions, BootstrapResult } from '../sandboxes/docker/index.ts';
export {
  IMAGE_MAP_ENV,
  buildTaskImage,
  effectiveImageMap,
  parseImageMap,
  resolveLocalImage,
  rewriteDockerfile,
} from '../sandboxes/docker/index.ts';
export type {
  BuildOptions,
  BuildResult,
  ImageMap,
  ResolvedImage,
  RewriteResult,
} from '../sandboxes/docker/index.ts';
export { collectGarbage, reapContainers } from '../sandboxes/docker/index.ts';
export type { GarbageReport, ReapOptions, ReapedContainer } from '../sandboxes/docker/index.ts';

// --- MCP servers and the browser as tool providers (also `paddock/mcp`, `paddock/browser`)

export { McpToolProvider, mcpTaskExtension, serveTask } from '../sandboxes/mcp/index.ts';
export { BrowserToolProvider, browserTaskExtension, browserTurnReward } from '../sandboxes/browser/index.ts';

// --- Agents (agents/; the ONNX policy also at `paddock/onnx`) -------------------------

export { OracleAgent } from '../agents/oracle/index.ts';
export { ScriptedAgent, ScriptSchema, type Script } from '../agents/scripted/index.ts';
export { OpenAIAgent, parseModelAgentSpec, type OpenAIAgentOptions } from '../agents/openai/index.ts';
export { AnthropicAgent, type AnthropicAgentOptions } from '../agents/anthropic/index.ts';
export { OnnxPolicyAgent, createOnnxAgent, loadOnnxPolicy } from '../agents/onnx/index.ts';

// --- What the CLI does, as functions (cli/) --------------------------------------------

export {
  DEFAULT_RUNS_DIR,
  evaluate,
  newRunId,
  resume,
  storedRunPlugins,
  type EvaluateOptions,
  type ResumeOptions,
  type EvaluationResult,
} from './evaluate.ts';
// The composition root: the built-in plug-ins and yours put together (`createPaddock`).
export {
  BUILTIN_PLUGINS,
  DEFAULT_SANDBOX_KIND,
  JUDGE_CACHE_DIR,
  Paddock,
  createPaddock,
  loadPluginModules,
  type OpenedRun,
  type PaddockOptions,
  type SuiteOptions,
} from './paddock.ts';
export { renderEpisode, viewRun, viewRunJson, type ViewOptions } from './view.ts';
// The web viewer (`paddock view`): a loopback server over a folder of runs.
export { serveViewer, type RunningViewer, type ViewerOptions } from '../viewer/index.ts';
export { serve, type ServeOptions } from './serve.ts';
export { resumeTrainingRun, trainFromConfig, type TrainCommandOptions } from './train.ts';
export { exportRun, type ExportImageMode, type ExportOptions } from '../export/index.ts';
