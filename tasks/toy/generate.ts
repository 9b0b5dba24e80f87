/**
 * Writes the rows of the toy suite: `lookup-train/rows.jsonl`, `lookup-heldout/rows.jsonl`
 * and `lookup-reworded/rows.jsonl` (the held-out rows again), deterministically (a fixed seed), with no row shared
 * between the splits.
 *
 *   npx tsx tasks/toy/generate.ts [trainRows=600] [heldoutRows=100]
 *
 * Each row: a table of 4 keys (a letter and two digits) → numbers in 10..99 (what the
 * `lookup` tool reads), the key the instruction names, a number 1..9 to add, and the
 * expected answer.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Keys are a letter and two digits (`k37`): copied character by character, like numbers. */
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

function randomKey(random: () => number): string {
  return `${LETTERS[Math.floor(random() * 26)]}${Math.floor(random() * 10)}${Math.floor(random() * 10)}`;
}

/** mulberry32: a small seeded generator, so that the rows never change. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  id: string;
  key: string;
  add: number;
  value: number;
  expected: string;
  table: Record<string, number>;
}

function rows(count: number, prefix: string, random: () => number, seen: Set<string>): Row[] {
  const out: Row[] = [];
  while (out.length < count) {
    const keys = [...new Set(Array.from({ length: 4 }, () => randomKey(random)))];
    if (keys.length < 4) continue;
    const table = Object.fromEntries(keys.map((key) => [key, 10 + Math.floor(random() * 90)]));
    const key = keys[Math.floor(random() * keys.length)]!;
    const add = 1 + Math.floor(random() * 9);
    const value = table[key]!;
    const signature = `${key}:${value}:${add}`;
    if (seen.has(signature)) continue;
    seen.add(signature);
    out.push({
      id: `${prefix}${String(out.length + 1).padStart(4, '0')}`,
      key,
      add,
      value,
      expected: String(value + add),
      table,
    });
  }
  return out;
}

const here = import.meta.dirname;
const random = generator(20_251_121);
const seen = new Set<string>();
const heldout = rows(Number(process.argv[3] ?? 100), 'h', random, seen);
const train = rows(Number(process.argv[2] ?? 600), 't', random, seen);
const lines = (items: Row[]): string => items.map((row) => JSON.stringify(row)).join('\n') + '\n';
writeFileSync(join(here, 'lookup-train', 'rows.jsonl'), lines(train));
writeFileSync(join(here, 'lookup-heldout', 'rows.jsonl'), lines(heldout));
// The held-out template: the same rows, another instruction (lookup-reworded/task.yaml).
writeFileSync(join(here, 'lookup-reworded', 'rows.jsonl'), lines(heldout));
console.log(`wrote ${train.length} train and ${heldout.length} held-out rows`);
