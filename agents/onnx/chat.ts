/**
 * The chat template of paddock's ONNX policies (`paddock-v1`) and its tool-call syntax.
 *
 * A conversation is rendered as token ids, each message between a role token and `<|end|>`:
 * ```
 * <|system|>{system prompt}\n\n{tool list}<|end|>
 * <|user|>{content}<|end|>
 * <|assistant|>{text}\n<tool>{"name":"lookup","arguments":{"key":"kiwi"}}</tool><|end|>
 * <|tool|>{content}<|end|>
 * <|assistant|>            ← the generation prompt: the policy writes from here
 * ```
 * Tool calls: the assistant writes `<tool>{JSON}</tool>`, the JSON being
 * `{"name": string, "arguments": object}`; several calls may follow one another in a
 * turn. The canonical rendering (used for demonstrations) is compact JSON: `JSON.stringify`
 * of `{name, arguments}`. The policy ends its turn with `<|end|>` (or any special token).
 *
 * Parsing is lenient in what it accepts and never throws: a turn without `<tool>` is a
 * text-only turn (which ends the episode); a block whose JSON is broken becomes a call the
 * episode loop answers with an error observation (`invalid-json` when a name can be read,
 * `unknown-tool` otherwise), so that the policy sees and can learn from its mistake.
 */
import type { Message, ToolCall, ToolSpec } from '../../harness/index.ts';
import type { ChatTemplate, ParsedCompletion, Tokenizer } from '../../harness/index.ts';

export const TOOL_OPEN = '<tool>';
export const TOOL_CLOSE = '</tool>';

/** The system prompt used when the task gives none. */
export const DEFAULT_SYSTEM_PROMPT = 'You are an agent. Solve the task by calling tools.';

export interface ChatOptions {
  /** Include each tool's description in the tool list (otherwise names and arguments only). @default true */
  toolDescriptions?: boolean;
}

/** One line per tool: `- name(arg: type, opt?: type): description`. */
export function renderToolList(tools: readonly ToolSpec[], options: ChatOptions = {}): string {
  if (tools.length === 0) return '';
  const lines = tools.map((tool) => {
    const properties = (tool.inputSchema.properties ?? {}) as Record<string, { type?: unknown }>;
    const required = new Set(
      Array.isArray(tool.inputSchema.required) ? (tool.inputSchema.required as string[]) : [],
    );
    const args = Object.entries(properties)
      .map(
        ([name, schema]) =>
          `${name}${required.has(name) ? '' : '?'}: ${typeof schema.type === 'string' ? schema.type : 'any'}`,
      )
      .join(', ');
    const description = options.toolDescriptions === false ? '' : `: ${tool.description}`;
    return `- ${tool.name}(${args})${description}`;
  });
  return `Call a tool with ${TOOL_OPEN}{"name":…,"arguments":{…}}${TOOL_CLOSE}. Tools:\n${lines.join('\n')}`;
}

/** The canonical text of an assistant message: its text, then one block per call. */
export function renderAssistantText(content: string | null, toolCalls: readonly ToolCall[] = []): string {
  const parts: string[] = [];
  if (content) parts.push(content);
  for (const call of toolCalls) {
    let args: unknown = call.arguments;
    try {
      args = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
    } catch {
      // Broken arguments are rendered as the raw string they were.
    }
    parts.push(`${TOOL_OPEN}${JSON.stringify({ name: call.name, arguments: args })}${TOOL_CLOSE}`);
  }
  return parts.join('\n');
}

/** The name policy folders record for this template. */
export const PADDOCK_TEMPLATE = 'paddock-v1';

/**
 * The paddock-v1 template over a tokenizer with its role tokens (`<|system|>`, `<|user|>`,
 * `<|assistant|>`, `<|tool|>`) and `<|end|>`: the harness's ChatTemplate contract.
 */
export class PaddockChatTemplate implements ChatTemplate {
  readonly name = PADDOCK_TEMPLATE;
  readonly end: number;
  readonly generationPrompt: readonly number[];
  private readonly roles: Record<Message['role'], number>;

  /** @throws PaddockError CONFIG_INVALID when the tokenizer lacks one of the template's special tokens. */
  constructor(
    readonly tokenizer: Tokenizer,
    readonly options: ChatOptions = {},
  ) {
    this.end = tokenizer.specialId('<|end|>');
    this.roles = {
      system: tokenizer.specialId('<|system|>'),
      user: tokenizer.specialId('<|user|>'),
      assistant: tokenizer.specialId('<|assistant|>'),
      tool: tokenizer.specialId('<|tool|>'),
    };
    this.generationPrompt = Object.freeze([this.roles.assistant]);
  }

