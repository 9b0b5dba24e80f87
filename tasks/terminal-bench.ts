/**
 * Terminal-Bench 1 folders: `task.yaml` (instruction, `max_agent_timeout_sec`,
 * `parser_name`…), a root `Dockerfile`, `docker-compose.yaml` with a `client` service,
 * `run-tests.sh` (prints pytest output; no reward file), `solution.sh`, `tests/`. Mapped
 * like a Harbor folder; the reward is read from the pytest output.
 */
import path from 'node:path';
import { z } from 'zod';
import type { FileMount, SolutionSpec, Task } from '../harness/task.ts';
import {
  ALL_TOOLS,
  DEFAULT_LIMITS,
  DEFAULT_RESOURCES,
  DEFAULT_REWARD_RANGE,
  SOLUTION_DIR,
  TIME_LIMIT_EXPECTED,
  isTimeLimitSec,
  TESTS_DIR,
  secondsToMs,
  verifierConventions,
} from './defaults.ts';
import { pytestOutputReward } from './pytest-output.ts';
import { kindOf } from './files.ts';
import { taskPath } from './paths.ts';
import { checkCompose } from './harbor.ts';
import {
  expecting,
  taskFileErrorMap,
  timeLimitSeconds,
  zodIssuesToProblems,
  type TaskProblem,
} from './problems.ts';

/** Terminal-Bench 1's default agent limit, in ms. */
export const TB1_DEFAULT_AGENT_TIMEOUT_MS = 360_000;
/** Terminal-Bench 1's default test limit, in ms. */
export const TB1_DEFAULT_TEST_TIMEOUT_MS = 60_000;

/** Keys only a Terminal-Bench 1 `task.yaml` has: their presence tells the formats apart. */
const TB1_KEYS = ['parser_name', 'max_agent_timeout_sec', 'max_test_timeout_sec', 'run_tests_in_same_shell'];

/** Whether a `task.yaml` (parsed) in `dir` is a Terminal-Bench 1 task rather than a paddock one. */
export async function isTerminalBench1(raw: unknown, dir: string): Promise<boolean> {
  if (raw !== null && typeof raw === 'object' && TB1_KEYS.some((key) => key in raw)) return true;
  return (await kindOf(path.join(dir, 'run-tests.sh'))) === 'file';
}

const seconds = timeLimitSeconds(TIME_LIMIT_EXPECTED, isTimeLimitSec);

/** The parts of a Terminal-Bench 1 `task.yaml` paddock reads; the rest becomes metadata. */
export const TerminalBenchTaskYamlSchema = z.looseObject({
  instruction: z.string({ error: expecting('the instruction text') }).optional(),
  descriptions: z
    .array(
      z.looseObject({ key: z.string().optional(), description: z.string({ error: expecting('a string') }) }),
      {
        error: expecting('a list of {key, description}'),
      },
    )
    .optional(),
  parser_name: z.literal('pytest', { error: expecting('"pytest" (the only parser supported)') }).optional(),
  max_agent_timeout_sec: seconds.optional(),
  max_test_timeout_sec: seconds.optional(),
});

/** Loads one Terminal-Bench 1 task folder whose `task.yaml` is already parsed. */
export async function loadTerminalBenchTask(source: {
  dir: string;
  file: string;
  raw: unknown;
  idPrefix: string;
}): Promise<{ tasks: Task[]; problems: TaskProblem[] }> {
  const { dir, file } = source;
  const parsed = TerminalBenchTaskYamlSchema.safeParse(source.raw, { error: taskFileErrorMap });
  if (!parsed.success) {
    return {
      tasks: [],
      problems: zodIssuesToProblems(parsed.error.issues, file, TerminalBenchTaskYamlSchema),
    };
  }
  const config = parsed.data;
  const problems: TaskProblem[] = [];
  const missing = (name: string, why: string) =>
    problems.push({ file: path.join(dir, name), path: '', message: `missing: ${why}` });
  /** A file or folder of the layout: its resolved path, `undefined` when absent, `null` when refused (reported). */
  const layout = async (relative: string, want: 'file' | 'dir') => {
    const before = problems.length;
    const found = await taskPath(
      dir,
      relative,
      want,
      { file: path.join(dir, relative), field: '' },
      (found) => problems.push(found),
      { required: false },
    );
    return found ? found.path : problems.length > before ? null : undefined;
  };

  const instruction =
    config.instruction ??
    (config.descriptions?.find((entry) => entry.key === 'base') ?? config.descriptions?.[0])?.description;
  if (instruction === undefined || instruction.trim() === '') {
    problems.push({ file, path: 'instruction', message: 'required: expected the instruction text' });
  }
  const dockerfile = await layout('Dockerfile', 'file');
  if (dockerfile === undefined) {
    missing('Dockerfile', 'a Terminal-Bench task builds its image from the Dockerfile at its root');
  }
  // The build context is the whole task folder: no link in it may lead out.
  const context = dockerfile ? await layout('.', 'dir') : undefined;
  const runTests = await layout('run-tests.sh', 'file');
  if (runTests === undefined) {
    missing('run-tests.sh', 'a Terminal-Bench task is verified by run-tests.sh');
  }
  const testsDir = await layout('tests', 'dir');
  const solutionScript = await layout('solution.sh', 'file');
  problems.push(...(await checkCompose(dir, ['docker-compose.yaml', 'docker-compose.yml'], ['client'])));
  if (problems.length > 0 || !context || !runTests) return { tasks: [], problems };

  const verifierFiles: FileMount[] = [];
  if (testsDir) verifierFiles.push({ hostPath: testsDir, sandboxPath: TESTS_DIR });
  verifierFiles.push({ hostPath: runTests, sandboxPath: `${TESTS_DIR}/run-tests.sh` });

  let solution: SolutionSpec | undefined;
  if (solutionScript) {
    solution = {
      kind: 'script',
      files: [{ hostPath: solutionScript, sandboxPath: `${SOLUTION_DIR}/solution.sh` }],
      command: `bash ${SOLUTION_DIR}/solution.sh`,
      env: {},
    };
  }

  const {
    instruction: _instruction,
    descriptions: _descriptions,
    parser_name: _parser,
    max_agent_timeout_sec: agentTimeout,
    max_test_timeout_sec: testTimeout,
    ...metadata
  } = config;

  const task: Task = {
    id: source.idPrefix + path.basename(dir),
    dir,
    format: 'terminal-bench',
    instruction: (instruction ?? '').trimEnd(),
    environment: {
      build: { contextDir: context, dockerfile: 'Dockerfile' },
      cpus: DEFAULT_RESOURCES.cpus,
      memoryMb: DEFAULT_RESOURCES.memoryMb,
      pids: DEFAULT_RESOURCES.pids,
      network: false,
      env: {},
      files: [],
    },
    tools: [...ALL_TOOLS],
    limits: {
      ...DEFAULT_LIMITS,
      timeoutMs: agentTimeout !== undefined ? secondsToMs(agentTimeout) : TB1_DEFAULT_AGENT_TIMEOUT_MS,
    },
    verifier: {
      files: verifierFiles,
      command: `bash ${TESTS_DIR}/run-tests.sh`,
      env: { TEST_DIR: TESTS_DIR },
      timeoutMs: testTimeout !== undefined ? secondsToMs(testTimeout) : TB1_DEFAULT_TEST_TIMEOUT_MS,
      user: 'root',
      reward: pytestOutputReward(),
      rewardRange: [...DEFAULT_REWARD_RANGE],
      ...verifierConventions(),
    },
    ...(solution ? { solution } : {}),
    metadata,
    extensions: {},
  };
  return { tasks: [task], problems: [] };
}
