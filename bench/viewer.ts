/**
 * The web viewer on a big run: time to first paint of a run's episode table and the
 * server's peak memory, on a synthetic run of 100,000 episodes beside one of 1,000, and
 * beside what the old terminal view did (read every record, then summarise).
 *
 * Each run is written without its index sidecar. A first server (`serveViewer`, in a
 * child process) opens the run page in Chromium: it paints with the first slice of the
 * records indexed (a crashed writer's run), indexes the rest in the background and writes
 * the sidecar once it caught up (the benchmark waits for that). A second, fresh server then opens it as a run that
 * closed normally: first paint and a reload's, then through the API a text search, a
 * filtered and sorted page, and ten episode pages. First paint is navigation start → the
 * episode table in the DOM (the page's `episodes-rendered` mark); its server part is the
 * longest API call. Memory: the child's RSS when idle and its peak (VmHWM).
 *
 *   node --import tsx bench/viewer.ts [episodes=100000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

// Child mode: serve a root and print the URL.
if (process.argv[2] === '--serve') {
  const { serveViewer } = await import('../viewer/index.ts');
  const viewer = await serveViewer({ root: process.argv[3]!, port: 0 });
  process.stdout.write(`${viewer.url}\n`);
  process.on('SIGTERM', () => void viewer.close().then(() => process.exit(0)));
} else if (process.argv[2] === '--old-view') {
  // What `paddock view` did before the index: every record read and parsed, then summarised.
  const { RunStore, summariseRun } = await import('../harness/index.ts');
  const started = performance.now();
  const store = RunStore.open(process.argv[3]!, process.argv[4]!);
  const summary = summariseRun(store.episodes());
  const elapsed = performance.now() - started;
  process.stdout.write(
    `${JSON.stringify({ ms: elapsed, tasks: summary.tasks.length, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
  );
} else {
  await main();
}

/** Peak resident memory of a process, in MB (Linux: VmHWM). */
function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** Resident memory of a process now, in MB (Linux: VmRSS). */
function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function startServer(root: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/viewer.ts'), '--serve', root], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`the viewer exited with ${code}`)));
  });
  return { url, child };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

function sizeMb(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0) / 1e6;
}

