/**
 * Parquet files of nested rows, written with hyparquet-writer (pure JavaScript, no
 * install-time download): nullable scalar, list and struct columns in the standard
 * three-level LIST layout that pyarrow, pandas, Hugging Face `datasets` and DuckDB read as
 * lists of structs; compressed pages; one row group per `rowGroupSize` rows, each encoded
 * and flushed to the file before the next is built, so memory stays bounded by one group
 * whatever the number of rows.
 */
import { statSync } from 'node:fs';
import { constants as zlibConstants, gzipSync } from 'node:zlib';
import * as zlib from 'node:zlib';
import { fileWriter, ParquetWriter } from 'hyparquet-writer';
import { PaddockError } from '../harness/index.ts';

/**
 * The type of a column or of a nested field. Everything is nullable. `json` is UTF-8 text
 * with the JSON converted type (readers that know it decode it; others see a string);
 * `int64` values come back from most JavaScript readers as bigint.
 */
export type ParquetType =
  | 'string'
  | 'json'
  | 'int32'
  | 'int64'
  | 'double'
  | 'boolean'
  | { list: ParquetType }
  | { struct: Readonly<Record<string, ParquetType>> };

export interface ParquetColumn {
  name: string;
  type: ParquetType;
}

/** A row: column name → value (absent or undefined = null). */
export type ParquetRow = Record<string, unknown>;

/** Page compression. `zstd` needs a Node.js with `zlib.zstdCompressSync` (22.15 / 23.8 and later). */
export type ParquetCompression = 'snappy' | 'gzip' | 'zstd' | 'uncompressed';

export interface ParquetWriteOptions {
  /** Rows per row group: the rows held in memory at once. @default 512 */
  rowGroupSize?: number;
  /** @default 'snappy' (what pyarrow and Hugging Face `datasets` write) */
  compression?: ParquetCompression;
  /** Key-value metadata stored in the footer. */
  metadata?: Record<string, string>;
}

type SchemaElement = NonNullable<ConstructorParameters<typeof ParquetWriter>[0]['schema']>[number];
type Codec = 'SNAPPY' | 'GZIP' | 'ZSTD' | 'UNCOMPRESSED';
type Compressor = (input: Uint8Array) => Uint8Array;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The narrowest type that holds every value given (null and undefined fit anything):
 * objects become structs with the union of their keys (a key missing from a value is
 * null there), arrays become lists of the union of their elements, integers that are not
 * all int32 become int64 and mixed with fractions double. Values whose kinds conflict
 * (a string here, an object there; an empty object) become `json`, so that any JSON
 * value can be written. Undefined when every value is null.
 */
export function inferParquetType(values: Iterable<unknown>): ParquetType | undefined {
  let type: Inferred | undefined;
  for (const value of values) type = mergeTypes(type, typeOfValue(value));
  return type === undefined ? undefined : finish(type);
}

/**
 * A type while values are being read: an empty list's element is not known yet, a struct
 * may have no field yet, a struct's field may have held only nulls so far (`nullOnly`).
 */
type Inferred =
  | Exclude<ParquetType, { list: ParquetType } | { struct: Readonly<Record<string, ParquetType>> }>
  | { list: Inferred | undefined }
  | { struct: Record<string, Inferred> }
  | { nullOnly: true };

function typeOfValue(value: unknown): Inferred | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'bigint') return 'int64';
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return 'double';
    return value >= -0x80000000 && value <= 0x7fffffff ? 'int32' : 'int64';
  }
  if (Array.isArray(value)) {
    let element: Inferred | undefined;
    for (const item of value) element = mergeTypes(element, typeOfValue(item));
    return { list: element };
  }
  if (isObject(value)) {
    const fields: Record<string, Inferred> = {};
    for (const [key, field] of Object.entries(value)) {
      const type = typeOfValue(field);
      if (type !== undefined) fields[key] = type;
      // A key whose only values are null gets a type from other values, or json at the end.
      else fields[key] = { nullOnly: true };
    }
    return { struct: fields };
  }
  return 'json';
}

function isNullOnly(type: Inferred | undefined): type is { nullOnly: true } {
  return typeof type === 'object' && 'nullOnly' in type;
}

const NUMERIC: readonly Inferred[] = ['int32', 'int64', 'double'];

function mergeTypes(a: Inferred | undefined, b: Inferred | undefined): Inferred | undefined {
  if (a === undefined || isNullOnly(a)) return b ?? a;
  if (b === undefined || isNullOnly(b) || a === b) return a;
  if (typeof a === 'string' && typeof b === 'string') {
    if (NUMERIC.includes(a) && NUMERIC.includes(b)) {
      return a === 'double' || b === 'double' ? 'double' : 'int64';
    }
    return 'json';
  }
  if (typeof a === 'object' && typeof b === 'object') {
    if ('list' in a && 'list' in b) return { list: mergeTypes(a.list, b.list) };
    if ('struct' in a && 'struct' in b) {
      const fields: Record<string, Inferred> = { ...a.struct };
      for (const [key, type] of Object.entries(b.struct)) fields[key] = mergeTypes(fields[key], type)!;
      return { struct: fields };
    }
  }
  return 'json';
}

/** The written type: what stayed unknown (only nulls, only empty lists or objects) is json. */
function finish(type: Inferred): ParquetType {
  if (typeof type === 'string') return type;
  if (isNullOnly(type)) return 'json';
  if ('list' in type) return { list: type.list === undefined ? 'json' : finish(type.list) };
  const fields = Object.entries(type.struct);
  if (fields.length === 0) return 'json';
  return { struct: Object.fromEntries(fields.map(([key, field]) => [key, finish(field)])) };
}

