/**
 * MCP servers as tools: the `mcp_servers` task section (`mcpTaskExtension`), the tool
 * provider that runs the servers of each episode (`McpToolProvider`), and `serveTask`,
 * which serves a live episode of any task to an external MCP client.
 */
export {
  McpToolProvider,
  McpSession,
  MCP_EXTENSION_KEY,
  type McpTool,
  type McpToolProviderOptions,
} from './provider.ts';
export {
  mcpTaskExtension,
  parseMcpConfig,
  isMcpConfig,
  namespacedName,
  splitCommand,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_MAX_OUTPUT_BYTES,
  type McpConfig,
  type McpServerSpec,
  type McpScoreSpec,
  type McpExpectation,
  type McpServerLocation,
} from './schema.ts';
export { toToolOutput, capText, type McpToolOutput, type ResultConversionOptions } from './results.ts';
export { queryJsonPath, JsonPathError } from './jsonpath.ts';
export {
  checkExpectations,
  type McpCallResult,
  type McpScorerContext,
  type ExpectationReport,
} from './score.ts';
export {
  McpServerConnection,
  type CallOutcome,
  type McpToolInfo,
  type TransportHandle,
} from './connection.ts';
export { ProcessStdioTransport, type ProcessStdioTransportOptions } from './process-transport.ts';
export { resolveHostCommand, type SandboxSpawner } from './launch.ts';
export { serveTask, ExternalAgent, type ServeTaskOptions, type ServedTask } from './serve.ts';

/** The plug-in that registers this folder with `createPaddock`. */
export { mcpPlugin } from './plugin.ts';
