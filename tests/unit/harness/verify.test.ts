import { describe, expect, it } from 'vitest';
import { pytestPassed, runVerifier, type VerifierSpec } from '../../../harness/index.ts';
import { MemorySandbox } from '../../fakes/memory-sandbox.ts';

const spec: VerifierSpec = {
  files: [{ hostPath: '/host/tests', sandboxPath: '/tests' }],
  command: 'bash /tests/test.sh',
  env: { EXPECTED: '3' },
  timeoutMs: 1_000,
  reward: { kind: 'files', dir: '/logs/verifier' },
};

function sandboxWriting(files: Record<string, string>, result = {}): MemorySandbox {
  return new MemorySandbox('s', (command, sandbox) => {
    if (command !== spec.command) return {};
    for (const [path, text] of Object.entries(files)) sandbox.files.set(path, Buffer.from(text));
    return result;
  });
}

const signal = new AbortController().signal;

describe('runVerifier', () => {
  it('clears the reward folder and the test folder, stops agent processes, then uploads the tests', async () => {
    const sandbox = sandboxWriting({ '/logs/verifier/reward.txt': '1' });
    await runVerifier(spec, sandbox, { signal });
    const prepare = sandbox.commands[0]!;
    expect(prepare.options.user).toBe('root');
    expect(prepare.command).toContain("rm -rf '/tests'");
    expect(prepare.command).toContain("rm -rf '/logs/verifier'");
    expect(prepare.command).toContain('kill -9');
    expect(sandbox.commands[1]).toMatchObject({
      command: 'bash /tests/test.sh',
      options: { env: { EXPECTED: '3' }, timeoutMs: 1_000 },
    });
  });

  it.each([
    ['reward.txt with one number', { '/logs/verifier/reward.txt': '0.75\n' }, 0.75, { reward: 0.75 }],
    ['reward.json with a number', { '/logs/verifier/reward.json': '1' }, 1, { reward: 1 }],
    [
      'reward.json with reward and diagnostics',
      { '/logs/verifier/reward.json': '{"reward": 0.4, "note": "x", "tests": 5}' },
      0.4,
      { reward: 0.4, tests: 5 },
    ],
    [
      'reward.json with named scores',
      { '/logs/verifier/reward.json': '{"correctness": 1, "performance": 0}' },
      0.5,
      { correctness: 1, performance: 0 },
    ],
  ])('reads %s', async (_name, files, reward, scores) => {
    const result = await runVerifier(spec, sandboxWriting(files), { signal });
    expect(result.reward).toBe(reward);
    expect(result.scores).toEqual(scores);
    expect(result.error).toBeUndefined();
  });

  it.each([
    ['no reward file', {}, 'no reward file'],
    ['a reward.txt that is not a number', { '/logs/verifier/reward.txt': 'PASS' }, 'does not hold a number'],
    ['a reward.json that is not JSON', { '/logs/verifier/reward.json': '{' }, 'not valid JSON'],
  ])('records %s as a verifier failure with reward null', async (_name, files, message) => {
    const result = await runVerifier(spec, sandboxWriting(files), { signal });
    expect(result.reward).toBeNull();
    expect(result.error).toContain(message);
  });

  it('records a verifier timeout as a failure', async () => {
    const result = await runVerifier(
      spec,
      sandboxWriting({ '/logs/verifier/reward.txt': '1' }, { timedOut: true, exitCode: 137 }),
      { signal },
    );
    expect(result.reward).toBeNull();
    expect(result.error).toContain('timed out');
  });

  it('warns when pytest refused its arguments', async () => {
    const result = await runVerifier(
      spec,
      sandboxWriting(
        { '/logs/verifier/reward.txt': '0' },
        { stderr: 'pytest: error: unrecognized arguments: --ctrf' },
      ),
      { signal },
    );
    expect(result.warnings[0]).toContain('pytest refused');
  });

  it('scores exit-code and pytest-output verifiers', async () => {
    const exit = await runVerifier(
      { ...spec, reward: { kind: 'exit-code' } },
      sandboxWriting({}, { exitCode: 2 }),
      { signal },
    );
    expect(exit.reward).toBe(0);
    const pytest = await runVerifier(
      { ...spec, reward: { kind: 'pytest-output' } },
      sandboxWriting({}, { stdout: '===== 3 passed in 0.12s =====' }),
      { signal },
    );
    expect(pytest.reward).toBe(1);
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
