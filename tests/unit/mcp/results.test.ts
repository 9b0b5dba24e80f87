import { describe, expect, it } from 'vitest';
import { capText, toToolOutput } from '../../../sandboxes/mcp/index.ts';

describe('toToolOutput', () => {
  it('joins text items', () => {
    expect(
      toToolOutput({
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      }),
    ).toEqual({ text: 'a\nb' });
  });

  it('turns images into ImageParts', () => {
    expect(toToolOutput({ content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }] })).toEqual({
      text: '(no output)',
      images: [{ mimeType: 'image/png', dataBase64: 'AAAA' }],
    });
  });

  it('keeps isError', () => {
    expect(toToolOutput({ content: [{ type: 'text', text: 'no' }], isError: true })).toEqual({
      text: 'no',
      isError: true,
    });
  });

  it('shows structured content as JSON when no text stands for it', () => {
    expect(toToolOutput({ content: [], structuredContent: { a: 1 } }).text).toBe('{\n  "a": 1\n}');
    expect(
      toToolOutput({ content: [{ type: 'text', text: '{"a":1}' }], structuredContent: { a: 1 } }).text,
    ).toBe('{"a":1}');
  });

  it('describes resource links, embedded resources, audio and blobs', () => {
    const output = toToolOutput({
      content: [
        { type: 'resource_link', uri: 'file:///x.csv', name: 'x.csv', mimeType: 'text/csv' },
        { type: 'resource', resource: { uri: 'memo://1', text: 'hello' } },
        { type: 'resource', resource: { uri: 'bin://1', mimeType: 'application/zip', blob: 'AAAA' } },
        { type: 'resource', resource: { uri: 'img://1', mimeType: 'image/gif', blob: 'R0lG' } },
        { type: 'audio', data: 'AAAAAA==', mimeType: 'audio/wav' },
      ],
    });
    expect(output.text.split('\n')).toEqual([
      '[resource link: x.csv <file:///x.csv> (text/csv)]',
      '[resource memo://1]',
      'hello',
      '[resource bin://1 (application/zip), 3 bytes: not shown]',
      '[audio (audio/wav), 4 bytes: not shown]',
    ]);
    expect(output.images).toEqual([{ mimeType: 'image/gif', dataBase64: 'R0lG' }]);
  });

  it('reads the old protocol’s toolResult', () => {
    expect(toToolOutput({ toolResult: { answer: 42 } }).text).toBe('{\n  "answer": 42\n}');
  });

  it('says when a result is malformed instead of throwing', () => {
    expect(toToolOutput('nope')).toMatchObject({
      isError: true,
      text: expect.stringContaining('malformed tool result') as string,
    });
    expect(toToolOutput({ content: 'not a list' })).toMatchObject({ isError: true });
    expect(toToolOutput({ content: [{ type: 'text' }, { type: 'video' }, null] }).text.split('\n')).toEqual([
      '[malformed text item: {"type":"text"}]',
      '[unsupported content item of type "video"]',
      '[unsupported content item of type null]',
    ]);
  });

  it('caps text and says how much was cut', () => {
    const output = toToolOutput(
      { content: [{ type: 'text', text: 'x'.repeat(5000) }] },
      { maxOutputBytes: 100 },
    );
    expect(output.text).toBe(`${'x'.repeat(100)}\n[output truncated: showing 100 of 5000 bytes]`);
  });

  it('drops images past the image limit with a note', () => {
    const output = toToolOutput(
      {
        content: [
          { type: 'image', data: 'A'.repeat(400), mimeType: 'image/png' },
          { type: 'image', data: 'A'.repeat(400), mimeType: 'image/png' },
        ],
      },
      { maxImageBytes: 400 },
    );
    expect(output.images).toHaveLength(1);
    expect(output.text).toContain('dropped: 300 bytes would pass the 400-byte image limit');
  });
});

describe('capText', () => {
  it('never cuts a character in half', () => {
    const text = 'é'.repeat(100); // 2 bytes each
    const capped = capText(text, 51);
    expect(capped.startsWith('é'.repeat(25))).toBe(true);
    expect(capped).toContain('[output truncated: showing 50 of 200 bytes]');
    expect(capped).not.toContain('\uFFFD');
  });
  it('leaves short text alone', () => {
    expect(capText('short', 10)).toBe('short');
  });
});
