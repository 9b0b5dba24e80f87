/**
 * Training-ready export of a run: one row per episode, as JSONL or Parquet, with the
 * column names trainers read as they are (see README.md beside this file): `messages`
 * (OpenAI chat format, with `reasoning_content` on assistant messages) and `tools`
 * (OpenAI tool schemas) for TRL's SFTTrainer and verl's multi-turn SFT dataset;
 * `input_ids`, `labels`, `loss_mask` and `logprobs` for token-exact episodes. In Parquet,
 * `messages` is a list of structs and `tools` a list of structs (TRL's
 * `is_conversational` and verl read them as lists of dicts); the file is compressed and
 * written one row group at a time.
 *
 * Token sequence and loss mask (when turns were recorded token-exactly). The full
 * sequence is the last token-exact turn's `promptIds + completionIds`: with a server that
 * renders the conversation with a chat template, every earlier turn's prompt and
 * completion are a prefix of it, and the tool observations sit between one completion
 * and the next prompt's end. Each turn's completion span is located at offset
 * `promptIds.length` and kept only when the sequence really holds that turn's
 * `promptIds + completionIds` there; the mask is 1 on the kept spans (tokens the policy
 * sampled) and 0 elsewhere (the first prompt, observations, chat-template tokens). A turn
 * whose ids are not at that place (the template re-rendered an earlier message
 * differently) is listed in `token_mismatched_turns` and stays masked: its tokens in the
 * sequence are not the ones the policy sampled. Text is never re-tokenized.
 *
 * Images (export/images.ts): `image_url` parts in the messages, their files copied beside
 * the export with an `images` column listing them in order (`images: 'files'`, the
 * default), or `data:` URLs (`inline`). In the token sequence an image is whatever tokens
 * the model's processor put in the prompt for it (model-specific placeholder ids, inside
 * a prompt span: loss mask 0); `token_images` says how many of the row's images, in
 * order, the sequence's prompt holds.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { toOpenAIMessages, toOpenAITools, type OpenAITool } from '../harness/openai-format.ts';
import {
  isImageFileRef,
  type Message,
  type RecordedEpisode,
  type RecordedImage,
  type RunStore,
  type ToolSpec,
  type TurnRecord,
} from '../harness/index.ts';
import { ExportImages, type ExportImageMode } from './images.ts';
import {
  inferParquetType,
  writeParquetFile,
  type ParquetColumn,
  type ParquetCompression,
  type ParquetType,
} from './parquet.ts';

/** The token-level view of an episode. */
export interface TokenSequence {
  /** The full sequence: the last token-exact turn's prompt ids followed by its completion ids. */
  ids: number[];
  /** Per token: 1 where the policy sampled it (a verified completion span), else 0. */
  lossMask: number[];
  /** Per token: the sampling logprob where the mask is 1, else 0. */
  logprobs: number[];
  /** The verified completion spans, `[start, end)` in `ids`, by turn index. */
  spans: { turn: number; start: number; end: number }[];
  /** Token-exact turns whose ids are not where the sequence should hold them (masked out). */
  mismatchedTurns: number[];
  /** Turns without token data (not token-exact: the backend did not send ids). */
  missingTurns: number[];
}

/** A tool call of an exported assistant message (OpenAI format: `arguments` is the JSON text the model wrote). */
export interface ExportToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A content part of a user message that carries images (OpenAI format). */
export type ExportContentPart =
  { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

/**
 * A message of an exported conversation: OpenAI chat format, as chat templates read it.
 * Keys that do not apply are absent in JSONL and null in Parquet (one struct type for
 * every message there).
 */
export interface ExportMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /**
   * The text. In JSONL a user message with images keeps OpenAI's list of parts; in
   * Parquet `content` is always text (the text parts, joined by a newline) and the parts
   * are in `content_parts`.
   */
  content: string | ExportContentPart[] | null;
  /**
   * The model's reasoning on an assistant turn, when the backend returned it, under the
   * name vLLM's and SGLang's servers and the DeepSeek-R1 / Qwen3 chat templates use.
   */
  reasoning_content?: string;
  tool_calls?: ExportToolCall[];
  /** On a tool message: the call it answers. */
  tool_call_id?: string;
  /** On a tool message: the tool's name (read by templates that name results). */
  name?: string;
  /** Parquet only: a user message's parts when it has images. */
  content_parts?: ExportContentPart[];
}

