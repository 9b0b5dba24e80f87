/**
 * The ONNX policy agent on a tiny random policy (fixtures/tiny-policy, exported by the
 * torch worker): token-exact recording, the KV cache, seeding, policy swaps.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PaddockChatTemplate,
  OnnxPolicyAgent,
  createOnnxAgent,
  loadOnnxPolicy,
  type OnnxPolicy,
} from '../../../agents/onnx/index.ts';
import type { Message, Task, ToolSpec } from '../../../harness/index.ts';
import { actOnce, openFor, type TurnInput } from '../../fakes/agent-session.ts';
import { checkTokenDrift } from '../../../trainers/rl/index.ts';
import { episode, turn } from './helpers.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'tiny-policy');
const task = { id: 'toy@1' } as Task;
const tools: ToolSpec[] = [
  { name: 'lookup', description: 'Look up.', inputSchema: { type: 'object', properties: {} } },
];
const signal = new AbortController().signal;

let policy: OnnxPolicy;
beforeAll(async () => {
  policy = await loadOnnxPolicy(DIR);
});
afterAll(async () => {
  await policy.close();
});

function input(messages: Message[], turnIndex: number, seed = 5): TurnInput {
  return { task, episodeId: `e${seed}`, messages, tools, turnIndex, seed };
}

/** Plays `turns` turns, answering every reply with a tool message (or a user message). */
async function play(agent: OnnxPolicyAgent, turns: number, seed = 5) {
  const messages: Message[] = [{ role: 'user', content: 'Look up the key.' }];
  const replies = [];
  const session = await openFor(agent, input(messages, 0, seed));
  for (let t = 0; t < turns; t++) {
    const { episodeId: _e, seed: _s, ...turn } = input(messages, t, seed);
    const reply = await session.act(turn, { signal });
    replies.push(reply);
    messages.push({
      role: 'assistant',
      content: reply.text,
      ...(reply.toolCalls.length ? { toolCalls: reply.toolCalls } : {}),
    });
    messages.push({ role: 'user', content: `observation ${t}` });
  }
  return { replies, messages };
}

