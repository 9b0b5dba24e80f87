/**
 * The MCP plug-in: the `mcp_servers:` section of task files and an MCP tool provider per
 * run, which starts each task's servers per episode (or shares them per run) and closes
 * them all when the run ends.
 */
import type { PaddockPlugin } from '../../harness/index.ts';
import { MCP_EXTENSION_KEY, McpToolProvider } from './provider.ts';
import { mcpTaskExtension } from './schema.ts';

export const mcpPlugin: PaddockPlugin = {
  name: 'mcp',
  taskSections: { [MCP_EXTENSION_KEY]: mcpTaskExtension },
  open: () => {
    const provider = new McpToolProvider();
    return { toolProviders: [provider], close: () => provider.close() };
  },
};
