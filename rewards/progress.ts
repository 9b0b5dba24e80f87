/**
 * Progress rewards: a command run in the agent's sandbox after each turn whose stdout is
 * parsed into a progress value Φ ∈ [0, 1] (the fraction of visible tests that pass, a
 * number the command prints, a key of a JSON object). The turn is rewarded with the
 * change Φ(s_{t+1}) − Φ(s_t) — potential-based shaping, so the rewards of an episode sum
 * to Φ(end) − Φ(start) and can never add up to more than 1 whatever the agent does.
 *
 * Φ(start) is measured once per episode by `start()` before turn 0 (the episode loop
 * calls it when it supports the hook), or else taken as `initial` (default 0) on the first
 * turn. A command that fails, times out or prints nothing parseable measures Φ = 0.
 *
 * Isolation: the command runs as root (by default) in the agent's sandbox, so it sees
 * what the agent did, and whatever the agent left there can influence what it prints;
 * but its output goes only to the reward — never into the conversation or the record —
 * and only through the parsed, clamped value. Treat progress as a hint the agent may game
 * (hence the `gated` credit scheme), and the verifier as the ground truth.
 */
import type { Sandbox, TurnRewardFunction } from '../harness/index.ts';
import type { ComponentOptions } from './rules.ts';
import { tryParseJson } from './text.ts';

/** How a progress command's stdout becomes a value. */
export type ProgressParser = 'passed_fraction' | 'number' | `json:${string}`;

/**
 * passed / (passed + failed + errors) of the last pytest summary line in `output`
 * (`3 passed, 1 failed in 0.12s`, `1 failed, 2 passed, 1 error`); 0 for `no tests ran`;
 * undefined when there is no summary.
 */
export function passedFraction(output: string): number | undefined {
  const lines = output.split(/\r?\n/).reverse();
  for (const line of lines) {
    const counts: Record<string, number> = {};
    for (const match of line.matchAll(
      /(\d+) (passed|failed|errors?|xpassed|xfailed|skipped|deselected|warnings?)\b/g,
    )) {
      const kind = match[2]!.replace(/s$/, ''); // errors → error, warnings → warning
      counts[kind] = (counts[kind] ?? 0) + Number(match[1]);
    }
    const passed = counts.passed ?? 0;
    const failed = (counts.failed ?? 0) + (counts.error ?? 0);
    if (passed + failed > 0) return passed / (passed + failed);
    if (Object.keys(counts).length > 0 || /no tests ran/.test(line)) return 0;
  }
  return undefined;
}

const NUMBER = /[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?/g;

/** The last number in `output`, or undefined. */
export function lastNumber(output: string): number | undefined {
  const found = output.match(NUMBER)?.at(-1);
  if (found === undefined) return undefined;
  const value = Number(found);
  return Number.isFinite(value) ? value : undefined;
}

/** The number at dotted `key` (`a.b.0`) of the JSON in `output` (the whole text, or its last JSON line). */
export function jsonNumber(output: string, key: string): number | undefined {
  const candidates = [output.trim(), ...output.trim().split(/\r?\n/).reverse()];
  for (const candidate of candidates) {
    let value = tryParseJson(candidate);
    if (value === undefined || value === null || typeof value !== 'object') continue;
    for (const segment of key.split('.')) {
      value =
        value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[segment] : undefined;
    }
    if (typeof value === 'number' && Number.isFinite(value)) return value;
    if (typeof value === 'boolean') return value ? 1 : 0;
    return undefined;
  }
  return undefined;
}

/** Parses `output` with `parser` into a progress value clamped to [0, 1], or undefined. */
export function parseProgress(output: string, parser: ProgressParser): number | undefined {
  const value =
    parser === 'passed_fraction'
      ? passedFraction(output)
      : parser === 'number'
        ? lastNumber(output)
        : jsonNumber(output, parser.slice('json:'.length));
  if (value === undefined || Number.isNaN(value)) return undefined;
  return Math.min(1, Math.max(0, value));
}

export interface ProgressRewardOptions extends ComponentOptions {
  /** Shell command run in the sandbox after each turn. */
  command: string;
  parse: ProgressParser;
  /** @default 60_000 */
  timeoutMs?: number;
  /** @default the sandbox's workdir */
  cwd?: string;
  /** @default 'root' */
  user?: string;
  /** Φ before turn 0 when `start` was not called for the episode. @default 0 */
  initial?: number;
}

/** What a turn reward's episode-start hook is told (as the episode loop calls it). */
export type RewardStartContext = Parameters<NonNullable<TurnRewardFunction['start']>>[0];

/**
 * A turn reward with an episode-start hook: the episode loop calls `start` once per
 * episode, after the sandbox and tool sessions are ready and before turn 0.
 */
export interface StartableTurnReward extends TurnRewardFunction {
  start(context: RewardStartContext): Promise<void>;
}

/** True when `fn` has an episode-start hook. */
export function isStartable(fn: TurnRewardFunction): fn is StartableTurnReward {
  return typeof (fn as Partial<StartableTurnReward>).start === 'function';
}

/**
 * A progress reward (see the module comment). One instance serves any number of
 * concurrent episodes: Φ is kept per sandbox.
 */
export class ProgressReward implements StartableTurnReward {
  readonly name: string;
  readonly weight: number;
  private readonly potentials = new WeakMap<Sandbox, number>();

  constructor(private readonly options: ProgressRewardOptions) {
    this.name = options.name ?? 'progress';
    this.weight = options.weight ?? 1;
  }

  /**
   * Φ of the sandbox now: runs the command and parses its stdout; 0 when it timed out or
   * printed nothing parseable. Rejects on sandbox faults and aborts.
   */
  async measure(sandbox: Sandbox, signal: AbortSignal): Promise<number> {
    const result = await sandbox.exec(this.options.command, {
      user: this.options.user ?? 'root',
      timeoutMs: this.options.timeoutMs ?? 60_000,
      signal,
      maxOutputBytes: 64 * 1024,
      ...(this.options.cwd === undefined ? {} : { cwd: this.options.cwd }),
    });
    if (result.timedOut) return 0;
    return parseProgress(result.stdout, this.options.parse) ?? 0;
  }

  /** Measures Φ(start) of the episode running in `context.sandbox`. */
  async start(context: RewardStartContext): Promise<void> {
    if (!context.sandbox) return;
    this.potentials.set(context.sandbox, await this.measure(context.sandbox, context.signal));
  }

  async score(context: Parameters<TurnRewardFunction['score']>[0]): Promise<number> {
    const { sandbox } = context;
    if (!sandbox) return 0;
    const before = this.potentials.get(sandbox) ?? this.options.initial ?? 0;
    const after = await this.measure(sandbox, context.signal);
    this.potentials.set(sandbox, after);
    return after - before;
  }
}
