/**
 * ONNX reward and progress models, run in-process on the host with onnxruntime-node (CPU).
 * Nothing runs in the sandbox: the agent can influence a model's score only through the
 * text it is shown.
 *
 * A model is a folder holding `model.onnx` and `spec.json` (or an `.onnx` file with
 * `<name>.spec.json` or `spec.json` beside it). The spec says how text becomes input ids:
 *
 * ```json
 * {
 *   "format": "paddock-reward-model/1",
 *   "tokenizer": { "kind": "bytes" },            // id = byte + 1, 0 = padding
 *                                                // or { "kind": "hashed", "vocabSize": 4096, "lowercase": true }:
 *                                                // words and punctuation, id = 1 + FNV-1a(token) mod (vocabSize − 1)
 *   "maxLength": 512,                             // ids per text; longer texts are cut
 *   "truncate": "left",                           // keep the end (left) or the start (right) of a long text
 *   "inputs": { "ids": "input_ids", "mask": "attention_mask", "dtype": "int64" },
 *                                                // [batch, length] ids and 1/0 mask (optional),
 *                                                // int64 (default) or int32
 *   "output": "score",                            // float [batch] or [batch, 1]
 *   "range": [0, 1],                              // optional: documents (and clamps) the score's range
 *   "maxBatch": 64                                // optional: most texts in one inference
 * }
 * ```
 *
 * Texts are padded to the longest of their batch, so the model must take dynamic
 * `[batch, length]` axes and ignore padded positions (the mask says which they are).
 * Calls to `score` made while a batch is being gathered (the same tick) run as one batch.
 */
import { existsSync, readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import {
  ERROR_CODES,
  PaddockError,
  describeError,
  formatZodIssues,
  type TrajectoryRewardFunction,
  type TurnRewardFunction,
} from '../harness/index.ts';
import type { ComponentOptions } from './rules.ts';
import { renderTranscript, tryParseJson, turnText } from './text.ts';

/** The spec of a reward model (our own format: strict). */
export const RewardModelSpecSchema = z.strictObject({
  format: z.literal('paddock-reward-model/1'),
  description: z.string().optional(),
  tokenizer: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('bytes') }),
    z.strictObject({
      kind: z.literal('hashed'),
      vocabSize: z.number().int().min(2),
      /** @default true */
      lowercase: z.boolean().optional(),
    }),
  ]),
  maxLength: z.number().int().positive(),
  /** @default 'left' */
  truncate: z.enum(['left', 'right']).optional(),
  inputs: z.strictObject({
    ids: z.string().min(1),
    mask: z.string().min(1).optional(),
    /** @default 'int64' */
    dtype: z.enum(['int64', 'int32']).optional(),
  }),
  output: z.string().min(1),
  range: z.tuple([z.number(), z.number()]).optional(),
  /**
   * Most texts in one inference (default 64). Batching saves the fixed cost of a call; a
   * model with heavy work per token (attention over long texts) can run a large batch
   * slower than its rows one by one, and says so here (1: no batching).
   */
  maxBatch: z.number().int().positive().optional(),
});

export type RewardModelSpec = z.infer<typeof RewardModelSpecSchema>;

export interface OnnxRewardModelOptions {
  /** Most texts in one `session.run`. @default the spec's `maxBatch`, else 64 */
  maxBatch?: number;
  /** Threads of one inference. @default 1 (episodes run concurrently; sandboxes need the cores) */
  threads?: number;
}

