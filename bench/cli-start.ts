/**
 * How fast the `paddock` command starts: the wall time of a child process for `node -e 0`
 * (the floor), `paddock --help`, `paddock --version` and `paddock tasks list
 * tasks/examples`, side by side in one run (the commands take turns, so a machine getting
 * busier slows them alike), median and p90 of `--runs` runs after 2 warm-ups each. The
 * target is `paddock --help` ≤ 300 ms on an idle machine (issue #16).
 *
 * A further row, `start path (stand-in)`, runs what `--help` needs and nothing of
 * cli/main.ts: bin/paddock.js's freshness check, commander, and the built-in plug-ins put
 * together (dist/cli/paddock.js), printing a help text that lists the agent specs and
 * sandbox kinds. It tells the cost of the start path apart from the command's own.
 *
 * Then, for reference, how long each heavy dependency (and each entry of dist/) takes to
 * import alone, in a fresh process (median of 5, measured inside it), and how long the
 * build-stamp check takes.
 *
 *   node --import tsx bench/cli-start.ts [--runs N]      (N ≥ 15; default 15)
 *
 * dist/ is built first (bin/build.js; instant when up to date), since bin/paddock.js runs
 * the sources through tsx when it is not. Figures go to bench/results/cli-start.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ms, percentile, writeResults } from './stats.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin/paddock.js');
const WARMUPS = 2;
const TARGET_HELP_MS = 300;

function parseRuns(argv: readonly string[]): number {
  const at = argv.indexOf('--runs');
  if (at < 0) return 15;
  const runs = Number(argv[at + 1]);
  if (!Number.isInteger(runs) || runs < 15)
    throw new Error(`--runs: expected an integer ≥ 15, got ${argv[at + 1]}`);
  return runs;
}

/** The minimal start path of `--help`, as a script (see the module comment). */
function standInScript(): string {
  const url = (file: string): string => JSON.stringify(pathToFileURL(join(ROOT, file)).href);
  return `
import { distIsFresh } from ${url('bin/build-stamp.js')};
if (!distIsFresh(${JSON.stringify(ROOT)})) throw new Error('dist/ is not fresh');
const { Command } = await import(${JSON.stringify(import.meta.resolve('commander'))});
const { createPaddock } = await import(${url('dist/cli/paddock.js')});
const paddock = createPaddock();
const program = new Command('paddock')
  .description('run LLM agents on tasks in sandboxes')
  .option('--agent <spec>', 'one of: ' + paddock.agentSpecs.join(', '))
  .option('--sandbox <kind>', 'one of: ' + paddock.sandboxKinds.map((kind) => kind.name).join(', '));
program.command('run <tasks...>').description('evaluate an agent');
program.command('tasks').description('list and validate tasks');
program.outputHelp();
`;
}

interface Row {
  name: string;
  args: string[];
}

interface Figures {
  medianMs: number;
  p90Ms: number;
  minMs: number;
  failures: number;
  firstError?: string;
}

/** Wall time of one child process, in ms; its exit status and stderr. */
function timeOnce(args: readonly string[]): { ms: number; status: number | null; stderr: string } {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms: elapsed, status: result.status, stderr: result.stderr };
}

/** Runs every row in turn, `WARMUPS` + `runs` times. */
function measure(rows: readonly Row[], runs: number): Map<string, Figures> {
  const times = new Map<string, number[]>(rows.map((row) => [row.name, []]));
  const failures = new Map<string, { count: number; first?: string }>(
    rows.map((row) => [row.name, { count: 0 }]),
  );
  for (let round = 0; round < WARMUPS + runs; round++) {
    for (const row of rows) {
      const { ms: elapsed, status, stderr } = timeOnce(row.args);
      if (status !== 0) {
        const failed = failures.get(row.name)!;
        failed.count++;
        failed.first ??= `exit ${status}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
      }
      if (round >= WARMUPS) times.get(row.name)!.push(elapsed);
    }
  }
  return new Map(
    rows.map((row) => {
      const values = times.get(row.name)!;
      const failed = failures.get(row.name)!;
      return [
        row.name,
        {
          medianMs: percentile(values, 50),
          p90Ms: percentile(values, 90),
          minMs: Math.min(...values),
          failures: failed.count,
          ...(failed.first ? { firstError: failed.first } : {}),
        },
      ];
    }),
  );
}

/** Milliseconds to import `specifier` in a fresh process, measured inside it; median of `runs`. */
function importTime(specifier: string, runs = 5): number | string {
  const code = `const t = performance.now(); await import(${JSON.stringify(specifier)}); process.stdout.write(String(performance.now() - t));`;
  const values: number[] = [];
  for (let i = 0; i < runs; i++) {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (result.status !== 0) return `failed: ${result.stderr.trim().split('\n')[0]}`;
    values.push(Number(result.stdout));
  }
  return percentile(values, 50);
}

/** Milliseconds of the build-stamp check (bin/build-stamp.js distIsFresh), in-process; median of 20. */
function stampCheckTime(): number {
  const code = `
const { distIsFresh } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'bin/build-stamp.js')).href)});
const values = [];
for (let i = 0; i < 20; i++) { const t = performance.now(); distIsFresh(${JSON.stringify(ROOT)}); values.push(performance.now() - t); }
values.sort((a, b) => a - b);
process.stdout.write(String(values[10]));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  return Number(result.stdout);
}

