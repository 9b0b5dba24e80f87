/**
 * A pretrained model's own chat template: the harness's ChatTemplate contract over the
 * Jinja `chat_template` of its tokenizer folder (rendered with `@huggingface/jinja`, the
 * engine of transformers.js), and the tool-call syntax of the model's family.
 *
 * Rendering is what `transformers`' `apply_chat_template(messages, tools=…,
 * add_generation_prompt=…, tokenize=True)` does: the template is rendered to text with
 * `messages`, `tools`, `add_generation_prompt`, the named special tokens (`bos_token`,
 * `eos_token`, `pad_token`, `unk_token`) and the extra variables (`enable_thinking`…), and
 * the text is encoded with `add_special_tokens=False` (every added token's spelling in it
 * becomes its id; no second BOS). paddock messages become the template's dicts:
 * `{role, content}`; an assistant's `tool_calls: [{id, type: 'function', function: {name,
 * arguments}}]` (arguments parsed to an object, as `transformers` expects; the raw text
 * when it is not JSON) and `reasoning_content`; a tool result's `tool_call_id` and `name`.
 * Tools become `{type: 'function', function: {name, description, parameters}}`.
 *
 * One difference from `transformers`, on purpose: a conversation with assistant messages
 * is encoded piecewise — the text before each assistant message, the message (what the
 * model writes, through its end token), and so on — as a rollout sees it (a prompt
 * encoded, then the sampled ids). Where a piece boundary is not a token boundary of the
 * whole text (an assistant text starting with a newline right after the header's), the
 * ids differ from encoding the whole text; a prompt without assistant messages is always
 * encoded whole.
 *
 * Injection: like `transformers`, the rendered text is encoded with its special tokens,
 * so a tool result that contains `<|im_end|>` becomes that token.
 *
 * Completions are parsed in one of three tool-call formats (detected from the template, or
 * configured):
 * - `hermes` (Qwen2/2.5/3, Hermes): `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, repeated;
 * - `llama3-json` (Llama 3.1–3.3): `{"name": …, "parameters": {…}}` after `<|python_tag|>` or
 *   as the whole reply, several separated by `;`;
 * - `mistral`: `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]`, or the newer
 *   `[TOOL_CALLS]name[ARGS]{…}`.
 * Reasoning (`<think>…</think>`, Qwen3 and R1 style) is read when the template mentions
 * `<think>`. A call that cannot be read is still a call — the loop answers it with an
 * error observation — and its reason is in `problems`: with a readable name its arguments
 * are the raw text (the loop says they are not valid JSON); without one its name is a
 * short instruction (`(unreadable <tool_call>: …)`), which the loop's "Unknown tool"
 * answer shows to the model. Parsing never throws.
 */
import { Template } from '@huggingface/jinja';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  type ChatTemplate,
  type Message,
  type ParsedCompletion,
  type ToolCall,
  type ToolSpec,
} from '../../harness/index.ts';
import type { HfTokenizer } from './hf-tokenizer.ts';

/** The tool-call syntaxes this reads. */
export type ToolCallFormat = 'hermes' | 'llama3-json' | 'mistral';

export const TOOL_CALL_FORMATS: readonly ToolCallFormat[] = ['hermes', 'llama3-json', 'mistral'];

const HERMES_OPEN = '<tool_call>';
const HERMES_CLOSE = '</tool_call>';
const PYTHON_TAG = '<|python_tag|>';
const MISTRAL_CALLS = '[TOOL_CALLS]';
const MISTRAL_ARGS = '[ARGS]';
const MISTRAL_CALL_ID = '[CALL_ID]';
const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';

/** Special tokens that belong to a completion's syntax: kept when a completion's ids are decoded. */
const MARKERS = [
  HERMES_OPEN,
  HERMES_CLOSE,
  PYTHON_TAG,
  MISTRAL_CALLS,
  MISTRAL_ARGS,
  MISTRAL_CALL_ID,
  THINK_OPEN,
  THINK_CLOSE,
];

/**
 * The tool-call format a template writes, from its source: `<tool_call>` → hermes,
 * `[TOOL_CALLS]` → mistral, `<|python_tag|>` or Llama 3 headers → llama3-json; null when
 * none of them appears.
 */