describe('OnnxPolicyAgent', () => {
  it('records prompts that extend the previous prompt and completion exactly', async () => {
    const agent = new OnnxPolicyAgent(policy, { maxNewTokens: 6 });
    const { replies } = await play(agent, 3);
    for (let t = 1; t < replies.length; t++) {
      const before = replies[t - 1]!.tokens!;
      const now = replies[t]!.tokens!;
      expect(now.promptIds.slice(0, before.promptIds.length + before.completionIds.length)).toEqual([
        ...before.promptIds,
        ...before.completionIds,
      ]);
    }
    for (const reply of replies) {
      expect(reply.tokens!.completionLogprobs).toHaveLength(reply.tokens!.completionIds.length);
      expect(reply.usage).toEqual({
        promptTokens: reply.tokens!.promptIds.length,
        completionTokens: reply.tokens!.completionIds.length,
      });
    }
  });

  it('samples the same turns from the same seed, and other turns from another', async () => {
    const a = await play(new OnnxPolicyAgent(policy, { maxNewTokens: 8 }), 2, 11);
    const b = await play(new OnnxPolicyAgent(policy, { maxNewTokens: 8 }), 2, 11);
    const c = await play(new OnnxPolicyAgent(policy, { maxNewTokens: 8 }), 2, 12);
    expect(b.replies.map((r) => r.tokens)).toEqual(a.replies.map((r) => r.tokens));
    expect(c.replies.map((r) => r.tokens!.completionIds)).not.toEqual(
      a.replies.map((r) => r.tokens!.completionIds),
    );
  });

  it('records the logprobs a full forward pass gives (the KV cache changes nothing)', async () => {
    const { replies } = await play(new OnnxPolicyAgent(policy, { maxNewTokens: 8 }), 2);
    const last = replies[replies.length - 1]!.tokens!;
    const full = await policy.sequenceLogprobs([...last.promptIds, ...last.completionIds]);
    let maxDiff = 0;
    for (const reply of replies) {
      const { promptIds, completionLogprobs } = reply.tokens!;
      completionLogprobs.forEach((logprob, k) => {
        maxDiff = Math.max(maxDiff, Math.abs(logprob - full[promptIds.length + k - 1]!));
      });
    }
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('renders the first prompt with the chat template and passes the drift check', async () => {
    const agent = new OnnxPolicyAgent(policy, { maxNewTokens: 6 });
    const { replies, messages } = await play(agent, 2);
    const template = new PaddockChatTemplate(policy.tokenizer);
    expect(replies[0]!.tokens!.promptIds).toEqual([
      ...template.renderConversation([messages[0]!], tools),
      template.assistantHeader,
    ]);
    const record = episode(
      'e',
      replies.map((reply, index) =>
        turn(index, reply.tokens, { text: reply.text, toolCalls: reply.toolCalls }),
      ),
      0,
    );
    record.messages = messages.slice(0, -1);
    expect(checkTokenDrift(record, tools, template)).toEqual([]);
    // A tampered prompt is caught.
    record.turns[1]!.tokens = {
      ...record.turns[1]!.tokens!,
      promptIds: [...record.turns[1]!.tokens!.promptIds, 0],
    };
    expect(checkTokenDrift(record, tools, template).map((drift) => drift.what)).toContain('prompt');
  });

  it('keeps an episode token-exact across a policy swap', async () => {
    const other = await loadOnnxPolicy(DIR);
    const agent = new OnnxPolicyAgent(policy, { maxNewTokens: 6 });
    const messages: Message[] = [{ role: 'user', content: 'Look up the key.' }];
    const session = await openFor(agent, input(messages, 0));
    const first = await session.act({ task, messages, tools, turnIndex: 0 }, { signal });
    messages.push({ role: 'assistant', content: first.text }, { role: 'user', content: 'more' });
    agent.setPolicy(other);
    const second = await session.act({ task, messages, tools, turnIndex: 1 }, { signal });
    expect(
      second.tokens!.promptIds.slice(0, first.tokens!.promptIds.length + first.tokens!.completionIds.length),
    ).toEqual([...first.tokens!.promptIds, ...first.tokens!.completionIds]);
    agent.setPolicy(policy);
    await other.close();
  });

  it('stops at the context length with a length finish', async () => {
    const agent = new OnnxPolicyAgent(policy, { maxNewTokens: 500 });
    const reply = await actOnce(agent, input([{ role: 'user', content: 'x'.repeat(10) }], 0), { signal });
    expect(reply.tokens!.promptIds.length + reply.tokens!.completionIds.length).toBeLessThanOrEqual(
      policy.maxLen,
    );
    const long = await actOnce(agent, input([{ role: 'user', content: 'y'.repeat(2000) }], 0), { signal });
    expect(long).toMatchObject({ text: null, toolCalls: [], finishReason: 'length' });
    expect(long.tokens!.completionIds).toEqual([]);
  });

  it('rejects with ABORTED when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort();
    const agent = new OnnxPolicyAgent(policy, { maxNewTokens: 4 });
    await expect(
      actOnce(agent, input([{ role: 'user', content: 'hi' }], 0), { signal: controller.signal }),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });

  it('is made from an onnx: spec and closes its own policy', async () => {
    const agent = await createOnnxAgent(`onnx:${DIR}?temperature=0`);
    expect(agent.name).toBe(`onnx:${DIR}?temperature=0`);
    expect(agent.sampling.temperature).toBe(0);
    await agent.close();
    await expect(agent.policy.extend(agent.policy.newState(), [1])).rejects.toMatchObject({
      code: 'MODEL_CALL_FAILED',
    });
  });

  it('decodes alone, with the same turns, when batching is asked of a graph without attention_mask', async () => {
    const batched = await loadOnnxPolicy(DIR, { batchDecode: true });
    try {
      expect(batched.canBatch).toBe(false);
      expect(batched.batchDecode).toBe(false);
      const seeds = [5, 6, 7];
      const plays = (p: OnnxPolicy) =>
        Promise.all(seeds.map((seed) => play(new OnnxPolicyAgent(p, { maxNewTokens: 6 }), 2, seed)));
      const [together, alone] = [await plays(batched), await plays(policy)];
      expect(together.map((r) => r.replies.map((reply) => reply.tokens))).toEqual(
        alone.map((r) => r.replies.map((reply) => reply.tokens)),
      );
      expect(batched.batchStats.calls).toBe(0);
    } finally {
      await batched.close();
    }
  });

  it('refuses a policy folder without a valid config', async () => {
    await expect(loadOnnxPolicy(join(import.meta.dirname, 'fixtures'))).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});
