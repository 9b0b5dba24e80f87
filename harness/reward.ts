/**
 * Rewards: every episode records a breakdown of named components, their weights and the
 * combined value, so that reports and trainers can see where a reward came from.
 */
import { ERROR_CODES, PaddockError } from './errors.ts';
import type { SealReport } from './sandbox.ts';
import type { Task } from './task.ts';
import { isAgentOutcome, type EpisodeRecord, type TurnRecord } from './episode.ts';
import type { EpisodeContext } from './environment.ts';

/** What the verifier did and what it found. */
export interface VerifierResult {
  /** The reward read from the verifier's output; `null` when none could be read (a failure). */
  reward: number | null;
  /** Named scores (a `reward.json` object); `{ reward }` for a single number. */
  scores: Record<string, number>;
  exitCode: number;
  /** The tail of the command's output. */
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  /** Why no reward could be read, when `reward` is null. */
  error?: string;
  /** Things worth a look that did not stop scoring (e.g. the test runner refused its flags). */
  warnings: string[];
  /**
   * Present when the verifier ran in a fresh sandbox (`VerifierSpec.isolation`);
   * `durationMs` then covers starting it and copying too.
   */
  isolation?: {
    kind: 'container';
    /** The fresh sandbox's id. */
    sandboxId: string;
    /** Paths copied from the agent's sandbox. */
    copied: string[];
    /** `copy` paths that did not exist in the agent's sandbox (the verifier ran without them). */
    missing: string[];
    /** Time to start the fresh sandbox, in ms. */
    startMs: number;
    /** Time to copy the paths over, in ms. */
    copyMs: number;
  };
  /**
   * How `reward` comes from `scores`: `single` (one number: reward.txt, a number in
   * reward.json, an exit code, a reader's reward), `reward-key` (reward.json's `reward`
   * key; the other keys are kept per key, beside it), `mean` (reward.json without a
   * `reward` key: the mean of its numbers), `step-mean` / `step-final` (a multi-step
   * task: see `steps`). Absent when no reward was read.
   */
  aggregate?: 'single' | 'reward-key' | 'mean' | 'step-mean' | 'step-final';
  /**
   * Files kept on the host, beside the run's records: what the verifier left in its
   * `VerifierSpec.keepDir` (test output, reports, reward files) and, on the episode's
   * result, the task's declared artifacts. Absent when the episode keeps no files.
   */
  files?: KeptFile[];
  /** What was not kept and why (the episode's byte budget, the file count). */
  filesNotes?: string[];
  /** The name of the `RewardReader` that read the reward (`VerifierSpec.reward.kind` `reader`). */
  reader?: string;
  /**
   * What that reader saw besides the reward, as it reported it (JSON values; e.g. the
   * counts of tests run, failed and skipped). Records written before readers existed
   * hold the same object under another key, which readers of records ignore.
   */
  details?: Record<string, unknown>;
  /**
   * A multi-step task (`Task.steps`): each step's result in order, the steps that ran
   * (an early stop leaves the rest out). The episode's `reward` and `scores` are then the
   * steps' aggregate (`aggregate`), and the other fields those of the last step verified.
   */
  steps?: StepResult[];
  /**
   * What the sandbox did to end the agent's access before the verifier ran
   * (`Sandbox.seal`): processes killed, system files restored. Absent when the sandbox
   * kind cannot seal (a warning then says the verifier ran beside the agent's processes).
   */
  seal?: SealReport;
}

/** A file copied out of a sandbox into the run folder. */
export interface KeptFile {
  /** Where it is, relative to the run folder (`files/<episode>/attempt-1/verifier/ctrf.json`). */
  path: string;
  /** Where it was in the sandbox. */
  source: string;
  bytes: number;
}

