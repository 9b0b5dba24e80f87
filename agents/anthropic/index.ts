/**
 * The Anthropic agent: an {@link Agent} over Anthropic's Messages API (`/v1/messages`)
 * with tools, retries that honour `retry-after` (429, 529 overloaded, 5xx, dropped
 * connections), a per-call timeout, usage and cost per turn.
 *
 * ```ts
 * const agent = new AnthropicAgent({ model: 'claude-sonnet-4-5', price: { inputPerMTok: 3, outputPerMTok: 15 } });
 * ```
 */
export {
  ANTHROPIC_VERSION,
  AnthropicAgent,
  DEFAULT_ANTHROPIC_BASE_URL,
  DEFAULT_ANTHROPIC_SYSTEM_PROMPT,
  toAnthropicMessages,
  toAnthropicTools,
  type AnthropicAgentOptions,
  type AnthropicMessage,
  type AnthropicTool,
} from './agent.ts';
export type { PriceTable, RetryOptions } from '../http.ts';
