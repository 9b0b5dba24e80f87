/**
 * `DockerSandboxProvider`: turns an `EnvironmentSpec` into a running, locked-down
 * container with a shell attached.
 */
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { ERROR_CODES, PaddockError, throwIfAborted } from '../../harness/errors.ts';
import type { SandboxLabels, SandboxProvider } from '../../harness/sandbox.ts';
import { startDeadline } from '../../harness/deadline.ts';
import type { EnvironmentSpec, ServiceSpec } from '../../harness/task.ts';
import { ServiceGroup, waitHealthy } from './compose.ts';
import type { ImageMap } from './dockerfile.ts';
import { CONTROL_DIR, ControlVolume } from './control.ts';
import { dockerClient, engineStatusCode, wrapEngineError } from './engine.ts';
import { buildTaskImage, effectiveImageMap, resolveLocalImage } from './images.ts';
import { RunLeases } from './lease.ts';
import { DockerSandbox } from './sandbox.ts';
import type { DockerSandboxTuning } from './exec.ts';
import { KillerShell, ShellSession, ShellStartError } from './shell.ts';

/** Labels put on every container paddock starts. */
export const LABELS = {
  managed: 'paddock.managed',
  run: 'paddock.run',
  episode: 'paddock.episode',
} as const;

/**
 * Capabilities added back after dropping all: what ordinary root work inside a
 * container needs (chown/chmod of any file, reading files regardless of mode, setuid
 * to drop to another user as apt and runuser do, killing processes, binding low ports
 * on loopback). Not added: NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP.
 */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETUID',
  'SETGID',
  'NET_BIND_SERVICE',
];

/**
 * PID 1's child when the engine has no init: keeps the container alive with nothing
 * but `sh` and `sleep`, and exits on SIGTERM.
 */
export const KEEP_ALIVE_COMMAND: readonly string[] = [
  'sh',
  '-c',
  'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done',
];

/** Options of `DockerSandboxProvider`. */
export interface DockerSandboxProviderOptions extends DockerSandboxTuning {
  /** A dockerode client; default: `DOCKER_HOST` or the local socket. */
  docker?: Docker;
  /**
   * Substitutions for images that are not present (`registry-image → local-image`),
   * e.g. from `--image-map`. Merged over `PADDOCK_IMAGE_MAP` (these win).
   */
  imageMap?: ImageMap;
  /** Capabilities added after dropping all. @default DEFAULT_CAPABILITIES */
  capAdd?: readonly string[];
  /** Called with each line of a Dockerfile build's output. */
  onBuildLog?: (line: string) => void;
  /**
   * Called once per distinct message with what an environment asks for and the engine
   * does not honour (`EnvironmentSpec.warnings`, a disk limit the storage driver cannot
   * enforce). @default none: the messages stay in the specs
   */
  onWarning?: (message: string) => void;
  /** Called with progress lines of slow set-up (an image build's steps). */
  onProgress?: (line: string) => void;
  /** Called with a sandbox's start milestones (ms since `start` was called), for benchmarks. */
  onStartEvent?: (event: { what: string; atMs: number }) => void;
}

interface EngineFeatures {
  /** Keep the image's ENTRYPOINT (its command becomes `sleep infinity`). */
  entrypoint?: boolean;
  /** The sidecars' group: the container joins its network, as `main`, and mounts its volumes. */
  group?: ServiceGroup | undefined;
  /** The engine can run an init (docker-init) as PID 1. */
  init: boolean;
  /** The storage driver enforces `StorageOpt.size`. */
  storageQuota: boolean;
  /** The control volume mounted read-only at CONTROL_DIR (see control.ts); absent without a static busybox. */
  controlVolume?: string | undefined;
}

/**
 * Starts Docker sandboxes. Images: `spec.image` must exist locally or be mapped to a
 * local image; `spec.build` is built once per content hash (`paddock-task:<hash>`).
 * Containers: no network unless `spec.network`, memory without swap, CPU and pids
 * limits, all capabilities dropped but `DEFAULT_CAPABILITIES`, no-new-privileges, an
 * init when the engine has one, and labels `paddock.managed`, `paddock.run`,
 * `paddock.episode` for `reapContainers`.
 */
export class DockerSandboxProvider implements SandboxProvider {
  readonly kind = 'docker';
  private readonly docker: Docker;
  private readonly imageMap: ImageMap;
  private features: Promise<EngineFeatures> | undefined;
  private readonly images = new Map<string, Promise<string>>();
  private readonly live = new Set<DockerSandbox>();
  /** Leases on the runs this provider starts containers for: `paddock sandbox gc` spares them. */
  private readonly leases = new RunLeases();
  private readonly control: ControlVolume;