interface Pending {
  text: string;
  resolve: (score: number) => void;
  reject: (error: unknown) => void;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The UTF-8 bytes a byte-level model reads of `text`: at most `maxLength`, its end
 * (`keepEnd`) or its start. Only a slice of a long text is encoded: `maxLength` + 1 UTF-16
 * units. Each unit makes at least one byte, so the `maxLength` bytes kept never include
 * the outermost unit, the one a slice may cut out of a surrogate pair; they are the bytes
 * the whole text's encoding would keep.
 */
function textBytes(text: string, maxLength: number, keepEnd: boolean): Uint8Array {
  const source =
    text.length <= maxLength + 1
      ? text
      : keepEnd
        ? text.slice(text.length - maxLength - 1)
        : text.slice(0, maxLength + 1);
  const bytes = Buffer.from(source, 'utf8');
  if (bytes.length <= maxLength) return bytes;
  return keepEnd ? bytes.subarray(bytes.length - maxLength) : bytes.subarray(0, maxLength);
}

/** Ids of the hashed tokenizer (see the spec's `tokenizer`). */
function hashedIds(
  text: string,
  tokenizer: { vocabSize: number; lowercase?: boolean | undefined },
  maxLength: number,
  keepEnd: boolean,
): Int32Array {
  const { vocabSize } = tokenizer;
  const source = tokenizer.lowercase === false ? text : text.toLowerCase();
  let tokens: string[] = source.match(/[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]/gu) ?? [];
  if (tokens.length > maxLength) {
    tokens = keepEnd ? tokens.slice(tokens.length - maxLength) : tokens.slice(0, maxLength);
  }
  return Int32Array.from(tokens, (token) => 1 + (fnv1a(token) % (vocabSize - 1)));
}

/**
 * One text's row of a batch: its ids, or for the byte tokenizer its bytes (id = byte + 1,
 * added while the batch tensor is filled, so a byte row is never copied on its own).
 */
type Row = Int32Array | Uint8Array;

function encodeRow(text: string, spec: RewardModelSpec): Row {
  const keepEnd = (spec.truncate ?? 'left') === 'left';
  return spec.tokenizer.kind === 'bytes'
    ? textBytes(text, spec.maxLength, keepEnd)
    : hashedIds(text, spec.tokenizer, spec.maxLength, keepEnd);
}

/** Input ids of `text` under `spec` (cut to `maxLength`). Exposed for tests and for model authors. */
export function encodeText(text: string, spec: RewardModelSpec): Int32Array {
  const row = encodeRow(text, spec);
  if (row instanceof Int32Array) return row;
  const ids = new Int32Array(row.length);
  for (let i = 0; i < row.length; i++) ids[i] = row[i]! + 1;
  return ids;
}

/** Little-endian hosts fill int64 tensors through an int32 view (no BigInt per id). */
const LITTLE_ENDIAN = endianness() === 'LE';

// Monomorphic copy loops (one row type each): the id fill is the only per-token work here.
function copyBytes(words: Int32Array, bytes: Uint8Array, at: number, stride: number): void {
  if (stride === 1) {
    // A native widening copy, then + 1 in place: about twice as fast as one loop doing both.
    words.set(bytes, at);
    for (let i = at, end = at + bytes.length; i < end; i++) words[i]! += 1;
    return;
  }
  for (let i = 0; i < bytes.length; i++, at += stride) words[at] = bytes[i]! + 1;
}
function copyIds(words: Int32Array, ids: Int32Array, at: number, stride: number): void {
  for (let i = 0; i < ids.length; i++, at += stride) words[at] = ids[i]!;
}

/**
 * A `[rows, length]` tensor of `dtype` holding `rows` padded with 0, and (when `withMask`)
 * its 1/0 mask. Ids are written straight into the tensor's buffer: `reuse` when it is
 * large enough (a buffer of an earlier batch whose inference has ended: memory already in
 * the cache is filled faster than a new allocation), else a new one.
 */
function batchTensors(
  rows: readonly Row[],
  dtype: 'int64' | 'int32',
  withMask: boolean,
  reuse?: ArrayBuffer,
): { ids: ort.Tensor; mask?: ort.Tensor; buffer: ArrayBuffer } {
  let length = 1;
  for (const row of rows) length = Math.max(length, row.length);
  const dims = [rows.length, length];
  const size = rows.length * length;
  const fits = reuse !== undefined && reuse.byteLength >= size * (dtype === 'int32' ? 4 : 8);
  const data =
    dtype === 'int32'
      ? fits
        ? new Int32Array(reuse, 0, size)
        : new Int32Array(size)
      : fits
        ? new BigInt64Array(reuse, 0, size)
        : new BigInt64Array(size);
  if (fits) {
    // Padding holds an earlier batch's ids; zero it (a whole int64 is zeroed).
    rows.forEach((row, r) => {
      if (data instanceof Int32Array) data.fill(0, r * length + row.length, (r + 1) * length);
      else data.fill(0n, r * length + row.length, (r + 1) * length);
    });
  }
  if (data instanceof Int32Array || LITTLE_ENDIAN) {
    // int64 on a little-endian host: the low word of each id; the high word stays 0.
    const stride = data instanceof Int32Array ? 1 : 2;
    const words = new Int32Array(data.buffer, 0, stride * size);
    rows.forEach((row, r) => {
      if (row instanceof Int32Array) copyIds(words, row, stride * r * length, stride);
      else copyBytes(words, row, stride * r * length, stride);
    });
  } else {
    rows.forEach((row, r) => {
      const shift = row instanceof Int32Array ? 0 : 1;
      for (let i = 0; i < row.length; i++) data[r * length + i] = BigInt(row[i]! + shift);
    });
  }
  const ids = new ort.Tensor(dtype, data, dims);
  const buffer = data.buffer;
  if (!withMask) return { ids, buffer };
  const mask = dtype === 'int32' ? new Int32Array(size) : new BigInt64Array(size);
  rows.forEach((row, r) => {
    if (mask instanceof Int32Array) mask.fill(1, r * length, r * length + row.length);
    else mask.fill(1n, r * length, r * length + row.length);
  });
  return { ids, mask: new ort.Tensor(dtype, mask, dims), buffer };
}

/** Where a model's `model.onnx` and `spec.json` are, for a folder or an `.onnx` file. */
export function modelFiles(location: string): { model: string; spec: string } {
  if (!location.endsWith('.onnx'))
    return { model: path.join(location, 'model.onnx'), spec: path.join(location, 'spec.json') };
  const named = location.replace(/\.onnx$/, '.spec.json');
  return {
    model: location,
    spec: existsSync(named) ? named : path.join(path.dirname(location), 'spec.json'),
  };
}

/** A loaded reward model. `close()` releases its session; it is idempotent. */
export class OnnxRewardModel {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  /** The ids buffer of the last batch, reused by the next while no inference holds it. */
  private spareBuffer: ArrayBuffer | undefined;
  private readonly maxBatch: number;
  /** Inferences run so far (one per batch). */
  inferences = 0;

