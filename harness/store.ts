/**
 * The run store: one folder per run, append-only and crash-safe.
 *
 *   <root>/<runId>/run.json        the manifest (config and planned episodes), written atomically
 *   <root>/<runId>/episodes.jsonl  one finished EpisodeRecord per line, fsync'd before the next starts
 *   <root>/<runId>/events.jsonl    the event stream (progress, viewer); best effort, not fsync'd
 *   <root>/<runId>/episodes.index  the run index (run-index.ts): derived from episodes.jsonl,
 *                                  signed, rebuilt whenever it does not match; written at close
 *   <root>/<runId>/images/<sha256>.<ext>  images of the records larger than the inline limit
 *                                  (4 KiB), each written once (content-addressed), fsync'd
 *                                  before the record that names it (recorded-images.ts)
 *
 * A record's images larger than `RunStoreOptions.images.inlineMaxBytes` are written to
 * `images/` and the record holds a reference (`{ mimeType, file, bytes, sha256 }`) in their
 * place, so that a screenshot shown in a tool message and its tool result, or on every
 * turn, is on disk once and episodes.jsonl holds no large base64. An episode's images past
 * its budget (`episodeBudgetBytes`, 64 MiB) keep only type, size and hash (`omitted`).
 * Records read back are `RecordedEpisode`s; `readRecordedImage` reads an image's bytes.
 *
 * A record is written whole or not at all: every write is checked and repeated until the
 * whole line is on disk, and a write or fsync that fails (a full disk: ENOSPC) cuts the
 * file back to its previous length and throws STORE_FAILED. A `kill -9` can still tear
 * the last line; a torn tail (a last line without its newline, or one that does not
 * parse) is skipped when reading, and cut off when the run is opened with no live writer,
 * its bytes kept beside the file (`episodes.jsonl.torn-<ms>`) as evidence. Its episode
 * then has no record, so `resume` runs it again. A lock file keeps two processes from
 * writing one run.
 *
 * A planned episode may have several records: `resume --retry-errors` appends a new
 * attempt after an errored one. `episodes()` gives the latest record of each episode
 * (what summaries, view and export use); `records()` gives every line. Both read and parse
 * the whole file: readers that need summaries, tables or one record of a big run use the
 * run index instead (run-index.ts), which reads each record line once and keeps a sidecar.
 * Finding a torn tail reads only the end of the file.
 */
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  readSync,
  existsSync,
  readdirSync,
  createWriteStream,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import type { EpisodeEvent, RecordedEpisode, ToolResultRecord } from './episode.ts';
import { writeFileAtomic as writeFileBytesAtomic, writeFully } from './atomic-file.ts';
import { ERROR_CODES, PaddockError, describeError } from './errors.ts';
import {
  RunImageWriter,
  recordedImageBytes,
  type RecordImageOptions,
  type RecordedImage,
} from './recorded-images.ts';
import { RunIndex } from './run-index.ts';

/** One episode the run plans to have. */
export interface PlannedEpisode {
  episodeId: string;
  taskId: string;
  epoch: number;
  seed: number;
}

/** What a run was asked to do; enough for `resume` to rebuild it. */
export interface RunManifest {
  runId: string;
  createdAt: string;
  /** The configuration as the user gave it (task paths, agent spec, options); opaque to the store. */
  config: Record<string, unknown>;
  plan: PlannedEpisode[];
}

const MANIFEST = 'run.json';
const EPISODES = 'episodes.jsonl';
const EVENTS = 'events.jsonl';
const LOCK = 'lock';

function storeError(message: string, cause?: unknown, details: Record<string, unknown> = {}): PaddockError {
  const errno = systemErrorCode(cause);
  return new PaddockError(ERROR_CODES.STORE_FAILED, message, {
    ...(cause === undefined ? {} : { cause }),
    details: { ...(errno ? { errno } : {}), ...details },
  });
}

/** The system error code of a failed file operation (`ENOSPC`, `EIO`…), if it has one. */
function systemErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** What a failed write says to a person: the system's reason, named plainly when it is a full disk. */
function writeFailure(error: unknown): string {
  const code = systemErrorCode(error);
  if (code === 'ENOSPC') return 'no space left on device (ENOSPC)';
  if (code === 'EDQUOT') return 'disk quota exceeded (EDQUOT)';
  return describeError(error);
}

/** Writes `text` to `path` through a temporary file, fsync'd and renamed: the file is whole or absent. */
function writeFileAtomic(path: string, text: string): void {
  try {
    writeFileBytesAtomic(path, Buffer.from(text));
  } catch (error) {
    throw storeError(`writing ${path} failed: ${writeFailure(error)}`, error);
  }
}

