/**
 * A conformance suite for sandbox kinds: `describeSandboxConformance` declares, inside
 * the caller's vitest file, the checks of what the `SandboxProvider` / `Sandbox` contract
 * of `harness/sandbox.ts` promises — start, exec (status, streams, stdin, env, cwd,
 * timeout, output cap, abort), files (round trip, read cap, FILE_NOT_FOUND, upload),
 * close — and of the optional capabilities a sandbox has (download/extract, spawn, seal,
 * diagnose); a capability it lacks is skipped, not failed.
 *
 * The commands the suite runs are a small POSIX-sh set, so that small providers can pass
 * (`SANDBOX_CONFORMANCE_COMMANDS`): `printf 'TEXT'` (with `\n` escapes only), `cat`
 * (stdin, or one file), `exit N`, `sleep N`, `pwd`, `echo $VAR`, commands joined by `;`,
 * and `>&2` at the end of a command.
 *
 * ```ts
 * // my-sandbox.conformance.test.ts
 * import { describeSandboxConformance } from 'paddock/testing';
 * describeSandboxConformance('my-sandbox', () => new MySandboxProvider(), { spec: mySpec });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { EnvironmentSpec, Sandbox, SandboxProvider } from '../harness/index.ts';

/** The shell commands the suite runs, for a provider's documentation (see the module's doc). */
export const SANDBOX_CONFORMANCE_COMMANDS = [
  "printf 'TEXT'",
  'cat',
  'cat FILE',
  'exit N',
  'sleep N',
  'pwd',
  'echo $VAR',
  'A; B',
  'A >&2',
] as const;

/** The spec sandboxes start from unless `SandboxConformanceOptions.spec` gives one. */
export const DEFAULT_CONFORMANCE_SPEC: EnvironmentSpec = {
  image: 'paddock/base:bookworm',
  cpus: 1,
  memoryMb: 512,
  pids: 256,
  network: false,
  env: {},
  files: [],
};

/** Options of `describeSandboxConformance`. */
export interface SandboxConformanceOptions {
  /** The spec every sandbox of the suite starts from. @default DEFAULT_CONFORMANCE_SPEC */
  spec?: EnvironmentSpec;
  /** The run id of the sandboxes' labels. @default `conformance-<random hex>` */
  runId?: string;
  /** Time limit of each check and of the set-up and tear-down, in ms. @default 60_000 */
  timeoutMs?: number;
  /**
   * How much later than asked a timeout or an abort may take effect, in ms (a kill in a
   * container takes a moment, more on a loaded machine). @default 5_000
   */
  slackMs?: number;
  /**
   * Called once the suite's sandboxes are closed, e.g. to remove what a crash left
   * (`reapContainers({ runId })`).
   */
  cleanup?: (provider: SandboxProvider, runId: string) => void | Promise<void>;
}

/**
 * Declares the conformance checks of a sandbox kind (a vitest `describe` block named
 * after `name`); call it at the top level of a vitest file. `makeProvider` is called once;
 * the suite starts its sandboxes with labels of `options.runId` and closes them all at the
 * end. It writes only under `<workdir>/paddock-conformance/` and `/` as `cwd`.
 */
export function describeSandboxConformance(
  name: string,
  makeProvider: () => SandboxProvider | Promise<SandboxProvider>,
  options: SandboxConformanceOptions = {},
): void {
  const suite = new ConformanceState(options);
  describe(`${name} sandbox conformance`, () => {
    beforeAll(() => suite.setUp(makeProvider), suite.timeoutMs);
    afterAll(() => suite.tearDown(), suite.timeoutMs);
    describeProvider(suite);
    describeExec(suite);
    describeExecLimits(suite);
    describeFiles(suite);
    describeFileErrors(suite);
    describeUpload(suite);
    describeClose(suite);
    describeArchives(suite);
    describeSpawnSealDiagnose(suite);
  });
}

/** What the checks share: the provider, one sandbox for most checks, a host folder. */
class ConformanceState {
  readonly timeoutMs: number;
  readonly slackMs: number;
  readonly runId: string;
  private providerValue: SandboxProvider | undefined;
  private sandboxValue: Sandbox | undefined;
  private hostDirValue: string | undefined;
  private readonly started: Sandbox[] = [];

