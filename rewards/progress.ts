/**
 * Progress rewards: a command run in the agent's sandbox after each turn whose stdout is
 * parsed into a progress value Φ ∈ [0, 1] (the fraction of visible tests that pass, a
 * number the command prints, a key of a JSON object). The turn is rewarded with the
 * change Φ(s_{t+1}) − Φ(s_t) — potential-based shaping, so the rewards of an episode sum
 * to Φ(end) − Φ(start) and can never add up to more than 1 whatever the agent does.
 *
 * Φ(start) is measured when the reward is opened for an episode (the episode loop opens it
 * after the sandbox is ready, before turn 0), and the opened reward keeps the episode's Φ
 * from turn to turn. When that first measurement reads nothing (the command timed out or
 * printed nothing parseable), Φ(start) is `initial` (default 0); after a turn, such a
 * measurement is Φ = 0.
 *
 * Isolation: the command runs as root (by default) in the agent's sandbox, so it sees
 * what the agent did, and whatever the agent left there can influence what it prints;
 * but its output goes only to the reward — never into the conversation or the record —
 * and only through the parsed, clamped value. Treat progress as a hint the agent may game
 * (hence the `gated` credit scheme), and the verifier as the ground truth.
 */
import type { EpisodeContext, Sandbox, TurnReward, TurnRewardFunction } from '../harness/index.ts';
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
  /**
   * Φ before turn 0 when the measurement at the start reads nothing (the command timed out or
   * printed nothing parseable). @default 0
   */
  initial?: number;
}

/**
 * A progress reward (see the module comment). One instance serves any number of
 * concurrent episodes: each `open` returns a reward holding its own episode's Φ.
 */
export class ProgressReward implements TurnRewardFunction {
  readonly name: string;
  readonly weight: number;

  constructor(private readonly options: ProgressRewardOptions) {
    this.name = options.name ?? 'progress';
    this.weight = options.weight ?? 1;
  }

  /**
   * Φ of the sandbox now: runs the command and parses its stdout; 0 when it timed out or
   * printed nothing parseable. Rejects on sandbox faults and aborts.
   */
  async measure(sandbox: Sandbox, signal: AbortSignal): Promise<number> {
    return (await this.read(sandbox, signal)) ?? 0;
  }

  /**
   * Measures Φ(start) in the episode's sandbox and returns the episode's reward, which pays
   * each turn Φ(after) − Φ(before). An episode without a sandbox scores 0 on every turn.
   * Rejects on sandbox faults and when `episode.signal` aborts.
   */
  async open(episode: EpisodeContext): Promise<TurnReward> {
    const { sandbox } = episode;
    if (!sandbox) return { score: async () => 0 };
    let potential = (await this.read(sandbox, episode.signal)) ?? this.options.initial ?? 0;
    return {
      score: async ({ signal }) => {
        const after = await this.measure(sandbox, signal);
        const reward = after - potential;
        potential = after;
        return reward;
      },
    };
  }

  /** Φ of the sandbox now, or undefined when the command timed out or printed nothing parseable. */
  private async read(sandbox: Sandbox, signal: AbortSignal): Promise<number | undefined> {
    const result = await sandbox.exec(this.options.command, {
      user: this.options.user ?? 'root',
      timeoutMs: this.options.timeoutMs ?? 60_000,
      signal,
      maxOutputBytes: 64 * 1024,
      ...(this.options.cwd === undefined ? {} : { cwd: this.options.cwd }),
    });
    if (result.timedOut) return undefined;
    return parseProgress(result.stdout, this.options.parse);
  }
}
