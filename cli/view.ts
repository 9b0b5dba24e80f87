/**
 * `paddock view` in the terminal and as JSON: the list of runs, one run's table and a page
 * of its episodes, or one episode's transcript. Runs are read through their index
 * (`RunIndex`), so a run of 100,000 episodes opens without reading its records; a
 * transcript reads its one record.
 *
 * Transcripts are trimmed for a terminal: long messages, observations (snapshots),
 * tool results and verifier output keep their start and end, with a marker saying how
 * much was cut and that `--full` shows all; images show as `[image png 34 KB]`, never as
 * base64.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ERROR_CODES,
  PaddockError,
  RunIndex,
  RunStore,
  formatSummary,
  formatTokens,
  formatUsd,
  recordedImageBytes,
  type EpisodeIndexEntry,
  type RecordedEpisode,
  type RecordedImage,
  type RunSummary,
} from '../harness/index.ts';

/** Characters of assistant text, tool calls and verifier output shown before trimming. */
const CLIP = 2_000;
/** Characters of a tool result or an observation (snapshots, page text) shown before trimming. */
const CLIP_OBSERVATION = 800;
/** Episodes listed per page of a run's view. */
const PAGE = 100;

/**
 * `text`, or its start and end with a marker in between saying how much was cut, when
 * it is longer than `max` characters and `full` is not set.
 */
function clip(text: string, max: number, full: boolean): string {
  if (full || text.length <= max) return text;
  const head = Math.ceil((max * 2) / 3);
  const tail = max - head;
  const cut = text.length - head - tail;
  return `${text.slice(0, head)}\n[… ${cut} characters cut; --full shows all …]\n${text.slice(text.length - tail)}`;
}

/**
 * An image as a transcript shows it: `[image png 34 KB]`, inline or kept in the run's
 * `images/` folder alike; `[image png 34 KB — omitted: over the episode's image budget]`
 * when the record kept no bytes.
 */
function imageText(image: RecordedImage): string {
  const bytes = recordedImageBytes(image);
  const size =
    bytes >= 1024 * 1024
      ? `${(bytes / 1024 / 1024).toFixed(1)} MB`
      : `${Math.max(1, Math.round(bytes / 1024))} KB`;
  const omitted = 'omitted' in image && image.omitted ? ` — omitted: ${image.omitted}` : '';
  return `[image ${image.mimeType.replace(/^image\//, '')} ${size}${omitted}]`;
}

/**
 * Each turn's reward components, its combined reward and its return (what the trainer
 * uses), as a table; nothing when the turns carry neither rewards nor returns.
 */
