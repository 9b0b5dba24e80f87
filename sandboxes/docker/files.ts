/**
 * Files in and out of a Docker sandbox through the engine's archive API (never through
 * the shell): `readFile` (symlinks followed, regular files only, capped), `writeFile`,
 * `upload` of host files and folders (streamed from disk), and the raw tar archives of
 * `download` / `extract`.
 *
 * A path that is not there is the caller's input (FILE_NOT_FOUND, never retried); a
 * container that is gone or an engine that refuses is a fault (SANDBOX_FAILED, retryable
 * when another attempt may succeed). The engine answers 404 to both a missing path and a
 * missing container, so a 404 is told apart by looking at the container.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { extract, pack } from 'tar-stream';
import { ERROR_CODES, PaddockError } from '../../harness/errors.ts';
import type { ReadFileOptions } from '../../harness/sandbox.ts';
import { addEntry, type ContextEntry } from './build-context.ts';
import { engineStatusCode, wrapEngineError } from './engine.ts';

/** Symlinks followed by `readFile` before giving up. */
const MAX_SYMLINK_HOPS = 16;

/** A file or folder for `ContainerFiles.putFiles`, named by its absolute path without the leading slash. */
export interface PutFile {
  name: string;
  data?: Uint8Array;
  mode: number;
  directory?: boolean;
}

/** What `ContainerFiles` needs of its sandbox. */
export interface ContainerFilesInit {
  container: Docker.Container;
  /** Relative paths are taken from here. */
  workdir: string;
  /** The uid and gid files are written for (the sandbox's user). */
  owner: () => { uid: number; gid: number };
  /** Throws SANDBOX_CLOSED when the sandbox is closed, ABORTED when `signal` is aborted. */
  checkOpen: (signal: AbortSignal | undefined) => void;
}

/** The file operations of one Docker sandbox (see `DockerSandbox`). */
export class ContainerFiles {
  constructor(private readonly init: ContainerFilesInit) {}

