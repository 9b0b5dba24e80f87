/**
 * The tokenizer and chat template of a model trained from scratch
 * (agents/onnx/scratch-tokenizer.ts): a byte-level BPE learned here, read back by the
 * Hugging Face tokenizer library (`HfTokenizer`), with ChatML and Hermes tool calls read by
 * `HfChatTemplate` as any pretrained model's template is.
 */
import { describe, expect, it } from 'vitest';
import {
  HfChatTemplate,
  HfTokenizer,
  scratchTokenizerFiles,
  trainByteLevelBpe,
} from '../../../agents/onnx/index.ts';
import type { Message, ToolSpec } from '../../../harness/index.ts';

const tools: ToolSpec[] = ['lookup', 'calc', 'submit'].map((name) => ({
  name,
  description: `The ${name} tool.`,
  inputSchema: { type: 'object', properties: {} },
}));

function demo(key: string, value: number, add: number): Message[] {
  return [
    { role: 'user', content: `Look up ${key}, add ${add} to it, then submit. The key: "${key}"` },
    {
      role: 'assistant',
      content: null,
      toolCalls: [{ id: 'a', name: 'lookup', arguments: `{"key":"${key}"}` }],
    },
    { role: 'tool', toolCallId: 'a', name: 'lookup', content: `${key} = ${value}` },
    {
      role: 'assistant',
      content: null,
      toolCalls: [{ id: 'b', name: 'calc', arguments: `{"expression":"${value} + ${add}"}` }],
    },
    { role: 'tool', toolCallId: 'b', name: 'calc', content: String(value + add) },
    {
      role: 'assistant',
      content: 'Done.',
      toolCalls: [{ id: 'c', name: 'submit', arguments: `{"answer":"${value + add}"}` }],
    },
    { role: 'tool', toolCallId: 'c', name: 'submit', content: 'Submitted.' },
  ];
}

const conversations = Array.from({ length: 24 }, (_, i) => ({
  messages: demo(`k${10 + i}`, 30 + i, 1 + (i % 9)),
  tools,
}));
const files = scratchTokenizerFiles({ texts: ['Look up a key.'], conversations }, { merges: 200 });
const tokenizer = new HfTokenizer(files);
const template = new HfChatTemplate(tokenizer);

describe('a byte-level BPE learned from conversations', () => {
  it('is the same for the same sample, and its merges shorten what it was learned from', () => {
    const again = scratchTokenizerFiles({ texts: ['Look up a key.'], conversations }, { merges: 200 });
    expect(JSON.stringify(again)).toBe(JSON.stringify(files));
    const text = template.renderText(conversations[0]!.messages, tools);
    const ids = tokenizer.encodeWithSpecials(text);
    expect(ids.length).toBeLessThan(new TextEncoder().encode(text).length / 2.5);
    expect(tokenizer.decodeWithSpecials(ids)).toBe(text);
  });

  it('spells numbers digit by digit, and keeps ChatML tokens whole', () => {
    const ids = tokenizer.encodeWithSpecials('<|im_start|>user\n1234 + 56<|im_end|>');
    const pieces = ids.map((id) => tokenizer.decodeWithSpecials([id]));
    expect(pieces.filter((piece) => /\d/.test(piece))).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(pieces[0]).toBe('<|im_start|>');
    expect(pieces.at(-1)).toBe('<|im_end|>');
  });

  it('encodes any text, also bytes it never saw, and decodes it back', () => {
    const text = 'naïve — 東京 🙂 \t\r\n{"x": [1, 2]}';
    expect(tokenizer.decodeWithSpecials(tokenizer.encodeWithSpecials(text))).toBe(text);
  });

  it('stops learning when no pair repeats', () => {
    const json = trainByteLevelBpe(['ab ab', 'cd'], { merges: 50 }) as { model: { merges: unknown[] } };
    expect(json.model.merges).toEqual([['a', 'b']]);
  });
});

describe('its chat template', () => {
  it('is ChatML with Hermes tool calls, ending assistant messages with <|im_end|>', () => {
    expect(template.toolCallFormat).toBe('hermes');
    expect(template.endToken).toBe('<|im_end|>');
    expect(tokenizer.eosIds).toContain(tokenizer.specialId('<|im_end|>'));
    const text = template.renderText(conversations[0]!.messages, tools);
    expect(text).toContain('<|im_start|>system\n# Tools\n');
    expect(text).toContain('- lookup\n- calc\n- submit<|im_end|>\n');
    expect(text).toContain(
      '<|im_start|>assistant\n<tool_call>{"name": "lookup", "arguments": {"key": "k10"}}</tool_call><|im_end|>\n',
    );
    expect(text).toContain('<|im_start|>user\n<tool_response>\nk10 = 30\n</tool_response><|im_end|>\n');
  });

  it('reads back the calls it writes', () => {
    const completion = tokenizer.encodeWithSpecials(
      'Done.<tool_call>{"name": "submit", "arguments": {"answer": "31"}}</tool_call><|im_end|>',
    );
    const parsed = template.parseCompletionIds(completion, 2);
    expect(parsed.toolCalls).toEqual([{ id: 'call_2_0', name: 'submit', arguments: '{"answer": "31"}' }]);
    expect(parsed.text).toBe('Done.');
  });

  it('trains on what the assistant writes and its end token only', () => {
    const { ids, mask } = template.renderSupervised(conversations[0]!.messages, tools);
    const trained = tokenizer.decodeWithSpecials(ids.filter((_, i) => mask[i] === 1));
    expect(trained).toBe(
      '<tool_call>{"name": "lookup", "arguments": {"key": "k10"}}</tool_call><|im_end|>' +
        '<tool_call>{"name": "calc", "arguments": {"expression": "30 + 1"}}</tool_call><|im_end|>' +
        'Done.<tool_call>{"name": "submit", "arguments": {"answer": "31"}}</tool_call><|im_end|>',
    );
  });
});
