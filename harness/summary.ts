/**
 * Run summaries: one row per task (dataset rows are grouped under their task), with
 * episodes, mean reward, pass rate and errors, plus the mean of every reward component,
 * turn reward (summed over an episode's turns) and constraint.
 *
 * Means and pass rates are over scored episodes: every status but `infra-error` and
 * `agent-error` (faults, which have no reward to speak of) counts with its reward — an
 * episode ended by a limit, one whose verifier found no reward, one whose agent broke its
 * own sandbox all count, usually as 0. Give the latest attempt of each episode (what
 * `RunStore.episodes()` returns).
 *
 * A verifier that reports several named scores (a `reward.json` such as
 * `{"correctness": 1, "performance": 0}`) is summarised per key (`scores`) beside the
 * reward it was turned into, and the rule that turned it (`scoreRule`: the `reward` key when
 * the file has one, else the mean of the keys) is stated. Tokens (input, output, cached)
 * and cost are totals over every episode, errors included: they were spent.
 *
 * A summary is made from each episode's figures (`EpisodeFigures`): a record reduced by
 * `episodeFigures`, or a run index entry, which holds the same figures, so that the index
 * of a run of a million episodes summarises it without reading its records, to the same
 * numbers.
 */
import type { EpisodeRecord, EpisodeStatus, RecordedEpisode } from './episode.ts';

/**
 * What a summary needs of one episode: a record reduced to its figures. `summariseRun`
 * takes these or whole records (it reduces those with `episodeFigures`), so a summary
 * made from the run index (whose entries are figures) equals one made from the records.
 */
export interface EpisodeFigures {
  taskId: string;
  status: EpisodeStatus;
  /** `reward.total`. */
  reward: number;
  /** The value of each reward component (`reward.components`), by name. */
  rewardComponents: Readonly<Record<string, number>>;
  /** The value of each constraint (`reward.constraints`), by name. */
  constraints: Readonly<Record<string, number>>;
  /** Each turn reward component summed over the episode's turns, by name (components no turn had are absent). */
  turnRewards: Readonly<Record<string, number>>;
  /** The verifier's named scores (`verifier.scores`); absent when no verifier ran. */
  scores?: Readonly<Record<string, number>>;
  /** True when the verifier ran out of time. */
  verifierTimedOut?: boolean;
  /** Prompt (input) tokens, cached ones included (`usage.promptTokens`). */
  inputTokens: number;
  /** Completion (output) tokens. */
  outputTokens: number;
  /** Input tokens read from the provider's prompt cache, when it said. */
  cachedTokens?: number;
  /** Model spend in USD over the turns that reported a cost; absent when none did. */
  costUsd?: number;
  /** The episode's wall time, in ms. */
  durationMs: number;
}

export interface TaskSummary {
  /** The task id; dataset instances (`task@row`) are grouped under `task`. */
  task: string;
  episodes: number;
  /** Mean reward over the scored episodes (all but errors). */
  meanReward: number;
  /** Share of the scored episodes whose reward reached 1. */
  passRate: number;
  /** Episodes that ended in agent-error or infra-error (left out of the means). */
  errors: number;
  /** Episodes ended by a limit. */
  limits: number;
  /** Episodes by status (`completed`, `limit`, `truncated`, `refused`, `sandbox-killed`, the errors). */
  statuses: Record<string, number>;
  /** Mean value of each reward component. */
  components: Record<string, number>;
  /** Mean over episodes of each turn reward component summed over the episode's turns. */
  turnComponents: Record<string, number>;
  /** Mean value of each constraint (costs kept apart from the reward). */
  constraints: Record<string, number>;
  /**
   * Mean of each named score the verifier reported (`reward.json` keys) over the scored
   * episodes; an episode whose verifier gave no score (it failed, timed out, the sandbox
   * was killed) counts 0, as in `meanReward`. Empty when no verifier reported more than a
   * single number.
   */
  scores: Record<string, number>;
  /**
   * How the named scores became the verifier's reward: `reward-key` (the file's `reward`
   * key; the other keys are reported only), `mean` (the mean of the keys), `mixed` (episodes
   * differ). Absent with `scores`.
   */
  scoreRule?: 'reward-key' | 'mean' | 'mixed';
  /** Episodes whose verifier ran out of time (recorded with no reward, scored 0). */
  verifierTimeouts: number;
  /**
   * Tokens over every episode of the group, errors included: input (prompt, cached ones
   * included), output (completion), and the input tokens read from a prompt cache (0 when
   * no provider said).
   */
  usage: { promptTokens: number; completionTokens: number; cachedTokens: number };
  /** Model spend in USD over every episode (turns whose agent reported a cost); 0 when none did. */
  costUsd: number;
  /** Wall time of the episodes, errors included, in ms: their mean and their sum. */
  durationMs: { mean: number; total: number };
}