/**
 * One exported episode. JSONL and Parquet have the same columns; Parquet stores nested
 * values as lists and structs, except `reward_breakdown` and `turn_reward_components`
 * (their keys depend on each task's reward set), which are JSON text there.
 */
export interface ExportRow {
  run_id: string;
  episode_id: string;
  task_id: string;
  epoch: number;
  seed: number;
  attempt: number;
  agent: string;
  status: RecordedEpisode['status'];
  limit: string | null;
  /** What cut the model's output, when status is `truncated`. */
  truncation: string | null;
  /** Who refused, when status is `refused`. */
  refusal: string | null;
  error: RecordedEpisode['error'] | null;
  /** The conversation in OpenAI chat-completions format, with the model's reasoning. */
  messages: ExportMessage[];
  /** The tools the agent was offered, as OpenAI tool schemas (empty when it had none). */
  tools: OpenAITool[];
  /**
   * The images of `messages`, in the order their `image_url` parts appear: their paths
   * relative to the export file's folder (`episodes.parquet.images/<sha256>.png`), `[]`
   * for an episode without images. Only with `images: 'files'`, and only when some
   * exported episode has an image (TRL and verl switch to vision processing when a
   * dataset has an `images` column).
   */
  images?: string[];
  answer: string | null;
  num_turns: number;
  /** The model's reasoning text on each turn (null where it gave none). */
  turn_reasoning: (string | null)[];
  /** Weighted turn reward of each turn. */
  turn_rewards: number[];
  /** Turn reward components of each turn, by name. */
  turn_reward_components: Record<string, number>[];
  /** The return G_t of each turn (credit assignment, what the trainer uses); null when none was assigned. */
  turn_returns: number[] | null;
  /** Trajectory reward (the breakdown's total). */
  reward: number;
  reward_breakdown: RecordedEpisode['reward'];
  prompt_tokens: number;
  completion_tokens: number;
  /** Sum of the turns' costs, when any turn had one. */
  cost_usd: number | null;
  tool_calls: number;
  tool_problems: RecordedEpisode['stats']['toolProblems'];
  empty_turns: number;
  duration_ms: number;
  /**
   * Token columns (see {@link TokenSequence}), null when no turn was recorded
   * token-exactly, and left out of the file when no episode of the export was (see
   * {@link ExportOptions.tokenColumns}). `input_ids`: the sequence.
   */
  input_ids?: number[] | null;
  /** `input_ids` where the policy sampled the token, -100 elsewhere (Hugging Face's ignore index). */
  labels?: number[] | null;
  /** 1 where the policy sampled the token, else 0. */
  loss_mask?: number[] | null;
  /** The sampling logprob where `loss_mask` is 1, else 0. */
  logprobs?: number[] | null;
  /** Length of the first token-exact turn's prompt (the part before any policy token). */
  prompt_length?: number | null;
  token_spans?: TokenSequence['spans'] | null;
  token_mismatched_turns?: number[] | null;
  token_missing_turns?: number[] | null;
  /**
   * Per turn (null where the turn has no token data): which distribution its logprobs
   * come from (`raw`, `temperature-scaled`, `processed`, `unknown`; see TokenRecord) — a
   * trainer must not read `raw` ones as the sampling distribution's.
   */
  turn_logprobs_mode?: (string | null)[] | null;
  /** Per turn: the sampling parameters the request set, and those it left to the server's defaults. */
  turn_sampling_params?: (Record<string, unknown> | null)[] | null;
  turn_server_default_params?: (string[] | null)[] | null;
  /** Per turn: `rendered` (the server's chat template) or `token-in` (ids sent by the agent). */
  turn_prompt_source?: (string | null)[] | null;
  /** Per turn: where its prompt ids first differ from the previous turn's ids (retokenisation drift), else null. */
  turn_drift_at?: (number | null)[] | null;
  /** Per turn: the version of a training run's policy that sampled it (its step), else null. */
  turn_policy_version?: (number | null)[] | null;
  /**
   * How many of the row's images (the first ones of `messages`, in order; the first of
   * `images` with `images: 'files'`) the token sequence's prompt holds: those shown before
   * the last token-exact turn. Their tokens are the model's image placeholders, inside
   * prompt spans (loss mask 0). Null without token data, and when one of them was not
   * kept (over the episode's image budget: its pixels cannot be given back).
   */
  token_images?: number | null;
}

