/**
 * The two halves of sealing a Docker sandbox (see `Sandbox.seal` and control.ts), run by
 * `DockerSandbox.seal` once it has closed its own shells: the sweep that stops, kills and
 * checks every process from a fresh engine exec of the static control binary, and the
 * restore of the system files the agent changed, as the image has them.
 */
import { posix } from 'node:path';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { startDeadline } from '../../harness/deadline.ts';
import { ERROR_CODES, PaddockError } from '../../harness/errors.ts';
import type { ReadFileOptions } from '../../harness/sandbox.ts';
import {
  CONTROL_BUSYBOX,
  SWEEP_SCRIPT,
  copyFromLayers,
  copyImageEntry,
  overlayLayers,
  restorePlan,
  statIn,
  statInLayers,
  upperChanges,
  type FsChange,
  type OverlayLayers,
} from './control.ts';
import { wrapEngineError } from './engine.ts';
import { abortedError } from './errors.ts';
import { CappedBuffer } from './protocol.ts';

/** What sealing needs of the sandbox. */
export interface SealContext {
  docker: Docker;
  container: Docker.Container;
  /** The image the container runs; without it no system file is restored. */
  image: string | undefined;
  /** How the container was set up for the control channel (see control.ts). */
  control: { busybox: boolean; init: boolean };
  /** Labels for the helper container made from the image (so that the reaper finds it). */
  helperLabels: Record<string, string>;
  /** The sandbox's `readFile` (the restore plan reads small files the agent changed). */
  readFile: (path: string, options?: ReadFileOptions) => Promise<Uint8Array>;
  /** Throws SANDBOX_CLOSED when the sandbox is closed, ABORTED when `signal` is aborted. */
  checkOpen: (signal: AbortSignal | undefined) => void;
}

/** The output of a control command. */
export interface ControlResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How `sweepProcesses` stopped the processes, in words, for the seal report. */
export function sealMethod(control: { busybox: boolean }): string {
  return control.busybox
    ? 'every process but the init and keep-alive stopped, killed and checked by a static busybox from a read-only volume, in a fresh engine exec'
    : "every process but the init and keep-alive stopped, killed and checked by the image's sh, in a fresh engine exec";
}

/**
 * Stops, kills and checks every process in the container but its init and keep-alive,
 * from a fresh engine exec (the sandbox's shells must be closed first). Resolves with how
 * many were killed and what weakens the guarantee.
 * @throws PaddockError SANDBOX_FAILED (the container does not run, or processes survived),
 *   ABORTED.
 */
export async function sweepProcesses(
  context: SealContext,
  signal: AbortSignal | undefined,
): Promise<{ killed: number; warnings: string[] }> {
  const warnings: string[] = [];
  const { control } = context;
  const mode = control.init ? 'init' : 'pid1';
  const cmd = control.busybox
    ? [CONTROL_BUSYBOX, 'sh', '-c', SWEEP_SCRIPT, 'sweep', mode, CONTROL_BUSYBOX]
    : ['sh', '-c', SWEEP_SCRIPT, 'sweep', mode, ''];
  if (!control.busybox) {
    warnings.push(
      "no static control binary (the host has no busybox-static): the sweep ran the image's own sh, which the agent could have replaced",
    );
  }
  if (!control.init) {
    warnings.push(
      "the engine runs no init: a process of the agent's named 'sleep' whose parent is PID 1 would be kept",
    );
  }
  const sweep = await controlExec(context, cmd, signal);
  const killed = Number(/killed (\d+)/.exec(sweep.stdout)?.[1] ?? 0);
  if (sweep.exitCode !== 0) {
    const left = /left (.*)/.exec(sweep.stdout)?.[1] ?? '?';
    throw new PaddockError(
      ERROR_CODES.SANDBOX_FAILED,
      `sealing ${shortId(context)}: processes survived the sweep (${left}); exit ${sweep.exitCode}: ${sweep.stderr.trim().slice(0, 300)}`,
      { details: { containerId: context.container.id } },
    );
  }
  return { killed, warnings };
}

/**
 * Runs `cmd` as root in a fresh engine exec (no shell of the sandbox), collecting its
 * output (64 KiB of each stream).
 * @throws PaddockError SANDBOX_FAILED (the exec cannot be made, or it ran past
 *   `timeoutMs`), ABORTED.
 */