function schemaElements(name: string, type: ParquetType): SchemaElement[] {
  const repetition_type = 'OPTIONAL' as const;
  switch (type) {
    case 'string':
      return [{ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type }];
    case 'json':
      return [{ name, type: 'BYTE_ARRAY', converted_type: 'JSON', repetition_type }];
    case 'int32':
      return [{ name, type: 'INT32', repetition_type }];
    case 'int64':
      return [{ name, type: 'INT64', repetition_type }];
    case 'double':
      return [{ name, type: 'DOUBLE', repetition_type }];
    case 'boolean':
      return [{ name, type: 'BOOLEAN', repetition_type }];
  }
  if ('list' in type) {
    return [
      { name, repetition_type, converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      ...schemaElements('element', type.list),
    ];
  }
  const fields = Object.entries(type.struct);
  return [
    { name, repetition_type, num_children: fields.length },
    ...fields.flatMap(([field, fieldType]) => schemaElements(field, fieldType)),
  ];
}

/** The value as the writer takes it for `type`; throws a TypeError naming `path` when it does not fit. */
function toParquetValue(type: ParquetType, value: unknown, path: string): unknown {
  if (value === null || value === undefined) return null;
  const wrong = (): TypeError =>
    new TypeError(`column ${path}: expected ${JSON.stringify(type)}, got ${JSON.stringify(value)}`);
  switch (type) {
    case 'json':
      return value;
    case 'string':
      if (typeof value !== 'string') throw wrong();
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw wrong();
      return value;
    case 'double':
      if (typeof value !== 'number') throw wrong();
      return value;
    case 'int32':
      if (!Number.isInteger(value) || (value as number) < -0x80000000 || (value as number) > 0x7fffffff)
        throw wrong();
      return value;
    case 'int64':
      if (typeof value === 'bigint') return value;
      if (!Number.isSafeInteger(value)) throw wrong();
      return BigInt(value as number);
  }
  if ('list' in type) {
    if (!Array.isArray(value)) throw wrong();
    return value.map((element, i) => toParquetValue(type.list, element, `${path}[${i}]`));
  }
  if (!isObject(value)) throw wrong();
  const out: Record<string, unknown> = {};
  for (const [field, fieldType] of Object.entries(type.struct)) {
    out[field] = toParquetValue(fieldType, value[field], `${path}.${field}`);
  }
  return out;
}

/** A `zlib` zstd compressor, on Node.js versions that have one. */
function zstdCompressor(): Compressor | undefined {
  const compress = (zlib as unknown as { zstdCompressSync?: (input: Uint8Array) => Buffer }).zstdCompressSync;
  return compress ? (input) => new Uint8Array(compress(input)) : undefined;
}

function codecOf(compression: ParquetCompression): {
  codec: Codec;
  compressors: Partial<Record<Codec, Compressor>>;
} {
  switch (compression) {
    case 'snappy':
      return { codec: 'SNAPPY', compressors: {} }; // hyparquet-writer's own
    case 'uncompressed':
      return { codec: 'UNCOMPRESSED', compressors: {} };
    case 'gzip':
      return {
        codec: 'GZIP',
        compressors: {
          GZIP: (input) => new Uint8Array(gzipSync(input, { level: zlibConstants.Z_DEFAULT_COMPRESSION })),
        },
      };
    case 'zstd': {
      const ZSTD = zstdCompressor();
      if (!ZSTD) {
        throw new PaddockError(
          'CONFIG_INVALID',
          `Parquet zstd compression needs Node.js 22.15 or later (this is ${process.version}); use snappy or gzip`,
        );
      }
      return { codec: 'ZSTD', compressors: { ZSTD } };
    }
  }
}

/**
 * Writes `rows` to a Parquet file at `path` (replaced) with the given columns, one row
 * group per `rowGroupSize` rows, each flushed to the file before the next is read from
 * `rows`. Returns the number of rows and the file's size in bytes. Throws a TypeError
 * naming the column (and nested field) when a value does not fit its type, a
 * PaddockError CONFIG_INVALID for a compression this Node.js cannot write, and the file
 * system's error when the file cannot be written.
 */
export function writeParquetFile(
  path: string,
  columns: readonly ParquetColumn[],
  rows: Iterable<ParquetRow>,
  options: ParquetWriteOptions = {},
): { rows: number; bytes: number } {
  const rowGroupSize = options.rowGroupSize ?? 512;
  if (!Number.isInteger(rowGroupSize) || rowGroupSize < 1) {
    throw new PaddockError('CONFIG_INVALID', `rowGroupSize must be a positive integer, got ${rowGroupSize}`);
  }
  const { codec, compressors } = codecOf(options.compression ?? 'snappy');
  const schema: SchemaElement[] = [
    { name: 'root', num_children: columns.length },
    ...columns.flatMap((column) => schemaElements(column.name, column.type)),
  ];
  const writer = new ParquetWriter({
    writer: fileWriter(path),
    schema,
    codec,
    compressors,
    createdBy: 'paddock (hyparquet-writer)',
    ...(options.metadata
      ? { kvMetadata: Object.entries(options.metadata).map(([key, value]) => ({ key, value })) }
      : {}),
  });
  let count = 0;
  let group: ParquetRow[] = [];
  const flush = (): void => {
    if (group.length === 0) return;
    const rowsOfGroup = group;
    const columnData = columns.map((column) => ({
      name: column.name,
      data: rowsOfGroup.map((row) => toParquetValue(column.type, row[column.name], column.name)),
    }));
    // A file writer flushes synchronously: write() returns no promise here.
    void writer.write({ columnData, rowGroupSize: rowsOfGroup.length });
    group = [];
  };
  for (const row of rows) {
    group.push(row);
    count++;
    if (group.length >= rowGroupSize) flush();
  }
  flush();
  void writer.finish();
  return { rows: count, bytes: statSync(path).size };
}
