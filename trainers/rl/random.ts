/**
 * The trainer's seeded randomness: which tasks a step samples, which demonstrations the
 * oracle plays, the order of warm-start batches, and the base seed of a step's episodes.
 * All of it is a function of the run's `seed` and the step, so that a resumed run draws
 * exactly what the uninterrupted one did.
 *
 * The generator is the harness's (`harness/random.ts`), not the agent's sampler: what the
 * trainer draws must not change when an agent's sampling does.
 */
import type { Rng } from '../../harness/index.ts';

export { createRng, mixSeed, type Rng } from '../../harness/index.ts';

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
