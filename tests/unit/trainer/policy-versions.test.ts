/**
 * The policy gate: a swap waits for the turns in flight, no turn starts during it, every
 * turn records the version it ran under, `reached` waits for a version (and aborts).
 */
import { describe, expect, it } from 'vitest';
import { defineAgent, type AssistantTurn, type Task } from '../../../harness/index.ts';
import { PolicyGate, versionedAgent } from '../../../trainers/rl/index.ts';
import { actOnce } from '../../fakes/agent-session.ts';

const task = { id: 't@1' } as Task;
const tokens = { promptIds: [1], completionIds: [2], completionLogprobs: [-0.1] };

/** A turn that waits for `release` before it ends. */
function pending(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}

describe('PolicyGate', () => {
  it('lets a swap install only when the turns in flight have ended, and holds new turns until it has', async () => {
    const gate = new PolicyGate(3);
    const events: string[] = [];
    const first = pending();
    const turn = gate.run(async (version) => {
      events.push(`turn under ${version} starts`);
      await first.promise;
      events.push(`turn under ${version} ends`);
    });
    const swap = gate.swap(4, async () => {
      events.push('install 4');
    });
    const later = gate.run(async (version) => {
      events.push(`later turn under ${version}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events).toEqual(['turn under 3 starts']);
    first.release();
    await Promise.all([turn, swap, later]);
    expect(events).toEqual(['turn under 3 starts', 'turn under 3 ends', 'install 4', 'later turn under 4']);
    expect(gate.version).toBe(4);
  });

  it('keeps the old version when the install fails', async () => {
    const gate = new PolicyGate(1);
    await expect(
      gate.swap(2, async () => {
        throw new Error('the server refused the weights');
      }),
    ).rejects.toThrow('refused');
    expect(gate.version).toBe(1);
    expect(await gate.run(async (version) => version)).toBe(1);
  });

  it('reached resolves once the version is installed, and rejects on abort', async () => {
    const gate = new PolicyGate(0);
    await gate.reached(0);
    let done = false;
    const waiting = gate.reached(2).then(() => (done = true));
    await gate.swap(1, async () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(done).toBe(false);
    await gate.swap(2, async () => undefined);
    await waiting;
    expect(done).toBe(true);

    const controller = new AbortController();
    const aborted = gate.reached(5, controller.signal);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('versionedAgent', () => {
  it('marks each token-exact turn with the version it was sampled under', async () => {
    const gate = new PolicyGate(7);
    const inner = defineAgent({
      name: 'fake',
      act: async (): Promise<AssistantTurn> => ({ text: 'hi', toolCalls: [], tokens }),
    });
    const agent = versionedAgent(inner, gate);
    expect(agent.name).toBe('fake');
    const input = { task, episodeId: 'e', messages: [], tools: [], turnIndex: 0, seed: 1 };
    expect((await actOnce(agent, input)).tokens?.policyVersion).toBe(7);
    await gate.swap(8, async () => undefined);
    expect((await actOnce(agent, input)).tokens?.policyVersion).toBe(8);
  });
});
