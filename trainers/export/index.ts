/**
 * Training-ready export of runs: one row per episode (ids, OpenAI-format messages, tools
 * when known, per-turn rewards and returns, trajectory rewards, status, usage, and for token-exact
 * episodes the token ids, logprobs and loss mask), as JSONL or Parquet. The Parquet
 * writer is built in (no dependency): flat nullable columns and lists, uncompressed.
 *
 * ```ts
 * await exportRun(RunStore.open('runs', runId), { format: 'parquet', out: 'episodes.parquet' });
 * ```
 */
export {
  EXPORT_PARQUET_COLUMNS,
  buildTokenSequence,
  episodeRow,
  exportRun,
  type ExportOptions,
  type ExportRow,
  type TokenSequence,
} from './export.ts';
export { writeParquetFile, type ParquetColumn, type ParquetRow, type ParquetType } from './parquet.ts';
