/**
 * The trainer ↔ policy contract (harness/policy.ts) as agents/onnx implements it, and the
 * trainer's side of it: a policy folder written through the format loads back as the
 * same policy; the trainer reaches the agent only through a handful of names of its index;
 * its own seeded generator draws what it drew before it had one.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PaddockChatTemplate,
  byteTokenizer,
  onnxPolicyFormat,
  parseCompletion,
} from '../../../agents/onnx/index.ts';
import { isPaddockError, type Message, type ToolSpec } from '../../../harness/index.ts';
import type { Tokenizer } from '../../../harness/index.ts';
import { createRng, mixSeed } from '../../../harness/index.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const TINY = join(import.meta.dirname, 'fixtures', 'tiny-policy');

const tools: ToolSpec[] = [
  {
    name: 'lookup',
    description: 'Look up a key.',
    inputSchema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
  },
];

describe('onnxPolicyFormat', () => {
  it('loads a folder it wrote beside exported weights as the policy the contents describe', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-policy-format-'));
    copyFileSync(join(TINY, 'model.onnx'), join(dir, onnxPolicyFormat.weightsFile));
    const tokenizer = onnxPolicyFormat.readTokenizer(join(TINY, 'tokenizer.json'));
    onnxPolicyFormat.write(dir, {
      model: {
        vocabSize: 272,
        maxLen: 320,
        kvCache: { layers: 1, heads: 2, headDim: 8 },
        details: { d_model: 16 },
      },
      tokenizer,
      chat: { toolDescriptions: false },
      sampling: { temperature: 0.5, topP: 1, maxNewTokens: 12 },
      step: 7,
    });
    const policy = await onnxPolicyFormat.load(dir);
    try {
      expect(policy.dir).toBe(dir);
      expect(policy.maxLen).toBe(320);
      expect(policy.tokenizer.toJSON()).toEqual(tokenizer.toJSON());
      expect(policy.config).toMatchObject({
        format: onnxPolicyFormat.name,
        vocab_size: 272,
        kv_cache: { layers: 1, heads: 2, head_dim: 8 },
        chat: { template: 'paddock-v1', tool_descriptions: false },
        sampling: { temperature: 0.5, top_p: 1, max_new_tokens: 12 },
        model: { d_model: 16 },
        step: 7,
      });
      const logits = await policy.extend(policy.newState(), [1, 2, 3]);
      expect(logits).toHaveLength(272);
    } finally {
      await policy.close();
    }
  });

  it('refuses a tokenizer that is not paddock-pieces, writing nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-policy-format-'));
    const bytes = byteTokenizer();
    const foreign: Tokenizer = {
      vocabSize: bytes.vocabSize,
      encode: (text) => bytes.encode(text),
      decode: (ids) => bytes.decode(ids),
      isSpecial: (id) => bytes.isSpecial(id),
      specialId: (token) => bytes.specialId(token),
      toJSON: () => ({ version: '1.0', model: { type: 'BPE' } }),
    };
    let error: unknown;
    try {
      onnxPolicyFormat.write(dir, {
        model: { vocabSize: 300, maxLen: 64, kvCache: null },
        tokenizer: foreign,
        chat: { toolDescriptions: true },
        sampling: {},
      });
    } catch (caught) {
      error = caught;
    }
    expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  });
});

describe('PaddockChatTemplate as the ChatTemplate contract', () => {
  const template = onnxPolicyFormat.chatTemplate(byteTokenizer(), { toolDescriptions: true });
  const messages: Message[] = [
    { role: 'user', content: 'find kiwi' },
    {
      role: 'assistant',
      content: null,
      toolCalls: [{ id: 'c', name: 'lookup', arguments: '{"key":"kiwi"}' }],
    },
    { role: 'tool', toolCallId: 'c', name: 'lookup', content: '4' },
  ];

  it('renders for training the ids it renders for the policy, mask 1 on the assistant message and its end', () => {
    const { ids, mask } = template.renderSupervised(messages, tools);
    expect(ids).toEqual(template.renderConversation(messages, tools));
    const reply = template.renderMessage(messages[1]!);
    const start = ids.length - template.renderMessage(messages[2]!).length - reply.length;
    expect(mask.indexOf(1)).toBe(start + 1);
    expect(mask.lastIndexOf(1)).toBe(start + reply.length - 1);
    expect(ids[start + reply.length - 1]).toBe(template.end);
    expect(mask.filter((value) => value === 1)).toHaveLength(reply.length - 1);
  });

  it('opens the assistant turn with its role token and parses completions as parseCompletion does', () => {
    expect(template).toBeInstanceOf(PaddockChatTemplate);
    expect(template.generationPrompt).toEqual([(template as PaddockChatTemplate).assistantHeader]);
    const text = 'ok <tool>{"name":"lookup","arguments":{"key":"kiwi"}}</tool>';
    expect(template.parseCompletion(text, 2)).toEqual(parseCompletion(text, 2));
  });
});

/** `import {…} from '…'` statements of a file: the specifier and the names. */
function importsOf(file: string): { specifier: string; names: string[] }[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+['"]([^'"]+)['"]/g)].map((match) => ({
    specifier: match[2]!,
    names: match[1]!
      .split(',')
      .map((name) => name.trim().replace(/^type\s+/, ''))
      .filter(Boolean),
  }));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

describe('the trainer reaches agents only through their index', () => {
  it('imports agents/onnx through its index, and only the agent and the implementations it constructs', () => {
    const allowed = new Set([
      'OnnxPolicyAgent',
      'OnnxPolicy',
      'hfOnnxPolicyFormat',
      // A model trained from scratch: its tokenizer files, and their names.
      'scratchTokenizerFiles',
      'HF_TOKENIZER_FILES',
    ]);
    const offending: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'trainers'))) {
      for (const { specifier, names } of importsOf(file)) {
        const target = relative(ROOT, resolve(file, '..', specifier));
        if (!target.startsWith('agents/')) continue;
        if (!/^agents\/[^/]+\/index\.ts$/.test(target))
          offending.push(`${relative(ROOT, file)} → ${specifier}`);
        if (target === 'agents/onnx/index.ts')
          for (const name of names)
            if (!allowed.has(name)) offending.push(`${relative(ROOT, file)} imports ${name}`);
      }
    }
    expect(offending).toEqual([]);
  });
});

describe('the seeded generator (harness/random.ts)', () => {
  it('draws what it always drew, so runs made by earlier versions reproduce', () => {
    // Values from the generator as the agent's sampler and the trainer had it before it
    // moved to the harness.
    const known: [number[], number, number[]][] = [
      [[0], 192316741, [0.31343152350746095, 0.6742268647067249, 0.015530165517702699]],
      [[3, 5, 0x7a5c], 774879269, [0.308834194438532, 0.5152493212372065, 0.17524136509746313]],
      [[2 ** 31 + 7, 0xe7a1], 1994791736, [0.768080739537254, 0.4915120373480022, 0.6083246015477926]],
    ];
    for (const [parts, seed, draws] of known) {
      expect(mixSeed(...parts)).toBe(seed);
      const rng = createRng(...parts);
      expect(Array.from({ length: 3 }, () => rng())).toEqual(draws);
    }
  });
});
