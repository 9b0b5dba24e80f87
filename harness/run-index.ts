/**
 * The run index: what the viewer, `paddock view` and summaries read instead of parsing a
 * whole episodes.jsonl. One small entry per record line (ids, status, reward and its
 * parts, turns, tokens, cost, times, where the line is), so that a run of 100,000–1,000,000
 * episodes opens, summarises, filters, sorts and pages without holding its records; a
 * record is read from its own line when asked for, and text search streams the file in
 * chunks of bounded size.
 *
 * The record line is the truth; the index is derived data. It is kept beside the records
 * in a sidecar, `episodes.index`, so that the second open does not parse the records again:
 *
 *   line 1  HMAC-SHA256 of the rest, hex, keyed by a secret outside the run folder
 *   line 2  header: format version, the byte length of episodes.jsonl it covers, the SHA-256
 *           of those bytes, that file's identity when indexed (dev, inode, size, mtime,
 *           ctime, in ns), and the run's summary over those entries
 *   then    the entries in file order, as rows (arrays of their fields; offsets follow from
 *           the lengths), a JSON array of up to 2,000 rows a line
 *
 * On open the sidecar is used only when its HMAC verifies (so nobody without the key, which
 * lives in the user's cache folder, can hand the index a score the records do not say) and
 * its rows add up to the length it covers. When episodes.jsonl still has the identity the
 * header names, nothing changed since the sidecar was made (the ctime cannot be set back
 * by a user) and it is used as it is; otherwise the covered bytes are hashed again and must
 * match (an append leaves them unchanged: only the tail is indexed; an edit does not: the
 * index is rebuilt). Any other sidecar — missing, stale, torn, tampered, of another format
 * version — is rebuilt from the records.
 *
 * Who writes the sidecar: readers, atomically — a whole new file written under a temporary
 * name and renamed over the old one, never changed in place. The store's writer does not
 * touch it, so a failing sidecar can never fail a run or cost an episode, and the writer's
 * path (one fsync'd line per episode) stays as it is. Two readers in two processes may
 * each write one: each rename puts a whole, valid sidecar in place (covering what that
 * reader saw), and the next reader checks it as above. A live writer appending meanwhile
 * only makes the sidecar cover a prefix; readers index the tail. A run folder that cannot
 * be written (or a user without a key) keeps its index in memory.
 *
 * Torn tails and superseded attempts behave as the store defines them (store.ts): opened
 * with no live writer, a torn tail is cut off and kept aside; while a writer lives, a last
 * line without its newline or that does not parse is not indexed (yet). `latest()` holds
 * the latest record of each episode (what summaries use); `all()` every record line.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual, type Hash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  type BigIntStats,
} from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { EpisodeStatus, LimitKind, RecordedEpisode } from './episode.ts';
import { ERROR_CODES, PaddockError, describeError } from './errors.ts';
import {
  cutTornTailOf,
  liveWriterOf,
  parseRecord,
  readFully,
  type RunManifest,
  type TornTail,
} from './store.ts';
import { episodeFigures, summariseRun, type EpisodeFigures, type RunSummary } from './summary.ts';

/**
 * One record line of episodes.jsonl, reduced to what tables, filters and summaries need:
 * the figures a summary reads (`EpisodeFigures`), and what identifies and places the line.
 */
export interface EpisodeIndexEntry extends EpisodeFigures {
  episodeId: string;
  epoch: number;
  seed: number;
  /** 1-based attempt number (a re-run of an errored episode is a later attempt). */
  attempt: number;
  agent: string;
  limit?: LimitKind;
  truncation?: 'length' | 'context-exceeded';
  refusal?: 'refusal' | 'content-filter';
  /** The error's code, for `agent-error`, `infra-error` and `sandbox-killed`. */
  errorCode?: string;
  /** The error's message, clipped to 300 characters. */
  errorMessage?: string;
  turns: number;
  toolCalls: number;
  startedAt: string;
  endedAt: string;
  /** True when some turn holds token ids (`tokens`). */
  tokenExact: boolean;
  /** Images (screenshots) in the conversation's messages. */
  images: number;
  /** Where the record's line starts in episodes.jsonl, in bytes. */
  offset: number;
  /** The line's length in bytes, its newline included. */
  length: number;
}

/** A filter, an order and a page over a run's entries. Every filter given must hold. */
export interface EpisodeQuery {
  /** A substring of the task id. */
  task?: string;
  /** Any of these statuses. */
  status?: EpisodeStatus[];
  errorCode?: string;
  minReward?: number;
  maxReward?: number;
  minTurns?: number;
  maxTurns?: number;
  /**
   * Case-insensitive text in the record: messages (with tool calls and reasoning), tool
   * results, the answer, the verifier's output and the error. Streams the records of the
   * entries the other filters keep, in chunks of bounded size.
   */
  text?: string;
  /** @default the index's order (plan order for `latest`, file order for `all`) */
  sort?:
    'task' | 'status' | 'reward' | 'turns' | 'durationMs' | 'tokens' | 'costUsd' | 'startedAt' | 'errorCode';
  descending?: boolean;
  /** @default 0 */
  offset?: number;
  /** @default 100 */
  limit?: number;
  /** `latest`: the latest record of each episode (what summaries use); `all`: every record line. @default 'latest' */
  attempts?: 'latest' | 'all';
}

