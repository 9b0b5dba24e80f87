/**
 * The OpenAI-compatible agent: one chat-completions call per turn, over plain `fetch`,
 * to any server that speaks the API with tools — OpenAI, vLLM, SGLang, DeepSeek, Ollama,
 * llama.cpp's server, OpenRouter. See agents/openai/README.md for every option and the
 * spec and source files each behaviour was checked against.
 *
 * - Reasoning: read from `reasoning` (vLLM) or `reasoning_content` (SGLang, DeepSeek),
 *   recorded on the turn, and sent back in later requests where the family expects it.
 * - Stop reasons: every `finish_reason`, a `refusal` and a context-length 400 map to a
 *   `stopReason`.
 * - Token-exact turns (vLLM, SGLang): the prompt's and the completion's ids and the
 *   sampled tokens' logprobs exactly as the server sent them, which distribution the
 *   logprobs are from and the sampling parameters; never re-tokenized. Drift from the
 *   previous turn's ids is recorded per turn, and token-in/token-out mode avoids it.
 */
import { z } from 'zod';
import {
  ERROR_CODES,
  PaddockError,
  formatZodIssues,
  isPaddockError,
  type Agent,
  type AgentInput,
  type AgentSession,
  type EpisodeContext,
  type AssistantTurn,
  type Message,
  type StopReason,
  type TokenRecord,
  type ToolCall,
  type Usage,
} from '../../harness/index.ts';
import {
  costUsd,
  joinUrl,
  postJson,
  probeEndpoint,
  type PostJsonResponse,
  type PriceTable,
  type ProbeResult,
  type RetryOptions,
} from '../http.ts';
import {
  familyDefaults,
  familyOf,
  type MaxTokensField,
  type ReasoningField,
  type ServerFamily,
} from './families.ts';
import { toOpenAIMessages, toOpenAITools } from '../../harness/openai-format.ts';
import { EpisodeTokens, driftIndex, parseHermesCompletion, spliceObservation } from './tito.ts';

/** The base URL used when neither the options nor `OPENAI_BASE_URL` name one. */
export const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';

/** The system prompt used when neither the task nor the options give one. */
export const DEFAULT_SYSTEM_PROMPT =
  'You are an autonomous agent that completes tasks by calling the tools you are given. ' +
  'Work step by step: use the tools to inspect and change the environment, read their results ' +
  'carefully, and fix your mistakes. When the task is done, call the `submit` tool ' +
  '(with your final answer if the task asks for one).';

