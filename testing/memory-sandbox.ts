/**
 * An in-memory `SandboxProvider` for unit tests of plug-ins and of paddock itself: no
 * Docker, no processes. Files live in a map (regular files, folders and symlinks, with
 * modes); `exec` interprets a small, documented shell language and answers anything else
 * as a shell would (exit 127, "command not found"); timeouts, aborts, `close()` and
 * `seal()` really end the commands they concern. It passes `describeSandboxConformance`.
 *
 * The command language (`MEMORY_SANDBOX_COMMANDS`): simple commands separated by `;` or
 * newlines; words in single quotes (literal), double quotes (`$VAR` expanded, `\` escapes
 * `$ " \`) or bare (`\` escapes the next character, `$VAR` / `${VAR}` expanded); a
 * trailing `>&2` sends a command's output to stderr. The commands:
 * - `printf 'TEXT'` — writes TEXT with the escapes `\n \t \r \\ \NNN` (octal) `\xHH`
 *   and `%%`; no format arguments.
 * - `cat [FILE…]` — writes its stdin (no FILE, or `-`) or the files.
 * - `echo [WORD…]` — writes the words, separated by spaces, and a newline (no options).
 * - `pwd` — writes the working directory.
 * - `sleep SECONDS` — waits (fractions allowed); a kill ends it at once.
 * - `exit [N]` — ends the command line with status N (default: the last status).
 * Other syntax (pipes, `&&`, `&`, other redirections, subshells) is refused with exit 2;
 * `options.commands` adds commands of your own.
 */
import { lstat, readdir, readlink, readFile as readHostFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PassThrough, Readable } from 'node:stream';
import { extract as untar, pack } from 'tar-stream';
import {
  ERROR_CODES,
  PaddockError,
  type EnvironmentSpec,
  type ExecOptions,
  type ExecResult,
  type ReadFileOptions,
  type Sandbox,
  type SandboxDiagnosis,
  type SandboxLabels,
  type SandboxProcess,
  type SandboxProvider,
  type SealReport,
} from '../harness/index.ts';

/** The commands `exec` understands without `options.commands` (see the module's doc). */
export const MEMORY_SANDBOX_COMMANDS = ['printf', 'cat', 'echo', 'pwd', 'sleep', 'exit'] as const;

/** Default of `ExecOptions.timeoutMs`, as the contract says. */
const DEFAULT_TIMEOUT_MS = 120_000;
/** Default of `ExecOptions.maxOutputBytes`, as the contract says. */
const DEFAULT_MAX_OUTPUT_BYTES = 65_536;
/** Symlinks followed while resolving one path before giving up (as Linux's ELOOP). */
const MAX_SYMLINK_HOPS = 40;

/** What a command of your own (`MemorySandboxOptions.commands`) gets. */
export interface MemoryCommandIo {
  /** The words after the command's name, quotes removed and variables expanded. */
  args: string[];
  /** The command's standard input (empty unless `ExecOptions.stdin` gave one). */
  stdin: Uint8Array;
  /** The sandbox's environment with the call's `env` over it. */
  env: Readonly<Record<string, string>>;
  /** The absolute working directory. */
  cwd: string;
  sandbox: MemorySandbox;
  /** Aborted when the command is killed (timeout, abort, `close`, `seal`): stop then. */
  signal: AbortSignal;
  /** Appends to the command's stdout (or stderr after `>&2`). */
  stdout: (data: string | Uint8Array) => void;
  /** Appends to the command's stderr. */
  stderr: (data: string | Uint8Array) => void;
}

/** A command of your own: writes through `io` and returns its exit status. */
export type MemoryCommand = (io: MemoryCommandIo) => number | Promise<number>;

/** Options of `MemorySandbox` and `MemorySandboxProvider`. */
export interface MemorySandboxOptions {
  /** Commands added to the built-in set, by name; they win over a built-in of the same name. */
  commands?: Record<string, MemoryCommand>;
  /** The working directory when the spec names none. @default '/app' */
  workdir?: string;
}

