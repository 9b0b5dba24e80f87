/**
 * The contract between a trainer and the policies it trains: the tokenizer, the chat
 * template, and the policy folder (what it holds, how a trainer writes one and how an
 * agent kind loads it).
 *
 * A trainer renders demonstrations, checks recorded ids and writes policy folders through
 * these interfaces only; an agent kind implements them (`agents/onnx` does, with paddock's
 * piece tokenizer and the `paddock-v1` template; a Hugging Face tokenizer and chat template
 * fit the same shapes). Types, and three functions that apply a template's optional members
 * or their defaults (`isStopId`, `parseCompletionIds`, `renderFollowing`).
 */
import type { Message, ToolCall } from './agent.ts';
import type { ToolSpec } from './tool.ts';

/** Text ↔ token ids, with the vocabulary's special (control) tokens. */
export interface Tokenizer {
  /** Number of ids (the model's output must have at least this many rows). */
  readonly vocabSize: number;
  /**
   * Text → ids. Special tokens are never produced from text: their spelling in a text is
   * ordinary text (only the chat template inserts them).
   */
  encode(text: string): number[];
  /** Ids → text; special tokens contribute nothing; invalid UTF-8 becomes U+FFFD. */
  decode(ids: readonly number[]): string;
  /** True when `id` is a special token (a role marker, end of message, padding). */
  isSpecial(id: number): boolean;
  /**
   * The id of a named special token (`<|end|>`).
   * @throws PaddockError CONFIG_INVALID when the vocabulary has no such token.
   */
  specialId(token: string): number;
  /** The tokenizer's file form (a policy folder's `tokenizer.json`), as a JSON value. */
  toJSON(): unknown;
}

/** An assistant completion read back into text and tool calls. */
export interface ParsedCompletion {
  /** Text outside the tool calls, trimmed; null when empty. */
  text: string | null;
  toolCalls: ToolCall[];
  /** Calls that could not be read cleanly, and why (the loop answers them with an error observation). */
  problems: string[];
}

/**
 * How a conversation becomes the ids a policy sees, and how its completions become turns.
 * Rendering is a pure function of the messages, the tools and the tokenizer.
 */
export interface ChatTemplate {
  /** The template's name, as policy folders record it (`paddock-v1`). */
  readonly name: string;
  readonly tokenizer: Tokenizer;
  /** The ids that open the assistant's turn: appended to a context before the policy writes. */
  readonly generationPrompt: readonly number[];
  /** The id that closes a message; a context gets it after a completion cut off by length. */
  readonly end: number;
  /**
   * The whole conversation as the policy sees it before its first turn: the system message
   * (the conversation's own, or the template's default) with the tool list, then every
   * other message. No generation prompt.
   */
  renderConversation(messages: readonly Message[], tools: readonly ToolSpec[]): number[];
  /** One non-system message as it is appended to a running context (an observation, a reply). */
  renderMessage(message: Message): number[];
  /**
   * A conversation for supervised training: `renderConversation`'s ids, with `mask` 1 on
   * the tokens the assistant writes (its messages and their closing token), 0 elsewhere.
   */
  renderSupervised(
    messages: readonly Message[],
    tools: readonly ToolSpec[],
  ): { ids: number[]; mask: number[] };
  /**
   * Reads a completion's text (its ids decoded without special tokens) into text and tool
   * calls; call ids are `call_<turnIndex>_<k>`. Never throws: what cannot be read is a problem.
   */
  parseCompletion(completion: string, turnIndex: number): ParsedCompletion;
  /**
   * Ids that end a completion when sampled (`<|im_end|>` and the EOS ids).
   * @default every special id (`tokenizer.isSpecial`)
   */
  readonly stopIds?: ReadonlySet<number>;
  /**
   * Reads a completion from its ids (a template whose tool-call markers are special tokens
   * keeps them). @default decode without special tokens, then `parseCompletion`
   */
  parseCompletionIds?(ids: readonly number[], turnIndex: number): ParsedCompletion;
  /**
   * The ids that take a context holding `messages[0..replyIndex]` (the assistant reply at
   * `replyIndex` as sampled, through its end token) to the rendering of all of `messages`;
   * null when the template cannot append them (the caller then renders afresh).
   * @default `renderMessage` of each message after the reply
   */
  renderFollowing?(
    messages: readonly Message[],
    replyIndex: number,
    tools: readonly ToolSpec[],
  ): number[] | null;
}

