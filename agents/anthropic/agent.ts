/**
 * The Anthropic agent: one Messages API call (`POST /v1/messages`) per turn over plain
 * `fetch`. The system prompt travels apart from the messages; tool calls are `tool_use`
 * blocks and their results `tool_result` blocks, all results of one assistant turn in
 * one user message, as the API requires.
 *
 * Request and response shapes follow the official SDK's types
 * (anthropics/anthropic-sdk-typescript, `src/resources/messages/messages.ts`:
 * `MessageCreateParamsBase`, `Message`, `StopReason`, `ThinkingBlock`,
 * `RedactedThinkingBlock`, `ThinkingConfigParam`, `CacheControlEphemeral`, `Usage`,
 * `ToolResultBlockParam`); what each model accepts is in `./models.ts`.
 *
 * - Thinking: `thinking` and `redacted_thinking` blocks are kept verbatim (signatures
 *   included), with the turn's other blocks in their order, in `reasoning.blocks`, and
 *   sent back exactly so in the assistant message of later requests ("Thinking blocks
 *   must be passed back unmodified and in their original order", SDK `ThinkingBlockParam`).
 * - Stop reasons (SDK `StopReason`): `end_turn` / `stop_sequence` → `stop`, `tool_use` →
 *   `tool-calls`, `max_tokens` → `length`, `model_context_window_exceeded` →
 *   `context-exceeded`, `refusal` → `refusal`; `pause_turn` ("You may provide the
 *   response back as-is in a subsequent request to let the model continue", SDK
 *   `Message.stop_reason`) is continued within the same `act`, at most
 *   `maxPauseContinuations` times, and reported as `length` past that.
 * - Prompt caching: `cache_control` breakpoints on the last tool, the system prompt and
 *   the last block of the last user message (3 of the 4 the API allows); cache writes
 *   and reads are read from `usage` and priced.
 */
import { z } from 'zod';
import {
  ERROR_CODES,
  PaddockError,
  formatZodIssues,
  type Agent,
  type AgentInput,
  type AgentSession,
  type EpisodeContext,
  type AssistantTurn,
  type ImagePart,
  type Message,
  type Reasoning,
  type StopReason,
  type ToolCall,
  type ToolSpec,
  type Usage,
} from '../../harness/index.ts';
import {
  joinUrl,
  postJson,
  probeEndpoint,
  type PriceTable,
  type ProbeResult,
  type RetryOptions,
} from '../http.ts';
import { anthropicModelRules, samplingParameters, type DroppedParameter } from './models.ts';

/** The base URL used when neither the options nor `ANTHROPIC_BASE_URL` name one. */
export const DEFAULT_ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

/** The `anthropic-version` header sent with every call. */
export const ANTHROPIC_VERSION = '2023-06-01';

/** The system prompt used when neither the task nor the options give one. */
export const DEFAULT_ANTHROPIC_SYSTEM_PROMPT =
  'You are an autonomous agent that completes tasks by calling the tools you are given. ' +
  'Work step by step: use the tools to inspect and change the environment, read their results ' +
  'carefully, and fix your mistakes. When the task is done, call the `submit` tool ' +
  '(with your final answer if the task asks for one).';

/** `max_tokens` when none is given and thinking is off. */
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 4096;

/** `max_tokens` when none is given and thinking is adaptive (room to think and answer). */
export const DEFAULT_ANTHROPIC_ADAPTIVE_MAX_TOKENS = 16_000;

/** The smallest `budget_tokens` the API takes (SDK `ThinkingConfigEnabled`). */
export const MIN_THINKING_BUDGET_TOKENS = 1024;

/** How often one `act` continues a `pause_turn` before reporting the turn cut. */
export const DEFAULT_MAX_PAUSE_CONTINUATIONS = 5;

/**
 * Extended thinking (SDK `ThinkingConfigParam`):
 * - `enabled`: a fixed budget of thinking tokens (≥ 1024, below `max_tokens`; models up
 *   to the 4.6 generation);
 * - `adaptive`: the model decides how much to think (Opus/Sonnet 4.6 and later; the
 *   only form Opus 4.7 and later accept); steer it with `effort`;
 * - `disabled`: says so explicitly (refused by Mythos and Fable models).
 * `display: 'omitted'` returns thinking blocks with their signatures but no text.
 */