  constructor(private readonly options: SandboxConformanceOptions) {
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.slackMs = options.slackMs ?? 5_000;
    this.runId = options.runId ?? `conformance-${randomBytes(4).toString('hex')}`;
  }

  get provider(): SandboxProvider {
    if (!this.providerValue) throw new Error('the conformance suite did not start');
    return this.providerValue;
  }

  /** The sandbox most checks share. */
  get sandbox(): Sandbox {
    if (!this.sandboxValue) throw new Error('the conformance suite did not start');
    return this.sandboxValue;
  }

  /** A host folder holding `file.txt` and `tree/{top.txt,sub/deep.txt}`. */
  get hostDir(): string {
    if (!this.hostDirValue) throw new Error('the conformance suite did not start');
    return this.hostDirValue;
  }

  /** A path for the suite's files in the shared sandbox. */
  path(name: string): string {
    return `${this.sandbox.workdir.replace(/\/$/, '')}/paddock-conformance/${name}`;
  }

  async setUp(makeProvider: () => SandboxProvider | Promise<SandboxProvider>): Promise<void> {
    this.hostDirValue = await mkdtemp(join(tmpdir(), 'paddock-conformance-'));
    await writeFile(join(this.hostDir, 'file.txt'), 'a host file\n');
    await mkdir(join(this.hostDir, 'tree/sub'), { recursive: true });
    await writeFile(join(this.hostDir, 'tree/top.txt'), 'top\n');
    await writeFile(join(this.hostDir, 'tree/sub/deep.txt'), 'deep\n');
    this.providerValue = await makeProvider();
    this.sandboxValue = await this.start('shared');
  }

  /** Starts a sandbox of the suite's spec with the suite's labels; it is closed at the end. */
  async start(episode: string): Promise<Sandbox> {
    const sandbox = await this.provider.start(this.options.spec ?? DEFAULT_CONFORMANCE_SPEC, {
      labels: { runId: this.runId, episodeId: `conformance-${episode}` },
    });
    this.started.push(sandbox);
    return sandbox;
  }

  async tearDown(): Promise<void> {
    await Promise.all(this.started.map((sandbox) => sandbox.close()));
    if (this.providerValue) await this.options.cleanup?.(this.providerValue, this.runId);
    if (this.hostDirValue) await rm(this.hostDirValue, { recursive: true, force: true });
  }
}

function describeProvider(suite: ConformanceState): void {
  describe('SandboxProvider.start', () => {
    it('names its kind', () => {
      expect(typeof suite.provider.kind).toBe('string');
      expect(suite.provider.kind.length).toBeGreaterThan(0);
    });

    it(
      'starts a sandbox with an id and an absolute workdir, another one with another id',
      async () => {
        const other = await suite.start('second');
        for (const sandbox of [suite.sandbox, other]) {
          expect(typeof sandbox.id).toBe('string');
          expect(sandbox.id.length).toBeGreaterThan(0);
          expect(sandbox.workdir.startsWith('/')).toBe(true);
        }
        expect(other.id).not.toBe(suite.sandbox.id);
        await other.close();
      },
      suite.timeoutMs,
    );
  });
}

