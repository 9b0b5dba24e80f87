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
 *   "range": [0, 1]                               // optional: documents (and clamps) the score's range
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
} from '../../harness/index.ts';
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
});

export type RewardModelSpec = z.infer<typeof RewardModelSpecSchema>;

export interface OnnxRewardModelOptions {
  /** Most texts in one `session.run`. @default 64 */
  maxBatch?: number;
  /** Threads of one inference. @default 1 (episodes run concurrently; sandboxes need the cores) */
  threads?: number;
}

interface Pending {
  ids: Int32Array;
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

/** Input ids of `text` under `spec` (cut to `maxLength`). Exposed for tests and for model authors. */
export function encodeText(text: string, spec: RewardModelSpec): Int32Array {
  const keepEnd = (spec.truncate ?? 'left') === 'left';
  if (spec.tokenizer.kind === 'bytes') {
    let bytes: Uint8Array = Buffer.from(text, 'utf8');
    if (bytes.length > spec.maxLength) {
      bytes = keepEnd ? bytes.subarray(bytes.length - spec.maxLength) : bytes.subarray(0, spec.maxLength);
    }
    const ids = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) ids[i] = bytes[i]! + 1;
    return ids;
  }
  const { vocabSize } = spec.tokenizer;
  const source = spec.tokenizer.lowercase === false ? text : text.toLowerCase();
  let tokens: string[] = source.match(/[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]/gu) ?? [];
  if (tokens.length > spec.maxLength) {
    tokens = keepEnd ? tokens.slice(tokens.length - spec.maxLength) : tokens.slice(0, spec.maxLength);
  }
  return Int32Array.from(tokens, (token) => 1 + (fnv1a(token) % (vocabSize - 1)));
}

/** Little-endian hosts fill int64 tensors through an int32 view (no BigInt per id). */
const LITTLE_ENDIAN = endianness() === 'LE';

/** A `[rows, length]` tensor of `dtype` holding `rows` padded with 0, and its 1/0 mask. */
function batchTensors(
  rows: readonly Int32Array[],
  dtype: 'int64' | 'int32',
): { ids: ort.Tensor; mask: ort.Tensor } {
  const length = Math.max(1, ...rows.map((row) => row.length));
  const dims = [rows.length, length];
  const size = rows.length * length;
  if (dtype === 'int32') {
    const ids = new Int32Array(size);
    const mask = new Int32Array(size);
    rows.forEach((row, r) => {
      ids.set(row, r * length);
      mask.fill(1, r * length, r * length + row.length);
    });
    return { ids: new ort.Tensor('int32', ids, dims), mask: new ort.Tensor('int32', mask, dims) };
  }
  const ids = new BigInt64Array(size);
  const mask = new BigInt64Array(size);
  if (LITTLE_ENDIAN) {
    const idWords = new Int32Array(ids.buffer);
    const maskWords = new Int32Array(mask.buffer);
    rows.forEach((row, r) => {
      for (let i = 0, at = 2 * r * length; i < row.length; i++, at += 2) {
        idWords[at] = row[i]!;
        maskWords[at] = 1;
      }
    });
  } else {
    rows.forEach((row, r) => {
      for (let i = 0; i < row.length; i++) {
        ids[r * length + i] = BigInt(row[i]!);
        mask[r * length + i] = 1n;
      }
    });
  }
  return { ids: new ort.Tensor('int64', ids, dims), mask: new ort.Tensor('int64', mask, dims) };
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
    this.maxBatch = Math.max(1, options.maxBatch ?? 64);
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
      const ids = texts.slice(start, start + this.maxBatch).map((text) => this.encode(text));
      scores.push(...(await this.run(ids)));
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
      this.queue.push({ ids: this.encode(text), resolve, reject });
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
      this.run(batch.map((pending) => pending.ids)).then(
        (scores) => batch.forEach((pending, index) => pending.resolve(scores[index]!)),
        (error: unknown) => batch.forEach((pending) => pending.reject(error)),
      );
    }
  }

  private async run(rows: readonly Int32Array[]): Promise<number[]> {
    if (this.closed)
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `the reward model ${this.file} is closed`);
    if (rows.length === 0) return [];
    const tensors = batchTensors(rows, this.spec.inputs.dtype ?? 'int64');
    const feeds: Record<string, ort.Tensor> = { [this.spec.inputs.ids]: tensors.ids };
    if (this.spec.inputs.mask) feeds[this.spec.inputs.mask] = tensors.mask;
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
    async score({ task, turn, previousTurns, signal }) {
      const now = textOf(task.instruction, [...previousTurns, turn]);
      if (options.mode !== 'progress') return model.score(now, { signal });
      const [before, after] = await Promise.all([
        model.score(textOf(task.instruction, previousTurns), { signal }),
        model.score(now, { signal }),
      ]);
      return after - before;
    },
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