export type AnthropicThinking =
  | { type: 'enabled'; budgetTokens: number; display?: 'summarized' | 'omitted' }
  | { type: 'adaptive'; display?: 'summarized' | 'omitted' }
  | { type: 'disabled' };

/** Effort levels of `output_config.effort` (SDK `OutputConfig`). */
export type AnthropicEffort = 'low' | 'medium' | 'high' | 'xhigh' | 'max';

/**
 * Prices of a model in USD per million tokens. Cache prices default to Anthropic's
 * multipliers of the input price (prompt caching docs, "Pricing"): a 5-minute cache
 * write costs 1.25×, a 1-hour write 2×, a cache read 0.1×.
 */
export interface AnthropicPriceTable extends PriceTable {
  /** Price of tokens written to a 5-minute cache entry. @default 1.25 × inputPerMTok */
  cacheWritePerMTok?: number;
  /** Price of tokens written to a 1-hour cache entry. @default 2 × inputPerMTok */
  cacheWrite1hPerMTok?: number;
  /** Price of tokens read from the cache. @default 0.1 × inputPerMTok */
  cacheReadPerMTok?: number;
}

/** Prompt caching: on (5-minute entries), off, or on with a TTL. */
export type AnthropicCacheOption = boolean | { ttl?: '5m' | '1h' };

export interface AnthropicAgentOptions {
  /** The model name, e.g. `claude-sonnet-4-5`. */
  model: string;
  /** Base URL of the API, without `/v1`. @default env ANTHROPIC_BASE_URL, else https://api.anthropic.com */
  baseUrl?: string;
  /** Sent as `x-api-key`. @default env ANTHROPIC_API_KEY; none is sent when absent (local servers). */
  apiKey?: string;
  /**
   * Cap on output tokens per call, thinking included (the API requires one).
   * @default 4096; budget + 4096 with a thinking budget; 16 000 with adaptive thinking
   */
  maxTokens?: number;
  /** Sent only where the model takes it (see `./models.ts`); left out with thinking on. */
  temperature?: number;
  /** Sent only where the model takes it; with thinking on, only between 0.95 and 1. */
  topP?: number;
  /** Sent only where the model takes it; never with thinking on. */
  topK?: number;
  /** Extended thinking. @default none (the model's default: no thinking, except models that always think) */
  thinking?: AnthropicThinking;
  /** `output_config.effort` (how much the model spends; adaptive thinking's depth). */
  effort?: AnthropicEffort;
  /**
   * Prompt caching: `cache_control` breakpoints on the last tool, the system prompt and
   * the last user turn. `{ ttl: '1h' }` asks for 1-hour entries. @default true (5 minutes)
   */
  cache?: AnthropicCacheOption;
  /** System prompt for tasks that have none (a task's own `systemPrompt` wins). @default DEFAULT_ANTHROPIC_SYSTEM_PROMPT */
  systemPrompt?: string;
  /** Limit of one HTTP attempt, in ms. Thinking models take longer: raise it. @default 120_000 */
  timeoutMs?: number;
  /**
   * Cap on one response body, in bytes (spec option `max_response_bytes`): a longer reply
   * fails the call with MODEL_CALL_FAILED saying the cap bit, without being held in
   * memory. @default 33_554_432 (32 MiB)
   */
  maxResponseBytes?: number;
  /** Price of the model; turns then carry `costUsd`, cache writes and reads priced as such. */
  price?: AnthropicPriceTable;
  /** Retries of retryable faults (429, 529, 5xx, dropped connections). @default 5 attempts */
  retry?: RetryOptions;
  /** `pause_turn` continuations within one turn before it is reported cut (`length`). @default 5 */
  maxPauseContinuations?: number;
  /** Extra HTTP headers (e.g. `anthropic-beta`). */
  headers?: Record<string, string>;
  /** Extra request fields (`metadata`, `stop_sequences`…), sent as given, last (they win). */
  extraBody?: Record<string, unknown>;
  /** The agent's name in records. @default `anthropic:<model>` */
  name?: string;
  /** Where the defaults are read from. @default process.env */
  env?: Record<string, string | undefined>;
}