export interface OpenAIAgentOptions {
  /** The model name the server knows, e.g. `gpt-4.1-mini`, `Qwen/Qwen3-8B`. */
  model: string;
  /** Base URL of the API, up to and including `/v1`. @default env OPENAI_BASE_URL, else https://api.openai.com/v1 */
  baseUrl?: string;
  /** Bearer token. @default env OPENAI_API_KEY; none is sent when absent (local servers). */
  apiKey?: string;
  /**
   * Which server family this is, for the defaults of `reasoningField` and
   * `maxTokensField` (see `families.ts`). @default by host: api.openai.com → `openai`,
   * api.deepseek.com → `deepseek`, openrouter.ai → `openrouter`, else `generic`
   */
  family?: ServerFamily;
  /** Sampling temperature; the server's default when absent. */
  temperature?: number;
  /** Nucleus sampling; the server's default when absent. */
  topP?: number;
  /** Cap on completion tokens per call; the server's default when absent. */
  maxTokens?: number;
  /**
   * The request field `maxTokens` goes in. @default the family's: `max_completion_tokens`
   * for OpenAI (its spec deprecates `max_tokens`, which reasoning models refuse), vLLM and
   * SGLang; `max_tokens` for DeepSeek, OpenRouter and generic servers.
   */
  maxTokensField?: MaxTokensField;
  /**
   * Sampling seed: a number, or `'episode'` for the episode's seed (AgentInput.seed).
   * @default none is sent
   */
  seed?: number | 'episode';
  /**
   * Where an assistant message's reasoning goes when the conversation is sent back:
   * `reasoning_content` (DeepSeek, which answers HTTP 400 without it after a tool call;
   * SGLang; vLLM), `reasoning` (vLLM's current name; OpenRouter) or `none`.
   * @default the family's: `none` for OpenAI, `reasoning` for OpenRouter, else `reasoning_content`
   */
  reasoningField?: ReasoningField;
  /** System prompt for tasks that have none (a task's own `systemPrompt` wins). @default DEFAULT_SYSTEM_PROMPT */
  systemPrompt?: string;
  /** Limit of one HTTP attempt, in ms. @default 120_000 */
  timeoutMs?: number;
  /**
   * Cap on one response body, in bytes (spec option `max_response_bytes`): a longer reply
   * fails the call with MODEL_CALL_FAILED saying the cap bit, without being held in
   * memory. @default 33_554_432 (32 MiB)
   */
  maxResponseBytes?: number;
  /** Price of the model (cached prompt tokens at `cachedInputPerMTok`); turns then carry `costUsd`. */
  price?: PriceTable;
  /** Retries of retryable faults (429, 5xx, dropped connections). @default 5 attempts */
  retry?: RetryOptions;
  /**
   * Token-exact turns:
   * - `true`: always ask the server for token ids and logprobs; a response without them
   *   leaves `tokens` unset and counts in {@link OpenAIAgent.tokenExactUnavailable};
   * - `false`: never ask;
   * - `'auto'`: ask servers reached over plain `http://` (local and cluster servers: vLLM,
   *   SGLang, Ollama, llama.cpp) but not hosted `https://` APIs, some of which refuse
   *   unknown fields; fill `tokens` when they come. A 400 naming the fields switches them
   *   off for the agent. (A vLLM behind https needs `tokenExact: true`.)
   * Both servers' field names are sent (vLLM `return_token_ids`,
   * `return_tokens_as_token_ids`; SGLang `return_prompt_token_ids`, `return_token_ids`;
   * `logprobs`): each ignores the other's.
   * @default 'auto'
   */
  tokenExact?: boolean | 'auto';
  /**
   * Token-in/token-out (needs token-exact turns): from the second turn on, the prompt is
   * the previous turn's exact prompt and completion ids followed by the new observation's
   * ids (cut from the server's `/tokenize` rendering), so the record matches what the
   * model sampled by construction.
   * - `'chat'`: chat completions with the ids in SGLang's `input_ids` (the server still
   *   parses tool calls and reasoning);
   * - `'completions'`: the completions endpoint with `prompt` as ids (vLLM, SGLang); the
   *   agent parses reasoning and Hermes-style tool calls itself (Qwen2.5/Qwen3 format);
   * - `'off'`: the server renders every prompt; drift is detected and recorded per turn.
   * @default 'off'
   */
  tito?: TitoMode;
  /** URL of the server's tokenizer endpoint. @default `<baseUrl without /v1>/tokenize` */
  tokenizeUrl?: string;
  /**
   * Which distribution the server's logprobs come from, as it was started (vLLM
   * `--logprobs-mode`; SGLang `SGLANG_RETURN_ORIGINAL_LOGPROB`), recorded on each turn.
   * @default the server's own default when it can be told from the response (vLLM: `raw`;
   * SGLang: `temperature-scaled`), else `unknown`
   */
  logprobsMode?: LogprobsMode;
  /** Extra HTTP headers (e.g. OpenRouter's `HTTP-Referer`). */
  headers?: Record<string, string>;
  /**
   * Extra request fields for server-specific options (`top_k`, `min_p`,
   * `repetition_penalty`, `chat_template_kwargs`, `reasoning_effort`, DeepSeek's
   * `thinking`…), merged last into every request body.
   */
  extraBody?: Record<string, unknown>;
  /** The agent's name in records. @default `openai:<model>` */
  name?: string;
  /** Where the defaults are read from. @default process.env */
  env?: Record<string, string | undefined>;
}

/** The token-in/token-out modes. */
export type TitoMode = 'off' | 'chat' | 'completions';

/** Which distribution recorded logprobs come from (see `TokenRecord.logprobsMode`). */
export type LogprobsMode = 'raw' | 'temperature-scaled' | 'processed';

/** Counters of an agent's calls, for reports and benchmarks. */
export interface ModelAgentStats {
  /** Turns answered. */
  calls: number;
  /** HTTP attempts that failed and were retried (over all calls). */
  retries: number;
  /** Sum of the successful attempts' latencies, in ms. */
  latencyMs: number;
  /** Turns where token-exact data was asked for (`tokenExact: true`) but the server sent none. */
  tokenExactUnavailable: number;
  /** Turns whose prompt the agent sent as token ids (token-in/token-out). */
  tokenInTurns: number;
  /** Token-exact turns whose prompt drifted from the previous turn's ids. */
  driftTurns: number;
}

