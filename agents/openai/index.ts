/**
 * The OpenAI-compatible agent: an {@link Agent} over chat completions with tools, for any
 * server that speaks the API (OpenAI, vLLM, SGLang, Ollama, llama.cpp, OpenRouter), with
 * retries that honour `retry-after`, a per-call timeout, usage and cost per turn, and
 * token-exact turns (prompt ids, completion ids, logprobs) from vLLM / SGLang.
 *
 * ```ts
 * const agent = new OpenAIAgent({ model: 'Qwen/Qwen3-8B', baseUrl: 'http://localhost:8000/v1', tokenExact: true });
 * const agent2 = parseModelAgentSpec('openai:gpt-4.1-mini'); // key from OPENAI_API_KEY
 * ```
 */
export {
  DEFAULT_OPENAI_BASE_URL,
  DEFAULT_SYSTEM_PROMPT,
  OpenAIAgent,
  isContextExceeded,
  stopReasonOf,
  type LogprobsMode,
  type ModelAgentStats,
  type OpenAIAgentOptions,
  type TitoMode,
} from './agent.ts';
export {
  familyDefaults,
  familyOf,
  type MaxTokensField,
  type ReasoningField,
  type ServerFamily,
} from './families.ts';
export { driftIndex, parseHermesCompletion, spliceObservation } from './tito.ts';
export {
  imageDataUrl,
  toOpenAIMessages,
  toOpenAITools,
  type OpenAIContentPart,
  type OpenAIMessage,
  type OpenAITool,
} from '../../harness/openai-format.ts';
export { MODEL_AGENT_SPECS, isModelAgentSpec, parseModelAgentSpec } from './spec.ts';
export {
  DEFAULT_MAX_RESPONSE_BYTES,
  backoffDelayMs,
  isRetryableStatus,
  parseRetryAfter,
  postJson,
  probeEndpoint,
  type AttemptError,
  type PostJsonRequest,
  type PostJsonResponse,
  type PriceTable,
  type ProbeResult,
  type RetryOptions,
} from '../http.ts';