/** SDK `CacheControlEphemeral`. */
type CacheControl = { type: 'ephemeral'; ttl?: '5m' | '1h' };
type TextBlock = { type: 'text'; text: string; cache_control?: CacheControl };
type ImageBlock = {
  type: 'image';
  source: { type: 'base64'; media_type: string; data: string };
  cache_control?: CacheControl;
};
type ToolUseBlock = { type: 'tool_use'; id: string; name: string; input: unknown };
type ToolResultBlock = {
  type: 'tool_result';
  tool_use_id: string;
  content: string | (TextBlock | ImageBlock)[];
  is_error?: boolean;
  cache_control?: CacheControl;
};

/** A Messages API message, as the API takes it. */
export type AnthropicMessage =
  | { role: 'user'; content: (TextBlock | ImageBlock | ToolResultBlock)[] }
  /** Text and `tool_use` blocks, and blocks replayed verbatim (`thinking`, `redacted_thinking`, server tool blocks). */
  | { role: 'assistant'; content: (TextBlock | ToolUseBlock | Record<string, unknown>)[] };

/** A Messages API tool. */
export interface AnthropicTool {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
  cache_control?: CacheControl;
}

function imageBlock(image: ImagePart): ImageBlock {
  return { type: 'image', source: { type: 'base64', media_type: image.mimeType, data: image.dataBase64 } };
}

/** Tool-use input must be an object; arguments that are not a JSON object (a model's typo) are sent as `{}`. */
function toolInput(argumentsText: string): unknown {
  try {
    const value: unknown = JSON.parse(argumentsText === '' ? '{}' : argumentsText);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    // Invalid JSON cannot be replayed as an object; the tool result already told the model so.
    return {};
  }
}

function isBlock(value: unknown): value is Record<string, unknown> & { type: string } {
  return (
    value !== null && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string'
  );
}

/** How the text blocks of one turn are joined into the turn's text. */
const TEXT_JOINER = '';

/**
 * The content of an assistant message. A message whose `reasoning.blocks` hold the
 * turn's content as the API returned it is replayed from them, verbatim and in order
 * (thinking blocks must come back "unmodified and in their original order", SDK
 * `ThinkingBlockParam`); only the `tool_use` blocks take the id, name and input of the
 * message's tool calls (the loop may have renamed a duplicate id). When the message no
 * longer matches its blocks (its text or its calls were changed), its thinking blocks
 * come first, then its text and calls.
 */
function assistantContent(message: Extract<Message, { role: 'assistant' }>): AnthropicMessage['content'] {
  const calls = message.toolCalls ?? [];
  const blocks = (message.reasoning?.blocks ?? []).filter(isBlock);
  const useBlock = (call: ToolCall): ToolUseBlock => ({
    type: 'tool_use',
    id: call.id,
    name: call.name,
    input: toolInput(call.arguments),
  });
  if (blocks.length > 0) {
    const texts = blocks.filter((b) => b.type === 'text').map((b) => String(b.text));
    const uses = blocks.filter((b) => b.type === 'tool_use');
    if (uses.length === calls.length && texts.join(TEXT_JOINER) === (message.content ?? '')) {
      let next = 0;
      return blocks.map((block) => {
        if (block.type !== 'tool_use') return block;
        const call = calls[next++]!;
        return { ...block, id: call.id, name: call.name, input: toolInput(call.arguments) };
      });
    }
  }
  const content: AnthropicMessage['content'] = blocks.filter(
    (b) => b.type === 'thinking' || b.type === 'redacted_thinking',
  );
  if (message.content) content.push({ type: 'text', text: message.content });
  for (const call of calls) content.push(useBlock(call));
  return content;
}

/**
 * Whether a tool message reports a failure. The harness's tool messages do not carry
 * the flag yet; a message that has `isError: true` (the proposed contract field) is read.
 */
function toolFailed(message: Extract<Message, { role: 'tool' }>): boolean {
  return message.isError === true;
}

/**
 * Converts paddock messages to the Messages API: system messages become the separate
 * `system` text; consecutive messages of one role (tool results, a user message after
 * them) are merged into one message, as the API requires alternating roles; assistant
 * messages become their verbatim blocks (thinking included) or text and `tool_use`
 * blocks; an assistant message with none is left out (the API refuses empty content);
 * failed tool results carry `is_error: true`.
 */
