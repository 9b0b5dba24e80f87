/**
 * Files in and out of a Docker sandbox through the engine's archive API, the spec's
 * files at start, and `close()`.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../harness/sandbox.ts';
import { DockerSandboxProvider, dockerClient, reapContainers } from '../../../sandboxes/docker/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from './helpers.ts';

const runId = testRunId('files');
const provider = new DockerSandboxProvider();
let sandbox: Sandbox;
let hostDir: string;

beforeAll(async () => {
  await ensureBaseImage();
  hostDir = await mkdtemp(join(tmpdir(), 'paddock-files-test-'));
  await mkdir(join(hostDir, 'tree/sub/deeper'), { recursive: true });
  await mkdir(join(hostDir, 'tree/empty'));
  await writeFile(join(hostDir, 'tree/top.txt'), 'top\n');
  await writeFile(join(hostDir, 'tree/sub/run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
  await writeFile(join(hostDir, 'tree/sub/deeper/data.bin'), Buffer.alloc(300_000, 7));
  await symlink('top.txt', join(hostDir, 'tree/link'));
  await writeFile(join(hostDir, 'single.txt'), 'single file\n');
  sandbox = await provider.start(
    baseSpec({
      workdir: '/work',
      files: [{ hostPath: join(hostDir, 'single.txt'), sandboxPath: '/task/input.txt' }],
    }),
    { labels: { runId, episodeId: 'files' } },
  );
});

afterAll(async () => {
  await sandbox?.close();
  await reapContainers({ runId });
  await rm(hostDir, { recursive: true, force: true });
});

describe('Docker sandbox files', () => {
  it('copies the spec files in before the first command', async () => {
    expect((await sandbox.exec('cat /task/input.txt')).stdout).toBe('single file\n');
  });

  it('creates the workdir named by the spec and starts commands there', async () => {
    expect(sandbox.workdir).toBe('/work');
    expect((await sandbox.exec('pwd')).stdout).toBe('/work\n');
  });

  it('writes a file that commands then read, creating parent folders', async () => {
    await sandbox.writeFile('/data/new/dir/hello.txt', 'hello from the host');
    expect(
      (await sandbox.exec('cat /data/new/dir/hello.txt; stat -c %a /data/new/dir/hello.txt')).stdout,
    ).toBe('hello from the host644\n');
  });

  it('writes a file with the mode asked for', async () => {
    await sandbox.writeFile('/tmp/tool.sh', '#!/bin/sh\necho tool\n', { mode: 0o755 });
    expect((await sandbox.exec('/tmp/tool.sh')).stdout).toBe('tool\n');
  });

  it('writes relative paths under the workdir', async () => {
    await sandbox.writeFile('notes/relative.txt', 'rel');
    expect((await sandbox.exec('cat /work/notes/relative.txt')).stdout).toBe('rel');
  });

  it('reads back the exact bytes a command wrote', async () => {
    await sandbox.exec('printf "\\000\\001\\377binary" > /tmp/bytes.bin');
    const bytes = await sandbox.readFile('/tmp/bytes.bin');
    expect(Buffer.from(bytes)).toEqual(Buffer.from([0, 1, 255, ...Buffer.from('binary')]));
  });

  it('round-trips a large binary file', async () => {
    const data = Buffer.alloc(2_000_000).map((_, i) => (i * 31) % 251);
    await sandbox.writeFile('/tmp/large.bin', data);
    expect(Buffer.from(await sandbox.readFile('/tmp/large.bin')).equals(data)).toBe(true);
  });

  it('follows a symlink when reading', async () => {
    await sandbox.exec('echo target > /tmp/target.txt; ln -sf target.txt /tmp/link.txt');
    expect(Buffer.from(await sandbox.readFile('/tmp/link.txt')).toString()).toBe('target\n');
  });

  it('rejects reading a missing file with FILE_NOT_FOUND naming the path, not retryable', async () => {
    await expect(sandbox.readFile('/no/such/file.txt')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      retryable: false,
      message: expect.stringContaining('/no/such/file.txt'),
      details: { path: '/no/such/file.txt' },
    });
  });

  it('rejects reading a folder with FILE_NOT_FOUND saying a directory is there', async () => {
    await expect(sandbox.readFile('/etc')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      details: { path: '/etc', type: 'directory' },
    });
  });

  it('rejects reading a FIFO with FILE_NOT_FOUND without reading it', async () => {
    await sandbox.exec('mkfifo /tmp/pipe');
    await expect(sandbox.readFile('/tmp/pipe')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      details: { type: 'fifo' },
    });
  });

  it('rejects reading through a file as if it were a folder with FILE_NOT_FOUND', async () => {
    await expect(sandbox.readFile('/etc/hostname/x')).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });

  it('rejects a symlink loop with FILE_NOT_FOUND', async () => {
    await sandbox.exec('ln -sf /tmp/loop-b /tmp/loop-a; ln -sf /tmp/loop-a /tmp/loop-b');
    await expect(sandbox.readFile('/tmp/loop-a')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      message: expect.stringContaining('symbolic links'),
    });
  });

  it('refuses a file larger than maxBytes with SANDBOX_FAILED and details.tooLarge, reading nothing', async () => {
    await sandbox.writeFile('/tmp/big.txt', 'x'.repeat(1000));
    await expect(sandbox.readFile('/tmp/big.txt', { maxBytes: 999 })).rejects.toMatchObject({
      code: 'SANDBOX_FAILED',
      retryable: false,
      details: { tooLarge: true, size: 1000 },
    });
    expect((await sandbox.readFile('/tmp/big.txt', { maxBytes: 1000 })).length).toBe(1000);
  });

  it("rejects a write the container's filesystem refuses with a non-retryable SANDBOX_FAILED marked refused", async () => {
    // Writing a file over /etc makes the engine try to remove /etc, whose bind mounts are busy.
    const victim = await provider.start(baseSpec(), { labels: { runId, episodeId: 'files-refused' } });
    try {
      await expect(victim.writeFile('/etc', 'x')).rejects.toMatchObject({
        code: 'SANDBOX_FAILED',
        retryable: false,
        details: { refused: true },
      });
    } finally {
      await victim.close();
    }
  });

  it('rejects writing through a file as if it were a folder with FILE_NOT_FOUND', async () => {
    await expect(sandbox.writeFile('/etc/hostname/x', 'x')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      details: { path: '/etc/hostname/x' },
    });
  });

  it('uploads a folder recursively: files, modes, empty folders and symlinks', async () => {
    await sandbox.upload(join(hostDir, 'tree'), '/uploaded/tree');
    const listing = await sandbox.exec(
      'cd /uploaded/tree && find . | sort && sh sub/run.sh && test -x sub/run.sh && readlink link && wc -c < sub/deeper/data.bin',
    );
    expect(listing.stdout).toBe(
      [
        '.',
        './empty',
        './link',
        './sub',
        './sub/deeper',
        './sub/deeper/data.bin',
        './sub/run.sh',
        './top.txt',
        'ran',
        'top.txt',
        '300000',
        '',
      ].join('\n'),
    );
    expect(Buffer.from(await sandbox.readFile('/uploaded/tree/top.txt')).toString()).toBe('top\n');
  });

  it('uploads a single file to the path given', async () => {
    await sandbox.upload(join(hostDir, 'single.txt'), '/elsewhere/renamed.txt');
    expect((await sandbox.exec('cat /elsewhere/renamed.txt')).stdout).toBe('single file\n');
  });

  it('keeps the mode of an existing folder it uploads into', async () => {
    await sandbox.upload(join(hostDir, 'tree'), '/tmp');
    expect((await sandbox.exec('stat -c %a /tmp; cat /tmp/top.txt')).stdout).toBe('1777\ntop\n');
  });

  it('rejects uploading a host path that does not exist with FILE_NOT_FOUND', async () => {
    await expect(sandbox.upload(join(hostDir, 'missing'), '/x')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      details: { path: join(hostDir, 'missing') },
    });
  });

  it('makes written files owned by a non-root sandbox user, who can then edit them', async () => {
    const asNobody = await provider.start(baseSpec({ user: 'nobody', workdir: '/tmp' }), {
      labels: { runId, episodeId: 'files-nobody' },
    });
    try {
      await asNobody.writeFile('/srv/owned/file.txt', 'mine');
      const result = await asNobody.exec(
        'id -un; stat -c %U /srv/owned /srv/owned/file.txt; echo more >> /srv/owned/file.txt && echo edited',
      );
      expect(result.stdout).toBe('nobody\nnobody\nnobody\nedited\n');
    } finally {
      await asNobody.close();
    }
  });
});

describe('download and extract between sandboxes', () => {
  it('copies a folder with its modes, owners, symlinks and empty folders, and a single file', async () => {
    await sandbox.exec(
      [
        'mkdir -p /src/tree/empty /src/tree/sub',
        'echo secret > /src/tree/sub/key && chmod 600 /src/tree/sub/key && chown nobody:nogroup /src/tree/sub/key',
        'printf "#!/bin/sh\\necho ran\\n" > /src/tree/run.sh && chmod 750 /src/tree/run.sh',
        'ln -s sub/key /src/tree/link && ln -s /src/tree/run.sh /src/alias',
        'echo one > /src/one.txt',
      ].join(' && '),
      { user: 'root' },
    );
    const other = await provider.start(baseSpec(), { labels: { runId, episodeId: 'files-copy' } });
    try {
      await other.exec('mkdir -p /dst', { user: 'root' });
      for (const path of ['/src/tree', '/src/one.txt', '/src/alias']) {
        const archive = await sandbox.download!(path);
        if (archive === undefined) throw new Error(`nothing downloaded from ${path}`);
        await other.extract(archive, '/dst');
      }
      const result = await other.exec(
        'cd /dst && find . | sort && stat -c "%n %a %U" tree/sub/key tree/run.sh && readlink tree/link alias && tree/run.sh && cat one.txt',
        { user: 'root' },
      );
      expect(result.stdout).toBe(
        [
          '.',
          './alias',
          './one.txt',
          './tree',
          './tree/empty',
          './tree/link',
          './tree/run.sh',
          './tree/sub',
          './tree/sub/key',
          'tree/sub/key 600 nobody',
          'tree/run.sh 750 root',
          'sub/key',
          '/src/tree/run.sh',
          'ran',
          'one',
          '',
        ].join('\n'),
      );
    } finally {
      await other.close();
    }
  });

  it('gives undefined for a missing path, and extracting into a missing folder fails with FILE_NOT_FOUND', async () => {
    await expect(sandbox.download!('/no/such/path')).resolves.toBeUndefined();
    await expect(sandbox.download!('/etc/hostname/x')).resolves.toBeUndefined();
    const archive = await sandbox.download!('/task/input.txt');
    await expect(sandbox.extract!(archive!, '/no/such/folder')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      details: { path: '/no/such/folder' },
    });
    const again = await sandbox.download!('/task/input.txt');
    await expect(sandbox.extract!(again!, '/etc/hostname')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      details: { type: 'file' },
    });
  });
});

describe('a sandbox with a non-root user', () => {
  it('gives the user a workdir that the engine had to create', async () => {
    const sandbox = await provider.start(baseSpec({ user: 'nobody', workdir: '/home/agent/project' }), {
      labels: { runId, episodeId: 'files-workdir' },
    });
    try {
      const result = await sandbox.exec('pwd; stat -c %U .; touch made-here && echo writable');
      expect(result.stdout).toBe('/home/agent/project\nnobody\nwritable\n');
    } finally {
      await sandbox.close();
    }
  });
});

describe('DockerSandbox.close', () => {
  it('removes the container, can be called again, and later calls reject with SANDBOX_CLOSED', async () => {
    const doomed = await provider.start(baseSpec(), { labels: { runId, episodeId: 'close' } });
    await doomed.close();
    await expect(doomed.close()).resolves.toBeUndefined();
    await expect(dockerClient().getContainer(doomed.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(doomed.exec('true')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
    await expect(doomed.readFile('/etc/hostname')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
    await expect(doomed.writeFile('/tmp/x', 'x')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
    await expect(doomed.upload(hostDir, '/tmp/x')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
  });

  it('rejects a command in flight with SANDBOX_CLOSED', async () => {
    const doomed = await provider.start(baseSpec(), { labels: { runId, episodeId: 'close-inflight' } });
    const outcomes = Promise.all([
      expect(doomed.exec('sleep 1000')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' }),
      expect(doomed.exec('echo queued')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' }),
    ]);
    await doomed.close();
    await outcomes;
  });

  it('does not reject when the container is already gone', async () => {
    const doomed = await provider.start(baseSpec(), { labels: { runId, episodeId: 'close-gone' } });
    await dockerClient().getContainer(doomed.id).remove({ force: true });
    await expect(doomed.close()).resolves.toBeUndefined();
  });

  it('fails file calls with a retryable SANDBOX_FAILED, not FILE_NOT_FOUND, when the container was removed under them', async () => {
    const doomed = await provider.start(baseSpec(), { labels: { runId, episodeId: 'vanished-files' } });
    await dockerClient().getContainer(doomed.id).remove({ force: true });
    const gone = { code: 'SANDBOX_FAILED', retryable: true };
    await expect(doomed.readFile('/etc/hostname')).rejects.toMatchObject(gone);
    await expect(doomed.download('/etc/hostname')).rejects.toMatchObject(gone);
    await expect(doomed.writeFile('/tmp/x', 'x')).rejects.toMatchObject(gone);
    await expect(doomed.upload(join(hostDir, 'single.txt'), '/tmp/x')).rejects.toMatchObject(gone);
    await doomed.close();
  });

  it('fails the next command with SANDBOX_FAILED when the container was removed under it', async () => {
    const doomed = await provider.start(baseSpec(), { labels: { runId, episodeId: 'vanished' } });
    await dockerClient().getContainer(doomed.id).remove({ force: true });
    await expect(doomed.exec('echo hi')).rejects.toMatchObject({ code: 'SANDBOX_FAILED' });
    await doomed.close();
  });
});
