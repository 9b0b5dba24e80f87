/**
 * The `pytest-output` reward (Terminal-Bench 1's `parser_name: pytest`, and paddock's
 * `verifier.reward: pytest-output`): the verifier's script runs pytest and writes no
 * reward file; the reward is 1 when pytest reports passing tests and no failures or
 * errors, else 0. A `RewardReader` (harness/task.ts) the loaders put in the `Task`:
 *
 * - pytest reads `PYTEST_ADDOPTS` on every run, whatever flags the script gives it (`-q`,
 *   `-qq`, plugins), so the reader adds `--junitxml=<PYTEST_REPORT_DIR>/junit.xml` there
 *   and scores the JUnit report, a structured result;
 * - without a report (pytest did not run, or the script disabled it) the output decides:
 *   its last summary line, else its `-rA` short summary lines;
 * - the report folder is emptied before the verifier runs, like the reward folder, so a
 *   report the agent planted is never read.
 *
 * `pytestWarnings` reads a pytest usage error in any verifier's output (Harbor's scripts
 * run pytest too): pytest refuses to run when a plugin flag (`--ctrf`) has no plugin.
 */
import { isPaddockError } from '../harness/errors.ts';
import type { Sandbox } from '../harness/sandbox.ts';
import type { RewardReader } from '../harness/task.ts';

/** Where `pytest-output` verifiers have pytest write its JUnit report (through `PYTEST_ADDOPTS`). */
export const PYTEST_REPORT_DIR = '/logs/.paddock-pytest';
const PYTEST_REPORT = `${PYTEST_REPORT_DIR}/junit.xml`;

/** A JUnit report is read up to this size (attributes of its test suites only). */
const MAX_PYTEST_REPORT_BYTES = 16 * 1024 * 1024;

/** What pytest reported (`VerifierResult.details` of a `pytest-output` reward). */
export interface PytestCounts {
  /** `junit`: the report pytest wrote; `output`: its summary (or `-rA`) lines. */
  source: 'junit' | 'output';
  /** At least one test ran (or passed, from the output) and none failed or errored. */
  passed: boolean;
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
}

/**
 * The `pytest-output` reward reader: 1 when pytest's JUnit report (else its output) says
 * tests passed and none failed or errored, else 0; what pytest reported goes to the
 * record's `details` (a `PytestCounts`). A fresh object per call (its `dirs` is a task's own).
 */
export function pytestOutputReward(): RewardReader {
  return {
    kind: 'reader',
    name: 'pytest-output',
    dirs: [PYTEST_REPORT_DIR],
    env: (env) => ({
      ...env,
      PYTEST_ADDOPTS: [env.PYTEST_ADDOPTS, `--junitxml=${PYTEST_REPORT}`].filter(Boolean).join(' '),
    }),
    read: async ({ output, sandbox, signal }) => {
      const counts = (await readPytestReport(sandbox, signal)) ?? pytestOutcome(output);
      return { reward: counts.passed ? 1 : 0, details: { ...counts } };
    },
  };
}

/**
 * The counts of pytest's JUnit report at `PYTEST_REPORT` (summed over its test suites),
 * or undefined when there is none (pytest did not run, or the script disabled the report)
 * or it is too large to read.
 * @throws what the sandbox throws when it no longer runs; ABORTED.
 */
async function readPytestReport(sandbox: Sandbox, signal: AbortSignal): Promise<PytestCounts | undefined> {
  let xml: string;
  try {
    xml = Buffer.from(
      await sandbox.readFile(PYTEST_REPORT, { signal, maxBytes: MAX_PYTEST_REPORT_BYTES }),
    ).toString('utf8');
  } catch (error) {
    const tooLarge = isPaddockError(error, 'SANDBOX_FAILED') && error.details.tooLarge === true;
    if (signal.aborted || !(tooLarge || isPaddockError(error, 'FILE_NOT_FOUND'))) throw error;
    // No report (or one too large to read): the output decides.
    return undefined;
  }
  return parseJunitCounts(xml);
}

/**
 * Sums `tests`, `failures`, `errors` and `skipped` over the `<testsuite>` elements of a
 * JUnit XML report; undefined when it has none. Passed: at least one test ran and none
 * failed or errored (skips do not count against it).
 */
export function parseJunitCounts(xml: string): PytestCounts | undefined {
  const suites = xml.match(/<testsuite\b[^>]*>/g);
  if (!suites) return undefined;
  const count = { tests: 0, failures: 0, errors: 0, skipped: 0 };
  for (const suite of suites) {
    for (const key of Object.keys(count) as (keyof typeof count)[]) {
      const value = new RegExp(`\\s${key}="(\\d+)"`).exec(suite)?.[1];
      if (value !== undefined) count[key] += Number(value);
    }
  }
  const passed = count.tests - count.skipped > 0 && count.failures === 0 && count.errors === 0;
  return { source: 'junit', passed, ...count };
}

/** pytest's final summary line, with or without its `===` border (`-q` drops it). */
const PYTEST_SUMMARY =
  /^(?:=+ )?((?:\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected|rerun)(?:, |(?= in )))+) in [\d.]+s(?: \([^)]*\))?(?: =+)?\s*$/gm;

/**
 * What pytest's output says, for runs without a JUnit report: the last summary line
 * (`=== 3 passed in 0.1s ===`, `3 passed, 1 skipped in 0.1s` under `-q`); without one
 * (`-qq` prints none), the short summary lines of `-rA` (`PASSED x::y`, `FAILED x::y`,
 * `ERROR x`). Passed: at least one test passed and none failed or errored.
 */
export function pytestOutcome(output: string): PytestCounts {
  const summary = [...output.matchAll(PYTEST_SUMMARY)].at(-1)?.[1];
  if (summary) {
    const number = (word: RegExp) => Number(new RegExp(`(\\d+) ${word.source}`).exec(summary)?.[1] ?? 0);
    const passed = number(/passed/);
    const failures = number(/failed/);
    const errors = number(/errors?/);
    const skipped = number(/skipped/);
    return {
      source: 'output',
      passed: passed > 0 && failures === 0 && errors === 0,
      tests: passed + failures + skipped,
      failures,
      errors,
      skipped,
    };
  }
  const lines = (word: string) => output.match(new RegExp(`^${word} \\S`, 'gm'))?.length ?? 0;
  const passed = lines('PASSED');
  const failures = lines('FAILED');
  const errors = lines('ERROR');
  return {
    source: 'output',
    passed: passed > 0 && failures === 0 && errors === 0,
    tests: passed + failures,
    failures,
    errors,
    skipped: 0,
  };
}

/** True when pytest output reports passing tests and no failures or errors (see `pytestOutcome`). */
export function pytestPassed(output: string): boolean {
  return pytestOutcome(output).passed;
}

/**
 * A warning when the output shows pytest refusing its arguments (it then ran no test,
 * so a correct answer scores 0): `pytest --ctrf`, `python3 -m pytest --ctrf`
 * (`__main__.py: error: …`) and `py.test`. For `VerifierSpec.outputWarnings`.
 */
export function pytestWarnings(output: string): string[] {
  if (
    /(?:pytest|py\.test|__main__\.py): error: unrecognized arguments|ERROR: usage: (?:\S*pytest|py\.test|__main__\.py)\b/i.test(
      output,
    )
  ) {
    return [
      'pytest refused its arguments (a plugin flag such as --ctrf may be missing from the image): tests did not run',
    ];
  }
  return [];
}
