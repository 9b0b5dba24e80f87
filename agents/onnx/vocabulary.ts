/**
 * A piece vocabulary for paddock-v1 policies, learned from what such a policy reads and
 * writes: task instructions, and sample conversations rendered as the template renders
 * them (the system prompt, the tool list, each message's canonical text). The tool-call
 * scaffold is forced in as a few pieces, so that a call costs a few tokens (as tool-call
 * special tokens do in chat models).
 */
import type { Message, ToolSpec } from '../../harness/index.ts';
import { DEFAULT_SYSTEM_PROMPT, TOOL_CLOSE, TOOL_OPEN, renderAssistantText, renderToolList } from './chat.ts';
import { buildPieceTokenizer, type BuildTokenizerOptions, type PieceTokenizer } from './tokenizer.ts';

/** Pieces for the tool-call syntax of the canonical rendering, always kept first. */
export const TOOL_CALL_PIECES: readonly string[] = [
  `${TOOL_OPEN}{"name":"`,
  '","arguments":{"',
  `"}}${TOOL_CLOSE}`,
  TOOL_OPEN,
  TOOL_CLOSE,
];

/** What a policy's vocabulary is learned from. */
export interface PolicyTokenizerSample {
  /** Texts the policy will read (task instructions). */
  texts: readonly string[];
  /** Conversations with the tools they were played with (demonstrations). */
  conversations: readonly { messages: readonly Message[]; tools: readonly ToolSpec[] }[];
}

export interface PolicyTokenizerOptions extends Omit<BuildTokenizerOptions, 'forced'> {
  /** Whether the template lists tool descriptions (as the policy's chat options say). @default true */
  toolDescriptions?: boolean;
}

/**
 * Builds a piece tokenizer for a paddock-v1 policy from `sample` (deterministic: the same
 * sample and options give the same vocabulary).
 */
export function buildPolicyTokenizer(
  sample: PolicyTokenizerSample,
  options: PolicyTokenizerOptions = {},
): PieceTokenizer {
  const { toolDescriptions, ...build } = options;
  const texts: string[] = [...sample.texts];
  for (const { messages, tools } of sample.conversations) {
    const system = messages[0]?.role === 'system' ? messages[0].content : DEFAULT_SYSTEM_PROMPT;
    texts.push(system, renderToolList(tools, { toolDescriptions: toolDescriptions ?? true }));
    for (const message of messages) {
      if (message.role === 'system') continue;
      texts.push(
        message.role === 'assistant'
          ? renderAssistantText(message.content, message.toolCalls)
          : message.content,
      );
    }
  }
  return buildPieceTokenizer(texts, { ...build, forced: TOOL_CALL_PIECES });
}
