/**
 * An ONNX policy folder, loaded in-process with onnxruntime-node:
 *
 * - `model.onnx` — a causal LM. Inputs `input_ids` (int64 [batch, seq]) and, when the
 *   graph has a KV cache, `past_key_<i>` / `past_value_<i>` (float32 [batch, heads,
 *   past_seq, head_dim], `past_seq` may be 0); outputs `logits` (float32 [batch, seq,
 *   vocab]) and `present_key_<i>` / `present_value_<i>` (past + new positions). Without a
 *   cache the graph takes `input_ids` only and every step recomputes the prefix. A graph
 *   may also take `attention_mask` (int64 [batch, past_seq + seq], 1: a real position, 0:
 *   padding) and `position_ids` (int64 [batch, seq]) — the trainer's Hugging Face exports
 *   do; they are fed whenever the graph declares them, and they are what batched decoding
 *   (`batchDecode`) needs.
 * - `tokenizer.json` — see tokenizer.ts; or, with `chat.template: "hf"`, a Hugging Face
 *   tokenizer folder's files (`tokenizer.json`, `tokenizer_config.json`, and
 *   `generation_config.json` and `chat_template.jinja` when the model has them), read by
 *   HfTokenizer, and the model's own chat template (HfChatTemplate).
 * - `config.json` — see PolicyConfigSchema: vocabulary size, context length, cache shape,
 *   chat options, default sampling, and what the trainer wrote (step, model shape).
 *
 * `onnxPolicyFormat` is this folder as the harness's PolicyFormat (harness/policy.ts): a
 * trainer's exporter writes `model.onnx`, `writeOnnxPolicyFolder` adds the other two files,
 * and `OnnxPolicy.load` reads the folder back. `hfOnnxPolicyFormat(source)` is the same
 * folder for a model trained from the Hugging Face folder `source`: its tokenizer files are
 * copied from there.
 *
 * Batched decoding (`batchDecode`, `setBatching`): single-token `extend` calls of different
 * states pending at the same moment (concurrent episodes) are coalesced into one
 * onnxruntime call: their caches are left-padded to the longest (attention_mask 0 on the
 * pads, position_ids each state's own position), and each state gets back its logits row
 * and its own cache with the padding cut off. Results equal one-by-one decoding to float
 * rounding (~1e-6), not bit for bit, so a sample can differ where a draw sits on a boundary:
 * batched decoding is not bit-reproducible across batch compositions, hence opt-in. Only for
 * graphs with a KV cache, `attention_mask` and `position_ids`; other graphs decode alone.
 */
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError, formatZodIssues } from '../../harness/index.ts';
import type {
  ChatTemplate,
  LoadedPolicy,
  PolicyFolderContents,
  PolicyFormat,
  Tokenizer,
} from '../../harness/index.ts';
import { PADDOCK_TEMPLATE, PaddockChatTemplate } from './chat.ts';
import { HfChatTemplate } from './hf-chat-template.ts';
import { HF_TOKENIZER_FILES, HfTokenizer } from './hf-tokenizer.ts';
import { logSoftmax } from './sampler.ts';
import { PieceTokenizer, TokenizerFileSchema } from './tokenizer.ts';

/** The files of a policy folder. */
export const POLICY_FILES = Object.freeze({
  model: 'model.onnx',
  config: 'config.json',
  tokenizer: 'tokenizer.json',
});

