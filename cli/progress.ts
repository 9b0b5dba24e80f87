/**
 * Progress of a run on the terminal (stderr): episodes done of the total, the rate
 * (episodes per minute), the time left, the mean reward so far, the tokens and the cost
 * spent so far, and how many episodes ended in an error.
 *
 * On a terminal (a TTY) it is one line rewritten in place, at most every `throttleMs`;
 * lines printed through `log` (image build steps, warnings) and episodes that ended in an
 * error go above it and stay. Elsewhere (a pipe, a file, CI) it prints one line per
 * episode, e.g.
 *
 *   [3/8] examples/fix-bug#0 completed reward=1.000 4.2s · 2.5/min · ETA 2m00s · mean 0.667 · tokens 1.2k in / 340 out · $0.0123 · 0 errors
 */
import type { EpisodeRecord } from '../harness/index.ts';
import { episodeOutcome } from './view.ts';

/** Where progress goes: a writable stream such as `process.stderr`. */
export interface ProgressStream {
  write(chunk: string): unknown;
  /** True on a terminal: the live line is rewritten in place. */
  isTTY?: boolean;
  /** The terminal's width; the live line is cut to fit. */
  columns?: number;
}

/** Options of `RunProgress`. */
export interface RunProgressOptions {
  /** @default process.stderr */
  stream?: ProgressStream;
  /** Rewrite one line in place. @default `stream.isTTY` */
  tty?: boolean;
  /** The clock, in ms. @default Date.now */
  now?: () => number;
  /** Least time between two redraws of the live line, in ms. @default 250 */
  throttleMs?: number;
}

/** The figures of a run so far. */
export interface ProgressFigures {
  done: number;
  total: number;
  /** Episodes that ended in `infra-error` or `agent-error`. */
  errors: number;
  /** Mean reward of the scored episodes (all but errors); undefined before the first. */
  meanReward: number | undefined;
  /** Episodes per minute since `start`; undefined before the first episode. */
  ratePerMin: number | undefined;
  /** Time left at the current rate, in ms; undefined before the first episode. */
  etaMs: number | undefined;
  promptTokens: number;
  completionTokens: number;
  /** Model spend in USD of the turns that reported one. */
  costUsd: number;
}

/** A token count in a few characters: `950`, `12.3k`, `4.56M`. */
export function formatCount(count: number): string {
  if (count < 1_000) return String(count);
  if (count < 1_000_000) return `${(count / 1_000).toFixed(count < 10_000 ? 1 : 0)}k`;
  return `${(count / 1_000_000).toFixed(2)}M`;
}

/** A dollar amount with the digits small spends need: `$0`, `$0.00123`, `$4.20`. */
export function formatUsd(value: number): string {
  if (value === 0) return '$0';
  return `$${value >= 1 ? value.toFixed(2) : value.toPrecision(3)}`;
}

/** A duration as `45s`, `2m05s` or `1h02m`. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** The figures as the part of a progress line after the episode: `2.5/min · ETA 2m00s · …`. */
export function formatFigures(figures: ProgressFigures): string {
  return [
    figures.ratePerMin === undefined ? '-/min' : `${figures.ratePerMin.toFixed(1)}/min`,
    `ETA ${figures.etaMs === undefined ? '-' : formatDuration(figures.etaMs)}`,
    `mean ${figures.meanReward === undefined ? '-' : figures.meanReward.toFixed(3)}`,
    `tokens ${formatCount(figures.promptTokens)} in / ${formatCount(figures.completionTokens)} out`,
    formatUsd(figures.costUsd),
    `${figures.errors} error${figures.errors === 1 ? '' : 's'}`,
  ].join(' · ');
}

/**
 * The progress display of one run (or one session of a resumed run). Call `start` once
 * the number of episodes is known, `recorded` for each episode the store recorded, `log`
 * for any other line, and `finish` when the run ends (it leaves the live line in place).
 */
