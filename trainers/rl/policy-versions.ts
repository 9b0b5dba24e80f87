/**
 * Which policy version sampled each turn, and the moment a new version takes over.
 *
 * A training run's policy has a version: the step whose update it holds (0 after the warm
 * start). Rollout and evaluation agents go through a `PolicyGate`: every turn is sampled
 * inside the gate and records the version it ran under (`TokenRecord.policyVersion`); a new
 * version is installed with `swap`, which lets no new turn start, waits for the turns in
 * flight to end, installs it (a new ONNX session in the agents, weights loaded by an
 * inference server) and opens the gate again. So a turn is never sampled by a mix of two
 * versions, and its recorded version is exact — also while asynchronous rollouts run during
 * an update, or an episode spans a version change (later turns then carry the newer one).
 */
import {
  ERROR_CODES,
  PaddockError,
  type Agent,
  type AgentSession,
  type AssistantTurn,
} from '../../harness/index.ts';

export class PolicyGate {
  private current: number;
  private inFlight = 0;
  /** Set while a swap waits for the turns in flight or installs the new version. */
  private closed: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private readonly waiting = new Set<() => void>();

  constructor(version = 0) {
    this.current = version;
  }

  /** The version new turns sample from. */
  get version(): number {
    return this.current;
  }

  /** Resolves when the version is at least `version` (at once when it is). */
  reached(version: number, signal?: AbortSignal): Promise<void> {
    if (this.current >= version) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.current < version) return;
        this.waiting.delete(check);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.waiting.delete(check);
        reject(new PaddockError(ERROR_CODES.ABORTED, 'aborted while waiting for a policy version'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.add(check);
    });
  }

  /** Runs one turn under the version now installed; `turn` gets the version it ran under. */
  async run<T>(turn: (version: number) => Promise<T>): Promise<T> {
    while (this.closed) await this.closed;
    this.inFlight++;
    try {
      return await turn(this.current);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  /**
   * Installs `version`: no new turn starts, the turns in flight end, `install` runs, and
   * turns resume under `version`. A failing `install` leaves the old version in place and
   * rejects. Swaps are serialised by their caller (one trainer).
   */
  async swap(version: number, install: () => Promise<void>): Promise<void> {
    let open!: () => void;
    this.closed = new Promise((resolve) => (open = resolve));
    try {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.drained = undefined;
      await install();
      this.current = version;
    } finally {
      this.closed = undefined;
      open();
      for (const check of [...this.waiting]) check();
    }
  }
}

/** `agent` with every turn sampled inside `gate` and its tokens marked with the version. */
export function versionedAgent(agent: Agent, gate: PolicyGate): Agent {
  const mark = (turn: AssistantTurn, version: number): AssistantTurn =>
    turn.tokens ? { ...turn, tokens: { ...turn.tokens, policyVersion: version } } : turn;
  return {
    name: agent.name,
    ...(agent.systemPrompt === undefined ? {} : { systemPrompt: agent.systemPrompt }),
    ...(agent.probe ? { probe: (options) => agent.probe!(options) } : {}),
    ...(agent.checkTasks ? { checkTasks: (tasks, known) => agent.checkTasks!(tasks, known) } : {}),
    async open(episode) {
      const session: AgentSession = await agent.open(episode);
      return {
        act: (input, options) =>
          gate.run(async (version) => mark(await session.act(input, options), version)),
        ...(session.close ? { close: () => session.close!() } : {}),
      };
    },
    close: async () => {
      await agent.close?.();
    },
  };
}

/** A rollout engine's agents: the rollouts', and the evaluations' (sampled, and greedy). */
export interface EngineAgents {
  rollout: Agent;
  sampled: Agent;
  greedy?: Agent;
}

/** Each of an engine's agents through `gate` (versionedAgent). */
export function versionedAgents(agents: EngineAgents, gate: PolicyGate): EngineAgents {
  return {
    rollout: versionedAgent(agents.rollout, gate),
    sampled: versionedAgent(agents.sampled, gate),
    ...(agents.greedy ? { greedy: versionedAgent(agents.greedy, gate) } : {}),
  };
}