export async function controlExec(
  context: Pick<SealContext, 'docker' | 'container'>,
  cmd: string[],
  signal: AbortSignal | undefined,
  timeoutMs = 60_000,
): Promise<ControlResult> {
  const deadline = startDeadline(timeoutMs, signal);
  try {
    let exec: Docker.Exec;
    let stream: NodeJS.ReadableStream & { destroy?: () => void };
    try {
      exec = await context.container.exec({
        Cmd: cmd,
        User: '0',
        WorkingDir: '/',
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = await exec.start({});
    } catch (error) {
      throw wrapEngineError(ERROR_CODES.SANDBOX_FAILED, `control command in ${shortId(context)}`, error, {
        containerId: context.container.id,
      });
    }
    const stdout = new CappedBuffer(64 * 1024);
    const stderr = new CappedBuffer(64 * 1024);
    const out = new Writable({ write: (chunk: Buffer, _e, done) => (stdout.push(chunk), done()) });
    const err = new Writable({ write: (chunk: Buffer, _e, done) => (stderr.push(chunk), done()) });
    (
      context.docker.modem as {
        demuxStream(stream: NodeJS.ReadableStream, out: Writable, err: Writable): void;
      }
    ).demuxStream(stream, out, err);
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        stream.destroy?.();
        reject(
          deadline.expired
            ? new PaddockError(
                ERROR_CODES.SANDBOX_FAILED,
                `a control command in ${shortId(context)} timed out`,
              )
            : abortedError(signal),
        );
      };
      deadline.signal.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        deadline.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      stream.once('end', done);
      stream.once('close', done);
      stream.once('error', done);
    });
    const info = await exec.inspect().catch(() => undefined);
    return { exitCode: info?.ExitCode ?? -1, stdout: stdout.text(), stderr: stderr.text() };
  } finally {
    deadline.clear();
  }
}

/**
 * Applies `restorePlan` to the container's changes: removes what it names, then copies
 * the image's files back. Returns what it did, one line each.
 * @throws PaddockError SANDBOX_FAILED, SANDBOX_CLOSED, ABORTED.
 */
export async function restoreSystemFiles(
  context: SealContext,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  if (!context.image) return [];
  const { changes, layers } = await containerChanges(context);
  if (changes.length === 0) return [];
  let reference: Docker.Container | undefined;
  const imageContainer = async (): Promise<Docker.Container> => {
    reference ??= await context.docker.createContainer({
      Image: context.image,
      Entrypoint: [],
      Cmd: ['true'],
      Labels: context.helperLabels,
      HostConfig: { NetworkMode: 'none' },
    });
    return reference;
  };
  try {
    const plan = await restorePlan(
      changes,
      async (path) => (layers ? statInLayers(layers, path) : statIn(await imageContainer(), path)),
      async (path) =>
        Buffer.from(
          await context.readFile(path, { maxBytes: 1024 * 1024 }).catch(() => new Uint8Array()),
        ).toString('utf8'),
    );
    if (plan.length === 0) return [];
    context.checkOpen(signal);
    // Everything planned goes first (a restored file may now be a folder or a link), then the
    // image's files are copied back into their (re-made) folders.
    const restores = plan.filter((step) => step.action === 'restore');
    await clearPlanned(
      context,
      plan.map((step) => step.path),
      [...new Set(restores.map((step) => posix.dirname(step.path)))],
      signal,
    );
    for (const step of restores) {
      context.checkOpen(signal);
      if (layers) await copyFromLayers(layers, context.container, step.path);
      else await copyImageEntry(await imageContainer(), context.container, step.path);
    }
    return plan.map(
      (step) => `${step.action === 'restore' ? 'restored' : 'removed'} ${step.path} (${step.reason})`,
    );
  } catch (error) {
    if (error instanceof PaddockError) throw error;
    throw wrapEngineError(ERROR_CODES.SANDBOX_FAILED, `restoring system files in ${shortId(context)}`, error);
  } finally {
    await reference?.remove({ force: true }).catch(() => undefined); // created, never started; the reaper is the backstop
  }
}

/**
 * The container's filesystem changes: read from the local engine's overlay layers when
 * it can (fast, and the layers then serve the restore), else through the engine's API.
 */
async function containerChanges(
  context: SealContext,
): Promise<{ changes: FsChange[]; layers: OverlayLayers | undefined }> {
  try {
    const layers = await overlayLayers(await context.container.inspect());
    const changes = layers ? await upperChanges(layers) : undefined;
    if (layers && changes) return { changes, layers };
    return { changes: ((await context.container.changes()) as FsChange[] | null) ?? [], layers: undefined };
  } catch (error) {
    throw wrapEngineError(ERROR_CODES.SANDBOX_FAILED, `listing the changes of ${shortId(context)}`, error);
  }
}

/** Removes `paths` and re-makes `parents`, as root, with the control binary when there is one. */
async function clearPlanned(
  context: SealContext,
  paths: string[],
  parents: string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const script =
    'B=$1; n=$2; shift 2; i=0; while [ $i -lt $n ]; do $B rm -rf -- "$1"; shift; i=$((i + 1)); done; for d in "$@"; do $B mkdir -p -- "$d"; done';
  const tool = context.control.busybox ? CONTROL_BUSYBOX : '';
  const base = context.control.busybox ? [CONTROL_BUSYBOX, 'sh'] : ['sh'];
  const cleared = await controlExec(
    context,
    [...base, '-c', script, 'restore', tool, String(paths.length), ...paths, ...parents],
    signal,
  );
  if (cleared.exitCode !== 0) {
    throw new PaddockError(
      ERROR_CODES.SANDBOX_FAILED,
      `restoring system files in ${shortId(context)} failed: ${cleared.stderr.trim().slice(0, 300)}`,
    );
  }
}

function shortId(context: Pick<SealContext, 'container'>): string {
  return context.container.id.slice(0, 12);
}