function turnRewardLines(turns: RecordedEpisode['turns']): string[] {
  const names = [...new Set(turns.flatMap((turn) => Object.keys(turn.rewards)))];
  const withReturns = turns.some((turn) => turn.return !== undefined);
  if (names.length === 0 && !withReturns) return [];
  const number = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(3));
  const rows = [
    ['turn', ...names, 'reward', ...(withReturns ? ['return'] : [])],
    ...turns.map((turn) => [
      String(turn.index),
      ...names.map((name) => number(turn.rewards[name])),
      number(turn.reward),
      ...(withReturns ? [number(turn.return)] : []),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => `  ${row.map((cell, column) => cell.padStart(widths[column]!)).join('  ')}`);
}

/** Named scores as `correctness=1 performance=0`, or '' for a single number. */
function scoresText(scores: Readonly<Record<string, number>> | undefined): string {
  const entries = Object.entries(scores ?? {});
  if (entries.length <= 1) return '';
  return entries.map(([key, value]) => `${key}=${value}`).join(' ');
}

/** How a verifier's named scores became its reward, in words. */
function scoreRuleText(scores: Readonly<Record<string, number>>): string {
  return 'reward' in scores ? 'the reward is its "reward" key' : 'the reward is the mean of the keys';
}

/**
 * One episode's outcome in a line: status and what qualifies it (the limit, what cut or
 * refused the output, a verifier that timed out or failed, the error), the reward, and the
 * verifier's named scores when it gave several, e.g.
 * `completed reward=0.000 — verifier timed out after 120 s (no reward)` or
 * `completed reward=0.500 [correctness=1 performance=0]`.
 */
export function episodeOutcome(episode: RecordedEpisode): string {
  const qualifier = episode.limit
    ? ` (limit: ${episode.limit})`
    : episode.truncation
      ? ` (${episode.truncation})`
      : episode.refusal
        ? ` (${episode.refusal})`
        : '';
  const scores = scoresText(episode.verifier?.scores);
  const verifier = episode.verifier;
  const notes = [
    ...(episode.error ? [`${episode.error.code}: ${episode.error.message}`] : []),
    ...(verifier?.timedOut
      ? [
          `verifier timed out${verifier.durationMs ? ` after ${(verifier.durationMs / 1000).toFixed(0)} s` : ''} (no reward)`,
        ]
      : verifier?.reward === null && verifier.error
        ? [`verifier failed: ${verifier.error}`]
        : []),
  ];
  return (
    `${episode.status}${qualifier} reward=${episode.reward.total.toFixed(3)}` +
    `${scores ? ` [${scores}]` : ''}${notes.length > 0 ? ` — ${notes.join('; ')}` : ''}`
  );
}

/** The episode's tokens and cost in a line, e.g. `tokens 12000 prompt (9000 cached) + 300 completion; cost $0.0500`; none when it used none. */
function tokenLines(episode: RecordedEpisode): string[] {
  const usage = (episode as Partial<RecordedEpisode>).usage;
  const cost = (episode.turns ?? []).reduce((sum, turn) => sum + (turn.costUsd ?? 0), 0);
  if (!usage || (usage.promptTokens + usage.completionTokens === 0 && cost === 0)) return [];
  const cached = usage.cacheReadTokens ? ` (${usage.cacheReadTokens} cached)` : '';
  return [
    `tokens ${usage.promptTokens} prompt${cached} + ${usage.completionTokens} completion` +
      `${cost > 0 ? `; cost $${formatUsd(cost)}` : ''}`,
  ];
}

/**
 * Renders one episode's reward breakdown, per-turn rewards, conversation, tool results and
 * verifier output, long texts trimmed (see the module's comment) unless `full`.
 */
export function renderEpisode(episode: RecordedEpisode, options: { full?: boolean } = {}): string {
  const full = options.full === true;
  const lines = [
    `episode ${episode.episodeId} — task ${episode.taskId}, agent ${episode.agent}, attempt ${episode.attempt}`,
    `status ${episode.status}${episode.limit ? ` (${episode.limit})` : ''}${episode.truncation ? ` (${episode.truncation})` : ''}${episode.refusal ? ` (${episode.refusal})` : ''}${episode.error ? ` — ${episode.error.code}: ${episode.error.message}` : ''}`,
    ...episode.previousAttempts.map(
      (earlier, index) => `  earlier attempt ${index + 1}: ${earlier.code}: ${earlier.message}`,
    ),
    `reward ${episode.reward.total.toFixed(3)}  ${Object.entries(episode.reward.components)
      .map(([name, component]) => `${name}=${component.value}×${component.weight}`)
      .join(' ')}`,
    ...Object.entries(episode.reward.components)
      .filter(([, component]) => component.note)
      .map(([name, component]) => `  ${name}: ${component.note}`),
    ...Object.entries(episode.reward.constraints).map(
      ([name, constraint]) =>
        `constraint ${name}=${constraint.value}${constraint.limit === undefined ? '' : ` (limit ${constraint.limit})`}`,
    ),
    ...turnRewardLines(episode.turns),
    ...tokenLines(episode),
    '',
  ];
  for (const message of episode.messages) {
    if (message.role === 'assistant') {
      if (message.reasoning?.text) lines.push(`── reasoning`, clip(message.reasoning.text, CLIP, full));
      lines.push(`── assistant`, ...(message.content ? [clip(message.content, CLIP, full)] : []));
      for (const call of message.toolCalls ?? [])
        lines.push(`  → ${call.name}(${clip(call.arguments, CLIP, full)})`);
    } else if (message.role === 'tool') {
      lines.push(
        `── tool ${message.name}${message.isError ? ' (error)' : ''}`,
        clip(message.content, CLIP_OBSERVATION, full),
      );
      for (const image of message.images ?? []) lines.push(imageText(image));
    } else if (message.role === 'user') {
      lines.push(`── user`, clip(message.content, CLIP_OBSERVATION, full));
      for (const image of message.images ?? []) lines.push(imageText(image));
    } else {
      lines.push(`── ${message.role}`, clip(message.content, CLIP, full));
    }
  }
  if (episode.verifier) {
    const verifier = episode.verifier;
    lines.push(
      '',
      verifier.timedOut
        ? `── verifier: TIMED OUT after ${(verifier.durationMs / 1000).toFixed(1)} s — no reward${verifier.error ? ` (${verifier.error})` : ''}`
        : `── verifier: reward ${verifier.reward ?? 'none'} exit ${verifier.exitCode}${verifier.error ? ` — ${verifier.error}` : ''}`,
    );
    const scores = scoresText(verifier.scores);
    if (scores) lines.push(`scores ${scores} (${scoreRuleText(verifier.scores)})`);
    for (const warning of verifier.warnings) lines.push(`warning: ${warning}`);
    for (const step of verifier.steps ?? []) {
      lines.push(
        `step ${step.name}: ${step.outcome} reward ${step.reward ?? 'none'} (turns ${step.turns.from}–${step.turns.to - 1})` +
          `${step.ended ? `, ended by ${step.ended}` : ''}`,
      );
    }
    // What the verifier left (reports, artifacts), kept beside the run's records.
    for (const file of verifier.files ?? [])
      lines.push(`file ${file.path} (${file.source}, ${file.bytes} bytes)`);
    for (const note of verifier.filesNotes ?? []) lines.push(`files: ${note}`);
    if (verifier.stdout.trim()) lines.push(clip(verifier.stdout.trimEnd(), CLIP, full));
    if (verifier.stderr.trim()) lines.push(clip(verifier.stderr.trimEnd(), CLIP, full));
  }
  return `${lines.join('\n')}\n`;
}

/** Options of `viewRun` and `viewRunJson`. */
export interface ViewOptions {
  /** The folder holding the runs. */
  runsDir: string;
  /** One run; without it, the list of runs. */
  runId?: string;
  /** One episode of the run (its latest attempt): its transcript. */
  episodeId?: string;
  /** Show transcripts whole, untrimmed. @default false */
  full?: boolean;
  /** The first episode of the page listed (0-based). @default 0 */
  offset?: number;
  /** Episodes listed on the page. @default 100 */
  limit?: number;
}

/** An entry's outcome in a line, as `episodeOutcome` says a record's. */
function entryOutcome(entry: EpisodeIndexEntry): string {
  const qualifier = entry.limit
    ? ` (limit: ${entry.limit})`
    : entry.truncation
      ? ` (${entry.truncation})`
      : entry.refusal
        ? ` (${entry.refusal})`
        : '';
  const scores = scoresText(entry.scores);
  const notes = [
    ...(entry.errorCode ? [`${entry.errorCode}: ${entry.errorMessage ?? ''}`] : []),
    ...(entry.verifierTimedOut ? ['verifier timed out (no reward)'] : []),
  ];
  return (
    `${entry.status}${qualifier} reward=${entry.reward.toFixed(3)}` +
    `${scores ? ` [${scores}]` : ''}${notes.length > 0 ? ` — ${notes.join('; ')}` : ''}`
  );
}

/** Tokens and cost in a few characters: `12.3k in / 450 out, $0.0120`; '' when none. */
function spendText(input: number, output: number, costUsd: number | undefined): string {
  if (input + output === 0 && !costUsd) return '';
  return `${formatTokens(input)} in / ${formatTokens(output)} out${costUsd ? `, $${formatUsd(costUsd)}` : ''}`;
}

/** The run's index. @throws PaddockError RUN_NOT_FOUND naming the run and the folder. */
function openIndex(runsDir: string, runId: string): RunIndex {
  const dir = join(runsDir, runId);
  if (!existsSync(join(dir, 'run.json')))
    throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `no run ${runId} in ${runsDir}`, {
      details: { runId, runsDir },
    });
  return RunIndex.open(dir);
}