/** A tool result as the event log keeps it: its images' type and size, not their bytes. */
function loggedResult<Image extends RecordedImage>(result: ToolResultRecord<Image>): object {
  if (!result.images?.length) return result;
  return {
    ...result,
    images: result.images.map((image) => ({ mimeType: image.mimeType, bytes: recordedImageBytes(image) })),
  };
}

/**
 * An event as the event log keeps it. The episode record holds everything else, so the
 * log does not repeat it: episode-end keeps the episode's id and status, and a tool
 * result's images (screenshots), in its tool-result and turn-end events, keep their type
 * and size, not their bytes.
 */
function loggedEvent(event: EpisodeEvent): object {
  if (event.type === 'episode-end') {
    return { type: event.type, episodeId: event.episode.episodeId, status: event.episode.status };
  }
  if (event.type === 'tool-result' && event.result.images?.length) {
    return { ...event, result: loggedResult(event.result) };
  }
  if (event.type !== 'turn-end' || !event.turn.toolResults.some((result) => result.images?.length)) {
    return event;
  }
  return { ...event, turn: { ...event.turn, toolResults: event.turn.toolResults.map(loggedResult) } };
}

/** One parsed line of episodes.jsonl. */
interface ParsedLines<T> {
  records: T[];
  /** Bytes of the file that hold whole, parseable records (the rest is a torn tail). */
  intactBytes: number;
  /** The file's size when read. */
  totalBytes: number;
}

/** One line of episodes.jsonl as a record, or undefined when it is not one (it does not parse, or has no episode id). */
export function parseRecord(line: string): RecordedEpisode | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  // Our own file, but a record without an episode id is not one we wrote.
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { episodeId?: unknown }).episodeId !== 'string'
  )
    return undefined;
  return value as RecordedEpisode;
}

/**
 * Reads episodes.jsonl. A torn tail — a last line without its newline, or a last line
 * that does not parse — is left out of `records` and `intactBytes`. A line that does not
 * parse and is not the last is corruption the store did not make: STORE_FAILED naming it.
 */
function readRecords(path: string): ParsedLines<RecordedEpisode> {
  if (!existsSync(path)) return { records: [], intactBytes: 0, totalBytes: 0 };
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw storeError(`reading ${path} failed: ${describeError(error)}`, error);
  }
  const records: RecordedEpisode[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    // A newline byte never occurs inside a multi-byte UTF-8 character, so splitting bytes is safe.
    const end = bytes.indexOf(0x0a, offset);
    if (end < 0) break; // no newline: the process died while writing this line
    const record = parseRecord(bytes.toString('utf8', offset, end));
    if (record === undefined) {
      if (end + 1 >= bytes.length) break; // an unparseable last line is a torn tail too
      throw storeError(
        `${path}: line ${records.length + 1} is not a valid episode record, and it is not the last line; ` +
          'the store does not write such lines (was the file edited?)',
        undefined,
        { file: path, line: records.length + 1 },
      );
    }
    records.push(record);
    offset = end + 1;
  }
  return { records, intactBytes: offset, totalBytes: bytes.length };
}

/**
 * Where the intact part of episodes.jsonl ends, read from its end only (a run of 100,000
 * records is not read to find its torn tail): after the last newline when the file does not
 * end with one, before the last line when that line does not parse, else the whole file.
 * A corrupt line further up is not looked for here; reading the records reports it.
 */
export function intactLength(path: string): { intactBytes: number; totalBytes: number } {
  if (!existsSync(path)) return { intactBytes: 0, totalBytes: 0 };
  const fd = openSync(path, 'r');
  try {
    const totalBytes = fstatSync(fd).size;
    if (totalBytes === 0) return { intactBytes: 0, totalBytes };
    const last = lastNewlineBefore(fd, totalBytes);
    if (last < 0) return { intactBytes: 0, totalBytes };
    if (last + 1 < totalBytes) return { intactBytes: last + 1, totalBytes };
    const start = lastNewlineBefore(fd, last) + 1;
    const line = Buffer.alloc(last - start);
    readFully(fd, line, start);
    return { intactBytes: parseRecord(line.toString('utf8')) ? totalBytes : start, totalBytes };
  } finally {
    closeSync(fd);
  }
}

/** The position of the last newline byte before `end`, or -1; reads backwards in 64 KiB steps. */
function lastNewlineBefore(fd: number, end: number): number {
  const step = Buffer.alloc(64 * 1024);
  let to = end;
  while (to > 0) {
    const from = Math.max(0, to - step.length);
    const chunk = step.subarray(0, to - from);
    readFully(fd, chunk, from);
    const at = chunk.lastIndexOf(0x0a);
    if (at >= 0) return from + at;
    to = from;
  }
  return -1;
}

