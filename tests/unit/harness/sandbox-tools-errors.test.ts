/**
 * The built-in file tools tell the agent's mistakes from the sandbox's faults: a missing
 * path, a folder, a file too large to read are observations; a sandbox that broke
 * (SANDBOX_FAILED, SANDBOX_CLOSED) is an exception, and through the episode loop an
 * `infra-error` that is retried, never a `completed` episode to train on.
 */
import { describe, expect, it } from 'vitest';
import { ScriptedAgent } from '../../../agents/scripted/index.ts';
import {
  PaddockError,
  runEpisode,
  runEpisodes,
  type EnvironmentSpec,
  type ReadFileOptions,
  type SandboxLabels,
  type SandboxProvider,
} from '../../../harness/index.ts';
import { editFileTool, readFileTool, writeFileTool } from '../../../harness/tools/index.ts';
import type { ToolContext } from '../../../harness/tool.ts';
import { MemorySandbox } from '../../fakes/memory-sandbox.ts';
import { makeTask } from '../../fakes/tasks.ts';

/** A memory sandbox whose file calls fail with `fault` while `faulty` is true. */
class FaultySandbox extends MemorySandbox {
  faulty = true;
  constructor(
    id: string,
    private readonly fault: () => Error,
  ) {
    super(id, (command, sandbox) => {
      // The verifier: reward 1 when the agent's answer is there.
      if (command === 'bash /tests/test.sh') {
        sandbox.files.set(
          '/logs/verifier/reward.txt',
          Buffer.from(sandbox.files.has('/app/a.txt') ? '1' : '0'),
        );
      }
      return {};
    });
  }

  override async readFile(path: string, _options?: ReadFileOptions): Promise<Uint8Array> {
    if (this.faulty && !path.startsWith('/logs/')) throw this.fault();
    return super.readFile(path);
  }

  override async writeFile(path: string, data: string | Uint8Array): Promise<void> {
    if (this.faulty) throw this.fault();
    return super.writeFile(path, data);
  }
}

/** Starts FaultySandboxes; the first `faultyStarts` of them fault, later ones work. */
class FaultyProvider implements SandboxProvider {
  readonly kind = 'faulty-memory';
  readonly started: FaultySandbox[] = [];
  constructor(
    private readonly fault: () => Error,
    private readonly faultyStarts = Infinity,
  ) {}

  async start(_spec: EnvironmentSpec, _options: { labels: SandboxLabels }): Promise<FaultySandbox> {
    const sandbox = new FaultySandbox(`faulty-${this.started.length}`, this.fault);
    sandbox.faulty = this.started.length < this.faultyStarts;
    this.started.push(sandbox);
    return sandbox;
  }
}

const engineGone = () =>
  new PaddockError('SANDBOX_FAILED', "readFile: /app/a.txt: the sandbox's container is gone", {
    retryable: true,
  });

function context(sandbox: MemorySandbox): ToolContext {
  return { signal: new AbortController().signal, sandbox, episodeId: 'e', turnIndex: 0 };
}

describe('the built-in file tools', () => {
  it('answer a missing file with an observation naming the path', async () => {
    const sandbox = new MemorySandbox('m', () => ({}));
    const output = await readFileTool.execute({ path: 'nope.txt' }, context(sandbox));
    expect(output).toMatchObject({ isError: true, text: expect.stringContaining('/app/nope.txt') });
    const edit = await editFileTool.execute(
      { path: 'nope.txt', old_text: 'a', new_text: 'b' },
      context(sandbox),
    );
    expect(edit).toMatchObject({ isError: true });
  });

  it('answer a folder, a file over the read cap and a refused write with observations', async () => {
    for (const fault of [
      new PaddockError('FILE_NOT_FOUND', 'readFile: /app is a directory, not a file', {
        details: { path: '/app', type: 'directory' },
      }),
      new PaddockError('SANDBOX_FAILED', 'readFile: /app/big is 9 MB', { details: { tooLarge: true } }),
      new PaddockError('SANDBOX_FAILED', 'writeFile: no space left on device', {
        details: { refused: true },
      }),
    ]) {
      const sandbox = new FaultySandbox('f', () => fault);
      await expect(readFileTool.execute({ path: 'x' }, context(sandbox))).resolves.toMatchObject({
        isError: true,
      });
      await expect(
        writeFileTool.execute({ path: 'x', content: 'y' }, context(sandbox)),
      ).resolves.toMatchObject({ isError: true });
    }
  });

  it('let a broken or closed sandbox reject instead of becoming an observation', async () => {
    for (const fault of [
      engineGone(),
      new PaddockError('SANDBOX_FAILED', 'the engine refused', { retryable: false }),
      new PaddockError('SANDBOX_CLOSED', 'the sandbox is closed'),
    ]) {
      const sandbox = new FaultySandbox('f', () => fault);
      await expect(readFileTool.execute({ path: 'a.txt' }, context(sandbox))).rejects.toBe(fault);
      await expect(writeFileTool.execute({ path: 'a.txt', content: 'x' }, context(sandbox))).rejects.toBe(
        fault,
      );
      await expect(
        editFileTool.execute({ path: 'a.txt', old_text: 'a', new_text: 'b' }, context(sandbox)),
      ).rejects.toBe(fault);
    }
  });
});

describe('a sandbox fault in a file tool, through the episode loop', () => {
  const readAnswer = { name: 'read_file', arguments: { path: 'a.txt' } };
  const writeAnswer = { name: 'write_file', arguments: { path: 'a.txt', content: '1' } };
  const submit = { name: 'submit', arguments: {} };

  it('ends the episode as a retryable infra-error, not completed', async () => {
    const provider = new FaultyProvider(engineGone);
    const episode = await runEpisode({
      task: makeTask(),
      agent: new ScriptedAgent({ turns: [{ tool_calls: [readAnswer] }, { tool_calls: [submit] }] }),
      runId: 'run-1',
      episodeId: 'suite/task#0',
      sandboxProvider: provider,
    });
    expect(episode.status).toBe('infra-error');
    expect(episode.error).toMatchObject({ code: 'SANDBOX_FAILED', retryable: true });
    expect(episode.reward.total).toBe(0);
    expect(provider.started[0]!.closed).toBe(1);
  });

  it('keeps the control: a missing file is an observation and the episode completes', async () => {
    const provider = new FaultyProvider(() => new PaddockError('FILE_NOT_FOUND', 'no such file'));
    const episode = await runEpisode({
      task: makeTask(),
      agent: new ScriptedAgent({ turns: [{ tool_calls: [readAnswer] }, { tool_calls: [submit] }] }),
      runId: 'run-1',
      episodeId: 'suite/task#0',
      sandboxProvider: provider,
    });
    expect(episode.status).toBe('completed');
    expect(episode.turns[0]!.toolResults[0]).toMatchObject({ isError: true, problem: 'tool-error' });
  });

  it('is retried by runEpisodes, whose next attempt completes and keeps the fault on record', async () => {
    const provider = new FaultyProvider(engineGone, 1);
    const [episode] = await runEpisodes({
      runId: 'run-1',
      tasks: [makeTask()],
      agent: new ScriptedAgent({ turns: [{ tool_calls: [writeAnswer] }, { tool_calls: [submit] }] }),
      sandboxProvider: provider,
      retryDelayMs: 0,
    });
    expect(provider.started).toHaveLength(2);
    expect(episode).toMatchObject({ status: 'completed', attempt: 2 });
    expect(episode!.previousAttempts).toEqual([expect.objectContaining({ code: 'SANDBOX_FAILED' })]);
    expect(episode!.reward.total).toBe(1);
  });
});
