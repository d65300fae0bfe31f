import { fieldOf, readStruct, T_I16, T_LIST, T_STRUCT, ThriftError, writeStruct, type ThriftField, type ThriftList, type ThriftStruct } from './thrift-compact.js';

/**
 * The footer of a Parquet file (apache/parquet-format, "File Format"), as parquet-writer.ts and
 * parquet-reader.ts move row groups between files:
 *
 *     "PAR1" row-group-bytes... footer length(footer):u32le "PAR1"
 *
 * The footer is a FileMetaData struct in the Thrift compact protocol (thrift-compact.ts). Every
 * place in it that names a byte of the file is an absolute offset: RowGroup `file_offset` (5);
 * ColumnChunk `file_offset` (2), `offset_index_offset` (4), `column_index_offset` (6); ColumnMetaData
 * `data_page_offset` (9), `index_page_offset` (10), `dictionary_page_offset` (11),
 * `bloom_filter_offset` (14). Bytes moved by `shift` move each of these by `shift`; every other
 * field (statistics, encodings, sizes, the schema, key-value metadata) says nothing of where bytes
 * lie and is kept as read.
 */

export const MAGIC = Buffer.from('PAR1', 'latin1');

/**
 * The most values (thrift-compact.ts, readStruct()) a footer is read with: about 100 MB of heap at
 * most. memstore's own footers take about 100 values a row group (10,000 row groups: 41 million
 * rows); a file with more is refused rather than read at any cost.
 */
export const FOOTER_MAX_VALUES = 1 << 20;

/** The longest footer read: past it, the values would run out first anyway. */
export const FOOTER_MAX_BYTES = 64 << 20;

// FileMetaData
export const SCHEMA = 2;
export const NUM_ROWS = 3;
export const ROW_GROUPS = 4;
// RowGroup
const RG_COLUMNS = 1;
const RG_NUM_ROWS = 3;
const RG_FILE_OFFSET = 5;
const RG_ORDINAL = 7;
// ColumnChunk
const CC_FILE_OFFSET = 2;
const CC_META = 3;
const CC_OFFSET_INDEX_OFFSET = 4;
const CC_COLUMN_INDEX_OFFSET = 6;
/** A ColumnChunk's offset index and column index: offset, length, offset, length. */
const CC_PAGE_INDEXES = new Set([4, 5, 6, 7]);
// ColumnMetaData
const CM_NUM_VALUES = 5;
const CM_TOTAL_COMPRESSED_SIZE = 7;
const CM_DATA_PAGE_OFFSET = 9;
const CM_INDEX_PAGE_OFFSET = 10;
const CM_DICTIONARY_PAGE_OFFSET = 11;
const CM_BLOOM_FILTER_OFFSET = 14;
const CM_BLOOM_FILTER_LENGTH = 15;

/** The footer of a Parquet file from its last `tail` bytes (which must hold the whole footer), and where the footer starts in the file of `size` bytes. */
export function footerIn(tail: Uint8Array, size: number): { footer: ThriftStruct; start: number } {
  const n = tail.length;
  if (size < 12 || n < 8 || Buffer.compare(tail.subarray(n - 4), MAGIC) !== 0) throw new ThriftError('parquet: no magic at the end');
  const length = Buffer.from(tail.buffer, tail.byteOffset + n - 8, 4).readUInt32LE(0);
  const start = size - 8 - length;
  if (start < MAGIC.length) throw new ThriftError('parquet: a footer longer than its file');
  if (length > n - 8) throw new ThriftError(`parquet: a footer of ${length} bytes, more than the ${n - 8} read`);
  const { struct, end } = readStruct(tail, n - 8 - length, FOOTER_MAX_VALUES);
  if (end !== n - 8) throw new ThriftError('parquet: a footer that does not end at its length');
  return { footer: struct, start };
}

/** The row groups of `footer` (none when it lists none). */
export function rowGroupsOf(footer: ThriftStruct): ThriftStruct[] {
  const groups = fieldOf(footer, ROW_GROUPS)?.value;
  if (groups === undefined) return [];
  if (!isList(groups) || !groups.items.every(isStruct)) throw new ThriftError('parquet: row groups that are not a list of structs');
  return groups.items as ThriftStruct[];
}

/** The column chunks of row group `g`. */
export function columnsOf(g: ThriftStruct): ThriftStruct[] {
  const columns = fieldOf(g, RG_COLUMNS)?.value;
  if (columns === undefined) return [];
  if (!isList(columns) || !columns.items.every(isStruct)) throw new ThriftError('parquet: column chunks that are not a list of structs');
  return columns.items as ThriftStruct[];
}

function isList(v: unknown): v is ThriftList {
  return typeof v === 'object' && v !== null && 'kind' in v && v.kind === 'list';
}

function isStruct(v: unknown): v is ThriftStruct {
  return typeof v === 'object' && v !== null && 'kind' in v && v.kind === 'struct';
}

function moveField(s: ThriftStruct, id: number, shift: bigint): void {
  const f = fieldOf(s, id);
  // 0 is no place (the magic is there): writers put it where they have none to give, such as
  // parquet-wasm in every ColumnChunk's deprecated file_offset.
  if (f !== undefined && typeof f.value === 'bigint' && f.value > 0n) f.value += shift;
}

/**
 * The rows of row group `g` (number `i` of its file) and the bytes its column chunks take, `[start,
 * end)`: each chunk from its dictionary page when it has one (or an index page), else its first data
 * page, for its `total_compressed_size` bytes. They must lie in the file's body, between the leading
 * magic and `footerStart`; anything else is a ThriftError.
 */
