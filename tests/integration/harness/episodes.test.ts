/**
 * Whole episodes on the real Docker engine: the reward channel resists an agent that
 * cheats, and a task's fork bomb or memory hog is contained while paddock carries on.
 */
import { describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { runEpisode, runEpisodes, type Task } from '../../../harness/index.ts';
import { DockerSandboxProvider } from '../../../sandboxes/docker/index.ts';
import { loadTasks } from '../../../tasks/index.ts';

const provider = new DockerSandboxProvider();
const [alpha] = (await loadTasks(['tests/fixtures/suites/tiny/alpha'])) as [Task];

function bash(command: string, timeoutSec?: number) {
  return {
    name: 'bash',
    arguments: timeoutSec === undefined ? { command } : { command, timeout_sec: timeoutSec },
  };
}
const submit = { name: 'submit', arguments: {} };

describe('episodes in Docker', () => {
  it('scores 1 with the oracle and 0 when the agent does nothing', async () => {
    const solved = await runEpisode({
      task: alpha,
      agent: new OracleAgent(),
      runId: 'it-harness',
      episodeId: 'oracle',
      sandboxProvider: provider,
    });
    expect(solved.status).toBe('completed');
    expect(solved.reward.total).toBe(1);
    const idle = await runEpisode({
      task: alpha,
      agent: new ScriptedAgent({ turns: [{ tool_calls: [submit] }] }),
      runId: 'it-harness',
      episodeId: 'idle',
      sandboxProvider: provider,
    });
    expect(idle.reward.total).toBe(0);
  });

  it('ignores a fake reward file, fake tests and a background process rewriting the reward', async () => {
    const cheater = new ScriptedAgent({
      turns: [
        {
          tool_calls: [
            bash(
              'mkdir -p /logs/verifier /tests && echo 1 > /logs/verifier/reward.txt && echo \'{"reward": 1}\' > /logs/verifier/reward.json',
            ),
            bash(
              'printf "#!/bin/bash\\nmkdir -p /logs/verifier; echo 1 > /logs/verifier/reward.txt\\n" > /tests/test.sh && chmod +x /tests/test.sh',
            ),
            bash(
              'nohup sh -c "while :; do mkdir -p /logs/verifier; echo 1 > /logs/verifier/reward.txt; done" >/dev/null 2>&1 &',
            ),
            bash('sleep 0.3; pgrep -f "while :; do mkdir" >/dev/null && echo writer-alive'),
          ],
        },
        { tool_calls: [submit] },
      ],
    });
    const episode = await runEpisode({
      task: alpha,
      agent: cheater,
      runId: 'it-harness',
      episodeId: 'cheat',
      sandboxProvider: provider,
    });
    expect(episode.turns[0]!.toolResults[3]!.output).toContain('writer-alive');
    expect(episode.status).toBe('completed');
    expect(episode.verifier?.reward).toBe(0);
    expect(episode.reward.total).toBe(0);
  });

  it('contains a fork bomb and a memory hog, records the episode, and carries on', async () => {
    const hostile = new ScriptedAgent({
      turns: [
        { tool_calls: [bash(':(){ :|:& };:', 5)] },
        { tool_calls: [bash('python3 -c "x = bytearray(2 * 1024**3); print(len(x))"', 30)] },
        { tool_calls: [bash('echo alpha > /app/out.txt && cat /app/out.txt'), submit] },
      ],
    });
    const [episode] = await runEpisodes({
      runId: 'it-harness-hostile',
      tasks: [alpha],
      agent: hostile,
      sandboxProvider: provider,
      maxAttempts: 1,
    });
    expect(episode!.status).toBe('completed');
    const [bomb, hog, last] = episode!.turns;
    expect(bomb!.toolResults).toHaveLength(1);
    expect(hog!.toolResults[0]!.output).not.toContain(String(2 * 1024 ** 3));
    expect(hog!.toolResults[0]!.isError).toBe(true);
    expect(last!.toolResults[0]!.output).toContain('alpha');
    expect(episode!.reward.total).toBe(1);
    const after = await runEpisode({
      task: alpha,
      agent: new OracleAgent(),
      runId: 'it-harness-hostile',
      episodeId: 'after',
      sandboxProvider: provider,
    });
    expect(after.reward.total).toBe(1);
  });
});
