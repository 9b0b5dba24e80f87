/**
 * Training-ready export of a run: one row per episode, as JSONL or Parquet.
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
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  toOpenAIMessages,
  toOpenAITools,
  type OpenAIMessage,
  type OpenAITool,
} from '../../agents/openai/index.ts';
import type { EpisodeRecord, RunStore, ToolSpec, TurnRecord } from '../../harness/index.ts';
import { writeParquetFile, type ParquetColumn } from './parquet.ts';

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

/** One exported episode. Parquet keeps the same names; nested values there are JSON text. */
export interface ExportRow {
  run_id: string;
  episode_id: string;
  task_id: string;
  epoch: number;
  seed: number;
  attempt: number;
  agent: string;
  status: EpisodeRecord['status'];
  limit: string | null;
  error: EpisodeRecord['error'] | null;
  /** The conversation in OpenAI chat-completions format. */
  messages: OpenAIMessage[];
  /** The tools in OpenAI format, when the exporter was given them (records do not keep them). */
  tools: OpenAITool[] | null;
  answer: string | null;
  num_turns: number;
  /** Weighted turn reward of each turn. */
  turn_rewards: number[];
  /** Turn reward components of each turn, by name. */
  turn_reward_components: Record<string, number>[];
  /** The return G_t of each turn (credit assignment, what the trainer uses); null when none was assigned. */
  turn_returns: number[] | null;
  /** Trajectory reward (the breakdown's total). */
  reward: number;
  reward_breakdown: EpisodeRecord['reward'];
  prompt_tokens: number;
  completion_tokens: number;
  /** Sum of the turns' costs, when any turn had one. */
  cost_usd: number | null;
  tool_calls: number;
  tool_problems: EpisodeRecord['stats']['toolProblems'];
  empty_turns: number;
  duration_ms: number;
  /** See {@link TokenSequence}; null when no turn was recorded token-exactly. */
  token_ids: number[] | null;
  loss_mask: number[] | null;
  logprobs: number[] | null;
  /** Length of the first token-exact turn's prompt (the part before any policy token). */
  prompt_length: number | null;
  token_spans: TokenSequence['spans'] | null;
  token_mismatched_turns: number[] | null;
  token_missing_turns: number[] | null;
}

export interface ExportOptions {
  format: 'jsonl' | 'parquet';
  /** The file to write (replaced). */
  out: string;
  /**
   * The tools each task offered, by task id (or a function of it). Episode records do not
   * keep tool specs, so without this `tools` is null.
   */
  tools?:
    Readonly<Record<string, readonly ToolSpec[]>> | ((taskId: string) => readonly ToolSpec[] | undefined);
  /** Which episodes to export. @default all */
  filter?: (episode: EpisodeRecord) => boolean;
  /** Parquet rows per row group. @default 512 */
  rowGroupSize?: number;
}

function sameIds(sequence: readonly number[], at: number, ids: readonly number[]): boolean {
  if (at + ids.length > sequence.length) return false;
  for (let i = 0; i < ids.length; i++) if (sequence[at + i] !== ids[i]) return false;
  return true;
}

