/**
 * A minimal Parquet writer: flat nullable columns of strings, int32, int64, doubles and
 * booleans, and nullable lists of those (the standard 3-level LIST layout). Uncompressed,
 * PLAIN values, RLE levels, one data page per column chunk, `rowGroupSize` rows per row
 * group. Enough for training exports; read by pyarrow, DuckDB, Spark, Polars, hyparquet.
 *
 * Format reference: the Apache Parquet specification (file layout, `parquet.thrift`,
 * Thrift compact protocol, RLE/bit-packing hybrid encoding).
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export type ParquetType = 'string' | 'int32' | 'int64' | 'double' | 'boolean';

export interface ParquetColumn {
  name: string;
  type: ParquetType;
  /** A nullable list of non-null `type` values. @default false */
  list?: boolean;
}

/** A row: column name → value (`null`/`undefined` for null; an array for a list column). */
export type ParquetRow = Record<string, unknown>;

// parquet.thrift enums
const PHYSICAL: Record<ParquetType, number> = { boolean: 0, int32: 1, int64: 2, double: 5, string: 6 };
const REPETITION = { required: 0, optional: 1, repeated: 2 } as const;
const CONVERTED_UTF8 = 0;
const CONVERTED_LIST = 3;
const ENCODING_PLAIN = 0;
const ENCODING_RLE = 3;
const CODEC_UNCOMPRESSED = 0;
const PAGE_DATA = 0;

// Thrift compact protocol type ids
const T_TRUE = 1;
const T_FALSE = 2;
const T_I32 = 5;
const T_I64 = 6;
const T_BINARY = 8;
const T_LIST = 9;
const T_STRUCT = 12;

/** A growable byte buffer. */
class Bytes {
  private buffer = Buffer.alloc(1024);
  length = 0;

