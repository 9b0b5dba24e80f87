/**
 * A long-lived shell inside a container, reached through one engine exec with stdin
 * attached: commands are written to it as framed lines (see protocol.ts), so a tool
 * call costs a subshell in the container, forked ahead of it, instead of an engine exec.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import {
  AttachStreamDemuxer,
  CappedBuffer,
  MARKER_BYTE,
  MarkerScanner,
  commandLine,
  parseEnd,
  shellPrelude,
} from './protocol.ts';
import type { Marker } from './protocol.ts';

/** A new random marker nonce (128 bits, hex). */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/** Starts bash when the image has it, sh otherwise. */
const SHELL_COMMAND = [
  'sh',
  '-c',
  'if command -v bash >/dev/null 2>&1; then exec bash --noprofile --norc; fi; exec sh',
];

/** The shell could not be started (the exec failed, or it printed no ready marker). */
export class ShellStartError extends Error {
  override readonly name = 'ShellStartError';
  constructor(
    message: string,
    /** What the engine printed instead of the ready marker (e.g. "unable to find user x"). */
    readonly output: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The shell went away while a command ran (or before it could). */
export class ShellDiedError extends Error {
  override readonly name = 'ShellDiedError';
  constructor(
    message: string,
    /** What the command had written before the shell went away. */
    readonly partial?: { stdout: CappedBuffer; stderr: CappedBuffer },
  ) {
    super(message);
  }
}

/** What one command produced. */
export interface ShellOutcome {
  exitCode: number;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
}

/** One command for the shell. */
export interface ShellCommand {
  command: string;
  cwd: string;
  env?: Record<string, string>;
  /** Bytes for stdin (bash: sent inline), a path of a file in the container, or undefined for /dev/null. */
  stdin?: Uint8Array | { path: string };
  maxOutputBytes: number;
  /** Called once with the command's process group id, as soon as the shell reports it. */
  onPid?: (pid: number) => void;
  /** Called after each chunk with the bytes seen so far on both streams. */
  onOutput?: (totalBytes: number) => void;
}

interface Running {
  /** The worker's pid, from the begin marker on stdout and on stderr. */
  stdoutPid?: number;
  stderrPid?: number;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  exitCode?: number;
  stderrEnded: boolean;
  command: ShellCommand;
  resolve: (outcome: ShellOutcome) => void;
  reject: (error: Error) => void;
}

/** Options of `ShellSession.open`. */
export interface ShellSessionOptions {
  /** User of the exec (name or uid[:gid]); undefined = the container's user. */
  user?: string;
  /** Working directory of the exec. */
  workdir?: string;
  /** How long to wait for the ready marker. @default 30_000 */
  readyTimeoutMs?: number;
}

/**
 * One shell process in a container. Runs one command at a time (callers serialise);
 * `run` resolves when the command's end markers arrive and rejects with
 * `ShellDiedError` if the shell goes away first.
 */
export class ShellSession {
  /** `bash` or `sh`. */
  shell = 'sh';
  /** Numeric uid and gid the shell runs as (-1 when `id` is missing). */
  uid = -1;
  gid = -1;
  private socket: Duplex | undefined;
  private readonly out: MarkerScanner;
  private readonly err: MarkerScanner;
  private readonly demux: AttachStreamDemuxer;
  private running: Running | undefined;
  /** The marker nonce of this shell: unguessable by the commands it runs. */
  private readonly nonce = newNonce();
  private onReady: ((marker: Marker) => void) | undefined;
  /** Raw stdout before the ready marker (the engine's error text when the exec fails). */
  private startupOutput = '';
  private deadReason: string | undefined;
  private readonly deathListeners: ((reason: string) => void)[] = [];

  private constructor(
    private readonly container: Docker.Container,
    readonly options: ShellSessionOptions,
  ) {
    this.out = new MarkerScanner(
      (bytes) => this.onBody(1, bytes),
      (marker) => this.onMarker(1, marker),
    );
    this.err = new MarkerScanner(
      (bytes) => this.onBody(2, bytes),
      (marker) => this.onMarker(2, marker),
    );
    this.demux = new AttachStreamDemuxer((stream, payload) => {
      if (stream === 1) {
        if (this.onReady && this.startupOutput.length < 4096) this.startupOutput += payload.toString('utf8');
        this.out.push(payload);
      } else {
        this.err.push(payload);
      }
    });
  }

  /**
   * Starts a shell in `container` and waits until it is ready.
   * @throws ShellStartError when the exec fails (unknown user, no shell) or stays silent.
   * @throws the engine's error when the exec cannot be created.
   */
  static async open(container: Docker.Container, options: ShellSessionOptions = {}): Promise<ShellSession> {
    const session = new ShellSession(container, options);
    await session.start();
    return session;
  }

  /** True until the shell dies or is closed. */
  get alive(): boolean {
    return this.deadReason === undefined;
  }

  /** Registers a listener called once when the shell dies or is closed. */
  onDeath(listener: (reason: string) => void): void {
    this.deathListeners.push(listener);
  }

  private async start(): Promise<void> {
    const exec = await this.container.exec({
      Cmd: SHELL_COMMAND,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      ...(this.options.user !== undefined ? { User: this.options.user } : {}),
      ...(this.options.workdir !== undefined ? { WorkingDir: this.options.workdir } : {}),
    });
    const socket: Duplex = await exec.start({ hijack: true, stdin: true });
    this.socket = socket;
    (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.demux.push(chunk));
    socket.on('error', (error: Error) => this.die(`the shell's connection failed: ${error.message}`));
    socket.on('close', () => this.die('the shell exited'));
    socket.on('end', () => this.die('the shell exited'));

    this.out.expect(this.nonce);
    const ready = new Promise<Marker>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ShellStartError('the shell did not start', this.startupOutput)),
        this.options.readyTimeoutMs ?? 30_000,
      );
      this.onReady = (marker) => {
        clearTimeout(timer);
        resolve(marker);
      };
      this.onDeath(() => {
        clearTimeout(timer);
        const output = this.startupOutput
          .replace(new RegExp(`${String.fromCharCode(MARKER_BYTE)}[^\n]*\n?`, 'g'), '')
          .trim();
        reject(new ShellStartError(output || 'the shell exited at once', output));
      });
    });
    socket.write(shellPrelude(this.nonce));
    try {
      const marker = await ready;
      const [uid, gid, shell] = marker.value.split(' ');
      this.uid = Number(uid ?? -1);
      this.gid = Number(gid ?? -1);
      this.shell = shell === 'bash' ? 'bash' : 'sh';
    } catch (error) {
      this.close();
      throw error;
    } finally {
      this.onReady = undefined;
      this.startupOutput = '';
    }
  }

  /** True when stdin bytes can be sent inline (bash never reads ahead of a line). */
  get inlineStdin(): boolean {
    return this.shell === 'bash';
  }

  /**
   * Runs one command. Only one at a time.
   * @throws ShellDiedError when the shell dies before the command ends.
   */
  run(command: ShellCommand): Promise<ShellOutcome> {
    const socket = this.socket;
    if (!socket || this.deadReason !== undefined) {
      return Promise.reject(new ShellDiedError(this.deadReason ?? 'the shell is not running'));
    }
    if (this.running) return Promise.reject(new Error('ShellSession.run: a command is already running'));
    let stdinArg: number | string = -1;
    let stdinBytes: Uint8Array | undefined;
    if (command.stdin instanceof Uint8Array) {
      if (!this.inlineStdin) throw new Error('ShellSession.run: inline stdin needs bash');
      stdinArg = command.stdin.length;
      stdinBytes = command.stdin;
    } else if (command.stdin) {
      stdinArg = command.stdin.path;
    }
    const line = commandLine({
      cwd: command.cwd,
      command: command.command,
      env: command.env,
      stdin: stdinArg,
    });
    return new Promise<ShellOutcome>((resolve, reject) => {
      this.running = {
        stdout: new CappedBuffer(command.maxOutputBytes),
        stderr: new CappedBuffer(command.maxOutputBytes),
        stderrEnded: false,
        command,
        resolve,
        reject,
      };
      this.out.expect(this.nonce);
      this.err.expect(this.nonce);
      socket.write(
        stdinBytes && stdinBytes.length > 0 ? Buffer.concat([Buffer.from(line), stdinBytes]) : line,
      );
    });
  }

  private onBody(stream: 1 | 2, bytes: Buffer): void {
    const running = this.running;
    if (!running) return;
    (stream === 1 ? running.stdout : running.stderr).push(bytes);
    running.command.onOutput?.(running.stdout.total + running.stderr.total);
  }

  private onMarker(stream: 1 | 2, marker: Marker): void {
    if (marker.kind === 'r') {
      this.onReady?.(marker);
      return;
    }
    const running = this.running;
    if (!running) return;
    if (marker.kind === 'b') {
      const pid = Number(marker.value);
      if (!Number.isInteger(pid) || pid <= 0) return;
      const first = running.stdoutPid === undefined && running.stderrPid === undefined;
      if (stream === 1) running.stdoutPid = pid;
      else running.stderrPid = pid;
      if (first) running.command.onPid?.(pid);
      return;
    }
    if (marker.kind !== 'e') return;
    // An end marker of a worker this stream never saw begin is a worker that died
    // before it took a line (killed while idle): its successor will take ours.
    if (stream === 1) {
      const end = parseEnd(marker.value);
      if (!end || end.pid !== running.stdoutPid) return;
      running.exitCode = end.exitCode;
    } else {
      if (Number(marker.value) !== running.stderrPid) return;
      running.stderrEnded = true;
    }
    if (running.exitCode !== undefined && running.stderrEnded) {
      this.running = undefined;
      this.out.reset();
      this.err.reset();
      running.resolve({ exitCode: running.exitCode, stdout: running.stdout, stderr: running.stderr });
    }
  }

  private die(reason: string): void {
    if (this.deadReason !== undefined) return;
    this.deadReason = reason;
    const running = this.running;
    this.running = undefined;
    running?.reject(
      new ShellDiedError(reason, running && { stdout: running.stdout, stderr: running.stderr }),
    );
    for (const listener of this.deathListeners.splice(0)) listener(reason);
  }

  /** Ends the shell (its running command, if any, rejects with ShellDiedError). */
  close(): void {
    this.die('the shell was closed');
    this.socket?.destroy();
  }
}