/** The token columns of {@link ExportRow}. */
export const TOKEN_COLUMNS = [
  'input_ids',
  'labels',
  'loss_mask',
  'logprobs',
  'prompt_length',
  'token_spans',
  'token_mismatched_turns',
  'token_missing_turns',
  'turn_logprobs_mode',
  'turn_sampling_params',
  'turn_server_default_params',
  'turn_prompt_source',
  'turn_drift_at',
  'turn_policy_version',
  'token_images',
] as const;

export interface ExportOptions {
  format: 'jsonl' | 'parquet';
  /** The file to write (replaced). */
  out: string;
  /**
   * The tools each task offered, by task id (or a function of it), used instead of the
   * tools the episode records keep. @default the records' own
   */
  tools?:
    Readonly<Record<string, readonly ToolSpec[]>> | ((taskId: string) => readonly ToolSpec[] | undefined);
  /** Which episodes to export. @default all */
  filter?: (episode: RecordedEpisode) => boolean;
  /**
   * How images are written: `files` copies each (once, named by its SHA-256) into
   * `<out>.images/` and the `image_url` parts and the `images` column name them by a path
   * relative to the export's folder; `inline` writes `data:` URLs (a self-contained file,
   * and no `images` column). @default 'files'
   */
  images?: ExportImageMode;
  /**
   * The run folder whose `images/` the records' image references name. @default the
   * store's folder when the source is a RunStore; records given without one may hold only
   * inline images
   */
  runDir?: string;
  /**
   * Whether rows carry the token columns. `auto` leaves them out when no exported episode
   * was recorded token-exactly: TRL's SFTTrainer reads a file with an `input_ids` column
   * as pre-tokenized, so all-null token columns would stop it training on `messages`.
   * @default 'auto'
   */
  tokenColumns?: 'auto' | boolean;
  /** Parquet rows per row group (the rows held in memory at once). @default 512 */
  rowGroupSize?: number;
  /** Parquet page compression. @default 'snappy' */
  compression?: ParquetCompression;
}

/** Hugging Face's ignore index: a label the loss skips. */
const IGNORE_INDEX = -100;

function sameIds(sequence: readonly number[], at: number, ids: readonly number[]): boolean {
  if (at + ids.length > sequence.length) return false;
  for (let i = 0; i < ids.length; i++) if (sequence[at + i] !== ids[i]) return false;
  return true;
}

