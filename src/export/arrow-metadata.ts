/**
 * Bounds of an Arrow IPC message's or footer's flatbuffer metadata (`Message.fbs`, `Schema.fbs`,
 * `File.fbs`), checked before `apache-arrow` decodes it: its decoder takes each vector's length as
 * written, so one flipped bit in a schema's field count made it loop over billions of children
 * (a fuzz of single flipped bits, EXPORT.md "Reading an Arrow file"). Here every table, vector and
 * string the decoder reads is checked to lie inside the buffer, so its loops are bounded by the
 * buffer's size; nesting deeper than MAX_DEPTH and more tables than the buffer could hold
 * (a shared or cyclic reference) are refused too. Scalars are not checked: a wrong one is read as
 * a wrong value, which the import's row checks or apache-arrow's own refuse.
 */

/** How a field of a table is laid out, for the fields the decoder follows. */
type Kind =
  | { readonly table: TableShape }
  | { readonly tables: TableShape }
  | { readonly structs: number }
  | { readonly string: true }
  /** A union's value: its type is the ubyte field just before it; `members` maps a type to its table (others: any table). */
  | { readonly union: ReadonlyMap<number, TableShape> };

/** A table's followed fields, by field number. */
interface TableShape {
  readonly fields: ReadonlyMap<number, Kind>;
}

/** Deeper than any schema a writer makes (Arrow C++ refuses types nested past 64), and a bound on this walk's recursion. */
const MAX_DEPTH = 256;

const shape = (fields: [number, Kind][]): TableShape => ({ fields: new Map(fields) });
const keyValue = shape([
  [0, { string: true }],
  [1, { string: true }],
]);
/** Union (`Type` 14): its `typeIds` vector of int32; other types' tables hold scalars alone. */
const unionType = shape([[1, { structs: 4 }]]);
const dictionaryEncoding = shape([[1, { table: shape([]) }]]);
/** `Field`: its children are Fields again, so its map is filled once it exists. */
const field: { readonly fields: Map<number, Kind> } = { fields: new Map() };
field.fields
  .set(0, { string: true })
  .set(3, { union: new Map([[14, unionType]]) })
  .set(4, { table: dictionaryEncoding })
  .set(5, { tables: field })
  .set(6, { tables: keyValue });
const schema = shape([
  [1, { tables: field }],
  [2, { tables: keyValue }],
  [3, { structs: 8 }],
]);
const recordBatch = shape([
  [1, { structs: 16 }],
  [2, { structs: 16 }],
  [3, { table: shape([]) }],
  [4, { structs: 8 }],
]);
const dictionaryBatch = shape([[1, { table: recordBatch }]]);
/** `Message`: its header (field 2) a union of Schema 1, DictionaryBatch 2, RecordBatch 3 (others any table). */
const message = shape([
  [2, { union: new Map([[1, schema], [2, dictionaryBatch], [3, recordBatch]]) }],
  [4, { tables: keyValue }],
]);
/** `Footer`: a schema, and vectors of 24-byte Block structs. */
const footer = shape([
  [1, { table: schema }],
  [2, { structs: 24 }],
  [3, { structs: 24 }],
  [4, { tables: keyValue }],
]);

/** Throws (Error) where `buf`, a message's metadata, reads outside itself. */
export function checkMessageMetadata(buf: Uint8Array): void {
  check(buf, message);
}

/**
 * The offsets of the dictionary and record batch blocks a file's footer names (its fields 2 and 3,
 * vectors of 24-byte Block structs whose first field is the offset), once the whole footer was
 * checked; throws (Error) where it reads outside itself.
 */
export function footerBlockOffsets(buf: Uint8Array): { dictionaries: number[]; recordBatches: number[] } {
  check(buf, footer);
  const flat = new Flatbuffer(buf);
  const root = flat.table(flat.target(0, 'root'));
  const offsets = (field: number): number[] => {
    const at = root.fieldAt(field, 4);
    if (at === undefined) return [];
    const { start, count } = flat.vector(at, BLOCK_BYTES, 'vector');
    return Array.from({ length: count }, (_, i) => Number(flat.view.getBigInt64(start + i * BLOCK_BYTES, true)));
  };
  return { dictionaries: offsets(2), recordBatches: offsets(3) };
}

