/**
 * The viewer's data: run indexes (a few open at once, least recently used closed first),
 * and the JSON shapes the HTTP API sends, made from them. Records are read one at a time
 * through the index and sent without their image bytes (each image has its own URL) or
 * their token ids (each turn's have their own URL), so that no response grows with the
 * run or with an episode's screenshots.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ERROR_CODES,
  PaddockError,
  RunIndex,
  readRecordedImage,
  recordedImageBytes,
  type EpisodeIndexEntry,
  type EpisodeQuery,
  type EpisodeStatus,
  type RecordedEpisode,
  type RecordedImage,
  type RunSummary,
  type TaskSummary,
} from '../harness/index.ts';
import type { Catalog, CatalogRun } from './catalog.ts';

/** A run as the runs list shows it. */
export interface RunRow {
  id: string;
  /** The training output it belongs to, for a training run's episode runs. */
  training?: string;
  createdAt: string;
  agent: string;
  /** Distinct tasks planned. */
  tasks: number;
  planned: number;
  done: number;
  errors: number;
  meanReward: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** True while a live process writes the run (its lock file names a running process). */
  live: boolean;
  /** While the run's records are still being indexed (see `ViewerData.index`): how far it got. */
  indexing?: { indexedBytes: number; totalBytes: number };
}

/** A run's page: what it is and its per-task table. */
export interface RunView extends RunRow {
  /** The configuration it was started with, without its plan. */
  config: Record<string, unknown>;
  summary: RunSummary;
  /** Error codes of the latest attempts, with counts (for the error filter). */
  errorCodes: Record<string, number>;
}

/**
 * One image in a message: where to fetch it, or (`omitted`, no `url`) why the record kept
 * no bytes of it.
 */
export interface ImageLink {
  mimeType: string;
  bytes: number;
  url?: string;
  omitted?: string;
}

/** The images a record holds, by key: `m<message>-<image>`. */
function messageImages(record: RecordedEpisode): Map<string, RecordedImage> {
  const images = new Map<string, RecordedImage>();
  record.messages.forEach((message, m) => {
    if ('images' in message && message.images)
      message.images.forEach((image, i) => images.set(`m${m}-${i}`, image));
  });
  // Images only on tool results (a record whose messages left them out) get their own keys.
  record.turns.forEach((turn, t) =>
    turn.toolResults.forEach((result, r) =>
      result.images?.forEach((image, i) => images.set(`t${t}-${r}-${i}`, image)),
    ),
  );
  return images;
}

/** Bytes of records indexed at a time when a run has no saved index (about 0.1–0.3 s of work). */
const INDEX_SLICE_BYTES = 16 << 20;

/** The pool of open run indexes and everything the API reads through them. */
export class ViewerData {
  private readonly open = new Map<string, RunIndex>();
  private readonly rows = new Map<string, { key: string; row: RunRow }>();

  private readonly maxOpen: number;
  private readonly maxEntries: number;
  private readonly indexSliceBytes: number;

  constructor(
    readonly catalog: Catalog,
    options: {
      /** Run indexes kept open at once. @default 4 */
      maxOpen?: number;
      /**
       * Index entries kept open at once, all runs together (an entry of a 100,000-episode
       * run costs about 1 KB in memory): older indexes are closed past it, the one in use
       * never. Keeps the server's memory bounded however big the runs are. @default 120,000
       */
      maxEntries?: number;
      /** See `index()`. @default 16 MiB */
      indexSliceBytes?: number;
    } = {},
  ) {
    this.maxOpen = options.maxOpen ?? 4;
    this.maxEntries = options.maxEntries ?? 120_000;
    this.indexSliceBytes = options.indexSliceBytes ?? INDEX_SLICE_BYTES;
  }

