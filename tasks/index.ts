/**
 * paddock's task files: the `task.yaml` schema, the loaders (paddock, Harbor and
 * Terminal-Bench 1 folders, dataset expansion) and the problems they report. Everything
 * loads into the harness's `Task` (harness/task.ts).
 */

/** Loads tasks all-or-nothing (throws one TASK_INVALID listing every problem). */
export { loadTasks } from './load.ts';
/** Loads what is valid and returns every problem of every task file (for `paddock tasks validate`). */
export { validateTasks } from './load.ts';
/** Options of `loadTasks` / `validateTasks` (plug-in sections, host env, cwd) and the result of `validateTasks`. */
export type { LoadTasksOptions, TaskValidation } from './load.ts';

/** The zod schema of `task.yaml` (strict, snake_case, without plug-in sections). */
export { TaskFileSchema } from './schema.ts';
/** A parsed `task.yaml`. */
export type { TaskFile } from './schema.ts';
/** The JSON Schema of `task.yaml` for editors (what `tasks/task.schema.json` holds). */
export { taskJsonSchema } from './schema.ts';

/** One problem of one task file: file, line where known, field path, message. */
export type { TaskProblem } from './problems.ts';
/** Formats a problem as `file[:line]: field.path: message`. */
export { formatTaskProblem } from './problems.ts';

/** The `PADDOCK_FIELD_<NAME>` variable a dataset row field reaches verifiers and solutions as. */
export { fieldEnvName } from './dataset.ts';

/** Shared defaults: the base image and the sandbox paths of tests, solutions, rewards and logs. */
export { DEFAULT_IMAGE, LOG_DIRS, REWARD_DIR, SOLUTION_DIR, TESTS_DIR } from './defaults.ts';
/** The verifier conventions of paddock, Harbor and Terminal-Bench folders (log folders, kept folder, pytest warnings). */
export { verifierConventions } from './defaults.ts';

/** The `pytest-output` reward: its reader, and how pytest's JUnit report and output are read. */
export {
  PYTEST_REPORT_DIR,
  parseJunitCounts,
  pytestOutcome,
  pytestOutputReward,
  pytestPassed,
  pytestWarnings,
  type PytestCounts,
} from './pytest-output.ts';

/** Selecting tasks of a suite (`--task`, `--tag`, `--limit`). */
export { matchesTaskPattern, selectTasks, taskTags, type TaskSelection } from './load.ts';
/** The turn limit of task.toml tasks: none (only the time limit ends them). */
export { NO_TURN_LIMIT } from './defaults.ts';
