/**
 * A training run's output folder, and how a run resumes from it:
 *
 *   config.json          the resolved config (what `resumeTraining` reads)
 *   metrics.jsonl        one row per SFT step, RL step and evaluation
 *   learning-curve.svg   redrawn after every RL step and evaluation
 *   checkpoints/         the last `checkpoint.keep` worker checkpoints
 *   state.json           which checkpoint is current, and its step
 *   policies/step-N/     the policy folder of the current step
 *   policy/              the final policy folder
 *   runs/                the run store of every episode played (runs.ts)
 *   summary.json         held-out success before/after, wall time, weights hash, runsDir
 *   tokenizer.json, demos.jsonl, worker.log
 *
 * state.json is written (atomically) only after its checkpoint is on disk, and older
 * checkpoints are removed only after that, so a kill at any point leaves a checkpoint that
 * state.json names. A resume keeps the metrics rows up to that checkpoint's step and the
 * episode runs up to it; everything after is recomputed.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, PaddockError } from '../../harness/index.ts';
import { learningCurveSvg, type CurveRow } from './plot.ts';
import { TrainingRuns, pad } from './runs.ts';

/** One row of metrics.jsonl. `type` is `sft`, `train` or `eval`; `step` the step it belongs to. */
export interface MetricRow extends CurveRow {
  type: 'sft' | 'train' | 'eval';
  step: number;
}

const StateSchema = z.object({
  step: z.number().int().min(0),
  checkpoint: z.string(),
  checkpoints: z.array(z.string()),
});

/** state.json: the current checkpoint (relative to the folder), its step, and those kept. */
export type TrainState = z.infer<typeof StateSchema>;

/** Reads a JSON file of ours. Throws STORE_FAILED when it is missing or not JSON. */
export function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new PaddockError(ERROR_CODES.STORE_FAILED, `cannot read ${path}`, { cause: error });
  }
}

/** Writes JSON through a temporary file and a rename: the file is whole or as before. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

export class RunFolder {
  /** The run store of the run's episodes (`<dir>/runs`). */
  readonly runs: TrainingRuns;
  private rowsWritten: MetricRow[] = [];

  constructor(
    readonly dir: string,
    /** Called with every metrics row as it is written. */
    private readonly onRow?: (row: MetricRow) => void,
  ) {
    this.runs = new TrainingRuns(join(dir, 'runs'));
  }

  /** A file or folder of the run. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** True when the folder holds a training run (its config.json). */
  static holdsRun(dir: string): boolean {
    return existsSync(join(dir, 'config.json'));
  }

  /** The rows written so far (kept ones too, after a resume). */
  get rows(): readonly MetricRow[] {
    return this.rowsWritten;
  }

  /**
   * Makes the folders, and reads state.json when `resume` (its absence is a fresh start).
   * A fresh start removes what an earlier attempt left (metrics, summary, plot, worker
   * log, episode runs); a resume drops the rows and episode runs after its checkpoint.
   */
  open(resume: boolean): TrainState | undefined {
    mkdirSync(this.path('checkpoints'), { recursive: true });
    mkdirSync(this.path('policies'), { recursive: true });
    const state = resume ? StateSchema.parse(readJson(this.path('state.json'))) : undefined;
    if (!state) {
      for (const name of ['metrics.jsonl', 'summary.json', 'learning-curve.svg', 'worker.log']) {
        rmSync(this.path(name), { force: true });
      }
      this.runs.clear();
      return undefined;
    }
    this.rowsWritten = this.readRows().filter((row) => row.type === 'sft' || row.step <= state.step);
    writeFileSync(
      this.path('metrics.jsonl'),
      this.rowsWritten.map((row) => JSON.stringify(row) + '\n').join(''),
    );
    this.runs.dropAfter(state.step);
    return state;
  }

  /**
   * Saves a checkpoint of `step` with `save` (the worker writes it), makes state.json name
   * it, and only then removes the checkpoints beyond the newest `keep`.
   */
  async checkpoint(step: number, keep: number, save: (path: string) => Promise<void>): Promise<void> {
    const previous = existsSync(this.path('state.json'))
      ? StateSchema.safeParse(readJson(this.path('state.json'))).data
      : undefined;
    const name = `checkpoints/step-${pad(step)}.pt`;
    await save(this.path(name));
    const kept = [...(previous?.checkpoints ?? []).filter((path) => path !== name), name];
    const dropped = kept.splice(0, Math.max(0, kept.length - keep));
    writeJsonAtomic(this.path('state.json'), {
      step,
      checkpoint: name,
      checkpoints: kept,
    } satisfies TrainState);
    // Only once state.json names the new checkpoint may older ones go.
    for (const path of dropped) rmSync(this.path(path), { force: true });
  }

  /** Appends a row to metrics.jsonl, redraws the curve (not for SFT rows) and reports it. */
  writeRow(row: MetricRow): void {
    this.rowsWritten.push(row);
    appendFileSync(this.path('metrics.jsonl'), JSON.stringify(row) + '\n');
    if (row.type !== 'sft')
      writeFileSync(
        this.path('learning-curve.svg'),
        learningCurveSvg(this.rowsWritten, 'paddock training: ' + basename(this.dir)),
      );
    this.onRow?.(row);
  }

  /** The folder of the policy exported at `step`. */
  policyDir(step: number): string {
    return this.path('policies', `step-${pad(step)}`);
  }

  private readRows(): MetricRow[] {
    const path = this.path('metrics.jsonl');
    if (!existsSync(path)) return [];
    const rows: MetricRow[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        rows.push(JSON.parse(line) as MetricRow);
      } catch {
        // A line cut short by a kill is dropped: its step is recomputed from the checkpoint.
      }
    }
    return rows;
  }
}