  /**
   * The catalog's run named `id`.
   * @throws PaddockError RUN_NOT_FOUND when the scan found no such run.
   */
  run(id: string): CatalogRun {
    const run = this.catalog.run(id);
    if (!run)
      throw new PaddockError(
        ERROR_CODES.RUN_NOT_FOUND,
        `no run ${JSON.stringify(id)} under the viewer's root`,
      );
    return run;
  }

  /**
   * The run's index, opened (or taken from the pool, and refreshed) now. A run whose
   * records are not in a saved index yet (a crashed writer's, one written by other tools)
   * opens with its first slice (`indexSliceBytes`) indexed, and the rest is indexed in the
   * background a slice at a time, so a page never waits for a whole big run (`behind`
   * says how far it got; live pages are told as it advances).
   */
  index(id: string): RunIndex {
    const run = this.run(id);
    let index = this.open.get(run.id);
    if (index) {
      this.open.delete(run.id);
      // While the background indexes the rest, a request does not wait for more of it.
      if (!index.behind) index.refresh(this.indexSliceBytes);
    } else {
      index = RunIndex.open(run.dir, { openBudgetBytes: this.indexSliceBytes });
      if (index.behind) this.catchUp(run.id, index);
    }
    this.open.set(run.id, index);
    const entries = () => [...this.open.values()].reduce((sum, open) => sum + open.all().length, 0);
    while (this.open.size > 1 && (this.open.size > this.maxOpen || entries() > this.maxEntries)) {
      const [oldest, evicted] = this.open.entries().next().value as [string, RunIndex];
      this.open.delete(oldest);
      evicted.close();
    }
    return index;
  }

  /**
   * Indexes the rest of a run a quarter slice at a time (about 50 ms of work: a request
   * waits at most that long), yielding to requests between, until caught up or closed.
   */
  private catchUp(id: string, index: RunIndex): void {
    const step = (): void => {
      if (this.open.get(id) !== index || !index.behind) return;
      try {
        index.refresh(Math.max(1, this.indexSliceBytes >> 2));
      } catch {
        return; // the next request's own refresh reports what went wrong
      }
      if (index.behind) setImmediate(step);
    };
    setImmediate(step);
  }

  /** Closes every open index. */
  close(): void {
    for (const index of this.open.values()) index.close();
    this.open.clear();
  }

  /** A page of the runs list, newest first. Rows are cached until the run's files change. */
  runs(offset: number, limit: number): { total: number; runs: RunRow[] } {
    const all = this.catalog.runs();
    return { total: all.length, runs: all.slice(offset, offset + limit).map((run) => this.row(run)) };
  }

  /** A run's page data. */
  runView(id: string): RunView {
    const run = this.run(id);
    const index = this.index(id);
    const summary = index.summary();
    const errorCodes: Record<string, number> = {};
    for (const entry of index.latest()) {
      if (entry.errorCode) errorCodes[entry.errorCode] = (errorCodes[entry.errorCode] ?? 0) + 1;
    }
    const { plan: _plan, ...manifest } = index.manifest;
    return { ...this.rowOf(run, index, summary), config: manifest.config, summary, errorCodes };
  }

  /** A page of a run's episodes. */
  async episodes(id: string, query: EpisodeQuery): Promise<{ total: number; entries: EpisodeIndexEntry[] }> {
    return this.index(id).query(query);
  }