export const PolicyConfigSchema = z
  .object({
    format: z.literal('paddock-onnx-policy'),
    version: z.literal(1),
    /** Rows of the model's output (≥ the tokenizer's vocabulary). */
    vocab_size: z.number().int().positive(),
    /** Longest context the model takes, in tokens. */
    max_len: z.number().int().positive(),
    /** Shape of the KV cache; null when the graph has none. */
    kv_cache: z
      .object({
        layers: z.number().int().positive(),
        heads: z.number().int().positive(),
        head_dim: z.number().int().positive(),
      })
      .strict()
      .nullable(),
    chat: z
      .discriminatedUnion('template', [
        z
          .object({ template: z.literal('paddock-v1'), tool_descriptions: z.boolean().default(true) })
          .strict(),
        /** The model's own tokenizer and chat template, from the folder's Hugging Face files. */
        z
          .object({
            template: z.literal('hf'),
            /** The template's `enable_thinking` (Qwen3), passed only when set. */
            enable_thinking: z.boolean().optional(),
          })
          .strict(),
      ])
      .default({ template: 'paddock-v1', tool_descriptions: true }),
    /** Default sampling of agents made from this folder. */
    sampling: z
      .object({
        temperature: z.number().min(0).optional(),
        top_p: z.number().gt(0).max(1).optional(),
        max_new_tokens: z.number().int().positive().optional(),
      })
      .strict()
      .default({}),
    /** What produced the folder (the trainer writes its model shape and step). */
    model: z.record(z.string(), z.unknown()).optional(),
    step: z.number().int().min(0).optional(),
  })
  .strict();

export type PolicyConfig = z.infer<typeof PolicyConfigSchema>;

/** Where a policy's forward pass has got to in one sequence. */
export interface PolicyState {
  /** Ids already fed through the model, in order. */
  readonly ids: number[];
  /** The KV cache after `ids` (KV graphs only). */
  kv?: ort.Tensor[];
}

export interface LoadPolicyOptions {
  /** Threads onnxruntime uses inside one call. @default 1 */
  intraOpThreads?: number;
  /**
   * Coalesce the single-token `extend` calls of different states pending at the same
   * moment into one onnxruntime call (see setBatching). @default false
   */
  batchDecode?: boolean;
  /** Most states in one batched call. @default 64 */
  maxBatch?: number;
}

/** A single-token `extend` waiting for the next batched call. */
interface PendingDecode {
  state: PolicyState;
  id: number;
  resolve: (logits: Float32Array) => void;
  reject: (error: unknown) => void;
}

export class OnnxPolicy implements LoadedPolicy {
  private closed = false;
  /** Whether the graph takes `attention_mask` and `position_ids`. */
  private readonly masked: boolean;
  private batching = false;
  private maxBatch = 64;
  private pending: PendingDecode[] = [];
  private flushScheduled = false;
  /** Batched calls made and states decoded in them (for tests and benchmarks). */
  readonly batchStats = { calls: 0, decoded: 0 };

  private constructor(
    /** The folder it was loaded from. */
    readonly dir: string,
    readonly config: PolicyConfig,
    readonly tokenizer: PieceTokenizer | HfTokenizer,
    private readonly session: ort.InferenceSession,
  ) {
    this.masked =
      session.inputNames.includes('attention_mask') && session.inputNames.includes('position_ids');
  }

  /** Whether batched decoding can run on this graph (a KV cache, attention_mask, position_ids). */
  get canBatch(): boolean {
    return this.masked && this.config.kv_cache !== null;
  }

  /** Whether batched decoding is on (asked for, and the graph can). */
  get batchDecode(): boolean {
    return this.batching && this.canBatch;
  }

