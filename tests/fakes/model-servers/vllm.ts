/**
 * A vLLM-shaped loopback server, built from vLLM's OpenAI server source:
 * - vllm/entrypoints/openai/chat_completion/protocol.py (ChatCompletionRequest,
 *   ChatCompletionResponse, ChatMessage): `reasoning` on the message (older releases:
 *   `reasoning_content`); `reasoning_content` in requests renamed to `reasoning`;
 *   `return_token_ids` → `prompt_token_ids` on the response and `token_ids` on the
 *   choice; `return_tokens_as_token_ids` → logprob tokens `token_id:N`; `tools: []`,
 *   `top_logprobs` without `logprobs` and `stream_options` without `stream` refused;
 *   unknown fields ignored (vLLM logs a warning; recorded in `ignoredFields`).
 * - vllm/renderers/params.py (TokenizeParams): a prompt longer than the context window
 *   is a 400 "You passed N input tokens and requested M output tokens. However, the
 *   model's context length is only …".
 * - vllm/entrypoints/openai/completion/protocol.py: `/v1/completions` with `prompt` as
 *   token ids; `prompt_token_ids` and `token_ids` on the choice.
 * - `/tokenize` (TokenizeChatRequest): `messages`, `add_generation_prompt` → `tokens`.
 */
import type { RecordedRequest, ScriptedResponse } from './scripted-server.ts';
import {
  decode,
  errorBody,
  parseOutput,
  startTemplateServer,
  type Engine,
  type TemplateServer,
  type TemplateServerExtras,
  type TemplateServerOptions,
} from './template-server.ts';

const CHAT_FIELDS = new Set([
  'messages',
  'model',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'max_tokens',
  'max_completion_tokens',
  'n',
  'presence_penalty',
  'response_format',
  'seed',
  'stop',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'tools',
  'tool_choice',
  'reasoning_effort',
  'include_reasoning',
  'parallel_tool_calls',
  'user',
  'top_k',
  'min_p',
  'repetition_penalty',
  'min_tokens',
  'skip_special_tokens',
  'chat_template',
  'chat_template_kwargs',
  'add_generation_prompt',
  'continue_final_message',
  'echo',
  'return_tokens_as_token_ids',
  'return_token_ids',
  'prompt_logprobs',
  'request_id',
  'priority',
  'thinking_token_budget',
  'cache_salt',
  'structured_outputs',
  'vllm_xargs',
]);
const COMPLETION_FIELDS = new Set([
  'model',
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'seed',
  'logprobs',
  'n',
  'stop',
  'stream',
  'echo',
  'top_k',
  'min_p',
  'repetition_penalty',
  'return_token_ids',
  'return_tokens_as_token_ids',
  'skip_special_tokens',
  'presence_penalty',
  'frequency_penalty',
]);

export interface VllmServerOptions extends TemplateServerOptions, TemplateServerExtras {
  /** The reply's reasoning field: `reasoning` (current) or `reasoning_content` (before the rename). @default 'reasoning' */
  reasoningField?: 'reasoning' | 'reasoning_content';
}

function contextCheck(
  engine: Engine,
  promptIds: number[],
  maxTokens: number | undefined,
): ScriptedResponse | undefined {
  const max = engine.options.maxModelLen;
  const output = maxTokens ?? 0;
  if (promptIds.length <= max - output) return undefined;
  return errorBody(
    400,
    `You passed ${promptIds.length} input tokens and requested ${output} output tokens. However, the model's ` +
      `context length is only ${max} tokens, resulting in a maximum input length of ${max - output} tokens. ` +
      'Please reduce the length of the input prompt.',
  );
}

