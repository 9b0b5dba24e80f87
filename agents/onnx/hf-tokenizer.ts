/**
 * A pretrained model's own tokenizer, read from its Hugging Face folder: the harness's
 * Tokenizer contract over `tokenizer.json` (the `tokenizers` file: model, pre-tokenizer,
 * added tokens…), `tokenizer_config.json` (the named special tokens, the chat template)
 * and, when present, `generation_config.json` (the ids that end generation) and
 * `chat_template.jinja` (where recent `transformers` versions save the template).
 *
 * Encoding and decoding are `@huggingface/tokenizers` (the tokenizer of transformers.js,
 * no dependencies), which reads the same `tokenizer.json` as the Rust `tokenizers` crate.
 *
 * Two encodings, as in `transformers`:
 * - `encode(text)`: the contract's — special tokens are never produced from text (their
 *   spelling is tokenized as ordinary text, as `split_special_tokens=True` does). Added
 *   tokens that are not special (Qwen's `<tool_call>`, `<think>`) are still matched.
 * - `encodeWithSpecials(text)`: `tokenizer(text, add_special_tokens=False)` — every added
 *   token's spelling becomes its id. This is how `apply_chat_template(tokenize=True)`
 *   encodes a rendered template, so chat templates use it.
 * Neither adds a BOS/EOS (the post-processor's `add_special_tokens`): a chat template
 * writes `bos_token` itself, and adding another would double it.
 *
 * Decoding keeps the bytes as they are: `clean_up_tokenization_spaces` is not applied
 * (unless asked), since it rewrites text (` ,` → `,`) that a tool call's JSON may contain.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as LibraryTokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError, formatZodIssues } from '../../harness/index.ts';
import type { Tokenizer } from '../../harness/index.ts';

/**
 * What this uses of `@huggingface/tokenizers`' Tokenizer. Declared here because the
 * package's own declarations do not resolve under `moduleResolution: NodeNext` (their
 * relative imports lack extensions), which leaves the class typed `any`.
 */
interface HfTokenizerImpl {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(
    ids: number[],
    options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean },
  ): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}
const HfTokenizerImpl = LibraryTokenizer as new (tokenizer: object, config: object) => HfTokenizerImpl;

/** The files of a Hugging Face tokenizer folder that this reads. */
export const HF_TOKENIZER_FILES = {
  tokenizer: 'tokenizer.json',
  config: 'tokenizer_config.json',
  generationConfig: 'generation_config.json',
  chatTemplate: 'chat_template.jinja',
} as const;

const AddedTokenSchema = z.looseObject({
  id: z.number().int().nonnegative(),
  content: z.string().min(1),
  special: z.boolean().optional(),
});

/** What this needs of `tokenizer.json` (the rest is the tokenizer library's business). */
export const HfTokenizerJsonSchema = z.looseObject({
  model: z.looseObject({ type: z.string().optional() }),
  added_tokens: z.array(AddedTokenSchema).default([]),
});

/** A special token in `tokenizer_config.json`: its spelling, or an `AddedToken` object. */
const ConfigTokenSchema = z.union([z.string(), z.looseObject({ content: z.string() }), z.null()]).optional();

const NamedTemplateSchema = z.looseObject({ name: z.string(), template: z.string() });

/** What this needs of `tokenizer_config.json`. */
export const HfTokenizerConfigSchema = z.looseObject({
  bos_token: ConfigTokenSchema,
  eos_token: ConfigTokenSchema,
  pad_token: ConfigTokenSchema,
  unk_token: ConfigTokenSchema,
  additional_special_tokens: z
    .array(z.union([z.string(), z.looseObject({ content: z.string() })]))
    .optional(),
  /** One template, or several by name (`default`, `tool_use`). */
  chat_template: z.union([z.string(), z.array(NamedTemplateSchema)]).nullish(),
  clean_up_tokenization_spaces: z.boolean().optional(),
});

const TokenIdsSchema = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);