  /** @throws PaddockError CONFIG_INVALID when `PADDOCK_IMAGE_MAP` is malformed. */
  constructor(private readonly options: DockerSandboxProviderOptions = {}) {
    this.docker = dockerClient(options);
    this.imageMap = effectiveImageMap(options.imageMap);
    this.control = new ControlVolume(this.docker);
  }

  /** The image map in effect (environment merged with the constructor's). */
  get effectiveImageMap(): Readonly<ImageMap> {
    return this.imageMap;
  }

  /**
   * Makes the image of `spec` available: checks or maps `spec.image`, or builds
   * `spec.build` (cached by content hash). Results are remembered for this provider.
   * @throws PaddockError IMAGE_NOT_FOUND, IMAGE_BUILD_FAILED, ENGINE_UNAVAILABLE, ABORTED;
   *   CONFIG_INVALID when the spec has neither image nor build.
   */
  async prepare(spec: EnvironmentSpec, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.imageFor(spec, options.signal);
  }

  /** The local image `spec` runs on (after mapping or building); see `prepare`. */
  async imageFor(
    spec: Pick<EnvironmentSpec, 'image' | 'build' | 'buildTimeoutMs'>,
    signal?: AbortSignal,
  ): Promise<string> {
    const key = spec.build
      ? `build:${spec.build.contextDir}\0${spec.build.dockerfile}`
      : `image:${spec.image ?? ''}`;
    let pending = this.images.get(key);
    if (!pending) {
      pending = this.resolveImageWithin(spec, signal);
      this.images.set(key, pending);
      // A failure is not remembered: the next call tries again.
      pending.catch(() => this.images.delete(key));
    }
    return pending;
  }

  /** `resolveImage` under the spec's build timeout (`build_timeout_sec`), when it has one. */
  private async resolveImageWithin(
    spec: Pick<EnvironmentSpec, 'image' | 'build' | 'buildTimeoutMs'>,
    signal?: AbortSignal,
  ): Promise<string> {
    if (!spec.build || spec.buildTimeoutMs === undefined) return this.resolveImage(spec, signal);
    const deadline = startDeadline(spec.buildTimeoutMs, signal);
    try {
      return await this.resolveImage(spec, deadline.signal);
    } catch (error) {
      if (!deadline.expired) throw error;
      throw new PaddockError(
        ERROR_CODES.IMAGE_BUILD_FAILED,
        `building ${spec.build.contextDir} ran past the task's build timeout (${spec.buildTimeoutMs / 1000} s, build_timeout_sec)`,
        { cause: error, retryable: false, details: { contextDir: spec.build.contextDir } },
      );
    } finally {
      deadline.clear();
    }
  }

  private async resolveImage(
    spec: Pick<EnvironmentSpec, 'image' | 'build'>,
    signal?: AbortSignal,
  ): Promise<string> {
    throwIfAborted(signal);
    if (spec.build) {
      const result = await buildTaskImage(this.docker, spec.build, {
        imageMap: this.imageMap,
        ...(this.options.onBuildLog ? { onLog: this.options.onBuildLog } : {}),
        ...(this.options.onProgress ? { onProgress: this.options.onProgress } : {}),
        ...(signal ? { signal } : {}),
      });
      return result.image;
    }
    if (spec.image) return (await resolveLocalImage(this.docker, spec.image, this.imageMap)).image;
    throw new PaddockError(ERROR_CODES.CONFIG_INVALID, 'the environment names neither an image nor a build');
  }

