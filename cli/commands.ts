/**
 * What each `paddock` command does once its flags are parsed: the command-line side of
 * the library's functions (evaluate, resume, view, export, train, serve, tasks, images,
 * sandbox housekeeping). Each command imports its implementation when it runs, so that
 * `paddock --help` (cli/main.ts, the parser) loads none of them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
// Only the light part of the harness at the top: harness/index.ts loads zod.
import { ERROR_CODES, PaddockError } from '../harness/errors.ts';
import type { EvaluateOptions, EvaluationResult } from './evaluate.ts';
import type { RunProgress } from './progress.ts';

/** What `onStart` is told of a run about to run its episodes. */
type StartedRun = Parameters<NonNullable<EvaluateOptions['onStart']>>[0];
import { createPaddock, loadPluginModules, pluginModuleReference, type Paddock } from './paddock.ts';

/** Where runs are stored unless `--runs-dir` says otherwise (evaluate.ts's DEFAULT_RUNS_DIR). */
export const RUNS_DIR = 'runs';

/** The package's root folder and version, read from its package.json (sources and dist/ alike). */
export function packageInfo(): { root: string; version: string } {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (manifest.name === 'paddock')
        return { root: dir, version: typeof manifest.version === 'string' ? manifest.version : 'unknown' };
    }
    if (dirname(dir) === dir) return { root: dirname(import.meta.dirname), version: 'unknown' };
  }
}

/** Wrong input found after parsing: exit code 2, the message and a pointer to `--help`. */
export class UsageError extends Error {}

/** Exit codes of the signals that interrupt a command (128 + signal number). */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** What the running command shares with the signal handlers and the error report. */
export interface CommandState {
  /** The root controller: every long operation takes its signal. */
  controller: AbortController;
  /** The signal that interrupted the command, if one did. */
  interruptedBy?: keyof typeof SIGNAL_EXIT_CODES;
  /** What the first signal makes the command do, for the line printed on stderr. */
  stopping: string;
  /** The command running (`paddock tasks list`), for the pointer to its `--help`. */
  path: string;
}

/** The `--plugin` modules (repeatable), as the run stores them. */
function pluginModules(values: readonly string[] | undefined): string[] {
  return (values ?? []).map((specifier) => pluginModuleReference(specifier));
}

/** The built-in plug-ins and those of `modules`. */
async function paddockWith(modules: readonly string[]): Promise<Paddock> {
  return createPaddock({ plugins: await loadPluginModules(modules) });
}

export interface SelectionFlags {
  task?: string[];
  tag?: string[];
  limit?: number;
}

/** The selection flags (`--task`, `--tag`, `--limit`) as a `TaskSelection`. */
function selection(flags: SelectionFlags): { names?: string[]; tags?: string[]; limit?: number } {
  return {
    ...(flags.task?.length ? { names: flags.task } : {}),
    ...(flags.tag?.length ? { tags: flags.tag } : {}),
    ...(flags.limit === undefined ? {} : { limit: flags.limit }),
  };
}

// ---------------------------------------------------------------- output

/** Prints each task skipped by --skip-invalid. */
function reportSkipped(log: (line: string) => void): (problems: string[]) => void {
  return (problems) => {
    log(`paddock: skipping ${problems.length} problem(s) (--skip-invalid):`);
    for (const problem of problems) log(`  skipped: ${problem}`);
  };
}

/**
 * The hooks `run` and `resume` give the evaluation: `announce`'s lines when the run starts,
 * then `progress` counts each recorded episode; warnings, build steps and skipped tasks go
 * above its line.
 */
function progressHooks(
  progress: RunProgress,
  announce: (run: StartedRun) => string[],
): Pick<EvaluateOptions, 'onStart' | 'onRecorded' | 'onWarning' | 'onProgress' | 'onSkipped'> {
  const log = (line: string): void => progress.log(line);
  return {
    onStart: (run) => {
      for (const line of announce(run)) log(line);
      progress.start(run.missing);
    },
    onRecorded: (episode) => progress.recorded(episode),
    onWarning: (message) => log(`paddock: warning: ${message}`),
    onProgress: log,
    onSkipped: reportSkipped(log),
  };
}

