/**
 * The exec path of a Docker sandbox: commands queue for the sandbox's shells, and each one
 * runs under a watchdog — its deadline, the output flood limit and the kill that follows
 * either (repeated until the command's process group is gone, the shell replaced when it
 * does not answer), the pids check that frees a starved command from what an earlier
 * command left running (a fork bomb), and the OOM check that tells the kernel's kill at
 * the memory limit from the command's own exit 137.
 */
import { posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import type Docker from 'dockerode';
import { ERROR_CODES, PaddockError } from '../../harness/errors.ts';
import type { ExecOptions, ExecResult } from '../../harness/sandbox.ts';
import { abortedError, closedError } from './errors.ts';
import type { CappedBuffer } from './protocol.ts';
import { ENV_NAME } from './protocol.ts';
import type { ShellPool } from './shell-pool.ts';
import {
  KillerShell,
  ShellDiedError,
  ShellStartError,
  newNonce,
  type ShellOutcome,
  type ShellSession,
} from './shell.ts';

/** Default of `ExecOptions.timeoutMs`. */
export const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
/** Default of `ExecOptions.maxOutputBytes`. */
export const DEFAULT_MAX_OUTPUT_BYTES = 65_536;
/** Minimum output, in bytes over both streams, after which a flooding command is killed. */
export const MIN_FLOOD_LIMIT_BYTES = 16 * 1024 * 1024;
/** A command still running this long after it was killed means the shell is stuck. */
const KILL_GRACE_MS = 5_000;
/** How often a kill is repeated until the command is gone (a fork bomb races its kill). */
const KILL_REPEAT_MS = 500;
/** A command running this long gets the container's pids checked (then every PIDS_CHECK_INTERVAL_MS). */
const SLOW_COMMAND_MS = 1_000;
const PIDS_CHECK_INTERVAL_MS = 2_000;
/** The pids cgroup counts as exhausted from this share of its limit. */
const PIDS_EXHAUSTED_SHARE = 0.9;
/** An earlier command's process group holding this share of the pids limit is a hog. */
const PIDS_HOG_SHARE = 0.25;
/** Process groups of earlier commands remembered for `KillerShell.rescue`. */
const MAX_REMEMBERED_GROUPS = 1_024;

/** Tuning of a Docker sandbox (the provider passes these). */
export interface DockerSandboxTuning {
  /**
   * Output (both streams together, in bytes) after which a command is killed: the
   * larger of this and 64 × `maxOutputBytes`. Output past the cap is dropped anyway;
   * this stops a runaway `yes` from burning CPU until its timeout. 0 disables it.
   * @default 16 MiB
   */
  floodLimitBytes?: number;
}

/** What a `CommandRunner` needs of its sandbox. */
export interface CommandRunnerInit {
  container: Docker.Container;
  /** The directory commands start in (relative `cwd`s are taken from it). */
  workdir: string;
  shells: ShellPool;
  /** The root shell used to kill; started by the provider. Without it one is started here. */
  killer?: KillerShell | undefined;
  tuning: DockerSandboxTuning;
  /** True once the sandbox is closing. */
  isClosed: () => boolean;
  /** Puts a command's stdin in place as a file, for shells that cannot take it inline (`sh`). */
  putStdin: (path: string, bytes: Uint8Array) => Promise<void>;
}

/**
 * Runs a sandbox's commands one at a time (concurrent `exec` calls queue). Timeouts,
 * aborts and output floods SIGKILL the command's whole process group from a root shell
 * kept for that purpose, so that even a fork bomb that exhausted the pids limit can be
 * stopped; without that shell, kills fall back to an engine exec.
 */
export class CommandRunner {
  private killer: Promise<KillerShell | undefined>;
  /** The OOM kills of the container's memory cgroup last seen (a new container has none). */
  private oomKillsSeen = 0;
  private queue: Promise<void> = Promise.resolve();
  /** Process groups of earlier commands (they may have left processes running). */
  private readonly groups = new Set<number>();
  private relieving = false;
  /** Rejects the command in flight (the sandbox closes). */
  private rejectInFlight: ((error: PaddockError) => void) | undefined;

  constructor(private readonly init: CommandRunnerInit) {
    this.killer = init.killer ? Promise.resolve(init.killer) : this.startKiller();
  }

  /**
   * Runs `command` (see `DockerSandbox.exec`): queued behind the commands before it,
   * then run under its watchdog.
   * @throws PaddockError ABORTED, SANDBOX_CLOSED, SANDBOX_FAILED, CONFIG_INVALID (an env
   *   name that no shell can export).
   */
  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.init.isClosed()) return Promise.reject(closedError());
    if (options.signal?.aborted) return Promise.reject(abortedError(options.signal));
    for (const name of Object.keys(options.env ?? {})) {
      if (!ENV_NAME.test(name)) {
        return Promise.reject(
          new PaddockError(
            ERROR_CODES.CONFIG_INVALID,
            `exec: invalid environment variable name ${JSON.stringify(name)}`,
          ),
        );
      }
    }
    // Queue: each command waits for the previous one's shell to be free again.
    const previous = this.queue;
    let release!: () => void;
    const slot = new Promise<void>((resolve) => (release = resolve));
    this.queue = previous.then(() => slot);
    return new Promise<ExecResult>((resolve, reject) => {
      const signal = options.signal;
      let started = false;
      const onQueuedAbort = () => {
        if (started) return;
        release();
        reject(abortedError(signal));
      };
      signal?.addEventListener('abort', onQueuedAbort, { once: true });
      void previous.then(() => {
        signal?.removeEventListener('abort', onQueuedAbort);
        if (signal?.aborted) return; // already rejected and released
        started = true;
        if (this.init.isClosed()) {
          release();
          reject(closedError());
          return;
        }
        this.runNow(command, options, release).then(resolve, reject);
      });
    });
  }

  /** Rejects the command in flight, if any, with `error` (the sandbox closes). */
  rejectRunning(error: PaddockError): void {
    this.rejectInFlight?.(error);
  }

  /** Closes the root shell used to kill; until `restartKiller`, kills go through engine execs. */
  async stopKiller(): Promise<void> {
    const killer = await this.killer;
    killer?.close();
    this.killer = Promise.resolve(undefined);
  }

  /** Starts a new root shell to kill with (after `stopKiller`). */
  restartKiller(): void {
    this.killer = this.startKiller();
  }

  private startKiller(): Promise<KillerShell | undefined> {
    // A sandbox without its killer still works: kills fall back to an engine exec.
    return KillerShell.open(this.init.container).catch(() => undefined);
  }

  /** Runs one command now; calls `release` when the shell is free for the next one. */
  private async runNow(command: string, options: ExecOptions, release: () => void): Promise<ExecResult> {
    const startedAt = performance.now();
    const maxOutputBytes = Math.max(0, options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES);
    const userKey = this.init.shells.keyFor(options.user);
    let ready: Awaited<ReturnType<CommandRunner['prepare']>>;
    try {
      ready = await this.prepare(userKey, options.stdin, startedAt);
    } catch (error) {
      release();
      throw error;
    }
    if (!('shell' in ready)) {
      release();
      return ready;
    }
    const { shell, stdin } = ready;
    const watch = new CommandWatch({
      startedAt,
      timeoutMs: options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
      floodLimit: this.floodLimit(maxOutputBytes),
      kill: (pid) => this.killGroup(pid),
      relieve: (pid) => void this.relievePids(pid),
      giveUp: () => shell.close(),
    });
    const outcome = shell.run({
      command,
      cwd: options.cwd ? posix.resolve(this.init.workdir, options.cwd) : this.init.workdir,
      ...(options.env ? { env: options.env } : {}),
      ...(stdin !== undefined ? { stdin } : {}),
      maxOutputBytes,
      onPid: (pid) => {
        this.rememberGroup(pid);
        watch.started(pid);
      },
      onOutput: (total) => watch.output(total),
    });
    // The next command may start once this one's shell is done (even if this call was aborted).
    void outcome
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        watch.stop();
        release();
      });
    return this.settle(outcome, watch, userKey, options.signal);
  }

  /**
   * The shell for `userKey` and the command's stdin, put in place; or, for a user the
   * container does not know, the result `docker exec -u` gives (exit 126, the engine's
   * message on stderr): the caller's data, not a fault.
   */
  private async prepare(
    userKey: string,
    input: ExecOptions['stdin'],
    startedAt: number,
  ): Promise<{ shell: ShellSession; stdin: Uint8Array | { path: string } | undefined } | ExecResult> {
    let shell: ShellSession;
    try {
      shell = await this.init.shells.get(userKey);
    } catch (error) {
      if (!(error instanceof ShellStartError && userKey !== '')) throw error;
      return {
        exitCode: 126,
        stdout: '',
        stderr: `${error.output || error.message}\n`,
        timedOut: false,
        truncated: false,
        durationMs: performance.now() - startedAt,
      };
    }
    if (input === undefined) return { shell, stdin: undefined };
    const bytes = typeof input === 'string' ? Buffer.from(input) : input;
    if (shell.inlineStdin) return { shell, stdin: bytes };
    // sh reads ahead of its input, so stdin goes in as a file first.
    const path = `/tmp/.paddock-stdin-${newNonce()}`;
    await this.init.putStdin(path, bytes);
    return { shell, stdin: { path } };
  }

  private floodLimit(maxOutputBytes: number): number {
    const { floodLimitBytes } = this.init.tuning;
    if (floodLimitBytes === 0) return Infinity;
    return Math.max(floodLimitBytes ?? MIN_FLOOD_LIMIT_BYTES, 64 * maxOutputBytes);
  }

  /**
   * The call's answer once the command ends: its result (with why it was killed), or,
   * when the shell died under it, the partial result after the shell was replaced.
   * Rejects with ABORTED on `signal` (the command is killed), SANDBOX_CLOSED when the
   * sandbox closes first, SANDBOX_FAILED when no new shell starts.
   */
  private settle(
    outcome: Promise<ShellOutcome>,
    watch: CommandWatch,
    userKey: string,
    signal: AbortSignal | undefined,
  ): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      let done = false;
      const finish = (action: () => void) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        this.rejectInFlight = undefined;
        action();
      };
      const onAbort = () => {
        watch.requestKill();
        finish(() => reject(abortedError(signal)));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.rejectInFlight = (error) => finish(() => reject(error));
      if (signal?.aborted) onAbort(); // aborted while the shell or stdin was being readied
      outcome.then(
        async (result) => {
          // A SIGKILL that was not ours may be the kernel's, at the memory limit.
          const oom = result.exitCode === 137 && !watch.killWanted && (await this.newOomKill());
          finish(() => resolve(watch.result(result.exitCode, result.stdout, result.stderr, oom)));
        },
        (error: unknown) => {
          if (done) return;
          this.afterShellDied(userKey, error, watch).then(
            (result) => finish(() => resolve(result)),
            (failure: unknown) =>
              finish(() => reject(failure instanceof Error ? failure : new Error(String(failure)))),
          );
        },
      );
    });
  }

  /** Replaces the shell that died during a command; the command's result is what it had written. */
  private async afterShellDied(userKey: string, error: unknown, watch: CommandWatch): Promise<ExecResult> {
    const partial = error instanceof ShellDiedError ? error.partial : undefined;
    await this.init.shells.recover(userKey, error);
    const oom = !watch.killWanted && (await this.newOomKill());
    const result = watch.result(137, partial?.stdout, partial?.stderr, oom);
    // Said only when the shell died by itself, not when a timeout or kill of ours took it.
    if (!watch.timedOut && !watch.killWanted) {
      result.stderr += '\n[paddock: the sandbox shell died during this command and was restarted]\n';
    }
    return result;
  }

  /** Whether the kernel's OOM killer has killed in the container since the last look. */
  private async newOomKill(): Promise<boolean> {
    const killer = await this.killer;
    const count = killer?.alive ? await killer.oomKills() : undefined;
    if (count === undefined || count <= this.oomKillsSeen) return false;
    this.oomKillsSeen = count;
    return true;
  }

  private rememberGroup(pgid: number): void {
    this.groups.delete(pgid);
    this.groups.add(pgid);
    if (this.groups.size > MAX_REMEMBERED_GROUPS) {
      const oldest = this.groups.values().next().value;
      if (oldest !== undefined) this.groups.delete(oldest);
    }
  }

  /**
   * When the container's pids cgroup is nearly exhausted, SIGKILLs the process groups of
   * earlier commands that hold a large share of it (a fork bomb left running in the
   * background), so that the current command can fork. Small leftovers (a background
   * server) and the current command are spared.
   */
  private async relievePids(currentPgid: number | undefined): Promise<void> {
    if (this.relieving) return;
    this.relieving = true;
    try {
      const killer = await this.killer;
      const snapshot = killer?.alive ? await killer.snapshot() : undefined;
      if (!killer || !snapshot || snapshot.max === undefined) return;
      if (snapshot.current < PIDS_EXHAUSTED_SHARE * snapshot.max) return;
      for (const [pgid, count] of snapshot.groups) {
        if (pgid !== currentPgid && this.groups.has(pgid) && count >= PIDS_HOG_SHARE * snapshot.max) {
          killer.kill(pgid);
        }
      }
    } finally {
      this.relieving = false;
    }
  }

  private killGroup(pid: number): void {
    void this.killer.then(async (killer) => {
      if (killer?.alive) {
        killer.kill(pid);
        return;
      }
      // No root shell: an engine exec (fails when the pids limit is exhausted).
      this.killer = this.startKiller();
      try {
        const exec = await this.init.container.exec({
          Cmd: ['sh', '-c', `kill -9 -${pid} 2>/dev/null; kill -9 ${pid} 2>/dev/null`],
          User: '0',
          AttachStdout: false,
          AttachStderr: false,
        });
        await exec.start({ Detach: true });
      } catch {
        // The next attempt of requestKill (or the grace period) deals with it.
      }
    });
  }
}

