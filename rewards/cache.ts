/**
 * A content-addressed cache of judgements, persisted as JSONL (one `{key, value, model, at}`
 * per line, appended), so that scoring the same transcript with the same rubric and model
 * again costs nothing — across runs, when the same file is reused.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, PaddockError, describeError } from '../harness/index.ts';
import { tryParseJson } from './text.ts';

/** A cached value: one score, or the scores of a group. */
export type CachedValue = number | number[];

/** One line of the cache file (lenient: other keys are kept by writers we do not know). */
const LineSchema = z.object({ key: z.string().min(1), value: z.union([z.number(), z.array(z.number())]) });

/** The cache file's name inside a cache folder. */
export const JUDGE_CACHE_FILE = 'judge-cache.jsonl';

export class JudgeCache {
  private readonly entries = new Map<string, CachedValue>();
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    /** The JSONL file, or undefined for a cache kept in memory only. */
    readonly file: string | undefined,
  ) {}

  /** A cache kept in memory only. */
  static memory(): JudgeCache {
    return new JudgeCache(undefined);
  }

  /**
   * Opens (or starts) the cache file `file`, loading the entries it holds. Lines that are
   * not valid entries (a line torn by a crash) are skipped. Rejects with STORE_FAILED when
   * the file exists but cannot be read.
   */
  static async open(file: string): Promise<JudgeCache> {
    const cache = new JudgeCache(file);
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new PaddockError(
          ERROR_CODES.STORE_FAILED,
          `cannot read the judge cache ${file}: ${describeError(error)}`,
          {
            cause: error,
          },
        );
      }
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const parsed = LineSchema.safeParse(tryParseJson(line));
      if (parsed.success) cache.entries.set(parsed.data.key, parsed.data.value);
    }
    return cache;
  }

  /** Number of entries. */
  get size(): number {
    return this.entries.size;
  }

  get(key: string): CachedValue | undefined {
    return this.entries.get(key);
  }

  /** Stores `value` under `key` and appends it to the file. Rejects with STORE_FAILED when the write fails. */
  async set(key: string, value: CachedValue, model: string): Promise<void> {
    this.entries.set(key, value);
    const file = this.file;
    if (file === undefined) return;
    const line = `${JSON.stringify({ key, value, model, at: new Date().toISOString() })}\n`;
    const write = this.writes.then(async () => {
      await mkdir(path.dirname(file), { recursive: true });
      await appendFile(file, line, 'utf8');
    });
    // Later writes wait for this one, whether or not it failed; this caller sees its failure.
    this.writes = write.catch(() => undefined);
    try {
      await write;
    } catch (error) {
      throw new PaddockError(
        ERROR_CODES.STORE_FAILED,
        `cannot write the judge cache ${file}: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
  }
}
