/**
 * The `paddock` command. A thin shell over the library: parse flags, call a function,
 * print the result. Exit codes: 0 ok; 1 the run itself failed (infrastructure errors
 * after retries, engine down, the store could not record: a full disk); 2 invalid input
 * (task files, flags, agent spec); 130 interrupted by SIGINT, 143 by SIGTERM.
 *
 * SIGINT and SIGTERM abort the one root AbortController: the run stops, episodes not
 * finished are not recorded (resume runs them), and containers are removed. A second
 * signal exits at once; `paddock sandbox gc` then removes what is left.
 */
import { parseArgs } from 'node:util';
import {
  ERROR_CODES,
  PaddockError,
  RunStore,
  isPaddockError,
  formatSummary,
  describeError,
  type EpisodeRecord,
} from '../harness/index.ts';
import { exportRun } from '../export/index.ts';
import { bootstrapBaseImage, checkEngine, collectGarbage } from '../sandboxes/docker/index.ts';
import { formatTaskProblem } from '../tasks/index.ts';
import { DEFAULT_RUNS_DIR, evaluate, resume, storedRunPlugins, type EvaluationResult } from './evaluate.ts';
import {
  DEFAULT_SANDBOX_KIND,
  createPaddock,
  loadPluginModules,
  pluginModuleReference,
  type Paddock,
} from './paddock.ts';
import { serve } from './serve.ts';
import { resumeTrainingRun, trainFromConfig } from './train.ts';
import { episodeOutcome, viewRun } from './view.ts';

const usage = (paddock: Paddock): string => `paddock — run LLM agents on tasks in sandboxes

Usage:
  paddock run <tasks…> --agent <spec> [--concurrency N] [--epochs N] [--seed N]
                [--task GLOB]… [--tag TAG]… [--limit N] [--skip-invalid]
                [--max-turns N|none] [--max-attempts N] [--image-map IMAGE=LOCAL]…
                [--allow-env NAME]… [--sandbox KIND] [--plugin MODULE]… [--runs-dir DIR] [--json]
  paddock resume <run-id> [--retry-errors] [--skip-invalid] [--max-turns N|none]
                [--allow-env NAME]… [--plugin MODULE]… [--runs-dir DIR] [--json]
  paddock view [run-id] [--episode ID] [--runs-dir DIR]
  paddock export <run-id> --format jsonl|parquet --out FILE [--runs-dir DIR]
      [--compression snappy|gzip|zstd|uncompressed] [--row-group-size N] [--token-columns auto|always|never]
  paddock train <train.yaml> | paddock train --resume <dir>   [--sandbox KIND] [--plugin MODULE]…
  paddock mcp serve <task> [--transport stdio|http] [--port N] [--host H] [--runs-dir DIR]
                [--sessions N] [--max-concurrent-sessions N] [--sandbox KIND] [--plugin MODULE]…
  paddock tasks validate <tasks…> [--task GLOB]… [--tag TAG]… [--allow-env NAME]… [--plugin MODULE]…
  paddock tasks list <tasks…> [--task GLOB]… [--tag TAG]… [--limit N] [--allow-env NAME]… [--plugin MODULE]… [--json]
  paddock images bootstrap [--force]
  paddock sandbox gc [--run RUN-ID] [--all]

Agents: ${paddock.agentSpecs.join(', ')}
Sandboxes (--sandbox, default ${DEFAULT_SANDBOX_KIND}): ${paddock.sandboxKinds.map((kind) => kind.name).join(', ')}
Plug-ins (--plugin MODULE, repeatable): a module whose default export is a plug-in
                 (see harness/plugin.ts) adds sandbox kinds, agent kinds, task-file
                 sections, tool providers and rewards; a run stores its modules, and
                 resume loads them again

Task ids are <suite>/<path in the suite>, the suite being the folder given (a task
folder given alone counts as in its parent folder): tasks/examples and
tasks/examples/fix-bug both give examples/fix-bug, from any working directory.

--task GLOB      run the tasks whose id matches (a pattern without / matches the task's
                 name: --task 'fix-*'; with /, the whole id: --task 'examples/*'); repeatable
--tag TAG        run the tasks tagged TAG (metadata tags, keywords, category; Harbor's
                 [task] keywords); repeatable; with --task, both must match
--limit N        run the first N tasks left (in id order; dataset rows count one each)
--skip-invalid   report each invalid task (and each the agent cannot play) and run the rest
--max-turns N    turn limit of every task (none: no turn limit; the time limit holds);
                 default: the task file's (task.yaml 30, task.toml none)
--allow-env NAME lets task files read the host variable NAME (as \${NAME} in an env
                 table); no host variable reaches a sandbox otherwise
`;

