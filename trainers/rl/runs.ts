/**
 * A training run's episodes in the run store. Every episode the trainer plays is a record
 * in a run of `<output>/runs/`, a normal RunStore root, so `paddock view <run-id> --runs-dir
 * <output>/runs` and `paddock export` read them like any other run:
 *
 *   demos                 the oracle's demonstrations (`sft.data: oracle`)
 *   step-000003           step 3's rollouts: the records the update trained on
 *   eval-000005           the held-out evaluation at step 5 (sampled)
 *   eval-000005-greedy    the same with greedy decoding (`eval.greedy`)
 *
 * A step's records are final only after its groups are scored (group rewards change
 * rewards and returns), so its rollouts are recorded in a staging run first
 * (`runs/.staging/step-N`, which `RunStore.list` does not see) and the run `step-N` is
 * then written with the scored records, in plan order, taking over the staging run's
 * event log and kept files. Runs of steps after a checkpoint are removed when the
 * training run resumes from it: a re-run step replaces its runs, never appends to them.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RunStore, type EpisodeRecord, type PlannedEpisode } from '../../harness/index.ts';

/** Zero-padded step numbers, so that runs sort by step. */
export const pad = (step: number): string => String(step).padStart(6, '0');

/** The run ids of a training run's episode runs. */
export const TRAINING_RUN_IDS = Object.freeze({
  demonstrations: 'demos',
  step: (step: number): string => `step-${pad(step)}`,
  evaluation: (step: number, greedy = false): string => `eval-${pad(step)}${greedy ? '-greedy' : ''}`,
});

const STEP_RUN = /^(?:step|eval)-(\d+)(?:-greedy)?$/;
const STAGING = '.staging';

/** What a training run's episode run records about itself (its manifest's `config`). */
export interface TrainingRunConfig extends Record<string, unknown> {
  /** The agent's name (what `paddock view` lists). */
  agent: string;
  /** What the episodes were for. */
  purpose: 'demonstrations' | 'rollout' | 'evaluation';
  /** The training step (the policy's), absent for demonstrations. */
  step?: number;
  /** The training run's output folder. */
  training: string;
}

/** A run's manifest, less what the store adds. */
export interface TrainingRunManifest {
  runId: string;
  config: TrainingRunConfig;
  plan: readonly PlannedEpisode[];
}

/** A staged run: the records played, and `commit` to write the final ones as the run. */
export interface StagedRun {
  /** The records `play` returned. */
  records: EpisodeRecord[];
  /**
   * Writes `records` (those the trainer uses, e.g. after group rewards) as the run, in
   * plan order, with the staging run's event log and kept files, and removes the staging run.
   */
  commit(records: readonly EpisodeRecord[]): Promise<void>;
}

/** The RunStore root of a training run (`<output>/runs`). */
export class TrainingRuns {
  constructor(
    /** The root: `paddock view --runs-dir <dir>`. */
    readonly dir: string,
  ) {}

  /** Removes every run (a fresh start). */
  clear(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Removes the runs of steps after `step` and any staging run a kill left (a resume from
   * the checkpoint of `step`: those steps run again).
   */
  dropAfter(step: number): void {
    rmSync(join(this.dir, STAGING), { recursive: true, force: true });
    if (!existsSync(this.dir)) return;
    for (const name of readdirSync(this.dir)) {
      const match = STEP_RUN.exec(name);
      if (match && Number(match[1]) > step) rmSync(join(this.dir, name), { recursive: true, force: true });
    }
  }

  /**
   * Creates run `manifest.runId` (replacing one an interrupted attempt left), opens it for
   * writing, and gives it to `play` (which passes it to `runEpisodes`); closes it after.
   */
  async record(
    manifest: TrainingRunManifest,
    play: (store: RunStore) => Promise<EpisodeRecord[]>,
  ): Promise<EpisodeRecord[]> {
    return withStore(this.create(this.dir, manifest), play);
  }

  /**
   * Plays into a staging run; the run itself is written by the returned `commit`, with
   * the records the trainer decided on.
   */
  async stage(
    manifest: TrainingRunManifest,
    play: (store: RunStore) => Promise<EpisodeRecord[]>,
  ): Promise<StagedRun> {
    const staging = this.create(join(this.dir, STAGING), manifest);
    const records = await withStore(staging, play);
    const commit = async (final: readonly EpisodeRecord[]): Promise<void> => {
      const byId = new Map(final.map((record) => [record.episodeId, record]));
      const ordered = manifest.plan.flatMap((planned) => byId.get(planned.episodeId) ?? []);
      const store = this.create(this.dir, manifest);
      await withStore(store, async () => {
        for (const record of ordered) store.appendEpisode(record);
        return ordered;
      });
      // Records name their kept files relative to the run folder: the folder moves whole.
      for (const name of ['events.jsonl', 'files']) {
        if (existsSync(join(staging.dir, name))) renameSync(join(staging.dir, name), join(store.dir, name));
      }
      // One step is staged at a time: nothing else is in the staging root.
      rmSync(join(this.dir, STAGING), { recursive: true, force: true });
    };
    return { records, commit };
  }

  private create(root: string, manifest: TrainingRunManifest): RunStore {
    rmSync(join(root, manifest.runId), { recursive: true, force: true });
    return RunStore.create(root, {
      runId: manifest.runId,
      createdAt: new Date().toISOString(),
      config: manifest.config,
      plan: [...manifest.plan],
    });
  }
}

async function withStore(
  store: RunStore,
  play: (store: RunStore) => Promise<EpisodeRecord[]>,
): Promise<EpisodeRecord[]> {
  store.openForWrite();
  try {
    return await play(store);
  } finally {
    await store.close();
  }
}
