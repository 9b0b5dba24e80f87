/**
 * The run store: one folder per run, append-only and crash-safe.
 *
 *   <root>/<runId>/run.json        the manifest (config and planned episodes), written atomically
 *   <root>/<runId>/episodes.jsonl  one finished EpisodeRecord per line, fsync'd before the next starts
 *   <root>/<runId>/events.jsonl    the event stream (progress, viewer); best effort, not fsync'd
 *
 * A `kill -9` can tear at most the last line of episodes.jsonl; reading skips a torn last
 * line and opening for append cuts it off, so nothing finished is lost and nothing is
 * recorded twice. A lock file keeps two processes from writing one run.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
  existsSync,
  readdirSync,
  createWriteStream,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import type { EpisodeEvent, EpisodeRecord } from './episode.ts';
import { ERROR_CODES, PaddockError, describeError } from './errors.ts';

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

function storeError(message: string, cause?: unknown): PaddockError {
  return new PaddockError(ERROR_CODES.STORE_FAILED, message, cause === undefined ? {} : { cause });
}

/**
 * An event as the event log keeps it. The episode record holds everything else, so the
 * log does not repeat it: episode-end keeps the episode's id and status, and a turn's
 * images (screenshots) keep their type and size, not their bytes.
 */
function loggedEvent(event: EpisodeEvent): object {
  if (event.type === 'episode-end') {
    return { type: event.type, episodeId: event.episode.episodeId, status: event.episode.status };
  }
  if (event.type !== 'turn-end' || !event.turn.toolResults.some((result) => result.images?.length)) {
    return event;
  }
  const toolResults = event.turn.toolResults.map((result) =>
    result.images?.length
      ? {
          ...result,
          images: result.images.map((image) => ({
            mimeType: image.mimeType,
            bytes: Math.floor((image.dataBase64.length * 3) / 4),
          })),
        }
      : result,
  );
  return { ...event, turn: { ...event.turn, toolResults } };
}

/** Reads a JSONL file, skipping a torn last line; returns the records and the byte length of the intact part. */
function readJsonl<T>(path: string): { records: T[]; intactBytes: number } {
  if (!existsSync(path)) return { records: [], intactBytes: 0 };
  const text = readFileSync(path, 'utf8');
  const records: T[] = [];
  let offset = 0;
  while (offset < text.length) {
    const end = text.indexOf('\n', offset);
    if (end < 0) break; // a torn last line: written without its newline when the process died
    const line = text.slice(offset, end);
    try {
      records.push(JSON.parse(line) as T);
    } catch (error) {
      throw storeError(
        `${path}: line ${records.length + 1} is not valid JSON (${describeError(error)})`,
        error,
      );
    }
    offset = end + 1;
  }
  return { records, intactBytes: Buffer.byteLength(text.slice(0, offset)) };
}

export class RunStore {
  readonly dir: string;
  private episodesFd: number | undefined;
  private events: WriteStream | undefined;
  private readonly finished = new Set<string>();
  private locked = false;

  private constructor(
    readonly root: string,
    readonly manifest: RunManifest,
  ) {
    this.dir = join(root, manifest.runId);
  }

  /** Creates a new run folder and writes its manifest. Rejects when the run exists. */
  static create(root: string, manifest: RunManifest): RunStore {
    const store = new RunStore(root, manifest);
    if (existsSync(join(store.dir, MANIFEST)))
      throw storeError(`run ${manifest.runId} already exists in ${root}`);
    mkdirSync(store.dir, { recursive: true });
    const tmp = join(store.dir, `${MANIFEST}.tmp`);
    const fd = openSync(tmp, 'w');
    writeSync(fd, JSON.stringify(manifest, null, 2));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(store.dir, MANIFEST));
    return store;
  }

  /** Opens an existing run. Rejects with RUN_NOT_FOUND when there is none. */
  static open(root: string, runId: string): RunStore {
    const path = join(root, runId, MANIFEST);
    if (!existsSync(path)) throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `no run ${runId} in ${root}`);
    let manifest: RunManifest;
    try {
      manifest = JSON.parse(readFileSync(path, 'utf8')) as RunManifest;
    } catch (error) {
      throw storeError(`${path} is not valid JSON`, error);
    }
    return new RunStore(root, manifest);
  }

  /** Run ids in `root`, oldest first. */
  static list(root: string): string[] {
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .filter((name) => existsSync(join(root, name, MANIFEST)))
      .sort((a, b) => statSync(join(root, a, MANIFEST)).mtimeMs - statSync(join(root, b, MANIFEST)).mtimeMs);
  }

  /** The finished episodes recorded so far, in the order they finished. */
  episodes(): EpisodeRecord[] {
    return readJsonl<EpisodeRecord>(join(this.dir, EPISODES)).records;
  }

  /** Planned episodes that have no record yet. */
  missing(): PlannedEpisode[] {
    const done = new Set(this.episodes().map((episode) => episode.episodeId));
    return this.manifest.plan.filter((planned) => !done.has(planned.episodeId));
  }

  /** Takes the run's lock and opens it for appending, cutting off a torn last line. */
  openForWrite(): void {
    if (this.episodesFd !== undefined) return;
    this.takeLock();
    const path = join(this.dir, EPISODES);
    const { records, intactBytes } = readJsonl<EpisodeRecord>(path);
    if (existsSync(path) && statSync(path).size !== intactBytes) truncateSync(path, intactBytes);
    for (const record of records) this.finished.add(record.episodeId);
    this.episodesFd = openSync(path, 'a');
    this.events = createWriteStream(join(this.dir, EVENTS), { flags: 'a' });
  }

  /** Appends a finished episode and flushes it to disk before returning. Rejects on a duplicate. */
  appendEpisode(episode: EpisodeRecord): void {
    if (this.episodesFd === undefined) throw storeError('the run store is not open for writing');
    if (this.finished.has(episode.episodeId))
      throw storeError(`episode ${episode.episodeId} is already recorded`);
    writeSync(this.episodesFd, `${JSON.stringify(episode)}\n`);
    fsyncSync(this.episodesFd);
    this.finished.add(episode.episodeId);
  }

  /** Appends an event to the event log (buffered; may lose the last events on a crash). */
  appendEvent(event: EpisodeEvent): void {
    this.events?.write(`${JSON.stringify({ at: Date.now(), ...loggedEvent(event) })}\n`);
  }

  /** Flushes and closes the files and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.episodesFd !== undefined) {
      closeSync(this.episodesFd);
      this.episodesFd = undefined;
    }
    const events = this.events;
    this.events = undefined;
    if (events) await new Promise<void>((resolve) => events.end(resolve));
    if (this.locked) {
      rmSync(join(this.dir, LOCK), { force: true });
      this.locked = false;
    }
  }

  private takeLock(): void {
    const path = join(this.dir, LOCK);
    if (existsSync(path)) {
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw storeError(`run ${this.manifest.runId} is being written by process ${pid}`);
      }
    }
    const tmp = `${path}.${process.pid}`;
    const fd = openSync(tmp, 'w');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    renameSync(tmp, path);
    this.locked = true;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: no such process, so the lock is stale.
    return false;
  }
}