const INPUT_ERRORS = new Set(['TASK_INVALID', 'TASK_NOT_FOUND', 'CONFIG_INVALID', 'RUN_NOT_FOUND']);

class UsageError extends Error {}

type Flags = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

function parse(
  args: string[],
  options: Flags,
): { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

function integer(value: unknown, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < min)
    throw new UsageError(`--${flag} expects an integer ≥ ${min}, got "${JSON.stringify(value)}"`);
  return number;
}

function imageMap(values: unknown): Record<string, string> {
  const map: Record<string, string> = {};
  for (const entry of (values as string[] | undefined) ?? []) {
    const [from, to] = entry.split('=');
    if (!from || !to) throw new UsageError(`--image-map expects IMAGE=LOCAL_IMAGE, got "${entry}"`);
    map[from] = to;
  }
  return map;
}

/** The names given with `--allow-env` (repeatable): host variables task files may read. */
function allowEnv(values: unknown): string[] {
  const names = (values as string[] | undefined) ?? [];
  for (const name of names)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new UsageError(`--allow-env expects a variable name (letters, digits, _), got "${name}"`);
  return names;
}

/** `--max-turns N` or `--max-turns none`. */
function maxTurns(value: unknown): number | 'none' | undefined {
  if (value === 'none') return 'none';
  return integer(value, 'max-turns');
}

/** The `--plugin` modules (repeatable), as the run stores them. */
function pluginModules(values: unknown): string[] {
  return ((values as string[] | undefined) ?? []).map((specifier) => pluginModuleReference(specifier));
}

/** The built-in plug-ins and those of `modules`. */
async function paddockWith(modules: readonly string[]): Promise<Paddock> {
  return createPaddock({ plugins: await loadPluginModules(modules) });
}

/** The flags every command that runs episodes or loads tasks takes for plug-ins. */
const PLUGIN_FLAGS: Flags = {
  sandbox: { type: 'string' },
  plugin: { type: 'string', multiple: true },
};

/** The selection flags (`--task`, `--tag`, `--limit`). */
function selection(values: Record<string, unknown>): {
  names?: string[];
  tags?: string[];
  limit?: number;
} {
  const names = (values.task as string[] | undefined) ?? [];
  const tags = (values.tag as string[] | undefined) ?? [];
  for (const [flag, list] of [
    ['task', names],
    ['tag', tags],
  ] as const)
    if (list.some((entry) => entry.trim() === ''))
      throw new UsageError(`--${flag} expects a non-empty value`);
  const limit = integer(values.limit, 'limit');
  return {
    ...(names.length > 0 ? { names } : {}),
    ...(tags.length > 0 ? { tags } : {}),
    ...(limit === undefined ? {} : { limit }),
  };
}

/** Prints each task skipped by --skip-invalid on stderr. */
function reportSkipped(problems: string[]): void {
  process.stderr.write(`paddock: skipping ${problems.length} problem(s) (--skip-invalid):\n`);
  for (const problem of problems) process.stderr.write(`  skipped: ${problem}\n`);
}

/** Prints one line per recorded episode on stderr. */
function progress(total: () => number): (episode: EpisodeRecord) => void {
  let done = 0;
  return (episode) => {
    done++;
    process.stderr.write(
      `[${done}/${total()}] ${episode.episodeId} ${episodeOutcome(episode)} ` +
        `${(episode.durationMs / 1000).toFixed(1)}s\n`,
    );
  };
}