export function toAnthropicMessages(messages: readonly Message[]): {
  system: string[];
  messages: AnthropicMessage[];
} {
  const system: string[] = [];
  const out: AnthropicMessage[] = [];
  const push = (message: AnthropicMessage): void => {
    const last = out.at(-1);
    if (last && last.role === message.role) {
      (last.content as unknown[]).push(...message.content);
    } else {
      out.push(message);
    }
  };
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        system.push(message.content);
        break;
      case 'user':
        push({
          role: 'user',
          content: [
            ...(message.content === '' ? [] : [{ type: 'text' as const, text: message.content }]),
            ...(message.images ?? []).map(imageBlock),
          ],
        });
        break;
      case 'assistant': {
        const content = assistantContent(message);
        if (content.length > 0) push({ role: 'assistant', content });
        break;
      }
      case 'tool':
        push({
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: message.toolCallId,
              content:
                message.images && message.images.length > 0
                  ? [{ type: 'text', text: message.content }, ...message.images.map(imageBlock)]
                  : message.content,
              ...(toolFailed(message) ? { is_error: true } : {}),
            },
          ],
        });
        break;
    }
  }
  return { system, messages: out };
}

/** Converts tool specs to Messages API `tools`. */
export function toAnthropicTools(tools: readonly ToolSpec[]): AnthropicTool[] {
  return tools.map((tool) => ({
    name: tool.name,
    description: tool.description,
    input_schema: tool.inputSchema,
  }));
}

/**
 * What the agent checks of a Messages API response (SDK `Message`); the blocks
 * themselves are kept from the raw body, so that nothing (a signature, a citation) is
 * lost.
 */
const MessageResponseSchema = z.object({
  content: z.array(
    z.union([
      z.object({ type: z.literal('text'), text: z.string() }),
      z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.unknown() }),
      z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() }),
      z.object({ type: z.literal('redacted_thinking'), data: z.string() }),
      // Server tool blocks and newer kinds: replayed verbatim, not part of the text or calls.
      z.object({ type: z.string() }),
    ]),
  ),
  stop_reason: z.string().nullish(),
  usage: z
    .object({
      input_tokens: z.number(),
      output_tokens: z.number(),
      cache_creation_input_tokens: z.number().nullish(),
      cache_read_input_tokens: z.number().nullish(),
      cache_creation: z
        .object({ ephemeral_5m_input_tokens: z.number(), ephemeral_1h_input_tokens: z.number() })
        .nullish(),
    })
    .nullish(),
});

/** Token counts of one turn (all its calls), as the API reports them. */
export interface AnthropicUsage {
  inputTokens: number;
  outputTokens: number;
  cacheWrite5mTokens: number;
  cacheWrite1hTokens: number;
  cacheReadTokens: number;
}

/** Maps an API `stop_reason` (SDK `StopReason`) to paddock's; `pause_turn` is handled by `act`. */
export function anthropicStopReason(stopReason: string | null | undefined): StopReason | undefined {
  switch (stopReason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'tool_use':
      return 'tool-calls';
    case 'max_tokens':
    case 'pause_turn':
      return 'length';
    case 'model_context_window_exceeded':
      return 'context-exceeded';
    case 'refusal':
      return 'refusal';
    default:
      return undefined;
  }
}

/** USD of one turn's usage under `price` (cache writes and reads at their own prices). */
export function anthropicCostUsd(price: AnthropicPriceTable, usage: AnthropicUsage): number {
  const write5m = price.cacheWritePerMTok ?? price.inputPerMTok * 1.25;
  const write1h = price.cacheWrite1hPerMTok ?? price.inputPerMTok * 2;
  const read = price.cacheReadPerMTok ?? price.inputPerMTok * 0.1;
  return (
    (usage.inputTokens * price.inputPerMTok +
      usage.cacheWrite5mTokens * write5m +
      usage.cacheWrite1hTokens * write1h +
      usage.cacheReadTokens * read +
      usage.outputTokens * price.outputPerMTok) /
    1_000_000
  );
}

/**
 * An {@link Agent} backed by Anthropic's Messages API (or a server speaking it). See
 * {@link AnthropicAgentOptions} for the settings and their defaults.
 *
 * The constructor throws CONFIG_INVALID for a thinking configuration the model refuses
 * (a budget below 1024 or not below `max_tokens`, a budget for a model that thinks only
 * adaptively, adaptive thinking for a model that has no such mode…). Sampling
 * parameters the model refuses are left out of the request and listed in
 * `droppedParameters`.
 *
 * `act` rejects with MODEL_UNREACHABLE (retryable) when the API cannot be reached or
 * keeps failing (refused or dropped connections, no answer within `timeoutMs`, 5xx, 429,
 * 529) after the retries; with MODEL_CALL_FAILED when it answers a non-retryable status
 * (400, 401, 404…) or a body that is not a message or passes `maxResponseBytes`; every
 * attempt's error is in `details.attempts`. With ABORTED when the signal aborts.
 */
