/**
 * The local ONNX policy agent: renders the conversation with the policy folder's chat
 * template (paddock-v1, chat.ts; or the model's own Hugging Face template,
 * hf-chat-template.ts), samples a completion token by token from an ONNX policy (policy.ts)
 * until one of the template's stop ids, and parses its ids into text and tool calls.
 *
 * Token-exact recording: the agent keeps each episode's context as token ids. A turn's
 * sampled ids stay in the context as sampled (never re-encoded from text); observations
 * and other new messages are encoded once, when they enter the context. So every turn's
 * `tokens.promptIds` is exactly what the policy saw, `completionIds` exactly what it
 * sampled, and turn t+1's prompt starts with turn t's prompt and completion. Each
 * episode's session keeps its own context; when the messages do not continue it
 * (another caller's conversation), the conversation is rendered afresh — still exactly what
 * the policy then saw. The KV cache of the context is kept between turns and rebuilt from
 * the ids when the policy was swapped.
 *
 * Sampling is seeded per turn from the episode's seed and the turn index, so an episode is a
 * pure function of the policy, the task, the seed and the observations.
 */
import {
  isStopId,
  parseCompletionIds,
  renderFollowing,
  throwIfAborted,
  type Agent,
  type AgentInput,
  type AgentSession,
  type EpisodeContext,
  type AssistantTurn,
  type ChatTemplate,
  type Message,
} from '../../harness/index.ts';
import type { OnnxPolicy, PolicyState } from './policy.ts';
import { createRng, sampleToken, type SamplingOptions } from './sampler.ts';

export interface OnnxAgentOptions {
  /** @default the policy's config, else 1 */
  temperature?: number;
  /** @default the policy's config, else 1 */
  topP?: number;
  /** Most tokens sampled per turn. @default the policy's config, else 256 */
  maxNewTokens?: number;
  /** The agent's name in records. @default `onnx:<policy dir>` */
  name?: string;
  /** Whether close() also closes the policy (and every policy swapped in later). @default false */
  ownsPolicy?: boolean;
}

/** What the agent keeps for one episode: the token context and the policy's cache. */
interface PolicyContext {
  /** The whole context so far: every prompt and sampled id, in order. */
  ids: number[];
  /** The messages the context covers (those of the last call; the reply comes next). */
  consumed: number;
  /** JSON of those messages, to check that the next call continues this conversation. */
  fingerprint: string;
  policy: OnnxPolicy;
  state: PolicyState;
}

export class OnnxPolicyAgent implements Agent {
  readonly name: string;
  private policyRef: OnnxPolicy;
  private template: ChatTemplate;
  private readonly options: OnnxAgentOptions;
  /** Turns whose conversation did not continue the recorded context and was rendered afresh. */
  freshRenders = 0;

  constructor(policy: OnnxPolicy, options: OnnxAgentOptions = {}) {
    this.policyRef = policy;
    this.template = policy.chatTemplate();
    this.options = options;
    this.name = options.name ?? `onnx:${policy.dir}`;
  }

  /** The policy now sampling. */
  get policy(): OnnxPolicy {
    return this.policyRef;
  }

  /** The sampling settings in force. */
  get sampling(): SamplingOptions & { maxNewTokens: number } {
    const defaults = this.policyRef.config.sampling;
    return {
      temperature: this.options.temperature ?? defaults.temperature ?? 1,
      topP: this.options.topP ?? defaults.top_p ?? 1,
      maxNewTokens: this.options.maxNewTokens ?? defaults.max_new_tokens ?? 256,
    };
  }

  /**
   * Makes `policy` sample the next turns (e.g. after a training step) and returns the
   * previous one, which the caller closes. Contexts of running episodes keep their ids.
   */
  setPolicy(policy: OnnxPolicy): OnnxPolicy {
    const previous = this.policyRef;
    this.policyRef = policy;
    this.template = policy.chatTemplate();
    return previous;
  }

