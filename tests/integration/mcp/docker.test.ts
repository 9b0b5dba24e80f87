/**
 * MCP servers inside Docker containers: `spawnInContainer` (stdio of a process in a
 * container, kill of its whole tree) and the example task that mixes the container's
 * bash with a filesystem server running inside it. Skipped when no engine or no base
 * image is at hand.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { runEpisode, type Sandbox } from '../../../harness/index.ts';
import {
  BASE_IMAGE,
  DockerSandboxProvider,
  baseImageExists,
  checkEngine,
} from '../../../sandboxes/docker/index.ts';
import { spawnInContainer } from '../../../sandboxes/docker/spawn.ts';
import { McpToolProvider, mcpTaskExtension } from '../../../sandboxes/mcp/index.ts';
import { loadTasks } from '../../../tasks/index.ts';
import { REPO } from './helpers.ts';

const available = await checkEngine({ timeoutMs: 3_000 })
  .then(() => baseImageExists())
  .catch(() => false);

const sandboxProvider = new DockerSandboxProvider();
const sandboxes: Sandbox[] = [];
afterAll(async () => {
  await Promise.all(sandboxes.map((sandbox) => sandbox.close()));
});

async function container(): Promise<Sandbox> {
  const sandbox = await sandboxProvider.start(
    { image: BASE_IMAGE, cpus: 1, memoryMb: 512, pids: 128, network: false, env: {}, files: [] },
    { labels: { runId: 'mcp-docker-test', episodeId: `spawn-${sandboxes.length}` } },
  );
  sandboxes.push(sandbox);
  return sandbox;
}

function collect(stream: NodeJS.ReadableStream): () => string {
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return () => text;
}

describe.skipIf(!available)('spawnInContainer', () => {
  it('pipes stdin to the process and its stdout and stderr back, and reports the exit code', async () => {
    const sandbox = await container();
    const child = await spawnInContainer(sandbox.id, 'cat; echo bye >&2; exit 3');
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    child.stdin.write('line one\n');
    await expect.poll(stdout).toBe('line one\n');
    child.stdin.end();
    expect(await child.exited).toBe(3);
    expect(stderr()).toBe('bye\n');
    // A process that ended by itself leaves no pid file behind.
    expect((await sandbox.exec('ls -a /tmp | grep -c paddock-spawn || true')).stdout.trim()).toBe('0');
  });

  it('kills the whole process tree, even one that ignores SIGTERM', async () => {
    const sandbox = await container();
    const child = await spawnInContainer(sandbox.id, 'trap "" TERM; sleep 600 & sleep 600; wait');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await child.kill();
    expect(await child.exited).toBe(137);
    // Zombies (state Z) are dead; what the container's init has not reaped yet does not count.
    const left = await sandbox.exec(
      'ps -eo pid=,stat=,args= | grep -v "^ *[0-9]* Z" | grep " sleep 600" | grep -vc grep || true',
    );
    expect(left.stdout.trim()).toBe('0');
  });
});

describe.skipIf(!available)('tasks/mcp/docker-fs-bash', () => {
  it(
    'scores 1 with the oracle: bash in the container and a filesystem server inside it',
    { timeout: 600_000 },
    async () => {
      const [task] = await loadTasks(path.join(REPO, 'tasks/mcp/docker-fs-bash'), {
        extensions: { mcp_servers: mcpTaskExtension },
      });
      const toolProvider = new McpToolProvider();
      try {
        const episode = await runEpisode({
          task: task!,
          agent: new OracleAgent(),
          runId: 'mcp-docker-test',
          episodeId: 'docker-fs-bash',
          sandboxProvider,
          toolProviders: [toolProvider],
        });
        expect(episode.error).toBeUndefined();
        expect(episode.turns.map((turn) => turn.toolResults[0]?.name)).toEqual([
          'bash',
          'fs__create_directory',
          'fs__write_file',
          'submit',
        ]);
        expect(episode.turns[0]?.toolResults[0]?.output).toContain('195');
        expect(episode.reward.total).toBe(1);
      } finally {
        await toolProvider.close();
      }
    },
  );
});
