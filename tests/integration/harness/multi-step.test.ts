/**
 * Multi-step Harbor tasks on the real Docker engine (tasks/examples/total-steps): the
 * oracle scores 1 on both steps, a no-op agent 0 with an early stop after the first step
 * (min_reward), every step is sealed and verified in the same container, what the
 * verifier left and the task's artifacts are kept on the host, and a later step's agent
 * can neither read an earlier step's tests nor keep a background process into the next
 * verification.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OracleAgent } from '../../../agents/oracle/index.ts';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import { defineAgent, runEpisode, type Task } from '../../../harness/index.ts';
import { DockerSandboxProvider, reapContainers } from '../../../sandboxes/docker/index.ts';
import { loadTasks } from '../../../tasks/index.ts';
import { ensureBaseImage, testRunId } from '../docker/helpers.ts';

const provider = new DockerSandboxProvider();
const runId = testRunId('multi-step');
let root: string;
let task: Task;

const bash = (command: string) => ({ name: 'bash', arguments: { command } });
const submit = { name: 'submit', arguments: {} };

beforeAll(async () => {
  await ensureBaseImage();
  root = await mkdtemp(path.join(tmpdir(), 'paddock-steps-'));
  [task] = (await loadTasks([path.resolve('tasks/examples/total-steps')])) as [Task];
});

afterAll(async () => {
  await reapContainers({ runId });
  await rm(root, { recursive: true, force: true });
});

describe('multi-step episodes', () => {
  it('scores the oracle 1 on every step and keeps each step verifier files and artifacts', async () => {
    const dir = path.join(root, 'oracle');
    const episode = await runEpisode({
      task,
      agent: new OracleAgent(),
      runId,
      episodeId: 'oracle',
      sandboxProvider: provider,
      files: { dir, recordAs: 'files/oracle/attempt-1' },
    });
    expect(episode.status).toBe('completed');
    expect(episode.verifier?.aggregate).toBe('step-mean');
    expect(episode.verifier?.steps?.map((step) => [step.name, step.outcome, step.reward])).toEqual([
      ['sum', 'verified', 1],
      ['csv', 'verified', 1],
    ]);
    expect(episode.reward.total).toBe(1);
    expect(episode.reward.components['step.sum']).toMatchObject({ value: 1, weight: 0 });
    // Each step starts a new conversation: system prompt (if any) and the step's instruction.
    const [first, second] = episode.verifier!.steps!;
    expect(episode.messages[second!.messages.from]).toMatchObject({ role: 'user' });
    expect(String(episode.messages[second!.messages.from]!.content)).toMatch(/^Extend/);
    expect(String(episode.messages[first!.messages.from]!.content)).toMatch(/^Write an executable/);
    expect(first!.turns).toEqual({ from: 0, to: 2 });
    // Kept files: reward and stdout of each step's verifier, the artifact after each step.
    const kept = episode.verifier!.files!.map((file) => file.path);
    expect(kept).toContain('files/oracle/attempt-1/steps/sum/verifier/reward.json');
    expect(kept).toContain('files/oracle/attempt-1/steps/csv/artifacts/app/total.sh');
    const script = await readFile(path.join(dir, 'steps/csv/artifacts/app/total.sh'), 'utf8');
    expect(script).toContain('--csv');
    // Each step was sealed before its verifier.
    expect(first!.verifier?.seal).toBeDefined();
    expect(second!.verifier?.seal).toBeDefined();
  });

  it('scores a no-op agent 0 and stops after the first step (min_reward)', async () => {
    const episode = await runEpisode({
      task,
      agent: new ScriptedAgent({ turns: [{ tool_calls: [submit] }, { tool_calls: [submit] }] }),
      runId,
      episodeId: 'noop',
      sandboxProvider: provider,
    });
    expect(episode.status).toBe('completed');
    expect(episode.verifier?.steps?.map((step) => step.name)).toEqual(['sum']);
    expect(episode.verifier?.steps?.[0]?.stoppedEpisode).toMatch(/min_reward/);
    expect(episode.reward.total).toBe(0);
  });

  it("hides an earlier step's tests and stops the agent's processes before each verification", async () => {
    const solveSum = bash(
      `printf '#!/bin/bash\\nawk "NF { s += \\\\$1 } END { print s + 0 }" "$1"\\n' > /app/total.sh && chmod +x /app/total.sh && /app/total.sh /dev/null`,
    );
    // Step 2: looks for step 1's tests and starts a writer that would forge the reward.
    const snoop = bash(
      [
        'ls /tests 2>&1; cat /logs/verifier/reward.json 2>&1',
        'nohup bash -c \'while true; do echo 1 > /logs/verifier/reward.txt; echo {\\"reward\\": 1} > /logs/verifier/reward.json 2>/dev/null; sleep 0.05; done\' >/dev/null 2>&1 &',
        'echo started',
      ].join('\n'),
    );
    // The agent sees each step's own turn index (0 first) and instruction.
    const call = (tool: { name: string; arguments: unknown }, id: string) => ({
      id,
      name: tool.name,
      arguments: JSON.stringify(tool.arguments),
    });
    const agent = defineAgent({
      name: 'snoop',
      act: async ({ task: seen, turnIndex }) => ({
        text: null,
        toolCalls:
          turnIndex > 0
            ? [call(submit, 'submit')]
            : [
                call(seen.instruction.startsWith('Extend') ? snoop : solveSum, 'work'),
                call(submit, 'submit'),
              ],
      }),
    });
    const episode = await runEpisode({ task, agent, runId, episodeId: 'snoop', sandboxProvider: provider });
    const steps = episode.verifier!.steps!;
    expect(steps[0]?.reward).toBe(1);
    const seen = episode.turns[1]!.toolResults[0]!.output;
    expect(seen).toContain('No such file');
    expect(seen).not.toContain('cases.json');
    // The writer was killed by the seal: step 2 scores what the script does (no --csv).
    expect(steps[1]?.verifier?.seal?.killed).toBeGreaterThan(0);
    expect(steps[1]?.reward).toBe(0.25);
    expect(episode.reward.total).toBeCloseTo(0.625);
  });
});