/** Builds the token sequence and loss mask of an episode (see the module comment); undefined without token data. */
export function buildTokenSequence(
  turns: readonly Pick<TurnRecord, 'index' | 'tokens'>[],
): TokenSequence | undefined {
  const exact = turns.filter((turn) => turn.tokens !== undefined);
  const last = exact.at(-1)?.tokens;
  if (!last) return undefined;
  const ids = [...last.promptIds, ...last.completionIds];
  const lossMask = new Array<number>(ids.length).fill(0);
  const logprobs = new Array<number>(ids.length).fill(0);
  const spans: TokenSequence['spans'] = [];
  const mismatchedTurns: number[] = [];
  for (const turn of exact) {
    const { promptIds, completionIds, completionLogprobs } = turn.tokens!;
    const start = promptIds.length;
    const end = start + completionIds.length;
    const fits =
      completionLogprobs.length === completionIds.length &&
      sameIds(ids, 0, promptIds) &&
      sameIds(ids, start, completionIds);
    if (!fits) {
      mismatchedTurns.push(turn.index);
      continue;
    }
    for (let i = start; i < end; i++) {
      lossMask[i] = 1;
      logprobs[i] = completionLogprobs[i - start]!;
    }
    spans.push({ turn: turn.index, start, end });
  }
  const missingTurns = turns.filter((turn) => turn.tokens === undefined).map((turn) => turn.index);
  return { ids, lossMask, logprobs, spans, mismatchedTurns, missingTurns };
}

/**
 * The conversation in OpenAI format with what chat templates read beside it: the model's
 * reasoning as `reasoning_content` on its assistant messages (the n-th assistant message
 * of the records is the n-th of the conversion, which adds only user messages) and the
 * tool's `name` on tool messages. Images become what `images` makes of them (default:
 * `data:` URLs of inline images; a reference to a file of a run needs an `ExportImages`
 * that knows the run's folder).
 */
export function exportMessages(
  messages: readonly Message<RecordedImage>[],
  images: ExportImages = new ExportImages('inline', '', undefined),
): ExportMessage[] {
  const reasoning = messages.flatMap((message) =>
    message.role === 'assistant' ? [message.reasoning?.text] : [],
  );
  const toolNames = new Map<string, string>();
  for (const message of messages)
    if (message.role === 'tool') toolNames.set(message.toolCallId, message.name);
  let assistant = 0;
  return toOpenAIMessages(messages, { imagePart: (image) => images.part(image) }).map(
    (message): ExportMessage => {
      switch (message.role) {
        case 'system':
          return { role: 'system', content: message.content };
        case 'user':
          return { role: 'user', content: message.content };
        case 'assistant': {
          const text = reasoning[assistant++];
          return {
            role: 'assistant',
            content: message.content,
            ...(text ? { reasoning_content: text } : {}),
            ...(message.tool_calls ? { tool_calls: message.tool_calls } : {}),
          };
        }
        case 'tool': {
          const name = toolNames.get(message.tool_call_id);
          return {
            role: 'tool',
            content: message.content,
            tool_call_id: message.tool_call_id,
            ...(name === undefined ? {} : { name }),
          };
        }
      }
    },
  );
}

/** The URLs of the `image_url` parts of exported messages, in order. */
function imageUrls(messages: readonly ExportMessage[]): string[] {
  const urls: string[] = [];
  for (const message of messages) {
    if (!Array.isArray(message.content)) continue;
    for (const part of message.content) if (part.type === 'image_url') urls.push(part.image_url.url);
  }
  return urls;
}

/** True when the record kept the image's bytes (inline or in a file of the run). */
function kept(image: RecordedImage): boolean {
  return !isImageFileRef(image) || image.file !== undefined;
}

/** True when some message of the episode has an image whose bytes the record kept. */
function hasImages(episode: RecordedEpisode): boolean {
  return episode.messages.some((message) => 'images' in message && message.images?.some(kept));
}

/**
 * How many images the token sequence's prompt holds: those of the messages before the
 * last token-exact turn's assistant message (the i-th turn's is the i-th assistant
 * message). Undefined when no turn is token-exact or one of those images was not kept.
 */