/** How to open a run in the viewer, as a command to type here. */
function viewerHint(runId: string, runsDir: string): string {
  const { root } = packageInfo();
  // In a checkout `paddock` is not on the PATH; npx finds the package's own bin.
  const checkout = existsSync(join(root, 'cli/main.ts'));
  const dirFlag = runsDir === RUNS_DIR ? '' : ` --runs-dir ${runsDir}`;
  return checkout
    ? `npx paddock view ${runId}${dirFlag}   (or node bin/paddock.js view ${runId}${dirFlag})`
    : `paddock view ${runId}${dirFlag}`;
}

/** Prints a run's result; the exit code: 1 when episodes still ended in infrastructure errors. */
async function report(result: EvaluationResult, json: boolean, runsDir: string): Promise<number> {
  const failed = result.episodes.filter((episode) => episode.status === 'infra-error').length;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ runId: result.runId, dir: result.dir, summary: result.summary }, null, 2)}\n`,
    );
  } else {
    const { formatSummary } = await import('../harness/index.ts');
    process.stdout.write(`\nrun ${result.runId} (${result.dir})\n${formatSummary(result.summary)}\n`);
    if (failed > 0)
      process.stdout.write(
        `${failed} episode(s) failed on infrastructure errors; paddock resume ${result.runId} --retry-errors runs them again\n`,
      );
    process.stdout.write(
      `\nsee it in the browser: ${viewerHint(result.runId, runsDir)}\n` +
        `(add --text to read it in the terminal)\n`,
    );
  }
  return failed > 0 ? 1 : 0;
}

// ---------------------------------------------------------------- commands

export interface RunFlags extends SelectionFlags {
  agent?: string;
  concurrency: number;
  epochs: number;
  seed: number;
  maxAttempts: number;
  maxTurns?: number | 'none';
  skipInvalid?: boolean;
  imageMap?: Record<string, string>;
  allowEnv?: string[];
  sandbox: string;
  plugin?: string[];
  runsDir: string;
  json?: boolean;
}

export async function runCommand(taskPaths: string[], flags: RunFlags, state: CommandState): Promise<number> {
  const modules = pluginModules(flags.plugin);
  const paddock = await paddockWith(modules);
  if (flags.agent === undefined)
    throw new UsageError(`--agent is required: one of ${paddock.agentSpecs.join(', ')}`);
  const signal = state.controller.signal;
  await paddock.sandboxKind(flags.sandbox).check?.({ signal });
  const [{ evaluate }, { RunProgress }] = await Promise.all([
    import('./evaluate.ts'),
    import('./progress.ts'),
  ]);
  const progress = new RunProgress();
  const select = selection(flags);
  let result: EvaluationResult;
  try {
    result = await evaluate({
      paddock,
      sandbox: flags.sandbox,
      ...(modules.length > 0 ? { pluginModules: modules } : {}),
      taskPaths,
      agent: flags.agent,
      imageMap: flags.imageMap ?? {},
      signal,
      concurrency: flags.concurrency,
      epochs: flags.epochs,
      seed: flags.seed,
      maxAttempts: flags.maxAttempts,
      ...(flags.maxTurns === undefined ? {} : { maxTurns: flags.maxTurns }),
      ...(Object.keys(select).length > 0 ? { select } : {}),
      ...(flags.skipInvalid ? { skipInvalid: true } : {}),
      ...(flags.allowEnv?.length ? { allowEnv: flags.allowEnv } : {}),
      runsDir: flags.runsDir,
      ...progressHooks(progress, (run) => [`run ${run.runId}: ${run.missing} episode(s)`]),
    });
  } finally {
    progress.finish();
  }
  return report(result, flags.json === true, flags.runsDir);
}

export interface ResumeFlags {
  runsDir: string;
  retryErrors?: boolean;
  skipInvalid?: boolean;
  maxTurns?: number | 'none';
  allowEnv?: string[];
  plugin?: string[];
  json?: boolean;
}

export async function resumeCommand(runId: string, flags: ResumeFlags, state: CommandState): Promise<number> {
  const [{ resume, storedRunPlugins }, { RunProgress }] = await Promise.all([
    import('./evaluate.ts'),
    import('./progress.ts'),
  ]);
  const stored = storedRunPlugins(flags.runsDir, runId);
  const paddock = await paddockWith([...new Set([...stored.pluginModules, ...pluginModules(flags.plugin)])]);
  const signal = state.controller.signal;
  await paddock.sandboxKind(stored.sandbox).check?.({ signal });
  const progress = new RunProgress();
  let result: EvaluationResult;
  try {
    result = await resume(runId, {
      paddock,
      signal,
      retryErrors: flags.retryErrors === true,
      runsDir: flags.runsDir,
      ...(flags.maxTurns === undefined ? {} : { maxTurns: flags.maxTurns }),
      ...(flags.skipInvalid ? { skipInvalid: true } : {}),
      ...(flags.allowEnv?.length ? { allowEnv: flags.allowEnv } : {}),
      ...progressHooks(progress, (run) => [
        ...(run.tornTail
          ? [
              `run ${run.runId}: a torn last record (${run.tornTail.bytes} bytes, left by a crash) was cut off` +
                `${run.tornTail.savedTo ? ` and kept in ${run.tornTail.savedTo}` : ''}; its episode runs again`,
            ]
          : []),
        `run ${run.runId}: ${run.missing} episode(s) to run`,
      ]),
    });
  } finally {
    progress.finish();
  }
  return report(result, flags.json === true, flags.runsDir);
}

export interface ViewFlags {
  runsDir: string;
  offset?: number;
  limit?: number;
  episode?: string;
  text?: boolean;
  full?: boolean;
  json?: boolean;
  port: number;
  host: string;
}

export async function viewCommand(
  runId: string | undefined,
  flags: ViewFlags,
  state: CommandState,
): Promise<number> {
  const page = {
    ...(flags.offset === undefined ? {} : { offset: flags.offset }),
    ...(flags.limit === undefined ? {} : { limit: flags.limit }),
  };
  if (flags.text || flags.full) {
    const { viewRun } = await import('./view.ts');
    process.stdout.write(
      viewRun({
        runsDir: flags.runsDir,
        ...(runId ? { runId } : {}),
        ...(flags.episode ? { episodeId: flags.episode } : {}),
        ...(flags.full ? { full: true } : {}),
        ...page,
      }),
    );
    return 0;
  }
  if (flags.json) {
    if (flags.episode) throw new UsageError('--episode goes with --text or the web viewer, not --json');
    const { viewRunJson } = await import('./view.ts');
    const data = viewRunJson({ runsDir: flags.runsDir, ...(runId ? { runId } : {}), ...page });
    process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return 0;
  }
  if (flags.episode && !runId)
    throw new UsageError('--episode needs the run id: paddock view <run-id> --episode <id>');
  if (!existsSync(flags.runsDir))
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `no runs to show: ${flags.runsDir} does not exist (paddock run makes runs there; --runs-dir names another folder)`,
    );
  if (runId && !existsSync(join(flags.runsDir, runId)))
    throw new PaddockError(ERROR_CODES.RUN_NOT_FOUND, `no run ${runId} in ${flags.runsDir}`);
  const { serveViewer } = await import('../viewer/index.ts');
  state.stopping = 'stopping the viewer';
  const signal = state.controller.signal;
  const viewer = await serveViewer({
    root: flags.runsDir,
    host: flags.host,
    port: flags.port,
    signal,
    ...(runId ? { warmRun: runId } : {}),
  });
  const hash = runId
    ? `#/run/${encodeURIComponent(runId)}${flags.episode ? `/episode/${encodeURIComponent(flags.episode)}` : ''}`
    : '';
  process.stdout.write(`${viewer.url}${hash}\n`);
  process.stderr.write(`paddock: serving ${flags.runsDir} at ${viewer.url} until Ctrl-C\n`);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await viewer.close();
  return 0;
}