  /**
   * Turns batched decoding on or off: while on, single-token `extend` calls of different
   * states pending at the same moment run as one onnxruntime call (of at most `maxBatch`
   * states), flushed once the current turn of the event loop has queued its calls. A graph
   * without `attention_mask` / `position_ids` or without a KV cache keeps decoding alone.
   */
  setBatching(on: boolean, maxBatch = this.maxBatch): void {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `maxBatch must be a positive integer, got ${maxBatch}`,
      );
    }
    this.batching = on;
    this.maxBatch = maxBatch;
  }

  /**
   * The folder's chat template over its tokenizer: paddock-v1, or (`chat.template: "hf"`)
   * the model's own Hugging Face template.
   */
  chatTemplate(): ChatTemplate {
    const chat = this.config.chat;
    if (chat.template === 'hf') {
      return new HfChatTemplate(
        this.tokenizer as HfTokenizer,
        chat.enable_thinking === undefined ? {} : { enableThinking: chat.enable_thinking },
      );
    }
    return new PaddockChatTemplate(this.tokenizer, {
      toolDescriptions: chat.tool_descriptions,
    });
  }

  /**
   * Loads a policy folder. Throws CONFIG_INVALID when a file is missing or invalid (naming
   * the file and field) or when the tokenizer does not fit the model.
   */
  static async load(dir: string, options: LoadPolicyOptions = {}): Promise<OnnxPolicy> {
    const configPath = join(dir, POLICY_FILES.config);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (error) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${configPath}: ${describeError(error)}`, {
        cause: error,
        details: { file: configPath },
      });
    }
    const parsed = PolicyConfigSchema.safeParse(raw);
    if (!parsed.success) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${configPath}: invalid policy config:\n${formatZodIssues(parsed.error.issues)}`,
        { details: { file: configPath } },
      );
    }
    const tokenizer =
      parsed.data.chat.template === 'hf'
        ? HfTokenizer.fromDir(dir)
        : PieceTokenizer.fromFile(join(dir, POLICY_FILES.tokenizer));
    if (tokenizer.vocabSize > parsed.data.vocab_size) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${dir}: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${parsed.data.vocab_size}`,
      );
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(join(dir, POLICY_FILES.model), {
        intraOpNumThreads: options.intraOpThreads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${join(dir, POLICY_FILES.model)}: cannot load: ${describeError(error)}`,
        { cause: error, details: { file: join(dir, POLICY_FILES.model) } },
      );
    }
    const policy = new OnnxPolicy(dir, parsed.data, tokenizer, session);
    policy.checkGraph();
    if (options.batchDecode) policy.setBatching(true, options.maxBatch);
    return policy;
  }

  private checkGraph(): void {
    const kv = this.config.kv_cache;
    const expected = ['input_ids'];
    if (kv) for (let i = 0; i < kv.layers; i++) expected.push(`past_key_${i}`, `past_value_${i}`);
    const missing = expected.filter((name) => !this.session.inputNames.includes(name));
    if (missing.length > 0 || !this.session.outputNames.includes('logits')) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${this.dir}: model.onnx does not match config.json (missing ${[...missing, 'logits'].join(', ')})`,
      );
    }
  }

  /** Longest context, in tokens. */
  get maxLen(): number {
    return this.config.max_len;
  }

  /** A fresh state (nothing fed yet). */
  newState(): PolicyState {
    return { ids: [] };
  }

  /**
   * Feeds `ids` after what `state` holds, updates `state`, and returns the logits of the
   * last position (`vocab_size` floats). Throws MODEL_CALL_FAILED past `maxLen` or when
   * onnxruntime fails.
   */
  async extend(state: PolicyState, ids: readonly number[]): Promise<Float32Array> {
    if (this.closed)
      throw new PaddockError(ERROR_CODES.MODEL_CALL_FAILED, `the policy ${this.dir} is closed`);
    if (ids.length === 0)
      throw new PaddockError(ERROR_CODES.MODEL_CALL_FAILED, 'extend() needs at least one id');
    if (state.ids.length + ids.length > this.maxLen) {
      throw new PaddockError(
        ERROR_CODES.MODEL_CALL_FAILED,
        `context of ${state.ids.length + ids.length} tokens exceeds the policy's ${this.maxLen}`,
      );
    }
    if (ids.length === 1 && this.batchDecode) return this.enqueue(state, ids[0]!);
    const kv = this.config.kv_cache;
    const fed = kv ? ids : [...state.ids, ...ids];
    const past = kv ? state.ids.length : 0;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(fed, (id) => BigInt(id)),
        [1, fed.length],
      ),
      ...this.maskFeeds(past, fed.length),
    };
    if (kv) {
      const empty = (): ort.Tensor =>
        new ort.Tensor('float32', new Float32Array(0), [1, kv.heads, 0, kv.head_dim]);
      for (let i = 0; i < kv.layers; i++) {
        feeds[`past_key_${i}`] = state.kv?.[2 * i] ?? empty();
        feeds[`past_value_${i}`] = state.kv?.[2 * i + 1] ?? empty();
      }
    }
    const outputs = await this.run(feeds);
    const logits = outputs.logits!.data as Float32Array;
    const vocab = this.config.vocab_size;
    const last = logits.slice((fed.length - 1) * vocab, fed.length * vocab);
    if (kv) {
      const present: ort.Tensor[] = [];
      for (let i = 0; i < kv.layers; i++)
        present.push(outputs[`present_key_${i}`]!, outputs[`present_value_${i}`]!);
      state.kv = present;
    }
    state.ids.push(...ids);
    return last;
  }

  /** `attention_mask` (all ones) and `position_ids` for one sequence, when the graph takes them. */
  private maskFeeds(past: number, seq: number): Record<string, ort.Tensor> {
    if (!this.masked) return {};
    return {
      attention_mask: new ort.Tensor('int64', new BigInt64Array(past + seq).fill(1n), [1, past + seq]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: seq }, (_, t) => BigInt(past + t)),
        [1, seq],
      ),
    };
  }

  private async run(feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
    try {
      return await this.session.run(feeds);
    } catch (error) {
      throw new PaddockError(ERROR_CODES.MODEL_CALL_FAILED, `onnxruntime failed: ${describeError(error)}`, {
        cause: error,
      });
    }
  }

  /** Queues a single-token extend for the next batched call. */
  private enqueue(state: PolicyState, id: number): Promise<Float32Array> {
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.push({ state, id, resolve, reject });
      if (this.pending.length >= this.maxBatch) {
        this.flush();
      } else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Runs the queued single-token extends (at most maxBatch per call). */
  private flush(): void {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.decodeBatch(batch).catch((error: unknown) => {
        for (const request of batch) request.reject(error);
      });
    }
  }

  /**
   * One onnxruntime call for `batch`: each state's cache left-padded to the longest
   * (attention_mask 0 on the pads), position_ids its own past length; then each state gets
   * its logits row and its own present cache, the padding cut off.
   */
  private async decodeBatch(batch: PendingDecode[]): Promise<void> {
    if (this.closed)
      throw new PaddockError(ERROR_CODES.MODEL_CALL_FAILED, `the policy ${this.dir} is closed`);
    const kv = this.config.kv_cache!;
    const { heads, head_dim: dim, layers } = kv;
    const rows = batch.length;
    const pasts = batch.map((request) => request.state.ids.length);
    const width = Math.max(...pasts);
    const mask = new BigInt64Array(rows * (width + 1));
    for (let b = 0; b < rows; b++) mask.fill(1n, b * (width + 1) + width - pasts[b]!, (b + 1) * (width + 1));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(batch, (request) => BigInt(request.id)),
        [rows, 1],
      ),
      attention_mask: new ort.Tensor('int64', mask, [rows, width + 1]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(pasts, (past) => BigInt(past)),
        [rows, 1],
      ),
    };
    for (let j = 0; j < 2 * layers; j++) {
      const padded = new Float32Array(rows * heads * width * dim);
      for (let b = 0; b < rows; b++) {
        const past = pasts[b]!;
        if (past === 0) continue;
        const own = batch[b]!.state.kv![j]!.data as Float32Array;
        for (let h = 0; h < heads; h++) {
          padded.set(
            own.subarray(h * past * dim, (h + 1) * past * dim),
            ((b * heads + h) * width + width - past) * dim,
          );
        }
      }
      feeds[`past_${j % 2 === 0 ? 'key' : 'value'}_${j >> 1}`] = new ort.Tensor('float32', padded, [
        rows,
        heads,
        width,
        dim,
      ]);
    }
    const outputs = await this.run(feeds);
    this.batchStats.calls += 1;
    this.batchStats.decoded += rows;
    const logits = outputs.logits!.data as Float32Array;
    const vocab = this.config.vocab_size;
    const presents: Float32Array[] = [];
    for (let i = 0; i < layers; i++) {
      presents.push(
        outputs[`present_key_${i}`]!.data as Float32Array,
        outputs[`present_value_${i}`]!.data as Float32Array,
      );
    }
    const total = width + 1;
    for (let b = 0; b < rows; b++) {
      const { state, id, resolve } = batch[b]!;
      const length = pasts[b]! + 1;
      state.kv = presents.map((present) => {
        const own = new Float32Array(heads * length * dim);
        for (let h = 0; h < heads; h++) {
          const from = ((b * heads + h) * total + total - length) * dim;
          own.set(present.subarray(from, from + length * dim), h * length * dim);
        }
        return new ort.Tensor('float32', own, [1, heads, length, dim]);
      });
      state.ids.push(id);
      resolve(logits.slice(b * vocab, (b + 1) * vocab));
    }
  }

  /**
   * Log-probabilities of `ids[1..]` given their prefixes, under `softmax(logits /
   * temperature)`: one forward pass over the whole sequence (for checking that the ONNX
   * graph and the trainer agree). Returns `ids.length - 1` values.
   */
  async sequenceLogprobs(ids: readonly number[], temperature = 1): Promise<number[]> {
    if (ids.length < 2) return [];
    const kv = this.config.kv_cache;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(ids, (id) => BigInt(id)),
        [1, ids.length],
      ),
      ...this.maskFeeds(0, ids.length),
    };
    if (kv) {
      for (let i = 0; i < kv.layers; i++) {
        feeds[`past_key_${i}`] = new ort.Tensor('float32', new Float32Array(0), [
          1,
          kv.heads,
          0,
          kv.head_dim,
        ]);
        feeds[`past_value_${i}`] = new ort.Tensor('float32', new Float32Array(0), [
          1,
          kv.heads,
          0,
          kv.head_dim,
        ]);
      }
    }
    const outputs = await this.session.run(feeds);
    const logits = outputs.logits!.data as Float32Array;
    const vocab = this.config.vocab_size;
    const result: number[] = [];
    for (let t = 0; t + 1 < ids.length; t++) {
      result.push(logSoftmax(logits, t * vocab, vocab, temperature)[ids[t + 1]!]!);
    }
    return result;
  }

  /** Releases the onnxruntime session. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

/** Loads the policy folder `dir` (see OnnxPolicy.load). */
export function loadOnnxPolicy(dir: string, options: LoadPolicyOptions = {}): Promise<OnnxPolicy> {
  return OnnxPolicy.load(dir, options);
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

/**
 * Writes a policy folder's `config.json` and `tokenizer.json` beside the `model.onnx` an
 * exporter wrote in `dir` (each file written whole, then renamed into place). Throws
 * CONFIG_INVALID when the contents do not make a valid config or the tokenizer is not a
 * paddock-pieces one.
 */
export function writeOnnxPolicyFolder(dir: string, contents: PolicyFolderContents): void {
  const config = policyConfig(dir, contents, {
    template: PADDOCK_TEMPLATE,
    tool_descriptions: contents.chat?.toolDescriptions ?? true,
  });
  const tokenizer = TokenizerFileSchema.safeParse(contents.tokenizer.toJSON());
  if (!tokenizer.success) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${dir}: an ONNX policy folder needs a paddock-pieces tokenizer:\n${formatZodIssues(tokenizer.error.issues)}`,
    );
  }
  writeJsonAtomic(join(dir, POLICY_FILES.config), config);
  writeJsonAtomic(join(dir, POLICY_FILES.tokenizer), tokenizer.data);
}

/** A policy folder's config.json for `contents`, with `chat`. */
function policyConfig(
  dir: string,
  contents: PolicyFolderContents,
  chat: z.input<typeof PolicyConfigSchema>['chat'],
): PolicyConfig {
  const { model, sampling } = contents;
  const config = PolicyConfigSchema.safeParse({
    format: 'paddock-onnx-policy',
    version: 1,
    vocab_size: model.vocabSize,
    max_len: model.maxLen,
    kv_cache: model.kvCache && {
      layers: model.kvCache.layers,
      heads: model.kvCache.heads,
      head_dim: model.kvCache.headDim,
    },
    chat,
    sampling: {
      ...(sampling.temperature === undefined ? {} : { temperature: sampling.temperature }),
      ...(sampling.topP === undefined ? {} : { top_p: sampling.topP }),
      ...(sampling.maxNewTokens === undefined ? {} : { max_new_tokens: sampling.maxNewTokens }),
    },
    ...(model.details ? { model: model.details } : {}),
    ...(contents.step === undefined ? {} : { step: contents.step }),
  } satisfies z.input<typeof PolicyConfigSchema>);
  if (!config.success) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${dir}: invalid policy config:\n${formatZodIssues(config.error.issues)}`,
    );
  }
  return config.data;
}

