/**
 * The local base image, made without a registry: Debian's `debootstrap` builds a root
 * file system from the Debian mirror, and the engine's image import turns it into an
 * image that task Dockerfiles start `FROM`.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { ERROR_CODES, PaddockError, throwIfAborted } from '../../harness/errors.ts';
import {
  dockerClient,
  engineUnavailableError,
  isEngineUnreachable,
  resolveEngineEndpoint,
} from './engine.ts';
import type { EngineOptions } from './engine.ts';

/** The tag of the base image. */
export const BASE_IMAGE = 'paddock/base:bookworm';

/** The Debian release the base image is made from. */
export const BASE_SUITE = 'bookworm';

/** The mirror used when the host's apt sources name none. */
export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';

/**
 * Packages added to debootstrap's `minbase` variant (which already has bash, coreutils,
 * util-linux, grep, sed, findutils, diffutils, gzip, tar). Enough for terminal tasks,
 * verifiers that run pytest, and builds that `apt-get install` more.
 */
export const BASE_PACKAGES: readonly string[] = [
  'bash',
  'coreutils',
  'util-linux',
  'python3',
  'python3-pytest',
  'git',
  'ca-certificates',
  'procps',
  'findutils',
  'grep',
  'sed',
  'gawk',
  'diffutils',
  'less',
  'jq',
  'curl',
  'patch',
  'file',
  'xz-utils',
  'bzip2',
  'unzip',
  'nano',
];

/** Image configuration applied at import time (what a Dockerfile would say). */
export const BASE_IMAGE_CHANGES: readonly string[] = [
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'ENV LANG=C.UTF-8',
  'ENV DEBIAN_FRONTEND=noninteractive',
  'WORKDIR /',
  'LABEL paddock.base=bookworm',
  'CMD ["bash"]',
];

/**
 * The first Debian archive URI among the host's apt sources (`/etc/apt/sources.list` and
 * `sources.list.d/*.list|*.sources`, one-line and deb822 forms), skipping security and
 * third-party repositories; `DEFAULT_DEBIAN_MIRROR` when none is found.
 */
export async function findDebianMirror(aptDir = '/etc/apt'): Promise<string> {
  const files = [join(aptDir, 'sources.list')];
  try {
    const entries = await readdir(join(aptDir, 'sources.list.d'));
    for (const entry of entries.sort()) {
      if (entry.endsWith('.list') || entry.endsWith('.sources'))
        files.push(join(aptDir, 'sources.list.d', entry));
    }
  } catch {
    // No sources.list.d: only sources.list counts.
  }
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue; // a missing file is simply not a source
    }
    const mirror = parseDebianMirror(text);
    if (mirror) return mirror;
  }
  return DEFAULT_DEBIAN_MIRROR;
}

/** The first Debian archive URI in one apt sources file's text, or undefined. */
export function parseDebianMirror(text: string): string | undefined {
  const uris: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (oneLine?.[1]) uris.push(oneLine[1]);
    const deb822 = /^URIs:\s*(.+)$/i.exec(line);
    if (deb822?.[1]) uris.push(...deb822[1].split(/\s+/));
  }
  return uris
    .map((uri) => uri.replace(/\/+$/, ''))
    .find((uri) => /^https?:\/\//.test(uri) && /\/debian$/.test(uri) && !/security/.test(uri));
}

/** Options of `bootstrapBaseImage`. */
export interface BootstrapOptions extends EngineOptions {
  /** Tag of the image to make. @default 'paddock/base:bookworm' */
  tag?: string;
  /** Debian mirror. @default the host's first Debian apt source, else http://deb.debian.org/debian */
  mirror?: string;
  /** Rebuild even when the image exists. @default false */
  force?: boolean;
  /** Extra packages on top of `BASE_PACKAGES`. */
  extraPackages?: string[];
  /**
   * Called with one line per step (`building paddock/base:bookworm: step 1/2 debootstrap …`),
   * debootstrap's own `I:` lines included.
   */
  onProgress?: (line: string) => void;
  /** Aborting kills debootstrap, removes the temporary folder and rejects with ABORTED. */
  signal?: AbortSignal;
}