function tokenImages(episode: RecordedEpisode): number | undefined {
  let last = -1;
  episode.turns.forEach((turn, i) => {
    if (turn.tokens !== undefined) last = i;
  });
  if (last < 0) return undefined;
  let assistants = 0;
  let count = 0;
  for (const message of episode.messages) {
    if (message.role === 'assistant' && assistants++ === last) return count;
    if (!('images' in message) || !message.images) continue;
    for (const image of message.images) {
      if (!kept(image)) return undefined;
      count++;
    }
  }
  return count;
}

/**
 * The export row of one episode, with the given tools (default: the ones the record
 * keeps). `images` writes its images (default: `data:` URLs of inline images, see
 * {@link exportMessages}); `imageColumn` adds the `images` column (the URLs of its image
 * parts in order: with `files` images, paths relative to the export's folder).
 */
export function episodeRow(
  episode: RecordedEpisode,
  tools: readonly ToolSpec[] | undefined = episode.tools,
  options: { tokenColumns?: boolean; images?: ExportImages; imageColumn?: boolean } = {},
): ExportRow {
  const tokens = buildTokenSequence(episode.turns);
  const messages = exportMessages(episode.messages, options.images);
  const firstExact = episode.turns.find((turn) => turn.tokens !== undefined);
  const costs = episode.turns.filter((turn) => turn.costUsd !== undefined);
  const row: ExportRow = {
    run_id: episode.runId,
    episode_id: episode.episodeId,
    task_id: episode.taskId,
    epoch: episode.epoch,
    seed: episode.seed,
    attempt: episode.attempt,
    agent: episode.agent,
    status: episode.status,
    limit: episode.limit ?? null,
    truncation: episode.truncation ?? null,
    refusal: episode.refusal ?? null,
    error: episode.error ?? null,
    messages,
    tools: toOpenAITools(tools ?? []),
    ...(options.imageColumn ? { images: imageUrls(messages) } : {}),
    answer: episode.answer ?? null,
    num_turns: episode.turns.length,
    turn_reasoning: episode.turns.map((turn) => turn.reasoning?.text || null),
    turn_rewards: episode.turns.map((turn) => turn.reward),
    turn_reward_components: episode.turns.map((turn) => turn.rewards),
    // Credit assignment gives every turn a return, or none.
    turn_returns: episode.turns.some((turn) => turn.return !== undefined)
      ? episode.turns.map((turn) => turn.return ?? 0)
      : null,
    reward: episode.reward.total,
    reward_breakdown: episode.reward,
    prompt_tokens: episode.usage.promptTokens,
    completion_tokens: episode.usage.completionTokens,
    cost_usd: costs.length > 0 ? costs.reduce((sum, turn) => sum + turn.costUsd!, 0) : null,
    tool_calls: episode.stats.toolCalls,
    tool_problems: episode.stats.toolProblems,
    empty_turns: episode.stats.emptyTurns,
    duration_ms: episode.durationMs,
  };
  if (options.tokenColumns === false) return row;
  return {
    ...row,
    input_ids: tokens?.ids ?? null,
    labels: tokens ? tokens.ids.map((id, i) => (tokens.lossMask[i] === 1 ? id : IGNORE_INDEX)) : null,
    loss_mask: tokens?.lossMask ?? null,
    logprobs: tokens?.logprobs ?? null,
    prompt_length: firstExact?.tokens ? firstExact.tokens.promptIds.length : null,
    token_spans: tokens?.spans ?? null,
    token_mismatched_turns: tokens?.mismatchedTurns ?? null,
    token_missing_turns: tokens?.missingTurns ?? null,
    ...(tokens
      ? {
          turn_logprobs_mode: episode.turns.map((turn) => turn.tokens?.logprobsMode ?? null),
          turn_sampling_params: episode.turns.map((turn) => turn.tokens?.samplingParams ?? null),
          turn_server_default_params: episode.turns.map((turn) => turn.tokens?.serverDefaultParams ?? null),
          turn_prompt_source: episode.turns.map((turn) => turn.tokens?.promptSource ?? null),
          turn_drift_at: episode.turns.map((turn) => turn.tokens?.driftAt ?? null),
          turn_policy_version: episode.turns.map((turn) => turn.tokens?.policyVersion ?? null),
        }
      : {
          turn_logprobs_mode: null,
          turn_sampling_params: null,
          turn_server_default_params: null,
          turn_prompt_source: null,
          turn_drift_at: null,
          turn_policy_version: null,
        }),
    token_images: tokens ? (tokenImages(episode) ?? null) : null,
  };
}

