/**
 * The agent kinds paddock ships, as one plug-in: `oracle` (each task's reference
 * solution), `scripted:<file>` (fixed turns from a YAML/JSON file), `openai:<model>` (any
 * OpenAI-compatible chat-completions server: `OPENAI_BASE_URL`, `OPENAI_API_KEY`) and
 * `anthropic:<model>` (Anthropic's Messages API: `ANTHROPIC_API_KEY`). The local ONNX
 * policy is a plug-in of its own (`agents/onnx/plugin.ts`).
 *
 * Each kind's implementation is imported when an agent of that kind is made, not when
 * the plug-in is registered.
 */
import type { PaddockPlugin } from '../harness/index.ts';

export const agentsPlugin: PaddockPlugin = {
  name: 'agents',
  agents: {
    oracle: {
      usage: 'oracle',
      create: async () => new (await import('./oracle/index.ts')).OracleAgent(),
    },
    scripted: {
      usage: 'scripted:<file>',
      needsArgument: true,
      create: async (file) => (await import('./scripted/index.ts')).ScriptedAgent.fromFile(file),
    },
    openai: {
      usage: 'openai:<model>[?options]',
      needsArgument: true,
      create: async (_model, { spec, env }) =>
        (await import('./openai/index.ts')).parseModelAgentSpec(spec, env),
    },
    anthropic: {
      usage: 'anthropic:<model>[?options]',
      needsArgument: true,
      create: async (_model, { spec, env }) =>
        (await import('./openai/index.ts')).parseModelAgentSpec(spec, env),
    },
  },
};
