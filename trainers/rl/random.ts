/**
 * The trainer's seeded randomness: which tasks a step samples, which demonstrations the
 * oracle plays, the order of warm-start batches, and the base seed of a step's episodes.
 * All of it is a function of the run's `seed` and the step, so that a resumed run draws
 * exactly what the uninterrupted one did.
 *
 * The trainer keeps its own generator rather than borrowing the agent's sampler: what the
 * trainer draws must not change when an agent's sampling does. (It is the same algorithm,
 * sfc32 seeded through murmur3's finaliser, so runs reproduce those made before the split.)
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

/** sfc32, seeded from the given integers (e.g. the run's seed and a step). */
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

/** Shuffles `items` in place from the last to the first (Fisher–Yates) and returns them. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The first `count` items of a partial Fisher–Yates shuffle of `items` (from the front), as a new array. */
export function sample<T>(items: readonly T[], count: number, rng: Rng): T[] {
  const pool = [...items];
  const n = Math.min(count, pool.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, n);
}
