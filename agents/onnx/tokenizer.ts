/**
 * The tokenizer of paddock's ONNX policies: a fixed vocabulary of special tokens, the 256
 * byte values, and multi-byte "pieces", encoded by greedy longest match over the UTF-8
 * bytes of the text.
 *
 * `tokenizer.json`:
 * ```json
 * { "format": "paddock-pieces", "version": 1,
 *   "special": ["<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>"],
 *   "pieces": ["<tool>", " the", "lookup", …] }
 * ```
 * Ids: `special[i]` is `i`; byte `b` is `special.length + b`; `pieces[j]` is
 * `special.length + 256 + j`. Every text can be encoded (bytes are the fallback), and
 * `decode(encode(text)) === text`. The converse does not hold — a policy may sample a
 * non-canonical split — which is why trajectories record ids, never re-encoded text.
 * Special tokens are only ever inserted by the chat template: their spelling in a text is
 * encoded as ordinary bytes and pieces.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError, formatZodIssues } from '../../harness/index.ts';
import type { Tokenizer } from '../../harness/index.ts';

/** The special tokens of the paddock chat template, in id order. */
export const SPECIAL_TOKENS = [
  '<|pad|>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<|tool|>',
  '<|end|>',
] as const;

export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

export const TokenizerFileSchema = z
  .object({
    format: z.literal('paddock-pieces'),
    version: z.literal(1),
    special: z.array(z.string().min(1)).min(1),
    pieces: z.array(z.string().min(1)),
  })
  .strict();

export type TokenizerFile = z.infer<typeof TokenizerFileSchema>;

interface TrieNode {
  next: Map<number, TrieNode>;
  id?: number;
}

/** paddock's piece tokenizer: the harness's Tokenizer contract over a `paddock-pieces` file. */
export class PieceTokenizer implements Tokenizer {
  /** Total number of ids: specials + 256 bytes + pieces. */
  readonly vocabSize: number;
  readonly special: readonly string[];
  readonly pieces: readonly string[];
  private readonly root: TrieNode = { next: new Map() };
  private readonly pieceBytes: Uint8Array[];
  private readonly specialIds = new Map<string, number>();

  constructor(file: TokenizerFile) {
    this.special = [...file.special];
    this.pieces = [...file.pieces];
    this.special.forEach((token, id) => this.specialIds.set(token, id));
    const encoder = new TextEncoder();
    this.pieceBytes = this.pieces.map((piece) => encoder.encode(piece));
    this.pieceBytes.forEach((bytes, index) => {
      let node = this.root;
      for (const byte of bytes) {
        let child = node.next.get(byte);
        if (!child) {
          child = { next: new Map() };
          node.next.set(byte, child);
        }
        node = child;
      }
      // The first of duplicated pieces wins, so that ids stay stable.
      node.id ??= this.special.length + 256 + index;
    });
    this.vocabSize = this.special.length + 256 + this.pieces.length;
  }

  /** Reads a `tokenizer.json`. Throws CONFIG_INVALID naming the file and field. */
  static fromFile(path: string): PieceTokenizer {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${path}: ${describeError(error)}`, {
        cause: error,
        details: { file: path },
      });
    }
    const parsed = TokenizerFileSchema.safeParse(data);
    if (!parsed.success) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${path}: invalid tokenizer:\n${formatZodIssues(parsed.error.issues)}`,
        { details: { file: path } },
      );
    }
    return new PieceTokenizer(parsed.data);
  }

  /** The file form of this tokenizer. */
  toJSON(): TokenizerFile {
    return { format: 'paddock-pieces', version: 1, special: [...this.special], pieces: [...this.pieces] };
  }

  /** The id of a special token; throws CONFIG_INVALID when the vocabulary lacks it. */
  specialId(token: string): number {
    const id = this.specialIds.get(token);
    if (id === undefined)
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `the tokenizer has no special token ${token}`);
    return id;
  }

  /** True when `id` is a special token. */
  isSpecial(id: number): boolean {
    return id >= 0 && id < this.special.length;
  }

  /** Encodes text by greedy longest match over its UTF-8 bytes (specials are never produced). */
  encode(text: string): number[] {
    const bytes = new TextEncoder().encode(text);
    const ids: number[] = [];
    let position = 0;
    while (position < bytes.length) {
      let node: TrieNode | undefined = this.root;
      let bestId = this.special.length + bytes[position]!;
      let bestLength = 1;
      for (let cursor = position; cursor < bytes.length; cursor++) {
        node = node.next.get(bytes[cursor]!);
        if (!node) break;
        if (node.id !== undefined) {
          bestId = node.id;
          bestLength = cursor - position + 1;
        }
      }
      ids.push(bestId);
      position += bestLength;
    }
    return ids;
  }

  /** The bytes of ids (special tokens contribute nothing). */
  bytesOf(ids: readonly number[]): Uint8Array {
    const parts: number[] = [];
    for (const id of ids) {
      if (id < this.special.length) continue;
      if (id < this.special.length + 256) parts.push(id - this.special.length);
      else {
        const piece = this.pieceBytes[id - this.special.length - 256];
        if (piece) parts.push(...piece);
      }
    }
    return Uint8Array.from(parts);
  }

  /** Decodes ids to text; special tokens are dropped, invalid UTF-8 becomes U+FFFD. */
  decode(ids: readonly number[]): string {
    return new TextDecoder('utf-8', { fatal: false }).decode(this.bytesOf(ids));
  }

  /** A readable form of one id, for debugging: specials by name, others decoded. */
  display(id: number): string {
    return this.isSpecial(id) ? (this.special[id] ?? `<${id}>`) : this.decode([id]);
  }
}