/**
 * Token id arrays are long (a prompt of thousands of ids each turn): one loop checks them
 * instead of a schema per element, which is what keeps token-exact turns cheap.
 */
const TokenIdsSchema = z
  .custom<number[]>((value) => Array.isArray(value) && value.every((id) => Number.isInteger(id)), {
    message: 'expected an array of integer token ids',
  })
  .nullish();

/** Per-token logprob entries of a chat completion, checked in one loop for the same reason. */
const LogprobContentSchema = z
  .custom<{ token?: string; logprob: number }[]>(
    (value) =>
      Array.isArray(value) &&
      value.every(
        (entry: unknown) =>
          typeof entry === 'object' &&
          entry !== null &&
          typeof (entry as { logprob?: unknown }).logprob === 'number' &&
          ['string', 'undefined'].includes(typeof (entry as { token?: unknown }).token),
      ),
    { message: 'expected an array of { token, logprob } entries' },
  )
  .nullish();

const UsageSchema = z
  .object({
    prompt_tokens: z.number(),
    completion_tokens: z.number(),
    // OpenAI's CompletionUsage (openapi.yaml), also sent by vLLM and SGLang when asked.
    prompt_tokens_details: z.object({ cached_tokens: z.number().nullish() }).nullish(),
    // DeepSeek's name for the same (api-docs.deepseek.com, "Context Caching").
    prompt_cache_hit_tokens: z.number().nullish(),
  })
  .nullish();

/** What the agent reads of a chat-completions response; everything else is ignored. */
const ChatCompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({
          content: z.unknown().optional(),
          refusal: z.string().nullish(),
          // vLLM: `reasoning` (formerly `reasoning_content`); SGLang, DeepSeek: `reasoning_content`.
          reasoning: z.string().nullish(),
          reasoning_content: z.string().nullish(),
          tool_calls: z
            .array(
              z.object({
                id: z.string().nullish(),
                function: z.object({
                  name: z.string(),
                  arguments: z.unknown().optional(),
                }),
              }),
            )
            .nullish(),
        }),
        finish_reason: z.string().nullish(),
        logprobs: z
          .object({
            content: LogprobContentSchema,
          })
          .nullish(),
        // vLLM: `token_ids` on the choice; SGLang: `prompt_token_ids` and `token_ids` on
        // the choice, `meta_info.output_token_logprobs` as [logprob, id, text] triples.
        token_ids: TokenIdsSchema,
        prompt_token_ids: TokenIdsSchema,
        meta_info: z
          .object({
            output_token_logprobs: z
              .array(z.tuple([z.number(), z.number().int()]).rest(z.unknown()))
              .nullish(),
          })
          .nullish(),
      }),
    )
    .min(1),
  usage: UsageSchema,
  // vLLM: `prompt_token_ids` on the response.
  prompt_token_ids: TokenIdsSchema,
});

/** What the agent reads of a (legacy) completions response, in token-in/token-out mode. */
const CompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        text: z.string(),
        finish_reason: z.string().nullish(),
        logprobs: z
          .object({
            tokens: z.array(z.string()).nullish(),
            token_logprobs: z.array(z.number().nullable()).nullish(),
          })
          .nullish(),
        token_ids: TokenIdsSchema,
        prompt_token_ids: TokenIdsSchema,
      }),
    )
    .min(1),
  usage: UsageSchema,
});

const TokenizeSchema = z.object({ tokens: z.array(z.number().int()) });

type ChatCompletion = z.infer<typeof ChatCompletionSchema>;
type Choice = ChatCompletion['choices'][number];

/** Sampling parameters whose absence leaves the server's default (generation_config) in force. */
const SAMPLING_PARAMS = ['temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty'] as const;
const RECORDED_PARAMS = [
  ...SAMPLING_PARAMS,
  'presence_penalty',
  'frequency_penalty',
  'seed',
  'max_tokens',
  'max_completion_tokens',
] as const;

/** The token data of one response, before it becomes a {@link TokenRecord}. */
interface RawTokens {
  promptIds: number[];
  completionIds: number[];
  logprobs: number[];
  /** The server's default logprobs, when the response shape tells the server. */
  serverLogprobs: TokenRecord['logprobsMode'];
  /** The decoded text of each completion token, when the server sent it (see `TokenRecord.completionTexts`). */
  texts?: string[];
}