  /**
   * Creates and starts a container for `spec`, attaches its shell and copies
   * `spec.files` in. On any failure (or abort) the container is removed.
   * @throws PaddockError IMAGE_NOT_FOUND / IMAGE_BUILD_FAILED (image), ENGINE_UNAVAILABLE,
   *   SANDBOX_START_FAILED (retryable when the engine answered 5xx or dropped the
   *   connection), ABORTED.
   */
  async start(
    spec: EnvironmentSpec,
    options: { labels: SandboxLabels; signal?: AbortSignal },
  ): Promise<DockerSandbox> {
    const { signal, labels } = options;
    const began = performance.now();
    const mark = (what: string) => this.options.onStartEvent?.({ what, atMs: performance.now() - began });
    this.leases.hold(labels.runId); // before any container of the run exists; released by closeAll
    for (const warning of spec.warnings ?? []) this.warnOnce(warning);
    const image = await this.imageFor(spec, signal);
    throwIfAborted(signal);
    const [engine, imageInfo, controlVolume] = await Promise.all([
      this.engineFeatures(),
      this.inspectImage(image),
      // Without the control volume sandboxes still work; their seal report says what is weaker.
      this.control.get(image).catch(() => undefined),
    ]);
    if (spec.storageMb !== undefined && !engine.storageQuota) {
      this.warnOnce(
        `a disk limit (${spec.storageMb} MiB) is not enforced: the engine's storage driver is not overlay2 on xfs`,
      );
    }
    const workdir = spec.workdir ?? (imageInfo.Config?.WorkingDir || '/');
    const user = spec.user ?? imageInfo.Config?.User ?? '';
    // Harbor replaces only the command: an image's ENTRYPOINT runs with `sleep infinity`.
    const entrypoint = spec.keepEntrypoint === true && (imageInfo.Config?.Entrypoint?.length ?? 0) > 0;

    let group: ServiceGroup | undefined;
    let container: Docker.Container | undefined;
    try {
      if ((spec.services?.length ?? 0) > 0 || (spec.volumes?.length ?? 0) > 0) {
        group = await ServiceGroup.start(this.docker, spec, {
          labels,
          engineLabels: this.engineLabels(labels),
          imageFor: (service: ServiceSpec, serviceSignal?: AbortSignal) =>
            this.imageFor(
              {
                ...service,
                ...(spec.buildTimeoutMs !== undefined ? { buildTimeoutMs: spec.buildTimeoutMs } : {}),
              },
              serviceSignal,
            ),
          capAdd: this.options.capAdd ?? DEFAULT_CAPABILITIES,
          init: engine.init,
          ...(signal ? { signal } : {}),
          onEvent: (event) => mark(`service ${event.service} ${event.kind}`),
        });
      }
      const features = { ...engine, controlVolume, entrypoint, group };
      container = await this.createContainer(spec, image, labels, workdir, features);
      throwIfAborted(signal);
      await this.startContainer(container, spec, image, labels, workdir, features).then((started) => {
        container = started;
      });
      if (entrypoint) await this.checkEntrypoint(container, image);
      mark('main started');
      throwIfAborted(signal);
      // The root shell that kills is started now, beside the command shell: later, a
      // fork bomb may leave no pid for a new exec. Without it kills fall back to an exec.
      const killer = KillerShell.open(container).catch(() => undefined);
      const shell = await ShellSession.open(container, { ...(user ? { user } : {}), workdir }).catch(
        (error: unknown) => {
          const detail = error instanceof ShellStartError ? error.output || error.message : undefined;
          throw new PaddockError(
            ERROR_CODES.SANDBOX_START_FAILED,
            `no shell could be started in ${image}${detail ? `: ${detail}` : ''} (the image needs sh, or bash)`,
            { cause: error, retryable: false, details: { image } },
          );
        },
      );
      const started = container;
      const sandbox = new DockerSandbox({
        killer: await killer,
        image,
        control: { busybox: Boolean(controlVolume), init: features.init },
        helperLabels: {
          [LABELS.managed]: 'true',
          [LABELS.run]: labels.runId,
          [LABELS.episode]: labels.episodeId,
        },
        docker: this.docker,
        container: started,
        workdir,
        user,
        shell,
        tuning: this.options,
        onClose: () => this.live.delete(sandbox),
        ...(features.group ? { release: () => features.group!.close() } : {}),
      });
      group = undefined; // the sandbox owns it now
      this.live.add(sandbox);
      try {
        if (spec.workdir !== undefined) await sandbox.adoptWorkdir();
        for (const file of spec.files) {
          throwIfAborted(signal);
          await sandbox.upload(file.hostPath, file.sandboxPath, signal ? { signal } : {});
        }
        throwIfAborted(signal);
        if (spec.healthcheck) {
          const check = spec.healthcheck;
          // Harbor runs it before the agent's user is set: as the image's USER.
          const checkUser = imageInfo.Config?.User || 'root';
          await waitHealthy(
            check,
            async (timeoutMs) =>
              (
                await sandbox.exec(check.command, {
                  timeoutMs,
                  user: checkUser,
                  ...(signal ? { signal } : {}),
                })
              ).exitCode === 0,
            `the sandbox's healthcheck (${check.command})`,
            signal,
          );
          mark('main healthy');
        }
      } catch (error) {
        await sandbox.close();
        // A task file that cannot be copied in (missing on the host, refused) fails the start.
        throw error instanceof PaddockError &&
          (error.code === ERROR_CODES.SANDBOX_FAILED || error.code === ERROR_CODES.FILE_NOT_FOUND)
          ? new PaddockError(
              ERROR_CODES.SANDBOX_START_FAILED,
              `copying the task's files in failed: ${error.message}`,
              {
                cause: error,
                retryable: error.retryable,
                details: error.details,
              },
            )
          : error;
      }
      return sandbox;
    } catch (error) {
      if (container && !this.isLive(container)) {
        await container.remove({ force: true, v: true }).catch(() => undefined); // best effort; the reaper is the backstop
      }
      await group?.close();
      if (error instanceof PaddockError) throw error;
      throw wrapEngineError(
        ERROR_CODES.SANDBOX_START_FAILED,
        `starting a sandbox from ${image} failed`,
        error,
        {
          image,
        },
      );
    }
  }