export function detectToolCallFormat(template: string): ToolCallFormat | null {
  if (template.includes(HERMES_OPEN)) return 'hermes';
  if (template.includes(MISTRAL_CALLS)) return 'mistral';
  if (template.includes(PYTHON_TAG) || template.includes('<|start_header_id|>')) return 'llama3-json';
  return null;
}

export interface HfChatTemplateOptions {
  /** The Jinja source. @default the tokenizer's chat template */
  template?: string;
  /** @default detected from the template (`detectToolCallFormat`), else `hermes` */
  toolCallFormat?: ToolCallFormat;
  /** Read `<think>…</think>` reasoning from completions. @default the template mentions `<think>` */
  reasoning?: boolean;
  /** The template's `enable_thinking` (Qwen3): passed only when set. */
  enableThinking?: boolean;
  /** More template variables (`reasoning_effort`, `documents`…); they win over the built-in ones. */
  variables?: Record<string, unknown>;
  /**
   * The token that closes an assistant message (`<|im_end|>`, `<|eot_id|>`).
   * @default the first special token the template writes after an assistant message's text
   */
  endToken?: string;
}

/** A completion read back: the contract's text, calls and problems, with the reasoning. */
export interface HfParsedCompletion extends ParsedCompletion {
  /** The `<think>` text, without its markers and surrounding newlines; null when none. */
  reasoning: string | null;
}

export interface RenderTextOptions {
  /** Append the template's generation prompt. @default false */
  addGenerationPrompt?: boolean;
}

/** A message as chat templates take it (OpenAI's chat shape). */
export type TemplateMessage = Record<string, unknown>;

const PROBE_USER = 'paddock probe question';
const PROBE_REPLY = 'paddock probe answer';

/**
 * A Hugging Face chat template over an `HfTokenizer`: the harness's ChatTemplate contract.
 * See the module comment.
 */
export class HfChatTemplate implements ChatTemplate {
  /** `hf:<tool-call format>`. */
  readonly name: string;
  readonly toolCallFormat: ToolCallFormat;
  /** Whether completions are read for `<think>` reasoning. */
  readonly reasoning: boolean;
  /** The ids the template appends for `add_generation_prompt` (`<|im_start|>assistant\n`). */
  readonly generationPrompt: readonly number[];
  /** The id that closes an assistant message. */
  readonly end: number;
  /** The spelling of `end`. */
  readonly endToken: string;
  /** Ids that end a turn when sampled: `end` and the tokenizer's EOS ids. */
  readonly stopIds: ReadonlySet<number>;
  /** The template's Jinja source. */
  readonly source: string;
  private readonly template: Template;
  private readonly generationText: string;
  /** The lengths of the generation prompt's text at its token boundaries, longest first. */
  private readonly generationCuts: readonly number[];
  private readonly markerIds: ReadonlySet<number>;
  /** Where the template comes from, for messages. */
  private readonly origin: string;
  private readonly variables: Record<string, unknown>;

  /** @throws PaddockError CONFIG_INVALID when there is no template or it cannot render a conversation. */
  constructor(
    readonly tokenizer: HfTokenizer,
    readonly options: HfChatTemplateOptions = {},
  ) {
    const origin = options.template === undefined ? tokenizer.chatTemplateOrigin : 'the given chat template';
    this.origin = origin;
    const source = options.template ?? tokenizer.chatTemplate;
    if (source === null || source.trim() === '') {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${tokenizer.chatTemplateOrigin}: no chat template`,
        {
          details: { file: tokenizer.source, field: 'chat_template' },
        },
      );
    }
    this.source = source;
    try {
      this.template = new Template(source);
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${origin}: invalid Jinja: ${describeError(error)}`,
        {
          cause: error,
          details: { file: tokenizer.source, field: 'chat_template' },
        },
      );
    }
    this.toolCallFormat = options.toolCallFormat ?? detectToolCallFormat(source) ?? 'hermes';
    this.name = `hf:${this.toolCallFormat}`;
    this.reasoning = options.reasoning ?? source.includes(THINK_OPEN);
    const special = tokenizer.specialTokens;
    // transformers passes the special tokens the tokenizer has (a missing one stays undefined).
    const named = {
      bos_token: special.bos,
      eos_token: special.eos,
      pad_token: special.pad,
      unk_token: special.unk,
    };
    this.variables = {
      ...Object.fromEntries(Object.entries(named).filter(([, value]) => value !== null)),
      ...(options.enableThinking === undefined ? {} : { enable_thinking: options.enableThinking }),
      ...options.variables,
    };

