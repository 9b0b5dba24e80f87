/**
 * Agent specs: the strings users give to `--agent`. This is the one place that knows
 * every agent kind.
 *
 * - `oracle` — runs each task's reference solution;
 * - `scripted:<file>` — fixed turns from a YAML/JSON file;
 * - `openai:<model>[?options]` — any OpenAI-compatible chat-completions server
 *   (`OPENAI_BASE_URL`, `OPENAI_API_KEY`);
 * - `anthropic:<model>[?options]` — Anthropic's Messages API (`ANTHROPIC_API_KEY`);
 * - `onnx:<policy-dir>[?temperature=…]` — a local ONNX policy (e.g. one `paddock train` wrote).
 */
import { ERROR_CODES, PaddockError, type Agent } from '../harness/index.ts';
import { OracleAgent } from '../agents/oracle/index.ts';
import { ScriptedAgent } from '../agents/scripted/index.ts';
import { MODEL_AGENT_SPECS, parseModelAgentSpec } from '../agents/openai/index.ts';
import { createOnnxAgent } from '../agents/onnx/index.ts';

/** The agent kinds `createAgent` understands, for help texts. */
export const AGENT_SPECS = ['oracle', 'scripted:<file>', ...MODEL_AGENT_SPECS, 'onnx:<policy-dir>'] as const;

/** Creates the agent a spec string names. Rejects with CONFIG_INVALID for an unknown spec. */
export async function createAgent(spec: string): Promise<Agent> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const argument = colon < 0 ? '' : spec.slice(colon + 1);
  switch (kind) {
    case 'oracle':
      return new OracleAgent();
    case 'scripted':
      if (!argument) break;
      return ScriptedAgent.fromFile(argument);
    case 'onnx':
      if (!argument) break;
      return createOnnxAgent(spec);
    case 'openai':
    case 'anthropic':
      if (!argument) break;
      return parseModelAgentSpec(spec, process.env);
  }
  throw new PaddockError(
    ERROR_CODES.CONFIG_INVALID,
    `unknown agent "${spec}"; expected one of: ${AGENT_SPECS.join(', ')}`,
  );
}