/** A page of entries. */
export interface EpisodePage {
  /** Entries that match, over every page. */
  total: number;
  entries: EpisodeIndexEntry[];
  /** What a text search read: bytes in all, and the largest single read (the memory it needed). */
  searched?: { bytes: number; largestReadBytes: number };
}

/** Options of `RunIndex.open`. */
export interface RunIndexOptions {
  /** Bytes read at a time when indexing records and searching text. @default 4 MiB */
  chunkBytes?: number;
  /** Use and keep the sidecar (`episodes.index`); false keeps the index in memory only. @default true */
  sidecar?: boolean;
  /**
   * The file holding the secret that signs sidecars (created, mode 0600, when absent).
   * @default `PADDOCK_INDEX_KEY_FILE`, else `<XDG_CACHE_HOME or ~/.cache>/paddock/index-key`
   */
  keyFile?: string;
  /**
   * At most this many bytes of records not in the sidecar are indexed by `open`; the rest
   * waits for `refresh()` calls (see `behind`). A viewer opens a big run without a sidecar
   * this way and shows it while the index catches up. @default no bound: `open` indexes all
   */
  openBudgetBytes?: number;
}

const MANIFEST = 'run.json';
const EPISODES = 'episodes.jsonl';
const SIDECAR = 'episodes.index';
const FORMAT = 'paddock-run-index/3';
const DEFAULT_CHUNK_BYTES = 4 << 20;
const DEFAULT_LIMIT = 100;
const MESSAGE_CLIP = 300;

/** The entry fields a sidecar row holds, in order (offsets are the running sum of lengths). */
const FIELDS = [
  'episodeId',
  'taskId',
  'epoch',
  'seed',
  'attempt',
  'agent',
  'status',
  'limit',
  'truncation',
  'refusal',
  'errorCode',
  'errorMessage',
  'reward',
  'rewardComponents',
  'constraints',
  'turnRewards',
  'scores',
  'verifierTimedOut',
  'turns',
  'toolCalls',
  'inputTokens',
  'outputTokens',
  'cachedTokens',
  'costUsd',
  'durationMs',
  'startedAt',
  'endedAt',
  'tokenExact',
  'images',
  'length',
] as const satisfies readonly (keyof EpisodeIndexEntry)[];

const NONE: Readonly<Record<string, number>> = Object.freeze({});

function storeError(message: string, cause?: unknown, details: Record<string, unknown> = {}): PaddockError {
  return new PaddockError(ERROR_CODES.STORE_FAILED, message, {
    ...(cause === undefined ? {} : { cause }),
    details,
  });
}

/** The sidecar key file in effect (see `RunIndexOptions.keyFile`). */
function defaultKeyFile(): string {
  const fromEnv = process.env.PADDOCK_INDEX_KEY_FILE;
  if (fromEnv) return fromEnv;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'paddock', 'index-key');
}

const keys = new Map<string, Buffer | undefined>();

/**
 * The secret that signs sidecars, created once per user (mode 0600). Undefined when it
 * can be neither read nor made: sidecars are then neither trusted nor written.
 */
function signingKey(file: string): Buffer | undefined {
  if (keys.has(file)) return keys.get(file);
  let key: Buffer | undefined;
  try {
    key = readFileSync(file);
  } catch {
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      writeFileSync(tmp, randomBytes(32), { mode: 0o600 });
      try {
        linkSync(tmp, file); // fails when another process made it first: its key is the one
      } catch {
        // Another process's key won the race; read it below.
      } finally {
        rmSync(tmp, { force: true });
      }
      key = readFileSync(file);
    } catch {
      key = undefined; // no writable cache folder: the index stays in memory
    }
  }
  if (key !== undefined && key.length < 32) key = undefined;
  keys.set(file, key);
  return key;
}

/** The file's identity as a sidecar header records it; equal identities mean the file was not touched. */
function identityOf(stats: BigIntStats): string {
  return [stats.dev, stats.ino, stats.size, stats.mtimeNs, stats.ctimeNs].join(':');
}

function interned(table: Map<string, string>, value: string): string {
  const known = table.get(value);
  if (known !== undefined) return known;
  table.set(value, value);
  return value;
}

