/**
 * Deadlines hold under forced garbage collection. On Node 20, a signal joined with a
 * timeout signal (AbortSignal's static `any` and `timeout`) loses the timeout after a
 * collection (nodejs/node#57736); `startDeadline` owns its timer, so a collection cannot
 * lose it. Each test collects garbage every few milliseconds while the deadline runs and
 * asserts that it fires within 1 s of its limit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MAX_TIMER_MS,
  assertTimerMs,
  isPaddockError,
  runEpisode,
  startDeadline,
  withDeadline,
  type Agent,
  type AgentSession,
  type AssistantTurn,
} from '../../../harness/index.ts';
import { fakeTask } from '../../fakes/model-servers/tasks.ts';

/** Collects garbage every `everyMs` until stopped (the flag is set at run time, as `--expose-gc` would). */
function forceGc(everyMs = 5): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const timer = setInterval(gc, everyMs);
  return () => clearInterval(timer);
}

let stopGc: (() => void) | undefined;
afterEach(() => {
  stopGc?.();
  stopGc = undefined;
});

/** Milliseconds from now until `signal` aborts. */
function abortedAfter(signal: AbortSignal): Promise<number> {
  const started = performance.now();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(performance.now() - started), { once: true }),
  );
}

describe('startDeadline', () => {
  it('fires within 1 s of its limit while garbage is collected all the time, joined with a parent', async () => {
    stopGc = forceGc();
    const parent = new AbortController();
    // Only the joined signal is kept: the shape that loses its timeout on Node 20.
    const { signal } = startDeadline(1_500, parent.signal);
    const lateness = (await abortedAfter(signal)) - 1_500;
    expect(lateness).toBeGreaterThanOrEqual(-5);
    expect(lateness).toBeLessThan(1_000);
    expect((signal.reason as DOMException).name).toBe('TimeoutError');
  });

  it('aborts with the parent’s reason when the parent aborts first, and says it did not expire', () => {
    const parent = new AbortController();
    const deadline = startDeadline(60_000, parent.signal);
    parent.abort(new Error('stop'));
    expect(deadline.signal.aborted).toBe(true);
    expect((deadline.signal.reason as Error).message).toBe('stop');
    expect(deadline.expired).toBe(false);
  });

  it('starts aborted under a parent that is already aborted', () => {
    const parent = new AbortController();
    parent.abort(new Error('already'));
    expect(startDeadline(1_000, parent.signal).signal.aborted).toBe(true);
  });

  it('never fires once cleared', async () => {
    const deadline = startDeadline(20);
    deadline.clear();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(deadline.signal.aborted).toBe(false);
  });

  it('has no timer of its own for Infinity, only the parent', () => {
    const parent = new AbortController();
    const deadline = startDeadline(Infinity, parent.signal);
    parent.abort();
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.expired).toBe(false);
  });

  it('withDeadline clears its timer when the work settles', async () => {
    let seen: AbortSignal | undefined;
    await withDeadline(50, undefined, async (signal) => {
      seen = signal;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen?.aborted).toBe(false);
  });

  it.each([-1, Number.NaN, MAX_TIMER_MS + 1, 2_147_483_648_000])('refuses %d ms as a limit', (ms) => {
    let error: unknown;
    try {
      assertTimerMs(ms, 'limits.timeout');
    } catch (caught) {
      error = caught;
    }
    expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
    expect(String((error as Error).message)).toContain('limits.timeout');
    expect(() => startDeadline(ms)).toThrow(/not a usable time limit/);
  });

  it('accepts 0, MAX_TIMER_MS and Infinity', () => {
    for (const ms of [0, MAX_TIMER_MS, Infinity]) expect(() => assertTimerMs(ms, 'x')).not.toThrow();
  });
});

/** An agent whose every call waits until the loop aborts it (a model that never answers). */
class WaitingAgent implements Agent {
  readonly name = 'waiting';
  calls = 0;
  open(): AgentSession {
    return { act: (_input, options) => this.wait(options) };
  }
  private wait(options: { signal: AbortSignal }): Promise<AssistantTurn> {
    this.calls++;
    return new Promise((_resolve, reject) => {
      options.signal.addEventListener('abort', () => reject(options.signal.reason as Error), { once: true });
    });
  }
}

describe('the episode’s wall-time limit', () => {
  it('ends an episode as limit: time within 1 s of timeoutMs while garbage is collected all the time', async () => {
    stopGc = forceGc();
    const agent = new WaitingAgent();
    const started = performance.now();
    const episode = await runEpisode({
      task: fakeTask('gc/wall-time', { timeoutMs: 3_000 }),
      agent,
      runId: 'run-gc',
      episodeId: 'gc/wall-time#0',
      seed: 0,
    });
    const lateness = performance.now() - started - 3_000;
    expect(episode.status).toBe('limit');
    expect(episode.limit).toBe('time');
    expect(agent.calls).toBe(1);
    expect(lateness).toBeGreaterThanOrEqual(-5);
    expect(lateness).toBeLessThan(1_000);
    console.log(`episode wall time 3000 ms under forced GC: ended ${Math.round(lateness)} ms late`);
  });
});

describe('the sources', () => {
  it("never call AbortSignal's static any or timeout (comments may name them)", () => {
    const root = join(import.meta.dirname, '../../..');
    const call = new RegExp(['AbortSignal', '\\.(any|timeout)\\s*\\('].join(''));
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')
          ? []
          : entry.isDirectory()
            ? files(join(dir, entry.name))
            : /\.(ts|mts|js|mjs)$/.test(entry.name)
              ? [join(dir, entry.name)]
              : [],
      );
    const offending = [
      'harness',
      'tasks',
      'agents',
      'sandboxes',
      'rewards',
      'export',
      'trainers',
      'testing',
      'cli',
      'bin',
    ]
      .flatMap((folder) => files(join(root, folder)))
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line) && call.test(line))
          .map((line) => `${relative(root, file)}: ${line.trim()}`),
      );
    expect(offending).toEqual([]);
  });
});
