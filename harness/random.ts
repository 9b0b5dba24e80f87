/**
 * Seeded randomness that every part derives from a run's seed: sfc32 seeded through
 * murmur3's finaliser. The ONNX agent samples tokens with it, the trainer draws its tasks,
 * demonstrations and batch order with it; one definition keeps their draws reproducible
 * across versions (a run resumed from a checkpoint draws what the uninterrupted one did).
 */

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

/** sfc32, seeded from the given integers (an episode's seed and a turn, a run's seed and a step). */
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
