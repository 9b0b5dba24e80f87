/**
 * The example suite tasks/mcp: every task's reference solution, played by the oracle
 * through the real loop against the real servers, scores 1. (The task with a Docker
 * sandbox runs in docker.test.ts.)
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { runEpisodes, type EpisodeRecord, type Task } from '../../../harness/index.ts';
import { McpToolProvider, mcpTaskExtension } from '../../../sandboxes/mcp/index.ts';
import { loadTasks } from '../../../tasks/index.ts';
import { REPO } from './helpers.ts';

const SUITE = path.join(REPO, 'tasks/mcp');
const provider = new McpToolProvider();
afterAll(() => provider.close());

describe('tasks/mcp with the oracle', async () => {
  const tasks = await loadTasks(SUITE, { extensions: { mcp_servers: mcpTaskExtension } });
  const hostOnly = tasks.filter((task) => !task.environment);
  let episodes: Promise<EpisodeRecord[]> | undefined;
  const run = (): Promise<EpisodeRecord[]> =>
    (episodes ??= runEpisodes({
      runId: 'mcp-suite',
      tasks: hostOnly,
      agent: new OracleAgent(),
      toolProviders: [provider],
      concurrency: 2,
      maxAttempts: 1,
    }));

  it('has at least five tasks without a sandbox, and one with', () => {
    expect(hostOnly.length).toBeGreaterThanOrEqual(5);
    expect(tasks.some((task) => task.environment)).toBe(true);
  });

  it.each(hostOnly.map((task): [string, Task] => [task.id, task]))('%s scores 1', async (id) => {
    const episode = (await run()).find((candidate) => candidate.taskId === id);
    expect(episode?.error).toBeUndefined();
    expect(episode?.status).toBe('completed');
    expect(episode?.stats.toolProblems).toEqual({
      'unknown-tool': 0,
      'invalid-json': 0,
      'invalid-arguments': 0,
      'tool-error': 0,
    });
    expect(episode?.reward.total).toBe(1);
  });
});
