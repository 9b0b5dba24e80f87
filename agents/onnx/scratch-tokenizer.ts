/**
 * The tokenizer and chat template of a model trained from scratch (the toy suite's), in
 * Hugging Face's formats, so that it takes the same path as any pretrained checkpoint:
 *
 * - `tokenizer.json`: a byte-level BPE (the GPT-2 / Qwen2 family's model: bytes mapped to
 *   printable characters, merges applied by rank within each pre-token), with Qwen2's
 *   pre-tokenizer split (digits one at a time, so numbers are spelled digit by digit) and
 *   ChatML's special tokens. Its merges are learned here from the conversations the
 *   model will read, rendered by its own template (`trainByteLevelBpe`): no JavaScript
 *   library trains tokenizers (`@huggingface/tokenizers` encodes and decodes only), and a
 *   byte-level BPE trainer is a page. What it writes is read back by that library.
 * - `tokenizer_config.json`: the special tokens and {@link SCRATCH_CHAT_TEMPLATE}, ChatML
 *   with Hermes tool calls (`<tool_call>{"name": …, "arguments": …}</tool_call>`) and tool
 *   results as `<tool_response>` in a user turn, as Qwen2.5's template writes them; the
 *   tools are listed by name rather than with their descriptions and JSON schemas, which a
 *   model this small would spend most of its context on.
 * - `generation_config.json`: BOS, EOS (`<|im_end|>`, `<|endoftext|>`) and padding ids.
 */
import type { Message, ToolSpec } from '../../harness/index.ts';
import { HfChatTemplate } from './hf-chat-template.ts';
import { HfTokenizer, type HfTokenizerFiles } from './hf-tokenizer.ts';

/** The special (and added) tokens, in id order after the byte-level vocabulary and merges. */
export const SCRATCH_SPECIAL_TOKENS = [
  { content: '<|endoftext|>', special: true },
  { content: '<|im_start|>', special: true },
  { content: '<|im_end|>', special: true },
  { content: '<tool_call>', special: false },
  { content: '</tool_call>', special: false },
] as const;

/**
 * ChatML with Hermes tool calls (Qwen2.5's conventions), tools listed compactly. Tool-call
 * arguments are written as JSON whether they come as a string or an object.
 */
export const SCRATCH_CHAT_TEMPLATE = [
  "{%- if tools %}{{- '<|im_start|>system\\n' }}",
  "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}",
  '{{- \'# Tools\\nCall a tool as <tool_call>{"name": <name>, "arguments": <object>}</tool_call>. Tools:\' }}',
  '{%- for tool in tools %}{%- set fn = tool.function if tool.function is defined else tool %}',
  "{{- '\\n- ' + fn.name }}",
  '{%- endfor %}',
  "{{- '<|im_end|>\\n' }}",
  "{%- elif messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}",
  '{%- endif %}',
  '{%- for message in messages %}',
  "{%- if message.role == 'system' and loop.first %}",
  "{%- elif message.role == 'user' or message.role == 'system' %}",
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}",
  "{%- elif message.role == 'assistant' %}",
  "{{- '<|im_start|>assistant\\n' }}{%- if message.content %}{{- message.content }}{%- endif %}",
  '{%- if message.tool_calls %}{%- for call in message.tool_calls %}',
  '{%- set fn = call.function if call.function is defined else call %}',
  '{{- \'<tool_call>{"name": "\' + fn.name + \'", "arguments": \' }}',
  '{%- if fn.arguments is string %}{{- fn.arguments }}{%- else %}{{- fn.arguments | tojson }}{%- endif %}',
  "{{- '}</tool_call>' }}",
  '{%- endfor %}{%- endif %}',
  "{{- '<|im_end|>\\n' }}",
  "{%- elif message.role == 'tool' %}",
  "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}",
  "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}",
  "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}",
  '{%- endif %}',
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join('\n');

/**
 * Qwen2's pre-tokenizer split, in a form JavaScript's RegExp reads as the tokenizer
 * library does (the case-insensitive group spelled out): contractions, words with one
 * leading non-letter, single digits, punctuation runs, newlines, spaces.
 */
const PRE_TOKENIZER_PATTERN =
  "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's map of the 256 byte values to printable characters (`bytes_to_unicode`). */