/** What `bootstrapBaseImage` did. */
export interface BootstrapResult {
  tag: string;
  /** False when the image already existed and nothing was done. */
  built: boolean;
  /** The image id (`sha256:…`). */
  imageId: string;
  durationMs: number;
}

/** True when the base image (or `tag`) exists in the local engine. @throws ENGINE_UNAVAILABLE */
export async function baseImageExists(options: EngineOptions & { tag?: string } = {}): Promise<boolean> {
  return (await inspectImageId(dockerClient(options), options.tag ?? BASE_IMAGE)) !== undefined;
}

const inFlight = new Map<string, Promise<BootstrapResult>>();

/**
 * Makes the base image: `debootstrap --variant=minbase` of Debian bookworm into a
 * temporary folder (a host subprocess; needs root and the `debootstrap` package), then a
 * tar stream of that folder imported into the engine with `BASE_IMAGE_CHANGES`. Takes
 * about a minute; skipped when the image exists unless `force`. Concurrent calls for one
 * tag share one build. The temporary folder is always removed.
 * @throws PaddockError IMAGE_BUILD_FAILED (debootstrap or import failed, with the log's
 *   tail), ENGINE_UNAVAILABLE, ABORTED.
 */
export async function bootstrapBaseImage(options: BootstrapOptions = {}): Promise<BootstrapResult> {
  const tag = options.tag ?? BASE_IMAGE;
  const running = inFlight.get(tag);
  if (running) return running;
  const promise = bootstrap(tag, options).finally(() => inFlight.delete(tag));
  inFlight.set(tag, promise);
  return promise;
}

async function bootstrap(tag: string, options: BootstrapOptions): Promise<BootstrapResult> {
  const started = Date.now();
  const docker = dockerClient(options);
  const progress = options.onProgress ?? (() => undefined);
  throwIfAborted(options.signal);
  const existing = await inspectImageId(docker, tag);
  if (existing && !options.force) {
    progress(`${tag} already exists (${existing.slice(0, 19)}); nothing to do`);
    return { tag, built: false, imageId: existing, durationMs: Date.now() - started };
  }
  const mirror = options.mirror ?? (await findDebianMirror());
  const packages = [...new Set([...BASE_PACKAGES, ...(options.extraPackages ?? [])])];
  const rootfs = await mkdtemp(join(tmpdir(), 'paddock-rootfs-'));
  try {
    progress(`building ${tag}: step 1/2 debootstrap ${BASE_SUITE} from ${mirror} into a temporary folder`);
    await runProcess(
      'debootstrap',
      ['--variant=minbase', `--include=${packages.join(',')}`, BASE_SUITE, rootfs, mirror],
      { onLine: progress, signal: options.signal },
    );
    // Downloaded .deb files and apt lists are not needed in the image.
    await rm(join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true }).catch(() => undefined);
    await writeAptSources(rootfs, mirror);
    progress(`building ${tag}: step 2/2 importing the root file system`);
    const imageId = await importRootfs(docker, rootfs, tag, options.signal);
    progress(`${tag} is ready (${imageId.slice(0, 19)})`);
    return { tag, built: true, imageId, durationMs: Date.now() - started };
  } finally {
    await rm(rootfs, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Points the image's apt at the mirror (debootstrap writes the suite only). */
async function writeAptSources(rootfs: string, mirror: string): Promise<void> {
  await mkdir(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
  await writeFile(
    join(rootfs, 'etc/apt/sources.list'),
    `deb ${mirror} ${BASE_SUITE} main\ndeb ${mirror} ${BASE_SUITE}-updates main\n`,
  );
}

async function importRootfs(
  docker: Docker,
  rootfs: string,
  tag: string,
  signal?: AbortSignal,
): Promise<string> {
  const [repo, version] = splitTag(tag);
  // --numeric-owner keeps the image's uids (the host's names may differ).
  const tar = spawn('tar', ['--numeric-owner', '-C', rootfs, '-c', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tarErr = '';
  tar.stderr.on('data', (chunk: Buffer) => (tarErr = (tarErr + chunk.toString()).slice(-2000)));
  const tarExit = new Promise<number>((resolve) => tar.on('close', (code) => resolve(code ?? 1)));
  const kill = () => tar.kill('SIGKILL');
  signal?.addEventListener('abort', kill, { once: true });
  try {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await docker.importImage(tar.stdout, {
        repo,
        tag: version,
        changes: [...BASE_IMAGE_CHANGES],
      } as object);
    } catch (error) {
      tar.kill('SIGKILL');
      if (isEngineUnreachable(error)) throw engineUnavailableError(resolveEngineEndpoint(), error);
      throw new PaddockError(ERROR_CODES.IMAGE_BUILD_FAILED, `importing ${tag} failed`, { cause: error });
    }
    const messages = await followProgress(docker, stream);
    const code = await tarExit;
    throwIfAborted(signal);
    const failure = messages.find((m) => m.error)?.error;
    if (failure || code !== 0) {
      throw new PaddockError(
        ERROR_CODES.IMAGE_BUILD_FAILED,
        `importing ${tag} failed: ${failure ?? `tar exited with ${code}: ${tarErr.trim()}`}`,
      );
    }
  } finally {
    signal?.removeEventListener('abort', kill);
  }
  const id = await inspectImageId(docker, tag);
  if (!id) throw new PaddockError(ERROR_CODES.IMAGE_BUILD_FAILED, `importing ${tag} left no image`);
  return id;
}

/** `repo:tag` → [repo, tag]; a registry port (`host:5000/x`) is not a tag. */
export function splitTag(image: string): [string, string] {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  if (colon > slash) return [image.slice(0, colon), image.slice(colon + 1)];
  return [image, 'latest'];
}

/** One message of the engine's JSON progress streams (build, import, pull). */
export interface EngineProgressMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/** Waits for an engine progress stream to end; returns its messages in order. */
export function followProgress(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onMessage?: (message: EngineProgressMessage) => void,
): Promise<EngineProgressMessage[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null, output: EngineProgressMessage[]) => (error ? reject(error) : resolve(output)),
      onMessage,
    );
  });
}

