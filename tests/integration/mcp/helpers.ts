/**
 * Helpers of the MCP integration tests: tasks built in code around fixture servers, and
 * a tool context.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Task, ToolContext } from '../../../harness/index.ts';
import { parseMcpConfig } from '../../../sandboxes/mcp/index.ts';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures');
export const REPO = path.resolve(import.meta.dirname, '../../..');

/** tsx's loader as an absolute URL, so that commands run from any folder (a sandbox's) find it. */
const TSX = pathToFileURL(path.join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;

/** argv running a TypeScript file with this Node and tsx. */
export function tsCommand(file: string, ...args: string[]): string[] {
  return ['node', '--import', TSX, file, ...args];
}

/** argv of the misbehaving SDK fixture server. */
export function testServer(...args: string[]): string[] {
  return tsCommand(path.join(FIXTURES, 'test-server.ts'), ...args);
}

/** argv of the hand-written fixture server. */
export function rawServer(): string[] {
  return tsCommand(path.join(FIXTURES, 'raw-server.ts'));
}

/** A task with no sandbox whose `mcp_servers` section is `section` (validated like a task file's). */
export function mcpTask(section: unknown, overrides: Partial<Task> = {}): Task {
  const parsed = parseMcpConfig(section);
  if (!parsed.success) throw new Error(`invalid mcp_servers: ${JSON.stringify(parsed.issues)}`);
  return {
    id: 'mcp-test',
    dir: FIXTURES,
    format: 'paddock',
    instruction: 'Use the tools.',
    tools: ['submit'],
    limits: { maxTurns: 20, timeoutMs: 60_000, commandTimeoutMs: 10_000 },
    metadata: {},
    extensions: { mcp_servers: parsed.data },
    ...overrides,
  };
}

export function toolContext(signal: AbortSignal = new AbortController().signal): ToolContext {
  return { signal, episodeId: 'test', turnIndex: 0 };
}

export const LABELS = { runId: 'test-run', episodeId: 'test-episode' };

/** True while process `pid` exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: gone.
    return false;
  }
}