/** Whether sampling `id` ends the completion under `template` (its `stopIds`, else any special id). */
export function isStopId(template: ChatTemplate, id: number): boolean {
  return template.stopIds ? template.stopIds.has(id) : template.tokenizer.isSpecial(id);
}

/** A completion's ids read by `template` (its `parseCompletionIds`, else decoded without specials). */
export function parseCompletionIds(
  template: ChatTemplate,
  ids: readonly number[],
  turnIndex: number,
): ParsedCompletion {
  if (template.parseCompletionIds) return template.parseCompletionIds(ids, turnIndex);
  const { tokenizer } = template;
  return template.parseCompletion(tokenizer.decode(ids.filter((id) => !tokenizer.isSpecial(id))), turnIndex);
}

/**
 * The ids appended after the reply at `replyIndex` for the messages after it (see
 * ChatTemplate.renderFollowing; by default each message's `renderMessage`), or null.
 */
export function renderFollowing(
  template: ChatTemplate,
  messages: readonly Message[],
  replyIndex: number,
  tools: readonly ToolSpec[],
): number[] | null {
  if (template.renderFollowing) return template.renderFollowing(messages, replyIndex, tools);
  return messages.slice(replyIndex + 1).flatMap((message) => template.renderMessage(message));
}

/** The shape of a KV cache a policy graph takes and returns. */
export interface KvCacheShape {
  layers: number;
  heads: number;
  headDim: number;
}

/** Default sampling of agents made from a policy folder. */
export interface PolicySampling {
  temperature?: number;
  topP?: number;
  maxNewTokens?: number;
}

/** What a trainer puts in a policy folder beside the weights its exporter wrote there. */
export interface PolicyFolderContents {
  /** The exported model: its output rows, longest context and cache shape (null: no cache). */
  model: {
    vocabSize: number;
    maxLen: number;
    kvCache: KvCacheShape | null;
    /** What produced it (the trainer's model shape), kept for readers. */
    details?: Record<string, unknown>;
  };
  tokenizer: Tokenizer;
  /** Chat options of paddock's own template (paddock-v1); a model's own template takes none. */
  chat?: { toolDescriptions: boolean };
  sampling: PolicySampling;
  /** The training step the weights are from. */
  step?: number;
}

/** A policy loaded from its folder, ready to sample. */
export interface LoadedPolicy {
  /** The folder it was loaded from. */
  readonly dir: string;
  readonly tokenizer: Tokenizer;
  /** Longest context, in tokens. */
  readonly maxLen: number;
  /** Releases the runtime's resources. Idempotent. */
  close(): Promise<void>;
}

/**
 * A policy folder format: a trainer writes a folder after each update (its exporter first
 * writes `weightsFile`, then `write` adds the rest); an agent kind loads it.
 */
export interface PolicyFormat<TPolicy extends LoadedPolicy = LoadedPolicy> {
  /** The format's name, as its folders' config records it (`paddock-onnx-policy`). */
  readonly name: string;
  /** The weights' file in the folder, where the exporter writes them (`model.onnx`). */
  readonly weightsFile: string;
  /** Writes the folder's config and tokenizer beside its weights (atomically, file by file). */
  write(dir: string, contents: PolicyFolderContents): void;
  /**
   * Loads a folder.
   * @throws PaddockError CONFIG_INVALID when a file is missing or invalid (naming file and field).
   */
  load(dir: string): Promise<TPolicy>;
  /**
   * Reads a tokenizer file of this format.
   * @throws PaddockError CONFIG_INVALID naming the file and field.
   */
  readTokenizer(path: string): Tokenizer;
  /** The chat template this format's folders use, over `tokenizer`. */
  chatTemplate(tokenizer: Tokenizer, chat?: { toolDescriptions: boolean }): ChatTemplate;
}
