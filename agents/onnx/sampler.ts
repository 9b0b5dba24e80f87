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
import type { Rng } from '../../harness/index.ts';

/** The seeded generator (the harness's), re-exported for the agent's users. */
export { createRng, mixSeed, type Rng } from '../../harness/index.ts';

/** Sampling settings. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy. @default 1 */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]. @default 1 */
  topP: number;
}

export const DEFAULT_SAMPLING: Readonly<SamplingOptions> = Object.freeze({ temperature: 1, topP: 1 });

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