const CONTENT_PART: ParquetType = {
  struct: { type: 'string', text: 'string', image_url: { struct: { url: 'string' } } },
};

/** The Parquet type of `messages`: one struct for every role (keys that do not apply are null). */
export const MESSAGE_PARQUET_TYPE: ParquetType = {
  struct: {
    role: 'string',
    content: 'string',
    reasoning_content: 'string',
    tool_calls: {
      list: {
        struct: {
          id: 'string',
          type: 'string',
          function: { struct: { name: 'string', arguments: 'string' } },
        },
      },
    },
    tool_call_id: 'string',
    name: 'string',
    content_parts: { list: CONTENT_PART },
  },
};

/**
 * The Parquet columns of {@link ExportRow}. `tools` is given: its struct type is the
 * union of the tool schemas of the export (see {@link inferParquetType}).
 */
export function exportParquetColumns(
  toolsType: ParquetType,
  tokenColumns: boolean,
  imageColumn = false,
): ParquetColumn[] {
  const ints: ParquetType = { list: 'int64' };
  const columns: ParquetColumn[] = [
    { name: 'run_id', type: 'string' },
    { name: 'episode_id', type: 'string' },
    { name: 'task_id', type: 'string' },
    { name: 'epoch', type: 'int64' },
    { name: 'seed', type: 'int64' },
    { name: 'attempt', type: 'int64' },
    { name: 'agent', type: 'string' },
    { name: 'status', type: 'string' },
    { name: 'limit', type: 'string' },
    { name: 'truncation', type: 'string' },
    { name: 'refusal', type: 'string' },
    { name: 'error', type: { struct: { code: 'string', message: 'string', retryable: 'boolean' } } },
    { name: 'messages', type: { list: MESSAGE_PARQUET_TYPE } },
    { name: 'tools', type: toolsType },
    ...(imageColumn ? [{ name: 'images', type: { list: 'string' } } satisfies ParquetColumn] : []),
    { name: 'answer', type: 'string' },
    { name: 'num_turns', type: 'int64' },
    { name: 'turn_reasoning', type: { list: 'string' } },
    { name: 'turn_rewards', type: { list: 'double' } },
    { name: 'turn_reward_components', type: 'json' },
    { name: 'turn_returns', type: { list: 'double' } },
    { name: 'reward', type: 'double' },
    { name: 'reward_breakdown', type: 'json' },
    { name: 'prompt_tokens', type: 'int64' },
    { name: 'completion_tokens', type: 'int64' },
    { name: 'cost_usd', type: 'double' },
    { name: 'tool_calls', type: 'int64' },
    {
      name: 'tool_problems',
      type: {
        struct: {
          'unknown-tool': 'int64',
          'invalid-json': 'int64',
          'invalid-arguments': 'int64',
          'tool-error': 'int64',
        },
      },
    },
    { name: 'empty_turns', type: 'int64' },
    { name: 'duration_ms', type: 'double' },
  ];
  if (!tokenColumns) return columns;
  return [
    ...columns,
    { name: 'input_ids', type: ints },
    { name: 'labels', type: ints },
    { name: 'loss_mask', type: { list: 'int32' } },
    { name: 'logprobs', type: { list: 'double' } },
    { name: 'prompt_length', type: 'int64' },
    { name: 'token_spans', type: { list: { struct: { turn: 'int64', start: 'int64', end: 'int64' } } } },
    { name: 'token_mismatched_turns', type: ints },
    { name: 'token_missing_turns', type: ints },
    { name: 'turn_logprobs_mode', type: { list: 'string' } },
    // Parameter names and value types vary by server: JSON text.
    { name: 'turn_sampling_params', type: 'json' },
    { name: 'turn_server_default_params', type: { list: { list: 'string' } } },
    { name: 'turn_prompt_source', type: { list: 'string' } },
    { name: 'turn_drift_at', type: ints },
    { name: 'turn_policy_version', type: ints },
    { name: 'token_images', type: 'int64' },
  ];
}

