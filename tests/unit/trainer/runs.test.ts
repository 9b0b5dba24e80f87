/**
 * A training run's episode runs (trainers/rl/runs.ts): a staged step is written as the
 * records the trainer decided on, in plan order, with what the staging run kept; a resume
 * drops the runs after its checkpoint and nothing before.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunStore, type PlannedEpisode } from '../../../harness/index.ts';
import { TRAINING_RUN_IDS, TrainingRuns } from '../../../trainers/rl/runs.ts';
import { episode } from './helpers.ts';

const plan: PlannedEpisode[] = ['a', 'b', 'c'].map((id, epoch) => ({
  episodeId: id,
  taskId: 'task',
  epoch,
  seed: epoch,
}));
const config = { agent: 'onnx:train', purpose: 'rollout' as const, step: 1, training: '/out' };

describe('TrainingRuns', () => {
  it('writes a staged run with the final records in plan order, its events and kept files', async () => {
    const runs = new TrainingRuns(join(mkdtempSync(join(tmpdir(), 'paddock-runs-')), 'runs'));
    const runId = TRAINING_RUN_IDS.step(1);
    const staged = await runs.stage({ runId, plan, config }, async (store) => {
      const played = ['c', 'a', 'b'].map((id) => episode(id, [], 0));
      for (const record of played) store.appendEpisode(record);
      mkdirSync(store.episodeFiles('a', 1).dir, { recursive: true });
      writeFileSync(join(store.episodeFiles('a', 1).dir, 'report.xml'), '<ok/>');
      return played;
    });
    expect(RunStore.list(runs.dir)).toEqual([]);
    expect(staged.records.map((record) => record.episodeId)).toEqual(['c', 'a', 'b']);

    await staged.commit(
      staged.records.map((record) => ({ ...record, reward: { ...record.reward, total: 1 } })),
    );
    expect(RunStore.list(runs.dir)).toEqual([runId]);
    const store = RunStore.open(runs.dir, runId);
    expect(store.manifest.config).toEqual(config);
    expect(store.records().map((record) => [record.episodeId, record.reward.total])).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    expect(readFileSync(join(store.episodeFiles('a', 1).dir, 'report.xml'), 'utf8')).toBe('<ok/>');
    expect(existsSync(join(runs.dir, '.staging'))).toBe(false);
  });

  it('replaces a run of the same id rather than appending to it', async () => {
    const runs = new TrainingRuns(join(mkdtempSync(join(tmpdir(), 'paddock-runs-')), 'runs'));
    const runId = TRAINING_RUN_IDS.evaluation(2);
    for (const reward of [0, 1]) {
      await runs.record({ runId, plan, config: { ...config, purpose: 'evaluation' } }, async (store) => {
        const played = plan.map((planned) => episode(planned.episodeId, [], reward));
        for (const record of played) store.appendEpisode(record);
        return played;
      });
    }
    expect(
      RunStore.open(runs.dir, runId)
        .records()
        .map((record) => record.reward.total),
    ).toEqual([1, 1, 1]);
  });

  it('drops the runs of steps after a checkpoint and a staging run, keeping the rest', async () => {
    const runs = new TrainingRuns(join(mkdtempSync(join(tmpdir(), 'paddock-runs-')), 'runs'));
    const ids = [
      TRAINING_RUN_IDS.demonstrations,
      TRAINING_RUN_IDS.evaluation(0),
      TRAINING_RUN_IDS.step(2),
      TRAINING_RUN_IDS.evaluation(2, true),
      TRAINING_RUN_IDS.step(3),
      TRAINING_RUN_IDS.evaluation(3),
      TRAINING_RUN_IDS.evaluation(3, true),
    ];
    for (const runId of ids) await runs.record({ runId, plan: [], config }, async () => []);
    await runs.stage({ runId: TRAINING_RUN_IDS.step(4), plan: [], config }, async () => []);
    runs.dropAfter(2);
    expect(RunStore.list(runs.dir).sort()).toEqual([
      'demos',
      'eval-000000',
      'eval-000002-greedy',
      'step-000002',
    ]);
    expect(existsSync(join(runs.dir, '.staging'))).toBe(false);
  });
});