/**
 * Splits text into the units vocabularies are built from: words (with their leading
 * space), digit runs (without it, so that a number is the same unit wherever it stands),
 * punctuation runs and spaces.
 */
const PRE_TOKEN = /\s?\p{L}+|\p{N}+|\s?[^\s\p{L}\p{N}]+|\s+/gu;
/** The same, with each digit a unit of its own. */
const PRE_TOKEN_DIGITS = /\s?\p{L}+|\p{N}|\s?[^\s\p{L}\p{N}]+|\s+/gu;

export interface BuildTokenizerOptions {
  /** Most pieces kept besides `forced`. @default 512 */
  maxPieces?: number;
  /** A unit becomes a piece when it occurs at least this often. @default 2 */
  minCount?: number;
  /** Pieces always kept first, in order (e.g. the tool-call markers). */
  forced?: readonly string[];
  /**
   * Make every integer 0 … numbers-1 one piece (as the number tokens of current LLM
   * vocabularies do), so that a number is one token wherever it appears. @default 0
   */
  numbers?: number;
  /** Never make pieces of several digits: every digit is its own token. @default false */
  splitDigits?: boolean;
}

/**
 * Builds a piece vocabulary from sample texts: the most frequent multi-byte units
 * (ties broken by text, so the result is deterministic), after `forced`.
 */
export function buildPieceTokenizer(
  texts: Iterable<string>,
  options: BuildTokenizerOptions = {},
): PieceTokenizer {
  const numbers = Array.from({ length: options.numbers ?? 0 }, (_, i) => String(i)).filter(
    (n) => n.length > 1,
  );
  const forced = [...new Set([...(options.forced ?? []), ...numbers])];
  const counts = new Map<string, number>();
  const encoder = new TextEncoder();
  for (const text of texts) {
    // Forced pieces are units of their own: no learned piece straddles one.
    for (const part of splitOn(text, forced)) {
      for (const match of part.matchAll(options.splitDigits ? PRE_TOKEN_DIGITS : PRE_TOKEN)) {
        const unit = match[0];
        if (encoder.encode(unit).length < 2) continue;
        counts.set(unit, (counts.get(unit) ?? 0) + 1);
      }
    }
  }
  const seen = new Set(forced);
  const ranked = [...counts.entries()]
    .filter(([unit, count]) => count >= (options.minCount ?? 2) && !seen.has(unit))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, options.maxPieces ?? 512)
    .map(([unit]) => unit);
  return new PieceTokenizer({
    format: 'paddock-pieces',
    version: 1,
    special: [...SPECIAL_TOKENS],
    pieces: [...forced, ...ranked],
  });
}

function splitOn(text: string, separators: readonly string[]): string[] {
  let parts = [text];
  for (const separator of separators) parts = parts.flatMap((part) => part.split(separator));
  return parts;
}

/** A byte-level tokenizer: the specials and the 256 bytes, no pieces. */
export function byteTokenizer(): PieceTokenizer {
  return new PieceTokenizer({
    format: 'paddock-pieces',
    version: 1,
    special: [...SPECIAL_TOKENS],
    pieces: [],
  });
}
