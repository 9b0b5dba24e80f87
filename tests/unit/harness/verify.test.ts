import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  KeepFiles,
  PaddockError,
  runIsolatedVerifier,
  runVerifier,
  type RewardReadContext,
  type RewardReader,
  type VerifierSpec,
} from '../../../harness/index.ts';
import { clearVerifierTraces } from '../../../harness/verify.ts';
import { MemorySandbox, MemorySandboxProvider, type CommandHandler } from '../../fakes/memory-sandbox.ts';

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
  it('seals the sandbox, then clears the reward folder and the test folder, then uploads the tests', async () => {
    const sandbox = sandboxWriting({ '/logs/verifier/reward.txt': '1' });
    await runVerifier(spec, sandbox, { signal });
    const prepare = sandbox.commands[0]!;
    expect(prepare.options.user).toBe('root');
    expect(prepare.command).toContain("rm -rf '/tests'");
    expect(prepare.command).toContain("rm -rf '/logs/verifier'");
    expect(sandbox.seals).toEqual([0]);
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

  it("records the warnings the spec's outputWarnings reads in the output, without changing the reward", async () => {
    const seen: string[] = [];
    const result = await runVerifier(
      {
        ...spec,
        outputWarnings: (output) => {
          seen.push(output);
          return output.includes('refused') ? ['the runner refused its flags'] : [];
        },
      },
      sandboxWriting({ '/logs/verifier/reward.txt': '1' }, { stdout: 'out', stderr: 'runner refused --x' }),
      { signal },
    );
    expect(seen).toEqual(['out\nrunner refused --x']);
    expect(result.warnings).toEqual(['the runner refused its flags']);
    expect(result.reward).toBe(1);
  });

  it('scores an exit-code verifier 1 on exit 0 and 0 otherwise', async () => {
    const exit = (exitCode: number) =>
      runVerifier({ ...spec, reward: { kind: 'exit-code' } }, sandboxWriting({}, { exitCode }), { signal });
    expect((await exit(2)).reward).toBe(0);
    expect(await exit(0)).toMatchObject({ reward: 1, scores: { reward: 1 }, aggregate: 'single' });
  });

  it("creates the spec's log folders writable, and empties only the verifier's own folders", async () => {
    const sandbox = sandboxWriting({ '/logs/verifier/reward.txt': '1' });
    await runVerifier({ ...spec, logDirs: ['/logs/agent', '/logs/verifier'], keepDir: '/out/' }, sandbox, {
      signal,
    });
    const prepare = sandbox.commands[0]!.command.split('\n');
    expect(prepare).toEqual([
      "rm -rf '/tests'",
      "rm -rf '/logs/verifier'",
      "rm -rf '/out'",
      "mkdir -p '/logs/agent' '/logs/verifier' '/out'",
      "chmod 777 '/logs/agent' '/logs/verifier' '/out'",
    ]);
  });

  it('runs no preparation at all when the spec names no file and no folder', async () => {
    const sandbox = sandboxWriting({}, { exitCode: 0 });
    const result = await runVerifier({ ...spec, files: [], reward: { kind: 'exit-code' } }, sandbox, {
      signal,
    });
    expect(sandbox.commands.map((c) => c.command)).toEqual(['bash /tests/test.sh']);
    expect(result.reward).toBe(1);
  });
});

/**
 * A sandbox whose `rm -rf '<path>'` lines remove the files under the path, so that what an
 * agent planted before verification is really gone when the preparation ran.
 */
function removingSandbox(answer: CommandHandler): MemorySandbox {
  return new MemorySandbox('s', (command, sandbox, options) => {
    for (const [, target] of command.matchAll(/^rm -rf '([^']+)'$/gm)) {
      for (const path of [...sandbox.files.keys()])
        if (path === target || path.startsWith(`${target}/`)) sandbox.files.delete(path);
    }
    return answer(command, sandbox, options);
  });
}

/** A reader of `/reports/result` (a number), recording what it was given. */
function resultReader(calls: RewardReadContext[] = []): RewardReader {
  return {
    kind: 'reader',
    name: 'result-file',
    dirs: ['/reports'],
    env: (env) => ({ ...env, RESULT_TO: '/reports/result' }),
    read: async (context) => {
      calls.push(context);
      try {
        const text = Buffer.from(
          await context.sandbox.readFile('/reports/result', { signal: context.signal }),
        );
        return { reward: Number(text.toString()), details: { from: 'file' }, warnings: ['read a file'] };
      } catch {
        return { reward: null, error: 'no result file' };
      }
    },
  };
}