/** The Hugging Face tokenizer files an `hf` policy folder carries (those the source has). */
export const HF_POLICY_TOKENIZER_FILES: readonly string[] = [
  HF_TOKENIZER_FILES.tokenizer,
  HF_TOKENIZER_FILES.config,
  HF_TOKENIZER_FILES.generationConfig,
  HF_TOKENIZER_FILES.chatTemplate,
  'special_tokens_map.json',
];

/**
 * Writes an `hf` policy folder's `config.json` (`chat.template: "hf"`) beside its
 * `model.onnx`, and copies the tokenizer files of the Hugging Face folder `source` (each
 * copied to a temporary name, then renamed). The contents' tokenizer must be that folder's
 * (an HfTokenizer of the same vocabulary). Throws CONFIG_INVALID otherwise, or when
 * `source` has no tokenizer.json / tokenizer_config.json.
 */
export function writeHfOnnxPolicyFolder(
  dir: string,
  source: string,
  contents: PolicyFolderContents,
  options: { enableThinking?: boolean } = {},
): void {
  if (!(contents.tokenizer instanceof HfTokenizer)) {
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `${dir}: a Hugging Face policy folder needs the model's own tokenizer (an HfTokenizer)`,
    );
  }
  for (const name of [HF_TOKENIZER_FILES.tokenizer, HF_TOKENIZER_FILES.config]) {
    if (!existsSync(join(source, name))) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${source} has no ${name}`, {
        details: { file: join(source, name) },
      });
    }
  }
  const config = policyConfig(dir, contents, {
    template: 'hf',
    ...(options.enableThinking === undefined ? {} : { enable_thinking: options.enableThinking }),
  });
  for (const name of HF_POLICY_TOKENIZER_FILES) {
    const from = join(source, name);
    if (!existsSync(from)) continue;
    const tmp = join(dir, `${name}.tmp-${process.pid}`);
    copyFileSync(from, tmp);
    renameSync(tmp, join(dir, name));
  }
  writeJsonAtomic(join(dir, POLICY_FILES.config), config);
}

/**
 * An ONNX policy folder for a model trained from the Hugging Face folder `source`, as the
 * harness's PolicyFormat: `model.onnx` from the exporter, `config.json` with
 * `chat.template: "hf"`, the source's tokenizer files; read back with the model's own
 * tokenizer (HfTokenizer) and chat template (HfChatTemplate).
 */
export function hfOnnxPolicyFormat(
  source: string,
  options: { enableThinking?: boolean } = {},
): PolicyFormat<OnnxPolicy> {
  return Object.freeze<PolicyFormat<OnnxPolicy>>({
    name: 'paddock-onnx-policy',
    weightsFile: POLICY_FILES.model,
    write: (dir, contents) => writeHfOnnxPolicyFolder(dir, source, contents, options),
    load: (dir: string) => OnnxPolicy.load(dir),
    readTokenizer: (path: string): Tokenizer => HfTokenizer.fromDir(dirname(path)),
    chatTemplate: (tokenizer) => {
      if (!(tokenizer instanceof HfTokenizer)) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          "a Hugging Face chat template needs the model's own tokenizer (an HfTokenizer)",
        );
      }
      return new HfChatTemplate(
        tokenizer,
        options.enableThinking === undefined ? {} : { enableThinking: options.enableThinking },
      );
    },
  });
}

/**
 * paddock's ONNX policy folders as the harness's PolicyFormat: `model.onnx` from the
 * exporter, `config.json` and `tokenizer.json` from `write`, the paddock-v1 template.
 */
export const onnxPolicyFormat: PolicyFormat<OnnxPolicy> = Object.freeze<PolicyFormat<OnnxPolicy>>({
  name: 'paddock-onnx-policy',
  weightsFile: POLICY_FILES.model,
  write: writeOnnxPolicyFolder,
  load: (dir: string) => OnnxPolicy.load(dir),
  readTokenizer: (path: string) => PieceTokenizer.fromFile(path),
  chatTemplate: (tokenizer, chat) => new PaddockChatTemplate(tokenizer, chat),
});