/** Fills `buffer` from `position`, repeating short reads. */
export function readFully(fd: number, buffer: Buffer, position: number): void {
  let offset = 0;
  while (offset < buffer.length) {
    const read = readSync(fd, buffer, offset, buffer.length - offset, position + offset);
    if (read <= 0) throw storeError(`unexpected end of file at byte ${position + offset}`);
    offset += read;
  }
}

/** The pid of a live process holding the run folder's lock, other than this one. */
export function liveWriterOf(dir: string): number | undefined {
  const path = join(dir, LOCK);
  if (!existsSync(path)) return undefined;
  let pid: number;
  try {
    pid = Number(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined; // removed meanwhile
  }
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid) ? pid : undefined;
}

/**
 * Cuts a torn tail off a run folder's episodes.jsonl, keeping its bytes in a side file
 * (`episodes.jsonl.torn-<ms>`). When the side file cannot be written (a full disk), the
 * tail is cut only if `force` (a writer must start from a clean line); otherwise it is
 * left for the next writer. Returns what was cut, if anything.
 */
export function cutTornTailOf(dir: string, force: boolean): TornTail | undefined {
  const path = join(dir, EPISODES);
  const { intactBytes, totalBytes } = intactLength(path);
  if (totalBytes === intactBytes) return undefined;
  let savedTo: string | undefined = `${path}.torn-${Date.now()}`;
  try {
    const fd = openSync(path, 'r');
    try {
      const torn = Buffer.alloc(totalBytes - intactBytes);
      readFully(fd, torn, intactBytes);
      writeFileSync(savedTo, torn);
    } finally {
      closeSync(fd);
    }
  } catch {
    rmSync(savedTo, { force: true });
    savedTo = undefined;
    if (!force) return undefined;
  }
  truncateSync(path, intactBytes);
  return { bytes: totalBytes - intactBytes, savedTo };
}

/** The latest record of each episode, in the order those records were written. */
function latestOfEach(records: readonly RecordedEpisode[]): RecordedEpisode[] {
  const latest = new Map<string, number>();
  records.forEach((record, index) => latest.set(record.episodeId, index));
  return records.filter((record, index) => latest.get(record.episodeId) === index);
}

/** True when a record is an error an episode may be run again for (`resume --retry-errors`). */
function isErrorRecord(record: Pick<RecordedEpisode, 'status'>): boolean {
  return record.status === 'infra-error' || record.status === 'agent-error';
}

/** What repairing a torn tail did. */
export interface TornTail {
  /** Bytes cut off the end of episodes.jsonl. */
  bytes: number;
  /** The side file holding them, or undefined when it could not be written. */
  savedTo: string | undefined;
}

/** Options of a run store. */
export interface RunStoreOptions {
  /** Where records' images go: the inline limit and the episode's image budget. */
  images?: RecordImageOptions;
}

export class RunStore {
  readonly dir: string;
  private episodesFd: number | undefined;
  /** Length of episodes.jsonl as this writer knows it: where the next record goes. */
  private episodesBytes = 0;
  private events: WriteStream | undefined;
  private eventsFailure: unknown;
  private readonly latest = new Map<string, Pick<RecordedEpisode, 'status'>>();
  private readonly images: RunImageWriter;
  private locked = false;
  /** The torn tail cut off when this run was opened, if there was one. */
  tornTail: TornTail | undefined;

  private constructor(
    readonly root: string,
    readonly manifest: RunManifest,
    options: RunStoreOptions,
  ) {
    this.dir = join(root, manifest.runId);
    this.images = new RunImageWriter(this.dir, options.images);
  }

  /**
   * Creates a new run folder and writes its manifest (atomically).
   * @throws PaddockError STORE_FAILED when the run exists or the manifest cannot be written.
   */
  static create(root: string, manifest: RunManifest, options: RunStoreOptions = {}): RunStore {
    const store = new RunStore(root, manifest, options);
    if (existsSync(join(store.dir, MANIFEST)))
      throw storeError(`run ${manifest.runId} already exists in ${root}`);
    try {
      mkdirSync(store.dir, { recursive: true });
    } catch (error) {
      throw storeError(`creating ${store.dir} failed: ${writeFailure(error)}`, error);
    }
    writeFileAtomic(join(store.dir, MANIFEST), JSON.stringify(manifest, null, 2));
    return store;
  }