function describeExec(suite: ConformanceState): void {
  describe('Sandbox.exec', () => {
    it(
      'resolves a non-zero exit status as data',
      async () => {
        const result = await suite.sandbox.exec('exit 3');
        expect(result).toMatchObject({ exitCode: 3, timedOut: false, truncated: false });
        expect(result.killedBy).toBeUndefined();
        expect(result.durationMs).toBeGreaterThanOrEqual(0);
      },
      suite.timeoutMs,
    );

    it(
      'keeps stdout and stderr apart',
      async () => {
        const result = await suite.sandbox.exec("printf 'out'; printf 'err' >&2");
        expect(result).toMatchObject({ exitCode: 0, stdout: 'out', stderr: 'err' });
      },
      suite.timeoutMs,
    );

    it(
      'gives the command the stdin it is given, as text or bytes',
      async () => {
        const text = await suite.sandbox.exec('cat', { stdin: 'line one\nline two\n' });
        expect(text.stdout).toBe('line one\nline two\n');
        const bytes = await suite.sandbox.exec('cat', { stdin: Buffer.from('as bytes\n') });
        expect(bytes.stdout).toBe('as bytes\n');
      },
      suite.timeoutMs,
    );

    it(
      'gives the command an empty stdin when none is given',
      async () => {
        const result = await suite.sandbox.exec('cat', { timeoutMs: suite.timeoutMs / 2 });
        expect(result).toMatchObject({ exitCode: 0, stdout: '', timedOut: false });
      },
      suite.timeoutMs,
    );

    it(
      'sets env for that command only',
      async () => {
        const env = { PADDOCK_CONFORMANCE_VAR: 'hello world' };
        expect((await suite.sandbox.exec('echo $PADDOCK_CONFORMANCE_VAR', { env })).stdout).toBe(
          'hello world\n',
        );
        expect((await suite.sandbox.exec('echo $PADDOCK_CONFORMANCE_VAR')).stdout).toBe('\n');
      },
      suite.timeoutMs,
    );

    it(
      'starts in the workdir, or in cwd when given',
      async () => {
        expect((await suite.sandbox.exec('pwd')).stdout).toBe(`${suite.sandbox.workdir}\n`);
        expect((await suite.sandbox.exec('pwd', { cwd: '/' })).stdout).toBe('/\n');
      },
      suite.timeoutMs,
    );

    it(
      'runs concurrent calls each to its own result',
      async () => {
        const [a, b] = await Promise.all([
          suite.sandbox.exec("printf 'a'"),
          suite.sandbox.exec("printf 'b' >&2; exit 4"),
        ]);
        expect(a).toMatchObject({ exitCode: 0, stdout: 'a', stderr: '' });
        expect(b).toMatchObject({ exitCode: 4, stdout: '', stderr: 'b' });
      },
      suite.timeoutMs,
    );
  });
}

function describeExecLimits(suite: ConformanceState): void {
  describe('Sandbox.exec limits', () => {
    it(
      'kills a command at timeoutMs, in time, with timedOut and exit 137, and stays usable',
      async () => {
        const started = performance.now();
        const result = await suite.sandbox.exec('sleep 30', { timeoutMs: 1_000 });
        expect(performance.now() - started).toBeLessThan(1_000 + suite.slackMs);
        expect(result).toMatchObject({ timedOut: true, exitCode: 137 });
        expect([undefined, 'timeout']).toContain(result.killedBy);
        expect((await suite.sandbox.exec("printf 'still here'")).stdout).toBe('still here');
      },
      suite.timeoutMs,
    );

    it(
      'keeps the first maxOutputBytes of each stream and says it truncated',
      async () => {
        const hundred = 'x'.repeat(100);
        const out = await suite.sandbox.exec(`printf '${hundred}'`, { maxOutputBytes: 10 });
        expect(out).toMatchObject({ stdout: 'x'.repeat(10), truncated: true, exitCode: 0 });
        const err = await suite.sandbox.exec(`printf '${hundred}' >&2`, { maxOutputBytes: 10 });
        expect(err).toMatchObject({ stderr: 'x'.repeat(10), truncated: true });
      },
      suite.timeoutMs,
    );

    it(
      'does not say truncated when the output fits maxOutputBytes',
      async () => {
        const result = await suite.sandbox.exec(`printf '${'y'.repeat(10)}'`, { maxOutputBytes: 10 });
        expect(result).toMatchObject({ stdout: 'y'.repeat(10), truncated: false });
      },
      suite.timeoutMs,
    );

    it(
      'rejects with ABORTED when the signal was aborted before the call',
      async () => {
        const controller = new AbortController();
        controller.abort();
        await expect(suite.sandbox.exec('sleep 30', { signal: controller.signal })).rejects.toMatchObject({
          code: 'ABORTED',
        });
      },
      suite.timeoutMs,
    );

    it(
      'rejects with ABORTED promptly when aborted while the command runs, and kills it',
      async () => {
        const controller = new AbortController();
        const call = suite.sandbox.exec('sleep 30', { signal: controller.signal });
        const settled = call.then(
          () => performance.now(),
          () => performance.now(),
        );
        // Long enough for a provider to have started the command (there is no event to wait on).
        setTimeout(() => controller.abort(), 300);
        await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
        const abortedAt = performance.now();
        expect((await settled) - abortedAt).toBeLessThan(suite.slackMs);
        // The killed command no longer holds the sandbox.
        const next = await suite.sandbox.exec("printf 'next'", { timeoutMs: suite.slackMs * 2 });
        expect(next).toMatchObject({ stdout: 'next', timedOut: false });
      },
      suite.timeoutMs,
    );
  });
}

