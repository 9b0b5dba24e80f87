/**
 * The `paddock` command. A thin shell over the library: parse flags (commander, here),
 * call the command's function (commands.ts), print the result. Exit codes: 0 ok; 1 the run itself failed (infrastructure
 * errors after retries, engine down, the store could not record: a full disk); 2 invalid
 * input (task files, flags, agent spec, an unknown command or run); 130 interrupted by
 * SIGINT, 143 by SIGTERM (`paddock view` serving the web viewer ends with 0: a signal is
 * how it is meant to stop).
 *
 * It starts fast: at the top it imports only commander and what `--help` needs (the
 * composition root, to list the agent specs and sandbox kinds of the registered
 * plug-ins) and the commands (commands.ts), each of which imports its implementation
 * (evaluation, export, training, the MCP server, the Docker engine helpers, the viewer)
 * when it runs.
 *
 * SIGINT and SIGTERM abort the one root AbortController: the run stops, episodes not
 * finished are not recorded (resume runs them), and containers are removed. A second
 * signal exits at once; `paddock sandbox gc` then removes what is left.
 *
 * With `--json`, stdout carries only JSON: the result, or on any failure
 * `{"error": {"code", "message", "details"?}}` (the exit code stays). Progress and
 * messages go to stderr. A reader that stops reading stdout early (`paddock tasks list … |
 * head -1`) ends the command quietly with exit code 0.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
// Only the light part of the harness at the top: harness/index.ts loads zod.
import { ERROR_CODES, PaddockError, describeError, isPaddockError } from '../harness/errors.ts';
import {
  RUNS_DIR,
  SIGNAL_EXIT_CODES,
  UsageError,
  exportCommand,
  imagesBootstrapCommand,
  mcpServeCommand,
  packageInfo,
  resumeCommand,
  runCommand,
  sandboxGcCommand,
  tasksCommand,
  tasksInitCommand,
  trainCommand,
  viewCommand,
  type CommandState,
  type ExportFlags,
  type McpServeFlags,
  type ResumeFlags,
  type RunFlags,
  type TasksFlags,
  type TrainFlags,
  type ViewFlags,
} from './commands.ts';
import { DEFAULT_SANDBOX_KIND, createPaddock } from './paddock.ts';

/** The viewer's port and interface unless told otherwise (viewer/server.ts's defaults). */
const VIEWER_PORT = 7575;
const VIEWER_HOST = '127.0.0.1';

const INPUT_ERRORS = new Set(['TASK_INVALID', 'TASK_NOT_FOUND', 'CONFIG_INVALID', 'RUN_NOT_FOUND']);

// ---------------------------------------------------------------- option values

/** An argument parser for an integer ≥ `min`. */
function integer(min = 1): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(number) || number < min)
      throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
    return number;
  };
}

/** `--max-turns N` or `--max-turns none`. */
function maxTurns(value: string): number | 'none' {
  if (value === 'none') return 'none';
  return integer(1)(value);
}

/** A repeatable option's parser: each value checked by `check`, collected in a list. */
function repeatable(
  check: (value: string) => string = nonEmpty,
): (value: string, previous?: string[]) => string[] {
  return (value, previous) => [...(previous ?? []), check(value)];
}

function nonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('expected a non-empty value');
  return value;
}

/** `--allow-env NAME`: a variable name. */
function variableName(value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value))
    throw new InvalidArgumentError('expected a variable name (letters, digits, _)');
  return value;
}

/** `--image-map IMAGE=LOCAL` (repeatable), collected into one map. */
function imageMapEntry(value: string, previous?: Record<string, string>): Record<string, string> {
  const [from, to, ...rest] = value.split('=');
  if (!from || !to || rest.length > 0) throw new InvalidArgumentError('expected IMAGE=LOCAL_IMAGE');
  return { ...previous, [from]: to };
}

// ---------------------------------------------------------------- the parser

const EXIT_CODES = `Exit codes:
  0    done (a run completed, whatever the agent scored)
  1    the run failed: episodes still ended in infrastructure errors after their
       retries, the engine is down, or the store could not record (a full disk)
  2    invalid input: task files, flags, agent spec, an unknown command or run
  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM`;

/** Help text after a command's options: examples, one a line. */
function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}