/** What a `CommandWatch` acts through. */
interface CommandWatchInit {
  /** `performance.now()` when the call began. */
  startedAt: number;
  timeoutMs: number;
  /** Output over both streams, in bytes, past which the command is killed (Infinity: never). */
  floodLimit: number;
  /** SIGKILLs the process group `pid`. */
  kill: (pid: number) => void;
  /** Looks for hogs of the pids limit, sparing `pid` (the command's own group). */
  relieve: (pid: number | undefined) => void;
  /** Gives up on the shell: the command outlived its kill by the grace period. */
  giveUp: () => void;
}

/**
 * One command's watchdog: one timer serves its deadline and the pids check, its output
 * is counted against the flood limit, and a kill, once wanted, is repeated every
 * KILL_REPEAT_MS until the command ends (or the shell is given up after KILL_GRACE_MS).
 */
class CommandWatch {
  /** The command's process group, once the shell reported it. */
  private pid: number | undefined;
  killWanted = false;
  timedOut = false;
  flooded = false;
  private timer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly deadline: number;
  private nextPidsCheck: number;

  constructor(private readonly init: CommandWatchInit) {
    this.deadline = init.startedAt + init.timeoutMs;
    // A command still running (or not yet started) after SLOW_COMMAND_MS may be starved of
    // pids by what an earlier command left running (a fork bomb), so look then.
    this.nextPidsCheck = init.startedAt + SLOW_COMMAND_MS;
    this.timer = setTimeout(this.tick, Math.max(1, Math.min(init.timeoutMs, SLOW_COMMAND_MS)));
  }