export interface RunSummary {
  tasks: TaskSummary[];
  total: TaskSummary;
}

/**
 * True when an episode is a fault rather than an outcome: `infra-error` or `agent-error`.
 * Summaries count it as an error and leave it out of means; every other status counts
 * with its reward.
 */
export function isErrorEpisode(episode: Pick<EpisodeRecord, 'status'>): boolean {
  return episode.status === 'agent-error' || episode.status === 'infra-error';
}

const NONE: Readonly<Record<string, number>> = Object.freeze({});

/** The non-empty object, or the shared empty one (entries of big runs share it). */
function orNone(values: Record<string, number>): Readonly<Record<string, number>> {
  return Object.keys(values).length === 0 ? NONE : values;
}

/**
 * A record's figures (see `EpisodeFigures`). Records written before usage was kept (and
 * hand-made ones) count no tokens.
 */
export function episodeFigures(record: RecordedEpisode): EpisodeFigures {
  const usage = (record as Partial<EpisodeRecord>).usage;
  const turns = (record as Partial<EpisodeRecord>).turns ?? [];
  const turnRewards: Record<string, number> = {};
  let costUsd: number | undefined;
  let cachedFromTurns: number | undefined;
  for (const turn of turns) {
    for (const [key, value] of Object.entries(turn.rewards ?? {}))
      turnRewards[key] = (turnRewards[key] ?? 0) + value;
    if (turn.costUsd !== undefined) costUsd = (costUsd ?? 0) + turn.costUsd;
    if (turn.usage?.cacheReadTokens !== undefined)
      cachedFromTurns = (cachedFromTurns ?? 0) + turn.usage.cacheReadTokens;
  }
  const components: Record<string, number> = {};
  for (const [key, component] of Object.entries(record.reward.components)) components[key] = component.value;
  const constraints: Record<string, number> = {};
  for (const [key, constraint] of Object.entries(record.reward.constraints))
    constraints[key] = constraint.value;
  const cachedTokens = usage?.cacheReadTokens ?? cachedFromTurns;
  return {
    taskId: record.taskId,
    status: record.status,
    reward: record.reward.total,
    rewardComponents: orNone(components),
    constraints: orNone(constraints),
    turnRewards: orNone(turnRewards),
    ...(record.verifier ? { scores: record.verifier.scores } : {}),
    ...(record.verifier?.timedOut ? { verifierTimedOut: true } : {}),
    inputTokens: usage?.promptTokens ?? 0,
    outputTokens: usage?.completionTokens ?? 0,
    ...(cachedTokens === undefined ? {} : { cachedTokens }),
    ...(costUsd === undefined ? {} : { costUsd }),
    durationMs: record.durationMs ?? 0,
  };
}

/** The figures of a record, or the figures themselves (an index entry). */
function figuresOf(episode: RecordedEpisode | EpisodeFigures): EpisodeFigures {
  return typeof episode.reward === 'number'
    ? (episode as EpisodeFigures)
    : episodeFigures(episode as RecordedEpisode);
}

/** Adds `value` to the running sum and count of `key`. */
function accumulate(sums: Map<string, { sum: number; count: number }>, key: string, value: number): void {
  const known = sums.get(key);
  if (known) {
    known.sum += value;
    known.count++;
  } else sums.set(key, { sum: value, count: 1 });
}

function meansOf(sums: Map<string, { sum: number; count: number }>): Record<string, number> {
  const means: Record<string, number> = {};
  for (const [key, { sum, count }] of sums) means[key] = sum / count;
  return means;
}