function report(result: EvaluationResult, json: boolean): number {
  const failed = result.episodes.filter((episode) => episode.status === 'infra-error').length;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ runId: result.runId, dir: result.dir, summary: result.summary }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`\nrun ${result.runId} (${result.dir})\n${formatSummary(result.summary)}\n`);
    if (failed > 0)
      process.stdout.write(
        `${failed} episode(s) failed on infrastructure errors; paddock resume ${result.runId} --retry-errors runs them again\n`,
      );
  }
  return failed > 0 ? 1 : 0;
}

/** Exit codes of the signals that interrupt a command (128 + signal number). */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
/** The signal that interrupted the command, if one did. */
let interruptedBy: keyof typeof SIGNAL_EXIT_CODES | undefined;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // The root controller: every long operation takes its signal.
  const controller = new AbortController();
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.on(name, () => {
      if (interruptedBy !== undefined) {
        // A second signal: stop now. Containers still running are orphans for `paddock sandbox gc`.
        process.stderr.write(
          `paddock: interrupted again; exiting now (paddock sandbox gc removes what is left)\n`,
        );
        process.exit(SIGNAL_EXIT_CODES[name]);
      }
      interruptedBy = name;
      process.stderr.write(`paddock: ${name}: stopping; unfinished episodes are not recorded\n`);
      controller.abort(new PaddockError(ERROR_CODES.ABORTED, `interrupted by ${name}`));
    });
  }

  switch (command) {
    case 'run': {
      const { values, positionals } = parse(rest, {
        agent: { type: 'string' },
        concurrency: { type: 'string' },
        epochs: { type: 'string' },
        seed: { type: 'string' },
        'max-attempts': { type: 'string' },
        'max-turns': { type: 'string' },
        task: { type: 'string', multiple: true },
        tag: { type: 'string', multiple: true },
        limit: { type: 'string' },
        'skip-invalid': { type: 'boolean' },
        'image-map': { type: 'string', multiple: true },
        'allow-env': { type: 'string', multiple: true },
        'runs-dir': { type: 'string' },
        json: { type: 'boolean' },
        ...PLUGIN_FLAGS,
      });
      const allowed = allowEnv(values['allow-env']);
      const modules = pluginModules(values.plugin);
      const paddock = await paddockWith(modules);
      if (positionals.length === 0)
        throw new UsageError('paddock run needs at least one task folder or suite');
      if (typeof values.agent !== 'string')
        throw new UsageError(`paddock run needs --agent (${paddock.agentSpecs.join(', ')})`);
      const sandbox = typeof values.sandbox === 'string' ? values.sandbox : DEFAULT_SANDBOX_KIND;
      let total = 0;
      const concurrency = integer(values.concurrency, 'concurrency');
      const epochs = integer(values.epochs, 'epochs');
      const seed = integer(values.seed, 'seed', 0);
      const maxAttempts = integer(values['max-attempts'], 'max-attempts');
      const turns = maxTurns(values['max-turns']);
      const select = selection(values);
      await paddock.sandboxKind(sandbox).check?.({ signal: controller.signal });
      const result = await evaluate({
        paddock,
        sandbox,
        ...(modules.length > 0 ? { pluginModules: modules } : {}),
        taskPaths: positionals,
        agent: values.agent,
        imageMap: imageMap(values['image-map']),
        signal: controller.signal,
        onStart: (run) => {
          total = run.missing;
          process.stderr.write(`run ${run.runId}: ${run.missing} episode(s)\n`);
        },
        onRecorded: progress(() => total),
        onWarning: (message) => process.stderr.write(`paddock: warning: ${message}\n`),
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(epochs === undefined ? {} : { epochs }),
        ...(seed === undefined ? {} : { seed }),
        ...(maxAttempts === undefined ? {} : { maxAttempts }),
        ...(turns === undefined ? {} : { maxTurns: turns }),
        ...(Object.keys(select).length > 0 ? { select } : {}),
        ...(values['skip-invalid'] === true ? { skipInvalid: true } : {}),
        onSkipped: reportSkipped,
        ...(allowed.length > 0 ? { allowEnv: allowed } : {}),
        ...(typeof values['runs-dir'] === 'string' ? { runsDir: values['runs-dir'] } : {}),
      });
      return report(result, values.json === true);
    }
    case 'resume': {
      const { values, positionals } = parse(rest, {
        'runs-dir': { type: 'string' },
        'retry-errors': { type: 'boolean' },
        'skip-invalid': { type: 'boolean' },
        'max-turns': { type: 'string' },
        'allow-env': { type: 'string', multiple: true },
        json: { type: 'boolean' },
        plugin: { type: 'string', multiple: true },
      });
      const allowed = allowEnv(values['allow-env']);
      const turns = maxTurns(values['max-turns']);
      const [runId] = positionals;
      if (!runId) throw new UsageError('paddock resume needs a run id');
      const runsDir = typeof values['runs-dir'] === 'string' ? values['runs-dir'] : DEFAULT_RUNS_DIR;
      const stored = storedRunPlugins(runsDir, runId);
      const paddock = await paddockWith([
        ...new Set([...stored.pluginModules, ...pluginModules(values.plugin)]),
      ]);
      await paddock.sandboxKind(stored.sandbox).check?.({ signal: controller.signal });
      let total = 0;
      const result = await resume(runId, {
        paddock,
        signal: controller.signal,
        retryErrors: values['retry-errors'] === true,
        onStart: (run) => {
          total = run.missing;
          if (run.tornTail)
            process.stderr.write(
              `run ${run.runId}: a torn last record (${run.tornTail.bytes} bytes, left by a crash) was cut off` +
                `${run.tornTail.savedTo ? ` and kept in ${run.tornTail.savedTo}` : ''}; its episode runs again\n`,
            );
          process.stderr.write(`run ${run.runId}: ${run.missing} episode(s) to run\n`);
        },
        onRecorded: progress(() => total),
        onWarning: (message) => process.stderr.write(`paddock: warning: ${message}\n`),
        onSkipped: reportSkipped,
        ...(turns === undefined ? {} : { maxTurns: turns }),
        ...(values['skip-invalid'] === true ? { skipInvalid: true } : {}),
        ...(allowed.length > 0 ? { allowEnv: allowed } : {}),
        ...(typeof values['runs-dir'] === 'string' ? { runsDir: values['runs-dir'] } : {}),
      });
      return report(result, values.json === true);
    }
    case 'view': {
      const { values, positionals } = parse(rest, {
        'runs-dir': { type: 'string' },
        episode: { type: 'string' },
      });
      process.stdout.write(
        viewRun({
          runsDir: typeof values['runs-dir'] === 'string' ? values['runs-dir'] : DEFAULT_RUNS_DIR,
          ...(positionals[0] ? { runId: positionals[0] } : {}),
          ...(typeof values.episode === 'string' ? { episodeId: values.episode } : {}),
        }),
      );
      return 0;
    }
    case 'export': {
      const { values, positionals } = parse(rest, {
        format: { type: 'string' },
        out: { type: 'string' },
        'runs-dir': { type: 'string' },
        compression: { type: 'string' },
        'row-group-size': { type: 'string' },
        'token-columns': { type: 'string' },
      });
      const [runId] = positionals;
      if (!runId) throw new UsageError('paddock export needs a run id');
      if (values.format !== 'jsonl' && values.format !== 'parquet')
        throw new UsageError('--format must be jsonl or parquet');
      if (typeof values.out !== 'string') throw new UsageError('paddock export needs --out FILE');
      const compression = values.compression;
      if (
        compression !== undefined &&
        compression !== 'snappy' &&
        compression !== 'gzip' &&
        compression !== 'zstd' &&
        compression !== 'uncompressed'
      )
        throw new UsageError('--compression must be snappy, gzip, zstd or uncompressed');
      const rowGroupSize =
        values['row-group-size'] === undefined ? undefined : Number(values['row-group-size']);
      if (rowGroupSize !== undefined && !(Number.isInteger(rowGroupSize) && rowGroupSize > 0))
        throw new UsageError('--row-group-size must be a positive integer');
      const tokenColumnsFlag = values['token-columns'] ?? 'auto';
      if (tokenColumnsFlag !== 'auto' && tokenColumnsFlag !== 'always' && tokenColumnsFlag !== 'never')
        throw new UsageError('--token-columns must be auto, always or never');
      const runsDir = typeof values['runs-dir'] === 'string' ? values['runs-dir'] : DEFAULT_RUNS_DIR;
      const result = await exportRun(RunStore.open(runsDir, runId), {
        format: values.format,
        out: values.out,
        tokenColumns: tokenColumnsFlag === 'auto' ? 'auto' : tokenColumnsFlag === 'always',
        ...(compression === undefined ? {} : { compression }),
        ...(rowGroupSize === undefined ? {} : { rowGroupSize }),
      });
      process.stdout.write(`wrote ${result.rows} episode(s) to ${result.out}\n`);
      return 0;
    }
    case 'train': {
      const { values, positionals } = parse(rest, {
        resume: { type: 'string' },
        json: { type: 'boolean' },
        ...PLUGIN_FLAGS,
      });
      const log = (line: string): void => void process.stderr.write(`${line}\n`);
      const trainWith = {
        paddock: await paddockWith(pluginModules(values.plugin)),
        ...(typeof values.sandbox === 'string' ? { sandbox: values.sandbox } : {}),
        signal: controller.signal,
        log,
      };
      let result;
      if (typeof values.resume === 'string') {
        result = await resumeTrainingRun(values.resume, trainWith);
      } else {
        const [config] = positionals;
        if (!config) throw new UsageError('usage: paddock train <train.yaml> | paddock train --resume <dir>');
        result = await trainFromConfig(config, trainWith);
      }
      if (values.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        const success = (summary?: { success: number }): string =>
          summary ? summary.success.toFixed(3) : '-';
        process.stdout.write(
          `trained ${result.steps} step(s) in ${(result.wallMs / 1000).toFixed(0)} s — held-out success ` +
            `${success(result.before)} → ${success(result.after)}\npolicy: onnx:${result.policyDir}\n` +
            `episodes: paddock view --runs-dir ${result.runsDir}\n`,
        );
      }
      return 0;
    }
    case 'mcp': {
      const { values, positionals } = parse(rest, {
        transport: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'runs-dir': { type: 'string' },
        'image-map': { type: 'string', multiple: true },
        sessions: { type: 'string' },
        'max-concurrent-sessions': { type: 'string' },
        ...PLUGIN_FLAGS,
      });
      const [sub, taskPath] = positionals;
      if (sub !== 'serve' || !taskPath)
        throw new UsageError(
          'usage: paddock mcp serve <task> [--transport stdio|http] [--sessions N] [--max-concurrent-sessions N]',
        );
      const transport = values.transport ?? 'stdio';
      if (transport !== 'stdio' && transport !== 'http')
        throw new UsageError('--transport must be stdio or http');
      const port = integer(values.port, 'port', 0);
      const sessions = integer(values.sessions, 'sessions', 1);
      const concurrent = integer(values['max-concurrent-sessions'], 'max-concurrent-sessions', 1);
      // serve() checks the engine only when the task has an environment.
      // In stdio mode stdout carries the protocol, so everything else goes to stderr.
      const episode = await serve({
        paddock: await paddockWith(pluginModules(values.plugin)),
        ...(typeof values.sandbox === 'string' ? { sandbox: values.sandbox } : {}),
        taskPath,
        transport,
        imageMap: imageMap(values['image-map']),
        signal: controller.signal,
        onListening: ({ runId, url }) =>
          process.stderr.write(`paddock: serving run ${runId}${url ? ` at ${url}` : ' on stdio'}\n`),
        ...(port === undefined ? {} : { port }),
        ...(sessions === undefined ? {} : { sessions }),
        ...(concurrent === undefined ? {} : { maxConcurrentSessions: concurrent }),
        onEpisode: (recorded) =>
          process.stderr.write(
            `paddock: episode ${recorded.episodeId} ${recorded.status} reward=${recorded.reward.total.toFixed(3)}\n`,
          ),
        ...(typeof values.host === 'string' ? { host: values.host } : {}),
        ...(typeof values['runs-dir'] === 'string' ? { runsDir: values['runs-dir'] } : {}),
      });
      return episode.status === 'infra-error' ? 1 : 0;
    }
    case 'tasks': {
      const [sub, ...paths] = rest;
      const { values, positionals } = parse(paths, {
        json: { type: 'boolean' },
        task: { type: 'string', multiple: true },
        tag: { type: 'string', multiple: true },
        limit: { type: 'string' },
        'allow-env': { type: 'string', multiple: true },
        plugin: { type: 'string', multiple: true },
      });
      if ((sub !== 'validate' && sub !== 'list') || positionals.length === 0)
        throw new UsageError('usage: paddock tasks validate|list <tasks…>');
      const select = selection(values);
      const paddock = await paddockWith(pluginModules(values.plugin));
      const { tasks, problems } = await paddock.validateSuite(positionals, {
        allowEnv: allowEnv(values['allow-env']),
        ...(Object.keys(select).length > 0 ? { select } : {}),
      });
      if (sub === 'list') {
        if (values.json === true) process.stdout.write(`${JSON.stringify(tasks, null, 2)}\n`);
        else
          for (const task of tasks)
            process.stdout.write(
              `${task.id}\t${task.format}\t${task.environment?.image ?? task.environment?.build?.dockerfile ?? '-'}\n`,
            );
      } else {
        for (const problem of problems) process.stderr.write(`${formatTaskProblem(problem)}\n`);
        process.stdout.write(`${tasks.length} task(s) valid, ${problems.length} problem(s)\n`);
      }
      return problems.length > 0 ? 2 : 0;
    }
    case 'images': {
      const { values, positionals } = parse(rest, { force: { type: 'boolean' } });
      if (positionals[0] !== 'bootstrap') throw new UsageError('usage: paddock images bootstrap [--force]');
      await checkEngine();
      const result = await bootstrapBaseImage({
        force: values.force === true,
        onProgress: (line: string) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    }
    case 'sandbox': {
      const { values, positionals } = parse(rest, { run: { type: 'string' }, all: { type: 'boolean' } });
      if (positionals[0] !== 'gc') throw new UsageError('usage: paddock sandbox gc [--run RUN-ID] [--all]');
      await checkEngine();
      const report = await collectGarbage({
        ...(typeof values.run === 'string' ? { runId: values.run } : {}),
        ...(values.all === true ? { all: true } : {}),
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
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage(createPaddock()));
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write(`paddock: ${error.message}\n\n${usage(createPaddock())}`);
    process.exitCode = 2;
  } else if (isPaddockError(error) && error.code === 'ABORTED' && interruptedBy !== undefined) {
    process.stderr.write(`paddock: interrupted by ${interruptedBy}; nothing unfinished was recorded\n`);
    process.exitCode = SIGNAL_EXIT_CODES[interruptedBy];
  } else if (isPaddockError(error)) {
    process.stderr.write(`paddock: ${error.message}\n`);
    process.exitCode = error.code === 'ABORTED' ? 130 : INPUT_ERRORS.has(error.code) ? 2 : 1;
  } else {
    process.stderr.write(
      `paddock: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
// A command that failed or was interrupted has cleaned up what it owns; should anything
// still hold the event loop (a hung connection), it must not keep the process alive.
if (process.exitCode !== 0) setTimeout(() => process.exit(), 5_000).unref();
