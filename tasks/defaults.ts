/**
 * The defaults every task format shares: where tests, solutions and rewards live in the
 * sandbox, and the limits and resources of a task that names none.
 */
import { MAX_TIMER_MS } from '../harness/deadline.ts';
import type { BuiltinToolName, TaskLimits, VerifierSpec } from '../harness/task.ts';
import { pytestWarnings } from './pytest-output.ts';

/** The image a task without `environment.image`, a Dockerfile or an environment/ folder runs in. */
export const DEFAULT_IMAGE = 'paddock/base:bookworm';

/** Where the task's `tests/` folder is uploaded, only at verification. */
export const TESTS_DIR = '/tests';

/** Where the reference solution's folder is uploaded for the oracle. */
export const SOLUTION_DIR = '/solution';

/** Where verifiers write `reward.txt` / `reward.json`, test reports and logs (Harbor's verifier log folder). */
export const REWARD_DIR = '/logs/verifier';

/** Harbor's agent log folder. */
export const AGENT_LOG_DIR = '/logs/agent';

/** Harbor's artifacts folder. */
export const ARTIFACTS_DIR = '/logs/artifacts';

/** Harbor's log folders: tests expect them to exist, and the verifier may not run as root. */
export const LOG_DIRS: readonly string[] = [REWARD_DIR, AGENT_LOG_DIR, ARTIFACTS_DIR];

/**
 * What the verifier of every task folder paddock loads (paddock, Harbor, Terminal-Bench)
 * gets, whatever its reward: Harbor's log folders created writable for every user,
 * `REWARD_DIR` emptied first and kept afterwards, and a warning when pytest refused its
 * arguments (test scripts of these formats run pytest). A fresh object per call.
 */
export function verifierConventions(): Required<
  Pick<VerifierSpec, 'logDirs' | 'keepDir' | 'outputWarnings'>
> {
  return { logDirs: [...LOG_DIRS], keepDir: REWARD_DIR, outputWarnings: pytestWarnings };
}

/** The verifier command when a task names none. */
export const DEFAULT_VERIFIER_COMMAND = `bash ${TESTS_DIR}/test.sh`;

/** Every built-in tool, the default tool list of a task with a sandbox. */
export const ALL_TOOLS: readonly BuiltinToolName[] = [
  'bash',
  'read_file',
  'write_file',
  'edit_file',
  'submit',
];

/** Sandbox resources of a task that names none. */
export const DEFAULT_RESOURCES = { cpus: 1, memoryMb: 1024, pids: 256 } as const;

/**
 * The turn limit that is no limit: the episode is bounded by its time limit (and any token
 * or cost limit) only. Harbor has no turn cap (its own Terminus-2 agent defaults to
 * 1,000,000 turns and warns against lowering it), so task.toml tasks that name none get
 * this. A finite number, so that a task written to JSON and read back keeps it.
 */
export const NO_TURN_LIMIT = Number.MAX_SAFE_INTEGER;

/** Whether a turn limit is `NO_TURN_LIMIT` (for messages: "none"). */
export function isNoTurnLimit(maxTurns: number): boolean {
  return maxTurns >= NO_TURN_LIMIT;
}

/** Turn limit of a Harbor task without `[agent] max_turns`: none (the time limit bounds it). */
export const HARBOR_DEFAULT_MAX_TURNS = NO_TURN_LIMIT;

/** Limits of a paddock task that names none: 30 turns, 600 s, no token cap, 120 s per command. */
export const DEFAULT_LIMITS: Readonly<TaskLimits> = {
  maxTurns: 30,
  timeoutMs: 600_000,
  commandTimeoutMs: 120_000,
};

/** Verifier time limit of a paddock task that names none, in ms. */
export const DEFAULT_VERIFIER_TIMEOUT_MS = 120_000;

/** Seconds (as written in task files) to whole milliseconds. */
export function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1000);
}

/** The longest time limit a task file may give, in seconds: Node's longest timer, 2^31 − 1 ms (about 24.8 days). */
export const MAX_TIME_LIMIT_SEC = MAX_TIMER_MS / 1000;

/** What every time limit of every task format must be, in the words of its error. */
export const TIME_LIMIT_EXPECTED = `a number of seconds above 0 and at most ${MAX_TIME_LIMIT_SEC} (about 24.8 days)`;

/**
 * Whether `seconds` is a usable time limit: finite, and between 1 ms and `MAX_TIMER_MS`
 * once converted (Node fires a longer timer at once, so the limit would end every episode).
 */
export function isTimeLimitSec(seconds: number): boolean {
  if (!Number.isFinite(seconds) || seconds <= 0) return false;
  const ms = secondsToMs(seconds);
  return ms >= 1 && ms <= MAX_TIMER_MS;
}

/** The reward range of a verifier whose task names none. */
export const DEFAULT_REWARD_RANGE: readonly [number, number] = [0, 1];
