/**
 * Token-in/token-out and drift detection for the OpenAI-compatible agent.
 *
 * Each episode's exact token sequence so far (the last turn's prompt ids followed by its
 * completion ids) is kept by the agent's session of that episode. With it:
 *
 * - drift is detected on every token-exact turn: the server's new prompt ids are compared
 *   with that sequence, and the first index where they differ is recorded (a chat
 *   template that re-renders history differently, e.g. one that strips earlier
 *   reasoning, shows here);
 * - in token-in/token-out mode the agent builds the next prompt itself: the exact
 *   sequence, followed by the tokens the chat template puts after the last assistant
 *   message (the rest of its turn end, the tool results, the generation prompt). Those
 *   are cut from the server's own rendering of the whole conversation (`POST /tokenize`
 *   with `messages`, served by vLLM and SGLang) after the last assistant message's end
 *   token, found by counting end tokens: rendering may change a message's content, never
 *   the number of messages. The prompt then matches the sampled tokens by construction.
 */
import type { Message, ToolCall } from '../../harness/index.ts';

/** The exact token sequence of an episode after one turn. */
export interface TokenHistory {
  /** Prompt ids followed by completion ids of the last token-exact turn. */
  ids: number[];
  /** Index in the conversation of that turn's assistant message. */
  assistantIndex: number;
  /** The assistant message as the agent returned it, to recognise it in the next input. */
  text: string | null;
  toolCallIds: string[];
}

/**
 * The token history of one episode, kept by the agent's session. A conversation that does
 * not continue the recorded turn (edited, or another one) simply has none.
 */
export class EpisodeTokens {
  private last: TokenHistory | undefined;

  /** The history that `messages` continues, if any. */
  get(messages: readonly Message[]): TokenHistory | undefined {
    const history = this.last;
    if (!history) return undefined;
    const assistant = messages[history.assistantIndex];
    if (
      assistant?.role !== 'assistant' ||
      assistant.content !== history.text ||
      !sameIds(assistant.toolCalls ?? [], history.toolCallIds)
    ) {
      return undefined;
    }
    return history;
  }

  /** Records the sequence after the turn answering `messages` (its assistant message comes next). */
  set(
    messages: readonly Message[],
    ids: number[],
    turn: { text: string | null; toolCalls: readonly ToolCall[] },
  ): void {
    this.last = {
      ids,
      assistantIndex: messages.length,
      text: turn.text,
      toolCallIds: turn.toolCalls.map((call) => call.id),
    };
  }

  /** Forgets the history (e.g. after a turn without token data). */
  forget(): void {
    this.last = undefined;
  }
}

function sameIds(calls: readonly ToolCall[], ids: readonly string[]): boolean {
  // The loop fills in ids the backend left empty; those cannot be compared.
  return calls.length === ids.length && calls.every((call, i) => ids[i] === '' || call.id === ids[i]);
}

/**
 * The first index where `prompt` stops continuing `previous` exactly: `undefined` when
 * `previous` is a prefix of `prompt`, else the index of the first difference (or
 * `prompt.length` when the prompt is shorter).
 */
export function driftIndex(previous: readonly number[], prompt: readonly number[]): number | undefined {
  const n = Math.min(previous.length, prompt.length);
  for (let i = 0; i < n; i++) if (previous[i] !== prompt[i]) return i;
  return prompt.length < previous.length ? prompt.length : undefined;
}

/**
 * The next prompt in token-in/token-out mode: `history` followed by the part of
 * `rendered` (the server's rendering of the whole conversation, generation prompt
 * included) after the end token of the last assistant message. The end token is the last
 * completion id (e.g. `<|im_end|>`); the last assistant message's one is the k-th in
 * `rendered`, k being how many `history` holds. `undefined` when that cannot be found
 * (the completion did not end with an end token, or the rendering has fewer of them).
 */
export function spliceObservation(
  history: readonly number[],
  rendered: readonly number[],
): number[] | undefined {
  const end = history[history.length - 1];
  if (end === undefined) return undefined;
  let count = 0;
  for (const id of history) if (id === end) count++;
  let seen = 0;
  for (let i = 0; i < rendered.length; i++) {
    if (rendered[i] === end && ++seen === count) {
      const tail = rendered.slice(i + 1);
      return tail.length > 0 ? [...history, ...tail] : undefined;
    }
  }
  return undefined;
}

/** A completion's text split the way Hermes-style templates (Qwen2.5/Qwen3…) write it. */
export interface ParsedCompletion {
  reasoning?: string;
  content: string | null;
  toolCalls: ToolCall[];
}

/**
 * Splits raw completion text (the completions endpoint parses nothing) into reasoning
 * (`<think>…</think>`, the opening tag optional since Qwen3's template may put it in the
 * prompt), tool calls (`<tool_call>{"name": …, "arguments": {…}}</tool_call>`, the format
 * of vLLM's `hermes` tool parser and SGLang's `qwen25`) and the remaining content. A call
 * whose JSON does not parse is kept with its raw text as arguments under the name
 * `invalid_tool_call`, so that the loop reports it to the model as an unknown tool.
 */
export function parseHermesCompletion(text: string): ParsedCompletion {
  let rest = text;
  let reasoning: string | undefined;
  const close = rest.indexOf('</think>');
  if (close >= 0) {
    reasoning = rest
      .slice(0, close)
      .replace(/^\s*<think>/, '')
      .trim();
    rest = rest.slice(close + '</think>'.length);
  }
  const toolCalls: ToolCall[] = [];
  rest = rest.replace(/<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g, (_match, body: string) => {
    const raw = body.trim();
    let name = 'invalid_tool_call';
    let args = raw;
    try {
      const parsed = JSON.parse(raw) as { name?: unknown; arguments?: unknown };
      if (typeof parsed.name === 'string') {
        name = parsed.name;
        args =
          typeof parsed.arguments === 'string' ? parsed.arguments : JSON.stringify(parsed.arguments ?? {});
      }
    } catch {
      // Invalid JSON is the model's mistake: kept as it came, reported by the loop.
    }
    toolCalls.push({ id: '', name, arguments: args });
    return '';
  });
  const content = rest.trim();
  return {
    ...(reasoning === undefined ? {} : { reasoning }),
    content: content === '' ? null : content,
    toolCalls,
  };
}