type Node =
  | { kind: 'file'; data: Uint8Array; mode: number }
  | { kind: 'directory'; mode: number }
  | { kind: 'symlink'; target: string };

/** A command in flight, for `close` and `seal`. */
interface Running {
  /** Kills it; `close` rejects the call with `error`, `seal` resolves it as killed. */
  end(error?: PaddockError): void;
}

/**
 * One in-memory sandbox (see the module's doc). `exec` calls run concurrently, each with
 * its own deadline; `user` is ignored (there is one user). Relative paths are taken from
 * `workdir`.
 */
export class MemorySandbox implements Sandbox {
  readonly id: string;
  readonly workdir: string;
  private readonly nodes = new Map<string, Node>([['/', { kind: 'directory', mode: 0o755 }]]);
  private readonly env: Record<string, string>;
  private readonly commands: Record<string, MemoryCommand>;
  private readonly running = new Set<Running>();
  private closed = false;

  /** @param options.env the environment every command starts with */
  constructor(id: string, options: MemorySandboxOptions & { env?: Record<string, string> } = {}) {
    this.id = id;
    this.workdir = posix.resolve('/', options.workdir ?? '/app');
    this.env = { ...options.env };
    this.commands = { ...options.commands };
    this.makeFolders(this.workdir);
  }

  // ── exec ────────────────────────────────────────────────────────────────────────