  /**
   * Opens the policy for one episode: the session keeps the episode's token context (so
   * each prompt is the exact ids of the previous turns) and samples with the episode's seed.
   */
  open(episode: EpisodeContext): AgentSession {
    let context: PolicyContext | undefined;
    return {
      act: async (input, options) => {
        context = this.contextFor(context, input, this.policyRef);
        return this.sample(context, input, episode.seed, options.signal);
      },
      close: async () => {
        context = undefined;
      },
    };
  }

  private async sample(
    context: PolicyContext,
    input: AgentInput,
    seed: number,
    signal: AbortSignal,
  ): Promise<AssistantTurn> {
    throwIfAborted(signal);
    const policy = this.policyRef;
    const { temperature, topP, maxNewTokens } = this.sampling;
    const promptIds = [...context.ids];
    const end = this.template.end;

    if (context.policy !== policy) {
      // The policy changed mid-episode: same ids, new cache.
      context.policy = policy;
      context.state = policy.newState();
    }
    const completionIds: number[] = [];
    const completionLogprobs: number[] = [];
    let finishReason = 'length';
    if (promptIds.length < policy.maxLen) {
      const rng = createRng(seed, input.turnIndex);
      let logits = await policy.extend(context.state, promptIds.slice(context.state.ids.length));
      const budget = Math.min(maxNewTokens, policy.maxLen - promptIds.length);
      for (let step = 0; step < budget; step++) {
        throwIfAborted(signal);
        const { id, logprob } = sampleToken(logits, 0, logits.length, { temperature, topP }, rng);
        completionIds.push(id);
        completionLogprobs.push(logprob);
        if (isStopId(this.template, id)) {
          finishReason = 'stop';
          break;
        }
        if (step + 1 < budget) logits = await policy.extend(context.state, [id]);
      }
    }

    const parsed = parseCompletionIds(this.template, completionIds, input.turnIndex);
    if (parsed.toolCalls.length > 0 && finishReason === 'stop') finishReason = 'tool_calls';
    context.ids.push(...completionIds);
    // A turn cut off by length still closes its message for the next prompt.
    const last = completionIds[completionIds.length - 1];
    if (last === undefined || !isStopId(this.template, last)) context.ids.push(end);
    context.consumed = input.messages.length;
    context.fingerprint = JSON.stringify(input.messages);
    // A turn without calls usually ends the episode: its cache goes, its ids stay (cheap),
    // so that a loop that carries on still gets exact prompts.
    if (parsed.toolCalls.length === 0) context.state = policy.newState();

    return {
      text: parsed.text,
      toolCalls: parsed.toolCalls,
      usage: { promptTokens: promptIds.length, completionTokens: completionIds.length },
      tokens: {
        promptIds,
        completionIds,
        completionLogprobs,
        // One table look-up per id: specials (which decode to nothing) show as ''.
        completionTexts: completionIds.map((id) => policy.tokenizer.decode([id])),
      },
      finishReason,
    };
  }

  /** The episode's context with the new messages and the generation prompt appended. */
  private contextFor(known: PolicyContext | undefined, input: AgentInput, policy: OnnxPolicy): PolicyContext {
    if (known && input.turnIndex > 0 && this.continues(known, input.messages)) {
      // messages[consumed] is the reply this agent sampled: its ids are in the context already.
      const following = renderFollowing(this.template, input.messages, known.consumed, input.tools);
      if (following !== null) {
        known.ids.push(...following, ...this.template.generationPrompt);
        return known;
      }
    }
    if (input.turnIndex > 0) this.freshRenders++;
    const ids = [
      ...this.template.renderConversation(input.messages, input.tools),
      ...this.template.generationPrompt,
    ];
    return { ids, consumed: 0, fingerprint: '', policy, state: policy.newState() };
  }

  private continues(context: PolicyContext, messages: readonly Message[]): boolean {
    if (messages.length <= context.consumed || messages[context.consumed]?.role !== 'assistant') return false;
    return JSON.stringify(messages.slice(0, context.consumed)) === context.fingerprint;
  }

  /** Closes the policy when the agent owns it. Idempotent. */
  async close(): Promise<void> {
    if (this.options.ownsPolicy) await this.policyRef.close();
  }
}
