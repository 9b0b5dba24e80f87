/**
 * Canned Anthropic Messages API answers for the scripted server: text, `tool_use` blocks
 * (several per turn), errors (429 with `retry-after`, 529 overloaded).
 */
import {
  startScriptedServer,
  type Responder,
  type ScriptedResponse,
  type ScriptedServer,
  type ScriptedServerOptions,
} from './scripted-server.ts';

export interface FakeAnthropicTurn {
  text?: string;
  toolUses?: { name: string; input: unknown; id?: string }[];
  stopReason?: string;
  usage?: { input: number; output: number; cacheRead?: number };
}

let counter = 0;

/** A Messages API body for one turn. */
export function anthropicMessage(turn: FakeAnthropicTurn): Record<string, unknown> {
  const content: Record<string, unknown>[] = [];
  if (turn.text !== undefined) content.push({ type: 'text', text: turn.text });
  for (const use of turn.toolUses ?? []) {
    content.push({ type: 'tool_use', id: use.id ?? `toolu_${++counter}`, name: use.name, input: use.input });
  }
  return {
    id: `msg_${++counter}`,
    type: 'message',
    role: 'assistant',
    model: 'fake-claude',
    content,
    stop_reason: turn.stopReason ?? ((turn.toolUses ?? []).length > 0 ? 'tool_use' : 'end_turn'),
    stop_sequence: null,
    usage: {
      input_tokens: turn.usage?.input ?? 0,
      output_tokens: turn.usage?.output ?? 0,
      ...(turn.usage?.cacheRead === undefined ? {} : { cache_read_input_tokens: turn.usage.cacheRead }),
    },
  };
}

/** A scripted 200 answer with a message. */
export function anthropicReply(turn: FakeAnthropicTurn, delayMs?: number): ScriptedResponse {
  return { json: anthropicMessage(turn), ...(delayMs === undefined ? {} : { delayMs }) };
}

/** An Anthropic-style error answer (`{type: 'error', error: {type, message}}`). */
export function anthropicError(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): ScriptedResponse {
  const type = status === 529 ? 'overloaded_error' : status === 429 ? 'rate_limit_error' : 'api_error';
  return { status, headers, json: { type: 'error', error: { type, message } } };
}

/** Starts an Anthropic-compatible scripted server; its base URL is `url` (requests go to `/v1/messages`). */
export async function startAnthropicServer(
  script: ScriptedResponse[] | Responder,
  options: Omit<ScriptedServerOptions, 'script'> = {},
): Promise<ScriptedServer & { baseUrl: string }> {
  const server = await startScriptedServer({ script, ...options });
  return Object.assign(server, { baseUrl: server.url });
}