function describeFiles(suite: ConformanceState): void {
  describe('Sandbox files', () => {
    it(
      'reads back every byte value writeFile wrote, creating parent folders',
      async () => {
        const bytes = Uint8Array.from({ length: 256 }, (_, index) => index);
        const path = suite.path('new/folders/bytes.bin');
        await suite.sandbox.writeFile(path, bytes);
        expect(Buffer.from(await suite.sandbox.readFile(path)).equals(Buffer.from(bytes))).toBe(true);
      },
      suite.timeoutMs,
    );

    it(
      'writes a string as UTF-8 and replaces what was there',
      async () => {
        const path = suite.path('text.txt');
        await suite.sandbox.writeFile(path, 'first version, longer than the second\n');
        await suite.sandbox.writeFile(path, 'zweite — ✓\n');
        expect(Buffer.from(await suite.sandbox.readFile(path)).toString('utf8')).toBe('zweite — ✓\n');
      },
      suite.timeoutMs,
    );

    it(
      'reads an empty file as no bytes',
      async () => {
        const path = suite.path('empty.txt');
        await suite.sandbox.writeFile(path, '');
        expect((await suite.sandbox.readFile(path)).length).toBe(0);
      },
      suite.timeoutMs,
    );

    it(
      'shows commands what writeFile wrote',
      async () => {
        const path = suite.path('for-cat.txt');
        await suite.sandbox.writeFile(path, 'seen by cat\n');
        expect((await suite.sandbox.exec(`cat '${path}'`)).stdout).toBe('seen by cat\n');
      },
      suite.timeoutMs,
    );
  });
}

function describeFileErrors(suite: ConformanceState): void {
  describe('Sandbox file errors', () => {
    it(
      'rejects reading a missing path with FILE_NOT_FOUND naming it, not retryable',
      async () => {
        const path = suite.path('no/such/file.txt');
        await expect(suite.sandbox.readFile(path)).rejects.toMatchObject({
          code: 'FILE_NOT_FOUND',
          retryable: false,
          message: expect.stringContaining('file.txt'),
        });
      },
      suite.timeoutMs,
    );

    it(
      'rejects reading a folder with FILE_NOT_FOUND',
      async () => {
        await suite.sandbox.writeFile(suite.path('folder/inside.txt'), 'x');
        await expect(suite.sandbox.readFile(suite.path('folder'))).rejects.toMatchObject({
          code: 'FILE_NOT_FOUND',
        });
      },
      suite.timeoutMs,
    );

    it(
      'refuses a file larger than maxBytes with details.tooLarge, and reads one of exactly maxBytes',
      async () => {
        const path = suite.path('hundred.txt');
        await suite.sandbox.writeFile(path, 'z'.repeat(100));
        await expect(suite.sandbox.readFile(path, { maxBytes: 99 })).rejects.toMatchObject({
          code: 'SANDBOX_FAILED',
          details: { tooLarge: true },
        });
        expect((await suite.sandbox.readFile(path, { maxBytes: 100 })).length).toBe(100);
      },
      suite.timeoutMs,
    );
  });
}

function describeUpload(suite: ConformanceState): void {
  describe('Sandbox.upload', () => {
    it(
      'uploads a host file to the path given',
      async () => {
        const path = suite.path('uploaded/file.txt');
        await suite.sandbox.upload(join(suite.hostDir, 'file.txt'), path);
        expect(Buffer.from(await suite.sandbox.readFile(path)).toString()).toBe('a host file\n');
      },
      suite.timeoutMs,
    );

    it(
      'uploads a host folder recursively',
      async () => {
        const path = suite.path('uploaded/tree');
        await suite.sandbox.upload(join(suite.hostDir, 'tree'), path);
        expect(Buffer.from(await suite.sandbox.readFile(`${path}/top.txt`)).toString()).toBe('top\n');
        expect(Buffer.from(await suite.sandbox.readFile(`${path}/sub/deep.txt`)).toString()).toBe('deep\n');
      },
      suite.timeoutMs,
    );

    it(
      'rejects uploading a host path that does not exist with FILE_NOT_FOUND',
      async () => {
        await expect(
          suite.sandbox.upload(join(suite.hostDir, 'missing'), suite.path('never.txt')),
        ).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
      },
      suite.timeoutMs,
    );
  });
}