function rootHelp(): string {
  const paddock = createPaddock();
  return `
Agents (--agent): ${paddock.agentSpecs.join(', ')}
Sandboxes (--sandbox, default ${DEFAULT_SANDBOX_KIND}): ${paddock.sandboxKinds.map((kind) => kind.name).join(', ')}
Plug-ins (--plugin MODULE, repeatable): a module whose default export is a plug-in
  (see harness/plugin.ts) adds sandbox kinds, agent kinds, task-file sections, tool
  providers and rewards; a run stores its modules, and resume loads them again.

Task ids are <suite>/<path in the suite>, the suite being the folder given (a task
folder given alone counts as in its parent folder): tasks/examples and
tasks/examples/fix-bug both give examples/fix-bug, from any working directory.

With --json, stdout carries only JSON, errors included: {"error": {"code", "message"}}.

${EXIT_CODES}
${examples(
  'paddock tasks init my-task && paddock run my-task --agent oracle',
  'paddock run tasks/examples --agent oracle --concurrency 4',
  'paddock view',
  'paddock run --help',
)}`;
}

/** Options every command that loads tasks takes for plug-ins. */
function pluginOption(): Option {
  return new Option(
    '--plugin <module>',
    'load a plug-in module (a path or a package name; repeatable)',
  ).argParser(repeatable());
}

function sandboxOption(withDefault: boolean): Option {
  const what = 'the sandbox kind tasks with an environment run in';
  return withDefault
    ? new Option('--sandbox <kind>', what).default(DEFAULT_SANDBOX_KIND)
    : new Option('--sandbox <kind>', `${what} (default: "${DEFAULT_SANDBOX_KIND}")`);
}

function runsDirOption(what = 'where runs are stored'): Option {
  return new Option('--runs-dir <dir>', what).default(RUNS_DIR);
}

function selectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--task <glob>',
        "only the tasks whose id matches (without /: the task's name, 'fix-*'; with /: the whole id, 'examples/*'); repeatable",
      ).argParser(repeatable()),
    )
    .addOption(
      new Option(
        '--tag <tag>',
        "only the tasks tagged TAG (metadata tags, keywords, category; Harbor's [task] keywords); repeatable; with --task both must match",
      ).argParser(repeatable()),
    )
    .addOption(new Option('--limit <n>', 'only the first N tasks left, in id order').argParser(integer(1)));
}

function allowEnvOption(): Option {
  return new Option(
    '--allow-env <name>',
    'let task files read the host variable NAME (as ${NAME}); none reaches a sandbox otherwise; repeatable',
  ).argParser(repeatable(variableName));
}

function maxTurnsOption(): Option {
  return new Option(
    '--max-turns <n|none>',
    "turn limit of every task (none: only the time limit holds) (default: the task file's: task.yaml 30, task.toml none)",
  ).argParser(maxTurns);
}

function skipInvalidOption(): Option {
  return new Option(
    '--skip-invalid',
    'report each invalid task (and each the agent cannot play) and run the rest',
  );
}

function imageMapOption(): Option {
  return new Option(
    '--image-map <image=local>',
    'run the local image LOCAL where a task names IMAGE (also FROM lines; PADDOCK_IMAGE_MAP=a=b,c=d); repeatable',
  ).argParser(imageMapEntry);
}

