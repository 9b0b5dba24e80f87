/**
 * The package's public entry: the core contracts and loop, the task loaders, the
 * sandbox and agent plug-ins, and the high-level `evaluate` / `resume` functions.
 */
export * from '../harness/index.ts';
export * from '../tasks/index.ts';
export * from '../sandboxes/docker/index.ts';
export { OracleAgent } from '../agents/oracle/index.ts';
export { ScriptedAgent, ScriptSchema, type Script } from '../agents/scripted/index.ts';
export { OpenAIAgent, parseModelAgentSpec, type OpenAIAgentOptions } from '../agents/openai/index.ts';
export { AnthropicAgent, type AnthropicAgentOptions } from '../agents/anthropic/index.ts';
export { exportRun } from '../export/index.ts';
export { AGENT_SPECS, createAgent } from './agents.ts';
export {
  DEFAULT_RUNS_DIR,
  evaluate,
  newRunId,
  resume,
  type EvaluateOptions,
  type EvaluationResult,
} from './evaluate.ts';
export { renderEpisode, viewRun } from './view.ts';
export { serve, type ServeOptions } from './serve.ts';
export { resumeTrainingRun, trainFromConfig, type TrainCommandOptions } from './train.ts';
export { OnnxPolicyAgent, createOnnxAgent, loadOnnxPolicy } from '../agents/onnx/index.ts';
export { JUDGE_CACHE_DIR, RunPlugins, TASK_EXTENSIONS, loadSuite, validateSuite } from './plugins.ts';
export { McpToolProvider, mcpTaskExtension, serveTask } from '../sandboxes/mcp/index.ts';
export { BrowserToolProvider, browserTaskExtension, browserTurnReward } from '../sandboxes/browser/index.ts';
