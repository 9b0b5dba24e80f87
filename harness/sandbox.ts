/**
 * The Sandbox contract: a running isolated environment in which an episode's commands
 * run. `sandboxes/docker` implements it; the harness only ever sees this interface.
 */
import type { EnvironmentSpec } from './task.ts';

export interface ExecOptions {
  /** Kill the command after this many ms; the sandbox stays usable. @default 120_000 */
  timeoutMs?: number;
  /** Aborting kills the command and the call rejects with code ABORTED. */
  signal?: AbortSignal;
  /** Working directory. @default the sandbox's workdir */
  cwd?: string;
  /** Extra environment variables for this command only. */
  env?: Record<string, string>;
  /** Bytes given to the command on its standard input; otherwise it reads an empty stdin. */
  stdin?: string | Uint8Array;
  /** User to run as. @default the sandbox's user */
  user?: string;
  /** Cap on each of stdout and stderr, in bytes; the rest is dropped. @default 65_536 */
  maxOutputBytes?: number;
}

export interface ExecResult {
  /** The command's exit status; 137 when it was killed (timeout). Non-zero is data, not an error. */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** True when the command was killed because it ran past its timeout. */
  timedOut: boolean;
  /**
   * Why the sandbox killed the command, when it did: its timeout, its output past the
   * flood limit, or the sandbox's memory limit (the kernel's OOM killer). Absent when the
   * command ended by itself (or an abort ended it: that rejects instead).
   */
  killedBy?: 'timeout' | 'output-limit' | 'memory-limit';
  /** True when stdout or stderr was cut at `maxOutputBytes`. */
  truncated: boolean;
  /** Wall time of the command in ms. */
  durationMs: number;
}

/** A long-lived process inside a sandbox with piped stdio (an MCP server, a language server). */
export interface SandboxProcess {
  /** Bytes written here reach the process's standard input. */
  readonly stdin: NodeJS.WritableStream;
  readonly stdout: NodeJS.ReadableStream;
  readonly stderr: NodeJS.ReadableStream;
  /** Resolves with the exit code when the process ends. */
  readonly exited: Promise<number>;
  /** Kills the process (SIGTERM, then SIGKILL after a grace period). Idempotent. */
  kill(): Promise<void>;
}

