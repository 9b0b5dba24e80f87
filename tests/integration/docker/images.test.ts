/**
 * Images for tasks on the real engine: missing images, the image map, Dockerfile builds
 * cached by content hash, FROM rewriting, build failures.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_IMAGE,
  DockerSandboxProvider,
  buildTaskImage,
  dockerClient,
  reapContainers,
} from '../../../sandboxes/docker/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from './helpers.ts';

const runId = testRunId('images');
const docker = dockerClient();
const builtImages = new Set<string>();
const dirs: string[] = [];
/** Image names that no machine has: a registry that cannot resolve. */
const MISSING = `registry.invalid/paddock-test/missing:${randomBytes(3).toString('hex')}`;

/** A fresh build context; a random marker makes its hash (and so its first build) new. */
async function context(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'paddock-build-test-'));
  dirs.push(dir);
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, 'marker.txt'), randomBytes(8).toString('hex'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

beforeAll(async () => {
  await ensureBaseImage();
});

afterAll(async () => {
  await reapContainers({ runId });
  for (const image of builtImages)
    await docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => undefined);
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('task images', () => {
  it('refuses a missing, unmapped image with IMAGE_NOT_FOUND naming it and the --image-map option', async () => {
    const provider = new DockerSandboxProvider({ imageMap: {} });
    const failure = provider.start(baseSpec({ image: MISSING }), { labels: { runId, episodeId: 'missing' } });
    await expect(failure).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND', details: { image: MISSING } });
    await expect(failure).rejects.toThrow(/--image-map/);
    await expect(failure).rejects.toThrow(MISSING);
    await expect(provider.prepare(baseSpec({ image: MISSING }))).rejects.toThrow(/PADDOCK_IMAGE_MAP/);
  });

  it('runs a mapped local image in place of a missing one', async () => {
    const provider = new DockerSandboxProvider({ imageMap: { [MISSING]: BASE_IMAGE } });
    const sandbox = await provider.start(baseSpec({ image: MISSING }), {
      labels: { runId, episodeId: 'mapped' },
    });
    try {
      expect((await sandbox.exec('cut -d. -f1 /etc/debian_version')).stdout).toBe('12\n');
    } finally {
      await sandbox.close();
    }
  });

  it('reads the image map from PADDOCK_IMAGE_MAP', async () => {
    const saved = process.env.PADDOCK_IMAGE_MAP;
    process.env.PADDOCK_IMAGE_MAP = `python:3.12-slim=${BASE_IMAGE},${MISSING}=${BASE_IMAGE}`;
    try {
      const provider = new DockerSandboxProvider();
      await expect(provider.prepare(baseSpec({ image: MISSING }))).resolves.toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.PADDOCK_IMAGE_MAP;
      else process.env.PADDOCK_IMAGE_MAP = saved;
    }
  });

  it('names both images when the substitute is missing too', async () => {
    const provider = new DockerSandboxProvider({ imageMap: { [MISSING]: `${MISSING}-too` } });
    await expect(provider.prepare(baseSpec({ image: MISSING }))).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      message: expect.stringContaining(`${MISSING}-too`),
    });
  });

  it('builds a Dockerfile once: a second prepare of the same context reuses the image', async () => {
    const dir = await context(
      `FROM ${BASE_IMAGE}\nCOPY marker.txt /marker.txt\nRUN echo built > /built.txt\n`,
    );
    const logs: string[] = [];
    const spec = baseSpec({ image: undefined, build: { contextDir: dir, dockerfile: 'Dockerfile' } });
    await new DockerSandboxProvider({ onBuildLog: (line) => logs.push(line) }).prepare(spec);
    expect(logs.some((line) => line.includes('RUN echo built'))).toBe(true);
    logs.length = 0;
    await new DockerSandboxProvider({ onBuildLog: (line) => logs.push(line) }).prepare(spec);
    expect(logs).toEqual([]);
    const first = await buildTaskImage(docker, spec.build!, { imageMap: {} });
    builtImages.add(first.image);
    expect(first).toMatchObject({
      built: false,
      image: expect.stringMatching(/^paddock-task:[0-9a-f]{20}$/),
    });
    const sandbox = await new DockerSandboxProvider().start(spec, { labels: { runId, episodeId: 'built' } });
    try {
      expect((await sandbox.exec('cat /built.txt')).stdout).toBe('built\n');
    } finally {
      await sandbox.close();
    }
  });

  it('rebuilds when a context file changes, not when an ignored file does', async () => {
    const dir = await context(`FROM ${BASE_IMAGE}\nCOPY . /ctx\n`, {
      '.dockerignore': 'secret*\n',
      'a.txt': 'one',
    });
    const build = { contextDir: dir, dockerfile: 'Dockerfile' };
    const first = await buildTaskImage(docker, build, { imageMap: {} });
    builtImages.add(first.image);
    await writeFile(join(dir, 'secret.key'), 'ignored');
    const ignoredChange = await buildTaskImage(docker, build, { imageMap: {} });
    expect(ignoredChange).toMatchObject({ image: first.image, built: false });
    await writeFile(join(dir, 'a.txt'), 'two');
    const changed = await buildTaskImage(docker, build, { imageMap: {} });
    builtImages.add(changed.image);
    expect(changed.built).toBe(true);
    expect(changed.image).not.toBe(first.image);
    const sandbox = await new DockerSandboxProvider().start(baseSpec({ image: changed.image }), {
      labels: { runId, episodeId: 'ignored' },
    });
    try {
      expect((await sandbox.exec('ls -A /ctx | sort | tr "\\n" " "; cat /ctx/a.txt')).stdout).toBe(
        '.dockerignore Dockerfile a.txt marker.txt two',
      );
    } finally {
      await sandbox.close();
    }
  });

  it('shares one build between concurrent prepares of the same context', async () => {
    const dir = await context(`FROM ${BASE_IMAGE}\nRUN echo once\n`);
    const build = { contextDir: dir, dockerfile: 'Dockerfile' };
    const logs: string[] = [];
    const results = await Promise.all(
      [1, 2, 3].map(() => buildTaskImage(docker, build, { imageMap: {}, onLog: (line) => logs.push(line) })),
    );
    for (const result of results) builtImages.add(result.image);
    expect(new Set(results.map((result) => result.image)).size).toBe(1);
    expect(logs.filter((line) => line.includes('RUN echo once'))).toHaveLength(1);
  });

  it("rewrites a Harbor-style FROM through the image map and keeps the stage's name", async () => {
    const dir = await context(
      `FROM ${MISSING} AS base\nRUN echo stage > /stage.txt\nFROM base\nRUN cat /stage.txt\n`,
    );
    const result = await buildTaskImage(
      docker,
      { contextDir: dir, dockerfile: 'Dockerfile' },
      { imageMap: { [MISSING]: BASE_IMAGE } },
    );
    builtImages.add(result.image);
    expect(result.applied).toEqual({ [MISSING]: BASE_IMAGE });
    const sandbox = await new DockerSandboxProvider().start(baseSpec({ image: result.image }), {
      labels: { runId, episodeId: 'rewritten' },
    });
    try {
      expect((await sandbox.exec('cat /stage.txt')).stdout).toBe('stage\n');
    } finally {
      await sandbox.close();
    }
  });

  it('refuses a Dockerfile whose FROM image is missing and unmapped before building', async () => {
    const dir = await context(`FROM ${MISSING}\nRUN echo should-not-run\n`);
    const logs: string[] = [];
    const failure = buildTaskImage(
      docker,
      { contextDir: dir, dockerfile: 'Dockerfile' },
      { imageMap: {}, onLog: (line) => logs.push(line) },
    );
    await expect(failure).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND', details: { image: MISSING } });
    await expect(failure).rejects.toThrow(/--image-map/);
    expect(logs).toEqual([]);
  });

  it('reports a failing build as IMAGE_BUILD_FAILED with the end of its log', async () => {
    const dir = await context(`FROM ${BASE_IMAGE}\nRUN echo about-to-fail && exit 3\n`);
    const failure = new DockerSandboxProvider().prepare(
      baseSpec({ image: undefined, build: { contextDir: dir, dockerfile: 'Dockerfile' } }),
    );
    await expect(failure).rejects.toMatchObject({ code: 'IMAGE_BUILD_FAILED' });
    await expect(failure).rejects.toThrow(/about-to-fail[\s\S]*returned a non-zero code: 3/);
  });

  it('lets a build install Debian packages over the bridge network', async () => {
    const dir = await context(
      `FROM ${BASE_IMAGE}\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends tree >/dev/null\n`,
    );
    const result = await buildTaskImage(
      docker,
      { contextDir: dir, dockerfile: 'Dockerfile' },
      { imageMap: {} },
    );
    builtImages.add(result.image);
    const sandbox = await new DockerSandboxProvider().start(baseSpec({ image: result.image }), {
      labels: { runId, episodeId: 'apt' },
    });
    try {
      expect((await sandbox.exec('command -v tree')).stdout).toBe('/usr/bin/tree\n');
    } finally {
      await sandbox.close();
    }
  }, 300_000);
});