async function main(): Promise<void> {
  // Imported here, not at the top: the server's child process (`--serve`) loads only the viewer.
  const { BrowserPool } = await import('../sandboxes/browser/index.ts');
  const { writeResults } = await import('./stats.ts');
  const { writeSyntheticRun } = await import('./synthetic-run.ts');
  const big = Number(process.argv[2] ?? 100_000);
  const small = 1_000;
  const dir = mkdtempSync(join(tmpdir(), 'paddock-bench-viewer-'));
  const pool = new BrowserPool({ spareContexts: 0 });
  const rows: Record<string, string | number>[] = [];
  try {
    const runs: { label: string; root: string; runId: string; episodes: number }[] = [];
    for (const episodes of [small, big]) {
      const root = join(dir, `run-${episodes}`);
      const started = performance.now();
      const written = await writeSyntheticRun(root, { episodes, seed: 1, index: false });
      console.log(`wrote ${episodes} episodes in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      runs.push({
        label: `${episodes.toLocaleString('en-US')} episodes`,
        root,
        runId: written.runId,
        episodes,
      });
    }
    const browser = await pool.browser();
    /** Opens the run page in a fresh browser context: first paint, and a reload's. */
    const visit = async (
      url: string,
      runId: string,
    ): Promise<{ first: number; reload: number; apiMs: number }> => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const paint = async (): Promise<number> => {
        await page.waitForFunction(() => performance.getEntriesByName('episodes-rendered').length > 0, null, {
          timeout: 300_000,
        });
        return page.evaluate(() => performance.getEntriesByName('episodes-rendered')[0]!.startTime);
      };
      await page.goto(`${url}#/run/${runId}`);
      const first = await paint();
      // The longest API call of the first visit: the server's part of the paint.
      const apiMs = await page.evaluate(() =>
        Math.max(
          ...performance
            .getEntriesByType('resource')
            .filter((entry) => entry.name.includes('/api/'))
            .map((entry) => entry.duration),
        ),
      );
      await page.reload();
      const reload = await paint();
      await context.close();
      return { first, reload, apiMs };
    };
    for (const run of runs) {
      const runId = encodeURIComponent(run.runId);
      // 1. A run without its index sidecar (as a crashed writer leaves it): the server indexes
      //    the records, and writes the sidecar.
      const builder = await startServer(run.root);
      const built = await visit(builder.url, runId);
      // The page paints with the records indexed so far; the rest is indexed in the
      // background, and the index saved once it caught up: wait for that.
      const catchUpStarted = performance.now();
      for (;;) {
        const view = (await (await fetch(new URL(`/api/runs/${runId}`, builder.url))).json()) as {
          indexing?: unknown;
        };
        if (!view.indexing) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const caughtUpMs = performance.now() - catchUpStarted;
      const buildPeak = peakRssMb(builder.child.pid!);
      await stop(builder.child);
      // 2. A fresh server on the run with its sidecar: what `paddock view` meets after a run
      //    closed normally (the store's writer leaves the sidecar), and every later time.
      const { url, child } = await startServer(run.root);
      const idle = rssMb(child.pid!);
      const fresh = await visit(url, runId);
      const timed = async (path: string): Promise<number> => {
        const started = performance.now();
        const response = await fetch(new URL(path, url));
        if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
        return performance.now() - started;
      };
      const searchMs = await timed(`/api/runs/${runId}/episodes?text=parser&limit=50`);
      const filterMs = await timed(
        `/api/runs/${runId}/episodes?status=completed&minReward=0.5&sort=reward&descending=true&limit=50`,
      );
      const middle = (await (
        await fetch(
          new URL(`/api/runs/${runId}/episodes?limit=10&offset=${Math.floor(run.episodes / 2)}`, url),
        )
      ).json()) as { entries: { episodeId: string }[] };
      const episodeMs: number[] = [];
      for (const entry of middle.entries)
        episodeMs.push(await timed(`/api/runs/${runId}/episodes/${encodeURIComponent(entry.episodeId)}`));
      const peak = peakRssMb(child.pid!);
      await stop(child);
      const row = {
        run: run.label,
        recordsMb: Number(sizeMb(join(run.root, run.runId)).toFixed(1)),
        firstPaintMs: Math.round(fresh.first),
        firstPaintApiMs: Math.round(fresh.apiMs),
        reloadPaintMs: Math.round(fresh.reload),
        noSidecarPaintMs: Math.round(built.first),
        noSidecarApiMs: Math.round(built.apiMs),
        noSidecarCaughtUpMs: Math.round(caughtUpMs),
        searchMs: Math.round(searchMs),
        filterSortMs: Math.round(filterMs),
        episodeMedianMs: Math.round(
          [...episodeMs].sort((a, b) => a - b)[Math.floor(episodeMs.length / 2)] ?? NaN,
        ),
        serverIdleRssMb: Math.round(idle),
        serverPeakRssMb: Math.round(peak),
        serverPeakRssNoSidecarMb: Math.round(buildPeak),
      };
      rows.push(row);
      console.log(row);
    }
    // Baseline: the old terminal view's approach on the big run, in a fresh process.
    const bigRun = runs.at(-1)!;
    const runDir = bigRun.runId;
    const old = await new Promise<string>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'bench/viewer.ts'), '--old-view', bigRun.root, runDir],
        {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.once('exit', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`old view exited with ${code}`)),
      );
    });
    const baseline = JSON.parse(old) as { ms: number; peakRssMb: number };
    const oldRow = {
      run: 'old view (whole file)',
      readAndSummariseMs: Math.round(baseline.ms),
      peakRssMb: Math.round(baseline.peakRssMb),
    };
    rows.push(oldRow);
    console.log(oldRow);
    console.log(
      '\nrun                      first paint (server part) / reload   no sidecar   server idle / peak RSS',
    );
    for (const row of rows) {
      if ('firstPaintMs' in row)
        console.log(
          `${String(row.run).padEnd(24)} ${String(row.firstPaintMs).padStart(6)} (${row.firstPaintApiMs}) / ${row.reloadPaintMs} ms` +
            `   ${String(row.noSidecarPaintMs).padStart(6)} ms (all indexed after ${row.noSidecarCaughtUpMs} ms more)   ${row.serverIdleRssMb} / ${row.serverPeakRssMb} MB (no sidecar ${row.serverPeakRssNoSidecarMb} MB)`,
        );
      else
        console.log(
          `${String(row.run).padEnd(24)} read and summarise ${row.readAndSummariseMs} ms, peak RSS ${row.peakRssMb} MB`,
        );
    }
    console.log('targets: first paint ≤ 2000 ms, server ≤ 300 MB on 100,000 episodes');
    writeResults('viewer', { rows });
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
