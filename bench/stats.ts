/** Small helpers shared by the benchmarks: percentiles and result files. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';

/** The p-th percentile (0–100) of `values`, by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Formats milliseconds with a precision that suits their size. */
export function ms(value: number): string {
  return value < 10 ? `${value.toFixed(3)} ms` : `${value.toFixed(1)} ms`;
}

/** Writes a benchmark's figures to bench/results/<name>.json with the machine's description. */
export function writeResults(name: string, figures: Record<string, unknown>): void {
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const record = {
    benchmark: name,
    at: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    figures,
  };
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
}
