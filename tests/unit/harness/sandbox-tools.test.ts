/**
 * How a command's result reads to a model: output, stderr, why the sandbox killed it, and
 * the exit code.
 */
import { describe, expect, it } from 'vitest';
import type { ExecResult } from '../../../harness/sandbox.ts';
import { formatExecResult } from '../../../harness/tools/sandbox-tools.ts';

const base: ExecResult = {
  exitCode: 0,
  stdout: '',
  stderr: '',
  timedOut: false,
  truncated: false,
  durationMs: 5,
};

describe('formatExecResult', () => {
  it('shows stdout, stderr and the exit code', () => {
    expect(formatExecResult({ ...base, stdout: 'out\n', stderr: 'err\n', exitCode: 2 })).toBe(
      'out\n[stderr]\nerr\n[exit code 2]',
    );
  });

  it('says when the sandbox killed the command at its timeout or at the memory limit', () => {
    expect(
      formatExecResult({ ...base, exitCode: 137, timedOut: true, killedBy: 'timeout', durationMs: 3_000 }),
    ).toBe('[the command timed out after 3 s and was killed]\n[exit code 137]');
    expect(formatExecResult({ ...base, exitCode: 137, killedBy: 'memory-limit' })).toBe(
      "[the command was killed: it ran out of the sandbox's memory]\n[exit code 137]",
    );
  });
});
