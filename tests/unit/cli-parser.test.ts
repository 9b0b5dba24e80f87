/**
 * The `paddock` command line as a user meets it before anything runs: help for every
 * command (its options, their defaults, an example), `--version`, suggestions for
 * mistyped commands and options, exit code 2 with a pointer to `--help` for wrong input,
 * `--json` errors on stdout, and a start path that loads no command's implementation.
 *
 * Each case runs the real command (bin/paddock.js) in a child process; none reaches the
 * Docker engine.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { modulesLoadedBy } from './cli/loaded-modules.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/paddock.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const scratch = mkdtempSync(join(tmpdir(), 'paddock-cli-parser-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function paddock(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, COLUMNS: '200' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Every command, the options its help must list, and the defaults it must state. */
const COMMANDS: { command: string[]; options: string[]; defaults: RegExp[] }[] = [
  {
    command: ['run'],
    options: [
      '--agent',
      '--concurrency',
      '--epochs',
      '--seed',
      '--max-attempts',
      '--max-turns',
      '--task',
      '--tag',
      '--limit',
      '--skip-invalid',
      '--image-map',
      '--allow-env',
      '--sandbox',
      '--plugin',
      '--runs-dir',
      '--json',
    ],
    defaults: [
      /--concurrency <n>.*\(default: 4\)/,
      /--epochs <n>.*\(default: 1\)/,
      /--seed <n>.*\(default: 0\)/,
      /--max-attempts <n>.*\(default: 3\)/,
      /--max-turns .*default: the task file's: task\.yaml 30, task\.toml none/,
      /--sandbox <kind>.*\(default: "docker"\)/,
      /--runs-dir <dir>.*\(default: "runs"\)/,
    ],
  },
  {
    command: ['resume'],
    options: [
      '--retry-errors',
      '--skip-invalid',
      '--max-turns',
      '--allow-env',
      '--plugin',
      '--runs-dir',
      '--json',
    ],
    defaults: [/--runs-dir <dir>.*\(default: "runs"\)/],
  },
  {
    command: ['view'],
    options: [
      '--runs-dir',
      '--port',
      '--host',
      '--episode',
      '--text',
      '--full',
      '--json',
      '--offset',
      '--limit',
    ],
    defaults: [/--port <n>.*\(default: 7575\)/, /--host <host>.*\(default: "127\.0\.0\.1"\)/],
  },
  {
    command: ['export'],
    options: [
      '--format',
      '--out',
      '--runs-dir',
      '--compression',
      '--row-group-size',
      '--token-columns',
      '--images',
    ],
    defaults: [
      /--token-columns .*default: "auto"/,
      /--compression .*default: snappy/,
      /--images .*default: "files"/,
    ],
  },
  {
    command: ['train'],
    options: ['--resume', '--sandbox', '--plugin', '--json'],
    defaults: [/--sandbox <kind>.*\(default: "docker"\)/],
  },
  {
    command: ['mcp', 'serve'],
    options: [
      '--transport',
      '--port',
      '--host',
      '--runs-dir',
      '--sessions',
      '--max-concurrent-sessions',
      '--image-map',
      '--sandbox',
      '--plugin',
    ],
    defaults: [/--transport .*default: "stdio"/, /--runs-dir .*\(default: "runs"\)/],
  },
  {
    command: ['tasks', 'validate'],
    options: ['--task', '--tag', '--limit', '--allow-env', '--plugin', '--json'],
    defaults: [],
  },
  {
    command: ['tasks', 'list'],
    options: ['--task', '--tag', '--limit', '--allow-env', '--plugin', '--json'],
    defaults: [],
  },
  {
    command: ['tasks', 'init'],
    options: ['--format', '--name', '--json'],
    defaults: [/--format .*default: "native"/, /--name .*default: the folder's name/],
  },
  { command: ['images', 'bootstrap'], options: ['--force'], defaults: [] },
  { command: ['sandbox', 'gc'], options: ['--run', '--all'], defaults: [] },
];

describe('paddock --help', { timeout: 60_000 }, () => {
  it('lists every command, the agent specs and sandbox kinds of the plug-ins, and the exit codes', () => {
    const help = paddock(['--help']);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    for (const name of ['run', 'resume', 'view', 'export', 'train', 'mcp serve', 'tasks validate|list|init'])
      expect(help.stdout).toMatch(new RegExp(`^  ${name.replace('|', '\\|')}\\b`, 'm'));
    expect(help.stdout).toMatch(/Agents \(--agent\): oracle, scripted:<file>, openai:<model>/);
    expect(help.stdout).toMatch(/Sandboxes \(--sandbox, default docker\): docker/);
    for (const code of ['0', '1', '2', '130']) expect(help.stdout).toMatch(new RegExp(`^  ${code}\\s`, 'm'));
    expect(help.stdout).toMatch(/143 by SIGTERM/);
  });

  it.each(COMMANDS)(
    '$command: its options, their defaults and an example',
    ({ command, options, defaults }) => {
      const help = paddock([...command, '--help']);
      expect(help.code, help.stderr).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: paddock ${command.join(' ')} `));
      for (const option of options) expect(help.stdout).toMatch(new RegExp(`^  ${option}\\b`, 'm'));
      // Help wraps long descriptions onto indented lines; read each option as one line.
      const flat = help.stdout.replace(/\n {8,}(?=\S)/g, ' ');
      for (const pattern of defaults) expect(flat).toMatch(pattern);
      expect(help.stdout).toMatch(new RegExp(`Examples?:\\n  \\$ paddock ${command[0]}`));
    },
  );

  it('answers `paddock help <command>` like `<command> --help`', () => {
    const help = paddock(['help', 'resume']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: paddock resume \[options\] <run-id>/);
  });
});

describe('paddock --version', { timeout: 60_000 }, () => {
  it.each([['--version'], ['-V']])('%s prints the version of package.json', (flag) => {
    const version = paddock([flag]);
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`${VERSION}\n`);
  });
});

describe('wrong input', { timeout: 60_000 }, () => {
  it('suggests the command meant, exits 2 and points at --help', () => {
    const wrong = paddock(['rnu', 'tasks/examples']);
    expect(wrong.code).toBe(2);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(/unknown command 'rnu'\n\(Did you mean run\?\)/);
    expect(wrong.stderr).toMatch(/paddock --help/);
  });

  it('suggests the subcommand and the option meant, pointing at that command’s --help', () => {
    const subcommand = paddock(['tasks', 'lsit', 'tasks/examples']);
    expect(subcommand.code).toBe(2);
    expect(subcommand.stderr).toMatch(/unknown command 'lsit'\n\(Did you mean list\?\)/);

    const option = paddock(['run', 'tasks/examples', '--agnet', 'oracle']);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/unknown option '--agnet'\n\(Did you mean --agent\?\)/);
    expect(option.stderr).toMatch(/\(paddock run --help shows the options and an example\)/);
  });

  it('refuses a bad value naming the option and what it expects, with exit code 2', () => {
    const value = paddock(['run', 'tasks/examples', '--agent', 'oracle', '--concurrency', 'four']);
    expect(value.code).toBe(2);
    expect(value.stderr).toMatch(/--concurrency <n>' argument 'four' is invalid\. expected an integer ≥ 1/);
    const choice = paddock(['export', 'some-run', '--format', 'csv', '--out', 'x.csv']);
    expect(choice.code).toBe(2);
    expect(choice.stderr).toMatch(/'csv' is invalid\. Allowed choices are jsonl, parquet/);
    const missing = paddock(['run', 'tasks/examples']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--agent is required: one of oracle, scripted:<file>/);
  });

  it('prints the help on stderr and exits 2 when no command is given', () => {
    const none = paddock([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^Usage: paddock /);
  });
});

describe('--json errors', { timeout: 60_000 }, () => {
  /** The one JSON object stdout holds. */
  function jsonError(stdout: string): { error: { code: string; message: string; details?: unknown } } {
    expect(stdout.trim().split('\n')).toHaveLength(1);
    return JSON.parse(stdout) as { error: { code: string; message: string; details?: unknown } };
  }

  it('prints a parsing error as JSON on stdout alone, keeping exit code 2', () => {
    const result = paddock(['run', 'tasks/examples', '--agent', 'oracle', '--limit', '0', '--json']);
    expect(result.code).toBe(2);
    const { error } = jsonError(result.stdout);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/--limit <n>' argument '0' is invalid/);
  });

  it('prints an error of the command itself as JSON with its code (an unknown run: RUN_NOT_FOUND, exit 2)', () => {
    const result = paddock(['resume', 'no-such-run', '--runs-dir', scratch, '--json']);
    expect(result.code).toBe(2);
    expect(jsonError(result.stdout).error.code).toBe('RUN_NOT_FOUND');
    expect(result.stderr).toMatch(/no-such-run/);
  });

  it('prints invalid task files as JSON with their details, exit 2', () => {
    const result = paddock([
      'run',
      'tests/fixtures/suites/invalid',
      '--agent',
      'oracle',
      '--runs-dir',
      scratch,
      '--json',
    ]);
    expect(result.code).toBe(2);
    const { error } = jsonError(result.stdout);
    expect(error.code).toBe('TASK_INVALID');
    expect(JSON.stringify(error.details)).toMatch(/max_turns/);
  });
});

describe('the start path of paddock --help', { timeout: 60_000 }, () => {
  it("imports no command's implementation and no heavy dependency", () => {
    // A module-loading hook logs every URL loaded (tests/unit/cli/loaded-modules.ts).
    const { urls, ...result } = modulesLoadedBy([join(ROOT, 'cli/main.ts'), '--help'], ROOT);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Usage: paddock/);
    expect(urls.some((url) => url.endsWith('/cli/main.ts'))).toBe(true);
    const root = `${pathToFileURL(ROOT).href}/`;
    const own = urls.filter((url) => url.startsWith(root) && !url.includes('/node_modules/'));
    const forbidden = [
      /^cli\/(evaluate|serve|train|view|progress|tasks-init)\.ts$/,
      /^(export|trainers|viewer|tasks)\//,
      /^sandboxes\/docker\/(?!plugin\.ts$)/,
    ];
    const heavy = [
      'dockerode',
      'playwright-core',
      '@modelcontextprotocol/sdk',
      'onnxruntime-node',
      'yaml',
      'zod',
    ];
    const loaded = [
      ...own
        .map((url) => url.slice(root.length))
        .filter((path) => forbidden.some((pattern) => pattern.test(path))),
      ...heavy.filter((name) => urls.some((url) => url.includes(`/node_modules/${name}/`))),
    ];
    expect(loaded).toEqual([]);
  });
});