    // The generation prompt: what add_generation_prompt appends to a conversation.
    const probe: Message[] = [{ role: 'user', content: PROBE_USER }];
    const without = this.renderText(probe, []);
    const withPrompt = this.renderText(probe, [], { addGenerationPrompt: true });
    if (!withPrompt.startsWith(without)) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${origin}: add_generation_prompt changes the conversation before it, not only its end`,
        { details: { file: tokenizer.source, field: 'chat_template' } },
      );
    }
    this.generationText = withPrompt.slice(without.length);
    this.generationPrompt = Object.freeze(tokenizer.encodeWithSpecials(this.generationText));
    const cuts = this.generationPrompt.map(
      (_, k) => tokenizer.decodeWithSpecials(this.generationPrompt.slice(0, k + 1)).length,
    );
    this.generationCuts = Object.freeze(
      cuts.at(-1) === this.generationText.length ? [...cuts].reverse() : [this.generationText.length],
    );

    // The end token: the option, else the first special token after an assistant message's text.
    let endToken = options.endToken;
    if (endToken === undefined) {
      const rendered = this.renderText([...probe, { role: 'assistant', content: PROBE_REPLY }], []);
      const after = rendered.slice(rendered.lastIndexOf(PROBE_REPLY) + PROBE_REPLY.length);
      let best = -1;
      for (const token of tokenizer.addedTokens) {
        const at = after.indexOf(token);
        if (at >= 0 && tokenizer.isSpecial(tokenizer.specialId(token)) && (best < 0 || at < best)) {
          best = at;
          endToken = token;
        }
      }
      endToken ??= special.eos ?? undefined;
    }
    if (endToken === undefined || !tokenizer.hasAddedToken(endToken)) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${origin}: cannot tell which token ends an assistant message${endToken === undefined ? '' : ` (${endToken} is not an added token)`}; set endToken`,
        { details: { file: tokenizer.source, field: 'chat_template' } },
      );
    }
    this.endToken = endToken;
    this.end = tokenizer.specialId(endToken);
    this.stopIds = new Set([this.end, ...tokenizer.eosIds]);
    this.markerIds = new Set(
      MARKERS.filter((marker) => tokenizer.hasAddedToken(marker)).map((marker) =>
        tokenizer.specialId(marker),
      ),
    );
  }

  /**
   * How much of the generation prompt's text stands at `at` in a rendered conversation, cut
   * at one of its token boundaries: all of it, or less where the template renders an
   * earlier assistant message with another header (Qwen3 without thinking drops the empty
   * `<think></think>` its generation prompt has).
   */
  private generationPromptIn(text: string, at: number): number {
    return this.generationCuts.find((cut) => text.startsWith(this.generationText.slice(0, cut), at)) ?? 0;
  }

  /** The messages as the template takes them (see the module comment). */
  templateMessages(messages: readonly Message[]): TemplateMessage[] {
    const callId = this.toolCallFormat === 'mistral' ? mistralCallId : (id: string) => id;
    return messages.map((message): TemplateMessage => {
      switch (message.role) {
        case 'system':
        case 'user':
          return { role: message.role, content: message.content };
        case 'tool':
          return {
            role: 'tool',
            content: message.content,
            tool_call_id: callId(message.toolCallId),
            name: message.name,
          };
        case 'assistant': {
          const calls = message.toolCalls ?? [];
          return {
            role: 'assistant',
            content: message.content ?? '',
            ...(calls.length > 0
              ? {
                  tool_calls: calls.map((call) => ({
                    id: callId(call.id),
                    type: 'function',
                    function: { name: call.name, arguments: argumentsValue(call.arguments) },
                  })),
                }
              : {}),
            ...(message.reasoning ? { reasoning_content: message.reasoning.text } : {}),
          };
        }
      }
    });
  }

  /** The tools as templates take them: `{type: 'function', function: {name, description, parameters}}`. */
  templateTools(tools: readonly ToolSpec[]): TemplateMessage[] {
    return tools.map((tool) => ({
      type: 'function',
      function: { name: tool.name, description: tool.description, parameters: tool.inputSchema },
    }));
  }

  /**
   * The template's text for a conversation (`apply_chat_template(tokenize=False)`).
   * @throws PaddockError CONFIG_INVALID when the template fails on it (its `raise_exception`).
   */
  renderText(
    messages: readonly Message[],
    tools: readonly ToolSpec[],
    options: RenderTextOptions = {},
  ): string {
    try {
      return this.template.render({
        messages: this.templateMessages(messages),
        // transformers passes None for no tools: templates test `if tools`.
        tools: tools.length > 0 ? this.templateTools(tools) : undefined,
        add_generation_prompt: options.addGenerationPrompt === true,
        ...this.variables,
      });
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `the chat template (${this.origin}) failed: ${describeError(error)}`,
        { cause: error, details: { file: this.tokenizer.source, field: 'chat_template' } },
      );
    }
  }

  /**
   * The conversation's ids, no generation prompt: `renderSupervised`'s ids (a conversation
   * without assistant messages is its whole text encoded, exactly as `transformers` does).
   */
  renderConversation(messages: readonly Message[], tools: readonly ToolSpec[]): number[] {
    return this.renderSupervised(messages, tools).ids;
  }

  /**
   * The conversation's ids with mask 1 on what each assistant message writes — from the end
   * of the generation prompt through its end token — and 0 elsewhere (the header, the text
   * after the end token, the other messages). Encoded piecewise at those boundaries.
   * @throws PaddockError CONFIG_INVALID when the template renders earlier messages differently
   *   once an assistant message follows them (the spans cannot be placed).
   */
  renderSupervised(
    messages: readonly Message[],
    tools: readonly ToolSpec[],
  ): { ids: number[]; mask: number[] } {
    const text = this.renderText(messages, tools);
    const ids: number[] = [];
    const mask: number[] = [];
    const push = (from: number, to: number, trained: 0 | 1) => {
      if (to <= from) return;
      const piece = this.tokenizer.encodeWithSpecials(text.slice(from, to));
      ids.push(...piece);
      for (let i = 0; i < piece.length; i++) mask.push(trained);
    };
    let cursor = 0;
    messages.forEach((message, index) => {
      if (message.role !== 'assistant') return;
      const before = this.renderText(messages.slice(0, index), tools);
      if (!text.startsWith(before) || before.length < cursor) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `the chat template renders messages 0–${index - 1} differently once assistant message ${index} follows them; cannot place what the assistant writes`,
          { details: { file: this.tokenizer.source, field: 'chat_template', message: index } },
        );
      }
      const start = before.length + this.generationPromptIn(text, before.length);
      const close = text.indexOf(this.endToken, start);
      const stop = close < 0 ? text.length : close + this.endToken.length;
      push(cursor, start, 0);
      push(start, stop, 1);
      cursor = stop;
    });
    push(cursor, text.length, 0);
    return { ids, mask };
  }

  /**
   * One non-system message as it is appended to a context that ends with an assistant
   * reply's end token (for a user or tool message) or with a finished user message (for an
   * assistant message): the template's text for it after such a context, including what
   * the template writes after the previous end token (Qwen's `\n`). Rendered alone: where
   * the template groups messages (Qwen puts consecutive tool results in one user turn),
   * use `renderFollowing`, which sees the whole conversation.
   */
  renderMessage(message: Message): number[] {
    const user: Message = { role: 'user', content: PROBE_USER };
    if (message.role === 'assistant') {
      const before = this.renderText([user], []);
      const text = this.renderText([user, message], []);
      return this.tokenizer.encodeWithSpecials(text.startsWith(before) ? text.slice(before.length) : text);
    }
    const reply: Message =
      message.role === 'tool'
        ? {
            role: 'assistant',
            content: '',
            toolCalls: [{ id: message.toolCallId, name: message.name, arguments: '{}' }],
          }
        : { role: 'assistant', content: PROBE_REPLY };
    const ids = this.renderFollowing([user, reply, message], 1, []);
    if (ids === null) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `the chat template (${this.origin}) renders a ${message.role} message in a way that cannot be appended to a context`,
        { details: { file: this.tokenizer.source, field: 'chat_template' } },
      );
    }
    return ids;
  }

  /**
   * The ids that take a context holding `messages[0..replyIndex]` — the assistant reply at
   * `replyIndex` as the policy sampled it, through its end token — to the template's
   * rendering of all of `messages` (no generation prompt): the template's text after that
   * reply's end token. Null when the template renders the messages before the reply
   * differently once the later ones follow (then the caller renders afresh), or the reply
   * has no end token in the rendering.
   */
  renderFollowing(
    messages: readonly Message[],
    replyIndex: number,
    tools: readonly ToolSpec[],
  ): number[] | null {
    if (messages[replyIndex]?.role !== 'assistant') return null;
    const before = this.renderText(messages.slice(0, replyIndex), tools);
    const text = this.renderText(messages, tools);
    if (!text.startsWith(before)) return null;
    const close = text.indexOf(this.endToken, before.length);
    if (close < 0) return null;
    return this.tokenizer.encodeWithSpecials(text.slice(close + this.endToken.length));
  }

  /**
   * Reads a completion's ids: decoded with the tool-call and reasoning markers that are
   * special tokens (`<|python_tag|>`, `[TOOL_CALLS]`) spelled out, other special tokens
   * (the end token) dropped; then `parseCompletion`.
   */
  parseCompletionIds(ids: readonly number[], turnIndex: number): HfParsedCompletion {
    const kept = ids.filter((id) => !this.tokenizer.isSpecial(id) || this.markerIds.has(id));
    return this.parseCompletion(this.tokenizer.decodeWithSpecials(kept), turnIndex);
  }

  /**
   * Reads a completion's text into reasoning, text and tool calls (ids `call_<turnIndex>_<k>`).
   * Never throws: what cannot be read is a call with a problem (see the module comment).
   */
  parseCompletion(completion: string, turnIndex: number): HfParsedCompletion {
    let rest = completion;
    let reasoning: string | null = null;
    if (this.reasoning) ({ reasoning, rest } = splitReasoning(completion));
    const calls: ToolCall[] = [];
    const problems: string[] = [];
    const read = { turnIndex, calls, problems };
    const text =
      this.toolCallFormat === 'hermes'
        ? parseHermes(rest, read)
        : this.toolCallFormat === 'llama3-json'
          ? parseLlama(rest, read)
          : parseMistral(rest, read);
    const trimmed = text.trim();
    return { text: trimmed === '' ? null : trimmed, toolCalls: calls, problems, reasoning };
  }

  /** The assistant message the episode loop makes of a parsed completion. */
  assistantMessage(parsed: HfParsedCompletion): Message {
    return {
      role: 'assistant',
      content: parsed.text,
      ...(parsed.toolCalls.length > 0 ? { toolCalls: parsed.toolCalls } : {}),
      ...(parsed.reasoning === null ? {} : { reasoning: { text: parsed.reasoning } }),
    };
  }
}