export class RunProgress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly throttleMs: number;
  private total = 0;
  private startedAt: number;
  private done = 0;
  private errors = 0;
  private scored = 0;
  private rewardSum = 0;
  private promptTokens = 0;
  private completionTokens = 0;
  private costUsd = 0;
  private last = '';
  /** The live line on screen now ('' when none). */
  private shown = '';
  private drawnAt = -Infinity;
  private pending: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(options: RunProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? this.stream.isTTY === true;
    this.now = options.now ?? Date.now;
    this.throttleMs = options.throttleMs ?? 250;
    this.startedAt = this.now();
  }

  /** The run starts with `total` episodes to run: the clock of the rate starts now. */
  start(total: number): void {
    this.total = total;
    this.startedAt = this.now();
    this.draw(true);
  }

  /** One episode was recorded. */
  recorded(episode: EpisodeRecord): void {
    this.done++;
    const error = episode.status === 'infra-error' || episode.status === 'agent-error';
    if (error) this.errors++;
    else {
      this.scored++;
      this.rewardSum += episode.reward.total;
    }
    this.promptTokens += episode.usage?.promptTokens ?? 0;
    this.completionTokens += episode.usage?.completionTokens ?? 0;
    for (const turn of episode.turns) this.costUsd += turn.costUsd ?? 0;
    const line =
      `[${this.done}/${this.total}] ${episode.episodeId} ${episodeOutcome(episode)} ` +
      `${(episode.durationMs / 1000).toFixed(1)}s`;
    if (!this.tty) {
      this.stream.write(`${line} · ${formatFigures(this.figures())}\n`);
      return;
    }
    this.last = `${episode.episodeId} ${episodeOutcome(episode)}`;
    // An error stays on screen; the live line shows only the latest episode.
    if (error) this.log(line);
    else this.draw(this.done === this.total);
  }

  /** Prints a line of its own (a build step, a warning); on a terminal, above the live line. */
  log(line: string): void {
    if (!this.tty) {
      this.stream.write(`${line}\n`);
      return;
    }
    this.stream.write(`${this.shown ? '\r\x1b[2K' : ''}${line}\n`);
    this.shown = '';
    this.draw(true);
  }

  /** Ends the display: the live line stays as the last state, followed by a newline. */
  finish(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
    if (this.finished) return;
    if (this.tty && this.total > 0) {
      this.draw(true);
      if (this.shown) this.stream.write('\n');
    }
    this.shown = '';
    this.finished = true;
  }

  /** The figures so far. */
  figures(): ProgressFigures {
    const elapsedMs = Math.max(1, this.now() - this.startedAt);
    const ratePerMin = this.done === 0 ? undefined : (this.done / elapsedMs) * 60_000;
    return {
      done: this.done,
      total: this.total,
      errors: this.errors,
      meanReward: this.scored === 0 ? undefined : this.rewardSum / this.scored,
      ratePerMin,
      etaMs:
        ratePerMin === undefined ? undefined : (Math.max(0, this.total - this.done) / ratePerMin) * 60_000,
      promptTokens: this.promptTokens,
      completionTokens: this.completionTokens,
      costUsd: this.costUsd,
    };
  }

  /** Redraws the live line now (`force`) or once the throttle allows. */
  private draw(force: boolean): void {
    if (!this.tty || this.total === 0 || this.finished) return;
    const wait = this.drawnAt + this.throttleMs - this.now();
    if (!force && wait > 0) {
      this.pending ??= setTimeout(() => {
        this.pending = undefined;
        this.draw(true);
      }, wait).unref();
      return;
    }
    this.drawnAt = this.now();
    let text = `[${this.done}/${this.total}] ${formatFigures(this.figures())}${this.last ? ` · last ${this.last}` : ''}`;
    const width = this.stream.columns ?? 0;
    if (width > 1 && text.length > width - 1) text = `${text.slice(0, width - 2)}…`;
    this.stream.write(`\r\x1b[2K${text}`);
    this.shown = text;
  }
}