function describeClose(suite: ConformanceState): void {
  describe('Sandbox.close', () => {
    it(
      'can be called twice and never rejects; every later call rejects with SANDBOX_CLOSED',
      async () => {
        const sandbox = await suite.start('closed');
        await expect(sandbox.close()).resolves.toBeUndefined();
        await expect(sandbox.close()).resolves.toBeUndefined();
        const closed = { code: 'SANDBOX_CLOSED' };
        await expect(sandbox.exec("printf 'x'")).rejects.toMatchObject(closed);
        await expect(sandbox.readFile('/x')).rejects.toMatchObject(closed);
        await expect(sandbox.writeFile('/tmp/x', 'x')).rejects.toMatchObject(closed);
        await expect(sandbox.upload(join(suite.hostDir, 'file.txt'), '/tmp/x')).rejects.toMatchObject(closed);
        if (sandbox.download) await expect(sandbox.download('/')).rejects.toMatchObject(closed);
        if (sandbox.spawn) await expect(sandbox.spawn('cat')).rejects.toMatchObject(closed);
        if (sandbox.seal) await expect(sandbox.seal()).rejects.toMatchObject(closed);
      },
      suite.timeoutMs,
    );

    it(
      'ends a command in flight: it rejects with SANDBOX_CLOSED or SANDBOX_FAILED, promptly',
      async () => {
        const sandbox = await suite.start('closed-in-flight');
        const call = sandbox.exec('sleep 30');
        const outcome = call.then(
          () => 'resolved',
          (error: unknown) => (error as { code?: string }).code,
        );
        // Long enough for a provider to have started the command (there is no event to wait on).
        await new Promise((resolve) => setTimeout(resolve, 300));
        const closedAt = performance.now();
        await sandbox.close();
        expect(['SANDBOX_CLOSED', 'SANDBOX_FAILED']).toContain(await outcome);
        expect(performance.now() - closedAt).toBeLessThan(suite.slackMs * 2);
      },
      suite.timeoutMs,
    );

    it(
      'is seen by diagnose, when the sandbox has it: not running, and diagnose does not reject',
      async (context) => {
        const sandbox = await suite.start('diagnosed-closed');
        if (!sandbox.diagnose) return skip(context, 'no diagnose');
        await sandbox.close();
        expect(await sandbox.diagnose()).toMatchObject({ running: false });
      },
      suite.timeoutMs,
    );
  });
}

function describeArchives(suite: ConformanceState): void {
  describe('Sandbox.download and Sandbox.extract (optional, together)', () => {
    it('come together or not at all', () => {
      expect('download' in suite.sandbox && suite.sandbox.download !== undefined).toBe(
        'extract' in suite.sandbox && suite.sandbox.extract !== undefined,
      );
    });

    it(
      'download a folder as a tar archive whose entries are named from its basename',
      async (context) => {
        const { sandbox } = suite;
        if (!sandbox.download) return skip(context, 'no download');
        await sandbox.writeFile(suite.path('archived/a.txt'), 'a\n');
        await sandbox.writeFile(suite.path('archived/sub/b.txt'), 'b\n');
        const entries = await readTar(await sandbox.download(suite.path('archived')));
        const files = entries.filter((entry) => entry.type === 'file');
        expect(Object.fromEntries(files.map((entry) => [entry.name, entry.data]))).toEqual({
          'archived/a.txt': 'a\n',
          'archived/sub/b.txt': 'b\n',
        });
        const single = await readTar(await sandbox.download(suite.path('archived/a.txt')));
        expect(single).toEqual([expect.objectContaining({ name: 'a.txt', type: 'file', data: 'a\n' })]);
      },
      suite.timeoutMs,
    );

    it(
      'download gives undefined for a missing path',
      async (context) => {
        if (!suite.sandbox.download) return skip(context, 'no download');
        await expect(suite.sandbox.download(suite.path('not/there'))).resolves.toBeUndefined();
      },
      suite.timeoutMs,
    );

    it(
      'extract unpacks what download gave into an existing folder',
      async (context) => {
        const { sandbox } = suite;
        if (!sandbox.download || !sandbox.extract) return skip(context, 'no download/extract');
        await sandbox.writeFile(suite.path('source/tree/c.txt'), 'c\n');
        await sandbox.writeFile(suite.path('copy/.keep'), '');
        const archive = await sandbox.download(suite.path('source/tree'));
        await sandbox.extract(archive!, suite.path('copy'));
        expect(Buffer.from(await sandbox.readFile(suite.path('copy/tree/c.txt'))).toString()).toBe('c\n');
      },
      suite.timeoutMs,
    );

    it(
      'extract into a missing folder rejects with FILE_NOT_FOUND',
      async (context) => {
        const { sandbox } = suite;
        if (!sandbox.download || !sandbox.extract) return skip(context, 'no download/extract');
        await sandbox.writeFile(suite.path('lonely.txt'), 'x');
        const archive = await sandbox.download(suite.path('lonely.txt'));
        await expect(sandbox.extract(archive!, suite.path('no/such/folder'))).rejects.toMatchObject({
          code: 'FILE_NOT_FOUND',
        });
      },
      suite.timeoutMs,
    );
  });
}

