import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { parseOnnxSpec } from '../../../agents/onnx/index.ts';
import { encodeFloat64, encodeInt32, learningCurveSvg } from '../../../trainers/rl/index.ts';

describe('onnx: agent spec', () => {
  it('reads the folder and sampling options', () => {
    expect(parseOnnxSpec('onnx:runs/x/policy')).toEqual({ dir: 'runs/x/policy', options: {} });
    expect(parseOnnxSpec('onnx:p?temperature=0.7&top_p=0.9&max_new_tokens=32')).toEqual({
      dir: 'p',
      options: { temperature: 0.7, topP: 0.9, maxNewTokens: 32 },
    });
  });

  it('refuses bad specs with CONFIG_INVALID', () => {
    for (const spec of ['onnx:', 'oracle', 'onnx:p?top_p=2', 'onnx:p?beam=3', 'onnx:p?max_new_tokens=1.5']) {
      expect(() => parseOnnxSpec(spec), spec).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
  });
});

describe('worker arrays', () => {
  it('encodes int32 and float64 little-endian in base64', () => {
    const ints = encodeInt32([1, -2, 70000]);
    expect(ints.dtype).toBe('int32');
    const intBytes = Buffer.from(ints.b64, 'base64');
    expect([...new Int32Array(intBytes.buffer, intBytes.byteOffset, 3)]).toEqual([1, -2, 70000]);
    const floats = encodeFloat64([0.1, -1e-9]);
    const bytes = Buffer.from(floats.b64, 'base64');
    expect([...new Float64Array(bytes.buffer, bytes.byteOffset, 2)]).toEqual([0.1, -1e-9]);
  });
});

describe('learning curve', () => {
  it('draws train rewards and held-out success as an SVG', () => {
    const svg = learningCurveSvg([
      { type: 'eval', step: 0, success: 0.2 },
      { type: 'train', step: 1, reward_mean: 0.3, pass_rate: 0.3, entropy: 1, kl: 0 },
      { type: 'train', step: 2, reward_mean: 0.5, pass_rate: 0.5, entropy: 0.5, kl: 0.1 },
      { type: 'eval', step: 2, success: 0.6 },
    ]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('held-out success');
    expect(svg.match(/<path /g)?.length).toBeGreaterThanOrEqual(3);
    expect(svg.match(/<circle /g)?.length).toBe(2);
  });
});
