import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PieceTokenizer,
  SPECIAL_TOKENS,
  buildPieceTokenizer,
  byteTokenizer,
} from '../../../agents/onnx/index.ts';
import { isPaddockError } from '../../../harness/index.ts';

const pieces = (list: string[]): PieceTokenizer =>
  new PieceTokenizer({ format: 'paddock-pieces', version: 1, special: [...SPECIAL_TOKENS], pieces: list });

describe('PieceTokenizer', () => {
  it('decodes what it encodes, for any text', () => {
    const tokenizer = pieces(['ab', 'abc', ' the']);
    for (const text of ['', 'abcabc the end', 'héllo → 世界 🎉', '<|end|> is plain text here']) {
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    }
  });

  it('takes the longest piece at each position', () => {
    const tokenizer = pieces(['ab', 'abc']);
    const base = SPECIAL_TOKENS.length + 256;
    expect(tokenizer.encode('abcab')).toEqual([base + 1, base]);
  });

  it('never produces special ids from text', () => {
    const tokenizer = byteTokenizer();
    expect(tokenizer.encode('<|end|><|user|>').every((id) => !tokenizer.isSpecial(id))).toBe(true);
    expect(tokenizer.specialId('<|end|>')).toBe(SPECIAL_TOKENS.indexOf('<|end|>'));
  });

  it('drops special tokens and repairs invalid UTF-8 when decoding', () => {
    const tokenizer = byteTokenizer();
    const end = tokenizer.specialId('<|end|>');
    const bytes = [...new TextEncoder().encode('é')].map((byte) => byte + SPECIAL_TOKENS.length);
    expect(tokenizer.decode([end, ...bytes, end])).toBe('é');
    expect(tokenizer.decode([bytes[0]!])).toBe('\uFFFD');
  });

  it('reads its own file form and refuses an invalid one with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paddock-tok-'));
    const good = join(dir, 'tokenizer.json');
    writeFileSync(good, JSON.stringify(pieces(['xy']).toJSON()));
    expect(PieceTokenizer.fromFile(good).pieces).toEqual(['xy']);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ format: 'paddock-pieces', version: 1, special: [], pieces: 3 }));
    try {
      PieceTokenizer.fromFile(bad);
      expect.unreachable();
    } catch (error) {
      expect(isPaddockError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toContain('bad.json');
      expect((error as Error).message).toContain('pieces');
    }
  });
});

describe('buildPieceTokenizer', () => {
  const texts = ['the cat sat on the mat', 'the cat ate 12 rats', 'the cat ate 12 rats'];

  it('keeps frequent units after the forced pieces, deterministically', () => {
    const a = buildPieceTokenizer(texts, { forced: ['<tool>'] });
    const b = buildPieceTokenizer([...texts].reverse(), { forced: ['<tool>'] });
    expect(a.pieces[0]).toBe('<tool>');
    expect(a.pieces).toContain(' cat');
    expect(a.pieces).toContain('12');
    expect(a.pieces).not.toContain(' mat');
    expect(a.pieces).toEqual(b.pieces);
  });

  it('splits digits when asked, and can make every small number one piece', () => {
    expect(buildPieceTokenizer(texts, { splitDigits: true }).pieces).not.toContain('12');
    const numbers = buildPieceTokenizer([], { numbers: 120 });
    expect(numbers.encode('119')).toHaveLength(1);
    expect(numbers.encode('7')).toHaveLength(1);
  });

  it('does not learn pieces that straddle a forced piece', () => {
    const tokenizer = buildPieceTokenizer(['x"}}</tool>', 'x"}}</tool>'], { forced: ['</tool>'] });
    expect(tokenizer.pieces.some((piece) => piece.includes('</') && piece !== '</tool>')).toBe(false);
  });
});