/** One run as the run list shows it. */
function runLine(runsDir: string, runId: string): string {
  const index = openIndex(runsDir, runId);
  try {
    const { total } = index.summary();
    const spend = spendText(total.usage.promptTokens, total.usage.completionTokens, total.costUsd);
    // Id and agent first: scripts read the lines (`^<run>\s+<agent>\s+<done>/<planned> episodes`).
    return (
      `${runId}  ${String(index.manifest.config.agent)}  ` +
      `${index.latest().length}/${index.manifest.plan.length} episodes  mean reward ${total.meanReward.toFixed(3)}` +
      `${spend ? `  ${spend}` : ''}  created ${index.manifest.createdAt}`
    );
  } finally {
    index.close();
  }
}

/** What a run's view notes under its table: missing and errored episodes, skipped tasks, a torn tail. */
function runNotes(index: RunIndex, runId: string): string[] {
  const latest = index.latest();
  const done = new Set(latest.map((entry) => entry.episodeId));
  const missing = index.manifest.plan.filter((planned) => !done.has(planned.episodeId)).length;
  const errored = latest.filter(
    (entry) => entry.status === 'infra-error' || entry.status === 'agent-error',
  ).length;
  const skipped = index.manifest.config.skipped;
  return [
    ...(missing > 0 ? [`${missing} planned episode(s) not run yet (paddock resume ${runId})`] : []),
    ...(errored > 0
      ? [`${errored} episode(s) ended in an error (paddock resume ${runId} --retry-errors runs them again)`]
      : []),
    ...(Array.isArray(skipped) && skipped.length > 0
      ? [
          `${skipped.length} task(s) skipped as invalid when the run started (--skip-invalid):`,
          ...skipped.map((line) => `  ${String(line)}`),
        ]
      : []),
    ...(index.tornTail
      ? [
          `a torn last record (${index.tornTail.bytes} bytes) was cut off${index.tornTail.savedTo ? ` and kept in ${index.tornTail.savedTo}` : ''}`,
        ]
      : []),
  ];
}

