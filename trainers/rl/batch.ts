/**
 * Token batches from recorded episodes — never from re-tokenized text.
 *
 * An episode whose turns were recorded by a token-exact agent is one growing context:
 * turn t+1's prompt starts with turn t's prompt and completion. Such a chain becomes one
 * sequence `ids = last prompt + last completion`, with mask 1 exactly on the sampled
 * completion tokens, each carrying its turn's advantage and its sampling logprob. Where the
 * prefix property breaks (an agent that re-rendered its context), a new chain starts, so
 * that every sampled token is still trained on exactly once, in the context it was
 * sampled in.
 *
 * Demonstrations for supervised warm-start are rendered once with the policy's chat
 * template (the oracle's tool calls in canonical form), mask 1 on the assistant's tokens.
 * The template and tokenizer are the harness's contract (harness/policy.ts), whatever
 * policy implements them.
 */
import type { EpisodeRecord, Message, ToolSpec, TurnRecord } from '../../harness/index.ts';
import {
  ERROR_CODES,
  PaddockError,
  isStopId,
  parseCompletionIds,
  renderFollowing,
} from '../../harness/index.ts';
import type { ChatTemplate } from '../../harness/index.ts';

/** One training sequence: all arrays have `ids.length` entries. */
export interface TokenSequence {
  ids: number[];
  /** 1 on policy-sampled tokens, 0 elsewhere (prompt, observations, template tokens). */
  mask: number[];
  /** Per-token advantage (0 where mask is 0). */
  advantages: number[];
  /** Per-token sampling logprob of the rollout (0 where mask is 0). */
  logprobs: number[];
  /** Where it came from. */
  episodeId: string;
  /** Indices of the turns it holds. */
  turns: number[];
}

function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > ids.length) return false;
  for (let i = 0; i < prefix.length; i++) if (ids[i] !== prefix[i]) return false;
  return true;
}

/**
 * The training sequences of one episode. `turnAdvantages[t]` is turn t's advantage (the
 * same for all turns at trajectory level). Throws CONFIG_INVALID when a turn has no token
 * record (the agent was not token-exact) or its logprobs do not match its ids.
 */
export function episodeSequences(episode: EpisodeRecord, turnAdvantages: readonly number[]): TokenSequence[] {
  const chains: TurnRecord[][] = [];
  let context: number[] = [];
  for (const turn of episode.turns) {
    const tokens = turn.tokens;
    if (!tokens) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `episode ${episode.episodeId}, turn ${turn.index}: no token record; the trainer needs a token-exact agent`,
      );
    }
    if (tokens.completionLogprobs.length !== tokens.completionIds.length) {
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `episode ${episode.episodeId}, turn ${turn.index}: ${tokens.completionIds.length} ids but ${tokens.completionLogprobs.length} logprobs`,
      );
    }
    // A turn that sampled nothing (its prompt filled the context) has nothing to train.
    if (tokens.completionIds.length === 0) continue;
    const continues = chains.length > 0 && startsWith(tokens.promptIds, context);
    if (continues) chains[chains.length - 1]!.push(turn);
    else chains.push([turn]);
    context = [...tokens.promptIds, ...tokens.completionIds];
  }
  const sequences: TokenSequence[] = [];
  for (const chain of chains) {
    const last = chain[chain.length - 1]!.tokens!;
    const ids = [...last.promptIds, ...last.completionIds];
    const mask = new Array<number>(ids.length).fill(0);
    const advantages = new Array<number>(ids.length).fill(0);
    const logprobs = new Array<number>(ids.length).fill(0);
    for (const turn of chain) {
      const { promptIds, completionIds, completionLogprobs } = turn.tokens!;
      const advantage = turnAdvantages[turn.index] ?? 0;
      for (let k = 0; k < completionIds.length; k++) {
        const position = promptIds.length + k;
        mask[position] = 1;
        advantages[position] = advantage;
        logprobs[position] = completionLogprobs[k]!;
      }
    }
    if (ids.length > 1 && mask.some((value) => value === 1)) {
      sequences.push({
        ids,
        mask,
        advantages,
        logprobs,
        episodeId: episode.episodeId,
        turns: chain.map((t) => t.index),
      });
    }
  }
  return sequences;
}

/** A demonstration: a conversation and the tools it was played with. */
export interface Demonstration {
  messages: Message[];
  tools: ToolSpec[];
}

/**
 * A demonstration rendered for supervised training with the policy's chat template: mask
 * 1 on the tokens the assistant writes (`ChatTemplate.renderSupervised`).
 */
export function demonstrationSequence(
  demo: Demonstration,
  template: ChatTemplate,
): { ids: number[]; mask: number[] } {
  return template.renderSupervised(demo.messages, demo.tools);
}

/** A place where an episode's recorded tokens disagree with what the template renders. */
export interface TokenDrift {
  turn: number;
  what: 'prompt' | 'completion';
  detail: string;
}

/**
 * Checks an episode recorded by a token-exact agent against a re-rendering with its chat
 * template (the policy's): the first prompt
 * must be the template's rendering of the conversation so far, each later prompt must add
 * exactly the rendering of the new messages, and each completion must decode to what was
 * recorded as the turn's text and calls. Returns the disagreements (none when exact).
 */
export function checkTokenDrift(
  episode: EpisodeRecord,
  tools: readonly ToolSpec[],
  template: ChatTemplate,
): TokenDrift[] {
  const drifts: TokenDrift[] = [];
  let messageIndex = 0;
  let previous: number[] | undefined;
  const messages = episode.messages;
  for (const turn of episode.turns) {
    const tokens = turn.tokens;
    if (!tokens) continue;
    // Messages before this turn's assistant message.
    const assistantAt = messages.findIndex(
      (message, index) => index >= messageIndex && message.role === 'assistant',
    );
    const before = messages.slice(messageIndex, assistantAt < 0 ? messages.length : assistantAt);
    let expected: number[];
    if (previous === undefined) {
      expected = [...template.renderConversation(before, tools), ...template.generationPrompt];
    } else {
      // As the agent does: what follows the previous reply, else the whole conversation afresh.
      const upTo = assistantAt < 0 ? messages.length : assistantAt;
      const following = renderFollowing(template, messages.slice(0, upTo), messageIndex - 1, tools);
      expected =
        following === null
          ? [...template.renderConversation(messages.slice(0, upTo), tools), ...template.generationPrompt]
          : [...previous, ...following, ...template.generationPrompt];
    }
    if (expected.length !== tokens.promptIds.length || !startsWith(tokens.promptIds, expected)) {
      drifts.push({
        turn: turn.index,
        what: 'prompt',
        detail: 'the recorded prompt differs from its re-rendering',
      });
    }
    const parsed = parseCompletionIds(template, tokens.completionIds, turn.index);
    const same =
      parsed.text === turn.text &&
      parsed.toolCalls.length === turn.toolCalls.length &&
      parsed.toolCalls.every(
        (call, k) => call.name === turn.toolCalls[k]?.name && call.arguments === turn.toolCalls[k]?.arguments,
      );
    if (!same)
      drifts.push({
        turn: turn.index,
        what: 'completion',
        detail: 'the completion decodes to other text or calls',
      });
    previous = [...tokens.promptIds, ...tokens.completionIds];
    const last = tokens.completionIds[tokens.completionIds.length - 1];
    if (last === undefined || !isStopId(template, last)) previous.push(template.end);
    messageIndex = assistantAt < 0 ? messages.length : assistantAt + 1;
  }
  return drifts;
}
