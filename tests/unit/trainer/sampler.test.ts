import { describe, expect, it } from 'vitest';
import { createRng, logSoftmax, sampleToken } from '../../../agents/onnx/index.ts';

describe('sampler', () => {
  it('draws the same numbers from the same seed parts, others from others', () => {
    const a = createRng(42, 0);
    const b = createRng(42, 0);
    const c = createRng(42, 1);
    const first = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(first);
    expect(c()).not.toBe(first[0]);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('returns the log-softmax of the sampled token at the given temperature', () => {
    const logits = Float32Array.from([2, 1, 0, -1]);
    const { id, logprob } = sampleToken(logits, 0, 4, { temperature: 0.5, topP: 1 }, createRng(1));
    expect(logprob).toBeCloseTo(logSoftmax(logits, 0, 4, 0.5)[id]!, 12);
  });

  it('is greedy at temperature 0', () => {
    const logits = Float32Array.from([0, 3, 1]);
    expect(sampleToken(logits, 0, 3, { temperature: 0, topP: 1 }, createRng(1)).id).toBe(1);
  });

  it('samples in proportion to the probabilities', () => {
    const logits = Float32Array.from([Math.log(0.7), Math.log(0.2), Math.log(0.1)]);
    const rng = createRng(9);
    const counts = [0, 0, 0];
    for (let i = 0; i < 20_000; i++)
      counts[sampleToken(logits, 0, 3, { temperature: 1, topP: 1 }, rng).id]!++;
    expect(counts[0]! / 20_000).toBeCloseTo(0.7, 1);
    expect(counts[2]! / 20_000).toBeCloseTo(0.1, 1);
  });

  it('keeps to the nucleus with top-p', () => {
    const logits = Float32Array.from([Math.log(0.6), Math.log(0.3), Math.log(0.1)]);
    const rng = createRng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i++)
      seen.add(sampleToken(logits, 0, 3, { temperature: 1, topP: 0.8 }, rng).id);
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it('reads logits at an offset', () => {
    const logits = Float32Array.from([9, 9, 0, 5, 1]);
    expect(sampleToken(logits, 2, 3, { temperature: 0, topP: 1 }, createRng(1)).id).toBe(1);
  });
});