/** What this needs of `generation_config.json`. */
export const HfGenerationConfigSchema = z.looseObject({
  bos_token_id: z.number().int().nonnegative().nullish(),
  eos_token_id: TokenIdsSchema.nullish(),
  pad_token_id: z.number().int().nonnegative().nullish(),
});

/** The contents of a tokenizer folder, as parsed JSON values (and the template's text). */
export interface HfTokenizerFiles {
  /** `tokenizer.json`. */
  tokenizer: unknown;
  /** `tokenizer_config.json`. */
  config: unknown;
  /** `generation_config.json`, when the folder has one. */
  generationConfig?: unknown;
  /** `chat_template.jinja`, when the folder has one (it wins over the config's `chat_template`). */
  chatTemplate?: string;
  /** Where the files are, for error messages. @default `(in memory)` */
  source?: string;
}

export interface HfTokenizerOptions {
  /**
   * Apply `clean_up_tokenization_spaces` when decoding, as the config says. Off by default:
   * it rewrites the decoded text (` ,` → `,`, ` 's` → `'s`).
   * @default false
   */
  cleanUpSpaces?: boolean;
}

/** The named special tokens of a tokenizer (their spellings), as chat templates get them. */
export interface HfSpecialTokens {
  bos: string | null;
  eos: string | null;
  pad: string | null;
  unk: string | null;
}

type ParsedJson = z.infer<typeof HfTokenizerJsonSchema>;
type ParsedConfig = z.infer<typeof HfTokenizerConfigSchema>;
type ParsedGenerationConfig = z.infer<typeof HfGenerationConfigSchema>;

function invalid(message: string, file: string, cause?: unknown): PaddockError {
  return new PaddockError(ERROR_CODES.CONFIG_INVALID, message, {
    ...(cause === undefined ? {} : { cause }),
    details: { file },
  });
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalid(`${path}: cannot read: ${describeError(error)}`, path, error);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalid(`${path}: invalid JSON: ${describeError(error)}`, path, error);
  }
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, file: string, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw invalid(`${file}: invalid ${what}:\n${formatZodIssues(parsed.error.issues)}`, file);
  }
  return parsed.data;
}

function tokenSpelling(value: ParsedConfig['bos_token']): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? value : value.content;
}

/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json): the harness's
 * Tokenizer contract. See the module comment for its two encodings.
 */
export class HfTokenizer implements Tokenizer {
  /** One more than the largest id of the vocabulary and the added tokens. */
  readonly vocabSize: number;
  /** The named special tokens' spellings (from tokenizer_config.json). */
  readonly specialTokens: HfSpecialTokens;
  /** The BOS id: the config's `bos_token`, else generation_config.json's `bos_token_id`. */
  readonly bosId: number | null;
  /**
   * The ids that end generation: the config's `eos_token`, then generation_config.json's
   * `eos_token_id` (one or a list), without repeats.
   */
  readonly eosIds: readonly number[];
  /** The padding id: the config's `pad_token`, else generation_config.json's `pad_token_id`. */
  readonly padId: number | null;
  /** The chat template's Jinja source (chat_template.jinja, else the config's `chat_template`), if any. */
  readonly chatTemplate: string | null;
  /** Where `chatTemplate` comes from, for messages (`…/chat_template.jinja`, `…/tokenizer_config.json: chat_template`). */
  readonly chatTemplateOrigin: string;
  /** The config's named chat templates (`default`, `tool_use`…), when it lists several. */
  readonly namedChatTemplates: ReadonlyMap<string, string>;
  /** Where the files came from (a folder), for messages. */
  readonly source: string;

  private readonly json: ParsedJson;
  private readonly config: ParsedConfig;
  private readonly full: HfTokenizerImpl;
  private plainImpl: HfTokenizerImpl | undefined;
  private readonly specialIds = new Set<number>();
  private readonly addedIds = new Map<string, number>();
  private readonly cleanUpSpaces: boolean;