  private constructor(
    /** The `.onnx` file. */
    readonly file: string,
    readonly spec: RewardModelSpec,
    private readonly session: ort.InferenceSession,
    options: OnnxRewardModelOptions,
  ) {
    this.maxBatch = Math.max(1, options.maxBatch ?? spec.maxBatch ?? 64);
  }

  /**
   * Loads a model folder or `.onnx` file. Rejects with CONFIG_INVALID naming the file when
   * the spec is missing or invalid, the model does not load, or the spec names inputs or
   * an output the model does not have.
   */
  static async load(location: string, options: OnnxRewardModelOptions = {}): Promise<OnnxRewardModel> {
    const files = modelFiles(path.resolve(location));
    const invalid = (message: string, cause?: unknown) =>
      new PaddockError(ERROR_CODES.CONFIG_INVALID, message, {
        details: { file: files.spec },
        ...(cause === undefined ? {} : { cause }),
      });
    let text: string;
    try {
      text = readFileSync(files.spec, 'utf8');
    } catch (error) {
      throw invalid(
        `reward model ${location}: cannot read its spec ${files.spec}: ${describeError(error)}`,
        error,
      );
    }
    const json = tryParseJson(text);
    if (json === undefined) throw invalid(`${files.spec}: not valid JSON`);
    const parsed = RewardModelSpecSchema.safeParse(json);
    if (!parsed.success)
      throw invalid(`${files.spec}: invalid reward model spec:\n${formatZodIssues(parsed.error.issues)}`);
    const spec = parsed.data;
    let session: ort.InferenceSession;
    try {
      const threads = options.threads ?? 1;
      session = await ort.InferenceSession.create(files.model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `cannot load the reward model ${files.model}: ${describeError(error)}`,
        {
          cause: error,
          details: { file: files.model },
        },
      );
    }
    const wanted = [spec.inputs.ids, ...(spec.inputs.mask ? [spec.inputs.mask] : [])];
    const missing = wanted.filter((name) => !session.inputNames.includes(name));
    if (missing.length > 0 || !session.outputNames.includes(spec.output)) {
      await session.release();
      throw invalid(
        `${files.spec}: the model has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}], ` +
          `but the spec names inputs [${wanted.join(', ')}] and output ${spec.output}`,
      );
    }
    return new OnnxRewardModel(files.model, spec, session, options);
  }

  /** Input ids of `text` (see `encodeText`). */
  encode(text: string): Int32Array {
    return encodeText(text, this.spec);
  }

  /**
   * Scores `texts`, `maxBatch` at a time, each batch in one inference. Rejects with
   * MODEL_CALL_FAILED when inference fails, ABORTED when `signal` aborts before a batch
   * starts (a running inference is not interrupted), and CONFIG_INVALID after `close()`.
   */
  async scoreTexts(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number[]> {
    const scores: number[] = [];
    for (let start = 0; start < texts.length; start += this.maxBatch) {
      if (options.signal?.aborted)
        throw new PaddockError(ERROR_CODES.ABORTED, 'scoring was aborted', { cause: options.signal.reason });
      scores.push(...(await this.run(texts.slice(start, start + this.maxBatch))));
    }
    return scores;
  }

  /**
   * Scores one text. Calls made in the same tick are gathered into one batch (up to
   * `maxBatch`), so concurrent episodes share inferences.
   */
  score(text: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    if (options.signal?.aborted)
      return Promise.reject(
        new PaddockError(ERROR_CODES.ABORTED, 'scoring was aborted', { cause: options.signal.reason }),
      );
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.run(batch.map((pending) => pending.text)).then(
        (scores) => batch.forEach((pending, index) => pending.resolve(scores[index]!)),
        (error: unknown) => batch.forEach((pending) => pending.reject(error)),
      );
    }
  }