/** One row of a summary. One pass over the episodes (a run may hold a million), then one for named scores. */
function summarise(name: string, all: readonly EpisodeFigures[]): TaskSummary {
  let count = 0;
  let rewardSum = 0;
  let passes = 0;
  let limits = 0;
  let verifierTimeouts = 0;
  let promptTokens = 0;
  let completionTokens = 0;
  let cachedTokens = 0;
  let costUsd = 0;
  let durationMs = 0;
  const statuses: Record<string, number> = {};
  const components = new Map<string, { sum: number; count: number }>();
  const constraints = new Map<string, { sum: number; count: number }>();
  const turnComponents = new Map<string, { sum: number; count: number }>();
  const scoreKeys = new Set<string>();
  const rules = new Set<'reward-key' | 'mean'>();
  for (const episode of all) {
    statuses[episode.status] = (statuses[episode.status] ?? 0) + 1;
    promptTokens += episode.inputTokens;
    completionTokens += episode.outputTokens;
    cachedTokens += episode.cachedTokens ?? 0;
    costUsd += episode.costUsd ?? 0;
    durationMs += episode.durationMs;
    if (isErrorEpisode(episode)) continue;
    count++;
    rewardSum += episode.reward;
    if (episode.reward >= 1 - 1e-9) passes++;
    if (episode.status === 'limit') limits++;
    if (episode.verifierTimedOut === true) verifierTimeouts++;
    for (const key in episode.turnRewards) accumulate(turnComponents, key, episode.turnRewards[key]!);
    for (const key in episode.rewardComponents) accumulate(components, key, episode.rewardComponents[key]!);
    for (const key in episode.constraints) accumulate(constraints, key, episode.constraints[key]!);
    // Named verifier scores: only where some verifier reported more than one number.
    const scores = episode.scores;
    if (scores !== undefined && Object.keys(scores).length > 1) {
      for (const key in scores) scoreKeys.add(key);
      rules.add('reward' in scores ? 'reward-key' : 'mean');
    }
  }
  const keys = [...scoreKeys].sort();
  const scores: Record<string, number> = {};
  if (keys.length > 0) {
    const sums = keys.map(() => 0);
    for (const episode of all) {
      if (isErrorEpisode(episode)) continue;
      keys.forEach((key, column) => (sums[column]! += episode.scores?.[key] ?? 0));
    }
    keys.forEach((key, column) => (scores[key] = sums[column]! / count));
  }
  const scoreRule = rules.size === 0 ? undefined : rules.size === 1 ? [...rules][0]! : 'mixed';
  return {
    task: name,
    episodes: all.length,
    meanReward: count === 0 ? 0 : rewardSum / count,
    passRate: count === 0 ? 0 : passes / count,
    errors: all.length - count,
    limits,
    statuses,
    components: meansOf(components),
    turnComponents: meansOf(turnComponents),
    constraints: meansOf(constraints),
    scores,
    ...(scoreRule === undefined ? {} : { scoreRule }),
    verifierTimeouts,
    usage: { promptTokens, completionTokens, cachedTokens },
    costUsd,
    durationMs: { mean: all.length === 0 ? 0 : durationMs / all.length, total: durationMs },
  };
}

/**
 * Summarises episodes per task and in total: records (the latest attempt of each, as
 * `RunStore.episodes()` gives them) or their figures (`RunIndex.latest()` entries). The
 * same episodes in the same order give the same summary either way.
 */
/**
 * The task a run's summary groups an episode under: its task id without the dataset row
 * (`toy/lookup-heldout@h0001` → `toy/lookup-heldout`).
 */
export function suiteOf(taskId: string): string {
  return taskId.split('@')[0]!;
}

export function summariseRun(episodes: readonly (RecordedEpisode | EpisodeFigures)[]): RunSummary {
  const figures = episodes.map(figuresOf);
  const groups = new Map<string, EpisodeFigures[]>();
  for (const episode of figures) {
    const key = suiteOf(episode.taskId);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(episode);
  }
  const tasks = [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, group]) => summarise(key, group));
  return { tasks, total: summarise('total', figures) };
}

/** A dollar amount with enough digits to show small spends. */
export function formatUsd(value: number): string {
  return value >= 1 ? value.toFixed(2) : value.toPrecision(3);
}

/** A token count in a few characters: `950`, `12.3k`, `4.56M`. */
export function formatTokens(count: number): string {
  if (count < 1_000) return String(count);
  if (count < 1_000_000) return `${(count / 1_000).toPrecision(3)}k`;
  if (count < 1_000_000_000) return `${(count / 1_000_000).toPrecision(3)}M`;
  return `${(count / 1_000_000_000).toPrecision(3)}G`;
}

