/**
 * A loopback "model server" with a real (toy) tokenizer and a Qwen3-style chat template,
 * for token-exact tests of vLLM- and SGLang-shaped servers (`vllm.ts`, `sglang.ts`).
 *
 * Tokenizer: one id per character (its code point), and the special tokens of Qwen's
 * vocabulary (`<|im_start|>`, `<|im_end|>`, `<think>`, `</think>`, `<tool_call>`,
 * `</tool_call>`) as single ids from 100 000 up. Template: Qwen3's shape
 * (`<|im_start|>role\n…<|im_end|>\n`, tool results as `<tool_response>` user turns,
 * reasoning as `<think>\n…\n</think>\n\n`, calls as Hermes `<tool_call>` JSON); with
 * `stripReasoning` it drops earlier turns' reasoning the way Qwen3's template does for
 * turns before the last user query — the drift token-in/token-out exists to avoid.
 *
 * The "model" is a script: the n-th assistant turn of a conversation samples the text of
 * `turns[n]`, tokenised, followed by `<|im_end|>`; logprobs are deterministic.
 */
import {
  startScriptedServer,
  type RecordedRequest,
  type ScriptedResponse,
  type ScriptedServer,
} from './scripted-server.ts';

export const SPECIAL = {
  '<|im_start|>': 100_000,
  '<|im_end|>': 100_001,
  '<think>': 100_002,
  '</think>': 100_003,
  '<tool_call>': 100_004,
  '</tool_call>': 100_005,
} as const;
export const IM_END = SPECIAL['<|im_end|>'];
const BY_ID = new Map<number, string>(Object.entries(SPECIAL).map(([text, id]) => [id, text]));
const SPECIAL_RE = /(<\|im_start\|>|<\|im_end\|>|<think>|<\/think>|<tool_call>|<\/tool_call>)/;

/** Encodes text: special tokens as their ids, every other character as its code point. */
export function encode(text: string): number[] {
  const ids: number[] = [];
  for (const part of text.split(SPECIAL_RE)) {
    const special = SPECIAL[part as keyof typeof SPECIAL];
    if (special !== undefined) ids.push(special);
    else for (const char of part) ids.push(char.codePointAt(0)!);
  }
  return ids;
}

/** Decodes ids; `skipSpecial` leaves out `<|im_start|>` / `<|im_end|>` (as servers do by default). */
export function decode(ids: readonly number[], skipSpecial = false): string {
  return ids
    .map((id) => {
      const special = BY_ID.get(id);
      if (special === undefined) return String.fromCodePoint(id);
      return skipSpecial && (id === IM_END || id === SPECIAL['<|im_start|>']) ? '' : special;
    })
    .join('');
}

/** One sampled assistant turn of the script. */
export interface ModelTurn {
  reasoning?: string;
  content?: string;
  toolCalls?: { name: string; arguments: Record<string, unknown> }[];
  /** Cut the output here (finish_reason `length`). */
  truncate?: boolean;
}