/** One step of a multi-step episode (see `VerifierResult.steps`). */
export interface StepResult {
  name: string;
  /**
   * `verified`: the step's agent turns ran and its verifier scored them; `setup-failed` /
   * `healthcheck-failed`: the step's setup script or healthcheck failed, its agent never
   * ran and it scores 0 (`error` says why); `sandbox-killed`: the agent's processes ended
   * the sandbox during the step.
   */
  outcome: 'verified' | 'setup-failed' | 'healthcheck-failed' | 'sandbox-killed';
  /** The step's reward (counted 0 when null), as its verifier read it. */
  reward: number | null;
  /** Turns of the step: `turns[from]` up to, not including, `turns[to]`. */
  turns: { from: number; to: number };
  /**
   * Messages of the step's conversation: `messages[from]` up to, not including,
   * `messages[to]`. A step starts a new conversation (system prompt and the step's
   * instruction) unless it continues the previous one (`TaskStep.continueSession`).
   */
  messages: { from: number; to: number };
  /** How the step's agent part ended, when not by submitting: a limit, a cut or refused output. */
  ended?: 'limit' | 'truncated' | 'refused';
  /** Which limit ended it. */
  limit?: string;
  /** The step's verifier result (absent when its agent never ran). */
  verifier?: VerifierResult;
  /** Artifacts the step declared (and the task's), kept after its verification. */
  artifacts?: KeptFile[];
  /** Why later steps did not run (`min_reward` not met), when this step stopped the episode. */
  stoppedEpisode?: string;
  /** Why the step failed before its agent ran. */
  error?: string;
}

export interface RewardComponent {
  value: number;
  weight: number;
  /** Why the component has this value (e.g. which check failed), when its source said. */
  note?: string;
}

export interface RewardBreakdown {
  /** Weighted sum of the components. */
  total: number;
  /** Each component by name, e.g. `verifier`, `judge`, `tool_error`. */
  components: Record<string, RewardComponent>;
  /** Constraint values (costs) kept apart from the reward, with their limits. */
  constraints: Record<string, { value: number; limit?: number }>;
}

/**
 * Combines weighted components into a breakdown. A component whose value is not a finite
 * number counts 0, with a note saying so.
 */
export function combineRewards(
  components: Record<string, RewardComponent>,
  constraints: RewardBreakdown['constraints'] = {},
): RewardBreakdown {
  let total = 0;
  const checked: Record<string, RewardComponent> = {};
  for (const [name, component] of Object.entries(components)) {
    // A value that is not a finite number (a scorer's NaN, a judge's Infinity) would make
    // every mean of the run meaningless: it counts 0, and the record says why.
    checked[name] =
      typeof component.value === 'number' && Number.isFinite(component.value)
        ? component
        : {
            ...component,
            value: 0,
            note: `not a finite number (${String(component.value).slice(0, 40)}): counted as 0`,
          };
    total += checked[name].value * component.weight;
  }
  return { total, components: checked, constraints };
}

/**
 * A reward given after each turn. It is opened once per episode (after the sandbox and
 * tool sessions are ready, before turn 0: a progress reward measures its starting value
 * there), and what it keeps for the episode lives in the `TurnReward` it returns.
 */
export interface TurnRewardFunction {
  readonly name: string;
  /** @default 1 */
  readonly weight: number;
  open(episode: EpisodeContext): TurnReward | Promise<TurnReward>;
}

/** A turn reward opened for one episode (see `TurnRewardFunction`). */
export interface TurnReward {
  /** Scores the turn just recorded; `turn.index` counts the episode's turns. */
  score(context: {
    turn: TurnRecord;
    previousTurns: readonly TurnRecord[];
    signal: AbortSignal;
  }): Promise<number>;
  /** Releases what it holds for the episode. Idempotent; never rejects. Optional. */
  close?(): Promise<void>;
}

/** A cost measured on a finished episode, kept apart from the reward (a constraint). */
export interface ConstraintFunction {
  readonly name: string;
  /** The budget, recorded beside the value. */
  readonly limit?: number;
  /** The value on the episode, in the unit the name says. */
  measure(episode: Omit<EpisodeRecord, 'reward'>): number;
}

