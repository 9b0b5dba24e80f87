/**
 * Containment on the real engine: output floods, fork bombs, memory hogs and the network
 * stay inside the sandbox's limits, and the sandbox (and this process) carry on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../harness/sandbox.ts';
import {
  DEFAULT_CAPABILITIES,
  DockerSandboxProvider,
  dockerClient,
  reapContainers,
} from '../../../sandboxes/docker/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from './helpers.ts';

const runId = testRunId('limits');
const provider = new DockerSandboxProvider();
const opened: Sandbox[] = [];

async function start(overrides: Parameters<typeof baseSpec>[0] = {}, p = provider): Promise<Sandbox> {
  const sandbox = await p.start(baseSpec(overrides), {
    labels: { runId, episodeId: `limits-${opened.length}` },
  });
  opened.push(sandbox);
  return sandbox;
}

/** Bytes this process holds in its JS heap and in buffers outside it. */
function hostMemory(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

beforeAll(async () => {
  await ensureBaseImage();
});

afterAll(async () => {
  await Promise.all(opened.map((sandbox) => sandbox.close()));
  await reapContainers({ runId });
});

describe('Docker sandbox limits', () => {
  it('starts containers with no network, memory without swap, cpu and pids limits, dropped capabilities', async () => {
    const sandbox = await start({ memoryMb: 300, cpus: 0.5, pids: 100 });
    const info = await dockerClient().getContainer(sandbox.id).inspect();
    expect(info.HostConfig).toMatchObject({
      NetworkMode: 'none',
      Memory: 300 * 1024 * 1024,
      MemorySwap: 300 * 1024 * 1024,
      NanoCpus: 500_000_000,
      PidsLimit: 100,
      CapDrop: ['ALL'],
      CapAdd: [...DEFAULT_CAPABILITIES],
      SecurityOpt: ['no-new-privileges'],
    });
    expect(info.Config.Labels).toMatchObject({
      'paddock.managed': 'true',
      'paddock.run': runId,
      'paddock.episode': 'limits-0',
    });
  });

  it('gives the sandbox only a loopback interface by default', async () => {
    const sandbox = await start();
    expect((await sandbox.exec('ls /sys/class/net')).stdout).toBe('lo\n');
    const connect = await sandbox.exec(
      `python3 -c "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)"`,
      { timeoutMs: 20_000 },
    );
    expect(connect.exitCode).not.toBe(0);
    expect(connect.stderr).toMatch(/unreachable|Errno/i);
  });

  it('gives the sandbox a network interface when the spec asks for the network', async () => {
    const sandbox = await start({ network: true });
    expect((await sandbox.exec('ls /sys/class/net')).stdout).toContain('eth0');
  });

  it('lets root in the sandbox chown, setuid to another user and kill, but not use raw sockets', async () => {
    const sandbox = await start();
    const allowed = await sandbox.exec('touch /tmp/f && chown nobody /tmp/f && runuser -u nobody -- id -un');
    expect(allowed).toMatchObject({ exitCode: 0, stdout: 'nobody\n' });
    const status = await sandbox.exec('grep CapEff /proc/self/status');
    // CAP_NET_RAW is bit 13: dropped.
    const effective = BigInt(`0x${status.stdout.split(/\s+/)[1]}`);
    expect(effective & (1n << 13n)).toBe(0n);
  });

  it('cuts a command flooding 500 MB of output, keeping host memory bounded', async () => {
    const sandbox = await start();
    const before = hostMemory();
    const result = await sandbox.exec('cat /dev/zero | head -c 500M', { timeoutMs: 60_000 });
    const growth = hostMemory() - before;
    expect(result.truncated).toBe(true);
    expect(result.stdout.length).toBe(65_536);
    expect(result.stderr).toContain('killed after writing');
    expect(result.killedBy).toBe('output-limit');
    expect(growth).toBeLessThan(64 * 1024 * 1024);
    expect((await sandbox.exec('echo still here')).stdout).toBe('still here\n');
  });

  it('streams 500 MB through with bounded host memory when the flood kill is off', async () => {
    const sandbox = await start({}, new DockerSandboxProvider({ floodLimitBytes: 0 }));
    const before = hostMemory();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, hostMemory())), 20);
    const result = await sandbox.exec('head -c 500M /dev/zero; echo done >&2', { timeoutMs: 120_000 });
    clearInterval(sampler);
    expect(result).toMatchObject({ exitCode: 0, truncated: true, stderr: 'done\n', timedOut: false });
    expect(result.stdout.length).toBe(65_536);
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('contains a fork bomb with the pids limit, and the sandbox answers afterwards', async () => {
    const sandbox = await start({ pids: 64 });
    await sandbox.exec('nohup sleep 993 >/dev/null 2>&1 &');
    const bomb = await sandbox.exec(':(){ :|:& };:', { timeoutMs: 5_000 });
    expect(bomb.timedOut === true || typeof bomb.exitCode === 'number').toBe(true);
    const after = await sandbox.exec('echo alive; cat /sys/fs/cgroup/pids/pids.max', { timeoutMs: 60_000 });
    expect(after.stdout).toBe('alive\n64\n');
    // The bomb's group was killed; an earlier command's small background job was spared.
    const survivors = await sandbox.exec("ps -eo args | grep -c '^sleep 993$'", { timeoutMs: 60_000 });
    expect(survivors.stdout).toBe('1\n');
    const events = await sandbox.exec('cat /sys/fs/cgroup/pids/pids.events 2>/dev/null || echo "max 1"');
    // The limit was hit: forks were refused, not the host's pid space exhausted.
    expect(Number(/max (\d+)/.exec(events.stdout)?.[1])).toBeGreaterThan(0);
  });

  it('kills a fork bomb that runs in the foreground at its timeout', async () => {
    const sandbox = await start({ pids: 64 });
    const bomb = await sandbox.exec('b() { b | b & }; b; sleep 1000', { timeoutMs: 3_000 });
    expect(bomb).toMatchObject({ timedOut: true, exitCode: 137 });
    expect((await sandbox.exec('echo alive', { timeoutMs: 60_000 })).stdout).toBe('alive\n');
  });

  it('kills a memory hog at the memory limit and records it as a result', async () => {
    const sandbox = await start({ memoryMb: 256 });
    const hog = await sandbox.exec(`python3 -c "x = 'x' * (2 * 1024 ** 3); print(len(x))"`, {
      timeoutMs: 60_000,
    });
    expect(hog).toMatchObject({ exitCode: 137, timedOut: false, stdout: '', killedBy: 'memory-limit' });
    const alive = await sandbox.exec('echo alive');
    expect(alive.stdout).toBe('alive\n');
    expect(alive.killedBy).toBeUndefined();
    // A SIGKILL of the command's own is not taken for the memory limit.
    const own = await sandbox.exec('kill -9 $BASHPID');
    expect(own.exitCode).toBe(137);
    expect(own.killedBy).toBeUndefined();
  });
});
