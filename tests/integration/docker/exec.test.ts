/**
 * `DockerSandbox.exec` on the real engine: results, streams, options, timeouts, aborts,
 * queueing and users, through the long-lived shell (bash, and sh where an image has no bash).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPaddockError } from '../../../harness/errors.ts';
import type { Sandbox } from '../../../harness/sandbox.ts';
import { BASE_IMAGE, DockerSandboxProvider, reapContainers } from '../../../sandboxes/docker/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from './helpers.ts';

const runId = testRunId('exec');
const provider = new DockerSandboxProvider();
let sandbox: Sandbox;

beforeAll(async () => {
  await ensureBaseImage();
  sandbox = await provider.start(baseSpec({ env: { GREETING: 'hello' } }), {
    labels: { runId, episodeId: 'exec' },
  });
});

afterAll(async () => {
  await sandbox?.close();
  await reapContainers({ runId });
});

/** Waits until `path` exists in the sandbox (read through the engine, not the busy shell). */
async function waitForFile(path: string): Promise<void> {
  for (;;) {
    try {
      await sandbox.readFile(path);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe('DockerSandbox.exec', () => {
  it('returns the stdout and exit code 0 of a successful command', async () => {
    const result = await sandbox.exec('echo hello world');
    expect(result).toMatchObject({
      exitCode: 0,
      stdout: 'hello world\n',
      stderr: '',
      timedOut: false,
      truncated: false,
    });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('resolves with a non-zero exit code instead of rejecting', async () => {
    const result = await sandbox.exec('echo partial; exit 42');
    expect(result.exitCode).toBe(42);
    expect(result.stdout).toBe('partial\n');
  });

  it('keeps stdout and stderr apart', async () => {
    const result = await sandbox.exec('echo out1; echo err1 >&2; echo out2; printf err2 >&2');
    expect(result.stdout).toBe('out1\nout2\n');
    expect(result.stderr).toBe('err1\nerr2');
  });

  it('keeps output without a trailing newline intact', async () => {
    const result = await sandbox.exec('printf "no newline"');
    expect(result.stdout).toBe('no newline');
  });

  it('runs commands with bash semantics (pipes, arrays, [[ ]])', async () => {
    const result = await sandbox.exec('a=(x y z); [[ ${#a[@]} -eq 3 ]] && echo "${a[1]}" | tr a-z A-Z');
    expect(result.stdout).toBe('Y\n');
  });

  it('reports a syntax error as exit code 2 with the message on stderr', async () => {
    const result = await sandbox.exec('echo (');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('syntax error');
  });

  it('gives the stdin option to the command', async () => {
    const result = await sandbox.exec('cat', { stdin: 'line one\nline two' });
    expect(result.stdout).toBe('line one\nline two');
  });

  it('passes binary stdin bytes unchanged', async () => {
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) % 256);
    const result = await sandbox.exec('wc -c; ', { stdin: bytes });
    expect(result.stdout.trim()).toBe('100000');
    const digest = await sandbox.exec('sha256sum | cut -d" " -f1', { stdin: bytes });
    const { createHash } = await import('node:crypto');
    expect(digest.stdout.trim()).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('gives commands an empty stdin by default, never the control channel', async () => {
    const result = await sandbox.exec('cat; read line; echo "read:$?"', { timeoutMs: 10_000 });
    expect(result).toMatchObject({ exitCode: 0, stdout: 'read:1\n', timedOut: false });
  });

  it('runs the command in the cwd option, relative paths from the workdir', async () => {
    expect((await sandbox.exec('pwd', { cwd: '/tmp' })).stdout).toBe('/tmp\n');
    expect((await sandbox.exec('pwd', { cwd: 'usr/bin' })).stdout).toBe(
      `${sandbox.workdir.replace(/\/$/, '')}/usr/bin\n`,
    );
  });

  it('reports a missing cwd as a failed command', async () => {
    const result = await sandbox.exec('pwd', { cwd: '/no/such/dir' });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('/no/such/dir');
  });

  it('adds the env option for that command only, on top of the spec env', async () => {
    const withEnv = await sandbox.exec('echo "$GREETING $WHO"', { env: { WHO: "it's me" } });
    expect(withEnv.stdout).toBe("hello it's me\n");
    const without = await sandbox.exec('echo "${WHO:-unset}"');
    expect(without.stdout).toBe('unset\n');
  });

  it('rejects an env name that no shell can export', async () => {
    await expect(sandbox.exec('true', { env: { 'BAD-NAME': 'x' } })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('does not let a command change the shell state of the next one', async () => {
    await sandbox.exec('cd /tmp; export LEAK=1; shopt -s nullglob; alias ll=ls; exit 0');
    const result = await sandbox.exec(
      'pwd; echo "${LEAK:-none}"; shopt -q nullglob && echo glob || echo noglob',
    );
    expect(result.stdout).toBe(`${sandbox.workdir}\nnone\nnoglob\n`);
  });

  it('keeps files written by one command for the next', async () => {
    await sandbox.exec('echo persisted > /tmp/state.txt');
    expect((await sandbox.exec('cat /tmp/state.txt')).stdout).toBe('persisted\n');
  });

  it('kills a command past its timeout (exit 137) and the next command works', async () => {
    const started = Date.now();
    const result = await sandbox.exec('sleep 1000', { timeoutMs: 1_000 });
    expect(result).toMatchObject({ exitCode: 137, timedOut: true, killedBy: 'timeout' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await sandbox.exec('echo next')).stdout).toBe('next\n');
  });

  it('kills the whole process group of a timed-out command', async () => {
    await sandbox.exec('sleep 997 & sleep 998 | cat; wait', { timeoutMs: 1_000 });
    const left = await sandbox.exec("ps -eo args | grep -c '^sleep 99[78]$'");
    expect(left.stdout.trim()).toBe('0');
  });

  it('keeps the output a command wrote before its timeout', async () => {
    const result = await sandbox.exec('echo before; sleep 1000', { timeoutMs: 1_000 });
    expect(result.stdout).toBe('before\n');
    expect(result.timedOut).toBe(true);
  });

  it('leaves background processes of a finished command running', async () => {
    await sandbox.exec('nohup sleep 995 >/dev/null 2>&1 &');
    // nohup may not have exec'd sleep yet when the next command looks.
    const result = await sandbox.exec("ps -eo args | grep -cE '^(nohup )?sleep 995$'");
    expect(result.stdout.trim()).toBe('1');
    await sandbox.exec('pkill -f "sleep 995"');
  });

  it('carries on when the worker waiting for the next command is killed', async () => {
    // $$ is the shell: its only child, once this command ends, is the waiting worker.
    await sandbox.exec('(sleep 0.3; pkill -9 -P $$ && touch /tmp/worker-killed) >/dev/null 2>&1 &');
    await new Promise((resolve) => setTimeout(resolve, 800));
    const result = await sandbox.exec('echo alive; echo err >&2; exit 3');
    expect(result).toMatchObject({ exitCode: 3, stdout: 'alive\n', stderr: 'err\n' });
    expect((await sandbox.exec('ls /tmp/worker-killed')).stdout).toBe('/tmp/worker-killed\n');
  });

  it('rejects with ABORTED when the signal aborts, killing the command', async () => {
    const controller = new AbortController();
    const running = sandbox.exec('touch /tmp/abort-started; sleep 996; echo never', {
      signal: controller.signal,
    });
    await waitForFile('/tmp/abort-started');
    controller.abort();
    await expect(running).rejects.toMatchObject({ code: 'ABORTED' });
    const left = await sandbox.exec("ps -eo args | grep -c '^sleep 996$'");
    expect(left.stdout.trim()).toBe('0');
  });

  it('rejects at once with ABORTED when the signal is already aborted', async () => {
    await expect(sandbox.exec('echo no', { signal: AbortSignal.abort() })).rejects.toSatisfy((error) =>
      isPaddockError(error, 'ABORTED'),
    );
  });

  it('runs concurrent exec calls one at a time, in call order', async () => {
    await sandbox.exec('rm -f /tmp/order.log');
    await Promise.all(
      [1, 2, 3, 4].map((i) =>
        sandbox.exec(`echo start-${i} >> /tmp/order.log; sleep 0.05; echo end-${i} >> /tmp/order.log`),
      ),
    );
    const log = (await sandbox.exec('cat /tmp/order.log')).stdout.trim().split('\n');
    expect(log).toEqual(['start-1', 'end-1', 'start-2', 'end-2', 'start-3', 'end-3', 'start-4', 'end-4']);
  });

  it('skips a queued command whose signal aborts before its turn', async () => {
    const controller = new AbortController();
    const first = sandbox.exec('sleep 0.3; echo first');
    const second = sandbox.exec('echo second > /tmp/skipped.txt', { signal: controller.signal });
    controller.abort();
    await expect(second).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await first).stdout).toBe('first\n');
    expect((await sandbox.exec('test -e /tmp/skipped.txt && echo ran || echo skipped')).stdout).toBe(
      'skipped\n',
    );
  });

  it('runs a command as the user option asks', async () => {
    expect((await sandbox.exec('id -un')).stdout).toBe('root\n');
    const asNobody = await sandbox.exec('id -un; pwd', { user: 'nobody', cwd: '/tmp' });
    expect(asNobody.stdout).toBe('nobody\n/tmp\n');
    expect((await sandbox.exec('id -un', { user: 'nobody', stdin: 'x' })).stdout).toBe('nobody\n');
  });

  it('gives exit code 126 and the reason for an unknown user', async () => {
    const result = await sandbox.exec('id', { user: 'no-such-user' });
    expect(result.exitCode).toBe(126);
    expect(result.stderr).toContain('no-such-user');
  });

  it('cuts each stream at maxOutputBytes and marks the result truncated', async () => {
    const result = await sandbox.exec(
      'head -c 100000 /dev/zero | tr "\\0" a; head -c 5000 /dev/zero | tr "\\0" b >&2',
      {
        maxOutputBytes: 1_000,
      },
    );
    expect(result.stdout).toBe('a'.repeat(1_000));
    expect(result.stderr).toBe('b'.repeat(1_000));
    expect(result.truncated).toBe(true);
    expect(result.exitCode).toBe(0);
  });

  it('does not split a multi-byte character at the cap', async () => {
    const result = await sandbox.exec('printf "aé"', { maxOutputBytes: 2 });
    expect(result.stdout).toBe('a');
    expect(result.truncated).toBe(true);
  });

  it('restarts its shell when a command kills it, and says so', async () => {
    const result = await sandbox.exec('echo before; kill -9 $$');
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toContain('restarted');
    expect((await sandbox.exec('echo back')).stdout).toBe('back\n');
  });
});

describe('DockerSandbox.exec with a non-root sandbox user', () => {
  it('runs commands as that user and still kills them at their timeout', async () => {
    const asNobody = await provider.start(baseSpec({ user: 'nobody', workdir: '/tmp' }), {
      labels: { runId, episodeId: 'exec-nobody' },
    });
    try {
      expect((await asNobody.exec('id -un')).stdout).toBe('nobody\n');
      const result = await asNobody.exec('sleep 994', { timeoutMs: 1_000 });
      expect(result).toMatchObject({ timedOut: true, exitCode: 137 });
      const left = await asNobody.exec("ps -eo args | grep -c '^sleep 994$'");
      expect(left.stdout.trim()).toBe('0');
      expect((await asNobody.exec('id -un', { user: 'root' })).stdout).toBe('root\n');
    } finally {
      await asNobody.close();
    }
  });
});

describe('DockerSandbox.exec in an image without bash', () => {
  it('serves commands from sh: output, stdin, env, cwd, timeouts and a killed shell', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'paddock-no-bash-'));
    await writeFile(join(dir, 'Dockerfile'), `FROM ${BASE_IMAGE}\nRUN rm -f /bin/bash /usr/bin/bash\n`);
    const dash = await provider.start(
      baseSpec({ image: undefined, build: { contextDir: dir, dockerfile: 'Dockerfile' } }),
      { labels: { runId, episodeId: 'exec-dash' } },
    );
    try {
      expect((await dash.exec('command -v bash || echo none')).stdout).toBe('none\n');
      const result = await dash.exec('cat; echo "$GREETING" "$(pwd)"; echo err >&2; exit 4', {
        stdin: 'in\n',
        env: { GREETING: 'two\nlines' },
        cwd: '/tmp',
      });
      expect(result).toMatchObject({ exitCode: 4, stdout: 'in\ntwo\nlines /tmp\n', stderr: 'err\n' });
      const slow = await dash.exec('sleep 993', { timeoutMs: 1_000 });
      expect(slow).toMatchObject({ timedOut: true, exitCode: 137 });
      expect((await dash.exec("ps -eo args | grep -c '^sleep 993$'")).stdout.trim()).toBe('0');
      // The command runs in a shell of its own under setsid: its parent is the served shell.
      const killed = await dash.exec('kill -9 $PPID; sleep 5');
      expect(killed.stderr).toContain('restarted');
      expect((await dash.exec('echo back')).stdout).toBe('back\n');
    } finally {
      await dash.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