/** Everything that rewards one task's episodes. */
export interface EpisodeRewards {
  /** Scored after each turn. */
  turn?: readonly TurnRewardFunction[];
  /** Scored after the episode; a function named like a built-in component (`verifier`) replaces it. */
  trajectory?: readonly TrajectoryRewardFunction[];
  /** Measured on the finished episode into `reward.constraints`. */
  constraints?: readonly ConstraintFunction[];
  /**
   * Scored over a finished group of episodes of the task (the G rollouts of a training
   * step) by the trainer, with `applyGroupRewards`; `runEpisodes` scores episodes one by
   * one and does not apply them.
   */
  group?: readonly GroupRewardFunction[];
  /** Credit assignment: the per-turn returns G_t stored on the turns. */
  assignReturns?: (episode: EpisodeRecord) => number[];
}

/**
 * A reward computed over a whole group of episodes of one task at once (after the group
 * finished), one value per episode in the order given — e.g. one judge call ranking the
 * G episodes against each other.
 */
export interface GroupRewardFunction {
  readonly name: string;
  /** @default 1 */
  readonly weight: number;
  score(context: { task: Task; episodes: readonly EpisodeRecord[]; signal: AbortSignal }): Promise<number[]>;
}

/**
 * Adds the components of `functions` to each episode's reward breakdown and recombines its
 * total (constraints kept); with `assignReturns`, the turns' returns are assigned again from
 * the new totals. Returns new records; the inputs are not changed. Episodes that ended in an
 * error keep their breakdown and are left out of the group scoring.
 */
export async function applyGroupRewards(
  task: Task,
  episodes: readonly EpisodeRecord[],
  functions: readonly GroupRewardFunction[],
  options: { signal?: AbortSignal; assignReturns?: EpisodeRewards['assignReturns'] } = {},
): Promise<EpisodeRecord[]> {
  const signal = options.signal ?? new AbortController().signal;
  const scored = episodes
    .map((episode, index) => ({ episode, index }))
    .filter(({ episode }) => isAgentOutcome(episode));
  const result = episodes.map((episode) => ({
    ...episode,
    reward: { ...episode.reward, components: { ...episode.reward.components } },
  }));
  for (const fn of functions) {
    const values = await fn.score({ task, episodes: scored.map(({ episode }) => episode), signal });
    if (values.length !== scored.length) {
      throw new PaddockError(
        ERROR_CODES.VERIFIER_FAILED,
        `group reward ${fn.name} gave ${values.length} values for ${scored.length} episodes of ${task.id}`,
      );
    }
    scored.forEach(({ index }, k) => {
      result[index]!.reward.components[fn.name] = { value: values[k]!, weight: fn.weight };
    });
  }
  for (const { index } of scored) {
    const record = result[index]!;
    record.reward = combineRewards(record.reward.components, record.reward.constraints);
    if (options.assignReturns) {
      const returns = options.assignReturns(record);
      record.turns = record.turns.map((turn, t) =>
        returns[t] === undefined ? turn : { ...turn, return: returns[t] },
      );
    }
  }
  return result;
}

/**
 * A reward given once, after the episode (and its verifier) ended. It runs on the host
 * after the sandbox is gone: it reads only the record, never the agent's environment.
 */
export interface TrajectoryRewardFunction {
  readonly name: string;
  /** @default 1 */
  readonly weight: number;
  score(context: {
    task: Task;
    episode: Omit<EpisodeRecord, 'reward'>;
    signal: AbortSignal;
  }): Promise<number>;
}

/**
 * Scores one turn with the episode's opened turn rewards, in order: each value goes into
 * `turn.rewards` under the function's name, and their weighted sum into `turn.reward`.
 */
export async function scoreTurn(
  turn: TurnRecord,
  previousTurns: readonly TurnRecord[],
  rewards: readonly { fn: TurnRewardFunction; opened: TurnReward }[],
  signal: AbortSignal,
): Promise<void> {
  let total = 0;
  for (const { fn, opened } of rewards) {
    const value = await opened.score({ turn, previousTurns, signal });
    turn.rewards[fn.name] = value;
    total += value * fn.weight;
  }
  turn.reward = total;
}