  /**
   * Reads a regular file (symlinks followed, up to 16 hops). Relative paths are taken
   * from the workdir. Nothing is read of a file larger than `maxBytes`, nor of a FIFO or
   * a device.
   * @throws PaddockError FILE_NOT_FOUND (nothing at the path, or a folder, FIFO, device
   *   or symlink loop there: `details.type` says which), SANDBOX_FAILED (larger than
   *   `maxBytes`, with `details.tooLarge`; the container gone, retryable; the engine
   *   refused), SANDBOX_CLOSED, ABORTED.
   */
  async readFile(path: string, options: ReadFileOptions = {}): Promise<Uint8Array> {
    let target = this.absolute(path);
    for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
      this.init.checkOpen(options.signal);
      let stream: NodeJS.ReadableStream;
      try {
        stream = await this.init.container.getArchive({ path: target });
      } catch (error) {
        throw await this.archiveFault(`readFile: ${path}`, error, { path }, () =>
          notFound(`readFile: ${path}: no such file in the sandbox`, path, error),
        );
      }
      const entry = await firstTarEntry(stream, options.maxBytes);
      this.init.checkOpen(options.signal);
      if (entry.tooLarge) {
        throw new PaddockError(
          ERROR_CODES.SANDBOX_FAILED,
          `readFile: ${path} is ${entry.size} bytes, more than the ${options.maxBytes} bytes read`,
          { details: { path, tooLarge: true, size: entry.size } },
        );
      }
      if (entry.type === 'symlink') {
        target = posix.resolve(posix.dirname(target), entry.linkname);
        continue;
      }
      if (entry.type !== 'file') {
        throw notFound(`readFile: ${path} is a ${entry.type}, not a file`, path, undefined, entry.type);
      }
      return entry.data;
    }
    throw notFound(`readFile: ${path}: too many levels of symbolic links`, path, undefined, 'symlink');
  }

  /**
   * Writes a file (replacing it), creating missing parent folders, owned by the
   * sandbox's user. @default mode 0o644
   * @throws PaddockError SANDBOX_FAILED (the container gone, retryable; the engine
   *   refused, e.g. a parent is a file), SANDBOX_CLOSED, ABORTED.
   */
  async writeFile(
    path: string,
    data: string | Uint8Array,
    options: { mode?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    this.init.checkOpen(options.signal);
    const target = this.absolute(path);
    const owner = this.init.owner();
    const parents = await this.missingParents(posix.dirname(target), owner);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    this.init.checkOpen(options.signal);
    try {
      await this.putFiles(
        [
          ...parents.map((dir) => ({ name: dir.slice(1), mode: 0o755, directory: true })),
          { name: target.slice(1), data: bytes, mode: options.mode ?? 0o644 },
        ],
        owner,
      );
    } catch (error) {
      throw await this.archiveFault(`writeFile: ${path}`, error, { path });
    }
  }

  /**
   * Copies a host file or folder (recursively, symlinks kept as links) to
   * `sandboxPath`, creating missing parents, owned by the sandbox's user. Files are
   * streamed from disk. An existing folder at `sandboxPath` keeps its own mode.
   * @throws PaddockError FILE_NOT_FOUND (no such host path), SANDBOX_FAILED (the host path
   *   cannot be read; the container gone, retryable; the engine refused), SANDBOX_CLOSED,
   *   ABORTED.
   */
  async upload(hostPath: string, sandboxPath: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.init.checkOpen(options.signal);
    const target = this.absolute(sandboxPath);
    let entries: ContextEntry[];
    try {
      entries = await listHostTree(hostPath);
    } catch (error) {
      const missing = ['ENOENT', 'ENOTDIR'].includes((error as { code?: string }).code ?? '');
      throw new PaddockError(
        missing ? ERROR_CODES.FILE_NOT_FOUND : ERROR_CODES.SANDBOX_FAILED,
        `upload: cannot read ${hostPath} on the host${missing ? ': no such file or folder' : ''}`,
        { cause: error, details: { hostPath, sandboxPath, ...(missing ? { path: hostPath } : {}) } },
      );
    }
    const owner = this.init.owner();
    const parents = await this.missingParents(posix.dirname(target), owner);
    const topIsDir = entries[0]?.type === 'directory';
    const topExists = topIsDir && parents.length === 0 && (await this.exists(target));
    this.init.checkOpen(options.signal);
    const tar = pack();
    const feed = (async () => {
      for (const dir of parents) await addEntry(tar, dirEntry(dir), dir.slice(1), owner);
      for (const [index, entry] of entries.entries()) {
        if (index === 0 && topExists) continue; // keep the existing folder's mode and owner
        const name = entry.path ? `${target.slice(1)}/${entry.path}` : target.slice(1);
        await addEntry(tar, entry, name, owner);
      }
      tar.finalize();
    })();
    feed.catch((error: unknown) => tar.destroy(error instanceof Error ? error : new Error(String(error))));
    try {
      await Promise.all([
        this.init.container.putArchive(tar as unknown as NodeJS.ReadableStream, { path: '/' }),
        feed,
      ]);
    } catch (error) {
      throw await this.archiveFault(`upload: ${hostPath} → ${sandboxPath}`, error, { hostPath, sandboxPath });
    }
    this.init.checkOpen(options.signal);
  }

  /**
   * The engine's tar archive of `path` (see `Sandbox.download`): owners, modes and
   * symlinks as they are in the container; a symlink at `path` is archived as the link;
   * `undefined` when nothing is at `path`.
   * @throws PaddockError SANDBOX_FAILED (the container gone, retryable; the engine
   *   refused), SANDBOX_CLOSED, ABORTED.
   */
  async download(
    path: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<NodeJS.ReadableStream | undefined> {
    this.init.checkOpen(options.signal);
    try {
      return await this.init.container.getArchive({ path: this.absolute(path) });
    } catch (error) {
      const fault = await this.archiveFault(`download: ${path}`, error, { path }, () => undefined);
      // Nothing at the path (a folder on it a file included) is `undefined`, as the contract says.
      if (fault === undefined || fault.code === ERROR_CODES.FILE_NOT_FOUND) return undefined;
      throw fault;
    }
  }

  /**
   * Unpacks a tar archive into the existing folder `dir` through the engine (see
   * `Sandbox.extract`); entries keep their owners, modes and symlinks.
   * @throws PaddockError FILE_NOT_FOUND (no folder at `dir`: nothing there, or a file),
   *   SANDBOX_FAILED (the container gone, retryable; the engine refused), SANDBOX_CLOSED,
   *   ABORTED.
   */
  async extract(
    archive: NodeJS.ReadableStream,
    dir: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    this.init.checkOpen(options.signal);
    try {
      await this.init.container.putArchive(archive, { path: this.absolute(dir) });
    } catch (error) {
      // An archive the engine refused is not read any further: let its source go.
      (archive as Partial<Readable>).destroy?.();
      throw await this.archiveFault(`extract into ${dir}`, error, { path: dir }, () =>
        notFound(`extract into ${dir}: no such folder in the sandbox`, dir, error),
      );
    }
    this.init.checkOpen(options.signal);
  }

  /** Puts files (or folders) given by absolute-path-without-slash names, in one archive. */
  async putFiles(files: PutFile[], owner: { uid: number; gid: number }): Promise<void> {
    const tar = pack();
    for (const file of files) {
      if (file.directory) {
        tar.entry({ name: file.name, type: 'directory', mode: file.mode, uid: owner.uid, gid: owner.gid });
      } else {
        tar.entry(
          { name: file.name, type: 'file', mode: file.mode, uid: owner.uid, gid: owner.gid },
          Buffer.from(file.data ?? new Uint8Array()),
        );
      }
    }
    tar.finalize();
    await this.init.container.putArchive(tar as unknown as NodeJS.ReadableStream, { path: '/' });
  }

  /** `path` made absolute from the workdir. */
  absolute(path: string): string {
    return posix.resolve(this.init.workdir, path);
  }

  /**
   * The error for an archive call the engine failed. Its 404 is either the path
   * (`onMissingPath`'s answer, when given) or the container gone (SANDBOX_FAILED,
   * retryable: something outside removed it). A refusal of the container's filesystem is
   * the caller's input, not retryable: a folder on the path that is a file, or a symlink
   * loop, is FILE_NOT_FOUND (`details.type` `file`, `symlink`); anything else (a busy mount, a full disk)
   * SANDBOX_FAILED with `details.refused`. Anything else as `wrapEngineError` says
   * (retryable for a 5xx or a dropped connection).
   */
  private async archiveFault<T>(
    what: string,
    error: unknown,
    details: Record<string, unknown> & { path?: unknown; sandboxPath?: unknown },
    onMissingPath?: () => T,
  ): Promise<T | PaddockError> {
    const status = engineStatusCode(error);
    if (status === 404) {
      const gone = await this.init.container.inspect().then(
        () => false,
        (inspectError: unknown) => engineStatusCode(inspectError) === 404,
      );
      if (gone) {
        return new PaddockError(ERROR_CODES.SANDBOX_FAILED, `${what}: the sandbox's container is gone`, {
          cause: error,
          retryable: true,
          details: { ...details, containerId: this.init.container.id },
        });
      }
      if (onMissingPath) return onMissingPath();
    }
    const message = error instanceof Error ? error.message : String(error);
    const named = details.path ?? details.sandboxPath;
    const path = typeof named === 'string' ? named : '';
    // The engine resolves the path in the container, whose files the agent controls.
    if (status !== undefined && status >= 400 && /not a directory/i.test(message)) {
      return notFound(`${what}: a folder on its path is a file`, path, error, 'file');
    }
    if (status !== undefined && status >= 400 && /too many (levels of symbolic )?links/i.test(message)) {
      return notFound(`${what}: too many levels of symbolic links`, path, error, 'symlink');
    }
    const refusal = /Error processing tar file[^:]*: (.*)/s.exec(message)?.[1]?.trim();
    if (status !== undefined && refusal) {
      return new PaddockError(
        ERROR_CODES.SANDBOX_FAILED,
        `${what}: the sandbox's filesystem refused it: ${refusal}`,
        { cause: error, retryable: false, details: { ...details, refused: true } },
      );
    }
    return wrapEngineError(ERROR_CODES.SANDBOX_FAILED, what, error, details);
  }

  /** Folders from `dir` up that do not exist, outermost first (only needed for non-root owners). */
  private async missingParents(dir: string, owner: { uid: number }): Promise<string[]> {
    // The engine creates missing parents itself, owned by root: good enough for root.
    if (owner.uid === 0) return [];
    const missing: string[] = [];
    for (let current = dir; current !== '/'; current = posix.dirname(current)) {
      if (await this.exists(current)) break;
      missing.unshift(current);
    }
    return missing;
  }

  private async exists(path: string): Promise<boolean> {
    try {
      const response = (await this.init.container.infoArchive({ path })) as { resume?: () => void };
      response.resume?.();
      return true;
    } catch (error) {
      const status = engineStatusCode(error);
      if (status === 404) return false;
      // The engine answers HEAD through a file (`/etc/passwd/x`) with a bare 500: nothing
      // to write into there. The archive call that follows fails and says why.
      if (status === 500) return false;
      throw wrapEngineError(ERROR_CODES.SANDBOX_FAILED, `stat ${path}`, error, { path });
    }
  }
}

/** FILE_NOT_FOUND for `path`; `type` says what is there instead, when something is. */
function notFound(message: string, path: string, cause?: unknown, type?: string): PaddockError {
  return new PaddockError(ERROR_CODES.FILE_NOT_FOUND, message, {
    ...(cause === undefined ? {} : { cause }),
    details: { path, ...(type ? { type } : {}) },
  });
}

/** Reads the first entry of a tar stream (the archive API returns the path itself first). */
async function firstTarEntry(
  stream: NodeJS.ReadableStream,
  maxBytes = Infinity,
): Promise<{ type: string; linkname: string; data: Uint8Array; size: number; tooLarge: boolean }> {
  const unpack = extract();
  stream.pipe(unpack);
  for await (const entry of unpack) {
    const chunks: Buffer[] = [];
    const size = entry.header.size ?? 0;
    const tooLarge = entry.header.type === 'file' && size > maxBytes;
    if (entry.header.type === 'file' && !tooLarge) {
      for await (const chunk of entry) chunks.push(chunk as Buffer);
    } else {
      entry.resume();
    }
    // The rest of the archive (a folder's contents) is not needed.
    (stream as { destroy?: () => void }).destroy?.();
    unpack.destroy();
    return {
      type: entry.header.type ?? 'file',
      linkname: entry.header.linkname ?? '',
      data: Buffer.concat(chunks),
      size,
      tooLarge,
    };
  }
  throw new PaddockError(ERROR_CODES.SANDBOX_FAILED, 'the engine returned an empty archive');
}

/** Lists a host file or folder: the top first (path ''), then its contents, sorted. */
async function listHostTree(hostPath: string): Promise<ContextEntry[]> {
  const top = await lstat(hostPath);
  const entries: ContextEntry[] = [];
  const add = async (abs: string, rel: string, stat: Awaited<ReturnType<typeof lstat>>): Promise<void> => {
    if (stat.isDirectory()) {
      entries.push({
        path: rel,
        type: 'directory',
        mode: Number(stat.mode) & 0o7777,
        size: 0,
        hostPath: abs,
      });
      for (const name of (await readdir(abs)).sort()) {
        const child = join(abs, name);
        await add(child, rel ? `${rel}/${name}` : name, await lstat(child));
      }
    } else if (stat.isFile()) {
      entries.push({
        path: rel,
        type: 'file',
        mode: Number(stat.mode) & 0o7777,
        size: Number(stat.size),
        hostPath: abs,
      });
    } else if (stat.isSymbolicLink()) {
      entries.push({
        path: rel,
        type: 'symlink',
        mode: 0o777,
        size: 0,
        linkname: await readlink(abs),
        hostPath: abs,
      });
    }
  };
  await add(hostPath, '', top);
  return entries;
}

function dirEntry(path: string): ContextEntry {
  return { path, type: 'directory', mode: 0o755, size: 0, hostPath: path };
}