/** A footer's Block struct: offset int64, metaDataLength int32, padding, bodyLength int64. */
const BLOCK_BYTES = 24;

/** Reads of a flatbuffer, each checked to lie inside it. */
class Flatbuffer {
  readonly view: DataView;
  readonly size: number;

  constructor(buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.size = buf.byteLength;
  }

  need(at: number, bytes: number, what: string): void {
    if (!(Number.isSafeInteger(at) && at >= 0 && bytes >= 0 && at + bytes <= this.size)) throw new Error(`flatbuffer ${what} reads ${bytes} bytes at ${at} of ${this.size}`);
  }

  /** Where the offset stored at `at` points. */
  target(at: number, what: string): number {
    this.need(at, 4, what);
    return at + this.view.getUint32(at, true);
  }

  /** The vector an offset at `at` points to: where its elements start, and how many. */
  vector(at: number, elementBytes: number, what: string): { start: number; count: number } {
    const v = this.target(at, what);
    this.need(v, 4, what);
    const count = this.view.getUint32(v, true);
    this.need(v + 4, count * elementBytes, what);
    return { start: v + 4, count };
  }

  /**
   * The table at `pos`: where its field `n` lies (undefined when absent), and, given `bytes`, only
   * if that many bytes of it lie inside the table.
   */
  table(pos: number): { fieldAt(n: number, bytes?: number): number | undefined } {
    this.need(pos, 4, 'table');
    const vtable = pos - this.view.getInt32(pos, true);
    this.need(vtable, 4, 'vtable');
    const vtableBytes = this.view.getUint16(vtable, true);
    const tableBytes = this.view.getUint16(vtable + 2, true);
    this.need(vtable, vtableBytes, 'vtable');
    this.need(pos, tableBytes, 'table');
    return {
      fieldAt: (n, bytes) => {
        const off = 4 + 2 * n + 2 <= vtableBytes ? this.view.getUint16(vtable + 4 + 2 * n, true) : 0;
        if (off === 0) return undefined;
        if (bytes !== undefined && off + bytes > tableBytes) throw new Error(`flatbuffer field ${n} lies outside its table`);
        return pos + off;
      },
    };
  }
}

function check(buf: Uint8Array, root: TableShape): void {
  const flat = new Flatbuffer(buf);
  // Distinct tables take at least 4 bytes each: more visits than that mean shared or cyclic ones.
  let visits = 0;
  const table = (pos: number, shapeOf: TableShape, depth: number): void => {
    if (depth > MAX_DEPTH) throw new Error(`flatbuffer tables nested deeper than ${MAX_DEPTH}`);
    if (++visits > flat.size / 4) throw new Error('flatbuffer tables shared or cyclic');
    const t = flat.table(pos);
    for (const [n, kind] of shapeOf.fields) {
      // Every followed field is an offset (4 bytes) to a table, vector or string.
      const at = t.fieldAt(n, 4);
      if (at === undefined) continue;
      if ('table' in kind) table(flat.target(at, 'table'), kind.table, depth + 1);
      else if ('tables' in kind) {
        const { start, count } = flat.vector(at, 4, 'vector of tables');
        for (let i = 0; i < count; i++) table(flat.target(start + 4 * i, 'table'), kind.tables, depth + 1);
      } else if ('structs' in kind) flat.vector(at, kind.structs, 'vector');
      else if ('string' in kind) flat.vector(at, 1, 'string');
      else {
        const typeAt = t.fieldAt(n - 1);
        const type = typeAt === undefined ? 0 : (flat.need(typeAt, 1, 'union type'), flat.view.getUint8(typeAt));
        table(flat.target(at, 'union'), kind.union.get(type) ?? shape([]), depth + 1);
      }
    }
  };
  table(flat.target(0, 'root'), root, 0);
}
