import type * as Arrow from 'apache-arrow';
import type { Metric } from '../options.js';
import type { StoredRecord } from '../memstore.js';
import { NOT_UTF8, type ImportRow } from './rows.js';

/** Schema metadata keys an export writes: what `import` restores unless told otherwise. */
export const METRIC_KEY = 'memstore.metric';
export const DIM_KEY = 'memstore.dim';

/** The schema of an export (EXPORT.md): id, vector (FixedSizeList<float32>[dim]), text, meta (JSON text). */
export function exportSchema(arrow: typeof Arrow, dim: number, metric: Metric): Arrow.Schema {
  const vector = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), false));
  return new arrow.Schema(
    [new arrow.Field('id', new arrow.Utf8(), false), new arrow.Field('vector', vector, false), new arrow.Field('text', new arrow.Utf8(), true), new arrow.Field('meta', new arrow.Utf8(), true)],
    new Map([
      [METRIC_KEY, metric],
      [DIM_KEY, String(dim)],
    ]),
  );
}

/** One record batch of `records` under `schema` (exportSchema); zero records make an empty batch of that schema. */
export function batchOf(arrow: typeof Arrow, schema: Arrow.Schema, records: readonly StoredRecord[]): Arrow.RecordBatch {
  const vectorType = schema.fields[1]!.type as Arrow.FixedSizeList<Arrow.Float32>;
  const dim = vectorType.listSize;
  const flat = new Float32Array(records.length * dim);
  records.forEach((r, i) => flat.set(r.vector, i * dim));
  const child = arrow.makeData({ type: new arrow.Float32(), length: flat.length, data: flat });
  const vectors = arrow.makeData({ type: vectorType, length: records.length, nullCount: 0, child });
  // vectorFromArray builds one chunk (no high-water mark is set).
  const strings = (values: (string | null)[]) => arrow.vectorFromArray(values, new arrow.Utf8()).data[0]!;
  const children = [strings(records.map((r) => r.id)), vectors, strings(records.map((r) => r.text ?? null)), strings(records.map((r) => (r.meta === undefined ? null : JSON.stringify(r.meta))))];
  return new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length: records.length, nullCount: 0, children }));
}

/**
 * The strings of a Utf8 column (or a dictionary of them), decoded here: Arrow's own decoder drops a
 * byte-order mark at the start of a value (TextDecoder's default), so an id or text beginning with
 * U+FEFF would come back without it; and it replaces bytes that are not UTF-8, so two different bad
 * ids became the same "\uFFFDa" and one row replaced the other (a hostile pass; JSONL refused
 * them). A value that is not UTF-8 is NOT_UTF8, which recordOf() refuses naming its row. Other
 * string-like columns (binary) are read as Arrow reads them.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodedOr(bytes: Uint8Array): string | typeof NOT_UTF8 {
  try {
    return utf8.decode(bytes);
  } catch {
    return NOT_UTF8;
  }
}

function isStrings(arrow: typeof Arrow, type: Arrow.DataType): boolean {
  return arrow.DataType.isUtf8(type) || arrow.DataType.isLargeUtf8(type);
}

/** Cell i of one chunk of Utf8 or LargeUtf8 data: its string, NOT_UTF8, or null. */
function stringCells(data: Arrow.Data): (i: number) => unknown {
  const offsets = data.valueOffsets as Int32Array | BigInt64Array;
  const values = data.values as Uint8Array;
  return (i) => (data.getValid(i) ? decodedOr(values.subarray(Number(offsets[i]), Number(offsets[i + 1]))) : null);
}

function cellsOf(arrow: typeof Arrow, column: Arrow.Vector | null): (i: number) => unknown {
  if (column === null) return () => undefined;
  const data = column.data[0];
  if (column.data.length === 1 && data !== undefined && isStrings(arrow, data.type)) return stringCells(data);
  const dictionary = column.data.length === 1 && data !== undefined && arrow.DataType.isDictionary(data.type) ? data.dictionary : undefined;
  if (data !== undefined && dictionary !== undefined && dictionary.data.length === 1 && isStrings(arrow, dictionary.type)) {
    const words = stringCells(dictionary.data[0]!);
    const keys = data.values as ArrayLike<number | bigint>;
    return (i) => (data.getValid(i) ? words(Number(keys[i])) : null);
  }
  return (i) => column.get(i) as unknown;
}

/**
 * A vector cell as import hands it to `add`: its values as a typed array, or, when some are null
 * (a nullable item field), as a list with those nulls, which `add` refuses (INVALID_VECTOR) rather
 * than reading them as the zeros under them; 64-bit integers as numbers; float16 decoded (its
 * typed array holds the raw half-precision bits).
 */
function vectorOf(arrow: typeof Arrow, v: unknown): unknown {
  if (v === null || typeof v !== 'object' || !('toArray' in v)) return v;
  const list = v as Arrow.Vector;
  // Numbers only: dates and timestamps had come in as their milliseconds (a hostile pass). Handed
  // on as text, which `add` refuses (INVALID_VECTOR) as it refuses a list of strings.
  if (!arrow.DataType.isInt(list.type) && !arrow.DataType.isFloat(list.type)) return Array.from(list, (x: unknown) => String(x));
  if (list.nullCount > 0) return Array.from(list, (x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
  if (arrow.DataType.isFloat(list.type) && list.type.precision === arrow.Precision.HALF) return Float32Array.from(list as Arrow.Vector<Arrow.Float16>);
  const values = list.toArray() as unknown;
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) return Float32Array.from(values, Number);
  return values;
}

/** The rows of an Arrow record batch as import reads them: columns by name, missing ones undefined. */
export function* rowsOf(arrow: typeof Arrow, batch: Arrow.RecordBatch): IterableIterator<ImportRow> {
  const ids = cellsOf(arrow, batch.getChild('id'));
  const vectors = batch.getChild('vector');
  const texts = cellsOf(arrow, batch.getChild('text'));
  const metas = cellsOf(arrow, batch.getChild('meta'));
  for (let i = 0; i < batch.numRows; i++) {
    yield {
      id: ids(i),
      vector: vectorOf(arrow, vectors?.get(i)),
      text: texts(i),
      meta: metas(i),
      metaIsJson: true,
    };
  }
}