/** The text a turn samples, in the template's own format (so that re-rendering it is exact). */
export function turnText(turn: ModelTurn): string {
  return (
    (turn.reasoning === undefined ? '' : `<think>\n${turn.reasoning}\n</think>\n\n`) +
    (turn.content ?? '') +
    (turn.toolCalls ?? [])
      .map(
        (call) =>
          `<tool_call>\n${JSON.stringify({ name: call.name, arguments: call.arguments })}\n</tool_call>`,
      )
      .join('')
  );
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire messages are read loosely, as servers do
type WireMessage = Record<string, any>;

/** Renders a conversation with the Qwen3-style template. */
export function renderChat(
  messages: readonly WireMessage[],
  options: { stripReasoning: boolean; addGenerationPrompt: boolean; reasoningKey: string },
): string {
  let out = '';
  for (const message of messages) {
    if (message.role === 'tool') {
      out += `<|im_start|>user\n<tool_response>\n${String(message.content)}\n</tool_response><|im_end|>\n`;
      continue;
    }
    if (message.role === 'assistant') {
      const reasoning = message[options.reasoningKey] as string | undefined;
      const calls = ((message.tool_calls ?? []) as { function: { name: string; arguments: string } }[]).map(
        (call) => ({
          name: call.function.name,
          arguments: JSON.parse(call.function.arguments) as Record<string, unknown>,
        }),
      );
      const text = turnText({
        ...(reasoning !== undefined && reasoning !== null && !options.stripReasoning ? { reasoning } : {}),
        content: (message.content as string | null) ?? '',
        toolCalls: calls,
      });
      out += `<|im_start|>assistant\n${text}<|im_end|>\n`;
      continue;
    }
    const content = Array.isArray(message.content)
      ? (message.content as { text?: string }[]).map((part) => part.text ?? '').join('')
      : String(message.content);
    out += `<|im_start|>${String(message.role)}\n${content}<|im_end|>\n`;
  }
  return options.addGenerationPrompt ? `${out}<|im_start|>assistant\n` : out;
}

/** Splits sampled text the way the servers' reasoning (`qwen3`) and tool (`hermes`) parsers do. */
export function parseOutput(text: string): {
  reasoning: string | null;
  content: string | null;
  toolCalls: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
} {
  let rest = text;
  let reasoning: string | null = null;
  const close = rest.indexOf('</think>');
  if (close >= 0) {
    reasoning = rest
      .slice(0, close)
      .replace(/^<think>\n?/, '')
      .replace(/\n$/, '');
    rest = rest.slice(close + '</think>'.length).replace(/^\n\n/, '');
  }
  let n = 0;
  const toolCalls: { id: string; type: 'function'; function: { name: string; arguments: string } }[] = [];
  // The hermes parser's pattern: the call's JSON between the tags, whitespace stripped.
  rest = rest.replace(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g, (_m, json: string) => {
    const call = JSON.parse(json) as { name: string; arguments: unknown };
    toolCalls.push({
      id: `call_${++n}`,
      type: 'function',
      function: { name: call.name, arguments: JSON.stringify(call.arguments) },
    });
    return '';
  });
  return { reasoning, content: rest === '' ? null : rest, toolCalls };
}

/** A deterministic logprob for the i-th sampled token. */
export const logprobAt = (i: number): number => -((i % 7) + 1) / 100;

export interface TemplateServerOptions {
  /** The script: the n-th assistant turn of each conversation. */
  turns: ModelTurn[];
  /** Drop earlier turns' reasoning when rendering history (Qwen3-style). @default false */
  stripReasoning?: boolean;
  /** Context window, in tokens. @default 32_768 */
  maxModelLen?: number;
}

/** What a server built on the template server may change besides the script. */
export interface TemplateServerExtras {
  /** Another model: its own rendering and sampling instead of the toy tokenizer's and the script's. */
  engine?: Pick<Engine, 'renderIds' | 'sample'>;
  /** Answers a request before the flavour does (administrative endpoints, checks); undefined: the flavour's turn. */
  routes?: (request: RecordedRequest) => ScriptedResponse | undefined;
  /** Delay of every model call's answer (chat and completions), in ms. @default 0 */
  latencyMs?: number;
  /** The port to listen on. @default a free one */
  port?: number;
}

export interface TemplateServer extends ScriptedServer {
  baseUrl: string;
  /** Fields the server ignored (a real vLLM logs them as a warning), per request index. */
  ignoredFields: Map<number, string[]>;
}

/** How a flavour answers; the engine (template, tokenizer, script) is shared. */
export interface Flavour {
  /** Validates and answers one request; `engine` renders and samples. */
  handle(request: RecordedRequest, engine: Engine): ScriptedResponse;
}

export interface Engine {
  options: Required<TemplateServerOptions>;
  ignored(request: RecordedRequest, known: ReadonlySet<string>): void;
  /** Prompt ids of chat messages, rendered by the template. */
  renderIds(messages: WireMessage[], reasoningKey: string, addGenerationPrompt?: boolean): number[];
  /** What the model samples after `promptIds`: ids (ending with `<|im_end|>` unless cut) and logprobs. */
  sample(promptIds: readonly number[]): {
    ids: number[];
    logprobs: number[];
    finish: 'stop' | 'length';
    text: string;
  };
}

/** An OpenAI-style error body as vLLM and SGLang send it. */
export function errorBody(status: number, message: string, type = 'BadRequestError'): ScriptedResponse {
  return { status, json: { object: 'error', message, type, param: null, code: status } };
}

export async function startTemplateServer(
  options: TemplateServerOptions & TemplateServerExtras,
  flavour: Flavour,
): Promise<TemplateServer> {
  const full: Required<TemplateServerOptions> = {
    turns: options.turns,
    stripReasoning: options.stripReasoning ?? false,
    maxModelLen: options.maxModelLen ?? 32_768,
  };
  const ignoredFields = new Map<number, string[]>();
  const engine: Engine = {
    options: full,
    ignored(request, known) {
      const extra = Object.keys(request.body ?? {}).filter((key) => !known.has(key));
      if (extra.length > 0) ignoredFields.set(request.index, extra);
    },
    renderIds(messages, reasoningKey, addGenerationPrompt = true) {
      return encode(
        renderChat(messages, { stripReasoning: full.stripReasoning, addGenerationPrompt, reasoningKey }),
      );
    },
    sample(promptIds) {
      const prompt = decode(promptIds);
      const n = prompt.split('<|im_start|>assistant\n').length - 2;
      const turn = full.turns[Math.max(0, n)] ?? { content: 'script exhausted' };
      let ids = encode(turnText(turn));
      const finish = turn.truncate ? 'length' : 'stop';
      if (turn.truncate) ids = ids.slice(0, Math.max(1, Math.floor(ids.length / 2)));
      else ids.push(IM_END);
      return { ids, logprobs: ids.map((_, i) => logprobAt(i)), finish, text: decode(ids, true) };
    },
  };
  if (options.engine) Object.assign(engine, options.engine);
  const latency = options.latencyMs ?? 0;
  const server = await startScriptedServer({
    script: (request) => {
      try {
        const routed = options.routes?.(request);
        if (routed) return routed;
        const answer = flavour.handle(request, engine);
        const modelCall = request.path.endsWith('/completions');
        return modelCall && latency > 0 && !('hang' in answer)
          ? { ...answer, delayMs: (answer.delayMs ?? 0) + latency }
          : answer;
      } catch (error) {
        // A server answers its own failure with a 500, never a hung request.
        return errorBody(500, `internal error: ${String(error)}`, 'InternalServerError');
      }
    },
    ...(options.port === undefined ? {} : { port: options.port }),
  });
  return Object.assign(server, { baseUrl: `${server.url}/v1`, ignoredFields });
}