function describeSpawnSealDiagnose(suite: ConformanceState): void {
  describe('Sandbox.spawn, seal and diagnose (optional)', () => {
    it(
      'spawn pipes stdin to a process and its stdout back; kill ends it, twice without harm',
      async (context) => {
        if (!suite.sandbox.spawn) return skip(context, 'no spawn');
        const child = await suite.sandbox.spawn('cat');
        const echoed = firstData(child.stdout);
        child.stdin.write('ping\n');
        expect(await echoed).toBe('ping\n');
        await child.kill();
        await child.kill();
        expect(typeof (await child.exited)).toBe('number');
      },
      suite.timeoutMs,
    );

    it(
      'seal reports what it did, ends spawned processes, and exec works after it',
      async (context) => {
        const sandbox = await suite.start('sealed');
        if (!sandbox.seal) return skip(context, 'no seal');
        const child = sandbox.spawn ? await sandbox.spawn('sleep 30') : undefined;
        const report = await sandbox.seal();
        expect(typeof report.method).toBe('string');
        expect(typeof report.killed).toBe('number');
        expect(Array.isArray(report.restored)).toBe(true);
        expect(Array.isArray(report.warnings)).toBe(true);
        expect(typeof report.durationMs).toBe('number');
        if (child) {
          const ended = await Promise.race([
            child.exited.then(() => true),
            new Promise<boolean>((resolve) => setTimeout(() => resolve(false), suite.slackMs)),
          ]);
          expect(ended).toBe(true);
        }
        expect((await sandbox.exec("printf 'after seal'")).stdout).toBe('after seal');
        await sandbox.close();
      },
      suite.timeoutMs,
    );

    it(
      'diagnose says a running sandbox runs',
      async (context) => {
        if (!suite.sandbox.diagnose) return skip(context, 'no diagnose');
        const diagnosis = await suite.sandbox.diagnose();
        expect(diagnosis.running).toBe(true);
        expect(typeof diagnosis.evidence).toBe('string');
      },
      suite.timeoutMs,
    );
  });
}

/** Skips a check of a capability the sandbox does not have. */
function skip(context: TestContext, note: string): void {
  context.skip(note);
}

/** The first chunk a stream gives, as text. */
function firstData(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    stream.once('data', (chunk: Buffer | string) => resolve(String(chunk)));
    stream.once('error', reject);
  });
}

/** The entries of a tar archive: name (without a trailing slash), type and text content. */
async function readTar(
  archive: NodeJS.ReadableStream | undefined,
): Promise<{ name: string; type: string; data: string }[]> {
  if (!archive) throw new Error('download gave undefined for a path that exists');
  const unpack = extract();
  archive.pipe(unpack);
  const entries: { name: string; type: string; data: string }[] = [];
  for await (const entry of unpack) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    entries.push({
      name: entry.header.name.replace(/\/$/, ''),
      type: entry.header.type ?? 'file',
      data: Buffer.concat(chunks).toString('utf8'),
    });
  }
  return entries;
}