  private readonly warned = new Set<string>();

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.options.onWarning?.(message);
  }

  private engineLabels(labels: SandboxLabels): Record<string, string> {
    return { [LABELS.managed]: 'true', [LABELS.run]: labels.runId, [LABELS.episode]: labels.episodeId };
  }

  /** A kept ENTRYPOINT that exits ends the container: say so, with the end of its output. */
  private async checkEntrypoint(container: Docker.Container, image: string): Promise<void> {
    const info = await container.inspect().catch(() => undefined);
    // Give a script that fails at once a moment to do so.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const state = (await container.inspect().catch(() => info))?.State;
    if (state === undefined || state.Running) return;
    let logs = '';
    try {
      const buffer = await container.logs({ stdout: true, stderr: true, tail: 20 });
      for (let at = 0; at + 8 <= buffer.length;) {
        const size = buffer.readUInt32BE(at + 4);
        logs += buffer.subarray(at + 8, at + 8 + size).toString('utf8');
        at += 8 + size;
      }
    } catch {
      // The logs only decorate the message.
    }
    throw new PaddockError(
      ERROR_CODES.SANDBOX_START_FAILED,
      `the ENTRYPOINT of ${image} exited (code ${state.ExitCode}) instead of running its command (sleep infinity)${logs.trim() ? `:\n${logs.trim().slice(-2000)}` : ''}`,
      { retryable: false, details: { image } },
    );
  }

  private isLive(container: Docker.Container): boolean {
    for (const sandbox of this.live) if (sandbox.id === container.id) return true;
    return false;
  }

  /** Closes every sandbox this provider started and has not closed yet. Never rejects. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.live].map((sandbox) => sandbox.close()));
    this.leases.releaseAll();
  }

  private async inspectImage(image: string): Promise<Docker.ImageInspectInfo> {
    try {
      return await this.docker.getImage(image).inspect();
    } catch (error) {
      if (engineStatusCode(error) === 404) {
        this.images.clear();
        throw new PaddockError(
          ERROR_CODES.IMAGE_NOT_FOUND,
          `Image "${image}" disappeared from the local engine`,
          {
            cause: error,
            details: { image },
          },
        );
      }
      throw wrapEngineError(ERROR_CODES.SANDBOX_START_FAILED, `inspecting ${image} failed`, error, { image });
    }
  }

  private containerConfig(
    spec: EnvironmentSpec,
    image: string,
    labels: SandboxLabels,
    workdir: string,
    features: EngineFeatures,
  ): Docker.ContainerCreateOptions {
    const memoryBytes = Math.round(spec.memoryMb * 1024 * 1024);
    return {
      name: containerName(labels),
      Image: image,
      // Replace the image's entrypoint: the container only has to stay alive. A kept
      // entrypoint gets `sleep infinity` as its arguments (Harbor's command): one that
      // ends with `exec "$@"` becomes the keep-alive, which sealing keeps with its child.
      ...(features.entrypoint
        ? { Cmd: ['sleep', 'infinity'] }
        : { Entrypoint: [], Cmd: [...KEEP_ALIVE_COMMAND] }),
      WorkingDir: workdir,
      // The container itself runs as root; the sandbox's user (spec.user, else the
      // image's USER) is applied to its shells. Root execs keep the capabilities added
      // above only in a root container, and the shell that kills timed-out commands of
      // any user needs CAP_KILL.
      User: '0',
      Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
      Labels: this.engineLabels(labels),
      Hostname: 'sandbox',
      ...(features.group
        ? { NetworkingConfig: { EndpointsConfig: { [features.group.network]: { Aliases: ['main'] } } } }
        : {}),
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      HostConfig: {
        NetworkMode: features.group ? features.group.network : spec.network ? 'bridge' : 'none',
        Memory: memoryBytes,
        MemorySwap: memoryBytes, // equal to Memory: no swap
        NanoCpus: Math.round(spec.cpus * 1e9),
        PidsLimit: spec.pids,
        CapDrop: ['ALL'],
        CapAdd: [...(this.options.capAdd ?? DEFAULT_CAPABILITIES)],
        SecurityOpt: spec.noNewPrivileges === false ? [] : ['no-new-privileges'],
        Init: features.init,
        Mounts: [
          ...(features.controlVolume
            ? [
                {
                  Type: 'volume' as const,
                  Source: features.controlVolume,
                  Target: CONTROL_DIR,
                  ReadOnly: true,
                },
              ]
            : []),
          ...(spec.volumes ?? []).map((mount) => ({
            Type: 'volume' as const,
            Source: features.group!.volume(mount.name),
            Target: mount.target,
            ReadOnly: mount.readOnly,
          })),
        ],
        ...(spec.storageMb !== undefined && features.storageQuota
          ? { StorageOpt: { size: `${Math.round(spec.storageMb)}M` } }
          : {}),
      },
    };
  }

  private async createContainer(
    spec: EnvironmentSpec,
    image: string,
    labels: SandboxLabels,
    workdir: string,
    features: EngineFeatures,
  ): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(this.containerConfig(spec, image, labels, workdir, features));
    } catch (error) {
      if (engineStatusCode(error) === 404) {
        this.images.clear();
        throw new PaddockError(
          ERROR_CODES.IMAGE_NOT_FOUND,
          `Image "${image}" is not present in the local engine`,
          {
            cause: error,
            details: { image },
          },
        );
      }
      throw wrapEngineError(
        ERROR_CODES.SANDBOX_START_FAILED,
        `creating a container from ${image} failed`,
        error,
        {
          image,
        },
      );
    }
  }

  /** Starts the container; when the engine's init binary turns out to be missing, retries without it. */
  private async startContainer(
    container: Docker.Container,
    spec: EnvironmentSpec,
    image: string,
    labels: SandboxLabels,
    workdir: string,
    features: EngineFeatures,
  ): Promise<Docker.Container> {
    try {
      await container.start();
      return container;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (features.init && /docker-init|init binary/i.test(message)) {
        await container.remove({ force: true, v: true }).catch(() => undefined); // replaced just below
        const withoutInit = { ...features, init: false };
        this.features = Promise.resolve(withoutInit);
        const retry = await this.createContainer(spec, image, labels, workdir, withoutInit);
        try {
          await retry.start();
        } catch (retryError) {
          await retry.remove({ force: true, v: true }).catch(() => undefined); // the error below matters more
          throw wrapEngineError(
            ERROR_CODES.SANDBOX_START_FAILED,
            `starting a container from ${image} failed`,
            retryError,
          );
        }
        return retry;
      }
      throw wrapEngineError(
        ERROR_CODES.SANDBOX_START_FAILED,
        `starting a container from ${image} failed`,
        error,
        {
          image,
        },
      );
    }
  }

  private engineFeatures(): Promise<EngineFeatures> {
    this.features ??= this.docker.info().then(
      (info: {
        InitCommit?: { ID?: string };
        InitBinary?: string;
        DriverStatus?: [string, string][];
        Driver?: string;
      }) => {
        const backing = info.DriverStatus?.find(([key]) => key === 'Backing Filesystem')?.[1] ?? '';
        return {
          // The engine reports N/A when it cannot run its init binary.
          init: Boolean(info.InitBinary) && info.InitCommit?.ID !== 'N/A',
          storageQuota: info.Driver === 'overlay2' && backing === 'xfs',
        };
      },
      (error: unknown) => {
        this.features = undefined;
        throw wrapEngineError(
          ERROR_CODES.SANDBOX_START_FAILED,
          'asking the engine for its features failed',
          error,
        );
      },
    );
    return this.features;
  }
}

/** `paddock-<run>-<episode>-<random>`, within the engine's name rules. */
export function containerName(labels: SandboxLabels): string {
  const clean = (text: string) => text.replace(/[^a-zA-Z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '');
  const base = `paddock-${clean(labels.runId)}-${clean(labels.episodeId)}`.slice(0, 100);
  return `${base}-${randomBytes(3).toString('hex')}`;
}