describe('runVerifier with a reward reader', () => {
  const writesResult =
    (value: string): CommandHandler =>
    (command, sandbox) => {
      if (command !== spec.command) return {};
      sandbox.files.set('/reports/result', Buffer.from(value));
      return { stdout: 'ran', exitCode: 3 };
    };

  it("runs the command with the reader's environment and records its reward, name, details and warnings", async () => {
    const calls: RewardReadContext[] = [];
    const sandbox = removingSandbox(writesResult('0.5'));
    const result = await runVerifier({ ...spec, reward: resultReader(calls) }, sandbox, { signal });
    expect(sandbox.commands.at(-1)!.options.env).toEqual({ EXPECTED: '3', RESULT_TO: '/reports/result' });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ output: 'ran\n', exitCode: 3, sandbox, signal });
    expect(result).toMatchObject({
      reward: 0.5,
      scores: { reward: 0.5 },
      aggregate: 'single',
      reader: 'result-file',
      details: { from: 'file' },
      warnings: ['read a file'],
    });
    expect(result.error).toBeUndefined();
  });

  it("empties the reader's folders first: a result the agent planted is not read (control: the verifier's is)", async () => {
    const planted = removingSandbox(() => ({}));
    planted.files.set('/reports/result', Buffer.from('1'));
    const attacked = await runVerifier({ ...spec, reward: resultReader() }, planted, { signal });
    expect(attacked.reward).toBeNull();
    expect(attacked.error).toBe('no result file');
    expect(planted.commands[0]!.command).toContain("rm -rf '/reports'");
    expect(planted.commands[0]!.command).toContain("chmod 777 '/reports'");

    const honest = removingSandbox(writesResult('1'));
    honest.files.set('/reports/result', Buffer.from('0'));
    expect((await runVerifier({ ...spec, reward: resultReader() }, honest, { signal })).reward).toBe(1);
  });

  it("makes a reader's reward outside the task's range, or not finite, a verifier error", async () => {
    const outside = await runVerifier(
      { ...spec, reward: resultReader() },
      removingSandbox(writesResult('7')),
      { signal },
    );
    expect(outside.reward).toBeNull();
    expect(outside.error).toContain('outside the task');
    const widened = await runVerifier(
      { ...spec, reward: resultReader(), rewardRange: [0, 10] },
      removingSandbox(writesResult('7')),
      { signal },
    );
    expect(widened.reward).toBe(7);
    const notFinite = await runVerifier(
      { ...spec, reward: resultReader() },
      removingSandbox(writesResult('NaN')),
      { signal },
    );
    expect(notFinite.reward).toBeNull();
    expect(notFinite.error).toContain('not finite');
  });

  it('does not call the reader after the command timed out', async () => {
    const calls: RewardReadContext[] = [];
    const result = await runVerifier(
      { ...spec, reward: resultReader(calls) },
      removingSandbox((command) => (command === spec.command ? { timedOut: true, exitCode: 137 } : {})),
      { signal },
    );
    expect(calls).toEqual([]);
    expect(result.reward).toBeNull();
    expect(result.error).toContain('timed out');
  });

  it('passes on what the reader throws (the sandbox no longer runs)', async () => {
    const broken: RewardReader = {
      kind: 'reader',
      name: 'broken',
      read: async () => {
        throw new PaddockError('SANDBOX_FAILED', 'gone');
      },
    };
    await expect(
      runVerifier(
        { ...spec, reward: broken },
        removingSandbox(() => ({})),
        { signal },
      ),
    ).rejects.toMatchObject({ code: 'SANDBOX_FAILED' });
  });
});

