/**
 * Canned OpenAI chat-completions answers for the scripted server: tool calls (several per
 * turn), malformed arguments, refusals, empty turns, errors with `retry-after`, and
 * vLLM-style token-exact turns (`prompt_token_ids`, `token_ids`, logprobs with
 * `token_id:N` tokens).
 */
import {
  startScriptedServer,
  type Responder,
  type ScriptedResponse,
  type ScriptedServer,
  type ScriptedServerOptions,
} from './scripted-server.ts';

export interface FakeToolCall {
  name: string;
  /** An object is sent as JSON text; a string as is (e.g. invalid JSON). */
  arguments: string | Record<string, unknown>;
  id?: string;
}

/** Token-exact data of a turn, sent the way vLLM sends it. */
export interface FakeTokens {
  promptIds: number[];
  completionIds: number[];
  logprobs: number[];
  /** Where the prompt ids go: the response (vLLM) or the choice. @default 'response' */
  promptIdsOn?: 'response' | 'choice';
  /** Leave out `token_ids` so that ids come only from `token_id:N` logprob tokens. @default false */
  idsOnlyInLogprobs?: boolean;
}

export interface FakeTurn {
  text?: string | null;
  toolCalls?: FakeToolCall[];
  refusal?: string;
  finishReason?: string;
  usage?: { prompt: number; completion: number };
  tokens?: FakeTokens;
}

let counter = 0;

/** A chat-completions body for one turn. */
export function chatCompletion(turn: FakeTurn): Record<string, unknown> {
  const calls = turn.toolCalls ?? [];
  const message: Record<string, unknown> = { role: 'assistant', content: turn.text ?? null };
  if (turn.refusal !== undefined) message.refusal = turn.refusal;
  if (calls.length > 0) {
    message.tool_calls = calls.map((call, index) => ({
      id: call.id ?? `call_${++counter}_${index}`,
      type: 'function',
      function: {
        name: call.name,
        arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
      },
    }));
  }
  const choice: Record<string, unknown> = {
    index: 0,
    message,
    finish_reason: turn.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop'),
  };
  const body: Record<string, unknown> = {
    id: `chatcmpl-${++counter}`,
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'fake-model',
    choices: [choice],
  };
  if (turn.usage) {
    body.usage = {
      prompt_tokens: turn.usage.prompt,
      completion_tokens: turn.usage.completion,
      total_tokens: turn.usage.prompt + turn.usage.completion,
    };
  }
  if (turn.tokens) {
    const t = turn.tokens;
    choice.logprobs = {
      content: t.completionIds.map((id, index) => ({
        token: `token_id:${id}`,
        logprob: t.logprobs[index],
        bytes: null,
        top_logprobs: [],
      })),
    };
    if (!t.idsOnlyInLogprobs) choice.token_ids = t.completionIds;
    if (t.promptIdsOn === 'choice') choice.prompt_token_ids = t.promptIds;
    else body.prompt_token_ids = t.promptIds;
  }
  return body;
}

/** A scripted 200 answer with a chat completion. */
export function reply(turn: FakeTurn, delayMs?: number): ScriptedResponse {
  return { json: chatCompletion(turn), ...(delayMs === undefined ? {} : { delayMs }) };
}

/** An OpenAI-style error answer. */
export function errorReply(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): ScriptedResponse {
  return { status, headers, json: { error: { message, type: 'error', code: status } } };
}

/** Starts an OpenAI-compatible scripted server; its API base URL is `url + '/v1'`. */
export async function startOpenAIServer(
  script: ScriptedResponse[] | Responder,
  options: Omit<ScriptedServerOptions, 'script'> = {},
): Promise<ScriptedServer & { baseUrl: string }> {
  const server = await startScriptedServer({ script, ...options });
  return Object.assign(server, { baseUrl: `${server.url}/v1` });
}