/** Builds the token sequence and loss mask of an episode (see the module comment); undefined without token data. */
export function buildTokenSequence(turns: readonly TurnRecord[]): TokenSequence | undefined {
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

/** The export row of one episode. */
export function episodeRow(episode: EpisodeRecord, tools?: readonly ToolSpec[]): ExportRow {
  const tokens = buildTokenSequence(episode.turns);
  const firstExact = episode.turns.find((turn) => turn.tokens !== undefined);
  const costs = episode.turns.filter((turn) => turn.costUsd !== undefined);
  return {
    run_id: episode.runId,
    episode_id: episode.episodeId,
    task_id: episode.taskId,
    epoch: episode.epoch,
    seed: episode.seed,
    attempt: episode.attempt,
    agent: episode.agent,
    status: episode.status,
    limit: episode.limit ?? null,
    error: episode.error ?? null,
    messages: toOpenAIMessages(episode.messages),
    tools: tools ? toOpenAITools(tools) : null,
    answer: episode.answer ?? null,
    num_turns: episode.turns.length,
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
    token_ids: tokens?.ids ?? null,
    loss_mask: tokens?.lossMask ?? null,
    logprobs: tokens?.logprobs ?? null,
    prompt_length: firstExact?.tokens ? firstExact.tokens.promptIds.length : null,
    token_spans: tokens?.spans ?? null,
    token_mismatched_turns: tokens?.mismatchedTurns ?? null,
    token_missing_turns: tokens?.missingTurns ?? null,
  };
}

/** The Parquet schema of {@link ExportRow}: nested values are JSON text, token data are list columns. */
export const EXPORT_PARQUET_COLUMNS: readonly ParquetColumn[] = [
  { name: 'run_id', type: 'string' },
  { name: 'episode_id', type: 'string' },
  { name: 'task_id', type: 'string' },
  { name: 'epoch', type: 'int64' },
  { name: 'seed', type: 'int64' },
  { name: 'attempt', type: 'int64' },
  { name: 'agent', type: 'string' },
  { name: 'status', type: 'string' },
  { name: 'limit', type: 'string' },
  { name: 'error', type: 'string' },
  { name: 'messages', type: 'string' },
  { name: 'tools', type: 'string' },
  { name: 'answer', type: 'string' },
  { name: 'num_turns', type: 'int64' },
  { name: 'turn_rewards', type: 'double', list: true },
  { name: 'turn_reward_components', type: 'string' },
  { name: 'turn_returns', type: 'double', list: true },
  { name: 'reward', type: 'double' },
  { name: 'reward_breakdown', type: 'string' },
  { name: 'prompt_tokens', type: 'int64' },
  { name: 'completion_tokens', type: 'int64' },
  { name: 'cost_usd', type: 'double' },
  { name: 'tool_calls', type: 'int64' },
  { name: 'tool_problems', type: 'string' },
  { name: 'empty_turns', type: 'int64' },
  { name: 'duration_ms', type: 'double' },
  { name: 'token_ids', type: 'int64', list: true },
  { name: 'loss_mask', type: 'int32', list: true },
  { name: 'logprobs', type: 'double', list: true },
  { name: 'prompt_length', type: 'int64' },
  { name: 'token_spans', type: 'string' },
  { name: 'token_mismatched_turns', type: 'int64', list: true },
  { name: 'token_missing_turns', type: 'int64', list: true },
];

const JSON_COLUMNS = new Set(
  EXPORT_PARQUET_COLUMNS.filter((column) => column.type === 'string' && !column.list).map(
    (column) => column.name,
  ),
);

/** A row with its nested values as JSON text, as the Parquet file holds them. */
function parquetRow(row: ExportRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    out[key] =
      JSON_COLUMNS.has(key) && value !== null && typeof value !== 'string' ? JSON.stringify(value) : value;
  }
  return out;
}

/**
 * Writes one row per episode of a run (a {@link RunStore} or episode records) to
 * `options.out` as JSONL or Parquet, and returns how many it wrote. Throws STORE_FAILED
 * from the store when its records cannot be read, and the file system's error when the
 * file cannot be written.
 */
export async function exportRun(
  source: RunStore | Iterable<EpisodeRecord>,
  options: ExportOptions,
): Promise<{ rows: number; out: string; format: ExportOptions['format'] }> {
  const episodes = 'episodes' in source && typeof source.episodes === 'function' ? source.episodes() : source;
  const toolsOf = (taskId: string): readonly ToolSpec[] | undefined =>
    typeof options.tools === 'function' ? options.tools(taskId) : options.tools?.[taskId];
  function* rows(): Generator<ExportRow> {
    for (const episode of episodes as Iterable<EpisodeRecord>) {
      if (options.filter && !options.filter(episode)) continue;
      yield episodeRow(episode, toolsOf(episode.taskId));
    }
  }
  if (options.format === 'parquet') {
    const result = writeParquetFile(
      options.out,
      EXPORT_PARQUET_COLUMNS,
      (function* () {
        for (const row of rows()) yield parquetRow(row);
      })(),
      options.rowGroupSize === undefined ? {} : { rowGroupSize: options.rowGroupSize },
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
