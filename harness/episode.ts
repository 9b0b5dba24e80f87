/**
 * The Episode contract: one agent on one task with one seed — the record that is stored,
 * reported, exported and trained on, and the events streamed while it runs.
 */
import type { Message, Reasoning, StopReason, TokenRecord, ToolCall, Usage } from './agent.ts';
import type { RewardBreakdown, VerifierResult } from './reward.ts';
import type { RecordedImage } from './recorded-images.ts';
import type { ImagePart, ToolSpec } from './tool.ts';

/**
 * How an episode ended:
 * - `completed`: the agent submitted or stopped calling tools, and was verified;
 * - `limit`: a limit ended the agent's part (it was still verified); `limit` says which;
 * - `truncated`: the model's output was cut (its token limit, its context window;
 *   `truncation` says which): the agent's part ended there, and it was verified;
 * - `refused`: the model refused or the provider filtered its output (`refusal` says
 *   which); it was verified;
 * - `sandbox-killed`: the agent's own processes ended its sandbox (`kill -9 -1`, its
 *   memory use): the agent's outcome, scored 0 (nothing could be verified), counted in
 *   means and trained on like any other; `error` holds the evidence;
 * - `agent-error`: the agent's backend failed in a way that is the agent's (e.g. the model
 *   API refused the request);
 * - `infra-error`: the sandbox, the engine, the model server or another part of the
 *   infrastructure failed, from outside the agent's reach (retryable).
 */
export type EpisodeStatus =
  'completed' | 'limit' | 'truncated' | 'refused' | 'sandbox-killed' | 'agent-error' | 'infra-error';

/**
 * True when an episode's record is the agent's outcome (`completed`, `limit`,
 * `truncated`, `refused`, `sandbox-killed`): scored, counted in means and trained on.
 * Faults (`agent-error`, `infra-error`) are not.
 */
export function isAgentOutcome(episode: Pick<EpisodeRecord, 'status'>): boolean {
  return episode.status !== 'agent-error' && episode.status !== 'infra-error';
}

export type LimitKind = 'turns' | 'time' | 'tokens' | 'model-calls' | 'cost';

/** Why a tool call produced an error observation. */
export type ToolCallProblem = 'unknown-tool' | 'invalid-json' | 'invalid-arguments' | 'tool-error';

/**
 * The result of one tool call. `Image` is how its images are held: `ImagePart` (bytes
 * inline) while the episode runs and in the record the loop returns; `RecordedImage` in
 * records read back from a run store, where large images are files of the run (see
 * recorded-images.ts).
 */
export interface ToolResultRecord<Image = ImagePart> {
  callId: string;
  name: string;
  /** The output text the agent saw. */
  output: string;
  images?: Image[];
  isError: boolean;
  /** Set when the call failed, saying how. */
  problem?: ToolCallProblem;
  durationMs: number;
}

/** One turn; `Image` as in {@link ToolResultRecord}. */
export interface TurnRecord<Image = ImagePart> {
  index: number;
  /** The assistant's text. */
  text: string | null;
  /** The model's reasoning on this turn, when the backend returned it. */
  reasoning?: Reasoning;
  toolCalls: ToolCall[];
  toolResults: ToolResultRecord<Image>[];
  finishReason?: string;
  /** Why the model stopped, normalised (see `StopReason`). */
  stopReason?: StopReason;
  usage?: Usage;
  tokens?: TokenRecord;
  /** True when token-exact data was asked for but the backend did not return it. */
  tokenExactUnavailable?: boolean;
  costUsd?: number;
  /** Turn-level reward components, by name. */
  rewards: Record<string, number>;
  /** Weighted sum of `rewards`. */
  reward: number;
  /** The return G_t credit assignment gave this turn (for the trainer). */
  return?: number;
  startedAt: string;
  /** Time spent in the agent (model call) and in tools, in ms. */
  agentMs: number;
  toolMs: number;
}

export interface EpisodeStats {
  toolCalls: number;
  /** Calls that produced an error observation, by kind. */
  toolProblems: Record<ToolCallProblem, number>;
  /** Turns with neither text nor tool calls. */
  emptyTurns: number;
}

/**
 * One episode. `Image` is how its images are held: `ImagePart` (bytes inline) in the
 * record the loop returns and passes to group rewards and the store; `RecordedImage` in
 * a record read back from a run store ({@link RecordedEpisode}).
 */
export interface EpisodeRecord<Image = ImagePart> {
  runId: string;
  episodeId: string;
  taskId: string;
  /** 0-based epoch (repeat) index of this task in the run. */
  epoch: number;
  seed: number;
  /** 1-based attempt number; > 1 after infrastructure retries. */
  attempt: number;
  agent: string;
  status: EpisodeStatus;
  /** Which limit ended the episode, when status is `limit`. */
  limit?: LimitKind;
  /** What cut the model's output, when status is `truncated`. */
  truncation?: 'length' | 'context-exceeded';
  /** Who refused, when status is `refused`: the model, or the provider's content filter. */
  refusal?: 'refusal' | 'content-filter';
  /** The fault, when status is `agent-error` or `infra-error`. */
  error?: { code: string; message: string; retryable: boolean };
  /** Errors of earlier attempts that were retried. */
  previousAttempts: { code: string; message: string }[];
  /** The whole conversation in chat-completions shape. */
  messages: Message<Image>[];
  /** The tools the agent was offered. */
  tools: ToolSpec[];
  turns: TurnRecord<Image>[];
  /** What the agent submitted, if it used `submit` with an answer. */
  answer?: string;
  verifier?: VerifierResult;
  reward: RewardBreakdown;
  usage: Usage;
  stats: EpisodeStats;
  startedAt: string;
  endedAt: string;
  durationMs: number;
}

/**
 * An episode record as a run store reads it back: images up to the store's inline limit
 * inline, larger ones references to files of the run (`images/<sha256>.<ext>`), those past
 * the episode's image budget `omitted`. Read their bytes with `readRecordedImage`. A
 * live record (`EpisodeRecord`) is one too.
 */
export type RecordedEpisode = EpisodeRecord<RecordedImage>;

/** Events streamed while an episode runs, named `<noun>-<action>`. */
export type EpisodeEvent =
  | { type: 'episode-start'; episodeId: string; taskId: string; attempt: number }
  | { type: 'turn-start'; episodeId: string; turnIndex: number }
  | { type: 'tool-call'; episodeId: string; turnIndex: number; call: ToolCall }
  | { type: 'tool-result'; episodeId: string; turnIndex: number; result: ToolResultRecord }
  | { type: 'turn-end'; episodeId: string; turn: TurnRecord }
  | { type: 'verify-start'; episodeId: string }
  | { type: 'verify-end'; episodeId: string; result: VerifierResult }
  | { type: 'episode-end'; episode: EpisodeRecord };

export type EpisodeEventListener = (event: EpisodeEvent) => void;