export function rowGroupRange(g: ThriftStruct, i: number, footerStart: number): { rows: number; start: number; end: number; chunks: { start: number; end: number }[] } {
  const rows = safeNumber(fieldOf(g, RG_NUM_ROWS)?.value, `row group ${i}: its rows`);
  let start = Infinity;
  let end = -Infinity;
  const chunks: { start: number; end: number }[] = [];
  const columns = columnsOf(g);
  if (columns.length === 0) throw new ThriftError(`parquet: row group ${i} has no column chunk`);
  for (const column of columns) {
    const meta = fieldOf(column, CC_META)?.value as ThriftStruct | undefined;
    if (meta?.kind !== 'struct') throw new ThriftError(`parquet: a column chunk of row group ${i} without its metadata (a chunk in another file)`);
    let first = safeNumber(fieldOf(meta, CM_DATA_PAGE_OFFSET)?.value, `row group ${i}: a data page's offset`);
    for (const id of [CM_DICTIONARY_PAGE_OFFSET, CM_INDEX_PAGE_OFFSET]) {
      const at = fieldOf(meta, id)?.value;
      if (typeof at === 'bigint' && at > 0n) first = Math.min(first, safeNumber(at, `row group ${i}: a page's offset`));
    }
    const last = first + safeNumber(fieldOf(meta, CM_TOTAL_COMPRESSED_SIZE)?.value, `row group ${i}: a column chunk's size`);
    chunks.push({ start: first, end: last });
    start = Math.min(start, first);
    end = Math.max(end, last);
    // Every row is at least one value of every column (a null, an empty list): a reader trusts the
    // footer's count, and a row group that said 0 rows over pages of thousands was read as empty.
    const values = safeNumber(fieldOf(meta, CM_NUM_VALUES)?.value, `row group ${i}: a column chunk's values`);
    if (rows === 0 ? values !== 0 : values < rows) throw new ThriftError(`parquet: row group ${i} says ${rows} rows, and a column chunk of it ${values} values`);
  }
  if (!(start >= MAGIC.length && start < end && end <= footerStart)) throw new ThriftError(`parquet: row group ${i} lies at [${start}, ${end}), outside the file's body [4, ${footerStart})`);
  return { rows, start, end, chunks };
}

/** `v` as a number: a bigint in [0, 2^53). */
export function safeNumber(v: unknown, what: string): number {
  if (typeof v !== 'bigint' || v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ThriftError(`parquet: ${what} is ${String(v)}`);
  return Number(v);
}

/**
 * Moves every absolute offset in row group `g` by `shift`, in place, and numbers it `ordinal` where
 * it has an ordinal (an i16: past it, the optional field goes; only decryption reads it).
 */
export function moveRowGroup(g: ThriftStruct, shift: bigint, ordinal: number): void {
  moveField(g, RG_FILE_OFFSET, shift);
  const at = g.fields.findIndex((f) => f.id === RG_ORDINAL);
  if (at >= 0) {
    if (ordinal <= 0x7fff) g.fields[at] = { id: RG_ORDINAL, type: T_I16, value: BigInt(ordinal) };
    else g.fields.splice(at, 1);
  }
  for (const c of columnsOf(g)) {
    moveField(c, CC_FILE_OFFSET, shift);
    moveField(c, CC_OFFSET_INDEX_OFFSET, shift);
    moveField(c, CC_COLUMN_INDEX_OFFSET, shift);
    const meta = fieldOf(c, CC_META)?.value as ThriftStruct | undefined;
    if (meta !== undefined) for (const id of [CM_DATA_PAGE_OFFSET, CM_INDEX_PAGE_OFFSET, CM_DICTIONARY_PAGE_OFFSET, CM_BLOOM_FILTER_OFFSET]) moveField(meta, id, shift);
  }
}

/**
 * Drops from row group `g`, in place, what points outside its own column chunks: the page indexes
 * and bloom filters, which a file keeps after all its row groups. A reader goes without them (they
 * only let it skip pages). Moved with the row group, they would not do: an offset index lists its
 * pages by absolute offsets of its own (a hostile pass found each row group's past the first
 * pointing into the first's, and parquet-wasm's asynchronous reader trapped on them).
 */
export function dropOutsideParts(g: ThriftStruct): void {
  for (const c of columnsOf(g)) {
    c.fields.splice(0, c.fields.length, ...c.fields.filter((f) => !CC_PAGE_INDEXES.has(f.id)));
    const meta = fieldOf(c, CC_META)?.value as ThriftStruct | undefined;
    if (meta !== undefined) meta.fields.splice(0, meta.fields.length, ...meta.fields.filter((f) => f.id !== CM_BLOOM_FILTER_OFFSET && f.id !== CM_BLOOM_FILTER_LENGTH));
  }
}

/** The bytes that end a file whose footer is `footer` with `rows` rows in `groups`: footer, its length, the magic. */
export function endOf(footer: ThriftStruct, groups: ThriftStruct[], rows: bigint): Uint8Array {
  const fields = footer.fields.map((f): ThriftField => {
    if (f.id === NUM_ROWS) return { id: f.id, type: f.type, value: rows };
    if (f.id === ROW_GROUPS) return { id: f.id, type: T_LIST, value: { kind: 'list', container: T_LIST, elementType: T_STRUCT, items: groups } satisfies ThriftList };
    return f;
  });
  const bytes = writeStruct({ kind: 'struct', fields });
  const out = Buffer.alloc(bytes.length + 8);
  out.set(bytes, 0);
  out.writeUInt32LE(bytes.length, bytes.length);
  MAGIC.copy(out, bytes.length + 4);
  return out;
}
