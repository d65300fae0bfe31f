import type { FileHandle } from 'node:fs/promises';
import { fieldOf, readStruct, T_I16, T_LIST, T_STRUCT, ThriftError, writeStruct, type ThriftField, type ThriftList, type ThriftStruct } from './thrift-compact.js';

/**
 * One Parquet file written a row group at a time, from whole Parquet files of one row group each
 * (what parquet-wasm's `writeParquet` makes of one record batch): each part's row group bytes
 * (its column chunks, and the column and offset indexes behind them) are appended to the file as
 * soon as they are encoded, and only the part's footer is kept, its offsets moved to where the
 * bytes now lie. `finish()` writes one footer for them all. parquet-wasm's own streaming writer
 * (`transformParquetStream`, 0.8.0) held the whole encoded file in its WebAssembly memory until the
 * last batch, so an export held the store's size in memory and could not pass 4 GiB (EXPORT.md).
 *
 * A Parquet file (apache/parquet-format, "File Format"):
 *
 *     "PAR1" row-group-bytes... footer length(footer):u32le "PAR1"
 *
 * Every place in the footer that names a byte of the file is an absolute offset: ColumnChunk
 * `file_offset` (2), `offset_index_offset` (4), `column_index_offset` (6); ColumnMetaData
 * `data_page_offset` (9), `index_page_offset` (10), `dictionary_page_offset` (11),
 * `bloom_filter_offset` (14); RowGroup `file_offset` (5). Moving a part's bytes by `shift` adds
 * `shift` to each of them; RowGroup `ordinal` (7) becomes the row group's place in the whole file.
 * The other fields (statistics, encodings, sizes, the schema and key-value metadata) say nothing of
 * where bytes lie and are kept as they were read.
 */
export class ParquetRowGroupWriter {
  /** Where the next part's bytes go. */
  private at = 0;
  private readonly rowGroups: ThriftStruct[] = [];
  private rows = 0n;
  /** The first part's footer: its schema, key-value metadata, writer and column orders stand for the whole file. */
  private first: ThriftStruct | undefined;
  private firstSchema: Uint8Array | undefined;

  constructor(private readonly handle: FileHandle) {}

  /** Appends the row groups of `part`, a whole Parquet file with the schema of every other part. */
  async add(part: Uint8Array): Promise<void> {
    const footer = footerOf(part);
    if (this.at === 0) await this.write(MAGIC);
    const schema = fieldOf(footer, SCHEMA);
    const schemaBytes = schema === undefined ? new Uint8Array(0) : writeStruct({ kind: 'struct', fields: [schema] });
    if (this.first === undefined) {
      this.first = footer;
      this.firstSchema = schemaBytes;
    } else if (Buffer.compare(schemaBytes, this.firstSchema!) !== 0) {
      throw new ThriftError('parquet: a part with another schema than the first');
    }
    // The part's bytes after its leading magic land at `this.at`.
    const shift = BigInt(this.at - MAGIC.length);
    const body = part.subarray(MAGIC.length, part.length - footer.bytes - 8);
    const groups = fieldOf(footer, ROW_GROUPS)?.value as ThriftList | undefined;
    for (const group of groups?.items ?? []) {
      const g = group as ThriftStruct;
      moveOffsets(g, shift, this.rowGroups.length);
      this.rowGroups.push(g);
    }
    const rows = fieldOf(footer, NUM_ROWS)?.value;
    if (typeof rows === 'bigint') this.rows += rows;
    await this.write(body);
  }

  /** Writes the footer of every part added, and the closing magic. At least one part must have been added. */
  async finish(): Promise<void> {
    if (this.first === undefined) throw new ThriftError('parquet: no part to write');
    const fields = this.first.fields.map((f): ThriftField => {
      if (f.id === NUM_ROWS) return { id: f.id, type: f.type, value: this.rows };
      if (f.id === ROW_GROUPS) return { id: f.id, type: T_LIST, value: { kind: 'list', container: T_LIST, elementType: T_STRUCT, items: this.rowGroups } satisfies ThriftList };
      return f;
    });
    const footer = writeStruct({ kind: 'struct', fields });
    const length = Buffer.alloc(4);
    length.writeUInt32LE(footer.length);
    await this.write(footer);
    await this.write(length);
    await this.write(MAGIC);
  }

  private async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.at + done);
      done += bytesWritten;
    }
    this.at += bytes.length;
  }
}

const MAGIC = Buffer.from('PAR1', 'latin1');

// FileMetaData
const SCHEMA = 2;
const NUM_ROWS = 3;
const ROW_GROUPS = 4;
// RowGroup
const RG_COLUMNS = 1;
const RG_FILE_OFFSET = 5;
const RG_ORDINAL = 7;
// ColumnChunk
const CC_FILE_OFFSET = 2;
const CC_META = 3;
const CC_OFFSET_INDEX_OFFSET = 4;
const CC_COLUMN_INDEX_OFFSET = 6;
// ColumnMetaData
const CM_OFFSETS = [9, 10, 11, 14];

/** The footer of a whole Parquet file `part`, with its length in bytes. */
function footerOf(part: Uint8Array): ThriftStruct & { readonly bytes: number } {
  const n = part.length;
  if (n < 12 || Buffer.compare(part.subarray(0, 4), MAGIC) !== 0 || Buffer.compare(part.subarray(n - 4), MAGIC) !== 0) throw new ThriftError('parquet: a part without its magic at both ends');
  const bytes = Buffer.from(part.buffer, part.byteOffset + n - 8, 4).readUInt32LE(0);
  const start = n - 8 - bytes;
  if (start < 4) throw new ThriftError('parquet: a footer longer than its part');
  const { struct, end } = readStruct(part, start);
  if (end !== n - 8) throw new ThriftError('parquet: a footer that does not end at its length');
  return { ...struct, bytes };
}

function moveField(s: ThriftStruct, id: number, shift: bigint): void {
  const f = fieldOf(s, id);
  if (f !== undefined && typeof f.value === 'bigint') f.value += shift;
}

/** Moves every absolute offset in row group `g` by `shift`, and numbers it `ordinal`. */
function moveOffsets(g: ThriftStruct, shift: bigint, ordinal: number): void {
  moveField(g, RG_FILE_OFFSET, shift);
  const at = g.fields.findIndex((f) => f.id === RG_ORDINAL);
  if (at >= 0) {
    // An i16: past it, no ordinal (it is optional, read only by decryption).
    if (ordinal <= 0x7fff) g.fields[at] = { id: RG_ORDINAL, type: T_I16, value: BigInt(ordinal) };
    else g.fields.splice(at, 1);
  }
  const columns = fieldOf(g, RG_COLUMNS)?.value as ThriftList | undefined;
  for (const column of columns?.items ?? []) {
    const c = column as ThriftStruct;
    moveField(c, CC_FILE_OFFSET, shift);
    moveField(c, CC_OFFSET_INDEX_OFFSET, shift);
    moveField(c, CC_COLUMN_INDEX_OFFSET, shift);
    const meta = fieldOf(c, CC_META)?.value as ThriftStruct | undefined;
    if (meta !== undefined) for (const id of CM_OFFSETS) moveField(meta, id, shift);
  }
}