/**
 * The text of `paddock view`: without `runId` the list of runs (id, agent, episodes
 * done/planned, mean reward, tokens, cost, created); with it the run's summary table and
 * a page of its episodes (the latest attempt of each, in plan order); with `episodeId`
 * that episode's transcript, trimmed unless `full`.
 * @throws PaddockError RUN_NOT_FOUND for an unknown run.
 */
export function viewRun(options: ViewOptions): string {
  if (!options.runId) {
    const runs = RunStore.list(options.runsDir);
    if (runs.length === 0) return `no runs in ${options.runsDir}\n`;
    return `${runs.map((runId) => runLine(options.runsDir, runId)).join('\n')}\n`;
  }
  const runId = options.runId;
  const index = openIndex(options.runsDir, runId);
  try {
    if (options.episodeId) {
      if (!index.latest().some((entry) => entry.episodeId === options.episodeId))
        return `no episode ${options.episodeId} in run ${runId}\n`;
      return renderEpisode(index.record(options.episodeId), { full: options.full === true });
    }
    const latest = index.latest();
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = Math.max(1, Math.floor(options.limit ?? PAGE));
    const page = latest.slice(offset, offset + limit);
    const rows = page.map((entry) => {
      const spend = spendText(entry.inputTokens, entry.outputTokens, entry.costUsd);
      return `${entry.episodeId}\t${entryOutcome(entry)}\t${entry.turns} turns${spend ? `\t${spend}` : ''}`;
    });
    const shown =
      latest.length > page.length
        ? [
            `episodes ${page.length === 0 ? 0 : offset + 1}–${offset + page.length} of ${latest.length} ` +
              '(paddock view opens them all in the browser; --json gives them to programs)',
          ]
        : [];
    const notes = runNotes(index, runId);
    return (
      `${formatSummary(index.summary())}\n\n${rows.join('\n')}${rows.length > 0 ? '\n' : ''}` +
      `${[...shown, ...notes].map((note) => `${note}\n`).join('')}`
    );
  } finally {
    index.close();
  }
}