export class AnthropicAgent implements Agent {
  readonly name: string;
  readonly model: string;
  readonly baseUrl: string;
  /** Counters of this agent's calls (`pauses`: `pause_turn` continuations). */
  readonly stats = { calls: 0, retries: 0, latencyMs: 0, pauses: 0 };
  /** Sampling parameters given but not sent, because the model (or thinking) refuses them. */
  readonly droppedParameters: readonly DroppedParameter[];
  private readonly options: AnthropicAgentOptions;
  private readonly apiKey: string | undefined;
  private readonly fixedBody: Record<string, unknown>;
  private readonly cacheControl: CacheControl | undefined;

  /** The system prompt for tasks that have none; the loop records it in the conversation. */
  get systemPrompt(): string {
    return this.options.systemPrompt ?? DEFAULT_ANTHROPIC_SYSTEM_PROMPT;
  }

  constructor(options: AnthropicAgentOptions) {
    const env = options.env ?? process.env;
    this.options = options;
    this.model = options.model;
    this.baseUrl = options.baseUrl ?? (env.ANTHROPIC_BASE_URL || DEFAULT_ANTHROPIC_BASE_URL);
    this.apiKey = options.apiKey ?? (env.ANTHROPIC_API_KEY || undefined);
    this.name = options.name ?? `anthropic:${options.model}`;
    const cache = options.cache ?? true;
    this.cacheControl =
      cache === false
        ? undefined
        : cache === true || cache.ttl === undefined
          ? { type: 'ephemeral' }
          : { type: 'ephemeral', ttl: cache.ttl };

    const thinking = options.thinking;
    const maxTokens = this.checkThinking(thinking);
    const thinkingOn = thinking !== undefined && thinking.type !== 'disabled';
    const sampling = samplingParameters(
      this.model,
      {
        ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
        ...(options.topP === undefined ? {} : { topP: options.topP }),
        ...(options.topK === undefined ? {} : { topK: options.topK }),
      },
      thinkingOn,
    );
    this.droppedParameters = sampling.dropped;
    this.fixedBody = {
      max_tokens: maxTokens,
      ...(thinking === undefined
        ? {}
        : {
            thinking:
              thinking.type === 'enabled'
                ? {
                    type: 'enabled',
                    budget_tokens: thinking.budgetTokens,
                    ...(thinking.display ? { display: thinking.display } : {}),
                  }
                : thinking.type === 'adaptive'
                  ? { type: 'adaptive', ...(thinking.display ? { display: thinking.display } : {}) }
                  : { type: 'disabled' },
          }),
      ...(options.effort === undefined ? {} : { output_config: { effort: options.effort } }),
      ...sampling.params,
    };
  }

  /** Checks the thinking configuration against the model; returns the `max_tokens` to send. */
  private checkThinking(thinking: AnthropicThinking | undefined): number {
    const o = this.options;
    const invalid = (message: string): PaddockError =>
      new PaddockError(ERROR_CODES.CONFIG_INVALID, `${this.name}: ${message}`, {
        details: { model: this.model, thinking },
      });
    if (o.maxTokens !== undefined && !(Number.isInteger(o.maxTokens) && o.maxTokens >= 1)) {
      throw invalid(`max_tokens must be a positive integer, got ${o.maxTokens}`);
    }
    const rules = anthropicModelRules(this.model);
    if (!thinking) return o.maxTokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS;
    if (thinking.type === 'disabled') {
      if (!rules.thinking.disabled) throw invalid(`${this.model} cannot have thinking disabled`);
      return o.maxTokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS;
    }
    if (thinking.type === 'adaptive') {
      if (!rules.thinking.adaptive) {
        throw invalid(`${this.model} has no adaptive thinking; give a thinking budget (thinking_budget=…)`);
      }
      return o.maxTokens ?? DEFAULT_ANTHROPIC_ADAPTIVE_MAX_TOKENS;
    }
    if (!rules.thinking.budget) {
      throw invalid(
        `${this.model} supports only adaptive thinking (thinking=adaptive, effort=…), not a budget`,
      );
    }
    const budget = thinking.budgetTokens;
    if (!Number.isInteger(budget) || budget < MIN_THINKING_BUDGET_TOKENS) {
      throw invalid(`the thinking budget must be an integer ≥ ${MIN_THINKING_BUDGET_TOKENS}, got ${budget}`);
    }
    const maxTokens = o.maxTokens ?? budget + DEFAULT_ANTHROPIC_MAX_TOKENS;
    // With interleaved thinking (a beta), the budget may pass max_tokens (extended thinking docs).
    const interleaved = Object.entries(o.headers ?? {}).some(
      ([name, value]) => name.toLowerCase() === 'anthropic-beta' && value.includes('interleaved-thinking'),
    );
    if (budget >= maxTokens && !interleaved) {
      throw invalid(`the thinking budget (${budget}) must be below max_tokens (${maxTokens})`);
    }
    return maxTokens;
  }