function byteCharacters(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const chars = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    chars[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return chars;
}

export interface ByteLevelBpeOptions {
  /** How many merges to learn (at most: learning stops when no pair occurs twice). */
  merges: number;
}

/** The parts of the `tokenizer.json` value `trainByteLevelBpe` returns that its callers read. */
export interface ByteLevelBpeJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { vocab: Record<string, number>; merges: [string, string][]; [key: string]: unknown };
  [key: string]: unknown;
}

/**
 * Learns a byte-level BPE from `texts` and returns it as a `tokenizer.json` value (BPE
 * model, Qwen2's pre-tokenizer, byte-level decoder) with {@link SCRATCH_SPECIAL_TOKENS}
 * added after the merges (texts are cut at them: they are never merged into). Each step merges the most frequent adjacent pair within the
 * pre-tokens (ties: the first in code-unit order), as the BPE of the `tokenizers` library
 * does; deterministic.
 */
export function trainByteLevelBpe(texts: readonly string[], options: ByteLevelBpeOptions): ByteLevelBpeJson {
  const chars = byteCharacters();
  const encoder = new TextEncoder();
  const pattern = new RegExp(PRE_TOKENIZER_PATTERN, 'gu');
  const cut = new RegExp(SCRATCH_SPECIAL_TOKENS.map((token) => escapeRegExp(token.content)).join('|'), 'g');

  // Pre-tokens (as byte characters) and how often each occurs.
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const part of text.split(cut)) {
      for (const match of part.matchAll(pattern)) {
        const word = Array.from(encoder.encode(match[0]), (byte) => chars[byte]).join('');
        counts.set(word, (counts.get(word) ?? 0) + 1);
      }
    }
  }
  const words = [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([word, count]) => ({ symbols: Array.from(word), count }));

  const vocab = new Map<string, number>(chars.map((char, id) => [char, id]));
  const merges: [string, string][] = [];
  while (merges.length < options.merges) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, count] of pairs) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split('\u0000') as [string, string];
    const merged = left + right;
    merges.push([left, right]);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const word of words) {
      const s = word.symbols;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === left && s[i + 1] === right) s.splice(i, 2, merged);
      }
    }
  }

  const added = SCRATCH_SPECIAL_TOKENS.map((token, index) => ({
    id: vocab.size + index,
    content: token.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: token.special,
  }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: PRE_TOKENIZER_PATTERN },
          behavior: 'Isolated',
          invert: false,
        },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}

/** What a scratch model's tokenizer is learned from: what it will read and write. */
export interface ScratchTokenizerSample {
  /** Texts the model will read (task instructions). */
  texts: readonly string[];
  /** Conversations with the tools they were played with (demonstrations). */
  conversations: readonly { messages: readonly Message[]; tools: readonly ToolSpec[] }[];
}

export interface ScratchTokenizerOptions {
  /** Merges of the BPE (its vocabulary: 256 bytes + merges + 5 added tokens). */
  merges: number;
}

/**
 * The tokenizer files of a model trained from scratch: a byte-level BPE whose merges are
 * learned from `sample` rendered by {@link SCRATCH_CHAT_TEMPLATE} (conversations whole,
 * instructions alone), with the template and special tokens in `tokenizer_config.json`.
 * Deterministic: the same sample and options give the same files.
 */
export function scratchTokenizerFiles(
  sample: ScratchTokenizerSample,
  options: ScratchTokenizerOptions,
): Required<Pick<HfTokenizerFiles, 'tokenizer' | 'config' | 'generationConfig'>> {
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    model_max_length: 32768,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    clean_up_tokenization_spaces: false,
    add_bos_token: false,
    chat_template: SCRATCH_CHAT_TEMPLATE,
  };
  // The conversations as the template renders them (rendering needs a tokenizer: bytes only).
  const bytesOnly = new HfTokenizer({ tokenizer: trainByteLevelBpe([], { merges: 0 }), config });
  const template = new HfChatTemplate(bytesOnly);
  const texts = [
    ...sample.texts,
    ...sample.conversations.map(({ messages, tools }) => template.renderText(messages, tools)),
  ];
  const tokenizer = trainByteLevelBpe(texts, { merges: options.merges });
  const idOf = (content: string) => tokenizer.added_tokens.find((token) => token.content === content)!.id;
  return {
    tokenizer,
    config,
    generationConfig: {
      bos_token_id: null,
      eos_token_id: [idOf('<|im_end|>'), idOf('<|endoftext|>')],
      pad_token_id: idOf('<|endoftext|>'),
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
