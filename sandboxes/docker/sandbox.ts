/**
 * A running Docker container as a `Sandbox`: the class that composes the parts — commands
 * go to long-lived shells inside it (`shell-pool.ts`) under a watchdog (`exec.ts`), files
 * go through the engine's archive API (`files.ts`), sealing and diagnosis read the
 * container from outside (`seal.ts`, `diagnose.ts`) — and owns its lifecycle.
 */
import { performance } from 'node:perf_hooks';
import type Docker from 'dockerode';
import { ERROR_CODES } from '../../harness/errors.ts';
import type {
  ExecOptions,
  ExecResult,
  ReadFileOptions,
  Sandbox,
  SandboxDiagnosis,
  SandboxProcess,
  SealReport,
} from '../../harness/sandbox.ts';
import { diagnoseContainer } from './diagnose.ts';
import { execQuietly, wrapEngineError } from './engine.ts';
import { closedError, throwIfUnusable } from './errors.ts';
import { CommandRunner, type DockerSandboxTuning } from './exec.ts';
import { ContainerFiles } from './files.ts';
import { restoreSystemFiles, sealMethod, sweepProcesses, type SealContext } from './seal.ts';
import { ShellPool } from './shell-pool.ts';
import type { KillerShell, ShellSession } from './shell.ts';
import { spawnInContainer } from './spawn.ts';

interface SandboxInit {
  /** The image the container runs (sealing restores system files from it). */
  image?: string;
  /** How the container was set up for the control channel (see control.ts). */
  control?: { busybox: boolean; init: boolean };
  /** Labels for helper containers the sandbox makes (so that the reaper finds them). */
  helperLabels?: Record<string, string>;
  /** The root shell used to kill; started by the provider. Without it one is started here. */
  killer?: KillerShell | undefined;
  docker: Docker;
  container: Docker.Container;
  workdir: string;
  /** The sandbox's user as configured (spec.user or the image's USER), '' for the image default. */
  user: string;
  shell: ShellSession;
  tuning?: DockerSandboxTuning;
  /** Called once when the sandbox closes (the provider forgets it). */
  onClose?: () => void;
  /** Removes what belongs to the sandbox besides its container (sidecars, network, volumes), after it. */
  release?: () => Promise<void>;
}

/**
 * A sandbox in a Docker container. Created by `DockerSandboxProvider.start`.
 *
 * Commands run one at a time (concurrent `exec` calls queue). A command whose `user`
 * differs from the sandbox's runs in a second long-lived shell started for that user
 * with a separate engine exec on first use (about 50 ms once). Timeouts, aborts and
 * output floods kill the command's whole process group from a root shell kept for that
 * purpose, so that even a fork bomb that exhausted the pids limit can be stopped.
 */
export class DockerSandbox implements Sandbox, AsyncDisposable {
  readonly id: string;
  readonly workdir: string;
  private readonly docker: Docker;
  private readonly container: Docker.Container;
  private readonly user: string;
  private readonly shells: ShellPool;
  private readonly runner: CommandRunner;
  private readonly files: ContainerFiles;
  private readonly sealContext: SealContext;
  private readonly control: { busybox: boolean; init: boolean };
  private closing: Promise<void> | undefined;
  private readonly onClose: (() => void) | undefined;
  private readonly release: (() => Promise<void>) | undefined;
  /** Engine time (seconds since the epoch) when the sandbox was made; engine events are read from here. */
  private readonly createdAtS = Math.floor(Date.now() / 1000) - 1;
  /** The seal in progress, shared by concurrent calls. */
  private sealing: Promise<SealReport> | undefined;

  constructor(init: SandboxInit) {
    this.docker = init.docker;
    this.container = init.container;
    this.id = init.container.id;
    this.workdir = init.workdir;
    this.user = init.user;
    this.onClose = init.onClose;
    this.release = init.release;
    this.control = init.control ?? { busybox: false, init: false };
    const isClosed = () => this.closing !== undefined;
    const checkOpen = (signal: AbortSignal | undefined) => throwIfUnusable(isClosed(), signal);
    this.shells = new ShellPool({
      container: init.container,
      workdir: init.workdir,
      user: init.user,
      shell: init.shell,
      isClosed,
    });
    this.files = new ContainerFiles({
      container: init.container,
      workdir: init.workdir,
      owner: () => this.shells.owner,
      checkOpen,
    });
    this.runner = new CommandRunner({
      container: init.container,
      workdir: init.workdir,
      shells: this.shells,
      killer: init.killer,
      tuning: init.tuning ?? {},
      isClosed,
      putStdin: (path, bytes) =>
        this.files.putFiles([{ name: path.slice(1), data: bytes, mode: 0o644 }], this.shells.owner),
    });
    this.sealContext = {
      docker: init.docker,
      container: init.container,
      image: init.image,
      control: this.control,
      helperLabels: init.helperLabels ?? {},
      readFile: (path, options) => this.files.readFile(path, options),
      checkOpen,
    };
  }