/** Reduces a record to its entry. */
function entryOf(
  record: RecordedEpisode,
  offset: number,
  length: number,
  strings: Map<string, string>,
): EpisodeIndexEntry {
  const figures = episodeFigures(record);
  const turns = Array.isArray(record.turns) ? record.turns : [];
  let images = 0;
  for (const message of record.messages ?? []) {
    const list = (message as { images?: unknown[] }).images;
    if (Array.isArray(list)) images += list.length;
  }
  const error = record.error;
  const row: unknown[] = [
    record.episodeId,
    interned(strings, String(record.taskId)),
    record.epoch,
    record.seed,
    record.attempt,
    interned(strings, String(record.agent)),
    interned(strings, record.status),
    record.limit,
    record.truncation,
    record.refusal,
    error ? interned(strings, error.code) : undefined,
    error
      ? error.message.length > MESSAGE_CLIP
        ? `${error.message.slice(0, MESSAGE_CLIP - 1)}…`
        : error.message
      : undefined,
    figures.reward,
    figures.rewardComponents,
    figures.constraints,
    figures.turnRewards,
    figures.scores,
    figures.verifierTimedOut,
    turns.length,
    record.stats?.toolCalls ?? turns.reduce((sum, turn) => sum + (turn.toolCalls?.length ?? 0), 0),
    figures.inputTokens,
    figures.outputTokens,
    figures.cachedTokens,
    figures.costUsd,
    record.durationMs,
    record.startedAt,
    record.endedAt,
    turns.some((turn) => turn.tokens !== undefined),
    images,
    length,
  ];
  return makeEntry(row, offset);
}

/** A value that may be absent (null in a sidecar row). */
function some<T>(value: unknown): T | undefined {
  return value === null ? undefined : (value as T | undefined);
}

/** A name → number map, the shared empty one when it has no keys. */
function map(value: unknown): Readonly<Record<string, number>> {
  if (value === null || value === undefined) return NONE;
  for (const _ in value) return value as Record<string, number>;
  return NONE;
}

/**
 * An entry from its values in `FIELDS` order (null or undefined: absent). Every entry is
 * made by this one literal, so that all share one shape (fast to filter, sort and sum).
 */
function makeEntry(v: readonly unknown[], offset: number): EpisodeIndexEntry {
  return Object.freeze({
    episodeId: v[0] as string,
    taskId: v[1] as string,
    epoch: v[2] as number,
    seed: v[3] as number,
    attempt: v[4] as number,
    agent: v[5] as string,
    status: v[6] as EpisodeStatus,
    limit: some<LimitKind>(v[7]),
    truncation: some<'length' | 'context-exceeded'>(v[8]),
    refusal: some<'refusal' | 'content-filter'>(v[9]),
    errorCode: some<string>(v[10]),
    errorMessage: some<string>(v[11]),
    reward: v[12] as number,
    rewardComponents: map(v[13]),
    constraints: map(v[14]),
    turnRewards: map(v[15]),
    scores: some<Readonly<Record<string, number>>>(v[16]),
    verifierTimedOut: some<boolean>(v[17]),
    turns: v[18] as number,
    toolCalls: v[19] as number,
    inputTokens: v[20] as number,
    outputTokens: v[21] as number,
    cachedTokens: some<number>(v[22]),
    costUsd: some<number>(v[23]),
    durationMs: v[24] as number,
    startedAt: v[25] as string,
    endedAt: v[26] as string,
    tokenExact: v[27] as boolean,
    images: v[28] as number,
    offset,
    length: v[29] as number,
  });
}

/** The entry as a sidecar row. */
function rowOf(entry: EpisodeIndexEntry): unknown[] {
  return FIELDS.map((field) => entry[field] ?? null);
}

/** A sidecar row as an entry at `offset`; undefined when it is not a row this version writes. */
function entryOfRow(
  row: unknown,
  offset: number,
  strings: Map<string, string>,
): EpisodeIndexEntry | undefined {
  if (!Array.isArray(row) || row.length !== FIELDS.length) return undefined;
  if (typeof row[0] !== 'string' || !Number.isInteger(row[29]) || (row[29] as number) < 1) return undefined;
  for (const column of [1, 5, 6, 10])
    if (typeof row[column] === 'string') row[column] = interned(strings, row[column]);
  return makeEntry(row, offset);
}

/** Escapes a string for use as a literal in a RegExp. */
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The text a search looks in: messages, tool calls, reasoning, tool results, the answer, the verifier's output, the error. */
function searchableTexts(record: RecordedEpisode): string[] {
  const texts: string[] = [];
  for (const message of record.messages ?? []) {
    if (typeof message.content === 'string') texts.push(message.content);
    if (message.role === 'assistant') {
      for (const call of message.toolCalls ?? []) texts.push(call.name, call.arguments);
      if (message.reasoning?.text) texts.push(message.reasoning.text);
    }
  }
  for (const turn of record.turns ?? []) {
    for (const result of turn.toolResults ?? []) texts.push(result.output);
  }
  if (record.answer) texts.push(record.answer);
  if (record.verifier) {
    texts.push(record.verifier.stdout, record.verifier.stderr);
    if (record.verifier.error) texts.push(record.verifier.error);
  }
  if (record.error) texts.push(record.error.code, record.error.message);
  return texts;
}