const runs = parseRuns(process.argv.slice(2));
const build = spawnSync(process.execPath, [join(ROOT, 'bin/build.js')], { cwd: ROOT, encoding: 'utf8' });
if (build.status !== 0) {
  console.log(
    `bin/build.js exited ${build.status}: bin/paddock.js runs the sources, so the figures are not those of dist/`,
  );
  console.log(build.stderr.trim().split('\n').slice(-5).join('\n'));
}

const { distIsFresh } = (await import(pathToFileURL(join(ROOT, 'bin/build-stamp.js')).href)) as {
  distIsFresh: (root: string) => boolean;
};
if (!distIsFresh(ROOT))
  console.log('dist/ is not fresh (a source changed since the build): the figures are those of the sources');

const scratch = mkdtempSync(join(tmpdir(), 'paddock-cli-start-'));
try {
  const standIn = join(scratch, 'stand-in.mjs');
  writeFileSync(standIn, standInScript());
  const rows: Row[] = [
    { name: 'node -e 0', args: ['-e', '0'] },
    { name: 'start path (stand-in)', args: [standIn] },
    { name: 'paddock --help', args: [BIN, '--help'] },
    { name: 'paddock --version', args: [BIN, '--version'] },
    { name: 'paddock tasks list tasks/examples', args: [BIN, 'tasks', 'list', 'tasks/examples'] },
  ];
  console.log(
    `wall time of a child process, ${runs} runs after ${WARMUPS} warm-ups each, commands taking turns:\n`,
  );
  const figures = measure(rows, runs);
  const floor = figures.get('node -e 0')!.medianMs;
  const width = Math.max(...rows.map((row) => row.name.length));
  console.log(
    `${'command'.padEnd(width)}  ${'median'.padStart(9)}  ${'p90'.padStart(9)}  ${'min'.padStart(9)}  over node -e 0`,
  );
  for (const row of rows) {
    const f = figures.get(row.name)!;
    const over = row.name === 'node -e 0' ? '' : `+${ms(f.medianMs - floor)}`;
    console.log(
      `${row.name.padEnd(width)}  ${ms(f.medianMs).padStart(9)}  ${ms(f.p90Ms).padStart(9)}  ${ms(f.minMs).padStart(9)}  ${over}` +
        (f.failures > 0 ? `   (${f.failures} runs failed; ${f.firstError})` : ''),
    );
  }
  const help = figures.get('paddock --help')!.medianMs;
  if (!distIsFresh(ROOT))
    console.log(
      '\ndist/ went stale during the run (a source changed): some figures are those of the sources',
    );
  console.log(
    `\npaddock --help: median ${ms(help)} (target ≤ ${TARGET_HELP_MS} ms on an idle machine: ${help <= TARGET_HELP_MS ? 'met' : 'not met'} here)`,
  );

  console.log('\nimport time of each module alone, in a fresh process (median of 5, measured inside it):\n');
  const modules = [
    'commander',
    'zod',
    'yaml',
    'smol-toml',
    'tar-stream',
    'tsx/esm/api',
    'dockerode',
    'playwright-core',
    '@modelcontextprotocol/sdk/client/index.js',
    'onnxruntime-node',
    './dist/cli/paddock.js',
    './dist/harness/index.js',
    './dist/tasks/index.js',
    './dist/cli/index.js',
  ];
  const imports: Record<string, number | string> = {};
  for (const specifier of modules) {
    const time = importTime(specifier);
    imports[specifier] = time;
    console.log(`${specifier.padEnd(44)} ${typeof time === 'number' ? ms(time) : time}`);
  }
  const stampMs = stampCheckTime();
  console.log(`${'build-stamp check (distIsFresh)'.padEnd(44)} ${ms(stampMs)}`);

  writeResults('cli-start', {
    runs,
    warmups: WARMUPS,
    commands: Object.fromEntries(figures),
    importMs: imports,
    stampCheckMs: stampMs,
    targetHelpMs: TARGET_HELP_MS,
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