  /**
   * Opens an existing run. When no live process is writing it, a torn tail of
   * episodes.jsonl is cut off here (see `tornTail`), so view, export and resume all see
   * a clean file; while a writer lives, reading only skips it.
   * @throws PaddockError RUN_NOT_FOUND when there is none; STORE_FAILED when run.json is unreadable.
   */
  static open(root: string, runId: string, options: RunStoreOptions = {}): RunStore {
    const path = join(root, runId, MANIFEST);
    if (!existsSync(path)) throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `no run ${runId} in ${root}`);
    let manifest: RunManifest;
    try {
      manifest = JSON.parse(readFileSync(path, 'utf8')) as RunManifest;
    } catch (error) {
      throw storeError(`${path} is not valid JSON`, error);
    }
    const store = new RunStore(root, manifest, options);
    if (store.liveWriter() === undefined) {
      try {
        store.cutTornTail(false);
      } catch {
        // A read-only run folder: readers skip the torn tail anyway, and the writer cuts it.
      }
    }
    return store;
  }

  /**
   * Where one attempt of an episode keeps the files its verifier left and the task's
   * artifacts (`EpisodeOptions.files`): `files/<episode id, percent-encoded>/attempt-<n>`
   * in the run folder. `recordAs` is that path relative to the run folder, as the record
   * names its files; `dir` the absolute folder. Nothing is created here.
   */
  episodeFiles(episodeId: string, attempt: number): { dir: string; recordAs: string } {
    // Percent-encoded, dots too: no id can name a folder outside files/ or a hidden one.
    const recordAs = `files/${encodeURIComponent(episodeId).replace(/\./g, '%2E')}/attempt-${attempt}`;
    return { dir: join(this.dir, ...recordAs.split('/')), recordAs };
  }

  /** Run ids in `root`, oldest first. */
  static list(root: string): string[] {
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .filter((name) => existsSync(join(root, name, MANIFEST)))
      .sort((a, b) => statSync(join(root, a, MANIFEST)).mtimeMs - statSync(join(root, b, MANIFEST)).mtimeMs);
  }

  /**
   * The latest record of each episode, in the order those records were written (a torn
   * tail left out). Summaries, view and export use these.
   */
  episodes(): RecordedEpisode[] {
    return latestOfEach(this.records());
  }

  /** Every record, earlier attempts of re-run episodes included, in the order written. */
  records(): RecordedEpisode[] {
    return readRecords(join(this.dir, EPISODES)).records;
  }

  /** Planned episodes that have no record yet. */
  missing(): PlannedEpisode[] {
    const done = new Set(this.records().map((episode) => episode.episodeId));
    return this.manifest.plan.filter((planned) => !done.has(planned.episodeId));
  }

  /** Planned episodes whose latest record is `infra-error` or `agent-error`, with that record. */
  errored(): { planned: PlannedEpisode; latest: RecordedEpisode }[] {
    const latest = new Map(this.episodes().map((record) => [record.episodeId, record]));
    return this.manifest.plan.flatMap((planned) => {
      const record = latest.get(planned.episodeId);
      return record && isErrorRecord(record) ? [{ planned, latest: record }] : [];
    });
  }

  /**
   * Takes the run's lock and opens it for appending, cutting off a torn tail (kept in a
   * side file, see `tornTail`).
   * @throws PaddockError STORE_FAILED when another live process writes the run, or the files cannot be opened.
   */
  openForWrite(): void {
    if (this.episodesFd !== undefined) return;
    this.takeLock();
    try {
      this.cutTornTail(true);
      const path = join(this.dir, EPISODES);
      for (const record of readRecords(path).records)
        this.latest.set(record.episodeId, { status: record.status });
      // Not O_APPEND: each record is written at the length this writer knows, so a failed
      // write can be cut back exactly.
      this.episodesFd = openSync(path, existsSync(path) ? 'r+' : 'w+');
      this.episodesBytes = fstatSync(this.episodesFd).size;
    } catch (error) {
      this.releaseLock();
      if (error instanceof PaddockError) throw error;
      throw storeError(`opening ${this.dir} for writing failed: ${writeFailure(error)}`, error);
    }
    const events = createWriteStream(join(this.dir, EVENTS), { flags: 'a' });
    // The event log is secondary: losing it (a full disk) must not end the run or lose an
    // episode. The failure is kept for `eventsError`; later events are dropped.
    events.on('error', (error) => {
      this.eventsFailure ??= error;
      if (this.events === events) this.events = undefined;
    });
    this.events = events;
  }

  /**
   * Appends an episode's record and flushes it to disk before returning: the record is
   * on disk whole, or (on any failure) the file is cut back to where it was and this throws.
   * An episode already recorded is refused unless `supersede` is set and its latest
   * record is an error (a re-run of an errored episode: both attempts stay in the file).
   *
   * Images larger than the inline limit are written to `images/` first (each once, fsync'd)
   * and referenced from the line written; those past the episode's budget are `omitted`
   * (see the module comment). The record given is not changed. An image file written for a
   * record that then fails stays (unreferenced, harmless: it is named by its content).
   * @throws PaddockError STORE_FAILED (details.errno `ENOSPC` on a full disk).
   */
  appendEpisode(episode: RecordedEpisode, options: { supersede?: boolean } = {}): void {
    if (this.episodesFd === undefined) throw storeError('the run store is not open for writing');
    const earlier = this.latest.get(episode.episodeId);
    if (earlier && !(options.supersede === true && isErrorRecord(earlier)))
      throw storeError(`episode ${episode.episodeId} is already recorded (${earlier.status})`);
    const stored = this.images.record(episode).record;
    let line: Buffer;
    try {
      line = Buffer.from(`${JSON.stringify(stored)}\n`);
    } catch (error) {
      throw storeError(
        `episode ${episode.episodeId} could not be serialised: ${describeError(error)}`,
        error,
        {
          episodeId: episode.episodeId,
        },
      );
    }
    const before = this.episodesBytes;
    try {
      writeFully(this.episodesFd, line, before);
      fsyncSync(this.episodesFd);
    } catch (error) {
      let cut = true;
      try {
        ftruncateSync(this.episodesFd, before);
        fsyncSync(this.episodesFd);
      } catch {
        // Cutting back failed too: the part written is a torn tail, cut off when the run is next opened.
        cut = false;
      }
      throw storeError(
        `recording episode ${episode.episodeId} in ${join(this.dir, EPISODES)} failed: ${writeFailure(error)}; ` +
          (cut
            ? 'nothing of it was kept, and the records written before it are intact'
            : 'its partial line is cut off when the run is next opened; the records before it are intact'),
        error,
        { episodeId: episode.episodeId, file: join(this.dir, EPISODES) },
      );
    }
    this.episodesBytes = before + line.length;
    this.latest.set(episode.episodeId, { status: episode.status });
  }

  /** Appends an event to the event log (buffered; may lose the last events on a crash, or all after a write error). */
  appendEvent(event: EpisodeEvent): void {
    const events = this.events;
    if (!events || events.destroyed) return;
    let line: string;
    try {
      line = `${JSON.stringify({ at: Date.now(), ...loggedEvent(event) })}\n`;
    } catch (error) {
      // An event too large to serialise is dropped; the episode record keeps what matters.
      this.eventsFailure ??= error;
      return;
    }
    events.write(line);
  }

  /** The first error that stopped the event log, if one did (events after it were dropped). */
  get eventsError(): unknown {
    return this.eventsFailure;
  }

  /**
   * Flushes and closes the files and releases the lock, then brings the run's index
   * sidecar up to date (run-index.ts), so that the first `paddock view` of a big run does
   * not parse its records. Idempotent; never rejects.
   */
  async close(): Promise<void> {
    const wrote = this.episodesFd !== undefined;
    if (this.episodesFd !== undefined) {
      try {
        closeSync(this.episodesFd);
      } catch {
        // Every record was fsync'd when written; a failing close loses nothing.
      }
      this.episodesFd = undefined;
    }
    const events = this.events;
    this.events = undefined;
    if (events && !events.destroyed) {
      await new Promise<void>((resolve) => {
        events.once('close', () => resolve());
        events.once('error', () => resolve());
        events.end();
      });
    }
    this.releaseLock();
    if (wrote) {
      try {
        RunIndex.open(this.dir).close();
      } catch {
        // The index is derived data: the next reader builds it (and reports what it finds).
      }
    }
  }

  /** The pid of a live process holding this run's lock, other than this one. */
  private liveWriter(): number | undefined {
    return liveWriterOf(this.dir);
  }

  /** Cuts a torn tail off episodes.jsonl (see `cutTornTailOf`), noting it in `tornTail`. */
  private cutTornTail(force: boolean): void {
    const cut = cutTornTailOf(this.dir, force);
    if (cut) this.tornTail = cut;
  }

  private takeLock(): void {
    const writer = this.liveWriter();
    if (writer !== undefined)
      throw storeError(`run ${this.manifest.runId} is being written by process ${writer}`);
    writeFileAtomic(join(this.dir, LOCK), String(process.pid));
    this.locked = true;
  }

  private releaseLock(): void {
    if (!this.locked) return;
    rmSync(join(this.dir, LOCK), { force: true });
    this.locked = false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user; ESRCH: it is gone, the lock is stale.
    return systemErrorCode(error) === 'EPERM';
  }
}