describe('keepDir', () => {
  /** Runs the verifier with a KeepFiles over a fresh host folder; the sandbox lists `listed` under any folder. */
  async function keptFrom(
    verifier: VerifierSpec,
    listed: Record<string, string>,
    readFault?: (path: string) => Error | undefined,
  ) {
    const host = await mkdtemp(path.join(tmpdir(), 'paddock-keep-'));
    const listings: string[] = [];
    const sandbox = new MemorySandbox('s', (command, memory) => {
      const root = /^if \[ -e '([^']+)' \]; then find -P/.exec(command)?.[1];
      if (root === undefined) return {};
      listings.push(root);
      const names = Object.keys(listed).filter((name) => name.startsWith(`${root}/`));
      for (const name of names) memory.files.set(name, Buffer.from(listed[name]!));
      return { stdout: names.map((name) => `${name}\0`).join('') };
    });
    if (readFault) {
      const read = sandbox.readFile.bind(sandbox);
      sandbox.readFile = async (file: string) => {
        const fault = readFault(file);
        if (fault) throw fault;
        return read(file);
      };
    }
    const keep = new KeepFiles(host, 'files/ep/attempt-1');
    const result = await runVerifier(verifier, sandbox, { signal, keep });
    return { host, listings, result, done: () => rm(host, { recursive: true, force: true }) };
  }

  it('keeps what the verifier left in keepDir, the reward folder by default', async () => {
    const byDefault = await keptFrom(spec, { '/logs/verifier/out.txt': 'log' });
    expect(byDefault.listings).toEqual(['/logs/verifier']);
    expect(byDefault.result.files).toEqual([
      { path: 'files/ep/attempt-1/verifier/out.txt', source: '/logs/verifier/out.txt', bytes: 3 },
    ]);
    expect(await readFile(path.join(byDefault.host, 'verifier/out.txt'), 'utf8')).toBe('log');
    await byDefault.done();

    const named = await keptFrom(
      { ...spec, reward: { kind: 'exit-code' }, keepDir: '/reports' },
      { '/reports/junit.xml': '<x/>' },
    );
    expect(named.listings).toEqual(['/reports']);
    expect(named.result.files?.map((file) => file.source)).toEqual(['/reports/junit.xml']);
    await named.done();
  });

  it('notes a file that is not there any more, and fails on a sandbox that broke under the copy', async () => {
    const gone = await keptFrom(spec, { '/logs/verifier/a.txt': 'a', '/logs/verifier/fifo': 'x' }, (file) =>
      file.endsWith('fifo') ? new PaddockError('FILE_NOT_FOUND', `not a regular file: ${file}`) : undefined,
    );
    expect(gone.result.files?.map((file) => file.source)).toEqual(['/logs/verifier/a.txt']);
    await gone.done();
    await expect(
      keptFrom(spec, { '/logs/verifier/a.txt': 'a' }, (file) =>
        file.endsWith('a.txt')
          ? new PaddockError('SANDBOX_FAILED', 'the container is gone', { retryable: true })
          : undefined,
      ),
    ).rejects.toMatchObject({ code: 'SANDBOX_FAILED', retryable: true });
  });

  it('keeps nothing for a reward without a folder when the spec names no keepDir', async () => {
    const kept = await keptFrom({ ...spec, reward: { kind: 'exit-code' } }, { '/logs/verifier/x': 'x' });
    expect(kept.listings).toEqual([]);
    expect(kept.result.files).toEqual([]);
    await kept.done();
  });
});

describe('clearVerifierTraces', () => {
  it("removes the step's uploads and the verifier's folders, and re-creates the folders verifiers write to", async () => {
    const sandbox = removingSandbox(() => ({}));
    for (const file of [
      '/tests/hidden.json',
      '/logs/verifier/reward.txt',
      '/reports/junit.xml',
      '/logs/agent/a',
    ])
      sandbox.files.set(file, Buffer.from('x'));
    await clearVerifierTraces(
      { ...spec, reward: resultReader(), keepDir: '/logs/verifier', logDirs: ['/logs/agent'] },
      sandbox,
      signal,
    );
    expect([...sandbox.files.keys()]).toEqual(['/logs/agent/a']);
    expect(sandbox.commands[0]!.command.split('\n')).toEqual([
      'set -e',
      "rm -rf '/tests'",
      "rm -rf '/logs/verifier'",
      "rm -rf '/reports'",
      "mkdir -p '/logs/agent' '/logs/verifier' '/reports'",
      "chmod 777 '/logs/agent' '/logs/verifier' '/reports'",
    ]);
  });

  it('fails with SANDBOX_FAILED when the folders cannot be removed', async () => {
    const sandbox = new MemorySandbox('s', () => ({ exitCode: 1, stderr: 'read-only' }));
    await expect(clearVerifierTraces(spec, sandbox, signal)).rejects.toMatchObject({
      code: 'SANDBOX_FAILED',
      message: expect.stringContaining('read-only'),
    });
  });
});

