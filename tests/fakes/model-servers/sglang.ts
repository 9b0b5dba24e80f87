/**
 * An SGLang-shaped loopback server, built from SGLang's OpenAI server source:
 * - python/sglang/srt/entrypoints/openai/protocol.py (ChatCompletionRequest, ChatMessage,
 *   ChatCompletionResponseChoice): `reasoning_content` on the message and in requests;
 *   `prompt_token_ids` on the choice only with `return_prompt_token_ids`, `token_ids`
 *   with `return_token_ids`, `meta_info` (with `output_token_logprobs` as
 *   [logprob, id, text]) with `return_meta_info`; `input_ids` bypasses the chat template;
 *   logprob tokens are text (no `token_id:N`); unknown fields ignored (pydantic default).
 * - python/sglang/srt/entrypoints/openai/serving_chat.py: `return_prompt_token_ids`,
 *   `return_token_ids` and `return_meta_info` refused with `stream`.
 * - A prompt past the context window: 400 "The input (N tokens) is longer than the
 *   model's context length (M tokens)."
 * - `/tokenize` and `/v1/tokenize` (TokenizeRequest): `messages` → `tokens` (the
 *   generation prompt always added).
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
  'user',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'return_hidden_states',
  'return_prompt_token_ids',
  'return_token_ids',
  'return_meta_info',
  'reasoning_effort',
  'top_k',
  'min_p',
  'min_tokens',
  'regex',
  'ebnf',
  'repetition_penalty',
  'stop_token_ids',
  'no_stop_trim',
  'ignore_eos',
  'continue_final_message',
  'skip_special_tokens',
  'lora_path',
  'session_params',
  'separate_reasoning',
  'stream_reasoning',
  'chat_template_kwargs',
  'input_ids',
  'rid',
  'priority',
]);

function chat(request: RecordedRequest, engine: Engine): ScriptedResponse {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request bodies are read loosely
  const body = request.body as Record<string, any>;
  if (!Array.isArray(body.messages)) return errorBody(400, 'messages: Field required');
  if (body.stream && body.return_prompt_token_ids) {
    return errorBody(
      400,
      'return_prompt_token_ids is not supported with streaming. Please set stream=false when using return_prompt_token_ids=true.',
    );
  }
  if (body.stream) return errorBody(400, 'this fake does not stream');
  engine.ignored(request, CHAT_FIELDS);
  const inputIds = body.input_ids as unknown;
  if (inputIds !== undefined && !(Array.isArray(inputIds) && inputIds.every((id) => Number.isInteger(id)))) {
    return errorBody(400, 'input_ids: Input should be a valid list of integers');
  }
  const promptIds =
    (inputIds as number[] | undefined) ?? engine.renderIds(body.messages, 'reasoning_content');
  const max = engine.options.maxModelLen;
  if (promptIds.length >= max) {
    return errorBody(
      400,
      `The input (${promptIds.length} tokens) is longer than the model's context length (${max} tokens).`,
    );
  }
  const out = engine.sample(promptIds);
  const parsed = parseOutput(out.text);
  const choice: Record<string, unknown> = {
    index: 0,
    message: {
      role: 'assistant',
      content: parsed.content,
      reasoning_content: parsed.reasoning,
      tool_calls: parsed.toolCalls.length > 0 ? parsed.toolCalls : null,
    },
    finish_reason: out.finish === 'length' ? 'length' : parsed.toolCalls.length > 0 ? 'tool_calls' : 'stop',
    matched_stop: out.finish === 'length' ? null : 100_001,
  };
  if (body.logprobs) {
    choice.logprobs = {
      content: out.ids.map((id, i) => ({
        token: decode([id]),
        logprob: out.logprobs[i],
        bytes: [],
        top_logprobs: [],
      })),
    };
  }
  if (body.return_prompt_token_ids) choice.prompt_token_ids = promptIds;
  if (body.return_token_ids) choice.token_ids = out.ids;
  if (body.return_meta_info) {
    choice.meta_info = {
      prompt_tokens: promptIds.length,
      completion_tokens: out.ids.length,
      output_token_logprobs: out.ids.map((id, i) => [out.logprobs[i], id, null]),
    };
  }
  return {
    json: {
      id: `${request.index}`,
      object: 'chat.completion',
      created: 1_700_000_000,
      model: body.model ?? 'default',
      choices: [choice],
      usage: {
        prompt_tokens: promptIds.length,
        completion_tokens: out.ids.length,
        total_tokens: promptIds.length + out.ids.length,
      },
    },
  };
}

/** Starts an SGLang-shaped server; its API base URL is `baseUrl` (`…/v1`). */
export function startSglangServer(
  options: TemplateServerOptions & TemplateServerExtras,
): Promise<TemplateServer> {
  return startTemplateServer(options, {
    handle(request, engine) {
      if (request.path === '/v1/chat/completions') return chat(request, engine);
      if (request.path === '/tokenize' || request.path === '/v1/tokenize') {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request bodies are read loosely
        const body = request.body as Record<string, any>;
        const tokens = engine.renderIds(body.messages, 'reasoning_content');
        return { json: { tokens, count: tokens.length, max_model_len: engine.options.maxModelLen } };
      }
      return errorBody(404, 'Not Found', 'NotFoundError');
    },
  });
}