  /** The uid and gid of the sandbox's user (0 for root). */
  get owner(): { uid: number; gid: number } {
    return this.shells.owner;
  }

  // ── exec ────────────────────────────────────────────────────────────────────────

  /**
   * Runs `command` with `bash -c` semantics in the sandbox's shell (see `Sandbox.exec`).
   * Resolves whatever the exit status; a timeout resolves with `timedOut: true` and
   * exit code 137; a command that floods its output past the flood limit is killed
   * (exit code 137, `truncated: true`, a note at the end of stderr). An unknown `user`
   * resolves with exit code 126 and the engine's message on stderr.
   * @throws PaddockError ABORTED (signal; the command is killed), SANDBOX_CLOSED,
   *   SANDBOX_FAILED (the shell died and could not be restarted), CONFIG_INVALID (an env
   *   name that no shell can export).
   */
  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.runner.exec(command, options);
  }

  // ── files (files.ts) ────────────────────────────────────────────────────────────

  /**
   * Reads a regular file through the engine's archive API (symlinks followed). Relative
   * paths are taken from the workdir.
   * @throws PaddockError FILE_NOT_FOUND (no such file, or a folder, FIFO or device: see
   *   `details.type`), SANDBOX_FAILED (over `maxBytes`, with `details.tooLarge`; the
   *   container gone, retryable; the engine refused), SANDBOX_CLOSED, ABORTED.
   */
  readFile(path: string, options: ReadFileOptions = {}): Promise<Uint8Array> {
    return this.files.readFile(path, options);
  }

  /**
   * Writes a file (replacing it), creating missing parent folders, owned by the
   * sandbox's user. @default mode 0o644
   * @throws PaddockError FILE_NOT_FOUND (a folder on the path is a file), SANDBOX_FAILED,
   *   SANDBOX_CLOSED, ABORTED.
   */
  writeFile(
    path: string,
    data: string | Uint8Array,
    options: { mode?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    return this.files.writeFile(path, data, options);
  }

  /**
   * Copies a host file or folder (recursively, symlinks kept as links) to
   * `sandboxPath`, creating missing parents, owned by the sandbox's user. Files are
   * streamed from disk. An existing folder at `sandboxPath` keeps its own mode.
   * @throws PaddockError FILE_NOT_FOUND (no such host path), SANDBOX_FAILED (engine
   *   refusal), SANDBOX_CLOSED, ABORTED.
   */
  upload(hostPath: string, sandboxPath: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.files.upload(hostPath, sandboxPath, options);
  }

  /**
   * The engine's tar archive of `path` (see `Sandbox.download`): owners, modes and
   * symlinks as they are in the container; a symlink at `path` is archived as the link;
   * `undefined` when nothing is there.
   * @throws PaddockError SANDBOX_FAILED (the container gone, retryable; engine refusal),
   *   SANDBOX_CLOSED, ABORTED.
   */
  download(path: string, options: { signal?: AbortSignal } = {}): Promise<NodeJS.ReadableStream | undefined> {
    return this.files.download(path, options);
  }

  /**
   * Unpacks a tar archive into the existing folder `dir` through the engine (see
   * `Sandbox.extract`); entries keep their owners, modes and symlinks.
   * @throws PaddockError FILE_NOT_FOUND (no folder at `dir`), SANDBOX_FAILED (engine
   *   refusal), SANDBOX_CLOSED, ABORTED.
   */
  extract(
    archive: NodeJS.ReadableStream,
    dir: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    return this.files.extract(archive, dir, options);
  }

  /**
   * Gives a non-root sandbox user the workdir when the engine created it for them (it
   * is root-owned, empty and not writable by the user). Called once by the provider.
   * @throws PaddockError SANDBOX_FAILED, SANDBOX_CLOSED.
   */
  async adoptWorkdir(): Promise<void> {
    const { uid, gid } = this.owner;
    if (uid === 0) return;
    const check = await this.exec('test -w . || echo not-writable', { timeoutMs: 30_000 });
    if (!check.stdout.includes('not-writable')) return;
    const cmd = [
      'sh',
      '-c',
      '[ -z "$(ls -A "$1")" ] && chown "$2" "$1"',
      'sh',
      this.workdir,
      `${uid}:${gid}`,
    ];
    try {
      await execQuietly(this.container, cmd);
    } catch (error) {
      throw wrapEngineError(ERROR_CODES.SANDBOX_FAILED, `running ${cmd[0] ?? ''} as root failed`, error);
    }
  }

  // ── spawn ───────────────────────────────────────────────────────────────────────

  /**
   * Starts a long-lived process with piped stdio (an MCP server…) in its own engine
   * exec, outside the command shell; see `spawnInContainer`. cwd defaults to the
   * workdir, user to the sandbox's user. Removing the container on `close()` ends it.
   * @throws PaddockError SANDBOX_CLOSED, SANDBOX_FAILED, ENGINE_UNAVAILABLE.
   */
  async spawn(
    command: string,
    options: { cwd?: string; env?: Record<string, string>; user?: string } = {},
  ): Promise<SandboxProcess> {
    throwIfUnusable(this.closing !== undefined, undefined);
    const user = options.user ?? (this.user || undefined);
    return spawnInContainer(this.id, command, {
      docker: this.docker,
      cwd: options.cwd ? this.files.absolute(options.cwd) : this.workdir,
      ...(options.env ? { env: options.env } : {}),
      ...(user ? { user } : {}),
    });
  }

  // ── seal and diagnose (seal.ts, diagnose.ts) ────────────────────────────────────

  /**
   * Ends the agent's access before verification (see `Sandbox.seal` and control.ts):
   * closes the sandbox's shells, stops and kills every other process from a fresh engine
   * exec of the static control binary, checks that none is left, and restores the system
   * files the agent changed. Later `exec` calls start new shells. Each call seals anew
   * and reports what it did (a multi-step episode seals before each step's verifier, and
   * the agent works in new shells in between); calls made while one runs share it.
   * @throws PaddockError SANDBOX_FAILED (the container does not run, or processes survived),
   *   SANDBOX_CLOSED, ABORTED.
   */
  seal(options: { signal?: AbortSignal } = {}): Promise<SealReport> {
    this.sealing ??= this.sealNow(options.signal).finally(() => {
      this.sealing = undefined;
    });
    return this.sealing;
  }

  private async sealNow(signal: AbortSignal | undefined): Promise<SealReport> {
    const started = performance.now();
    this.sealContext.checkOpen(signal);
    // The shells a root agent may have written into are not used again.
    this.shells.retireAll();
    await this.runner.stopKiller();
    const { killed, warnings } = await sweepProcesses(this.sealContext, signal);
    this.sealContext.checkOpen(signal);
    const restored = await restoreSystemFiles(this.sealContext, signal);
    this.runner.restartKiller();
    return {
      method: sealMethod(this.control),
      killed,
      restored,
      warnings,
      durationMs: performance.now() - started,
    };
  }

  /**
   * Whether the container still runs and, if not, who stopped it (see
   * `Sandbox.diagnose` and `diagnoseContainer`). Never rejects.
   */
  diagnose(options: { signal?: AbortSignal } = {}): Promise<SandboxDiagnosis> {
    return diagnoseContainer(this.docker, this.container, this.createdAtS, options);
  }

  // ── close ───────────────────────────────────────────────────────────────────────

  /**
   * Kills and removes the container (with its anonymous volumes). Idempotent; never
   * rejects. A command in flight rejects with SANDBOX_CLOSED; later calls too.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.runner.rejectRunning(closedError());
      this.shells.closeAll();
      await this.runner.stopKiller();
      try {
        await this.container.remove({ force: true, v: true });
      } catch {
        // Already gone (404) or being removed (409): either way the container is going;
        // anything else is left for the reaper, since close() must not reject.
      }
      await this.release?.().catch(() => undefined); // never rejects; the reaper is the backstop
      this.onClose?.();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
