/**
 * Agents are opened per episode (`Agent.open`); tests that ask an agent for single turns
 * open it for a made-up episode of the input's task first.
 */
import type { Agent, AgentInput, AgentSession, AssistantTurn, EpisodeContext } from '../../harness/index.ts';

/** A turn's input with the episode fields tests used to pass beside it. */
export type TurnInput = AgentInput & { episodeId?: string; seed?: number };

/** The episode a test's turn belongs to. */
export function episodeOf(input: TurnInput, signal = new AbortController().signal): EpisodeContext {
  return {
    task: input.task,
    runId: 'test',
    episodeId: input.episodeId ?? `${input.task.id}#test`,
    seed: input.seed ?? 0,
    sessions: new Map(),
    signal,
  };
}

/** Opens `agent` for the input's episode. */
export async function openFor(agent: Agent, input: TurnInput): Promise<AgentSession> {
  return agent.open(episodeOf(input));
}

/** Asks a freshly opened session of `agent` for one turn. */
export async function actOnce(
  agent: Agent,
  input: TurnInput,
  options: { signal: AbortSignal } = { signal: new AbortController().signal },
): Promise<AssistantTurn> {
  const { episodeId: _episodeId, seed: _seed, ...turn } = input;
  const session = await openFor(agent, input);
  try {
    return await session.act(turn, options);
  } finally {
    await session.close?.();
  }
}
