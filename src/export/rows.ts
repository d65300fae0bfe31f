import { MemstoreError } from '../errors.js';
import type { MemoryRecord } from '../memstore.js';

/** A row as a file holds it, before it is checked: what import hands to `add`. */
export interface ImportRow {
  readonly id: unknown;
  readonly vector: unknown;
  readonly text?: unknown;
  /** The metadata: JSON text (Arrow and Parquet) or a parsed object (JSONL); null or undefined: none. */
  readonly meta?: unknown;
  readonly metaIsJson: boolean;
  /** The JSONL line it is on, from 1 (blank lines are not rows, so rows and lines part): messages name both. */
  readonly line?: number;
}

/** A string cell of an Arrow or Parquet file whose bytes are not UTF-8 (arrow-batches.ts): recordOf() refuses its row. */
export const NOT_UTF8: unique symbol = Symbol('not UTF-8');

/** How a message names row `n` (from 0, counting records), with its JSONL line where it has one. */
export function rowLabel(n: number, line: number | undefined): string {
  return line === undefined ? `row ${n}` : `row ${n} (line ${line})`;
}

/**
 * The record `row` (number `n` of `file`, from 0) stands for. The shapes a file can get wrong are
 * refused here (INVALID_ARGUMENT naming the row); what `add` checks (ids, vectors, metadata) it
 * checks, and import names the row of its error.
 */
export function recordOf(row: ImportRow, file: string, n: number): MemoryRecord {
  const bad = (what: string) => new MemstoreError('INVALID_ARGUMENT', `${file}: ${rowLabel(n, row.line)}: ${what}`, { file, offset: n, field: `row ${n}` });
  for (const column of ['id', 'text', 'meta'] as const) if (row[column] === NOT_UTF8) throw bad(`${column} is not valid UTF-8 (a string column must be)`);
  const vector = row.vector;
  let v: Float32Array | number[];
  if (vector instanceof Float32Array) v = vector;
  else if (ArrayBuffer.isView(vector) && !(vector instanceof DataView) && typeof (vector as unknown as ArrayLike<unknown>)[0] !== 'bigint') v = Float32Array.from(vector as unknown as ArrayLike<number>);
  else if (Array.isArray(vector)) v = vector as number[];
  else throw bad('vector must be a list of numbers');
  const record: MemoryRecord = { id: row.id as string, vector: v };
  if (row.text !== undefined && row.text !== null) {
    if (typeof row.text !== 'string') throw bad('text must be a string or null');
    record.text = row.text;
  }
  if (row.meta !== undefined && row.meta !== null) {
    if (row.metaIsJson) {
      if (typeof row.meta !== 'string') throw bad('meta must be JSON text or null');
      try {
        record.meta = JSON.parse(row.meta) as Record<string, unknown>;
      } catch (e) {
        throw new MemstoreError('INVALID_ARGUMENT', `${file}: ${rowLabel(n, row.line)}: meta is not JSON`, { cause: e, file, offset: n, field: `row ${n}` });
      }
    } else {
      record.meta = row.meta as Record<string, unknown>;
    }
  }
  return record;
}
