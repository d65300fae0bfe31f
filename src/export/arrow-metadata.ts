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

/** Throws (Error) where `buf`, a file's footer, reads outside itself. */
export function checkFooterMetadata(buf: Uint8Array): void {
  check(buf, footer);
}

function check(buf: Uint8Array, root: TableShape): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const size = buf.byteLength;
  // Distinct tables take at least 4 bytes each: more visits than that mean shared or cyclic ones.
  let visits = 0;
  const need = (at: number, bytes: number, what: string) => {
    if (!(Number.isSafeInteger(at) && at >= 0 && bytes >= 0 && at + bytes <= size)) throw new Error(`flatbuffer ${what} reads ${bytes} bytes at ${at} of ${size}`);
  };
  const target = (at: number, what: string): number => {
    need(at, 4, what);
    return at + view.getUint32(at, true);
  };
  const vectorAt = (at: number, elementBytes: number, what: string): { start: number; count: number } => {
    const v = target(at, what);
    need(v, 4, what);
    const count = view.getUint32(v, true);
    need(v + 4, count * elementBytes, what);
    return { start: v + 4, count };
  };
  const table = (pos: number, shapeOf: TableShape, depth: number): void => {
    if (depth > MAX_DEPTH) throw new Error(`flatbuffer tables nested deeper than ${MAX_DEPTH}`);
    if (++visits > size / 4) throw new Error('flatbuffer tables shared or cyclic');
    need(pos, 4, 'table');
    const vtable = pos - view.getInt32(pos, true);
    need(vtable, 4, 'vtable');
    const vtableBytes = view.getUint16(vtable, true);
    const tableBytes = view.getUint16(vtable + 2, true);
    need(vtable, vtableBytes, 'vtable');
    need(pos, tableBytes, 'table');
    const offsetOf = (n: number): number => (4 + 2 * n + 2 <= vtableBytes ? view.getUint16(vtable + 4 + 2 * n, true) : 0);
    for (const [n, kind] of shapeOf.fields) {
      const off = offsetOf(n);
      if (off === 0) continue;
      if (off + 4 > tableBytes) throw new Error(`flatbuffer field ${n} lies outside its table`);
      const at = pos + off;
      if ('table' in kind) table(target(at, 'table'), kind.table, depth + 1);
      else if ('tables' in kind) {
        const { start, count } = vectorAt(at, 4, 'vector of tables');
        for (let i = 0; i < count; i++) table(target(start + 4 * i, 'table'), kind.tables, depth + 1);
      } else if ('structs' in kind) vectorAt(at, kind.structs, 'vector');
      else if ('string' in kind) vectorAt(at, 1, 'string');
      else {
        const typeOff = offsetOf(n - 1);
        const type = typeOff === 0 ? 0 : (need(pos + typeOff, 1, 'union type'), view.getUint8(pos + typeOff));
        table(target(at, 'union'), kind.union.get(type) ?? shape([]), depth + 1);
      }
    }
  };
  table(target(0, 'root'), root, 0);
}