  /**
   * One episode as the transcript page shows it: the record without image bytes (links in
   * their place) or token ids (a summary per turn; the ids are at `tokensUrl`).
   * @throws PaddockError RUN_NOT_FOUND when the run has no such episode.
   */
  episode(id: string, episodeId: string, attempt?: number): Record<string, unknown> {
    const index = this.index(id);
    const record = this.record(index, episodeId, attempt);
    const base = `/api/runs/${encodeURIComponent(id)}/episodes/${encodeURIComponent(episodeId)}`;
    const link = (key: string, image: RecordedImage): ImageLink =>
      'omitted' in image && image.omitted !== undefined && image.file === undefined
        ? { mimeType: image.mimeType, bytes: image.bytes, omitted: image.omitted }
        : {
            mimeType: image.mimeType,
            bytes: recordedImageBytes(image),
            url: `${base}/images/${key}?attempt=${record.attempt}`,
          };
    const attempts = index
      .all()
      .filter((entry) => entry.episodeId === episodeId)
      .map((entry) => entry.attempt);
    return {
      ...record,
      attempts,
      tools: record.tools.map((tool) => tool.name),
      messages: record.messages.map((message, m) =>
        'images' in message && message.images
          ? { ...message, images: message.images.map((image, i) => link(`m${m}-${i}`, image)) }
          : message,
      ),
      turns: record.turns.map((turn, t) => {
        const { tokens, toolResults, ...rest } = turn;
        return {
          ...rest,
          toolResults: toolResults.map((result, r) =>
            result.images
              ? { ...result, images: result.images.map((image, i) => link(`t${t}-${r}-${i}`, image)) }
              : result,
          ),
          ...(tokens
            ? {
                tokens: {
                  promptLength: tokens.promptIds.length,
                  completionLength: tokens.completionIds.length,
                  driftAt: tokens.driftAt,
                  promptSource: tokens.promptSource,
                  logprobsMode: tokens.logprobsMode,
                  decoded: tokens.completionTexts !== undefined,
                  url: `${base}/turns/${t}/tokens?attempt=${record.attempt}`,
                },
              }
            : {}),
        };
      }),
    };
  }

  /** One turn's token record, whole. */
  tokens(id: string, episodeId: string, turn: number, attempt?: number): Record<string, unknown> {
    const record = this.record(this.index(id), episodeId, attempt);
    const tokens = record.turns[turn]?.tokens;
    if (!tokens)
      throw new PaddockError(
        ERROR_CODES.RUN_NOT_FOUND,
        `episode ${episodeId} has no token record on turn ${turn} (turns: ${record.turns.length})`,
      );
    return { episodeId, attempt: record.attempt, turn, taskId: record.taskId, ...tokens };
  }