/** An index entry as `paddock view --json` gives it: without where its line is. */
export type EpisodeJson = Omit<EpisodeIndexEntry, 'offset' | 'length'>;

/** One run in `paddock view --json`'s run list. */
export interface RunListJson {
  runId: string;
  createdAt: string;
  agent: string;
  planned: number;
  done: number;
  errors: number;
  meanReward: number;
  tokens: { input: number; output: number; cached: number };
  costUsd: number;
}

/** One run in `paddock view <run> --json`. */
export interface RunJson {
  runId: string;
  createdAt: string;
  config: Record<string, unknown>;
  planned: number;
  done: number;
  /** Per task and in total: episodes, rewards, statuses, tokens (`usage`) and cost (`costUsd`). */
  summary: RunSummary;
  /** Episodes (the latest attempt of each, in plan order): how many in all, and one page. */
  episodes: { total: number; offset: number; limit: number; entries: EpisodeJson[] };
  notes: string[];
}

/**
 * What `paddock view --json` prints: without `runId` the list of runs; with it the run's
 * summary (tokens and cost per task and in total) and a page of its episodes' index
 * entries (`offset`, `limit`: default the first 100), with their total.
 * @throws PaddockError RUN_NOT_FOUND for an unknown run.
 */
export function viewRunJson(
  options: Omit<ViewOptions, 'episodeId' | 'full'>,
): { runs: RunListJson[] } | RunJson {
  if (!options.runId) {
    return {
      runs: RunStore.list(options.runsDir).map((runId) => {
        const index = openIndex(options.runsDir, runId);
        try {
          const { total } = index.summary();
          return {
            runId,
            createdAt: index.manifest.createdAt,
            agent: typeof index.manifest.config.agent === 'string' ? index.manifest.config.agent : '',
            planned: index.manifest.plan.length,
            done: index.latest().length,
            errors: total.errors,
            meanReward: total.meanReward,
            tokens: {
              input: total.usage.promptTokens,
              output: total.usage.completionTokens,
              cached: total.usage.cachedTokens,
            },
            costUsd: total.costUsd,
          };
        } finally {
          index.close();
        }
      }),
    };
  }
  const index = openIndex(options.runsDir, options.runId);
  try {
    const latest = index.latest();
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = Math.max(1, Math.floor(options.limit ?? PAGE));
    const { plan: _plan, ...manifest } = index.manifest;
    return {
      runId: manifest.runId,
      createdAt: manifest.createdAt,
      config: manifest.config,
      planned: index.manifest.plan.length,
      done: latest.length,
      summary: index.summary(),
      episodes: {
        total: latest.length,
        offset,
        limit,
        entries: latest
          .slice(offset, offset + limit)
          .map(({ offset: _offset, length: _length, ...entry }) => entry),
      },
      notes: runNotes(index, options.runId),
    };
  } finally {
    index.close();
  }
}