  /** @throws PaddockError CONFIG_INVALID naming the file and field. */
  constructor(files: HfTokenizerFiles, options: HfTokenizerOptions = {}) {
    this.source = files.source ?? '(in memory)';
    const file = (name: string) => (files.source ? join(files.source, name) : name);
    const tokenizerFile = file(HF_TOKENIZER_FILES.tokenizer);
    const configFile = file(HF_TOKENIZER_FILES.config);
    const generationFile = file(HF_TOKENIZER_FILES.generationConfig);
    this.json = parseWith(HfTokenizerJsonSchema, files.tokenizer, tokenizerFile, 'tokenizer');
    this.config = parseWith(HfTokenizerConfigSchema, files.config, configFile, 'tokenizer config');
    const generation: ParsedGenerationConfig =
      files.generationConfig === undefined
        ? {}
        : parseWith(HfGenerationConfigSchema, files.generationConfig, generationFile, 'generation config');

    try {
      this.full = new HfTokenizerImpl(this.json, this.config);
    } catch (error) {
      throw invalid(`${tokenizerFile}: unsupported tokenizer: ${describeError(error)}`, tokenizerFile, error);
    }
    for (const token of this.json.added_tokens) {
      this.addedIds.set(token.content, token.id);
      if (token.special) this.specialIds.add(token.id);
    }
    let maxId = -1;
    for (const id of this.full.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    this.specialTokens = {
      bos: tokenSpelling(this.config.bos_token),
      eos: tokenSpelling(this.config.eos_token),
      pad: tokenSpelling(this.config.pad_token),
      unk: tokenSpelling(this.config.unk_token),
    };
    const idOf = (field: keyof HfSpecialTokens): number | null => {
      const spelling = this.specialTokens[field];
      if (spelling === null) return null;
      const id = this.tokenToId(spelling);
      if (id === undefined) {
        throw invalid(
          `${configFile}: ${field}_token ${JSON.stringify(spelling)} is not in the vocabulary of ${tokenizerFile}`,
          configFile,
        );
      }
      return id;
    };
    const checkId = (field: string, id: number): number => {
      if (id >= this.vocabSize) {
        throw invalid(
          `${generationFile}: ${field} ${id} is outside the vocabulary (${this.vocabSize} ids)`,
          generationFile,
        );
      }
      return id;
    };
    const generationEos = generation.eos_token_id ?? [];
    this.bosId =
      idOf('bos') ??
      (generation.bos_token_id == null ? null : checkId('bos_token_id', generation.bos_token_id));
    this.padId =
      idOf('pad') ??
      (generation.pad_token_id == null ? null : checkId('pad_token_id', generation.pad_token_id));
    const eos = idOf('eos');
    this.eosIds = Object.freeze([
      ...new Set([
        ...(eos === null ? [] : [eos]),
        ...(Array.isArray(generationEos) ? generationEos : [generationEos]).map((id) =>
          checkId('eos_token_id', id),
        ),
      ]),
    ]);

    const named = new Map<string, string>();
    const configured = this.config.chat_template;
    if (Array.isArray(configured)) for (const entry of configured) named.set(entry.name, entry.template);
    this.namedChatTemplates = named;
    this.chatTemplate =
      files.chatTemplate ??
      (typeof configured === 'string' ? configured : (named.get('default') ?? null)) ??
      null;
    this.chatTemplateOrigin =
      files.chatTemplate === undefined
        ? `${configFile}: chat_template`
        : file(HF_TOKENIZER_FILES.chatTemplate);
    this.cleanUpSpaces = options.cleanUpSpaces === true && this.config.clean_up_tokenization_spaces !== false;
  }

  /**
   * Reads a Hugging Face folder: tokenizer.json and tokenizer_config.json (required),
   * generation_config.json and chat_template.jinja (when present).
   * @throws PaddockError CONFIG_INVALID naming the file and field.
   */
  static fromDir(dir: string, options: HfTokenizerOptions = {}): HfTokenizer {
    const path = (name: string) => join(dir, name);
    const generation = path(HF_TOKENIZER_FILES.generationConfig);
    const template = path(HF_TOKENIZER_FILES.chatTemplate);
    let chatTemplate: string | undefined;
    if (existsSync(template)) {
      try {
        chatTemplate = readFileSync(template, 'utf8');
      } catch (error) {
        throw invalid(`${template}: cannot read: ${describeError(error)}`, template, error);
      }
    }
    return new HfTokenizer(
      {
        tokenizer: readJson(path(HF_TOKENIZER_FILES.tokenizer)),
        config: readJson(path(HF_TOKENIZER_FILES.config)),
        ...(existsSync(generation) ? { generationConfig: readJson(generation) } : {}),
        ...(chatTemplate === undefined ? {} : { chatTemplate }),
        source: dir,
      },
      options,
    );
  }

  /**
   * The same tokenizer without its special added tokens: their spellings then go through
   * the normalizer, pre-tokenizer and model like any text (`split_special_tokens=True`).
   * Built on first use (it costs a second copy of the model).
   */
  private get plain(): HfTokenizerImpl {
    this.plainImpl ??= new HfTokenizerImpl(
      { ...this.json, added_tokens: this.json.added_tokens.filter((token) => !token.special) },
      { ...this.config, additional_special_tokens: [] },
    );
    return this.plainImpl;
  }

  /** Text → ids; special tokens' spellings are ordinary text. No BOS/EOS is added. */
  encode(text: string): number[] {
    if (text === '') return [];
    return this.plain.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Text → ids, every added token's spelling (special or not) becoming its id, as
   * `transformers` encodes a rendered chat template (`add_special_tokens=False`).
   */
  encodeWithSpecials(text: string): number[] {
    if (text === '') return [];
    return this.full.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Ids → text, special tokens contributing nothing; invalid UTF-8 becomes U+FFFD. Ids
   * outside the vocabulary (a model's padding rows) contribute nothing either.
   */
  decode(ids: readonly number[]): string {
    return this.decodeIds(
      ids.filter((id) => !this.specialIds.has(id)),
      true,
    );
  }

  /** Ids → text, special tokens included (spelled out). */
  decodeWithSpecials(ids: readonly number[]): string {
    return this.decodeIds(ids, false);
  }

  private decodeIds(ids: readonly number[], skipSpecial: boolean): string {
    const known = ids.filter(
      (id) => Number.isInteger(id) && id >= 0 && this.full.id_to_token(id) !== undefined,
    );
    if (known.length === 0) return '';
    return this.full.decode(known, {
      skip_special_tokens: skipSpecial,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  /** True when `id` is an added token marked `special` in tokenizer.json. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * The id of an added token (special or not: `<|im_end|>`, `<tool_call>`).
   * @throws PaddockError CONFIG_INVALID when the tokenizer has no such added token.
   */
  specialId(token: string): number {
    const id = this.addedIds.get(token);
    if (id === undefined) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${join(this.source, HF_TOKENIZER_FILES.tokenizer)}: added_tokens has no ${token}`,
        { details: { file: join(this.source, HF_TOKENIZER_FILES.tokenizer), token } },
      );
    }
    return id;
  }

  /** True when `token` is an added token (special or not). */
  hasAddedToken(token: string): boolean {
    return this.addedIds.has(token);
  }

  /** The spellings of the added tokens, in id order. */
  get addedTokens(): readonly string[] {
    return [...this.addedIds.entries()].sort((a, b) => a[1] - b[1]).map(([token]) => token);
  }

  /** The id of a vocabulary entry or added token, by its spelling in tokenizer.json. */
  tokenToId(token: string): number | undefined {
    return this.addedIds.get(token) ?? this.full.token_to_id(token);
  }

  /** The spelling of an id in tokenizer.json (byte-level pieces as stored: `Ġworld`). */
  idToToken(id: number): string | undefined {
    return this.full.id_to_token(id);
  }

  /** The tokenizer's file form: the `tokenizer.json` it was read from. */
  toJSON(): unknown {
    return this.json;
  }
}
