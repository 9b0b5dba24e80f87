/**
 * What the viewer can show under its root folder: evaluation runs (folders holding a
 * `run.json`) and training outputs (folders holding `metrics.jsonl` and `runs/`), found a
 * few levels deep. The scan is lazy (on request, at most once every `rescanMs`) and reads
 * only folder listings: a run's records are never opened here.
 *
 * Every run and training output has an id: its path relative to the root, with `/`
 * separators (`.` for the root itself). The ids are the only names the HTTP API accepts
 * for them, so a request can name nothing outside what the scan found (no traversal).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

/** A run folder the scan found. */
export interface CatalogRun {
  /** The path relative to the root (`/`-separated), `.` for the root itself. */
  id: string;
  /** The absolute folder. */
  dir: string;
  /** The training output it belongs to (its id), when it is one of a training run's episode runs. */
  training?: string;
}

/** A training output folder the scan found. */
export interface CatalogTraining {
  id: string;
  dir: string;
  /** Ids of its episode runs (`<id>/runs/step-000003`…), in name order. */
  runs: string[];
}

/** Folders never searched: a run's kept files, a trainer's checkpoints and policies, dependencies. */
const SKIP = new Set(['node_modules', 'files', 'checkpoints', 'policies', 'policy', 'dist', '.git']);

/** The runs and training outputs under one root folder, rescanned lazily. */
export class Catalog {
  readonly root: string;
  private scannedAt = -Infinity;
  private runsById = new Map<string, CatalogRun>();
  private trainingsById = new Map<string, CatalogTraining>();

  constructor(
    root: string,
    private readonly options: {
      /** How deep below the root to look. @default 4 */
      maxDepth?: number;
      /** The shortest time between two scans, in ms. @default 2_000 */
      rescanMs?: number;
      now?: () => number;
    } = {},
  ) {
    this.root = resolve(root);
  }

  /** Every run found, newest first (by run.json's modification time). */
  runs(): CatalogRun[] {
    this.scan();
    return [...this.runsById.values()];
  }

  /** Every training output found, in path order. */
  trainings(): CatalogTraining[] {
    this.scan();
    return [...this.trainingsById.values()];
  }

  /** The run with this id, rescanning once when it is not known yet (a run just started). */
  run(id: string): CatalogRun | undefined {
    this.scan();
    if (!this.runsById.has(id)) this.scan(true);
    return this.runsById.get(id);
  }

  /** The training output with this id, rescanning once when it is not known yet. */
  training(id: string): CatalogTraining | undefined {
    this.scan();
    if (!this.trainingsById.has(id)) this.scan(true);
    return this.trainingsById.get(id);
  }

  /**
   * The absolute path of `relativePath` inside `dir`, or undefined when it would leave
   * `dir` (`..`, an absolute path, a NUL byte).
   */
  static inside(dir: string, relativePath: string): string | undefined {
    if (relativePath.includes('\0')) return undefined;
    const base = resolve(dir);
    const target = resolve(base, relativePath);
    return target.startsWith(base + sep) ? target : undefined;
  }

  private scan(force = false): void {
    const now = (this.options.now ?? Date.now)();
    if (!force && now - this.scannedAt < (this.options.rescanMs ?? 2_000)) return;
    this.scannedAt = now;
    const runs: { run: CatalogRun; mtimeMs: number }[] = [];
    const trainings = new Map<string, CatalogTraining>();
    const idOf = (dir: string): string => relative(this.root, dir).split(sep).join('/') || '.';
    const visit = (dir: string, depth: number, training: string | undefined): void => {
      const manifest = join(dir, 'run.json');
      if (existsSync(manifest)) {
        const id = idOf(dir);
        runs.push({ run: { id, dir, ...(training ? { training } : {}) }, mtimeMs: mtimeOf(manifest) });
        if (training) trainings.get(training)?.runs.push(id);
        return;
      }
      let inner = training;
      if (existsSync(join(dir, 'metrics.jsonl')) && existsSync(join(dir, 'runs'))) {
        inner = idOf(dir);
        trainings.set(inner, { id: inner, dir, runs: [] });
      }
      if (depth >= (this.options.maxDepth ?? 4)) return;
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return; // unreadable or removed meanwhile: nothing to show there
      }
      for (const name of names.sort()) {
        if (name.startsWith('.') || SKIP.has(name)) continue;
        const path = join(dir, name);
        if (isDirectory(path)) visit(path, depth + 1, inner);
      }
    };
    visit(this.root, 0, undefined);
    runs.sort((a, b) => b.mtimeMs - a.mtimeMs);
    this.runsById = new Map(runs.map(({ run }) => [run.id, run]));
    this.trainingsById = trainings;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