  /**
   * Runs `command` in the memory sandbox's language (see the module's doc). Resolves
   * whatever the exit status; a timeout resolves with `timedOut`, exit 137 and
   * `killedBy: 'timeout'`; output past `maxOutputBytes` is dropped (`truncated`).
   * @throws PaddockError ABORTED (the command is killed), SANDBOX_CLOSED.
   */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.checkOpen(options.signal);
    const started = performance.now();
    const cap = Math.max(0, options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES);
    const stdout = new CappedBytes(cap);
    const stderr = new CappedBytes(cap);
    const kill = new AbortController();
    let timedOut = false;
    let sealed = false;
    const timer = setTimeout(() => {
      timedOut = true;
      kill.abort();
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const stdin = options.stdin === undefined ? new Uint8Array() : toBytes(options.stdin);
    const cwd = posix.resolve(this.workdir, options.cwd ?? '.');
    const env = { ...this.env, ...options.env };
    let running!: Running;
    let onAbort = (): void => undefined;
    try {
      return await new Promise<ExecResult>((resolve, reject) => {
        running = {
          end: (error) => {
            kill.abort();
            if (error) reject(error);
            else sealed = true;
          },
        };
        this.running.add(running);
        onAbort = () => {
          kill.abort();
          reject(abortedError(options.signal));
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        const io = { stdin, cwd, env, signal: kill.signal, stdout: stdout.push, stderr: stderr.push };
        this.interpret(command, io).then((status) => {
          if (sealed) stderr.push(toBytes('[memory sandbox: the command was killed by seal()]\n'));
          resolve({
            exitCode: timedOut || sealed ? 137 : status,
            stdout: stdout.text(),
            stderr: stderr.text(),
            timedOut,
            ...(timedOut ? { killedBy: 'timeout' as const } : {}),
            truncated: stdout.truncated || stderr.truncated,
            durationMs: performance.now() - started,
          });
        }, reject);
      });
    } finally {
      clearTimeout(timer);
      this.running.delete(running);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Runs a command line; resolves with its exit status once it ends or `io.signal` kills it. */
  private async interpret(line: string, io: Omit<MemoryCommandIo, 'args' | 'sandbox'>): Promise<number> {
    const parsed = parseCommandLine(line, io.env);
    if ('error' in parsed) {
      io.stderr(`memory sandbox: ${parsed.error}\n`);
      return 2;
    }
    if (!this.isFolder(io.cwd)) {
      io.stderr(`sh: cd: ${io.cwd}: No such file or directory\n`);
      return 1;
    }
    let status = 0;
    for (const { words, toStderr } of parsed.commands) {
      if (io.signal.aborted) break;
      const [name, ...args] = words;
      if (name === undefined) continue;
      const out = toStderr ? io.stderr : io.stdout;
      if (name === 'exit') return args[0] === undefined ? status : exitStatus(args[0], io.stderr);
      const custom = this.commands[name];
      status = custom
        ? await custom({ ...io, args, sandbox: this, stdout: out })
        : await this.builtin(name, args, { ...io, stdout: out });
    }
    return status;
  }

  private async builtin(
    name: string,
    args: string[],
    io: Omit<MemoryCommandIo, 'args' | 'sandbox'>,
  ): Promise<number> {
    switch (name) {
      case 'printf':
        return printf(args, io);
      case 'echo':
        io.stdout(`${args.join(' ')}\n`);
        return 0;
      case 'pwd':
        io.stdout(`${io.cwd}\n`);
        return 0;
      case 'sleep':
        return sleep(args, io);
      case 'cat':
        return this.cat(args, io);
      default:
        io.stderr(`sh: ${name}: command not found\n`);
        return 127;
    }
  }

  private cat(args: string[], io: Omit<MemoryCommandIo, 'args' | 'sandbox'>): number {
    let status = 0;
    for (const arg of args.length === 0 ? ['-'] : args) {
      if (arg === '-') {
        io.stdout(io.stdin);
        continue;
      }
      const found = this.resolve(posix.resolve(io.cwd, arg));
      if (found.node?.kind === 'file') io.stdout(found.node.data);
      else {
        io.stderr(
          `cat: ${arg}: ${found.node?.kind === 'directory' ? 'Is a directory' : 'No such file or directory'}\n`,
        );
        status = 1;
      }
    }
    return status;
  }

  // ── files ───────────────────────────────────────────────────────────────────────

  /**
   * Reads a regular file (symlinks followed).
   * @throws PaddockError FILE_NOT_FOUND (nothing there, a folder, a symlink loop, a file
   *   as a folder on the path: `details.type` says what is there), SANDBOX_FAILED with
   *   `details.tooLarge` (over `maxBytes`), SANDBOX_CLOSED, ABORTED.
   */
  async readFile(path: string, options: ReadFileOptions = {}): Promise<Uint8Array> {
    this.checkOpen(options.signal);
    const found = this.resolve(this.absolute(path));
    if (found.problem)
      throw notFound(`readFile: ${path}: ${found.problem.message}`, path, found.problem.type);
    const node = found.node;
    if (!node) throw notFound(`readFile: ${path}: no such file in the sandbox`, path);
    if (node.kind !== 'file')
      throw notFound(`readFile: ${path} is a ${node.kind}, not a file`, path, node.kind);
    if (options.maxBytes !== undefined && node.data.length > options.maxBytes) {
      throw new PaddockError(
        ERROR_CODES.SANDBOX_FAILED,
        `readFile: ${path} is ${node.data.length} bytes, more than the ${options.maxBytes} bytes read`,
        { details: { path, tooLarge: true, size: node.data.length } },
      );
    }
    return Uint8Array.from(node.data);
  }

  /**
   * Writes a file (replacing it, or a symlink at its path), creating parent folders.
   * @default mode 0o644
   * @throws PaddockError FILE_NOT_FOUND (a folder is at the path, or a file on it),
   *   SANDBOX_CLOSED, ABORTED.
   */
  async writeFile(
    path: string,
    data: string | Uint8Array,
    options: { mode?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    this.checkOpen(options.signal);
    const target = this.parentResolved(this.absolute(path), `writeFile: ${path}`);
    if (this.nodes.get(target)?.kind === 'directory') {
      throw notFound(`writeFile: ${path} is a directory`, path, 'directory');
    }
    this.nodes.set(target, {
      kind: 'file',
      data: Uint8Array.from(toBytes(data)),
      mode: options.mode ?? 0o644,
    });
  }

  /**
   * Copies a host file or folder (recursively; symlinks kept as links; modes kept) to
   * `sandboxPath`, creating parent folders.
   * @throws PaddockError FILE_NOT_FOUND (no such host path, or a file on the sandbox
   *   path), SANDBOX_FAILED (the host path cannot be read), SANDBOX_CLOSED, ABORTED.
   */
  async upload(hostPath: string, sandboxPath: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.checkOpen(options.signal);
    try {
      await lstat(hostPath);
    } catch (error) {
      const missing = ['ENOENT', 'ENOTDIR'].includes((error as { code?: string }).code ?? '');
      throw new PaddockError(
        missing ? ERROR_CODES.FILE_NOT_FOUND : ERROR_CODES.SANDBOX_FAILED,
        `upload: cannot read ${hostPath} on the host`,
        { cause: error, details: { path: hostPath, hostPath, sandboxPath } },
      );
    }
    await this.copyIn(hostPath, this.absolute(sandboxPath), options.signal);
  }

  private async copyIn(hostPath: string, target: string, signal: AbortSignal | undefined): Promise<void> {
    this.checkOpen(signal);
    const stat = await lstat(hostPath);
    const at = this.parentResolved(target, `upload: ${target}`);
    if (stat.isDirectory()) {
      if (this.nodes.get(at)?.kind !== 'directory')
        this.nodes.set(at, { kind: 'directory', mode: stat.mode & 0o7777 });
      for (const name of (await readdir(hostPath)).sort()) {
        await this.copyIn(join(hostPath, name), posix.join(at, name), signal);
      }
    } else if (stat.isSymbolicLink()) {
      this.nodes.set(at, { kind: 'symlink', target: await readlink(hostPath) });
    } else if (stat.isFile()) {
      this.nodes.set(at, { kind: 'file', data: await readHostFile(hostPath), mode: stat.mode & 0o7777 });
    }
  }

  /**
   * A tar archive of the file or folder at `path` (see `Sandbox.download`), entries named
   * from its basename, modes and symlinks kept (owned by uid 0); `undefined` when nothing
   * is there.
   * @throws PaddockError SANDBOX_CLOSED, ABORTED.
   */
  async download(
    path: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<NodeJS.ReadableStream | undefined> {
    this.checkOpen(options.signal);
    const found = this.resolve(this.absolute(path), { followLast: false });
    if (!found.node) return undefined;
    const tar = pack();
    this.archive(tar, found.path, posix.basename(found.path) || '.');
    tar.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of tar) chunks.push(chunk as Buffer);
    return Readable.from([Buffer.concat(chunks)]);
  }

  private archive(tar: ReturnType<typeof pack>, at: string, name: string): void {
    const node = this.nodes.get(at);
    if (!node) return;
    const owner = { uid: 0, gid: 0 };
    if (node.kind === 'file')
      tar.entry({ name, type: 'file', mode: node.mode, ...owner }, Buffer.from(node.data));
    else if (node.kind === 'symlink') tar.entry({ name, type: 'symlink', linkname: node.target, ...owner });
    else {
      tar.entry({ name, type: 'directory', mode: node.mode, ...owner });
      for (const child of this.children(at)) this.archive(tar, posix.join(at, child), `${name}/${child}`);
    }
  }

  /**
   * Unpacks a tar archive into the existing folder `dir` (files, folders and symlinks;
   * other entries are skipped).
   * @throws PaddockError FILE_NOT_FOUND (no folder at `dir`), SANDBOX_FAILED (not a tar
   *   archive), SANDBOX_CLOSED, ABORTED.
   */
  async extract(
    archive: NodeJS.ReadableStream,
    dir: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    this.checkOpen(options.signal);
    const found = this.resolve(this.absolute(dir));
    if (found.node?.kind !== 'directory') {
      (archive as Partial<Readable>).destroy?.();
      throw notFound(`extract into ${dir}: no such folder in the sandbox`, dir, found.node?.kind);
    }
    const unpack = untar();
    archive.pipe(unpack);
    try {
      for await (const entry of unpack) {
        this.checkOpen(options.signal);
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        const at = this.parentResolved(posix.join(found.path, entry.header.name), `extract into ${dir}`);
        const mode = (entry.header.mode ?? 0o644) & 0o7777;
        if (entry.header.type === 'directory') {
          if (this.nodes.get(at)?.kind !== 'directory') this.nodes.set(at, { kind: 'directory', mode });
        } else if (entry.header.type === 'symlink') {
          this.nodes.set(at, { kind: 'symlink', target: entry.header.linkname ?? '' });
        } else if (entry.header.type === 'file') {
          this.nodes.set(at, { kind: 'file', data: Buffer.concat(chunks), mode });
        }
      }
    } catch (error) {
      if (error instanceof PaddockError) throw error;
      throw new PaddockError(ERROR_CODES.SANDBOX_FAILED, `extract into ${dir}: not a tar archive`, {
        cause: error,
        details: { path: dir },
      });
    }
  }

  // ── spawn, seal, diagnose, close ────────────────────────────────────────────────

  /**
   * Starts a process with piped stdio: `cat` copies its stdin to stdout until stdin ends
   * (exit 0); any other command line runs as `exec` would, with an empty stdin. `kill()`
   * ends it with status 143. `close()` and `seal()` kill it.
   * @throws PaddockError SANDBOX_CLOSED.
   */
  async spawn(
    command: string,
    options: { cwd?: string; env?: Record<string, string> } = {},
  ): Promise<SandboxProcess> {
    this.checkOpen(undefined);
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const kill = new AbortController();
    let killed = false;
    const running: Running = { end: () => void child.kill() };
    const finish = (status: number): number => {
      this.running.delete(running);
      stdout.end();
      stderr.end();
      return killed ? 143 : status;
    };
    const exited = (
      command.trim() === 'cat'
        ? new Promise<number>((resolve) => {
            stdin.on('data', (chunk: Buffer) => stdout.write(chunk));
            stdin.on('end', () => resolve(0));
            kill.signal.addEventListener('abort', () => resolve(143), { once: true });
          })
        : this.interpret(command, {
            stdin: new Uint8Array(),
            cwd: posix.resolve(this.workdir, options.cwd ?? '.'),
            env: { ...this.env, ...options.env },
            signal: kill.signal,
            stdout: (data) => stdout.write(toBytes(data)),
            stderr: (data) => stderr.write(toBytes(data)),
          })
    ).then(finish);
    const child: SandboxProcess = {
      stdin,
      stdout,
      stderr,
      exited,
      kill: async () => {
        if (!kill.signal.aborted) {
          killed = true;
          kill.abort();
        }
        await exited;
      },
    };
    this.running.add(running);
    return child;
  }

  /**
   * Ends every command in flight (they resolve with exit 137) and every spawned process;
   * there is nothing else to stop or restore in memory.
   * @throws PaddockError SANDBOX_CLOSED, ABORTED.
   */
  async seal(options: { signal?: AbortSignal } = {}): Promise<SealReport> {
    const started = performance.now();
    this.checkOpen(options.signal);
    const killed = this.running.size;
    for (const running of [...this.running]) running.end();
    return {
      method: 'in memory: every command in flight and every spawned process ended',
      killed,
      restored: [],
      warnings: [],
      durationMs: performance.now() - started,
    };
  }

  /** Runs until `close()`; a closed memory sandbox was ended from outside. Never rejects. */
  async diagnose(): Promise<SandboxDiagnosis> {
    return this.closed
      ? { running: false, cause: 'outside', evidence: 'the memory sandbox was closed' }
      : { running: true, evidence: 'the memory sandbox is open' };
  }

  /** Ends every command (they reject with SANDBOX_CLOSED) and process. Idempotent; never rejects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const running of [...this.running]) running.end(closedError());
  }

  // ── paths ───────────────────────────────────────────────────────────────────────

  private absolute(path: string): string {
    return posix.resolve(this.workdir, path);
  }

  private checkOpen(signal: AbortSignal | undefined): void {
    if (this.closed) throw closedError();
    if (signal?.aborted) throw abortedError(signal);
  }

  private isFolder(path: string): boolean {
    return this.resolve(path).node?.kind === 'directory';
  }

  private children(dir: string): string[] {
    const prefix = dir === '/' ? '/' : `${dir}/`;
    const names = new Set<string>();
    for (const path of this.nodes.keys()) {
      if (path !== dir && path.startsWith(prefix)) names.add(path.slice(prefix.length).split('/')[0]!);
    }
    return [...names].sort();
  }

  private makeFolders(path: string): void {
    let at = '/';
    for (const part of path.split('/').filter(Boolean)) {
      at = posix.join(at, part);
      if (!this.nodes.has(at)) this.nodes.set(at, { kind: 'directory', mode: 0o755 });
    }
  }

  /**
   * `path` with its parent folders resolved (symlinks followed) and made when missing; the
   * last component is not followed. @throws FILE_NOT_FOUND when a file is on the path.
   */
  private parentResolved(path: string, what: string): string {
    const parent = this.resolve(posix.dirname(path));
    if (parent.problem) throw notFound(`${what}: ${parent.problem.message}`, path, parent.problem.type);
    if (parent.node && parent.node.kind !== 'directory') {
      throw notFound(`${what}: a folder on its path is a ${parent.node.kind}`, path, parent.node.kind);
    }
    this.makeFolders(parent.path);
    return posix.join(parent.path, posix.basename(path));
  }

  /**
   * Resolves an absolute path component by component, following symlinks (the last one
   * too unless `followLast` is false). `node` is what is there, if anything; `problem`
   * says why the path cannot lead anywhere (a file used as a folder, a symlink loop).
   */
  private resolve(
    path: string,
    options: { followLast?: boolean } = {},
  ): { path: string; node?: Node; problem?: { message: string; type: string } } {
    const pending = path.split('/').filter(Boolean);
    let at = '/';
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      const next = part === '..' ? posix.dirname(at) : part === '.' ? at : posix.join(at, part);
      const node = this.nodes.get(next);
      if (!node) return { path: posix.join(next, ...pending) };
      if (node.kind === 'symlink' && (pending.length > 0 || options.followLast !== false)) {
        if (++hops > MAX_SYMLINK_HOPS) {
          return { path, problem: { message: 'too many levels of symbolic links', type: 'symlink' } };
        }
        pending.unshift(...node.target.split('/').filter(Boolean));
        if (node.target.startsWith('/')) at = '/';
        continue;
      }
      if (node.kind === 'file' && pending.length > 0) {
        return { path, problem: { message: 'a folder on its path is a file', type: 'file' } };
      }
      at = next;
    }
    return { path: at, node: this.nodes.get(at)! };
  }
}

/** Starts `MemorySandbox`es; records each start (sandbox, labels, spec) in `started`. */
export class MemorySandboxProvider implements SandboxProvider {
  readonly kind = 'memory';
  readonly started: { sandbox: MemorySandbox; labels: SandboxLabels; spec: EnvironmentSpec }[] = [];

  constructor(private readonly options: MemorySandboxOptions = {}) {}

  /**
   * A new sandbox: `spec.workdir` (else the option's, else `/app`), `spec.env`, and
   * `spec.files` uploaded from the host. Image and limits are not modelled.
   * @throws PaddockError ABORTED; SANDBOX_START_FAILED when a spec file cannot be copied in.
   */
  async start(
    spec: EnvironmentSpec,
    options: { labels: SandboxLabels; signal?: AbortSignal },
  ): Promise<MemorySandbox> {
    if (options.signal?.aborted) throw abortedError(options.signal);
    const sandbox = new MemorySandbox(`memory-${this.started.length}`, {
      ...this.options,
      env: spec.env,
      ...((spec.workdir ?? this.options.workdir) ? { workdir: spec.workdir ?? this.options.workdir } : {}),
    });
    for (const file of spec.files) {
      try {
        await sandbox.upload(file.hostPath, file.sandboxPath, options);
      } catch (error) {
        await sandbox.close();
        throw new PaddockError(ERROR_CODES.SANDBOX_START_FAILED, `copying the task's files in failed`, {
          cause: error,
          details: { hostPath: file.hostPath },
        });
      }
    }
    this.started.push({ sandbox, labels: options.labels, spec });
    return sandbox;
  }
}

// ── the command language ──────────────────────────────────────────────────────────

interface SimpleCommand {
  words: string[];
  toStderr: boolean;
}

/** Splits a command line into simple commands (see the module's doc), expanding variables. */
function parseCommandLine(
  line: string,
  env: Readonly<Record<string, string>>,
): { commands: SimpleCommand[] } | { error: string } {
  const commands: SimpleCommand[] = [];
  let words: string[] = [];
  let word: string | undefined;
  let toStderr = false;
  const endWord = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0 || toStderr) commands.push({ words, toStderr });
    words = [];
    toStderr = false;
  };
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (char === ';' || char === '\n') endCommand();
    else if (char === ' ' || char === '\t') endWord();
    else if (char === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return { error: 'unterminated quoted string' };
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (char === '"') {
      const quoted = readDoubleQuoted(line, i + 1, env);
      if (!quoted) return { error: 'unterminated quoted string' };
      word = (word ?? '') + quoted.text;
      i = quoted.end;
    } else if (char === '\\') {
      word = (word ?? '') + (line[i + 1] ?? '');
      i++;
    } else if (char === '$') {
      const variable = readVariable(line, i + 1, env);
      word = (word ?? '') + variable.value;
      i = variable.end;
    } else if (line.startsWith('>&2', i)) {
      endWord();
      toStderr = true;
      i += 2;
    } else if ('|&<>()`'.includes(char)) {
      return { error: `unsupported shell syntax: ${char} (see MEMORY_SANDBOX_COMMANDS)` };
    } else word = (word ?? '') + char;
  }
  endCommand();
  return { commands };
}

/** The text of a double-quoted string starting after its quote, and the index of its closing quote. */
function readDoubleQuoted(
  line: string,
  start: number,
  env: Readonly<Record<string, string>>,
): { text: string; end: number } | undefined {
  let text = '';
  for (let i = start; i < line.length; i++) {
    const char = line[i]!;
    if (char === '"') return { text, end: i };
    if (char === '\\' && '$"\\'.includes(line[i + 1] ?? '')) {
      text += line[i + 1];
      i++;
    } else if (char === '$') {
      const variable = readVariable(line, i + 1, env);
      text += variable.value;
      i = variable.end;
    } else text += char;
  }
  return undefined;
}

/** `$NAME` or `${NAME}` starting after the `$`: its value ('' when unset) and the index of its last character. */
function readVariable(
  line: string,
  start: number,
  env: Readonly<Record<string, string>>,
): { value: string; end: number } {
  const braced = line[start] === '{';
  const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(line.slice(braced ? start + 1 : start));
  if (!match) return { value: '$', end: start - 1 };
  if (braced && line[start + 1 + match[0].length] !== '}') return { value: '$', end: start - 1 };
  return { value: env[match[0]] ?? '', end: start + match[0].length - (braced ? -1 : 1) };
}

function exitStatus(arg: string, stderr: (data: string) => void): number {
  if (!/^\d+$/.test(arg)) {
    stderr(`sh: exit: ${arg}: numeric argument required\n`);
    return 2;
  }
  return Number(arg) & 0xff;
}

function printf(args: string[], io: Pick<MemoryCommandIo, 'stdout' | 'stderr'>): number {
  if (args.length !== 1) {
    io.stderr('memory sandbox: printf takes exactly one argument (no format arguments)\n');
    return 2;
  }
  const bytes: number[] = [];
  const format = args[0]!;
  for (let i = 0; i < format.length; i++) {
    const char = format[i]!;
    if (char === '%') {
      if (format[i + 1] !== '%') {
        io.stderr(`memory sandbox: printf: only %% is supported\n`);
        return 2;
      }
      bytes.push(0x25);
      i++;
    } else if (char === '\\') {
      const escape = readEscape(format, i + 1);
      bytes.push(...escape.bytes);
      i = escape.end;
    } else bytes.push(...Buffer.from(char));
  }
  io.stdout(Uint8Array.from(bytes));
  return 0;
}

/** A printf escape starting after its backslash: its bytes and the index of its last character. */
function readEscape(format: string, start: number): { bytes: number[]; end: number } {
  const next = format[start];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, '\\': 92 };
  if (next !== undefined && next in simple) return { bytes: [simple[next]!], end: start };
  const octal = /^[0-7]{1,3}/.exec(format.slice(start));
  if (octal) return { bytes: [parseInt(octal[0], 8) & 0xff], end: start + octal[0].length - 1 };
  const hex = next === 'x' ? /^[0-9a-fA-F]{1,2}/.exec(format.slice(start + 1)) : null;
  if (hex) return { bytes: [parseInt(hex[0], 16)], end: start + hex[0].length };
  return { bytes: [92], end: start - 1 };
}

async function sleep(args: string[], io: Pick<MemoryCommandIo, 'signal' | 'stderr'>): Promise<number> {
  const seconds = Number(args[0]);
  if (args.length !== 1 || !/^\d+(\.\d+)?$/.test(args[0] ?? '') || !Number.isFinite(seconds)) {
    io.stderr(`sleep: invalid time interval '${args.join(' ')}'\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, seconds * 1000);
    function done(): void {
      clearTimeout(timer);
      io.signal.removeEventListener('abort', done);
      resolve();
    }
    io.signal.addEventListener('abort', done, { once: true });
  });
  return io.signal.aborted ? 137 : 0;
}

// ── helpers ───────────────────────────────────────────────────────────────────────

/** The first `capBytes` bytes of a stream of output, and whether more came. */
class CappedBytes {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;

  constructor(private readonly capBytes: number) {}

  readonly push = (data: string | Uint8Array): void => {
    const bytes = toBytes(data);
    const room = this.capBytes - this.kept;
    if (bytes.length > room) this.truncated = true;
    if (room <= 0) return;
    const piece = Buffer.from(bytes.subarray(0, room));
    this.chunks.push(piece);
    this.kept += piece.length;
  };

  /** The kept bytes as UTF-8; a character cut at the cap is dropped. */
  text(): string {
    const bytes = Buffer.concat(this.chunks, this.kept);
    let end = bytes.length;
    if (this.truncated) {
      // Back up over a multi-byte character the cap cut in two.
      let start = end - 1;
      while (start >= 0 && start > end - 4 && (bytes[start]! & 0xc0) === 0x80) start--;
      const lead = bytes[start] ?? 0;
      const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
      if (start >= 0 && start + length > end) end = start;
    }
    return bytes.toString('utf8', 0, end);
  }
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data) : data;
}

function notFound(message: string, path: string, type?: string): PaddockError {
  return new PaddockError(ERROR_CODES.FILE_NOT_FOUND, message, {
    details: { path, ...(type ? { type } : {}) },
  });
}

function closedError(): PaddockError {
  return new PaddockError(ERROR_CODES.SANDBOX_CLOSED, 'the sandbox is closed');
}

function abortedError(signal: AbortSignal | undefined): PaddockError {
  return new PaddockError(ERROR_CODES.ABORTED, 'aborted', { cause: signal?.reason });
}