  private ensure(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const next = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + extra));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
  byte(value: number): void {
    this.ensure(1);
    this.buffer[this.length++] = value & 0xff;
  }
  bytes(value: Uint8Array): void {
    this.ensure(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }
  uint32le(value: number): void {
    this.ensure(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
  }
  int32le(value: number): void {
    this.ensure(4);
    this.buffer.writeInt32LE(value, this.length);
    this.length += 4;
  }
  int64le(value: bigint): void {
    this.ensure(8);
    this.buffer.writeBigInt64LE(value, this.length);
    this.length += 8;
  }
  doublele(value: number): void {
    this.ensure(8);
    this.buffer.writeDoubleLE(value, this.length);
    this.length += 8;
  }
  /** Unsigned LEB128 varint. */
  varint(value: bigint | number): void {
    let v = BigInt(value);
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }
  result(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/** Thrift compact protocol writer (only what parquet.thrift metadata needs). */
class Thrift {
  readonly out = new Bytes();
  private lastField: number[] = [0];

  private header(id: number, type: number): void {
    const last = this.lastField[this.lastField.length - 1]!;
    const delta = id - last;
    if (delta > 0 && delta <= 15) {
      this.out.byte((delta << 4) | type);
    } else {
      this.out.byte(type);
      this.zigzag(BigInt(id));
    }
    this.lastField[this.lastField.length - 1] = id;
  }
  private zigzag(value: bigint): void {
    this.out.varint(value >= 0n ? value << 1n : (-value << 1n) - 1n);
  }
  i32(id: number, value: number): this {
    this.header(id, T_I32);
    this.zigzag(BigInt(value));
    return this;
  }
  i64(id: number, value: number | bigint): this {
    this.header(id, T_I64);
    this.zigzag(BigInt(value));
    return this;
  }
  bool(id: number, value: boolean): this {
    this.header(id, value ? T_TRUE : T_FALSE);
    return this;
  }
  string(id: number, value: string): this {
    this.header(id, T_BINARY);
    const bytes = Buffer.from(value, 'utf8');
    this.out.varint(bytes.length);
    this.out.bytes(bytes);
    return this;
  }
  struct(id: number, write: (t: this) => void): this {
    this.header(id, T_STRUCT);
    this.structBody(write);
    return this;
  }
  private structBody(write: (t: this) => void): void {
    this.lastField.push(0);
    write(this);
    this.out.byte(0); // stop
    this.lastField.pop();
  }
  private listHeader(id: number, elementType: number, size: number): void {
    this.header(id, T_LIST);
    if (size < 15) {
      this.out.byte((size << 4) | elementType);
    } else {
      this.out.byte(0xf0 | elementType);
      this.out.varint(size);
    }
  }
  listI32(id: number, values: readonly number[]): this {
    this.listHeader(id, T_I32, values.length);
    for (const value of values) this.zigzag(BigInt(value));
    return this;
  }
  listString(id: number, values: readonly string[]): this {
    this.listHeader(id, T_BINARY, values.length);
    for (const value of values) {
      const bytes = Buffer.from(value, 'utf8');
      this.out.varint(bytes.length);
      this.out.bytes(bytes);
    }
    return this;
  }
  listStruct<T>(id: number, items: readonly T[], write: (t: this, item: T) => void): this {
    this.listHeader(id, T_STRUCT, items.length);
    for (const item of items) this.structBody((t) => write(t, item));
    return this;
  }
}

/** RLE/bit-packing hybrid encoding of levels, as RLE runs only, with its 4-byte length prefix. */
function encodeLevels(levels: readonly number[], maxLevel: number): Buffer {
  const bitWidth = Math.ceil(Math.log2(maxLevel + 1));
  const byteWidth = Math.ceil(bitWidth / 8);
  const body = new Bytes();
  for (let i = 0; i < levels.length;) {
    const value = levels[i]!;
    let run = 1;
    while (i + run < levels.length && levels[i + run] === value) run++;
    body.varint(run << 1);
    for (let b = 0; b < byteWidth; b++) body.byte((value >> (8 * b)) & 0xff);
    i += run;
  }
  const out = new Bytes();
  out.uint32le(body.length);
  out.bytes(body.result());
  return out.result();
}

function checkValue(column: ParquetColumn, value: unknown): void {
  const ok =
    column.type === 'string'
      ? typeof value === 'string'
      : column.type === 'boolean'
        ? typeof value === 'boolean'
        : column.type === 'double'
          ? typeof value === 'number'
          : typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
  if (!ok) throw new TypeError(`parquet column ${column.name}: ${String(value)} is not a ${column.type}`);
}

/** PLAIN encoding of non-null values. */
function encodeValues(type: ParquetType, values: readonly unknown[]): Buffer {
  const out = new Bytes();
  switch (type) {
    case 'string':
      for (const value of values) {
        const bytes = Buffer.from(value as string, 'utf8');
        out.uint32le(bytes.length);
        out.bytes(bytes);
      }
      break;
    case 'int32':
      for (const value of values) out.int32le(Number(value));
      break;
    case 'int64':
      for (const value of values) out.int64le(BigInt(value as number | bigint));
      break;
    case 'double':
      for (const value of values) out.doublele(value as number);
      break;
    case 'boolean':
      // Bit-packed, least significant bit first.
      for (let i = 0; i < values.length; i += 8) {
        let byte = 0;
        for (let bit = 0; bit < 8 && i + bit < values.length; bit++) if (values[i + bit]) byte |= 1 << bit;
        out.byte(byte);
      }
      break;
  }
  return out.result();
}

/** One column chunk (a single data page) of `rows`. */
function columnChunk(
  column: ParquetColumn,
  rows: readonly ParquetRow[],
): { page: Buffer; numValues: number } {
  const maxDef = column.list ? 2 : 1;
  const definition: number[] = [];
  const repetition: number[] = [];
  const values: unknown[] = [];
  for (const row of rows) {
    const value = row[column.name];
    if (value === null || value === undefined) {
      definition.push(0);
      repetition.push(0);
    } else if (column.list) {
      if (!Array.isArray(value)) throw new TypeError(`parquet column ${column.name}: expected a list`);
      if (value.length === 0) {
        definition.push(1);
        repetition.push(0);
      }
      value.forEach((element: unknown, index) => {
        checkValue(column, element);
        definition.push(2);
        repetition.push(index === 0 ? 0 : 1);
        values.push(element);
      });
    } else {
      checkValue(column, value);
      definition.push(1);
      repetition.push(0);
      values.push(value);
    }
  }
  const body = new Bytes();
  if (column.list) body.bytes(encodeLevels(repetition, 1));
  body.bytes(encodeLevels(definition, maxDef));
  body.bytes(encodeValues(column.type, values));
  const data = body.result();
  const header = new Thrift();
  header
    .i32(1, PAGE_DATA)
    .i32(2, data.length)
    .i32(3, data.length)
    .struct(5, (t) =>
      t.i32(1, definition.length).i32(2, ENCODING_PLAIN).i32(3, ENCODING_RLE).i32(4, ENCODING_RLE),
    );
  header.out.byte(0); // end of PageHeader
  return { page: Buffer.concat([header.out.result(), data]), numValues: definition.length };
}

interface ChunkMeta {
  column: ParquetColumn;
  offset: number;
  size: number;
  numValues: number;
}

function pathOf(column: ParquetColumn): string[] {
  return column.list ? [column.name, 'list', 'element'] : [column.name];
}

function fileMetadata(
  columns: readonly ParquetColumn[],
  groups: { chunks: ChunkMeta[]; rows: number }[],
): Buffer {
  const t = new Thrift();
  const totalRows = groups.reduce((sum, group) => sum + group.rows, 0);
  t.i32(1, 1);
  // Schema: the root, then each column (a list column is three elements: group, repeated group, element).
  const schema: ((t: Thrift) => void)[] = [
    (s) => {
      s.string(4, 'schema').i32(5, columns.length);
    },
  ];
  for (const column of columns) {
    const leaf = (s: Thrift, name: string, repetition: number): void => {
      s.i32(1, PHYSICAL[column.type]).i32(3, repetition).string(4, name);
      if (column.type === 'string') s.i32(6, CONVERTED_UTF8);
    };
    if (column.list) {
      schema.push((s) => {
        s.i32(3, REPETITION.optional).string(4, column.name).i32(5, 1).i32(6, CONVERTED_LIST);
      });
      schema.push((s) => {
        s.i32(3, REPETITION.repeated).string(4, 'list').i32(5, 1);
      });
      schema.push((s) => leaf(s, 'element', REPETITION.required));
    } else {
      schema.push((s) => leaf(s, column.name, REPETITION.optional));
    }
  }
  t.listStruct(2, schema, (s, write) => write(s));
  t.i64(3, totalRows);
  t.listStruct(4, groups, (g, group) => {
    g.listStruct(1, group.chunks, (c, chunk) => {
      c.i64(2, chunk.offset);
      c.struct(3, (m) => {
        m.i32(1, PHYSICAL[chunk.column.type])
          .listI32(2, [ENCODING_PLAIN, ENCODING_RLE])
          .listString(3, pathOf(chunk.column))
          .i32(4, CODEC_UNCOMPRESSED)
          .i64(5, chunk.numValues)
          .i64(6, chunk.size)
          .i64(7, chunk.size)
          .i64(9, chunk.offset);
      });
    });
    const bytes = group.chunks.reduce((sum, chunk) => sum + chunk.size, 0);
    g.i64(2, bytes).i64(3, group.rows);
    if (group.chunks[0]) g.i64(5, group.chunks[0].offset).i64(6, bytes);
  });
  t.string(6, 'paddock');
  t.out.byte(0); // end of FileMetaData
  return t.out.result();
}

const MAGIC = Buffer.from('PAR1', 'ascii');

/**
 * Writes `rows` to a Parquet file at `path` (replacing it). Every column is nullable.
 * Throws a TypeError when a value does not fit its column's type.
 */
export function writeParquetFile(
  path: string,
  columns: readonly ParquetColumn[],
  rows: Iterable<ParquetRow>,
  options: { rowGroupSize?: number } = {},
): { rows: number; bytes: number } {
  const rowGroupSize = Math.max(1, options.rowGroupSize ?? 512);
  const fd = openSync(path, 'w');
  try {
    let offset = 0;
    const write = (buffer: Buffer): void => {
      writeSync(fd, buffer);
      offset += buffer.length;
    };
    write(MAGIC);
    const groups: { chunks: ChunkMeta[]; rows: number }[] = [];
    let batch: ParquetRow[] = [];
    let total = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      const chunks: ChunkMeta[] = [];
      for (const column of columns) {
        const { page, numValues } = columnChunk(column, batch);
        chunks.push({ column, offset, size: page.length, numValues });
        write(page);
      }
      groups.push({ chunks, rows: batch.length });
      batch = [];
    };
    for (const row of rows) {
      batch.push(row);
      total++;
      if (batch.length >= rowGroupSize) flush();
    }
    flush();
    const metadata = fileMetadata(columns, groups);
    write(metadata);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(metadata.length);
    write(length);
    write(MAGIC);
    return { rows: total, bytes: offset };
  } finally {
    closeSync(fd);
  }
}