/** A call's arguments for a template: the parsed JSON, else the raw text. */
function argumentsValue(raw: string): unknown {
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Mistral's templates want call ids of 9 letters or digits: others are mapped (FNV-1a, base 36). */
export function mistralCallId(id: string): string {
  if (/^[A-Za-z0-9]{9}$/.test(id)) return id;
  let hash = 0x811c9dc5;
  for (const char of id) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  let second = hash ^ 0x5bd1e995;
  second = Math.imul(second ^ (second >>> 15), 0x2c1b3c6d) >>> 0;
  return (hash.toString(36) + second.toString(36)).padStart(9, '0').slice(-9);
}

/** Splits `<think>…</think>` off a completion (the opening tag may be in the prompt, as R1's is). */
function splitReasoning(completion: string): { reasoning: string | null; rest: string } {
  const close = completion.indexOf(THINK_CLOSE);
  const open = completion.indexOf(THINK_OPEN);
  if (close >= 0 && (open < 0 || open < close)) {
    const inner = completion.slice(open < 0 ? 0 : open + THINK_OPEN.length, close);
    const before = open < 0 ? '' : completion.slice(0, open);
    return {
      reasoning: stripNewlines(inner),
      rest: before + completion.slice(close + THINK_CLOSE.length).replace(/^\n+/, ''),
    };
  }
  if (open >= 0) {
    // Cut off while thinking: all of it is reasoning.
    return {
      reasoning: stripNewlines(completion.slice(open + THINK_OPEN.length)),
      rest: completion.slice(0, open),
    };
  }
  return { reasoning: null, rest: completion };
}

function stripNewlines(text: string): string {
  return text.replace(/^\n+/, '').replace(/\n+$/, '');
}

interface CallReader {
  turnIndex: number;
  calls: ToolCall[];
  problems: string[];
}

function nextId(read: CallReader): string {
  return `call_${read.turnIndex}_${read.calls.length}`;
}

/**
 * One call's JSON object text → a call: `name`, and the raw text of `argumentsKeys`' first
 * present member (a JSON string there is taken as the arguments' text). A broken object
 * still gives a call (see the module comment).
 */
function readCallObject(
  block: string,
  read: CallReader,
  where: string,
  argumentsKeys: readonly string[],
): void {
  const id = nextId(read);
  const unreadable = (why: string) => {
    read.problems.push(`${where}: ${why}`);
    const name = /"name"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(block)?.[1];
    if (name) {
      const keys = argumentsKeys.join('|');
      const args = new RegExp(`"(?:${keys})"\\s*:\\s*([\\s\\S]*?)\\s*\\}?\\s*$`).exec(block)?.[1] ?? block;
      read.calls.push({ id, name, arguments: args });
    } else {
      const shape = `{"name": "<tool>", "${argumentsKeys[0]}": {…}}`;
      read.calls.push({ id, name: `(unreadable ${where}: write ${shape} as valid JSON)`, arguments: block });
    }
  };
  let value: unknown;
  try {
    value = JSON.parse(block);
  } catch (error) {
    unreadable(`invalid JSON: ${describeError(error)}`);
    return;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    unreadable('not a JSON object');
    return;
  }
  const record = value as Record<string, unknown>;
  if (typeof record.name !== 'string' || record.name === '') {
    unreadable('no "name" string');
    return;
  }
  const spans = memberSpans(block);
  const key = argumentsKeys.find((candidate) => spans.has(candidate));
  let args = '{}';
  if (key !== undefined) {
    const member = record[key];
    if (typeof member === 'string') args = member;
    else if (member !== null) {
      const [start, stop] = spans.get(key)!;
      args = block.slice(start, stop);
    }
  }
  read.calls.push({ id, name: record.name, arguments: args });
}

/** Hermes: `<tool_call>{…}</tool_call>` blocks; returns the text outside them. */
function parseHermes(completion: string, read: CallReader): string {
  const outside: string[] = [];
  let cursor = 0;
  while (cursor < completion.length) {
    const open = completion.indexOf(HERMES_OPEN, cursor);
    if (open < 0) {
      outside.push(completion.slice(cursor));
      break;
    }
    outside.push(completion.slice(cursor, open));
    const start = open + HERMES_OPEN.length;
    const close = completion.indexOf(HERMES_CLOSE, start);
    const block = completion.slice(start, close < 0 ? undefined : close).trim();
    cursor = close < 0 ? completion.length : close + HERMES_CLOSE.length;
    if (close < 0) read.problems.push(`a ${HERMES_OPEN} block is not closed with ${HERMES_CLOSE}`);
    readCallObject(block, read, `${HERMES_OPEN} block`, ['arguments', 'parameters']);
  }
  return outside.join('');
}

/** Llama 3.1 JSON calls: after `<|python_tag|>`, or a reply that is JSON; `;` between calls. */
function parseLlama(completion: string, read: CallReader): string {
  const tag = completion.indexOf(PYTHON_TAG);
  let text: string;
  let body: string;
  if (tag >= 0) {
    text = completion.slice(0, tag);
    body = completion.slice(tag + PYTHON_TAG.length);
  } else if (completion.trimStart().startsWith('{')) {
    text = '';
    body = completion;
  } else {
    return completion;
  }
  let cursor = 0;
  let found = false;
  for (;;) {
    while (cursor < body.length && /[\s;]/.test(body[cursor]!)) cursor++;
    if (cursor >= body.length) break;
    if (body[cursor] !== '{') {
      if (!found) {
        read.problems.push(`${PYTHON_TAG} is not followed by a JSON object`);
        read.calls.push({
          id: nextId(read),
          name: `(unreadable tool call: write {"name": "<tool>", "parameters": {…}} as valid JSON)`,
          arguments: body.slice(cursor).trim(),
        });
      } else {
        text += body.slice(cursor);
      }
      break;
    }
    const stop = balancedEnd(body, cursor);
    readCallObject(body.slice(cursor, stop).trim(), read, 'JSON tool call', ['parameters', 'arguments']);
    found = true;
    cursor = stop;
  }
  return text;
}

/** Mistral: `[TOOL_CALLS][{…}, …]` or `[TOOL_CALLS]name[ARGS]{…}` (repeated). */
function parseMistral(completion: string, read: CallReader): string {
  let marker = completion.indexOf(MISTRAL_CALLS);
  let text: string;
  let body: string;
  if (marker >= 0) {
    text = completion.slice(0, marker);
    body = completion.slice(marker + MISTRAL_CALLS.length);
  } else if (/^\s*\[\s*\{/.test(completion)) {
    // Decoded without its special tokens, the marker is gone: a reply that is a list of calls.
    text = '';
    body = completion;
  } else {
    return completion;
  }
  const where = `${MISTRAL_CALLS} call`;
  const unreadableName = `(unreadable ${MISTRAL_CALLS} call: write [{"name": "<tool>", "arguments": {…}}] as valid JSON)`;
  const trimmed = body.trimStart();
  if (trimmed.startsWith('[')) {
    // A JSON list of call objects; each element is read on its own, so one broken call
    // does not hide the others.
    let at = body.length - trimmed.length + 1;
    for (;;) {
      while (at < body.length && /[\s,]/.test(body[at]!)) at++;
      if (at >= body.length) break;
      if (body[at] === ']') {
        at++;
        break;
      }
      if (body[at] !== '{') {
        read.problems.push(`${where}: the list holds something other than call objects`);
        read.calls.push({ id: nextId(read), name: unreadableName, arguments: body.slice(at).trim() });
        at = body.length;
        break;
      }
      const stop = balancedEnd(body, at);
      readCallObject(body.slice(at, stop), read, where, ['arguments']);
      at = stop;
    }
    return text + body.slice(at);
  }
  // [TOOL_CALLS]name[ARGS]{…}[TOOL_CALLS]name[ARGS]{…}
  for (const part of body.split(MISTRAL_CALLS)) {
    marker = part.indexOf(MISTRAL_ARGS);
    if (marker < 0) {
      read.problems.push(`${where}: no ${MISTRAL_ARGS} after the tool's name`);
      read.calls.push({ id: nextId(read), name: unreadableName, arguments: part.trim() });
      continue;
    }
    const name = part.slice(0, marker).split(MISTRAL_CALL_ID)[0]!.trim();
    const rest = part.slice(marker + MISTRAL_ARGS.length);
    const start = rest.length - rest.trimStart().length;
    const stop = rest[start] === '{' ? balancedEnd(rest, start) : rest.length;
    const args = rest.slice(start, stop);
    text += rest.slice(stop);
    try {
      JSON.parse(args);
    } catch (error) {
      read.problems.push(`${where}: the arguments of ${name} are not valid JSON: ${describeError(error)}`);
    }
    read.calls.push({ id: nextId(read), name, arguments: args });
  }
  return text;
}

/** The end of the JSON object or list opening at `start` (strings respected); the text's end when unbalanced. */
function balancedEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (char === '"') i = stringEnd(text, i) - 1;
    else if (char === '{' || char === '[') depth++;
    else if (char === '}' || char === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return text.length;
}

/** The index after the JSON string opening at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return text.length;
}

/** The end of the JSON value at `start` of a valid JSON text. */
function valueEnd(text: string, start: number): number {
  const char = text[start];
  if (char === '"') return stringEnd(text, start);
  if (char === '{' || char === '[') return balancedEnd(text, start);
  let i = start;
  while (i < text.length && !/[\s,}\]]/.test(text[i]!)) i++;
  return i;
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && /\s/.test(text[at]!)) at++;
  return at;
}

/** The [start, end) of each member's value of a valid JSON object text, by key (the last wins). */
function memberSpans(json: string): Map<string, [number, number]> {
  const spans = new Map<string, [number, number]>();
  let at = skipSpace(json, 0) + 1; // past '{'
  for (;;) {
    at = skipSpace(json, at);
    if (json[at] !== '"') break;
    const keyEnd = stringEnd(json, at);
    const key = JSON.parse(json.slice(at, keyEnd)) as string;
    at = skipSpace(json, keyEnd) + 1; // past ':'
    at = skipSpace(json, at);
    const end = valueEnd(json, at);
    spans.set(key, [at, end]);
    at = skipSpace(json, end);
    if (json[at] !== ',') break;
    at++;
  }
  return spans;
}
