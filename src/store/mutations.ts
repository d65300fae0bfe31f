import { Packr } from 'msgpackr';
import { MemstoreError } from '../errors.js';
import { checkId, checkText, checkVector, type CheckedRecord } from '../input.js';
import { parseMeta } from '../meta.js';

/** What one WAL record holds: a whole add batch or a whole delete batch, so a batch is atomic. */
export type Mutation = { readonly kind: 'add'; readonly records: readonly CheckedRecord[] } | { readonly kind: 'delete'; readonly ids: readonly string[] };

/** How many records `m` could add to a store, at most: an add's (an upsert counted as one), none for a delete. */
export function recordsAdded(m: Mutation): number {
  return m.kind === 'add' ? m.records.length : 0;
}

// Plain maps and no record extensions: the log must decode the same in any later version.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

/** One record on the wire: id, the vector's float32 LE bytes, text, metadata as JSON text. */
interface WireRecord {
  i: string;
  v: Uint8Array;
  x?: string;
  m?: string;
}

type Wire = { a: WireRecord[] } | { d: string[] };

export function encodeMutation(m: Mutation): Uint8Array {
  const wire: Wire =
    m.kind === 'add'
      ? {
          a: m.records.map((r) => ({
            i: r.id,
            v: new Uint8Array(r.vector.buffer, r.vector.byteOffset, r.vector.byteLength),
            ...(r.text === undefined ? {} : { x: r.text }),
            ...(r.metaJson === undefined ? {} : { m: r.metaJson }),
          })),
        }
      : { d: [...m.ids] };
  return packr.pack(wire);
}

/** What every logged batch of a store was checked against when it was added: its dimension. */
export interface BatchShape {
  readonly dim: number;
}

/**
 * Decodes a WAL payload. The log's checksum already vouched for the bytes, so a payload that does
 * not decode, or decodes to a batch `add` or `delete` would have refused (an id empty, too long or
 * not well-formed; a vector of another dimension or not finite; a text too long or not well-formed;
 * both an add and a delete), means a writer bug or tampering, reported as CORRUPTION at
 * the record's LSN (wal/FORMAT.md): such a batch had been applied, failed later with other codes
 * (IO, INVALID_VECTOR, a raw RangeError at close), or been taken silently (found by a hostile pass).
 */
export function decodeMutation(payload: Uint8Array, where: { file: string; lsn: number }, shape: BatchShape): Mutation {
  const fail = (what: string, cause?: unknown) =>
    new MemstoreError('CORRUPTION', `WAL record ${where.lsn}: ${what}`, { file: where.file, offset: `lsn ${where.lsn}`, cause });
  let wire: unknown;
  try {
    wire = packr.unpack(payload);
  } catch (e) {
    throw fail('payload does not decode', e);
  }
  if (typeof wire !== 'object' || wire === null) throw fail('payload is not a mutation');
  const w = wire as Partial<{ a: unknown; d: unknown }>;
  if (w.a !== undefined && w.d !== undefined) throw fail('payload is both an add and a delete');
  // A check of what was accepted once: its failure is the log's damage, not the caller's input.
  const accepted = <T>(what: string, check: () => T): T => {
    try {
      return check();
    } catch (e) {
      throw fail(`${what}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  };
  if (Array.isArray(w.d) && w.d.every((id) => typeof id === 'string')) {
    const ids = w.d as string[];
    ids.forEach((id, i) => accepted(`deleted id ${i}`, () => checkId(id, 'id')));
    return { kind: 'delete', ids };
  }
  if (!Array.isArray(w.a)) throw fail('payload is not a mutation');
  const records = w.a.map((r: unknown, i: number): CheckedRecord => {
    const rec = r as Partial<WireRecord>;
    if (typeof rec.i !== 'string' || !(rec.v instanceof Uint8Array) || rec.v.byteLength % 4 !== 0) throw fail('malformed record');
    if ((rec.x !== undefined && typeof rec.x !== 'string') || (rec.m !== undefined && typeof rec.m !== 'string')) throw fail('malformed record');
    const id = accepted(`record ${i}`, () => checkId(rec.i, 'id'));
    const vector = new Float32Array(rec.v.byteLength / 4);
    new Uint8Array(vector.buffer).set(rec.v);
    // Not the magnitude bounds: they are the arithmetic's of today's version, which a log written
    // by an earlier one may predate; a vector past them is a poorer score, not a broken store.
    accepted(`record ${i} (${id})`, () => checkVector(vector, shape.dim, undefined, 'vector'));
    accepted(`record ${i} (${id})`, () => checkText(rec.x, 'text'));
    const meta = rec.m === undefined ? undefined : parseMeta(rec.m);
    if (rec.m !== undefined && meta === undefined) throw fail(`metadata of ${id} is not a JSON object`);
    return { id, vector, text: rec.x, meta, metaJson: rec.m };
  });
  return { kind: 'add', records };
}