/** The container's process count and who holds the processes, as the killer shell saw them. */
export interface PidsSnapshot {
  /** Processes in the container's pids cgroup. */
  current: number;
  /** The cgroup's limit; undefined when there is none or it cannot be read. */
  max: number | undefined;
  /** Process group id → number of processes in it. */
  groups: Map<number, number>;
}

/** The script behind `KillerShell.snapshot`: shell builtins only, so it runs when nothing can fork. */
export function snapshotScript(endToken: string): string {
  return (
    'c=; m=; for f in /sys/fs/cgroup/pids/pids /sys/fs/cgroup/pids; do ' +
    'if read c < $f.current && read m < $f.max; then break; fi; c=; m=; done 2>/dev/null; ' +
    'echo "L $c $m"; ' +
    'for d in /proc/[0-9]*; do read -r s < $d/stat && echo "P ${s##*) }"; done 2>/dev/null; ' +
    `echo "E ${endToken}"\n`
  );
}

/** The script behind `KillerShell.oomKills` (cgroup v2 `memory.events`, v1 `memory.oom_control`): builtins only. */
export function oomKillsScript(endToken: string): string {
  return (
    'n=; for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do ' +
    'if [ -r $f ]; then while read -r k v; do if [ "$k" = oom_kill ]; then n=$v; fi; done < $f; break; fi; done 2>/dev/null; ' +
    `echo "O $n"; echo "E ${endToken}"\n`
  );
}