  /** Opens the agent for one episode (each turn sends the whole conversation; no state is kept). */
  open(_episode: EpisodeContext): AgentSession {
    return { act: (input, options) => this.play(input, options) };
  }

  private async play(input: AgentInput, options: { signal: AbortSignal }): Promise<AssistantTurn> {
    const body = this.requestBody(input);
    const messages = body.messages as AnthropicMessage[];
    const maxPauses = this.options.maxPauseContinuations ?? DEFAULT_MAX_PAUSE_CONTINUATIONS;
    const content: Record<string, unknown>[] = [];
    const usage: AnthropicUsage = {
      inputTokens: 0,
      outputTokens: 0,
      cacheWrite5mTokens: 0,
      cacheWrite1hTokens: 0,
      cacheReadTokens: 0,
    };
    let sawUsage = false;
    let finishReason: string | undefined;
    for (let pauses = 0; ; pauses++) {
      const request =
        content.length === 0
          ? body
          : // A paused turn goes back as it came, as the last (assistant) message, to be continued.
            { ...body, messages: [...messages, { role: 'assistant', content: [...content] }] };
      const json = await this.call(request, options.signal);
      const parsed = MessageResponseSchema.safeParse(json);
      if (!parsed.success) {
        throw new PaddockError(
          ERROR_CODES.MODEL_CALL_FAILED,
          `${this.name}: the response is not a message:\n${formatZodIssues(parsed.error.issues)}`,
          { details: { issues: parsed.error.issues } },
        );
      }
      this.stats.calls++;
      // The raw blocks, not the parsed ones: every field (signatures…) goes back verbatim.
      content.push(...((json as { content: Record<string, unknown>[] }).content ?? []));
      const u = parsed.data.usage;
      if (u) {
        sawUsage = true;
        usage.inputTokens += u.input_tokens;
        usage.outputTokens += u.output_tokens;
        usage.cacheReadTokens += u.cache_read_input_tokens ?? 0;
        const written = u.cache_creation_input_tokens ?? 0;
        const oneHour =
          u.cache_creation?.ephemeral_1h_input_tokens ?? (this.cacheControl?.ttl === '1h' ? written : 0);
        usage.cacheWrite1hTokens += oneHour;
        usage.cacheWrite5mTokens += Math.max(0, written - oneHour);
      }
      finishReason = parsed.data.stop_reason ?? undefined;
      if (finishReason !== 'pause_turn' || pauses >= maxPauses) break;
      this.stats.pauses++;
    }
    return this.turn(content, finishReason, sawUsage ? usage : undefined);
  }

  /** One Messages API call, with the retries of `postJson`. */
  private async call(body: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const response = await postJson({
      url: this.endpoint('messages'),
      headers: this.headers(),
      body,
      timeoutMs: this.options.timeoutMs ?? 120_000,
      ...(this.options.maxResponseBytes === undefined
        ? {}
        : { maxResponseBytes: this.options.maxResponseBytes }),
      signal,
      label: this.name,
      ...(this.options.retry ? { retry: this.options.retry } : {}),
    });
    this.stats.retries += response.attempts - 1;
    this.stats.latencyMs += response.latencyMs;
    return response.json;
  }

