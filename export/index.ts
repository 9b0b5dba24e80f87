/**
 * Training-ready export of runs: one row per episode (ids, OpenAI-format messages with the
 * model's reasoning, the tools offered as OpenAI schemas, per-turn rewards and returns,
 * trajectory rewards, status, usage, and for token-exact episodes `input_ids`, `labels`,
 * `loss_mask` and `logprobs`), as JSONL or Parquet with nested list and struct columns,
 * compressed, under the column names TRL, verl and OpenRLHF read (README.md).
 *
 * ```ts
 * await exportRun(RunStore.open('runs', runId), { format: 'parquet', out: 'episodes.parquet' });
 * ```
 */
export {
  MESSAGE_PARQUET_TYPE,
  TOKEN_COLUMNS,
  buildTokenSequence,
  episodeRow,
  exportMessages,
  exportParquetColumns,
  exportRun,
  type ExportContentPart,
  type ExportMessage,
  type ExportOptions,
  type ExportRow,
  type ExportToolCall,
  type TokenSequence,
} from './export.ts';
export { ExportImages, exportImagesDir, omittedImageText, type ExportImageMode } from './images.ts';
export {
  inferParquetType,
  writeParquetFile,
  type ParquetColumn,
  type ParquetCompression,
  type ParquetRow,
  type ParquetType,
  type ParquetWriteOptions,
} from './parquet.ts';