  /**
   * One image of an episode, by its key (`m3-0`, `t2-0-0`): inline bytes decoded, or read
   * from the run's `images/` folder (checked: readRecordedImage refuses a reference that
   * names another file, a link, or bytes that are not the recorded ones).
   * @throws PaddockError RUN_NOT_FOUND when there is no such image or its bytes were not
   *   kept; STORE_FAILED when its reference is refused or its file is missing.
   */
  image(id: string, episodeId: string, key: string, attempt?: number): { mimeType: string; bytes: Buffer } {
    const run = this.run(id);
    const record = this.record(this.index(id), episodeId, attempt);
    const image = messageImages(record).get(key);
    if (!image) throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `episode ${episodeId} has no image ${key}`);
    const bytes = readRecordedImage(run.dir, image);
    if (!bytes) {
      throw new PaddockError(
        ERROR_CODES.RUN_NOT_FOUND,
        `image ${key} of episode ${episodeId} was not kept${'omitted' in image && image.omitted ? `: ${image.omitted}` : ''}`,
      );
    }
    return { mimeType: image.mimeType, bytes };
  }

  /** Two runs' per-task tables side by side. */
  compare(a: string, b: string): Record<string, unknown> {
    const left = this.runView(a);
    const right = this.runView(b);
    const tasks = new Set([...left.summary.tasks, ...right.summary.tasks].map((task) => task.task));
    const byTask = (summary: RunSummary): Map<string, TaskSummary> =>
      new Map(summary.tasks.map((task) => [task.task, task]));
    const l = byTask(left.summary);
    const r = byTask(right.summary);
    return {
      a: { ...left, config: undefined },
      b: { ...right, config: undefined },
      tasks: [...tasks].sort().map((task) => ({ task, a: l.get(task) ?? null, b: r.get(task) ?? null })),
      total: { a: left.summary.total, b: right.summary.total },
    };
  }

  /** A training output: its metric rows, its summary.json and its episode runs. */
  training(id: string): Record<string, unknown> {
    const training = this.catalog.training(id);
    if (!training)
      throw new PaddockError(
        ERROR_CODES.RUN_NOT_FOUND,
        `no training output ${JSON.stringify(id)} under the viewer's root`,
      );
    const rows: unknown[] = [];
    for (const line of readText(join(training.dir, 'metrics.jsonl')).split('\n')) {
      if (line.trim() === '') continue;
      try {
        rows.push(JSON.parse(line));
      } catch {
        // A row cut short by a kill (the trainer recomputes its step): nothing to draw.
      }
    }
    let summary: unknown = null;
    try {
      summary = JSON.parse(readText(join(training.dir, 'summary.json')) || 'null');
    } catch {
      summary = null; // written atomically; unreadable only while absent
    }
    const runs = training.runs.map((run) => {
      const name = run.split('/').pop() ?? run;
      const match = /^(step|eval)-(\d+)(-greedy)?$/.exec(name);
      return {
        id: run,
        name,
        kind: match
          ? match[1] === 'step'
            ? 'rollout'
            : match[3]
              ? 'evaluation (greedy)'
              : 'evaluation'
          : 'demonstrations',
        step: match ? Number(match[2]) : null,
      };
    });
    return { id, rows, summary, runs };
  }

  /**
   * Whether a live process writes the run: its lock file names a running process.
   */
  live(id: string): boolean {
    return liveLock(this.run(id).dir);
  }

  private record(index: RunIndex, episodeId: string, attempt: number | undefined): RecordedEpisode {
    try {
      return index.record(episodeId, attempt);
    } catch (error) {
      if (error instanceof PaddockError) throw error;
      throw new PaddockError(
        ERROR_CODES.RUN_NOT_FOUND,
        `no episode ${episodeId} in run ${index.manifest.runId}`,
        {
          cause: error,
        },
      );
    }
  }

  private row(run: CatalogRun): RunRow {
    const episodes = join(run.dir, 'episodes.jsonl');
    const key = `${statKey(join(run.dir, 'run.json'))}/${statKey(episodes)}/${liveLock(run.dir)}`;
    const cached = this.rows.get(run.id);
    if (cached?.key === key) return cached.row;
    const index = this.index(run.id);
    const row = this.rowOf(run, index, index.summary());
    if (!row.indexing) this.rows.set(run.id, { key, row });
    return row;
  }

  private rowOf(run: CatalogRun, index: RunIndex, summary: RunSummary): RunRow {
    const manifest = index.manifest;
    const total = summary.total;
    return {
      id: run.id,
      ...(run.training ? { training: run.training } : {}),
      createdAt: manifest.createdAt,
      agent: typeof manifest.config.agent === 'string' ? manifest.config.agent : '',
      tasks: new Set(manifest.plan.map((planned) => planned.taskId)).size,
      planned: manifest.plan.length,
      done: index.latest().length,
      errors: total.errors,
      meanReward: total.meanReward,
      promptTokens: total.usage.promptTokens,
      completionTokens: total.usage.completionTokens,
      costUsd: total.costUsd,
      live: liveLock(run.dir),
      ...(index.behind ? { indexing: index.behind } : {}),
    };
  }
}

/** The statuses the episode filter offers. */
export const STATUSES: readonly EpisodeStatus[] = [
  'completed',
  'limit',
  'truncated',
  'refused',
  'sandbox-killed',
  'agent-error',
  'infra-error',
];

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function statKey(path: string): string {
  try {
    const stat = statSync(path);
    return `${stat.size}:${stat.mtimeMs}`;
  } catch {
    return 'none';
  }
}

/** True when `dir/lock` names a running process (the store's writer lock). */
export function liveLock(dir: string): boolean {
  const path = join(dir, 'lock');
  if (!existsSync(path)) return false;
  const pid = Number(readText(path).trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}
