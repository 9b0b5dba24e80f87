/**
 * The engine connection (one clear message when it is down) and the reaper of
 * labelled containers, on the real engine.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_IMAGE,
  DockerSandboxProvider,
  checkEngine,
  dockerClient,
  reapContainers,
} from '../../../sandboxes/docker/index.ts';
import { baseSpec, ensureBaseImage, testRunId } from './helpers.ts';

const savedHost = process.env.DOCKER_HOST;
const runA = testRunId('reap-a');
const runB = testRunId('reap-b');
const strays: string[] = [];

function restoreDockerHost(): void {
  if (savedHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedHost;
}

beforeAll(async () => {
  await ensureBaseImage();
});

afterAll(async () => {
  restoreDockerHost();
  await reapContainers({ runId: runA });
  await reapContainers({ runId: runB });
  for (const id of strays)
    await dockerClient()
      .getContainer(id)
      .remove({ force: true })
      .catch(() => undefined);
});

describe('engine connection', () => {
  afterEach(restoreDockerHost);

  it('reports the version of the running engine', async () => {
    const info = await checkEngine();
    expect(info.version).toMatch(/^\d+\.\d+/);
    expect(info.apiVersion).toMatch(/^1\.\d+$/);
  });

  it('says in one message how to start the engine when DOCKER_HOST names a missing socket', async () => {
    process.env.DOCKER_HOST = 'unix:///nonexistent.sock';
    const failure = checkEngine();
    await expect(failure).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: false });
    await expect(failure).rejects.toThrow(/nonexistent\.sock.*bash scripts\/setup\.sh.*sudo dockerd/);
  });

  it('fails a sandbox start with ENGINE_UNAVAILABLE when the engine does not answer', async () => {
    process.env.DOCKER_HOST = 'unix:///nonexistent.sock';
    const provider = new DockerSandboxProvider();
    await expect(
      provider.start(baseSpec(), { labels: { runId: runA, episodeId: 'no-engine' } }),
    ).rejects.toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
      message: expect.stringContaining('scripts/setup.sh'),
    });
  });

  it('says the engine is down for a tcp:// DOCKER_HOST that refuses connections', async () => {
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:1';
    await expect(checkEngine({ timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
  });
});

describe('reapContainers', () => {
  it("removes the labelled containers of the given run, and only that run's", async () => {
    const provider = new DockerSandboxProvider();
    const a1 = await provider.start(baseSpec(), { labels: { runId: runA, episodeId: 'a1' } });
    const a2 = await provider.start(baseSpec(), { labels: { runId: runA, episodeId: 'a2' } });
    const b1 = await provider.start(baseSpec(), { labels: { runId: runB, episodeId: 'b1' } });
    // Same run label but not paddock-managed: not the reaper's to remove.
    const foreign = await dockerClient().createContainer({
      Image: BASE_IMAGE,
      Cmd: ['true'],
      Labels: { 'paddock.run': runA },
    });
    strays.push(foreign.id);

    expect(await reapContainers({ runId: runA })).toBe(2);
    for (const gone of [a1, a2]) {
      await expect(dockerClient().getContainer(gone.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
      await expect(gone.exec('true')).rejects.toMatchObject({ code: 'SANDBOX_FAILED' });
    }
    expect((await dockerClient().getContainer(b1.id).inspect()).State.Running).toBe(true);
    expect((await foreign.inspect()).Id).toBe(foreign.id);
    expect((await b1.exec('echo still running')).stdout).toBe('still running\n');

    expect(await reapContainers({ runId: runB })).toBe(1);
    await Promise.all([a1.close(), a2.close(), b1.close()]);
  });

  it('spares containers younger than olderThanMs', async () => {
    const provider = new DockerSandboxProvider();
    const young = await provider.start(baseSpec(), { labels: { runId: runB, episodeId: 'young' } });
    expect(await reapContainers({ runId: runB, olderThanMs: 3_600_000 })).toBe(0);
    const twoHoursLater = () => Date.now() + 2 * 3_600_000;
    expect(await reapContainers({ runId: runB, olderThanMs: 3_600_000, now: twoHoursLater })).toBe(1);
    await young.close();
  });
});