/** A message as the Parquet struct holds it: text content, image parts apart. */
function parquetMessage(message: ExportMessage): ExportMessage {
  if (!Array.isArray(message.content)) return message;
  const text = message.content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n');
  return { ...message, content: text, content_parts: message.content };
}

/**
 * Writes one row per episode of a run (a {@link RunStore} or episode records) to
 * `options.out` as JSONL or Parquet, and returns how many it wrote. The records are read
 * once into memory (the store keeps them so); the Parquet file is built one row group at
 * a time. Images go beside the file (`<out>.images/`, see {@link ExportOptions.images}).
 * Throws STORE_FAILED from the store when its records cannot be read or a record's image
 * file is refused (a reference naming another file, a link, changed bytes) or missing,
 * CONFIG_INVALID for a Parquet option this Node.js cannot honour or image references
 * without their run folder, and the file system's error when a file cannot be written.
 */
export async function exportRun(
  source: RunStore | Iterable<RecordedEpisode>,
  options: ExportOptions,
): Promise<{ rows: number; out: string; format: ExportOptions['format'] }> {
  const store = 'episodes' in source && typeof source.episodes === 'function' ? source : undefined;
  const all = store ? store.episodes() : (source as Iterable<RecordedEpisode>);
  const episodes = [...all].filter((episode) => !options.filter || options.filter(episode));
  const images = new ExportImages(options.images ?? 'files', options.out, options.runDir ?? store?.dir);
  // TRL and verl take a dataset with an `images` column for a vision one: only when there are images.
  const imageColumn = images.mode === 'files' && episodes.some(hasImages);
  const toolsOf = (episode: RecordedEpisode): readonly ToolSpec[] | undefined =>
    (typeof options.tools === 'function' ? options.tools(episode.taskId) : options.tools?.[episode.taskId]) ??
    episode.tools;
  const tokenColumns =
    options.tokenColumns === undefined || options.tokenColumns === 'auto'
      ? episodes.some((episode) => episode.turns.some((turn) => turn.tokens !== undefined))
      : options.tokenColumns;
  function* rows(): Generator<ExportRow> {
    for (const episode of episodes)
      yield episodeRow(episode, toolsOf(episode), { tokenColumns, images, imageColumn });
  }
  if (options.format === 'parquet') {
    // The tools' struct type must be known before the first row group is written.
    const toolsType = inferParquetType(episodes.map((episode) => toOpenAITools(toolsOf(episode) ?? []))) ?? {
      list: 'json',
    };
    const result = writeParquetFile(
      options.out,
      exportParquetColumns(toolsType, tokenColumns, imageColumn),
      (function* () {
        for (const row of rows()) yield { ...row, messages: row.messages.map(parquetMessage) };
      })(),
      {
        ...(options.rowGroupSize === undefined ? {} : { rowGroupSize: options.rowGroupSize }),
        ...(options.compression === undefined ? {} : { compression: options.compression }),
      },
    );
    return { rows: result.rows, out: options.out, format: 'parquet' };
  }
  const fd = openSync(options.out, 'w');
  let count = 0;
  try {
    for (const row of rows()) {
      writeSync(fd, `${JSON.stringify(row)}\n`);
      count++;
    }
  } finally {
    closeSync(fd);
  }
  return { rows: count, out: options.out, format: 'jsonl' };
}