describe('runIsolatedVerifier', () => {
  const environment = { image: 'img', cpus: 1, memoryMb: 256, pids: 64, network: false, env: {}, files: [] };
  const labels = { runId: 'run', episodeId: 'ep' };

  /** A memory sandbox that can download the paths in `tree` and records what is extracted into it. */
  function copyable(sandbox: MemorySandbox, tree: Record<string, string> = {}) {
    const extracted: { dir: string; data: string }[] = [];
    const copying = Object.assign(sandbox, {
      extracted,
      download: async (path: string) => (path in tree ? Readable.from([tree[path]!]) : undefined),
      extract: async (archive: NodeJS.ReadableStream, dir: string) => {
        let data = '';
        for await (const chunk of archive) data += String(chunk);
        extracted.push({ dir, data });
      },
    });
    return copying;
  }

  function freshProvider(handler: ConstructorParameters<typeof MemorySandboxProvider>[0]) {
    const provider = new MemorySandboxProvider(handler);
    const start = provider.start.bind(provider);
    provider.start = async (spec, options) => copyable(await start(spec, options));
    return provider;
  }

  const writesReward: ConstructorParameters<typeof MemorySandboxProvider>[0] = (command, sandbox) => {
    if (command === spec.command) sandbox.files.set('/logs/verifier/reward.txt', Buffer.from('1'));
    return {};
  };

  it('seals the agent, copies the paths into a fresh sandbox with the episode labels, seals it, verifies there and removes it', async () => {
    const agent = copyable(new MemorySandbox('agent', () => ({})), { '/app': 'app-tar' });
    const provider = freshProvider(writesReward);
    const isolated = { ...spec, isolation: { kind: 'container' as const, copy: ['/app/', '/data/out.csv'] } };
    const result = await runIsolatedVerifier(isolated, agent, { signal, provider, environment, labels });

    expect(agent.commands).toHaveLength(0);
    expect(agent.seals).toEqual([0]);
    expect(agent.closed).toBe(0);
    const [{ sandbox: fresh, labels: freshLabels, spec: freshSpec }] = provider.started as [
      (typeof provider.started)[0],
    ];
    expect(freshLabels).toEqual(labels);
    expect(freshSpec).toBe(environment);
    expect(fresh.commands[0]!.command).toBe("rm -rf '/app' '/data/out.csv'\nmkdir -p '/' '/data'");
    expect(fresh.commands.map((c) => c.command)).toContain('bash /tests/test.sh');
    expect((fresh as ReturnType<typeof copyable>).extracted).toEqual([{ dir: '/', data: 'app-tar' }]);
    expect(fresh.seals).toEqual([1]);
    expect(fresh.closed).toBe(1);
    expect(result.reward).toBe(1);
    expect(result.isolation).toMatchObject({
      kind: 'container',
      sandboxId: 'mem-0',
      copied: ['/app'],
      missing: ['/data/out.csv'],
    });
    expect(result.warnings).toEqual([
      "verifier.copy: /data/out.csv does not exist in the agent's sandbox; the verifier ran without it",
    ]);
  });

  it('copies the workdir by default', async () => {
    const agent = copyable(new MemorySandbox('agent', () => ({})), { '/app': 'app-tar' });
    const provider = freshProvider(writesReward);
    const isolated = { ...spec, isolation: { kind: 'container' as const } };
    const result = await runIsolatedVerifier(isolated, agent, { signal, provider, environment, labels });
    expect(result.isolation?.copied).toEqual(['/app']);
  });

  it('removes the fresh sandbox when verification fails, and passes a failed start on', async () => {
    const agent = copyable(new MemorySandbox('agent', () => ({})), { '/app': 'app-tar' });
    const isolated = { ...spec, isolation: { kind: 'container' as const } };
    const broken = freshProvider((command) => {
      if (command === spec.command) throw new PaddockError('SANDBOX_FAILED', 'gone');
      return {};
    });
    await expect(
      runIsolatedVerifier(isolated, agent, { signal, provider: broken, environment, labels }),
    ).rejects.toMatchObject({ code: 'SANDBOX_FAILED' });
    expect(broken.started[0]!.sandbox.closed).toBe(1);

    const failing = freshProvider(writesReward);
    failing.failuresLeft = 1;
    await expect(
      runIsolatedVerifier(isolated, agent, { signal, provider: failing, environment, labels }),
    ).rejects.toMatchObject({ code: 'SANDBOX_START_FAILED', retryable: true });
  });

  it('refuses sandboxes that cannot download, and fails clearly when the default copy would be /', async () => {
    const isolated = { ...spec, isolation: { kind: 'container' as const } };
    const provider = freshProvider(writesReward);
    await expect(
      runIsolatedVerifier(isolated, new MemorySandbox('plain', () => ({})), {
        signal,
        provider,
        environment,
        labels,
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const rooted = Object.assign(copyable(new MemorySandbox('agent', () => ({}))), { workdir: '/' });
    const result = await runIsolatedVerifier(isolated, rooted, { signal, provider, environment, labels });
    expect(result.reward).toBeNull();
    expect(result.error).toContain('the workdir is /');
    expect(provider.started).toEqual([]);
  });
});