/**
 * Renders a summary as a plain-text table: per task and in total the episodes, mean
 * reward, pass rate, errors and limits, and — when the run used any — input and output
 * tokens and cost. Below it: uncommon statuses, verifier timeouts, the run's tokens
 * (cached ones too) and cost, named verifier scores, and reward components.
 */
export function formatSummary(summary: RunSummary): string {
  const { usage, costUsd } = summary.total;
  const spent = usage.promptTokens + usage.completionTokens > 0 || costUsd > 0;
  const header = [
    'task',
    'episodes',
    'mean reward',
    'pass rate',
    'errors',
    'limits',
    ...(spent ? ['tokens in', 'tokens out', 'cost'] : []),
  ];
  const row = (s: TaskSummary): string[] => [
    s.task,
    String(s.episodes),
    s.meanReward.toFixed(3),
    `${(s.passRate * 100).toFixed(1)}%`,
    String(s.errors),
    String(s.limits),
    ...(spent
      ? [
          formatTokens(s.usage.promptTokens),
          formatTokens(s.usage.completionTokens),
          s.costUsd > 0 ? `$${formatUsd(s.costUsd)}` : '-',
        ]
      : []),
  ];
  const rows = [header, ...summary.tasks.map(row), row(summary.total)];
  const widths = header.map((_, column) => Math.max(...rows.map((cells) => cells[column]!.length)));
  const render = (cells: string[]): string =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ');
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  const table = [render(header), rule, ...rows.slice(1, -1).map(render), rule, render(rows.at(-1)!)];
  // Outcomes the columns do not show: truncated and refused outputs, sandboxes the agent killed.
  const others = Object.entries(summary.total.statuses).filter(
    ([status]) => !['completed', 'limit', 'agent-error', 'infra-error'].includes(status),
  );
  if (others.length > 0)
    table.push(`also ended: ${others.map(([status, count]) => `${status} ${count}`).join(', ')}`);
  if (summary.total.verifierTimeouts > 0)
    table.push(`verifier timed out: ${summary.total.verifierTimeouts} episode(s) (no reward, scored 0)`);
  if (spent)
    table.push(
      `tokens: ${usage.promptTokens} prompt + ${usage.completionTokens} completion = ` +
        `${usage.promptTokens + usage.completionTokens}` +
        `${usage.cachedTokens > 0 ? ` (${usage.cachedTokens} prompt tokens from cache)` : ''}` +
        `${costUsd > 0 ? `; cost $${formatUsd(costUsd)}` : ''}`,
    );
  // Named verifier scores, per key, with the rule that made the reward.
  const scored = summary.tasks.filter((task) => Object.keys(task.scores).length > 0);
  if (scored.length > 0) {
    table.push('', 'verifier scores per key (means; reward.json named scores):');
    for (const task of scored) {
      const rule =
        task.scoreRule === 'reward-key'
          ? 'reward = its "reward" key'
          : task.scoreRule === 'mean'
            ? 'reward = mean of the keys'
            : 'reward = its "reward" key where present, else the mean of the keys';
      const parts = Object.entries(task.scores).map(([key, value]) => `verifier.${key}=${value.toFixed(3)}`);
      table.push(`  ${task.task}: ${parts.join('  ')}  (${rule})`);
    }
  }
  // Component, turn reward and constraint means, where a task's reward has more than one part.
  const detailed = summary.tasks.filter(
    (task) =>
      Object.keys(task.constraints).length > 0 ||
      Object.keys(task.turnComponents).length > 0 ||
      Object.keys(task.components).length > 1,
  );
  if (detailed.length > 0) {
    table.push('', 'reward components, turn rewards (turn.*, summed per episode) and constraints (means):');
    for (const task of detailed) {
      const parts = [
        ...Object.entries(task.components).map(([name, value]) => `${name}=${value.toFixed(3)}`),
        ...Object.entries(task.turnComponents).map(([name, value]) => `turn.${name}=${value.toFixed(3)}`),
        ...Object.entries(task.constraints).map(([name, value]) => `[${name}]=${value.toFixed(3)}`),
      ];
      table.push(`  ${task.task}: ${parts.join('  ')}`);
    }
  }
  return table.join('\n');
}
