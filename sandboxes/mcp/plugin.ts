/**
 * The MCP plug-in: the `mcp_servers:` section of task files and an MCP tool provider per
 * run, which starts each task's servers per episode (or shares them per run) and closes
 * them all when the run ends.
 *
 * Registering it loads nothing of MCP: the section's schema is imported when task files
 * are first read, and the provider (@modelcontextprotocol/sdk) when the first episode of
 * a task with an `mcp_servers:` section opens its tools — a run without MCP tasks never
 * loads it.
 */
import type { PaddockPlugin, ToolProvider } from '../../harness/index.ts';
import type { McpToolProvider } from './provider.ts';

/** The task-file section, as `McpToolProvider` reads it (`MCP_EXTENSION_KEY`). */
const SECTION = 'mcp_servers';

/** A tool provider that makes the real `McpToolProvider` for the first task that has MCP servers. */
function lazyMcpProvider(): ToolProvider & { close(): Promise<void> } {
  let provider: Promise<McpToolProvider> | undefined;
  let closed = false;
  const real = (): Promise<McpToolProvider> =>
    (provider ??= import('./provider.ts').then(async ({ McpToolProvider }) => {
      const made = new McpToolProvider();
      // Closed before it was made: the real one refuses to open, as it would have.
      if (closed) await made.close();
      return made;
    }));
  return {
    name: SECTION,
    open: async (task, context) => {
      if (task.extensions[SECTION] === undefined) return undefined;
      return (await real()).open(task, context);
    },
    close: async () => {
      closed = true;
      if (provider === undefined) return;
      await (await provider.catch(() => undefined))?.close();
    },
  };
}

export const mcpPlugin: PaddockPlugin = {
  name: 'mcp',
  taskSections: {
    [SECTION]: { load: async () => (await import('./schema.ts')).mcpTaskExtension },
  },
  open: () => {
    const provider = lazyMcpProvider();
    return { toolProviders: [provider], close: () => provider.close() };
  },
};