/**
 * An {@link Agent} backed by an OpenAI-compatible chat-completions server. See
 * {@link OpenAIAgentOptions} for the settings and their defaults.
 *
 * `act` rejects with MODEL_UNREACHABLE (retryable) when the server cannot be reached or
 * keeps failing (refused or dropped connections, no answer within `timeoutMs`, 5xx, 429)
 * after the retries; with MODEL_CALL_FAILED when it answers a non-retryable status (400,
 * 401, 404…) or a body that is not a chat completion or passes `maxResponseBytes`; every
 * attempt's error is in `details.attempts`. With ABORTED when the signal aborts. A 400
 * saying the conversation no longer fits the context window is not an error: the turn
 * comes back empty with `stopReason: 'context-exceeded'`, and the loop ends the episode
 * as truncated.
 */
/** One turn's input with the episode's seed (what `seed=episode` sends). */
export type ModelTurnInput = AgentInput & { seed?: number };

export class OpenAIAgent implements Agent {
  readonly name: string;
  private modelName: string;
  readonly baseUrl: string;
  /** The server family whose defaults apply. */
  readonly family: ServerFamily;
  /** Counters of this agent's calls. */
  readonly stats: ModelAgentStats = {
    calls: 0,
    retries: 0,
    latencyMs: 0,
    tokenExactUnavailable: 0,
    tokenInTurns: 0,
    driftTurns: 0,
  };
  private readonly options: OpenAIAgentOptions;
  private readonly apiKey: string | undefined;
  private readonly reasoningField: ReasoningField;
  private readonly maxTokensField: MaxTokensField;
  private readonly tito: TitoMode;
  private recorded: { samplingParams: Record<string, unknown>; serverDefaultParams: string[] } | undefined;
  private askTokens: boolean;

  /** The model name requests carry. */
  get model(): string {
    return this.modelName;
  }

  /**
   * Makes later requests, of new and open episodes alike, carry `model`: what an inference
   * server's LoRA adapter loaded at run time is asked by (vLLM: its `lora_name`). The
   * agent's `name` in records stays.
   */
  setModel(model: string): void {
    this.modelName = model;
  }

