/**
 * `paddock tasks init`: scaffolds a task folder to start from — in paddock's format
 * (task.yaml) or Harbor's (task.toml) — with an instruction, an environment to build, a
 * verifier and a reference solution. The task it makes is complete and small: it passes
 * `paddock tasks validate` and the `oracle` agent scores 1 on it, so a new task starts
 * from something that works and is edited from there.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ERROR_CODES, PaddockError } from '../harness/index.ts';

/** The task-file formats `initTask` writes. */
export const TASK_INIT_FORMATS = ['native', 'harbor'] as const;

/** Options of `initTask`. */
export interface InitTaskOptions {
  /** The folder to make; it must not exist or be empty. */
  dir: string;
  /** `native` (task.yaml) or `harbor` (task.toml + instruction.md). @default 'native' */
  format?: (typeof TASK_INIT_FORMATS)[number];
  /**
   * The task's name: in task.yaml its `id` (when it differs from the folder's name), in
   * task.toml `[task] name`. Letters, digits, `.`, `_`, `-`. @default the folder's name
   */
  name?: string;
}

/** What `initTask` made. */
export interface InitTaskResult {
  /** The task folder, absolute. */
  dir: string;
  format: (typeof TASK_INIT_FORMATS)[number];
  name: string;
  /** The files written, relative to `dir`, in order. */
  files: string[];
}

const NAME = /^[A-Za-z0-9._-]+$/;

/** The numbers the environment ships; the answer is their sum. */
const NUMBERS = [12, 7, 30, 1, 50];

const INSTRUCTION = `The file \`/app/numbers.txt\` holds one integer per line. Write their sum, as a
plain number followed by a newline, into \`/app/answer.txt\`.
`;

const DOCKERFILE = `# The agent's sandbox: what the task starts from. paddock/base:bookworm is the local
# Debian image (\`paddock images bootstrap\`); registry images need --image-map.
FROM paddock/base:bookworm
WORKDIR /app
COPY numbers.txt /app/numbers.txt
`;

const TEST_SH = `#!/bin/bash
# The verifier: uploaded to /tests only after the agent stopped, run as root. It writes
# the reward (a number from 0 to 1) to /logs/verifier/reward.txt; its exit code does not
# count. The expected sum is computed here, from a copy of the input the agent cannot
# have changed.
mkdir -p /logs/verifier
expected=$(awk '{ sum += $1 } END { print sum }' /tests/numbers.txt)
if [ "$(cat /app/answer.txt 2>/dev/null)" = "$expected" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo "expected $expected in /app/answer.txt" >&2
  echo 0 > /logs/verifier/reward.txt
fi
exit 0
`;

const SOLVE_SH = `#!/bin/bash
# The reference solution: what \`--agent oracle\` runs in the sandbox.
set -euo pipefail
awk '{ sum += $1 } END { print sum }' /app/numbers.txt > /app/answer.txt
`;

function taskYaml(name: string, folderName: string): string {
  return `# A paddock task: tasks/README.md in the paddock repository says what every field means.
${name === folderName ? '' : `id: ${name}\n`}# The prompt is instruction.md beside this file (or an \`instruction:\` key here).
environment:
  workdir: /app          # built from environment/Dockerfile
  memory_mb: 512
limits:
  max_turns: 30
  timeout_sec: 600
verifier:
  timeout_sec: 60
metadata:
  tags: [example]
  difficulty: easy
`;
}

function taskToml(name: string): string {
  return `# A task in Harbor's format: task.toml, instruction.md, environment/, tests/test.sh,
# solution/solve.sh. paddock loads it as it is; so does Harbor.
version = "1.0"

[task]
name = "${name}"
keywords = ["example"]

[metadata]
difficulty = "easy"

[verifier]
timeout_sec = 60.0

[agent]
timeout_sec = 600.0

[environment]
build_timeout_sec = 300.0
cpus = 1
memory_mb = 512
allow_internet = false
workdir = "/app"
`;
}

/**
 * Writes a new task folder at `options.dir` (made when missing).
 * @throws PaddockError CONFIG_INVALID when the folder exists and is not empty (or is a
 *   file), or when the name or format is not one it can write.
 */
export function initTask(options: InitTaskOptions): InitTaskResult {
  const dir = resolve(options.dir);
  const format = options.format ?? 'native';
  if (!TASK_INIT_FORMATS.includes(format))
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `--format must be ${TASK_INIT_FORMATS.join(' or ')}, got "${String(format)}"`,
    );
  const folderName = basename(dir);
  const name = options.name ?? folderName;
  if (!NAME.test(name))
    throw new PaddockError(
      ERROR_CODES.CONFIG_INVALID,
      `a task name is letters, digits, ".", "_" and "-", got "${name}"` +
        (options.name === undefined ? ' (the folder name; --name gives another)' : ''),
    );
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory())
      throw new PaddockError(ERROR_CODES.CONFIG_INVALID, `${options.dir} is a file, not a folder`);
    const entries = readdirSync(dir);
    if (entries.length > 0)
      throw new PaddockError(
        ERROR_CODES.CONFIG_INVALID,
        `${options.dir} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}: ` +
          `${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); ` +
          `tasks init writes only into a new or empty folder`,
        { details: { dir } },
      );
  }
  const numbers = `${NUMBERS.join('\n')}\n`;
  const files: [string, string, boolean][] = [
    format === 'native'
      ? ['task.yaml', taskYaml(name, folderName), false]
      : ['task.toml', taskToml(name), false],
    ['instruction.md', INSTRUCTION, false],
    ['environment/Dockerfile', DOCKERFILE, false],
    ['environment/numbers.txt', numbers, false],
    ['tests/test.sh', TEST_SH, true],
    ['tests/numbers.txt', numbers, false],
    ['solution/solve.sh', SOLVE_SH, true],
  ];
  for (const [relative, content, executable] of files) {
    const path = join(dir, relative);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { flag: 'wx' });
    if (executable) chmodSync(path, 0o755);
  }
  return { dir, format, name, files: files.map(([relative]) => relative) };
}
