/**
 * Tool providers: plug-ins that give an episode tools beyond the sandbox's own (a
 * browser, MCP servers). The loop opens one session per episode for each provider the
 * task uses, and closes them all when the episode ends, whatever happened.
 */
import type { Sandbox, SandboxLabels } from './sandbox.ts';
import type { Task } from './task.ts';
import type { ImagePart, Tool } from './tool.ts';

/** A session's score with what a bare number cannot say: its weight and why it is what it is. */
export interface SessionScore {
  value: number;
  /** @default 1 */
  weight?: number;
  /** Why the score is what it is (e.g. which check failed), kept on the episode's reward. */
  note?: string;
}

/** What a session adds to the first user message. */
export interface InitialObservation {
  text: string;
  images?: ImagePart[];
}

export interface ToolSession {
  /** Tools this session adds to the agent's list. Names must not collide with others. */
  readonly tools: readonly Tool[];
  /**
   * Trajectory scores read from the session's state after the agent stopped (a page
   * predicate, an MCP server's state), by name: a number (weight 1), or a value with a
   * weight and a note. Optional.
   */
  score?(options: {
    signal: AbortSignal;
    /** What the agent submitted (`submit`'s answer), when it did: a grounding page scores the point it names. */
    answer?: string;
  }): Promise<Record<string, number | SessionScore>>;
  /**
   * Text (and images: the page's first screenshot) appended to the first user message.
   * Optional.
   */
  initialObservation?(options: { signal: AbortSignal }): Promise<string | InitialObservation | undefined>;
  /**
   * Resolves, on the session's state as it is now, the arguments of a reference-solution
   * call to one of its tools that name elements where the tool takes coordinates (`at:
   * { selector }` → `{ x, y }`). The oracle asks before each call; undefined when the
   * session has nothing to resolve. Optional.
   */
  resolveReference?(
    call: { name: string; arguments: Record<string, unknown> },
    options: { signal: AbortSignal },
  ): Promise<Record<string, unknown> | undefined>;
  /** Releases everything the session holds. Idempotent; never rejects. */
  close(): Promise<void>;
}

/**
 * One episode as the plug-ins opened for it see it: agents (`Agent.open`), turn rewards
 * (`TurnRewardFunction.open`) and, through `labels`, tool providers receive it, so that
 * whatever they keep for an episode lives in what they return, never in a table keyed by
 * task id and seed.
 */
export interface EpisodeContext {
  /** The task (for a multi-step task, the whole task; each turn's input has the step's view). */
  readonly task: Task;
  readonly runId: string;
  readonly episodeId: string;
  /** The episode's seed, for backends that sample. */
  readonly seed: number;
  /** The task's sandbox, when it has an environment. */
  readonly sandbox?: Sandbox;
  /** The episode's tool sessions, by the name of the provider that opened them (`browser`, `mcp`…). */
  readonly sessions: ReadonlyMap<string, ToolSession>;
  /** Aborts when the run stops. */
  readonly signal: AbortSignal;
}

export interface ToolProvider {
  /** The task extension key this provider reads, e.g. `browser`, `mcp`. */
  readonly name: string;
  /**
   * Opens a session for `task`, or returns undefined when the task does not use this
   * provider. Rejects with a retryable PaddockError on infrastructure faults.
   */
  open(
    task: Task,
    context: { sandbox?: Sandbox; labels: SandboxLabels; signal: AbortSignal },
  ): Promise<ToolSession | undefined>;
}