  /** The generation prompt's one id: the assistant role token. */
  get assistantHeader(): number {
    return this.roles.assistant;
  }

  /** The system message: the given prompt (or the default) followed by the tool list. */
  renderSystem(systemPrompt: string | undefined, tools: readonly ToolSpec[]): number[] {
    const list = renderToolList(tools, this.options);
    const text = [systemPrompt ?? DEFAULT_SYSTEM_PROMPT, list].filter(Boolean).join('\n\n');
    return [this.roles.system, ...this.tokenizer.encode(text), this.end];
  }

  /** One non-system message. Assistant messages are rendered canonically. */
  renderMessage(message: Message): number[] {
    const text =
      message.role === 'assistant'
        ? renderAssistantText(message.content, message.toolCalls)
        : message.content;
    return [this.roles[message.role], ...this.tokenizer.encode(text), this.end];
  }

  /**
   * The whole conversation as the policy sees it at turn 0: the system message (the
   * conversation's own, or the default) with the tool list, then every other message.
   */
  renderConversation(messages: readonly Message[], tools: readonly ToolSpec[]): number[] {
    return this.renderSupervised(messages, tools).ids;
  }

  /**
   * The conversation with mask 1 on each assistant message's tokens and its `<|end|>`
   * (not on the role token, which the template supplies).
   */
  renderSupervised(
    messages: readonly Message[],
    tools: readonly ToolSpec[],
  ): { ids: number[]; mask: number[] } {
    const system = messages[0]?.role === 'system' ? messages[0].content : undefined;
    const ids = this.renderSystem(system, tools);
    const mask = new Array<number>(ids.length).fill(0);
    for (const message of messages) {
      if (message.role === 'system') continue;
      const rendered = this.renderMessage(message);
      ids.push(...rendered);
      const trained = message.role === 'assistant' ? 1 : 0;
      mask.push(0, ...new Array<number>(rendered.length - 1).fill(trained));
    }
    return { ids, mask };
  }

  /** See `parseCompletion`. */
  parseCompletion(completion: string, turnIndex: number): ParsedCompletion {
    return parseCompletion(completion, turnIndex);
  }
}

const NAME_PATTERN = /"name"\s*:\s*"([^"\\]*)"/;
const ARGUMENTS_PATTERN = /"arguments"\s*:\s*([\s\S]*?)\s*\}\s*$/;

/** Parses a completion's text into text and tool calls. Never throws; see the module comment. */
export function parseCompletion(completion: string, turnIndex = 0): ParsedCompletion {
  const calls: ToolCall[] = [];
  const problems: string[] = [];
  const outside: string[] = [];
  let cursor = 0;
  while (cursor < completion.length) {
    const open = completion.indexOf(TOOL_OPEN, cursor);
    if (open < 0) {
      outside.push(completion.slice(cursor));
      break;
    }
    outside.push(completion.slice(cursor, open));
    const start = open + TOOL_OPEN.length;
    const close = completion.indexOf(TOOL_CLOSE, start);
    const block = completion.slice(start, close < 0 ? undefined : close).trim();
    cursor = close < 0 ? completion.length : close + TOOL_CLOSE.length;
    if (close < 0) problems.push(`a ${TOOL_OPEN} block is not closed`);
    const id = `call_${turnIndex}_${calls.length}`;
    calls.push(parseBlock(block, id, problems));
  }
  const text = outside.join('').trim();
  return { text: text === '' ? null : text, toolCalls: calls, problems };
}

function parseBlock(block: string, id: string, problems: string[]): ToolCall {
  let value: unknown;
  try {
    value = JSON.parse(block);
  } catch (error) {
    // Broken JSON: keep what can be read so the loop's observation names the tool.
    problems.push(`invalid JSON in a tool block: ${(error as Error).message}`);
    const name = NAME_PATTERN.exec(block)?.[1] ?? '';
    const args = ARGUMENTS_PATTERN.exec(block)?.[1] ?? block;
    return { id, name, arguments: args };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push('a tool block is not a JSON object');
    return { id, name: '', arguments: block };
  }
  const record = value as Record<string, unknown>;
  const name = typeof record.name === 'string' ? record.name : '';
  if (name === '') problems.push('a tool block has no "name" string');
  const args = record.arguments;
  return {
    id,
    name,
    arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
  };
}
