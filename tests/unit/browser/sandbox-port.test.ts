/**
 * The relay of `browser.sandbox` without Docker: a stand-in sandbox whose `spawn` runs the
 * command in a local shell, so the relay program (bash's /dev/tcp) and the host side
 * (one process per connection, ends in both directions, close) are checked on loopback.
 */
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecResult, SandboxProcess } from '../../../harness/index.ts';
import { openSandboxPort, type SpawningSandbox } from '../../../sandboxes/browser/index.ts';

const live = new Set<ReturnType<typeof spawn>>();

/** A sandbox whose processes are local shells (the host plays the container). */
function localSandbox(options: { bash?: boolean } = {}): SpawningSandbox {
  return {
    id: 'local',
    workdir: '/',
    async exec(): Promise<ExecResult> {
      const ok = options.bash ?? true;
      return {
        exitCode: ok ? 0 : 1,
        stdout: '',
        stderr: '',
        timedOut: false,
        truncated: false,
        durationMs: 0,
      };
    },
    readFile: () => Promise.reject(new Error('unused')),
    writeFile: () => Promise.reject(new Error('unused')),
    upload: () => Promise.reject(new Error('unused')),
    close: async () => undefined,
    async spawn(command: string): Promise<SandboxProcess> {
      const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      live.add(child);
      const exited = new Promise<number>((resolve) =>
        child.once('close', (code) => {
          live.delete(child);
          resolve(code ?? -1);
        }),
      );
      return {
        stdin: child.stdin,
        stdout: child.stdout,
        stderr: child.stderr,
        exited,
        kill: async () => {
          child.kill('SIGKILL');
          await exited;
        },
      };
    },
  };
}

/** A TCP server on the host: `onConnection` decides what each connection gets. */
async function listen(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Sends `text` through the relay, then reads until the relay ends the connection. */
function exchange(hostPort: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(hostPort, '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.once('end', () => resolve(received));
    socket.once('error', reject);
  });
}

afterEach(() => {
  expect(live.size).toBe(0);
});

describe('openSandboxPort', () => {
  it('relays bytes both ways and ends when the server closes; one process per connection', async () => {
    const { server, port } = await listen((socket) =>
      socket.once('data', (chunk) => socket.end(`echo:${chunk.toString()}`)),
    );
    const relay = await openSandboxPort(localSandbox(), port);
    try {
      const answers = await Promise.all(['a', 'b', 'c'].map((text) => exchange(relay.hostPort, text)));
      expect(answers).toEqual(['echo:a', 'echo:b', 'echo:c']);
    } finally {
      await relay.close();
      server.close();
    }
    expect(relay.activeProcesses()).toBe(0);
  });

  it('ends the process in the sandbox when the browser closes the connection', async () => {
    const held: Socket[] = [];
    const { server, port } = await listen((socket) => held.push(socket));
    const relay = await openSandboxPort(localSandbox(), port);
    try {
      const client = connect(relay.hostPort, '127.0.0.1');
      await new Promise((resolve) => client.once('connect', resolve));
      for (let i = 0; i < 100 && relay.activeProcesses() === 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(relay.activeProcesses()).toBe(1);
      client.destroy();
      for (let i = 0; i < 100 && relay.activeProcesses() > 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(relay.activeProcesses()).toBe(0);
    } finally {
      await relay.close();
      for (const socket of held) socket.destroy();
      server.close();
    }
  });

  it('closes a connection at once when nothing listens, and says why', async () => {
    const { server, port } = await listen(() => undefined);
    server.close();
    const relay = await openSandboxPort(localSandbox(), port);
    try {
      expect(await exchange(relay.hostPort, 'hello').catch(() => '')).toBe('');
      for (let i = 0; i < 100 && relay.lastError() === ''; i++) await new Promise((r) => setTimeout(r, 20));
      expect(relay.lastError()).toMatch(/refused/i);
    } finally {
      await relay.close();
    }
  });

  it('closes every open connection and process on close, and stops listening', async () => {
    const held: Socket[] = [];
    const { server, port } = await listen((socket) => held.push(socket));
    const relay = await openSandboxPort(localSandbox(), port);
    const clients = [0, 1, 2].map(() => connect(relay.hostPort, '127.0.0.1').on('error', () => undefined));
    for (let i = 0; i < 100 && relay.activeProcesses() < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(relay.activeProcesses()).toBe(3);
    await relay.close();
    expect(relay.activeProcesses()).toBe(0);
    expect(clients.every((client) => client.destroyed || client.readableEnded)).toBe(true);
    await expect(exchange(relay.hostPort, 'late')).rejects.toThrow(/ECONNREFUSED/);
    for (const socket of held) socket.destroy();
    server.close();
  });

  it('refuses a sandbox without bash, naming what is needed', async () => {
    await expect(openSandboxPort(localSandbox({ bash: false }), 8000)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/no bash.*port 8000.*needs bash/),
    });
  });
});
