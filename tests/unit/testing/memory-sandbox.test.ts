/**
 * The in-memory sandbox's own promises beyond the conformance suite: it answers what its
 * language does not know as a shell would, its seal ends commands in flight, and
 * commands of your own join its language.
 */
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemorySandbox, MemorySandboxProvider } from '../../../testing/index.ts';

describe('MemorySandbox', () => {
  it('answers an unknown command with exit 127 and "command not found", and goes on after ;', async () => {
    const sandbox = new MemorySandbox('m');
    const result = await sandbox.exec("python3 -c 'print(1)'; printf 'after'");
    expect(result).toMatchObject({ exitCode: 0, stdout: 'after' });
    expect(result.stderr).toBe('sh: python3: command not found\n');
    expect((await sandbox.exec('python3')).exitCode).toBe(127);
  });

  it('refuses shell syntax outside its language with exit 2 rather than guessing', async () => {
    const sandbox = new MemorySandbox('m');
    for (const command of ["printf 'a' | cat", 'sleep 1 &', "printf 'a' > /tmp/x", "printf 'a' && pwd"]) {
      const result = await sandbox.exec(command);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain('unsupported shell syntax');
    }
  });

  it('expands variables bare, in double quotes and braces, never in single quotes', async () => {
    const sandbox = new MemorySandbox('m', { env: { NAME: 'box' } });
    const result = await sandbox.exec(`echo $NAME "\${NAME}s" '$NAME' "\\$NAME"`);
    expect(result.stdout).toBe('box boxs $NAME $NAME\n');
  });

  it('writes printf escapes as bytes, octal ones included', async () => {
    const sandbox = new MemorySandbox('m');
    await sandbox.exec("printf 'ignored'");
    const result = await sandbox.exec("printf 'a\\tb\\101\\n100%%'");
    expect(result.stdout).toBe('a\tbA\n100%');
  });

  it('ends a command in flight when sealed: it resolves with exit 137', async () => {
    const sandbox = new MemorySandbox('m');
    const running = sandbox.exec('sleep 30');
    const report = await sandbox.seal();
    expect(report.killed).toBe(1);
    await expect(running).resolves.toMatchObject({ exitCode: 137, timedOut: false });
  });

  it('follows symlinks uploaded from the host and refuses a loop with FILE_NOT_FOUND', async () => {
    const host = await mkdtemp(join(tmpdir(), 'paddock-memory-'));
    try {
      await writeFile(join(host, 'real.txt'), 'real');
      await symlink('real.txt', join(host, 'link'));
      await symlink('loop-b', join(host, 'loop-a'));
      await symlink('loop-a', join(host, 'loop-b'));
      const sandbox = new MemorySandbox('m');
      await sandbox.upload(host, '/data');
      expect(Buffer.from(await sandbox.readFile('/data/link')).toString()).toBe('real');
      await expect(sandbox.readFile('/data/loop-a')).rejects.toMatchObject({
        code: 'FILE_NOT_FOUND',
        details: { type: 'symlink' },
      });
      await expect(sandbox.readFile('/data/real.txt/x')).rejects.toMatchObject({
        code: 'FILE_NOT_FOUND',
        details: { type: 'file' },
      });
    } finally {
      await rm(host, { recursive: true, force: true });
    }
  });

  it('runs commands of your own, with their arguments, stdin and the sandbox', async () => {
    const provider = new MemorySandboxProvider({
      commands: {
        verify: async ({ args, sandbox, stdout }) => {
          const answer = Buffer.from(await sandbox.readFile('answer.txt')).toString();
          stdout(`${args.join(',')}:${answer}`);
          return answer === '42' ? 0 : 1;
        },
      },
    });
    const sandbox = await provider.start(
      { image: 'none', cpus: 1, memoryMb: 64, pids: 16, network: false, env: {}, files: [] },
      { labels: { runId: 'r', episodeId: 'e' } },
    );
    await sandbox.writeFile('answer.txt', '42');
    expect(await sandbox.exec("verify 'a b' c")).toMatchObject({ exitCode: 0, stdout: 'a b,c:42' });
    expect(provider.started[0]!.labels).toEqual({ runId: 'r', episodeId: 'e' });
    expect(sandbox.workdir).toBe('/app');
  });
});