/** The `paddock` command line, its commands running with `state`; `exit` receives each command's exit code. */
function buildProgram(state: CommandState, exit: (code: number) => void): Command {
  const program = new Command('paddock')
    .description('run LLM agents on tasks in sandboxes, score them, record every turn, train on them')
    .version(packageInfo().version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureHelp({
      // A command of commands is listed with its own: `tasks validate|list|init`.
      subcommandTerm: (command) => {
        const subcommands = command.commands.map((sub) => sub.name());
        if (subcommands.length > 0) return `${command.name()} ${subcommands.join('|')}`;
        const args = command.registeredArguments.map((argument) => {
          const name = `${argument.name()}${argument.variadic ? '...' : ''}`;
          return argument.required ? `<${name}>` : `[${name}]`;
        });
        return [command.name(), command.options.length > 0 ? '[options]' : '', ...args]
          .filter(Boolean)
          .join(' ');
      },
    })
    .configureOutput({
      outputError: (text, write) => write(`paddock: ${text.replace(/^error: /, '')}`),
    })
    .addHelpText('after', rootHelp);
  // Subcommands copy the settings above when made with .command().
  const command = (parent: Command, nameAndArgs: string, description: string): Command => {
    const made = parent.command(nameAndArgs).description(description);
    const path = `${parent === program ? 'paddock' : `paddock ${parent.name()}`} ${made.name()}`;
    made.showHelpAfterError(`(${path} --help shows the options and an example)`);
    made.hook('preAction', () => {
      state.path = path;
    });
    return made;
  };
  program.showHelpAfterError('(paddock --help lists the commands)');
  const act =
    <A extends unknown[]>(handler: (...args: A) => Promise<number>) =>
    async (...args: A): Promise<void> =>
      exit(await handler(...args));

  const run = command(program, 'run', 'evaluate an agent on tasks: one run, stored under --runs-dir')
    .argument('<tasks...>', 'task folders or suites')
    .option('--agent <spec>', 'the agent (required): see "Agents" in paddock --help')
    .addOption(new Option('--concurrency <n>', 'episodes at once').default(4).argParser(integer(1)))
    .addOption(new Option('--epochs <n>', 'episodes per task').default(1).argParser(integer(1)))
    .addOption(new Option('--seed <n>', 'base seed of the run').default(0).argParser(integer(0)))
    .addOption(
      new Option('--max-attempts <n>', 'attempts per episode on infrastructure errors')
        .default(3)
        .argParser(integer(1)),
    )
    .addOption(maxTurnsOption());
  selectionOptions(run)
    .addOption(skipInvalidOption())
    .addOption(imageMapOption())
    .addOption(allowEnvOption())
    .addOption(sandboxOption(true))
    .addOption(pluginOption())
    .addOption(runsDirOption())
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText(
      'after',
      examples(
        'paddock run tasks/examples --agent oracle --concurrency 4',
        "paddock run tasks/examples --agent openai:gpt-4.1-mini --task 'fix-*' --epochs 4 --json",
      ),
    )
    .action(act((tasks: string[], flags: RunFlags) => runCommand(tasks, flags, state)));

  command(program, 'resume', 'finish a run after a crash or Ctrl-C: runs only what is missing')
    .argument('<run-id>', 'the run (a folder under --runs-dir)')
    .option('--retry-errors', 'also run again the episodes whose latest record is an error')
    .addOption(skipInvalidOption())
    .addOption(maxTurnsOption())
    .addOption(allowEnvOption())
    .addOption(pluginOption())
    .addOption(runsDirOption())
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', examples('paddock resume 20261203-101500-a3f9 --retry-errors'))
    .action(act((runId: string, flags: ResumeFlags) => resumeCommand(runId, flags, state)));

  command(program, 'view', 'see runs: a web viewer on loopback (its URL is printed), or text with --text')
    .argument('[run-id]', 'open this run (default: the list of runs)')
    .addOption(runsDirOption('the folder to show: runs, a training output, or a folder of either'))
    .addOption(
      new Option('--port <n>', "the web viewer's port (0: any free one)")
        .default(VIEWER_PORT)
        .argParser(integer(0)),
    )
    .addOption(
      new Option('--host <host>', 'the interface to listen on (beyond loopback exposes the runs)').default(
        VIEWER_HOST,
      ),
    )
    .option('--episode <id>', 'with a run id: one episode (its page; its transcript with --text)')
    .option('--text', 'print the run (or the list of runs) in the terminal instead')
    .option('--full', 'with --text: observations in full, not cut')
    .option('--json', "print the run's summary and episodes (or the list of runs) as JSON")
    .addOption(
      new Option('--offset <n>', 'with --text or --json: the first episode listed (0-based)')
        .default(0)
        .argParser(integer(0)),
    )
    .addOption(
      new Option('--limit <n>', 'with --text or --json: episodes listed at most (default: 100)').argParser(
        integer(1),
      ),
    )
    .addHelpText(
      'after',
      `\nThe web viewer runs until Ctrl-C or SIGTERM, then exits with 0.\n${examples(
        'paddock view',
        'paddock view 20261203-101500-a3f9 --port 0',
        'paddock view 20261203-101500-a3f9 --text --episode examples/fix-bug#0',
      )}`,
    )
    .action(act((runId: string | undefined, flags: ViewFlags) => viewCommand(runId, flags, state)));

  command(program, 'export', 'write a run as training rows (JSONL or Parquet)')
    .argument('<run-id>', 'the run')
    .addOption(
      new Option('--format <format>', 'the file format').choices(['jsonl', 'parquet']).makeOptionMandatory(),
    )
    .addOption(new Option('--out <file>', 'the file to write').makeOptionMandatory())
    .addOption(runsDirOption())
    .addOption(
      new Option('--compression <codec>', 'Parquet compression (default: snappy)').choices([
        'snappy',
        'gzip',
        'zstd',
        'uncompressed',
      ]),
    )
    .addOption(new Option('--row-group-size <n>', 'rows per Parquet row group').argParser(integer(1)))
    .addOption(
      new Option('--token-columns <when>', 'token id, mask and logprob columns')
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .addOption(
      new Option(
        '--images <how>',
        'images: copied to <out>.images/ and listed in an images column (files), or data: URLs (inline)',
      )
        .choices(['files', 'inline'])
        .default('files'),
    )
    .addHelpText(
      'after',
      examples('paddock export 20261203-101500-a3f9 --format parquet --out trajectories.parquet'),
    )
    .action(act((runId: string, flags: ExportFlags) => exportCommand(runId, flags)));

  command(program, 'train', 'train a policy: SFT warm start, then RL rounds of rollouts and updates')
    .argument('[config]', 'a train.yaml')
    .option('--resume <dir>', 'continue the training run in DIR from its last checkpoint')
    .addOption(new Option('--seed <n>', "the run's seed instead of the file's").argParser(integer(0)))
    .option('--output <dir>', "the output folder instead of the file's")
    .addOption(sandboxOption(false))
    .addOption(pluginOption())
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText(
      'after',
      examples(
        'paddock train tasks/toy/train.yaml',
        'paddock train tasks/toy/train.yaml --seed 2 --output runs/train-toy-2',
        'paddock train --resume runs/train-toy',
      ),
    )
    .action(act((config: string | undefined, flags: TrainFlags) => trainCommand(config, flags, state)));

  const mcp = command(program, 'mcp', 'serve a task to an external agent over MCP');
  command(mcp, 'serve', 'one live episode of a task served over MCP, scored when the session ends')
    .argument('<task>', 'a task folder')
    .addOption(new Option('--transport <kind>', 'how to serve').choices(['stdio', 'http']).default('stdio'))
    .addOption(new Option('--port <n>', 'with http: the port (0: any free one)').argParser(integer(0)))
    .option('--host <host>', 'with http: the interface to listen on')
    .option('--runs-dir <dir>', `where the episodes are stored (default: "${RUNS_DIR}")`)
    .addOption(new Option('--sessions <n>', 'with http: end after N sessions').argParser(integer(1)))
    .addOption(
      new Option('--max-concurrent-sessions <n>', 'with http: sessions at once').argParser(integer(1)),
    )
    .addOption(imageMapOption())
    .addOption(sandboxOption(false))
    .addOption(pluginOption())
    .addHelpText(
      'after',
      examples(
        'paddock mcp serve tasks/mcp/calc-order-total',
        'paddock mcp serve tasks/examples/fix-bug --transport http --port 8765 --sessions 4',
      ),
    )
    .action(act((task: string, flags: McpServeFlags) => mcpServeCommand(task, flags, state)));

  const tasks = command(program, 'tasks', 'check, list and make task folders');
  selectionOptions(
    command(tasks, 'validate', 'report every problem of every task file (exit 2 when there is one)').argument(
      '<tasks...>',
      'task folders or suites',
    ),
  )
    .addOption(allowEnvOption())
    .addOption(pluginOption())
    .option('--json', 'print the count and the problems as JSON on stdout')
    .addHelpText('after', examples('paddock tasks validate tasks/'))
    .action(act((paths: string[], flags: TasksFlags) => tasksCommand('validate', paths, flags)));
  selectionOptions(
    command(tasks, 'list', 'list the tasks a selection picks: id, format, image').argument(
      '<tasks...>',
      'task folders or suites',
    ),
  )
    .addOption(allowEnvOption())
    .addOption(pluginOption())
    .option('--json', 'print the loaded tasks as JSON')
    .addHelpText(
      'after',
      examples(
        'paddock tasks list tasks/examples --tag python',
        "paddock tasks list my-dataset --task 'git-*'",
      ),
    )
    .action(act((paths: string[], flags: TasksFlags) => tasksCommand('list', paths, flags)));
  command(tasks, 'init', 'make a new task folder that works: validate passes and the oracle scores 1')
    .argument('<dir>', 'the folder to make (new or empty)')
    .addOption(
      new Option('--format <format>', 'paddock task.yaml or Harbor task.toml')
        .choices(['native', 'harbor'])
        .default('native'),
    )
    .option('--name <name>', "the task's name (default: the folder's name)")
    .option('--json', 'print what was made as JSON')
    .addHelpText(
      'after',
      examples('paddock tasks init my-suite/sum-numbers', 'paddock tasks init my-task --format harbor'),
    )
    .action(
      act((dir: string, flags: { format: 'native' | 'harbor'; name?: string; json?: boolean }) =>
        tasksInitCommand(dir, flags),
      ),
    );

  const images = command(program, 'images', 'local images');
  command(images, 'bootstrap', 'make the local Debian base image paddock/base:bookworm with debootstrap')
    .option('--force', 'build it again even when it exists')
    .addHelpText('after', examples('paddock images bootstrap'))
    .action(act((flags: { force?: boolean }) => imagesBootstrapCommand(flags)));

  const sandbox = command(program, 'sandbox', 'sandbox housekeeping');
  command(sandbox, 'gc', 'remove the containers of runs that no live process holds')
    .option('--run <run-id>', 'only the containers of this run')
    .option('--all', "every paddock container, live runs' too")
    .addHelpText('after', examples('paddock sandbox gc', 'paddock sandbox gc --run 20261203-101500-a3f9'))
    .action(act((flags: { run?: string; all?: boolean }) => sandboxGcCommand(flags)));

  return program;
}

// ---------------------------------------------------------------- running it

/** The error as `--json` prints it. */
function errorJson(code: string, message: string, details?: Record<string, unknown>): string {
  return `${JSON.stringify({ error: { code, message, ...(details && Object.keys(details).length > 0 ? { details } : {}) } })}\n`;
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const state: CommandState = {
    controller: new AbortController(),
    stopping: 'stopping; unfinished episodes are not recorded',
    path: 'paddock',
  };
  // A reader that stopped reading (`| head`) had what it wanted: end quietly. `mcp serve`
  // keeps its own handling: its stdout is the protocol, and its episode must be closed.
  if (argv[0] !== 'mcp') {
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  }
  // Progress and messages whose reader went away are dropped; the command goes on.
  process.stderr.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.on(name, () => {
      if (state.interruptedBy !== undefined) {
        // A second signal: stop now. Containers still running are orphans for `paddock sandbox gc`.
        process.stderr.write(
          `paddock: interrupted again; exiting now (paddock sandbox gc removes what is left)\n`,
        );
        process.exit(SIGNAL_EXIT_CODES[name]);
      }
      state.interruptedBy = name;
      process.stderr.write(`paddock: ${name}: ${state.stopping}\n`);
      state.controller.abort(new PaddockError(ERROR_CODES.ABORTED, `interrupted by ${name}`));
    });
  }

  let code = 0;
  const program = buildProgram(state, (exitCode) => {
    code = exitCode;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      if (error.exitCode === 0) return 0;
      if (json)
        process.stdout.write(
          errorJson(ERROR_CODES.CONFIG_INVALID, error.message.replace(/^error: /, ''), {
            reason: error.code,
          }),
        );
      return 2;
    }
    if (error instanceof UsageError) {
      process.stderr.write(
        `paddock: ${error.message}\n(${state.path} --help shows the options and an example)\n`,
      );
      if (json) process.stdout.write(errorJson(ERROR_CODES.CONFIG_INVALID, error.message));
      return 2;
    }
    if (isPaddockError(error) && error.code === 'ABORTED' && state.interruptedBy !== undefined) {
      process.stderr.write(
        `paddock: interrupted by ${state.interruptedBy}; nothing unfinished was recorded\n`,
      );
      if (json) process.stdout.write(errorJson(error.code, error.message));
      return SIGNAL_EXIT_CODES[state.interruptedBy];
    }
    if (isPaddockError(error)) {
      process.stderr.write(`paddock: ${error.message}\n`);
      if (json) process.stdout.write(errorJson(error.code, error.message, error.details));
      return error.code === 'ABORTED' ? 130 : INPUT_ERRORS.has(error.code) ? 2 : 1;
    }
    process.stderr.write(
      `paddock: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    if (json) process.stdout.write(errorJson('UNEXPECTED', describeError(error)));
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
// A command that failed or was interrupted has cleaned up what it owns; should anything
// still hold the event loop (a hung connection), it must not keep the process alive.
if (process.exitCode !== 0) setTimeout(() => process.exit(), 5_000).unref();
