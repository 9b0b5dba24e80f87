import { describe, expect, it } from 'vitest';
import { toAnthropicMessages } from '../../../agents/anthropic/index.ts';
import { toOpenAIMessages } from '../../../agents/openai/index.ts';
import type { Message } from '../../../harness/index.ts';

const image = { mimeType: 'image/png', dataBase64: 'AAAA' };

const conversation: Message[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Look.', images: [image] },
  {
    role: 'assistant',
    content: null,
    toolCalls: [
      { id: 'c1', name: 'shot', arguments: '{}' },
      { id: 'c2', name: 'add', arguments: '{"a":1' },
    ],
  },
  { role: 'tool', toolCallId: 'c1', name: 'shot', content: 'screen', images: [image] },
  { role: 'tool', toolCallId: 'c2', name: 'add', content: 'bad JSON' },
  { role: 'assistant', content: null },
  { role: 'user', content: 'Go on.' },
];

describe('toOpenAIMessages', () => {
  it('keeps tool results right after their call and moves their images to a user message after them', () => {
    expect(toOpenAIMessages(conversation)).toEqual([
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look.' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        ],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'shot', arguments: '{}' } },
          { id: 'c2', type: 'function', function: { name: 'add', arguments: '{"a":1' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'screen' },
      { role: 'tool', tool_call_id: 'c2', content: 'bad JSON' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Images from the result of shot (c1):' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        ],
      },
      { role: 'assistant', content: '' },
      { role: 'user', content: 'Go on.' },
    ]);
  });
});

describe('toAnthropicMessages', () => {
  it('separates the system prompt, merges tool results into one user message and drops empty turns', () => {
    const { system, messages } = toAnthropicMessages(conversation);
    expect(system).toEqual(['Be brief.']);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(messages[1]!.content).toEqual([
      { type: 'tool_use', id: 'c1', name: 'shot', input: {} },
      // Invalid JSON cannot be replayed as an object.
      { type: 'tool_use', id: 'c2', name: 'add', input: {} },
    ]);
    expect(messages[2]!.content).toEqual([
      {
        type: 'tool_result',
        tool_use_id: 'c1',
        content: [
          { type: 'text', text: 'screen' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
        ],
      },
      { type: 'tool_result', tool_use_id: 'c2', content: 'bad JSON' },
      { type: 'text', text: 'Go on.' },
    ]);
  });
});
