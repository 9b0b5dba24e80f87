/**
 * The `pytest-output` reward as the task loaders give it to the harness: a reward reader
 * that has pytest write a JUnit report through PYTEST_ADDOPTS and scores it, else pytest's
 * output; and the warning when pytest refused its arguments.
 */
import { describe, expect, it } from 'vitest';
import { runVerifier, type VerifierSpec } from '../../../harness/index.ts';
import {
  PYTEST_REPORT_DIR,
  parseJunitCounts,
  pytestOutcome,
  pytestOutputReward,
  pytestPassed,
  pytestWarnings,
} from '../../../tasks/index.ts';
import { MemorySandbox, type CommandHandler } from '../../fakes/memory-sandbox.ts';

const REPORT = `${PYTEST_REPORT_DIR}/junit.xml`;
const signal = new AbortController().signal;

const spec: VerifierSpec = {
  files: [{ hostPath: '/host/tests', sandboxPath: '/tests' }],
  command: 'bash /tests/run-tests.sh',
  env: { TEST_DIR: '/tests' },
  timeoutMs: 1_000,
  reward: pytestOutputReward(),
};

/** A JUnit report with these counts in one test suite. */
const junit = (tests: number, failures: number) =>
  `<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="${failures}" skipped="0" tests="${tests}"></testsuite></testsuites>`;

/** A sandbox whose `rm -rf '<path>'` lines remove the files under the path; `verify` answers the verifier's command. */
function sandbox(verify: CommandHandler): MemorySandbox {
  return new MemorySandbox('s', (command, memory, options) => {
    for (const [, target] of command.matchAll(/^rm -rf '([^']+)'$/gm)) {
      for (const path of [...memory.files.keys()])
        if (path === target || path.startsWith(`${target}/`)) memory.files.delete(path);
    }
    return command === spec.command ? verify(command, memory, options) : {};
  });
}

describe('pytestOutputReward', () => {
  it("adds the JUnit report to pytest's options, after the task's own", async () => {
    const box = sandbox(() => ({}));
    await runVerifier({ ...spec, env: { PYTEST_ADDOPTS: '-p no:cacheprovider' } }, box, { signal });
    expect(box.commands.at(-1)!.options.env).toEqual({
      PYTEST_ADDOPTS: `-p no:cacheprovider --junitxml=${REPORT}`,
    });
  });

  it('scores the JUnit report pytest wrote, whatever the output says', async () => {
    const result = await runVerifier(
      spec,
      sandbox((_command, memory) => {
        memory.files.set(REPORT, Buffer.from(junit(3, 1)));
        return { stdout: '=== 3 passed in 0.1s ===' };
      }),
      { signal },
    );
    expect(result).toMatchObject({
      reward: 0,
      reader: 'pytest-output',
      details: { source: 'junit', passed: false, tests: 3, failures: 1, errors: 0, skipped: 0 },
    });
  });

  it("falls back on pytest's output when there is no report", async () => {
    const result = await runVerifier(
      spec,
      sandbox(() => ({ stdout: '=== 2 passed in 0.1s ===' })),
      { signal },
    );
    expect(result).toMatchObject({
      reward: 1,
      scores: { reward: 1 },
      aggregate: 'single',
      details: { source: 'output', passed: true, tests: 2 },
    });
  });

  it('never reads a report the agent planted before verification (control: the one pytest writes is read)', async () => {
    const attacked = sandbox(() => ({ stdout: '=== 1 failed in 0.1s ===' }));
    attacked.files.set(REPORT, Buffer.from(junit(5, 0)));
    const forged = await runVerifier(spec, attacked, { signal });
    expect(attacked.commands[0]!.command).toContain(`rm -rf '${PYTEST_REPORT_DIR}'`);
    expect(forged).toMatchObject({ reward: 0, details: { source: 'output', failures: 1 } });

    const honest = sandbox((_command, memory) => {
      memory.files.set(REPORT, Buffer.from(junit(5, 0)));
      return {};
    });
    expect((await runVerifier(spec, honest, { signal })).reward).toBe(1);
  });

  it('gives each call its own folders list', () => {
    expect(pytestOutputReward().dirs).not.toBe(pytestOutputReward().dirs);
  });
});

describe('pytestPassed', () => {
  it.each([
    ['===== 3 passed in 0.12s =====', true],
    ['===== 1 failed, 2 passed in 0.12s =====', false],
    ['===== 2 passed, 1 error in 0.12s =====', false],
    ['no tests ran', false],
  ])('%s → %s', (output, expected) => {
    expect(pytestPassed(output)).toBe(expected);
  });
});

describe('pytestWarnings', () => {
  it.each([
    ['pytest: error: unrecognized arguments: --ctrf', 1],
    ['__main__.py: error: unrecognized arguments: --ctrf /logs/verifier/ctrf.json', 1],
    ['ERROR: usage: py.test [options] [file_or_dir]', 1],
    ['=== 3 passed in 0.1s ===', 0],
  ])('%s → %i warning(s)', (output, count) => {
    const warnings = pytestWarnings(output);
    expect(warnings).toHaveLength(count);
    if (count) expect(warnings[0]).toContain('pytest refused');
  });
});

describe('reading pytest', () => {
  it.each([
    ['default', '============================== 2 passed in 1.07s ===============================', true],
    ['-q', '..                                   [100%]\n2 passed in 1.09s', true],
    ['-q with a failure', '.F\n1 failed, 1 passed in 0.2s', false],
    ['-q with warnings', '2 passed, 1 warning in 0.3s', true],
    ['-rA under -qq (no summary line)', 'PASSED t.py::a\nPASSED t.py::b', true],
    ['-rA with a failure', 'PASSED t.py::a\nFAILED t.py::b - assert 0', false],
    ['-qq alone (nothing to read)', '..                                   [100%]', false],
    ['a collection error', '=== 1 error in 0.12s ===', false],
    ['no tests', '=== no tests ran in 0.01s ===', false],
  ])('reads pytest output: %s', (_name, output, passed) => {
    expect(pytestOutcome(output).passed).toBe(passed);
  });

  it('reads the counts of a JUnit report', () => {
    const xml =
      '<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4"></testsuite></testsuites>';
    expect(parseJunitCounts(xml)).toEqual({
      source: 'junit',
      passed: false,
      tests: 4,
      failures: 1,
      errors: 0,
      skipped: 1,
    });
    expect(parseJunitCounts(xml.replace('failures="1"', 'failures="0"'))?.passed).toBe(true);
    expect(parseJunitCounts('<testsuites></testsuites>')).toBeUndefined();
  });
});
