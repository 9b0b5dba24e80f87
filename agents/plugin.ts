/**
 * The agent kinds paddock ships, as one plug-in: `oracle` (each task's reference
 * solution), `scripted:<file>` (fixed turns from a YAML/JSON file), `openai:<model>` (any
 * OpenAI-compatible chat-completions server: `OPENAI_BASE_URL`, `OPENAI_API_KEY`) and
 * `anthropic:<model>` (Anthropic's Messages API: `ANTHROPIC_API_KEY`). The local ONNX
 * policy is a plug-in of its own (`agents/onnx/plugin.ts`).
 */
import type { PaddockPlugin } from '../harness/index.ts';
import { parseModelAgentSpec } from './openai/index.ts';
import { OracleAgent } from './oracle/index.ts';
import { ScriptedAgent } from './scripted/index.ts';

export const agentsPlugin: PaddockPlugin = {
  name: 'agents',
  agents: {
    oracle: { usage: 'oracle', create: () => new OracleAgent() },
    scripted: {
      usage: 'scripted:<file>',
      needsArgument: true,
      create: (file) => ScriptedAgent.fromFile(file),
    },
    openai: {
      usage: 'openai:<model>[?options]',
      needsArgument: true,
      create: (_model, { spec, env }) => parseModelAgentSpec(spec, env),
    },
    anthropic: {
      usage: 'anthropic:<model>[?options]',
      needsArgument: true,
      create: (_model, { spec, env }) => parseModelAgentSpec(spec, env),
    },
  },
};
