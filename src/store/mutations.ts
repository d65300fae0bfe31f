import { Packr } from 'msgpackr';
import { MemstoreError } from '../errors.js';

/** One record of an add batch as the log carries it: the vector exactly as given, its text and metadata. */
export interface LoggedRecord {
  readonly id: string;
  readonly vector: Float32Array;
  readonly text: string | undefined;
  readonly meta: Record<string, unknown> | undefined;
}

/** What one WAL record holds: a whole add batch or a whole delete batch, so a batch is atomic. */
export type Mutation = { readonly kind: 'add'; readonly records: readonly LoggedRecord[] } | { readonly kind: 'delete'; readonly ids: readonly string[] };

// Plain maps and no record extensions: the log must decode the same in any later version.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

interface WireRecord {
  i: string;
  v: Uint8Array;
  x?: string;
  m?: Record<string, unknown>;
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
            ...(r.meta === undefined ? {} : { m: r.meta }),
          })),
        }
      : { d: [...m.ids] };
  return packr.pack(wire);
}

/**
 * Decodes a WAL payload. The log's checksum already vouched for the bytes, so a payload that does
 * not decode means a writer bug or tampering, reported as CORRUPTION at the record's LSN.
 */
export function decodeMutation(payload: Uint8Array, where: { file: string; lsn: number }): Mutation {
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
  if (Array.isArray(w.d) && w.d.every((id) => typeof id === 'string')) return { kind: 'delete', ids: w.d as string[] };
  if (!Array.isArray(w.a)) throw fail('payload is not a mutation');
  const records = w.a.map((r: unknown): LoggedRecord => {
    const rec = r as Partial<WireRecord>;
    if (typeof rec.i !== 'string' || !(rec.v instanceof Uint8Array) || rec.v.byteLength % 4 !== 0) throw fail('malformed record');
    const vector = new Float32Array(rec.v.byteLength / 4);
    new Uint8Array(vector.buffer).set(rec.v);
    return { id: rec.i, vector, text: typeof rec.x === 'string' ? rec.x : undefined, meta: rec.m };
  });
  return { kind: 'add', records };
}