  private async run(texts: readonly string[]): Promise<number[]> {
    if (this.closed)
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `the reward model ${this.file} is closed`);
    if (texts.length === 0) return [];
    const { inputs } = this.spec;
    const rows = texts.map((text) => encodeRow(text, this.spec));
    // Taken while this inference runs, so that a concurrent batch does not write into it.
    const spare = this.spareBuffer;
    this.spareBuffer = undefined;
    const tensors = batchTensors(rows, inputs.dtype ?? 'int64', inputs.mask !== undefined, spare);
    const feeds: Record<string, ort.Tensor> = { [inputs.ids]: tensors.ids };
    if (inputs.mask && tensors.mask) feeds[inputs.mask] = tensors.mask;
    let output: ort.Tensor | undefined;
    try {
      this.inferences++;
      output = (await this.session.run(feeds))[this.spec.output];
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.MODEL_CALL_FAILED,
        `reward model ${this.file} failed: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    } finally {
      this.keepSpare(tensors.buffer);
    }
    const data = output?.data;
    if (!(data instanceof Float32Array || data instanceof Float64Array) || data.length !== rows.length) {
      throw new PaddockError(
        ERROR_CODES.MODEL_CALL_FAILED,
        `reward model ${this.file}: expected ${rows.length} float scores in "${this.spec.output}", got ${output ? `${output.type} [${output.dims.join(', ')}]` : 'nothing'}`,
      );
    }
    const range = this.spec.range;
    return Array.from(data, (value) => (range ? Math.min(range[1], Math.max(range[0], value)) : value));
  }

  /** Keeps the larger of `buffer` and the current spare for the next batch. */
  private keepSpare(buffer: ArrayBuffer): void {
    if (buffer.byteLength >= (this.spareBuffer?.byteLength ?? 0)) this.spareBuffer = buffer;
  }

  /** Releases the session; pending and later calls reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.queue.splice(0);
    for (const entry of pending)
      entry.reject(new PaddockError(ERROR_CODES.CONFIG_INVALID, `the reward model ${this.file} is closed`));
    await this.session.release();
  }
}

export interface OnnxTurnRewardOptions extends ComponentOptions {
  /** `turn_text`: the turn alone; `transcript`: the instruction and every turn so far. @default 'turn_text' */
  input?: 'turn_text' | 'transcript';
  /**
   * `reward`: the score is the turn's reward; `progress`: the score is a potential Φ and
   * the turn is rewarded with its change (Φ before turn 0 is the score of the empty turn
   * text, or of the instruction alone for `transcript`). @default 'reward'
   */
  mode?: 'reward' | 'progress';
}

/** A turn reward scored by `model` (see `OnnxTurnRewardOptions`). */
export function onnxTurnReward(
  model: OnnxRewardModel,
  options: OnnxTurnRewardOptions = {},
): TurnRewardFunction {
  const input = options.input ?? 'turn_text';
  const textOf = (instruction: string, turns: readonly Parameters<typeof turnText>[0][]): string => {
    if (input === 'transcript') return renderTranscript(instruction, turns);
    const last = turns.at(-1);
    return last ? turnText(last) : '';
  };
  return {
    name: options.name ?? 'model',
    weight: options.weight ?? 1,
    // The model reads only the record: what an episode needs of it is its instruction.
    open: ({ task }) => ({
      async score({ turn, previousTurns, signal }) {
        const now = textOf(task.instruction, [...previousTurns, turn]);
        if (options.mode !== 'progress') return model.score(now, { signal });
        const [before, after] = await Promise.all([
          model.score(textOf(task.instruction, previousTurns), { signal }),
          model.score(now, { signal }),
        ]);
        return after - before;
      },
    }),
  };
}

export interface OnnxTrajectoryRewardOptions extends ComponentOptions {
  /** What the model reads: the transcript, the submitted answer, or the last turn's text. @default 'transcript' */
  input?: 'transcript' | 'answer' | 'final_text';
}

/** A trajectory reward scored by `model`. */
export function onnxTrajectoryReward(
  model: OnnxRewardModel,
  options: OnnxTrajectoryRewardOptions = {},
): TrajectoryRewardFunction {
  return {
    name: options.name ?? 'model',
    weight: options.weight ?? 1,
    async score({ task, episode, signal }) {
      const input = options.input ?? 'transcript';
      const text =
        input === 'answer'
          ? (episode.answer ?? '')
          : input === 'final_text'
            ? (episode.turns.at(-1)?.text ?? '')
            : renderTranscript(task.instruction, episode.turns);
      return model.score(text, { signal });
    },
  };
}