/** The id of a local image, or undefined when it does not exist. @throws ENGINE_UNAVAILABLE */
export async function inspectImageId(docker: Docker, image: string): Promise<string | undefined> {
  try {
    const info = await docker.getImage(image).inspect();
    return info.Id;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    if (isEngineUnreachable(error)) throw engineUnavailableError(resolveEngineEndpoint(), error);
    throw error;
  }
}

/** Runs a host command, streaming its output lines; rejects with its log's tail on failure. */
function runProcess(
  command: string,
  args: string[],
  options: { onLine: (line: string) => void; signal?: AbortSignal },
): Promise<void> {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      reject(
        new PaddockError(ERROR_CODES.IMAGE_BUILD_FAILED, `${command} could not start`, { cause: error }),
      );
      return;
    }
    const tail: string[] = [];
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 30) tail.shift();
        options.onLine(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const abort = () => child.kill('SIGKILL');
    options.signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (error) => {
      options.signal?.removeEventListener('abort', abort);
      const hint =
        (error as { code?: string }).code === 'ENOENT' ? ` (install it: apt-get install ${command})` : '';
      reject(
        new PaddockError(ERROR_CODES.IMAGE_BUILD_FAILED, `${command} could not start${hint}`, {
          cause: error,
        }),
      );
    });
    child.on('close', (code, sig) => {
      options.signal?.removeEventListener('abort', abort);
      if (options.signal?.aborted) {
        reject(new PaddockError(ERROR_CODES.ABORTED, 'aborted', { cause: options.signal.reason }));
      } else if (code === 0) {
        resolve();
      } else {
        reject(
          new PaddockError(
            ERROR_CODES.IMAGE_BUILD_FAILED,
            `${command} failed (${sig ?? `exit ${code}`}):\n${tail.join('\n')}`,
            { details: { log: tail.join('\n') } },
          ),
        );
      }
    });
  });
}
