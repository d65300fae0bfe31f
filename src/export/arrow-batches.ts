import type * as Arrow from 'apache-arrow';
import type { Metric } from '../options.js';
import type { StoredRecord } from '../memstore.js';
import type { ImportRow } from './rows.js';

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

/** The rows of an Arrow record batch as import reads them: columns by name, missing ones undefined. */
export function* rowsOf(batch: Arrow.RecordBatch): IterableIterator<ImportRow> {
  const ids = batch.getChild('id');
  const vectors = batch.getChild('vector');
  const texts = batch.getChild('text');
  const metas = batch.getChild('meta');
  for (let i = 0; i < batch.numRows; i++) {
    const v: unknown = vectors?.get(i);
    yield {
      id: ids?.get(i) as unknown,
      vector: v !== null && typeof v === 'object' && 'toArray' in v ? (v as { toArray(): unknown }).toArray() : v,
      text: texts?.get(i) as unknown,
      meta: metas?.get(i) as unknown,
      metaIsJson: true,
    };
  }
}
