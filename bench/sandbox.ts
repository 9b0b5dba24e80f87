/**
 * Docker sandbox benchmark, on the real engine, side by side on the same container:
 *  1. `exec('true')` through the Sandbox API (the long-lived shell), p50 / p99;
 *  2. the baseline: `docker exec <id> true` through the docker CLI, p50 / p99, and the
 *     ratio of the p50s; for reference, one engine exec per command through dockerode;
 *  3. create + start + first command on the base image, p50 / p99.
 * Prints a table and writes bench/results/sandbox.json; asserts nothing.
 * Run: node --import tsx bench/sandbox.ts
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';
import type { EnvironmentSpec } from '../harness/task.ts';
import {
  BASE_IMAGE,
  DockerSandboxProvider,
  baseImageExists,
  bootstrapBaseImage,
  checkEngine,
  dockerClient,
  reapContainers,
} from '../sandboxes/docker/index.ts';
import { ms, percentile, writeResults } from './stats.ts';

const API_CALLS = 500;
const CLI_CALLS = 40;
const ENGINE_EXEC_CALLS = 40;
const STARTS = 12;
const WARMUP = 30;
const RUN_ID = `bench-sandbox-${process.pid}`;

const run = promisify(execFile);
const spec: EnvironmentSpec = {
  image: BASE_IMAGE,
  cpus: 1,
  memoryMb: 512,
  pids: 256,
  network: false,
  env: {},
  files: [],
};

async function timeEach(count: number, action: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await action();
    times.push(performance.now() - started);
  }
  return times;
}

function summary(times: number[]): { p50: number; p99: number; n: number } {
  return { p50: percentile(times, 50), p99: percentile(times, 99), n: times.length };
}

const engine = await checkEngine();
if (!(await baseImageExists())) {
  console.log(`making ${BASE_IMAGE} first (about a minute)…`);
  await bootstrapBaseImage({ onProgress: (line) => console.log(`  ${line}`) });
}
const loadBefore = loadavg()[0] ?? 0;
const provider = new DockerSandboxProvider();

// 1 + 2: the same container for the API, the CLI and the dockerode exec.
const sandbox = await provider.start(spec, { labels: { runId: RUN_ID, episodeId: 'exec' } });
let api: number[];
let cli: number[];
let engineExec: number[];
try {
  await timeEach(WARMUP, () => sandbox.exec('true'));
  api = await timeEach(API_CALLS, () => sandbox.exec('true'));
  await run('docker', ['exec', sandbox.id, 'true']);
  cli = await timeEach(CLI_CALLS, () => run('docker', ['exec', sandbox.id, 'true']));
  const container = dockerClient().getContainer(sandbox.id);
  engineExec = await timeEach(ENGINE_EXEC_CALLS, async () => {
    const exec = await container.exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    await new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.resume();
    });
  });
} finally {
  await sandbox.close();
}

// 3: create + start + first command.
const starts = await timeEach(STARTS, async () => {
  const fresh = await provider.start(spec, { labels: { runId: RUN_ID, episodeId: 'start' } });
  await fresh.exec('true');
  void fresh.close(); // removal is not part of the figure; awaited below through the reaper
});
await provider.closeAll();
await reapContainers({ runId: RUN_ID });

const figures = {
  engine: engine.version,
  loadAverage1m: { before: loadBefore, after: loadavg()[0] ?? 0 },
  execTrueSandboxApi: summary(api),
  execTrueDockerCli: summary(cli),
  execTrueDockerodeExec: summary(engineExec),
  cliOverApiP50: percentile(cli, 50) / percentile(api, 50),
  createStartFirstCommand: summary(starts),
};

const rows: [string, { p50: number; p99: number; n: number }][] = [
  ['exec `true` — Sandbox API (long-lived shell)', figures.execTrueSandboxApi],
  ['exec `true` — `docker exec` CLI (baseline)', figures.execTrueDockerCli],
  ['exec `true` — one dockerode exec per command', figures.execTrueDockerodeExec],
  ['create + start + first command', figures.createStartFirstCommand],
];
console.log(`\nDocker sandbox (engine ${engine.version}; 1-min load ${loadBefore.toFixed(1)} before)`);
console.log(`${'measure'.padEnd(48)} ${'p50'.padStart(11)} ${'p99'.padStart(11)} ${'n'.padStart(5)}`);
for (const [name, row] of rows) {
  console.log(
    `${name.padEnd(48)} ${ms(row.p50).padStart(11)} ${ms(row.p99).padStart(11)} ${String(row.n).padStart(5)}`,
  );
}
console.log(`\nCLI p50 / API p50 = ${figures.cliOverApiP50.toFixed(0)}×`);
writeResults('sandbox', figures);
console.log('figures written to bench/results/sandbox.json');