  /** The shell reported the command's process group. */
  started(pid: number): void {
    this.pid = pid;
    if (this.killWanted) this.init.kill(pid);
  }

  /** The command has written `total` bytes over both streams. */
  output(total: number): void {
    if (total > this.init.floodLimit && !this.flooded) {
      this.flooded = true;
      this.requestKill();
    }
  }

  /** Kills the command now and again until it is gone; the shell is given up after the grace period. */
  requestKill(): void {
    if (this.killWanted) return;
    this.killWanted = true;
    if (this.pid !== undefined) this.init.kill(this.pid);
    const giveUpAt = performance.now() + KILL_GRACE_MS;
    const again = () => {
      if (performance.now() > giveUpAt) {
        this.init.giveUp();
        return;
      }
      if (this.pid !== undefined) this.init.kill(this.pid);
      this.killTimer = setTimeout(again, KILL_REPEAT_MS);
    };
    this.killTimer = setTimeout(again, KILL_REPEAT_MS);
  }

  /** The command ended: no more timers. */
  stop(): void {
    clearTimeout(this.timer);
    clearTimeout(this.killTimer);
  }

  /** The call's result from the command's exit code and output, with why it was killed. */
  result(
    exitCode: number,
    stdout: CappedBuffer | undefined,
    stderr: CappedBuffer | undefined,
    oom: boolean,
  ): ExecResult {
    let err = stderr?.text() ?? '';
    if (this.flooded && !this.timedOut) {
      const total = (stdout?.total ?? 0) + (stderr?.total ?? 0);
      err += `${err && !err.endsWith('\n') ? '\n' : ''}[paddock: the command was killed after writing ${total} bytes of output]\n`;
    }
    const result: ExecResult = {
      exitCode: this.timedOut ? 137 : exitCode,
      stdout: stdout?.text() ?? '',
      stderr: err,
      timedOut: this.timedOut,
      truncated: Boolean(stdout?.truncated || stderr?.truncated || this.flooded),
      durationMs: performance.now() - this.init.startedAt,
    };
    const killedBy = this.timedOut
      ? 'timeout'
      : this.flooded
        ? 'output-limit'
        : oom
          ? 'memory-limit'
          : undefined;
    return killedBy ? { ...result, killedBy } : result;
  }

  private readonly tick = (): void => {
    const now = performance.now();
    if (now >= this.deadline) {
      this.timedOut = true;
      this.requestKill();
      return;
    }
    if (now >= this.nextPidsCheck) {
      this.init.relieve(this.pid);
      this.nextPidsCheck = now + PIDS_CHECK_INTERVAL_MS;
    }
    this.timer = setTimeout(this.tick, Math.max(1, Math.min(this.deadline, this.nextPidsCheck) - now));
  };
}