export interface Sandbox {
  /** Stable id (the container id for Docker). */
  readonly id: string;
  /** The working directory commands start in. */
  readonly workdir: string;
  /**
   * Runs `command` with `bash -c` semantics. Resolves with the result whatever the exit
   * status; rejects only on infrastructure faults (SANDBOX_FAILED, SANDBOX_CLOSED) or abort.
   */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /**
   * Reads a regular file (symlinks followed). Rejects with FILE_NOT_FOUND when there is no
   * regular file at `path` (nothing there, a folder, a FIFO, a device, a symlink loop: the
   * caller's input; `details.path`, and `details.type` for what is there instead); with
   * SANDBOX_FAILED and `details.tooLarge` when it is larger than `maxBytes` (nothing is
   * read then); with SANDBOX_FAILED (retryable when worth another try) when the sandbox or
   * its engine broke — never for a missing path.
   */
  readFile(path: string, options?: ReadFileOptions): Promise<Uint8Array>;
  /** Writes a file, creating parent folders; `mode` defaults to 0o644. */
  writeFile(
    path: string,
    data: string | Uint8Array,
    options?: { mode?: number; signal?: AbortSignal },
  ): Promise<void>;
  /**
   * Copies a host file or folder (recursively) to `sandboxPath`, creating parent folders.
   * Rejects with FILE_NOT_FOUND when `hostPath` does not exist.
   */
  upload(hostPath: string, sandboxPath: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Starts a long-lived process with piped stdin/stdout/stderr, outside the shell session.
   * Optional: sandboxes that cannot do it leave it out.
   */
  spawn?(
    command: string,
    options?: { cwd?: string; env?: Record<string, string>; user?: string },
  ): Promise<SandboxProcess>;
  /**
   * A tar archive of the file or folder at `path` (recursively; modes, owners and
   * symlinks kept, a symlink at `path` itself included as a link), its entries named from
   * `path`'s basename (as `docker cp` does); `undefined` when nothing is at `path`.
   * Optional, with `extract`: isolated verification (`VerifierSpec.isolation`) needs both.
   */
  download?(path: string, options?: { signal?: AbortSignal }): Promise<NodeJS.ReadableStream | undefined>;
  /**
   * Unpacks a tar archive (such as `download` gives, possibly another sandbox's) into the
   * existing folder `dir`, keeping the entries' modes, owners and symlinks. Rejects with
   * FILE_NOT_FOUND when `dir` is not a folder. Optional.
   */
  extract?(archive: NodeJS.ReadableStream, dir: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Ends the agent's access for good, before verification. Optional capability: a sandbox
   * kind that can stop every process in it implements it; the verifier calls it first.
   * After it resolves:
   * - no process started in the sandbox since it started is running (the agent's
   *   commands, their background, orphaned and forked-off processes, the sandbox's own
   *   command shells, processes from `spawn`), checked after the kill;
   * - system files the agent changed (interpreters, shared libraries, loader
   *   configuration, Python start-up hooks, pytest configuration at `/`) are as the
   *   image had them, each one listed in the report;
   * - `exec` runs in new shells started after the sweep, with the sandbox's configured
   *   environment, so nothing the agent wrote into an earlier shell reaches them.
   * Each call seals anew (a multi-step task's agent works again between verifications);
   * calls made while one runs share it. Resolves with what it did; rejects with
   * SANDBOX_FAILED when the sandbox no longer runs (see `diagnose`), ABORTED.
   */
  seal?(options?: { signal?: AbortSignal }): Promise<SealReport>;
  /**
   * Says whether the sandbox still runs and, when it does not, whether what stopped it
   * came from inside (the agent's own processes: `kill -9 -1`, its memory use) or from
   * outside (removed or stopped through the engine, the engine gone). Optional; the
   * episode loop calls it after a sandbox fault to tell the agent's outcome from an
   * infrastructure fault. Never rejects.
   */
  diagnose?(options?: { signal?: AbortSignal }): Promise<SandboxDiagnosis>;
  /** Stops and removes the sandbox. Idempotent; never rejects. */
  close(): Promise<void>;
}

/** Options of `Sandbox.readFile`. */
export interface ReadFileOptions {
  signal?: AbortSignal;
  /** Larger files are refused (SANDBOX_FAILED with `details.tooLarge`). @default no cap */
  maxBytes?: number;
}

/** What `Sandbox.seal` did: the evidence kept with the verifier's result. */
export interface SealReport {
  /** How the processes were stopped, in words. */
  method: string;
  /** Processes that were stopped and killed. */
  killed: number;
  /** System files put back as the image had them, or removed when the agent had added them. */
  restored: string[];
  /** Anything that weakens the guarantees above (e.g. no static control binary). */
  warnings: string[];
  durationMs: number;
}

/** The answer of `Sandbox.diagnose`. */
export interface SandboxDiagnosis {
  running: boolean;
  /**
   * When not running: `inside` when the sandbox's own processes ended it (every process
   * killed from inside, out of memory), `outside` when the engine was told to stop or
   * remove it or is gone, `unknown` when it cannot be told.
   */
  cause?: 'inside' | 'outside' | 'unknown';
  /** What was seen, for the record (state, exit code, engine events). */
  evidence: string;
}

/** Labels that identify a sandbox's run and episode, so that orphans can be reaped. */
export interface SandboxLabels {
  runId: string;
  episodeId: string;
}

/** Starts sandboxes of one kind. */
export interface SandboxProvider {
  /** A short name for logs, e.g. `docker`. */
  readonly kind: string;
  /**
   * Creates and starts a sandbox for `spec`, with its files copied in. Rejects with
   * IMAGE_NOT_FOUND / IMAGE_BUILD_FAILED / SANDBOX_START_FAILED / ENGINE_UNAVAILABLE.
   * Errors marked `retryable` are worth another attempt.
   */
  start(spec: EnvironmentSpec, options: { labels: SandboxLabels; signal?: AbortSignal }): Promise<Sandbox>;
  /** Prepares what `start` needs (builds images) ahead of time. Optional. */
  prepare?(spec: EnvironmentSpec, options?: { signal?: AbortSignal }): Promise<void>;
}