export interface ExportFlags {
  format: 'jsonl' | 'parquet';
  out: string;
  runsDir: string;
  compression?: 'snappy' | 'gzip' | 'zstd' | 'uncompressed';
  rowGroupSize?: number;
  tokenColumns: 'auto' | 'always' | 'never';
  /** Images copied beside the export (`files`, the default) or written as `data:` URLs (`inline`). */
  images?: 'files' | 'inline';
}

export async function exportCommand(runId: string, flags: ExportFlags): Promise<number> {
  const [{ exportRun }, { RunStore }] = await Promise.all([
    import('../export/index.ts'),
    import('../harness/index.ts'),
  ]);
  const result = await exportRun(RunStore.open(flags.runsDir, runId), {
    format: flags.format,
    out: flags.out,
    tokenColumns: flags.tokenColumns === 'auto' ? 'auto' : flags.tokenColumns === 'always',
    ...(flags.images === undefined ? {} : { images: flags.images }),
    ...(flags.compression === undefined ? {} : { compression: flags.compression }),
    ...(flags.rowGroupSize === undefined ? {} : { rowGroupSize: flags.rowGroupSize }),
  });
  process.stdout.write(`wrote ${result.rows} episode(s) to ${result.out}\n`);
  return 0;
}

export interface TrainFlags {
  resume?: string;
  seed?: number;
  output?: string;
  json?: boolean;
  sandbox?: string;
  plugin?: string[];
}