function chat(request: RecordedRequest, engine: Engine, reasoningField: string): ScriptedResponse {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request bodies are read loosely
  const body = request.body as Record<string, any>;
  if (!Array.isArray(body.messages)) return errorBody(400, 'messages: Field required');
  if (Array.isArray(body.tools) && body.tools.length === 0) {
    return errorBody(
      400,
      '`tools` must not be an empty array. Either provide at least one tool or omit the field entirely.',
    );
  }
  if (body.top_logprobs && !body.logprobs)
    return errorBody(400, 'when using `top_logprobs`, `logprobs` must be set to true.');
  if (body.stream_options && !body.stream)
    return errorBody(400, 'Stream options can only be defined when `stream=True`.');
  if (body.stream) return errorBody(400, 'this fake does not stream');
  engine.ignored(request, CHAT_FIELDS);
  // The request validator renames `reasoning_content` to `reasoning`.
  const messages = (body.messages as Record<string, unknown>[]).map((m) => {
    if (m.reasoning_content === undefined || m.reasoning !== undefined) return m;
    const { reasoning_content, ...rest } = m;
    return { ...rest, reasoning: reasoning_content };
  });
  const promptIds = engine.renderIds(messages, 'reasoning', body.add_generation_prompt !== false);
  const tooLong = contextCheck(engine, promptIds, body.max_completion_tokens ?? body.max_tokens);
  if (tooLong) return tooLong;
  const out = engine.sample(promptIds);
  const parsed = parseOutput(out.text);
  const choice: Record<string, unknown> = {
    index: 0,
    message: {
      role: 'assistant',
      content: parsed.content,
      [reasoningField]: parsed.reasoning,
      ...(parsed.toolCalls.length > 0 ? { tool_calls: parsed.toolCalls } : {}),
    },
    finish_reason: out.finish === 'length' ? 'length' : parsed.toolCalls.length > 0 ? 'tool_calls' : 'stop',
    stop_reason: null,
  };
  if (body.logprobs) {
    choice.logprobs = {
      content: out.ids.map((id, i) => ({
        token: body.return_tokens_as_token_ids ? `token_id:${id}` : decode([id]),
        logprob: out.logprobs[i],
        bytes: null,
        top_logprobs: [],
      })),
    };
  }
  if (body.return_token_ids) choice.token_ids = out.ids;
  return {
    json: {
      id: `chatcmpl-${request.index}`,
      object: 'chat.completion',
      created: 1_700_000_000,
      model: body.model ?? 'fake',
      choices: [choice],
      usage: {
        prompt_tokens: promptIds.length,
        completion_tokens: out.ids.length,
        total_tokens: promptIds.length + out.ids.length,
      },
      ...(body.return_token_ids ? { prompt_token_ids: promptIds } : {}),
    },
  };
}

function completion(request: RecordedRequest, engine: Engine): ScriptedResponse {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request bodies are read loosely
  const body = request.body as Record<string, any>;
  const prompt = body.prompt as unknown;
  if (!Array.isArray(prompt) || !prompt.every((id) => Number.isInteger(id))) {
    return errorBody(400, 'this fake takes prompts as token ids only');
  }
  engine.ignored(request, COMPLETION_FIELDS);
  const promptIds = prompt as number[];
  const tooLong = contextCheck(engine, promptIds, body.max_tokens);
  if (tooLong) return tooLong;
  const out = engine.sample(promptIds);
  const choice: Record<string, unknown> = {
    index: 0,
    text: out.text,
    finish_reason: out.finish,
    stop_reason: null,
    ...(body.return_token_ids ? { token_ids: out.ids, prompt_token_ids: promptIds } : {}),
  };
  if (typeof body.logprobs === 'number') {
    choice.logprobs = {
      text_offset: out.ids.map((_, i) => i),
      tokens: out.ids.map((id) => (body.return_tokens_as_token_ids ? `token_id:${id}` : decode([id]))),
      token_logprobs: out.logprobs,
      top_logprobs: out.ids.map(() => ({})),
    };
  }
  return {
    json: {
      id: `cmpl-${request.index}`,
      object: 'text_completion',
      created: 1_700_000_000,
      model: body.model ?? 'fake',
      choices: [choice],
      usage: {
        prompt_tokens: promptIds.length,
        completion_tokens: out.ids.length,
        total_tokens: promptIds.length + out.ids.length,
      },
    },
  };
}

/** Starts a vLLM-shaped server; its API base URL is `baseUrl` (`…/v1`). */
export function startVllmServer(options: VllmServerOptions): Promise<TemplateServer> {
  const reasoningField = options.reasoningField ?? 'reasoning';
  return startTemplateServer(options, {
    handle(request, engine) {
      if (request.path === '/v1/chat/completions') return chat(request, engine, reasoningField);
      if (request.path === '/v1/completions') return completion(request, engine);
      if (request.path === '/tokenize') {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request bodies are read loosely
        const body = request.body as Record<string, any>;
        const messages = (body.messages as Record<string, unknown>[]).map((m) =>
          m.reasoning_content !== undefined && m.reasoning === undefined
            ? { ...m, reasoning: m.reasoning_content }
            : m,
        );
        const tokens = engine.renderIds(messages, 'reasoning', body.add_generation_prompt !== false);
        return { json: { count: tokens.length, max_model_len: engine.options.maxModelLen, tokens } };
      }
      return errorBody(404, 'Not Found', 'NotFoundError');
    },
  });
}
