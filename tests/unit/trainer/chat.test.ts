import { describe, expect, it } from 'vitest';
import {
  PaddockChatTemplate,
  DEFAULT_SYSTEM_PROMPT,
  byteTokenizer,
  parseCompletion,
  renderAssistantText,
  renderToolList,
} from '../../../agents/onnx/index.ts';
import type { ToolSpec } from '../../../harness/index.ts';

const tools: ToolSpec[] = [
  {
    name: 'lookup',
    description: 'Look up a key.',
    inputSchema: {
      type: 'object',
      properties: { key: { type: 'string' }, exact: { type: 'boolean' } },
      required: ['key'],
    },
  },
];

describe('tool-call syntax', () => {
  it('renders calls canonically and parses them back', () => {
    const text = renderAssistantText('Looking.', [{ id: 'a', name: 'lookup', arguments: '{"key": "k1"}' }]);
    expect(text).toBe('Looking.\n<tool>{"name":"lookup","arguments":{"key":"k1"}}</tool>');
    const parsed = parseCompletion(text, 3);
    expect(parsed.text).toBe('Looking.');
    expect(parsed.toolCalls).toEqual([{ id: 'call_3_0', name: 'lookup', arguments: '{"key":"k1"}' }]);
    expect(parsed.problems).toEqual([]);
  });

  it('reads several calls in one turn', () => {
    const parsed = parseCompletion(
      '<tool>{"name":"a","arguments":{}}</tool><tool>{"name":"b","arguments":"{\\"x\\":1}"}</tool>',
    );
    expect(parsed.toolCalls.map((call) => [call.name, call.arguments])).toEqual([
      ['a', '{}'],
      ['b', '{"x":1}'],
    ]);
    expect(parsed.text).toBeNull();
  });

  it('makes a text-only turn of a completion without a tool block', () => {
    expect(parseCompletion('I am done.')).toEqual({ text: 'I am done.', toolCalls: [], problems: [] });
  });

  it('turns broken JSON into a call the loop answers with an error, keeping the name', () => {
    const parsed = parseCompletion('<tool>{"name":"lookup","arguments":{"key":}}</tool>');
    expect(parsed.toolCalls).toHaveLength(1);
    expect(parsed.toolCalls[0]!.name).toBe('lookup');
    expect(() => JSON.parse(parsed.toolCalls[0]!.arguments) as unknown).toThrow();
    expect(parsed.problems[0]).toMatch(/invalid JSON/);
  });

  it('gives a call without a readable name the empty name (an unknown tool for the loop)', () => {
    const parsed = parseCompletion('<tool>[1,2]</tool>');
    expect(parsed.toolCalls[0]!.name).toBe('');
    expect(parsed.problems).toHaveLength(1);
  });

  it('accepts a block that was never closed', () => {
    const parsed = parseCompletion('<tool>{"name":"lookup","arguments":{"key":"k"}}');
    expect(parsed.toolCalls[0]).toMatchObject({ name: 'lookup', arguments: '{"key":"k"}' });
    expect(parsed.problems).toContain('a <tool> block is not closed');
  });
});

describe('PaddockChatTemplate', () => {
  it('lists tools with their arguments, marking optional ones', () => {
    expect(renderToolList(tools)).toContain('- lookup(key: string, exact?: boolean): Look up a key.');
    expect(renderToolList(tools, { toolDescriptions: false })).toContain(
      '- lookup(key: string, exact?: boolean)\n'.trim(),
    );
  });

  it('renders each message between its role token and <|end|>', () => {
    const tokenizer = byteTokenizer();
    const template = new PaddockChatTemplate(tokenizer);
    const ids = template.renderConversation(
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, toolCalls: [{ id: 'x', name: 'lookup', arguments: '{}' }] },
        { role: 'tool', toolCallId: 'x', name: 'lookup', content: 'k = 1' },
      ],
      tools,
    );
    const roles = ids.filter((id) => tokenizer.isSpecial(id)).map((id) => tokenizer.display(id));
    expect(roles).toEqual([
      '<|system|>',
      '<|end|>',
      '<|user|>',
      '<|end|>',
      '<|assistant|>',
      '<|end|>',
      '<|tool|>',
      '<|end|>',
    ]);
    expect(tokenizer.decode(ids)).toContain(DEFAULT_SYSTEM_PROMPT);
    expect(tokenizer.decode(ids)).toContain('<tool>{"name":"lookup","arguments":{}}</tool>');
  });
});