  /** The turn made of the blocks of all calls of one `act`. */
  private turn(
    content: Record<string, unknown>[],
    finishReason: string | undefined,
    usage: AnthropicUsage | undefined,
  ): AssistantTurn {
    const stopReason = anthropicStopReason(finishReason);
    const refused = stopReason === 'refusal';
    const texts: string[] = [];
    const thoughts: string[] = [];
    const toolCalls: ToolCall[] = [];
    let verbatim = false;
    for (const block of content) {
      if (block.type === 'text' && typeof block.text === 'string') texts.push(block.text);
      else if (block.type === 'tool_use') {
        toolCalls.push({
          id: String(block.id),
          name: String(block.name),
          arguments: JSON.stringify(block.input ?? {}),
        });
      } else {
        // Thinking, redacted thinking, server tool blocks: the turn must be replayed verbatim.
        verbatim = true;
        if (block.type === 'thinking' && typeof block.thinking === 'string') thoughts.push(block.thinking);
      }
    }
    const reasoning: Reasoning | undefined = verbatim
      ? { text: thoughts.join('\n\n'), ...(refused ? {} : { blocks: content }) }
      : undefined;
    const promptTokens = usage
      ? usage.inputTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens + usage.cacheReadTokens
      : 0;
    const turnUsage: Usage | undefined = usage
      ? { promptTokens, completionTokens: usage.outputTokens }
      : undefined;
    const price = this.options.price;
    return {
      // A refusal is not an answer: its partial output is neither text nor calls to run.
      text: !refused && texts.length > 0 ? texts.join(TEXT_JOINER) : null,
      toolCalls: refused ? [] : toolCalls,
      ...(reasoning ? { reasoning } : {}),
      ...(turnUsage ? { usage: turnUsage } : {}),
      ...(finishReason ? { finishReason } : {}),
      ...(stopReason ? { stopReason } : {}),
      ...(price && usage ? { costUsd: anthropicCostUsd(price, usage) } : {}),
    };
  }

  /**
   * Whether the API answers at all: `GET /v1/models` ("List Models",
   * https://docs.anthropic.com/en/api/models-list, with the `x-api-key` and
   * `anthropic-version` headers of every call) with its own 5 s deadline. Any status
   * below 500 counts as an answer. Never rejects.
   */
  probe(options: { signal?: AbortSignal } = {}): Promise<ProbeResult> {
    return probeEndpoint({
      url: this.endpoint('models'),
      headers: this.headers(),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** `<base>/v1/<path>`, whether or not the base URL already ends in `/v1`. */
  private endpoint(path: string): string {
    return joinUrl(this.baseUrl, /\/v1\/?$/.test(this.baseUrl) ? path : `v1/${path}`);
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = {
      'anthropic-version': ANTHROPIC_VERSION,
      ...this.options.headers,
    };
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    return headers;
  }

  /** The request body of one turn (exposed for debugging). */
  requestBody(input: AgentInput): Record<string, unknown> {
    const o = this.options;
    const converted = toAnthropicMessages(input.messages);
    const systemText = (
      converted.system.length > 0 ? converted.system : [o.systemPrompt ?? DEFAULT_ANTHROPIC_SYSTEM_PROMPT]
    ).join('\n\n');
    const cache = this.cacheControl;
    const tools = toAnthropicTools(input.tools);
    const lastTool = tools.at(-1);
    if (cache && lastTool) lastTool.cache_control = cache;
    if (cache) markLastUserTurn(converted.messages, cache);
    const body: Record<string, unknown> = {
      model: this.model,
      ...this.fixedBody,
      system:
        cache && systemText !== '' ? [{ type: 'text', text: systemText, cache_control: cache }] : systemText,
      messages: converted.messages,
    };
    if (tools.length > 0) body.tools = tools;
    return { ...body, ...o.extraBody };
  }
}

/**
 * Puts a cache breakpoint on the last block of the last user message, so that the next
 * turn reads the whole conversation so far from the cache (the API caches the prefix up
 * to a breakpoint: tools, system, messages). Empty text blocks cannot be cached; such a
 * block gets none.
 */
function markLastUserTurn(messages: AnthropicMessage[], cache: CacheControl): void {
  const last = messages.findLast((m) => m.role === 'user');
  const block = last?.content.at(-1);
  if (!block || (block.type === 'text' && block.text === '')) return;
  block.cache_control = cache;
}
