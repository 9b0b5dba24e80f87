/**
 * Opening a big run: the run index beside what reading the records does. On a synthetic
 * run (default 100,000 episodes, ~3.6 KB a record), each figure is taken in a fresh child
 * process so that its time and peak memory are its own:
 *
 *   baseline        RunStore.open + episodes() + summariseRun (what `paddock view` did)
 *   index: build    RunIndex.open with no sidecar (parses every record, writes the sidecar)
 *                   + summary() + the first page of episodes
 *   index: sidecar  the same with the sidecar in place (the second open)
 *   query page      a filtered, sorted page (after a sidecar open)
 *   text search     a case-insensitive search over every episode's text (after a sidecar open)
 *   record()        one episode's record, read from its line (after a sidecar open)
 *   after append    a sidecar open after one record was appended (the covered bytes are hashed
 *                   again, the tail indexed)
 *
 * Times are medians over the repeats (the baseline runs once); peak RSS is the child's
 * maxRSS, the Node process and tsx included (`floor` is that alone).
 *
 *   node --import tsx bench/view-scale.ts [episodes=100000] [repeats=3]
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ms, percentile, writeResults } from './stats.ts';
import { writeSyntheticRun } from './synthetic-run.ts';

/** One child's figures. */
interface Figures {
  /** The measured step, in ms. */
  ms: number;
  peakRssMb: number;
  detail?: string;
}

const mode = process.argv[2];
if (mode === '--child') {
  await child(process.argv[3]!, process.argv[4]!);
} else {
  await main(Number(process.argv[2] ?? 100_000), Number(process.argv[3] ?? 3));
}

/** Runs one measure in this process and prints its figures as a JSON line. */
async function child(measure: string, runDir: string): Promise<void> {
  const { RunIndex, RunStore, summariseRun } = await import('../harness/index.ts');
  const peak = (): number => process.resourceUsage().maxRSS / 1024;
  const started = performance.now();
  let detail = '';
  const report = (elapsed: number): void => {
    process.stdout.write(`${JSON.stringify({ ms: elapsed, peakRssMb: peak(), detail } satisfies Figures)}\n`);
  };
  switch (measure) {
    case 'floor':
      report(0);
      return;
    case 'baseline': {
      const store = RunStore.open(join(runDir, '..'), runDir.split('/').at(-1)!);
      const summary = summariseRun(store.episodes());
      detail = `${summary.total.episodes} episodes, mean reward ${summary.total.meanReward.toFixed(4)}`;
      report(performance.now() - started);
      return;
    }
    case 'build':
    case 'sidecar':
    case 'after-append': {
      const index = RunIndex.open(runDir);
      const summary = index.summary();
      const page = await index.query({ limit: 100 });
      detail = `${summary.total.episodes} episodes, mean reward ${summary.total.meanReward.toFixed(4)}, page of ${page.entries.length}`;
      report(performance.now() - started);
      return;
    }
    case 'query':
    case 'search':
    case 'record': {
      const index = RunIndex.open(runDir);
      const from = performance.now();
      if (measure === 'query') {
        const page = await index.query({
          status: ['completed', 'limit'],
          minReward: 0.5,
          sort: 'reward',
          descending: true,
          offset: 500,
          limit: 100,
        });
        detail = `${page.total} match, page of ${page.entries.length}`;
      } else if (measure === 'search') {
        const page = await index.query({ text: 'EXIT CODE 1', limit: 100 });
        detail = `${page.total} match, ${(page.searched!.bytes / 2 ** 20).toFixed(0)} MB read, largest read ${(page.searched!.largestReadBytes / 2 ** 20).toFixed(1)} MB`;
      } else {
        const entry = index.latest()[Math.floor(index.latest().length / 2)]!;
        const record = index.record(entry.episodeId);
        detail = `${record.episodeId}, ${entry.length} bytes`;
      }
      report(performance.now() - from);
      return;
    }
    default:
      throw new Error(`unknown measure ${measure}`);
  }
}

function measureOnce(measure: string, runDir: string): Figures {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'view-scale.ts'), '--child', measure, runDir],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (result.status !== 0) throw new Error(`${measure} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Figures;
}

/** The median time and the largest peak RSS over `repeats` children. */
function measure(name: string, runDir: string, repeats: number, before?: () => void): Figures {
  const runs: Figures[] = [];
  for (let n = 0; n < repeats; n++) {
    before?.();
    runs.push(measureOnce(name, runDir));
  }
  return {
    ms: percentile(
      runs.map((run) => run.ms),
      50,
    ),
    peakRssMb: Math.max(...runs.map((run) => run.peakRssMb)),
    ...(runs[0]!.detail ? { detail: runs[0]!.detail } : {}),
  };
}

async function main(episodes: number, repeats: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'paddock-view-scale-'));
  try {
    const started = performance.now();
    const run = await writeSyntheticRun(root, { episodes, seed: 1, index: false });
    console.log(
      `synthetic run: ${episodes.toLocaleString('en-US')} episodes, ${run.records.toLocaleString('en-US')} records, ` +
        `${(run.bytes / 2 ** 20).toFixed(0)} MB, written in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    const sidecar = join(run.dir, 'episodes.index');
    const rows: [string, Figures][] = [];
    rows.push(['floor (node + tsx + harness)', measure('floor', run.dir, 1)]);
    rows.push(['baseline: RunStore.episodes() + summariseRun', measure('baseline', run.dir, 1)]);
    rows.push([
      'index: first open (build)',
      measure('build', run.dir, repeats, () => rmSync(sidecar, { force: true })),
    ]);
    const sidecarBytes = statSync(sidecar).size;
    rows.push(['index: second open (sidecar)', measure('sidecar', run.dir, repeats)]);
    rows.push(['index: query page', measure('query', run.dir, repeats)]);
    rows.push(['index: text search', measure('search', run.dir, repeats)]);
    rows.push(['index: record() of one episode', measure('record', run.dir, repeats)]);
    // The last: it changes the run. One record appended (a copy of the first line, a re-run).
    const first = readFileSync(join(run.dir, 'episodes.jsonl'))
      .subarray(0, 64 * 1024)
      .toString('utf8')
      .split('\n')[0]!;
    rows.push([
      'index: open after an append',
      measure('after-append', run.dir, repeats, () => {
        const record = JSON.parse(first) as { attempt: number };
        record.attempt += 1;
        appendFileSync(join(run.dir, 'episodes.jsonl'), `${JSON.stringify(record)}\n`);
      }),
    ]);
    const baseline = rows[1]![1];
    const width = Math.max(...rows.map(([label]) => label.length));
    console.log(
      `\n${'step'.padEnd(width)}  ${'time'.padStart(10)}  ${'peak RSS'.padStart(9)}  time ÷ baseline`,
    );
    for (const [label, figures] of rows) {
      const ratio =
        label.startsWith('baseline') || label.startsWith('floor')
          ? ''
          : (figures.ms / baseline.ms).toFixed(4).padStart(15);
      console.log(
        `${label.padEnd(width)}  ${ms(figures.ms).padStart(10)}  ${`${figures.peakRssMb.toFixed(0)} MB`.padStart(9)}  ${ratio}` +
          `${figures.detail ? `  (${figures.detail})` : ''}`,
      );
    }
    console.log(`sidecar: ${(sidecarBytes / 2 ** 20).toFixed(1)} MB`);
    writeResults('view-scale', {
      episodes,
      records: run.records,
      recordBytes: run.bytes,
      sidecarBytes,
      repeats,
      steps: Object.fromEntries(rows.map(([label, figures]) => [label, figures])),
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