export async function trainCommand(
  config: string | undefined,
  flags: TrainFlags,
  state: CommandState,
): Promise<number> {
  if (!flags.resume && !config)
    throw new UsageError('a train.yaml is required, or --resume <dir> to continue a training run');
  if (flags.resume && config) throw new UsageError('give a train.yaml or --resume <dir>, not both');
  if (flags.resume && (flags.seed !== undefined || flags.output !== undefined))
    throw new UsageError('--seed and --output change a train.yaml; a resumed run keeps its own');
  const { resumeTrainingRun, trainFromConfig } = await import('./train.ts');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const trainWith = {
    paddock: await paddockWith(pluginModules(flags.plugin)),
    ...(flags.sandbox ? { sandbox: flags.sandbox } : {}),
    signal: state.controller.signal,
    log,
  };
  const result = flags.resume
    ? await resumeTrainingRun(flags.resume, trainWith)
    : await trainFromConfig(config!, trainWith, {
        ...(flags.seed === undefined ? {} : { seed: flags.seed }),
        ...(flags.output === undefined ? {} : { output: flags.output }),
      });
  if (flags.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    const success = (summary?: { success: number }): string => (summary ? summary.success.toFixed(3) : '-');
    process.stdout.write(
      `trained ${result.steps} step(s) in ${(result.wallMs / 1000).toFixed(0)} s — held-out success ` +
        `${success(result.before)} → ${success(result.after)}\n` +
        (result.policyDir ? `policy: onnx:${result.policyDir}\n` : '') +
        (result.modelDir ? `model (Hugging Face folder): ${result.modelDir}\n` : '') +
        `episodes: paddock view --runs-dir ${result.runsDir}\n`,
    );
  }
  return 0;
}

export interface McpServeFlags {
  transport: 'stdio' | 'http';
  port?: number;
  host?: string;
  runsDir?: string;
  imageMap?: Record<string, string>;
  sessions?: number;
  maxConcurrentSessions?: number;
  sandbox?: string;
  plugin?: string[];
}