/** Parses the output of `snapshotScript` (lines `L cur max`, `P state ppid pgrp …`). */
export function parseSnapshot(text: string): PidsSnapshot {
  const snapshot: PidsSnapshot = { current: 0, max: undefined, groups: new Map() };
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts[0] === 'L') {
      snapshot.current = Number(parts[1]) || 0;
      const max = Number(parts[2]);
      snapshot.max = Number.isFinite(max) && max > 0 ? max : undefined;
    } else if (parts[0] === 'P') {
      const pgrp = Number(parts[3]);
      if (Number.isInteger(pgrp) && pgrp > 0) snapshot.groups.set(pgrp, (snapshot.groups.get(pgrp) ?? 0) + 1);
    }
  }
  return snapshot;
}

/**
 * A root shell kept beside the command shell to kill process groups and to look at the
 * container's processes: `kill`, `read` and `echo` are shell builtins, so it works even
 * when a fork bomb has used up the container's pids limit (a new engine exec would not
 * start then). Requests that answer are served one at a time.
 */
export class KillerShell {
  private output = '';
  private waiting: { token: string; resolve: (text: string | undefined) => void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private counter = 0;

  private constructor(private readonly socket: Duplex) {
    const demux = new AttachStreamDemuxer((stream, payload) => {
      if (stream !== 1 || !this.waiting) return;
      this.output += payload.toString('latin1');
      const end = this.output.indexOf(`E ${this.waiting.token}\n`);
      if (end >= 0) {
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting.resolve(this.output.slice(0, end));
      } else if (this.output.length > 4 * 1024 * 1024) {
        this.output = ''; // not ours to keep: something is wrong with this answer
      }
    });
    socket.on('data', (chunk: Buffer) => demux.push(chunk));
    socket.on('error', () => undefined); // a dead killer is noticed by `alive`; nothing to report
    socket.on('close', () => this.waiting?.resolve(undefined));
  }

  /** Starts `sh` as root in `container`. @throws the engine's error. */
  static async open(container: Docker.Container): Promise<KillerShell> {
    const exec = await container.exec({
      Cmd: ['sh'],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: false,
      Tty: false,
      User: '0',
    });
    const socket: Duplex = await exec.start({ hijack: true, stdin: true });
    return new KillerShell(socket);
  }

  get alive(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /** Sends SIGKILL to process group `pgid` and to `pgid` itself. Fire and forget. */
  kill(pgid: number): void {
    if (!Number.isInteger(pgid) || pgid <= 1) return;
    this.socket.write(`kill -9 -${pgid} 2>/dev/null; kill -9 ${pgid} 2>/dev/null\n`);
  }

  /**
   * The pids cgroup's use and the process groups of every process in the container;
   * undefined when the shell does not answer within `timeoutMs`.
   */
  async snapshot(timeoutMs = 5_000): Promise<PidsSnapshot | undefined> {
    const text = await this.ask(snapshotScript, timeoutMs);
    return text === undefined ? undefined : parseSnapshot(text);
  }

  /**
   * How many processes the kernel's OOM killer has killed in the container's memory
   * cgroup so far; undefined when the count cannot be read or the shell does not answer.
   */
  async oomKills(timeoutMs = 5_000): Promise<number | undefined> {
    const text = await this.ask(oomKillsScript, timeoutMs);
    const count = Number(/^O (\d+)$/m.exec(text ?? '')?.[1] ?? Number.NaN);
    return Number.isInteger(count) ? count : undefined;
  }

  /** Runs `script(token)` and returns what it printed before `E <token>`. */
  private ask(script: (token: string) => string, timeoutMs: number): Promise<string | undefined> {
    const run = async (): Promise<string | undefined> => {
      if (!this.alive) return undefined;
      const token = `${process.pid}-${++this.counter}`;
      this.output = '';
      const text = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => {
          this.waiting = undefined;
          resolve(undefined);
        }, timeoutMs);
        this.waiting = {
          token,
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
        };
        this.socket.write(script(token));
      });
      return text;
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.socket.destroy();
  }
}