/** The sort key of an entry for `EpisodeQuery.sort`. */
function sortKey(entry: EpisodeIndexEntry, sort: NonNullable<EpisodeQuery['sort']>): number | string {
  switch (sort) {
    case 'task':
      return entry.taskId;
    case 'status':
      return entry.status;
    case 'reward':
      return entry.reward;
    case 'turns':
      return entry.turns;
    case 'durationMs':
      return entry.durationMs;
    case 'tokens':
      return entry.inputTokens + entry.outputTokens;
    case 'costUsd':
      return entry.costUsd ?? 0;
    case 'startedAt':
      return entry.startedAt;
    case 'errorCode':
      return entry.errorCode ?? '';
  }
}

/** What scanning a stretch of episodes.jsonl found. */
interface Scan {
  entries: EpisodeIndexEntry[];
  /** Where the last whole record line found ends: the new covered length. */
  end: number;
}

/**
 * A run's index. Open it with `RunIndex.open`; entries are frozen and shared, never copies.
 * Not safe to use after `close()`.
 */
export class RunIndex {
  private entries: EpisodeIndexEntry[] = [];
  /** Index into `entries` of each episode's latest record. */
  private latestAt = new Map<string, number>();
  private latestCache: EpisodeIndexEntry[] | undefined;
  private summaryCache: RunSummary | undefined;
  /** Bytes of episodes.jsonl the entries cover (whole record lines). */
  private covered = 0;
  /** The file's identity when last indexed. */
  private identity = '';
  /** SHA-256 of the covered bytes so far, while this index knows it (built or verified here). */
  private hash: Hash | undefined;
  /** True when entries were added since the sidecar was last written or read. */
  private dirty = false;
  /** True when a byte budget stopped the last scan before the end of the file. */
  private stoppedEarly = false;
  private closed = false;
  private readonly strings = new Map<string, string>();
  private readonly chunkBytes: number;
  private readonly useSidecar: boolean;
  private readonly keyFile: string;
  private readonly openBudgetBytes: number;
  /** The torn tail cut off episodes.jsonl when this index opened the run, if there was one (see `RunStore.tornTail`). */
  tornTail: TornTail | undefined;

  private constructor(
    readonly runDir: string,
    readonly manifest: RunManifest,
    options: RunIndexOptions,
  ) {
    this.chunkBytes = Math.max(1, Math.floor(options.chunkBytes ?? DEFAULT_CHUNK_BYTES));
    this.useSidecar = options.sidecar ?? true;
    this.keyFile = options.keyFile ?? defaultKeyFile();
    this.openBudgetBytes = Math.max(1, options.openBudgetBytes ?? Infinity);
  }

  /**
   * While the index has not yet taken in every record (`open` was given `openBudgetBytes`):
   * the bytes of episodes.jsonl it covers and the file's size. `latest()`, `summary()` and
   * queries then hold the episodes indexed so far; `refresh()` indexes more. Undefined once
   * it caught up.
   */
  get behind(): { indexedBytes: number; totalBytes: number } | undefined {
    if (!this.stoppedEarly) return undefined;
    return { indexedBytes: this.covered, totalBytes: Number(this.stat()?.size ?? this.covered) };
  }

