/**
 * Token sampling: temperature, top-p (nucleus), a seeded generator, and the log-probability
 * of what was sampled.
 *
 * The recorded log-probability is `log softmax(logits / temperature)[token]` — the
 * temperature-scaled distribution over the whole vocabulary, which is what the trainer
 * recomputes. Top-p truncation is not part of it (keep `topP = 1` for on-policy RL, the
 * default). With `temperature = 0` the choice is greedy and the log-probability is that of
 * the unscaled distribution.
 */

/** Sampling settings. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy. @default 1 */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]. @default 1 */
  topP: number;
}

export const DEFAULT_SAMPLING: Readonly<SamplingOptions> = Object.freeze({ temperature: 1, topP: 1 });

/** A deterministic generator of floats in [0, 1). */
export type Rng = () => number;

/** Mixes integers into a 32-bit seed (murmur3's finaliser over each part). */
export function mixSeed(...parts: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    let k = Math.trunc(part) >>> 0;
    k = Math.imul(k ^ (k >>> 16), 0x85ebca6b);
    k = Math.imul(k ^ (k >>> 13), 0xc2b2ae35);
    k ^= k >>> 16;
    h = Math.imul(h ^ k, 0x27d4eb2f) + 0x165667b1;
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** sfc32, seeded from the given integers (e.g. an episode seed and a turn index). */
export function createRng(...seedParts: readonly number[]): Rng {
  let a = mixSeed(...seedParts, 1);
  let b = mixSeed(...seedParts, 2);
  let c = mixSeed(...seedParts, 3);
  let d = 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** `log softmax(logits / temperature)` over `logits[offset .. offset + size)`, in float64. */
export function logSoftmax(
  logits: ArrayLike<number>,
  offset: number,
  size: number,
  temperature = 1,
): Float64Array {
  const scale = temperature > 0 ? 1 / temperature : 1;
  const out = new Float64Array(size);
  let max = -Infinity;
  for (let i = 0; i < size; i++) {
    const value = logits[offset + i]! * scale;
    out[i] = value;
    if (value > max) max = value;
  }
  let sum = 0;
  for (let i = 0; i < size; i++) sum += Math.exp(out[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < size; i++) out[i] = out[i]! - lse;
  return out;
}

/** Samples one token from `logits[offset .. offset + size)`. */
export function sampleToken(
  logits: ArrayLike<number>,
  offset: number,
  size: number,
  options: SamplingOptions,
  rng: Rng,
): { id: number; logprob: number } {
  const logprobs = logSoftmax(logits, offset, size, options.temperature);
  if (options.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < size; i++) if (logprobs[i]! > logprobs[best]!) best = i;
    return { id: best, logprob: logprobs[best]! };
  }
  const u = rng();
  if (options.topP >= 1) {
    let cumulative = 0;
    for (let i = 0; i < size; i++) {
      cumulative += Math.exp(logprobs[i]!);
      if (u < cumulative) return { id: i, logprob: logprobs[i]! };
    }
    // Rounding left the sum just below u: the last token with any mass.
    let last = size - 1;
    while (last > 0 && logprobs[last] === -Infinity) last--;
    return { id: last, logprob: logprobs[last]! };
  }
  const order = Array.from({ length: size }, (_, i) => i).sort(
    (x, y) => logprobs[y]! - logprobs[x]! || x - y,
  );
  const kept: number[] = [];
  let mass = 0;
  for (const id of order) {
    kept.push(id);
    mass += Math.exp(logprobs[id]!);
    if (mass >= options.topP) break;
  }
  let cumulative = 0;
  for (const id of kept) {
    cumulative += Math.exp(logprobs[id]!) / mass;
    if (u < cumulative) return { id, logprob: logprobs[id]! };
  }
  const last = kept[kept.length - 1]!;
  return { id: last, logprob: logprobs[last]! };
}