export async function mcpServeCommand(
  taskPath: string,
  flags: McpServeFlags,
  state: CommandState,
): Promise<number> {
  const { serve } = await import('./serve.ts');
  // serve() checks the engine only when the task has an environment.
  // In stdio mode stdout carries the protocol, so everything else goes to stderr.
  const episode = await serve({
    paddock: await paddockWith(pluginModules(flags.plugin)),
    ...(flags.sandbox ? { sandbox: flags.sandbox } : {}),
    taskPath,
    transport: flags.transport,
    imageMap: flags.imageMap ?? {},
    signal: state.controller.signal,
    onListening: ({ runId, url }) =>
      process.stderr.write(`paddock: serving run ${runId}${url ? ` at ${url}` : ' on stdio'}\n`),
    ...(flags.port === undefined ? {} : { port: flags.port }),
    ...(flags.sessions === undefined ? {} : { sessions: flags.sessions }),
    ...(flags.maxConcurrentSessions === undefined
      ? {}
      : { maxConcurrentSessions: flags.maxConcurrentSessions }),
    onEpisode: (recorded) =>
      process.stderr.write(
        `paddock: episode ${recorded.episodeId} ${recorded.status} reward=${recorded.reward.total.toFixed(3)}\n`,
      ),
    ...(flags.host ? { host: flags.host } : {}),
    ...(flags.runsDir ? { runsDir: flags.runsDir } : {}),
  });
  return episode.status === 'infra-error' ? 1 : 0;
}

export interface TasksFlags extends SelectionFlags {
  json?: boolean;
  allowEnv?: string[];
  plugin?: string[];
}

export async function tasksCommand(
  sub: 'validate' | 'list',
  paths: string[],
  flags: TasksFlags,
): Promise<number> {
  const select = selection(flags);
  const paddock = await paddockWith(pluginModules(flags.plugin));
  const { tasks, problems } = await paddock.validateSuite(paths, {
    allowEnv: flags.allowEnv ?? [],
    ...(Object.keys(select).length > 0 ? { select } : {}),
  });
  if (sub === 'list') {
    if (flags.json === true) process.stdout.write(`${JSON.stringify(tasks, null, 2)}\n`);
    else
      process.stdout.write(
        tasks
          .map(
            (task) =>
              `${task.id}\t${task.format}\t${task.environment?.image ?? task.environment?.build?.dockerfile ?? '-'}\n`,
          )
          .join(''),
      );
  } else {
    const { formatTaskProblem } = await import('../tasks/index.ts');
    for (const problem of problems) process.stderr.write(`${formatTaskProblem(problem)}\n`);
    if (flags.json === true)
      process.stdout.write(`${JSON.stringify({ valid: tasks.length, problems }, null, 2)}\n`);
    else process.stdout.write(`${tasks.length} task(s) valid, ${problems.length} problem(s)\n`);
  }
  return problems.length > 0 ? 2 : 0;
}

export async function tasksInitCommand(
  dir: string,
  flags: { format: 'native' | 'harbor'; name?: string; json?: boolean },
): Promise<number> {
  const { initTask } = await import('./tasks-init.ts');
  const result = initTask({ dir, format: flags.format, ...(flags.name ? { name: flags.name } : {}) });
  if (flags.json === true) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    `created a ${result.format === 'native' ? 'paddock (task.yaml)' : 'Harbor (task.toml)'} task in ${dir}:\n` +
      result.files.map((file) => `  ${file}\n`).join('') +
      `next:\n  paddock tasks validate ${dir}\n  paddock run ${dir} --agent oracle     # the reference solution scores 1\n`,
  );
  return 0;
}

export async function imagesBootstrapCommand(flags: { force?: boolean }): Promise<number> {
  const { bootstrapBaseImage, checkEngine } = await import('../sandboxes/docker/index.ts');
  await checkEngine();
  const result = await bootstrapBaseImage({
    force: flags.force === true,
    onProgress: (line: string) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

export async function sandboxGcCommand(flags: { run?: string; all?: boolean }): Promise<number> {
  const { checkEngine, collectGarbage } = await import('../sandboxes/docker/index.ts');
  await checkEngine();
  const report = await collectGarbage({
    ...(flags.run ? { runId: flags.run } : {}),
    ...(flags.all ? { all: true } : {}),
  });
  for (const container of report.removed)
    process.stdout.write(`removed ${container.name} (${container.state}): ${container.reason}\n`);
  for (const container of report.kept)
    process.stdout.write(`kept ${container.name} (${container.state}): ${container.reason}\n`);
  process.stdout.write(
    `removed ${report.removed.length} container(s), kept ${report.kept.length}` +
      `${report.kept.length > 0 ? ' (--all removes those too)' : ''}\n`,
  );
  return 0;
}