  /**
   * Opens a run folder (run.json + episodes.jsonl): from its sidecar when that is valid,
   * else by indexing the records (and writing the sidecar). With no live writer, a torn
   * tail is cut off first, as `RunStore.open` does.
   * @throws PaddockError RUN_NOT_FOUND when the folder has no run.json; STORE_FAILED when
   * run.json is not valid JSON, or a record line other than the last does not parse.
   */
  static open(runDir: string, options: RunIndexOptions = {}): RunIndex {
    const manifestPath = join(runDir, MANIFEST);
    if (!existsSync(manifestPath)) throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `no run in ${runDir}`);
    let manifest: RunManifest;
    try {
      manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as RunManifest;
    } catch (error) {
      throw storeError(`${manifestPath} is not valid JSON`, error, { file: manifestPath });
    }
    const index = new RunIndex(runDir, manifest, options);
    if (liveWriterOf(runDir) === undefined) {
      try {
        index.tornTail = cutTornTailOf(runDir, false);
      } catch {
        // A read-only run folder: the torn tail is not indexed anyway, and the writer cuts it.
      }
    }
    index.load();
    return index;
  }

  /**
   * Takes in the records appended since the index was opened or last refreshed (a live
   * run), and those an open budget left (`behind`): at most `budgetBytes` of them per call
   * (a line longer than the budget is read whole). A file that shrank or was replaced is
   * indexed again. Returns true when any entry changed. The call that catches up writes
   * the sidecar.
   */
  refresh(budgetBytes = Infinity): boolean {
    this.assertOpen();
    const stats = this.stat();
    if (stats === undefined) {
      if (this.entries.length === 0) return false;
      this.reset();
      return true;
    }
    const identity = identityOf(stats);
    if (identity === this.identity && !this.stoppedEarly) return false;
    const wasBehind = this.stoppedEarly;
    const [dev, ino] = this.identity.split(':');
    let changed: boolean;
    if (String(stats.dev) !== dev || String(stats.ino) !== ino || Number(stats.size) < this.covered) {
      this.build(stats, budgetBytes);
      changed = true;
    } else changed = this.extend(stats, budgetBytes);
    if (wasBehind && !this.stoppedEarly && this.dirty) this.persist();
    return changed;
  }

  /** The latest record of each episode, in plan order (episodes the plan does not name after, in file order). */
  latest(): readonly EpisodeIndexEntry[] {
    this.assertOpen();
    if (this.latestCache) return this.latestCache;
    const latest: EpisodeIndexEntry[] = [];
    const plan = this.manifest.plan ?? [];
    for (const { episodeId } of plan) {
      const at = this.latestAt.get(episodeId);
      if (at !== undefined) latest.push(this.entries[at]!);
    }
    // Records of episodes the plan does not name (hand-made runs), after the planned ones.
    if (latest.length < this.latestAt.size) {
      const planned = new Set(plan.map((each) => each.episodeId));
      for (const [episodeId, at] of this.latestAt)
        if (!planned.has(episodeId)) latest.push(this.entries[at]!);
    }
    return (this.latestCache = latest);
  }

  /** Every record line, earlier attempts included, in file order. */
  all(): readonly EpisodeIndexEntry[] {
    this.assertOpen();
    return this.entries;
  }

  /**
   * A page of entries that match `query` (see `EpisodeQuery`), with how many match in all.
   * A text search reads the matching candidates' lines in chunks of at most `chunkBytes`
   * (a longer line alone), so memory stays bounded whatever the run's size.
   * @throws PaddockError STORE_FAILED when episodes.jsonl changed under the index in a way
   * `refresh()` would not explain (a line is no longer the record it was).
   */
  async query(query: EpisodeQuery): Promise<EpisodePage> {
    this.assertOpen();
    const pool = query.attempts === 'all' ? this.entries : this.latest();
    const statuses = query.status && query.status.length > 0 ? new Set<string>(query.status) : undefined;
    let matches = pool.filter(
      (entry) =>
        (query.task === undefined || entry.taskId.includes(query.task)) &&
        (statuses === undefined || statuses.has(entry.status)) &&
        (query.errorCode === undefined || entry.errorCode === query.errorCode) &&
        (query.minReward === undefined || entry.reward >= query.minReward) &&
        (query.maxReward === undefined || entry.reward <= query.maxReward) &&
        (query.minTurns === undefined || entry.turns >= query.minTurns) &&
        (query.maxTurns === undefined || entry.turns <= query.maxTurns),
    );
    let searched: EpisodePage['searched'];
    if (query.text !== undefined && query.text !== '') {
      const found = await this.search(matches, query.text);
      searched = found.stats;
      matches = matches.filter((entry) => found.matches.has(entry));
    }
    if (query.sort) {
      const sort = query.sort;
      const sign = query.descending ? -1 : 1;
      matches = matches
        .map((entry, position) => ({ entry, position, key: sortKey(entry, sort) }))
        .sort((a, b) => (a.key < b.key ? -sign : a.key > b.key ? sign : a.position - b.position))
        .map(({ entry }) => entry);
    } else if (query.descending) {
      matches = matches.reverse();
    }
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    const limit = Math.max(0, Math.floor(query.limit ?? DEFAULT_LIMIT));
    return {
      total: matches.length,
      entries: matches.slice(offset, offset + limit),
      ...(searched ? { searched } : {}),
    };
  }

  /**
   * The record of an episode as its line in episodes.jsonl says it (only that line is
   * read): the latest attempt, or the given one.
   * @throws PaddockError RUN_NOT_FOUND when the run has no such episode or attempt;
   * STORE_FAILED when the line is no longer that record (the file changed under the index).
   */
  record(episodeId: string, attempt?: number): RecordedEpisode {
    this.assertOpen();
    let entry: EpisodeIndexEntry | undefined;
    if (attempt === undefined) {
      const at = this.latestAt.get(episodeId);
      entry = at === undefined ? undefined : this.entries[at];
    } else {
      for (let at = this.entries.length - 1; at >= 0 && !entry; at--) {
        const candidate = this.entries[at]!;
        if (candidate.episodeId === episodeId && candidate.attempt === attempt) entry = candidate;
      }
    }
    if (!entry)
      throw new PaddockError(
        ERROR_CODES.RUN_NOT_FOUND,
        `no episode ${episodeId}${attempt === undefined ? '' : ` attempt ${attempt}`} in run ${this.manifest.runId} (${this.runDir})`,
        { details: { episodeId, ...(attempt === undefined ? {} : { attempt }) } },
      );
    const path = join(this.runDir, EPISODES);
    const line = Buffer.alloc(entry.length - 1);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw storeError(`reading ${path} failed: ${describeError(error)}`, error, { file: path });
    }
    try {
      readFully(fd, line, entry.offset);
    } finally {
      closeSync(fd);
    }
    const record = parseRecord(line.toString('utf8'));
    if (!record || record.episodeId !== entry.episodeId || record.attempt !== entry.attempt)
      throw this.changed(entry);
    return record;
  }

  /** The run's summary over `latest()`: equal to `summariseRun(store.episodes())` for the same records. */
  summary(): RunSummary {
    this.assertOpen();
    // In file order, as RunStore.episodes() gives them, so that sums add up in the same order.
    this.summaryCache ??= summariseRun(
      this.entries.filter((entry, at) => this.latestAt.get(entry.episodeId) === at),
    );
    return this.summaryCache;
  }

  /** Writes the sidecar when entries were added since it was written (best effort), and lets go of the entries. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.dirty) this.persist();
    this.closed = true;
    this.entries = [];
    this.latestAt = new Map();
    this.latestCache = undefined;
    this.summaryCache = undefined;
    this.hash = undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw storeError(`the index of ${this.runDir} is closed`);
  }

  private changed(entry: EpisodeIndexEntry): PaddockError {
    return storeError(
      `${join(this.runDir, EPISODES)} changed under its index: byte ${entry.offset} no longer holds episode ` +
        `${entry.episodeId} attempt ${entry.attempt}; open the run again`,
      undefined,
      { file: join(this.runDir, EPISODES), offset: entry.offset },
    );
  }

  private stat(): BigIntStats | undefined {
    try {
      return statSync(join(this.runDir, EPISODES), { bigint: true });
    } catch {
      return undefined;
    }
  }

  private reset(): void {
    this.entries = [];
    this.latestAt = new Map();
    this.covered = 0;
    this.identity = '';
    this.hash = createHash('sha256');
    this.invalidate();
  }

  private invalidate(): void {
    this.latestCache = undefined;
    this.summaryCache = undefined;
  }

  private add(entries: readonly EpisodeIndexEntry[]): void {
    for (const entry of entries) {
      this.latestAt.set(entry.episodeId, this.entries.length);
      this.entries.push(entry);
    }
    if (entries.length > 0) this.invalidate();
  }

  /** Opens the index: the sidecar if it holds, then the tail; else a build. */
  private load(): void {
    const stats = this.stat();
    if (stats === undefined) {
      this.reset();
      return;
    }
    if (this.useSidecar && this.loadSidecar(stats)) {
      this.extend(stats, this.openBudgetBytes);
    } else {
      this.build(stats, this.openBudgetBytes);
    }
    // A partial index is written once it caught up (refresh) or at close.
    if (this.dirty && !this.stoppedEarly) this.persist();
  }

  /** Indexes the file from its start: all of it, or `budgetBytes` of it (the rest is `behind`). */
  private build(stats: BigIntStats, budgetBytes = Infinity): void {
    this.reset();
    this.extend(stats, budgetBytes);
    this.dirty = true;
  }

  /**
   * Indexes what lies after the covered bytes: all of it, or about `budgetBytes` of it
   * (whole lines; at least one). True when entries were added.
   */
  private extend(stats: BigIntStats, budgetBytes = Infinity): boolean {
    const size = Number(stats.size);
    let to = Math.min(size, this.covered + budgetBytes);
    let scan = this.scan(this.covered, to);
    // A line longer than the budget: widen the budget until that line is read whole.
    while (scan.end === this.covered && to < size) {
      to = Math.min(size, this.covered + 2 * (to - this.covered));
      scan = this.scan(this.covered, to);
    }
    this.add(scan.entries);
    this.covered = scan.end;
    this.identity = identityOf(stats);
    this.stoppedEarly = to < size && scan.end < size;
    if (scan.entries.length > 0) this.dirty = true;
    return scan.entries.length > 0;
  }

  /**
   * Reads whole record lines of episodes.jsonl in [from, to), in chunks. A last line
   * without its newline, or a last line (of the file as `to` says) that does not parse,
   * is a torn tail: not indexed. Any other line that does not parse is STORE_FAILED.
   */
  private scan(from: number, to: number): Scan {
    const path = join(this.runDir, EPISODES);
    const entries: EpisodeIndexEntry[] = [];
    if (to <= from) return { entries, end: from };
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw storeError(`reading ${path} failed: ${describeError(error)}`, error, { file: path });
    }
    const chunk = Buffer.allocUnsafe(Math.min(this.chunkBytes, to - from));
    let lineStart = from;
    let position = from;
    let pending: Buffer[] = [];
    try {
      while (position < to) {
        const read = readSync(fd, chunk, 0, Math.min(chunk.length, to - position), position);
        if (read <= 0) break;
        const view = chunk.subarray(0, read);
        let start = 0;
        for (;;) {
          const newline = view.indexOf(0x0a, start);
          if (newline < 0) {
            pending.push(Buffer.from(view.subarray(start)));
            break;
          }
          const piece = view.subarray(start, newline);
          const line = pending.length > 0 ? Buffer.concat([...pending, piece]) : piece;
          pending = [];
          const length = line.length + 1;
          const record = parseRecord(line.toString('utf8'));
          if (!record) {
            if (lineStart + length >= to) return { entries, end: lineStart }; // a torn last line
            throw storeError(
              `${path}: line ${this.entries.length + entries.length + 1} is not a valid episode record, and it is not the last line; ` +
                'the store does not write such lines (was the file edited?)',
              undefined,
              { file: path, line: this.entries.length + entries.length + 1 },
            );
          }
          entries.push(entryOf(record, lineStart, length, this.strings));
          this.hash?.update(line).update('\n');
          lineStart += length;
          start = newline + 1;
        }
        position += read;
      }
    } finally {
      closeSync(fd);
    }
    return { entries, end: lineStart };
  }

  /**
   * Reads the sidecar, if it holds: its signature verifies, its rows add up to what it
   * covers, and the covered bytes are the ones it was made from (the same file identity,
   * or the same SHA-256). True when loaded.
   */
  private loadSidecar(stats: BigIntStats): boolean {
    const key = signingKey(this.keyFile);
    if (!key) return false;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(this.runDir, SIDECAR));
    } catch {
      return false; // none yet
    }
    const first = bytes.indexOf(0x0a);
    const second = first < 0 ? -1 : bytes.indexOf(0x0a, first + 1);
    if (second < 0) return false;
    const mac = Buffer.from(bytes.toString('latin1', 0, first), 'hex');
    const signed = createHmac('sha256', key)
      .update(bytes.subarray(first + 1))
      .digest();
    if (mac.length !== signed.length || !timingSafeEqual(mac, signed)) return false;
    let header: {
      format?: unknown;
      fields?: unknown;
      covers?: unknown;
      digest?: unknown;
      identity?: unknown;
      summary?: RunSummary;
    };
    try {
      header = JSON.parse(bytes.toString('utf8', first + 1, second)) as typeof header;
    } catch {
      return false;
    }
    if (header.format !== FORMAT || JSON.stringify(header.fields) !== JSON.stringify(FIELDS)) return false;
    const covers = header.covers;
    if (typeof covers !== 'number' || covers > Number(stats.size)) return false;
    // Rows in batches, a JSON array a line, parsed one batch at a time: the rows never exist
    // all at once beside the entries.
    const entries: EpisodeIndexEntry[] = [];
    let offset = 0;
    let start = second + 1;
    while (start < bytes.length) {
      let end = bytes.indexOf(0x0a, start);
      if (end < 0) end = bytes.length;
      let rows: unknown;
      try {
        rows = JSON.parse(bytes.toString('utf8', start, end));
      } catch {
        return false;
      }
      if (!Array.isArray(rows)) return false;
      for (const row of rows) {
        const entry = entryOfRow(row, offset, this.strings);
        if (!entry) return false;
        entries.push(entry);
        offset += entry.length;
      }
      start = end + 1;
    }
    if (offset !== covers) return false;
    const identity = identityOf(stats);
    if (header.identity === identity) {
      this.hash = undefined; // not needed: the file is as it was; a later sidecar starts from a verified hash
    } else {
      // The file changed since (an append, or an edit): the covered bytes must be the same.
      const hash = this.hashOf(covers);
      if (hash === undefined || hash.copy().digest('hex') !== header.digest) return false;
      this.hash = hash;
    }
    this.entries = [];
    this.latestAt = new Map();
    this.add(entries);
    // The summary of these entries, made when the sidecar was (signed with it); dropped when the tail adds any.
    if (header.summary && typeof header.summary === 'object') this.summaryCache = header.summary;
    this.covered = covers;
    this.identity = typeof header.identity === 'string' ? header.identity : '';
    this.dirty = false;
    return true;
  }

  /** SHA-256 of the first `bytes` of episodes.jsonl, read in chunks; undefined when it is shorter. */
  private hashOf(bytes: number): Hash | undefined {
    const hash = createHash('sha256');
    const fd = openSync(join(this.runDir, EPISODES), 'r');
    try {
      const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(this.chunkBytes, bytes)));
      let position = 0;
      while (position < bytes) {
        const read = readSync(fd, chunk, 0, Math.min(chunk.length, bytes - position), position);
        if (read <= 0) return undefined;
        hash.update(chunk.subarray(0, read));
        position += read;
      }
    } finally {
      closeSync(fd);
    }
    return hash;
  }

  /**
   * Writes the sidecar through a temporary file renamed over the old one. Best effort: a
   * folder that cannot be written, or no key, keeps the index in memory only.
   */
  private persist(): void {
    this.dirty = false;
    if (!this.useSidecar || this.hash === undefined) return;
    const key = signingKey(this.keyFile);
    if (!key) return;
    const header = JSON.stringify({
      format: FORMAT,
      fields: FIELDS,
      covers: this.covered,
      digest: this.hash.copy().digest('hex'),
      identity: this.identity,
      count: this.entries.length,
      summary: this.summary(),
    });
    // Written in batches, the signature last into the first line (its width is fixed): the
    // body never exists whole in memory.
    const path = join(this.runDir, SIDECAR);
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const hmac = createHmac('sha256', key);
    let fd: number | undefined;
    try {
      fd = openSync(tmp, 'w');
      let position = 0;
      const write = (text: string, signed: boolean): void => {
        const bytes = Buffer.from(text);
        if (signed) hmac.update(bytes);
        let done = 0;
        while (done < bytes.length) done += writeSync(fd!, bytes, done, bytes.length - done, position + done);
        position += bytes.length;
      };
      write(`${'0'.repeat(64)}\n`, false);
      write(header, true);
      const batch = 2_000;
      for (let start = 0; start < this.entries.length; start += batch) {
        const rows = this.entries.slice(start, start + batch).map((entry) => JSON.stringify(rowOf(entry)));
        write(`\n[${rows.join(',')}]`, true);
      }
      const mac = Buffer.from(hmac.digest('hex'));
      writeSync(fd, mac, 0, mac.length, 0);
      closeSync(fd);
      fd = undefined;
      renameSync(tmp, path);
    } catch {
      // A read-only run folder or a full disk: the sidecar is derived data, rebuilt next time.
      if (fd !== undefined) closeSync(fd);
      rmSync(tmp, { force: true });
    }
  }

  /**
   * The entries among `candidates` whose record holds `text` (case-insensitive). Each
   * candidate's line is read (candidates close together in one read of at most
   * `chunkBytes`) and tested in its JSON form first; a line that may match is parsed and
   * its texts tested, so that keys, ids and image data never match.
   */
  private async search(
    candidates: readonly EpisodeIndexEntry[],
    text: string,
  ): Promise<{ matches: Set<EpisodeIndexEntry>; stats: NonNullable<EpisodePage['searched']> }> {
    const matches = new Set<EpisodeIndexEntry>();
    const stats = { bytes: 0, largestReadBytes: 0 };
    if (candidates.length === 0) return { matches, stats };
    // The needle as JSON writes it inside a string: a line holding the text holds this.
    const rough = new RegExp(escapeRegExp(JSON.stringify(text).slice(1, -1)), 'i');
    const exact = new RegExp(escapeRegExp(text), 'i');
    const ordered = [...candidates].sort((a, b) => a.offset - b.offset);
    const path = join(this.runDir, EPISODES);
    const file = await openFile(path, 'r');
    const chunk = Buffer.allocUnsafe(this.chunkBytes);
    try {
      let at = 0;
      while (at < ordered.length) {
        const first = ordered[at]!;
        let last = at;
        while (
          last + 1 < ordered.length &&
          ordered[last + 1]!.offset + ordered[last + 1]!.length - first.offset <= this.chunkBytes
        )
          last++;
        const span = ordered[last]!.offset + ordered[last]!.length - first.offset;
        const buffer = span <= chunk.length ? chunk.subarray(0, span) : Buffer.allocUnsafe(span);
        let read = 0;
        while (read < span) {
          const { bytesRead } = await file.read(buffer, read, span - read, first.offset + read);
          if (bytesRead <= 0) throw this.changed(ordered[at]!);
          read += bytesRead;
        }
        stats.bytes += span;
        stats.largestReadBytes = Math.max(stats.largestReadBytes, span);
        for (let n = at; n <= last; n++) {
          const entry = ordered[n]!;
          const line = buffer.toString(
            'utf8',
            entry.offset - first.offset,
            entry.offset - first.offset + entry.length - 1,
          );
          if (!rough.test(line)) continue;
          const record = parseRecord(line);
          if (!record || record.episodeId !== entry.episodeId) throw this.changed(entry);
          if (searchableTexts(record).some((candidate) => exact.test(candidate))) matches.add(entry);
        }
        at = last + 1;
      }
    } finally {
      await file.close();
    }
    return { matches, stats };
  }
}