  constructor(options: OpenAIAgentOptions) {
    const env = options.env ?? process.env;
    this.options = options;
    this.modelName = options.model;
    this.baseUrl = options.baseUrl ?? (env.OPENAI_BASE_URL || DEFAULT_OPENAI_BASE_URL);
    this.apiKey = options.apiKey ?? (env.OPENAI_API_KEY || undefined);
    this.name = options.name ?? `openai:${options.model}`;
    this.family = options.family ?? familyOf(this.baseUrl);
    const defaults = familyDefaults(this.family);
    this.reasoningField = options.reasoningField ?? defaults.reasoningField;
    this.maxTokensField = options.maxTokensField ?? defaults.maxTokensField;
    this.tito = options.tito ?? 'off';
    const mode = options.tokenExact ?? 'auto';
    this.askTokens = mode === true || (mode === 'auto' && this.baseUrl.startsWith('http://'));
    if (this.tito !== 'off' && mode === false) {
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${this.name}: tito needs token-exact turns`);
    }
  }

  /** The system prompt for tasks that have none; the loop records it in the conversation. */
  get systemPrompt(): string {
    return this.options.systemPrompt ?? DEFAULT_SYSTEM_PROMPT;
  }

  /** Turns where token-exact data was required but the server sent none. */
  get tokenExactUnavailable(): number {
    return this.stats.tokenExactUnavailable;
  }

  /**
   * Opens the agent for one episode: the session keeps the episode's token history (for
   * drift marks and token-in prompts) and its seed (for `seed=episode`).
   */
  open(episode: EpisodeContext): AgentSession {
    const tokens = new EpisodeTokens();
    return { act: (input, options) => this.play({ ...input, seed: episode.seed }, tokens, options) };
  }

  private async play(
    input: ModelTurnInput,
    episodeTokens: EpisodeTokens,
    options: { signal: AbortSignal },
  ): Promise<AssistantTurn> {
    const askTokens = this.askTokens;
    const history = askTokens ? episodeTokens.get(input.messages) : undefined;
    let promptIds: number[] | undefined;
    let tokenIn = false;
    if (askTokens && this.tito !== 'off' && (history || this.tito === 'completions')) {
      const rendered = await this.render(input, options.signal);
      const spliced = history ? spliceObservation(history.ids, rendered) : undefined;
      tokenIn = spliced !== undefined;
      promptIds = spliced ?? (this.tito === 'completions' ? rendered : undefined);
    }

    let turn: AssistantTurn;
    let raw: RawTokens | undefined;
    try {
      if (this.tito === 'completions' && promptIds) {
        ({ turn, raw } = await this.complete(input, promptIds, options.signal));
      } else {
        ({ turn, raw } = await this.chat(input, askTokens, tokenIn ? promptIds : undefined, options.signal));
      }
    } catch (error) {
      if (isContextExceeded(error)) {
        episodeTokens.forget();
        return {
          text: null,
          toolCalls: [],
          finishReason: 'context_length_exceeded',
          stopReason: 'context-exceeded',
        };
      }
      throw error;
    }

    const tokens = raw ? this.tokenRecord(input, raw, history?.ids, tokenIn) : undefined;
    if (tokens) {
      episodeTokens.set(input.messages, [...tokens.promptIds, ...tokens.completionIds], turn);
      if (tokenIn) this.stats.tokenInTurns++;
      if (tokens.driftAt !== undefined) this.stats.driftTurns++;
      turn.tokens = tokens;
    } else if (askTokens) {
      episodeTokens.forget();
      if (this.options.tokenExact === true) {
        this.stats.tokenExactUnavailable++;
        turn.tokenExactUnavailable = true;
      }
    }
    return turn;
  }

  /** One chat-completions call; `inputIds` go in SGLang's `input_ids`. */
  private async chat(
    input: ModelTurnInput,
    withTokens: boolean,
    inputIds: number[] | undefined,
    signal: AbortSignal,
  ): Promise<{ turn: AssistantTurn; raw?: RawTokens }> {
    const body = this.requestBody(input, withTokens);
    if (inputIds) body.input_ids = inputIds;
    let response: PostJsonResponse;
    try {
      response = await this.post('chat/completions', body, signal);
    } catch (error) {
      // In 'auto' mode a server that refuses the token fields is asked again without them.
      if (!(withTokens && (this.options.tokenExact ?? 'auto') === 'auto' && refusedTokenFields(error)))
        throw error;
      this.askTokens = false;
      return this.chat(input, false, undefined, signal);
    }
    const parsed = ChatCompletionSchema.safeParse(response.json);
    if (!parsed.success) throw this.malformed('a chat completion', parsed.error.issues);
    this.stats.calls++;
    const completion = parsed.data;
    const choice = completion.choices[0]!;
    const toolCalls = (choice.message.tool_calls ?? []).map((call): ToolCall => ({
      id: call.id ?? '',
      name: call.function.name,
      arguments: argumentsText(call.function.arguments),
    }));
    const reasoning = choice.message.reasoning ?? choice.message.reasoning_content;
    const refusal = choice.message.refusal ?? undefined;
    const content = contentText(choice.message.content);
    const turn = this.turn({
      // A refusal is the turn's text only when the model wrote nothing else; `stopReason`
      // says it was one either way.
      text: content ?? refusal ?? null,
      toolCalls,
      ...(reasoning ? { reasoning } : {}),
      finishReason: choice.finish_reason ?? undefined,
      refused: refusal !== undefined && refusal !== '',
      usage: completion.usage,
    });
    return { turn, ...(withTokens ? optional('raw', chatTokens(completion, choice)) : {}) };
  }

  /** One completions call with `prompt` as token ids (token-in/token-out). */
  private async complete(
    input: ModelTurnInput,
    promptIds: number[],
    signal: AbortSignal,
  ): Promise<{ turn: AssistantTurn; raw?: RawTokens }> {
    const o = this.options;
    const body: Record<string, unknown> = { model: this.model, prompt: promptIds };
    this.sampling(body, input);
    // The legacy completions request knows only `max_tokens` (vLLM, SGLang).
    if (o.maxTokens !== undefined) body.max_tokens = o.maxTokens;
    body.logprobs = 1;
    body.return_token_ids = true;
    body.return_tokens_as_token_ids = true;
    Object.assign(body, o.extraBody);
    const response = await this.post('completions', body, signal);
    const parsed = CompletionSchema.safeParse(response.json);
    if (!parsed.success) throw this.malformed('a completion', parsed.error.issues);
    this.stats.calls++;
    const choice = parsed.data.choices[0]!;
    const split = parseHermesCompletion(choice.text);
    const turn = this.turn({
      text: split.content,
      toolCalls: split.toolCalls,
      ...(split.reasoning ? { reasoning: split.reasoning } : {}),
      finishReason: choice.finish_reason ?? undefined,
      refused: false,
      usage: parsed.data.usage,
    });
    const logprobs = choice.logprobs?.token_logprobs;
    const completionIds =
      choice.token_ids ?? idsFromTokens((choice.logprobs?.tokens ?? []).map((token) => ({ token })));
    const raw: RawTokens | undefined =
      logprobs &&
      completionIds &&
      completionIds.length === logprobs.length &&
      logprobs.every((l) => l !== null)
        ? {
            promptIds: choice.prompt_token_ids ?? promptIds,
            completionIds,
            logprobs: logprobs,
            serverLogprobs: choice.token_ids ? 'raw' : 'unknown',
            ...optional('texts', tokenTexts((choice.logprobs?.tokens ?? []).map((token) => ({ token })))),
          }
        : undefined;
    return { turn, ...optional('raw', raw) };
  }

  /** The server's rendering of the whole conversation (`POST /tokenize` with messages). */
  private async render(input: ModelTurnInput, signal: AbortSignal): Promise<number[]> {
    const url = this.options.tokenizeUrl ?? joinUrl(this.baseUrl.replace(/\/v1\/?$/, ''), 'tokenize');
    const body: Record<string, unknown> = {
      model: this.model,
      messages: this.wireMessages(input),
      add_generation_prompt: true,
    };
    if (input.tools.length > 0) body.tools = toOpenAITools(input.tools);
    const kwargs = this.options.extraBody?.chat_template_kwargs;
    if (kwargs !== undefined) body.chat_template_kwargs = kwargs;
    const response = await postJson({ ...this.postBase(signal), url, body });
    const parsed = TokenizeSchema.safeParse(response.json);
    if (!parsed.success) throw this.malformed('a tokenize response', parsed.error.issues);
    return parsed.data.tokens;
  }

  private turn(reply: {
    text: string | null;
    toolCalls: ToolCall[];
    reasoning?: string;
    finishReason: string | undefined;
    refused: boolean;
    usage: z.infer<typeof UsageSchema>;
  }): AssistantTurn {
    const cached =
      reply.usage?.prompt_tokens_details?.cached_tokens ?? reply.usage?.prompt_cache_hit_tokens ?? 0;
    const usage: Usage | undefined = reply.usage
      ? {
          promptTokens: reply.usage.prompt_tokens,
          completionTokens: reply.usage.completion_tokens,
          ...(cached > 0 ? { cacheReadTokens: cached } : {}),
        }
      : undefined;
    const cost = costUsd(this.options.price, usage, cached);
    const stopReason = stopReasonOf(reply.finishReason, reply.refused, reply.toolCalls.length > 0);
    return {
      text: reply.text,
      toolCalls: reply.toolCalls,
      ...(reply.reasoning ? { reasoning: { text: reply.reasoning } } : {}),
      ...(usage ? { usage } : {}),
      ...(reply.finishReason ? { finishReason: reply.finishReason } : {}),
      ...(stopReason ? { stopReason } : {}),
      ...(cost === undefined ? {} : { costUsd: cost }),
    };
  }

  private tokenRecord(
    input: ModelTurnInput,
    raw: RawTokens,
    previous: number[] | undefined,
    tokenIn: boolean,
  ): TokenRecord {
    // The same for every turn but the seed: computed once.
    this.recorded ??= this.recordedParams(input);
    const o = this.options;
    const samplingParams =
      o.seed === 'episode'
        ? { ...this.recorded.samplingParams, seed: input.seed ?? 0 }
        : this.recorded.samplingParams;
    const serverDefaultParams = this.recorded.serverDefaultParams;
    const driftAt = previous ? driftIndex(previous, raw.promptIds) : undefined;
    return {
      promptIds: raw.promptIds,
      completionIds: raw.completionIds,
      completionLogprobs: raw.logprobs,
      logprobsMode: this.options.logprobsMode ?? raw.serverLogprobs ?? 'unknown',
      samplingParams,
      serverDefaultParams,
      promptSource: tokenIn ? 'token-in' : 'rendered',
      ...(driftAt === undefined ? {} : { driftAt }),
      ...(raw.texts && raw.texts.length === raw.completionIds.length ? { completionTexts: raw.texts } : {}),
    };
  }

  private recordedParams(input: ModelTurnInput): {
    samplingParams: Record<string, unknown>;
    serverDefaultParams: string[];
  } {
    const body: Record<string, unknown> = {};
    this.sampling(body, input);
    if (this.options.maxTokens !== undefined) body[this.maxTokensField] = this.options.maxTokens;
    Object.assign(body, this.options.extraBody);
    const samplingParams: Record<string, unknown> = {};
    for (const key of RECORDED_PARAMS) if (body[key] !== undefined) samplingParams[key] = body[key];
    return { samplingParams, serverDefaultParams: SAMPLING_PARAMS.filter((key) => body[key] === undefined) };
  }

  /**
   * Whether the server answers at all: `GET <baseUrl>/models` ("List models",
   * https://platform.openai.com/docs/api-reference/models/list; vLLM, SGLang, Ollama and
   * llama.cpp's server serve it too) with its own 5 s deadline. Any status below 500
   * counts as an answer. Never rejects.
   */
  probe(options: { signal?: AbortSignal } = {}): Promise<ProbeResult> {
    return probeEndpoint({
      url: joinUrl(this.baseUrl, 'models'),
      headers: this.headers(),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    return headers;
  }

  private postBase(signal: AbortSignal) {
    return {
      headers: this.headers(),
      timeoutMs: this.options.timeoutMs ?? 120_000,
      ...(this.options.maxResponseBytes === undefined
        ? {}
        : { maxResponseBytes: this.options.maxResponseBytes }),
      signal,
      label: this.name,
      ...(this.options.retry ? { retry: this.options.retry } : {}),
    };
  }

  private async post(
    path: string,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<PostJsonResponse> {
    const response = await postJson({ ...this.postBase(signal), url: joinUrl(this.baseUrl, path), body });
    this.stats.retries += response.attempts - 1;
    this.stats.latencyMs += response.latencyMs;
    return response;
  }

  private malformed(what: string, issues: z.core.$ZodIssue[]): PaddockError {
    return new PaddockError(
      ERROR_CODES.MODEL_CALL_FAILED,
      `${this.name}: the response is not ${what}:\n${formatZodIssues(issues)}`,
      { details: { issues } },
    );
  }

  private wireMessages(input: ModelTurnInput) {
    const messages: Message[] =
      input.messages[0]?.role === 'system'
        ? [...input.messages]
        : [{ role: 'system', content: this.systemPrompt }, ...input.messages];
    return toOpenAIMessages(messages, { reasoningField: this.reasoningField });
  }

  /** Temperature, top_p and the seed, as the options ask. */
  private sampling(body: Record<string, unknown>, input: ModelTurnInput): void {
    const o = this.options;
    if (o.temperature !== undefined) body.temperature = o.temperature;
    if (o.topP !== undefined) body.top_p = o.topP;
    if (o.seed !== undefined) body.seed = o.seed === 'episode' ? (input.seed ?? 0) : o.seed;
  }

  /** The chat-completions request body of one turn (exposed for benchmarks and debugging). */
  requestBody(input: ModelTurnInput, withTokens = this.askTokens): Record<string, unknown> {
    const o = this.options;
    const body: Record<string, unknown> = { model: this.model, messages: this.wireMessages(input) };
    // vLLM refuses `tools: []` ("`tools` must not be an empty array", chat_completion/protocol.py).
    if (input.tools.length > 0) body.tools = toOpenAITools(input.tools);
    this.sampling(body, input);
    if (o.maxTokens !== undefined) body[this.maxTokensField] = o.maxTokens;
    if (withTokens) {
      body.logprobs = true;
      // vLLM (chat_completion/protocol.py): `prompt_token_ids` on the response and
      // `token_ids` on the choice; ids also as `token_id:N` logprob tokens.
      body.return_token_ids = true;
      body.return_tokens_as_token_ids = true;
      // SGLang (entrypoints/openai/protocol.py): prompt ids only with this flag.
      body.return_prompt_token_ids = true;
    }
    return o.extraBody ? Object.assign(body, o.extraBody) : body;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * The normalised stop reason: `length`, `content_filter`, `tool_calls` / `function_call`
 * and `stop` as the OpenAI spec lists them (CreateChatCompletionResponse
 * `finish_reason`); a non-empty `refusal` on the message is a refusal whatever the finish
 * reason. Others (SGLang's `abort`) give none.
 */
export function stopReasonOf(
  finishReason: string | undefined,
  refused: boolean,
  hasToolCalls: boolean,
): StopReason | undefined {
  if (refused) return 'refusal';
  switch (finishReason) {
    case 'length':
      return 'length';
    case 'content_filter':
      return 'content-filter';
    case 'tool_calls':
    case 'function_call':
      return 'tool-calls';
    case 'stop':
      return hasToolCalls ? 'tool-calls' : 'stop';
    default:
      return undefined;
  }
}

/**
 * A 400 saying the prompt does not fit the context window: OpenAI ("This model's maximum
 * context length is…", code `context_length_exceeded`), vLLM (renderers/params.py: "…the
 * model's context length is only N tokens…"; older: "maximum context length"), SGLang
 * ("The input (N tokens) is longer than the model's context length (M tokens).").
 */
export function isContextExceeded(error: unknown): boolean {
  if (!isPaddockError(error, ERROR_CODES.MODEL_CALL_FAILED) || error.details.status !== 400) return false;
  return /context length|context_length_exceeded|maximum context|context window/i.test(error.message);
}

function refusedTokenFields(error: unknown): boolean {
  if (!isPaddockError(error, ERROR_CODES.MODEL_CALL_FAILED) || error.details.status !== 400) return false;
  return /logprobs|token_ids|return_token|return_prompt/i.test(error.message);
}

function contentText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    // Some servers answer with content parts; the text parts are the turn's text.
    const texts = content
      .map((part) => (part && typeof part === 'object' ? (part as { text?: unknown }).text : undefined))
      .filter((text): text is string => typeof text === 'string');
    return texts.length > 0 ? texts.join('') : null;
  }
  return null;
}

/** Arguments are JSON text in the API; a few servers send an object, which is serialised. */
function argumentsText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  return JSON.stringify(value);
}

/**
 * The token data of a chat completion, when the server sent all of it: prompt ids (on
 * the response: vLLM; on the choice: SGLang), completion ids (`token_ids`, else vLLM's
 * `token_id:N` logprob tokens, else SGLang's `meta_info.output_token_logprobs`) and one
 * logprob per completion token. Anything missing or inconsistent gives `undefined`: ids
 * are never guessed.
 */
function chatTokens(body: ChatCompletion, choice: Choice): RawTokens | undefined {
  const promptIds = body.prompt_token_ids ?? choice.prompt_token_ids;
  const entries = choice.logprobs?.content;
  if (!promptIds || !entries) return undefined;
  const completionIds =
    choice.token_ids ??
    idsFromTokens(entries) ??
    choice.meta_info?.output_token_logprobs?.map((triple) => triple[1]);
  if (!completionIds || completionIds.length !== entries.length) return undefined;
  // vLLM puts the prompt ids on the response, SGLang on the choice: their defaults differ.
  const serverLogprobs = body.prompt_token_ids ? 'raw' : 'temperature-scaled';
  const texts = tokenTexts(entries);
  return {
    promptIds,
    completionIds,
    logprobs: entries.map((entry) => entry.logprob),
    serverLogprobs,
    ...(texts ? { texts } : {}),
  };
}

/**
 * The decoded text of each token, from the logprob entries' `token` strings, when every
 * entry has one that is text (vLLM without `return_tokens_as_token_ids`, SGLang); never
 * for vLLM's `token_id:N` rendering, which holds no text.
 */
function tokenTexts(entries: readonly { token?: string | undefined }[]): string[] | undefined {
  if (entries.length === 0) return undefined;
  const texts: string[] = [];
  for (const entry of entries) {
    if (typeof entry.token !== 'string' || /^token_id:\d+$/.test(entry.token)) return undefined;
    texts.push(entry.token);
  }
  return texts;
}

/** Ids from vLLM's `return_tokens_as_token_ids` rendering (`token_id:123`), when every token has one. */
function idsFromTokens(entries: readonly { token?: string | undefined }[]): number[] | undefined {
  if (entries.length === 0) return undefined;
  const ids: number[] = [];
  for (const entry of entries) {
    const match = /^token_id:(\d+)$/.exec(entry.token ?? '');
    if (!match) return undefined;
    ids.push(Number(match[1]));
  }
  return ids;
}
