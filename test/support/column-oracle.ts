import type { MemStore } from '../../src/index.js';
import type { Filter } from '../../src/options.js';
import { readFileSync } from 'node:fs';
import { COLUMN_HEADER_SIZE, columnsDigest } from '../../src/store/column-file.js';
import { columnsFilePath } from '../../src/store/files.js';
import { StateStore } from '../../src/store/state.js';

/** Whether `meta` meets `filter` as FILTERS.md defines it: strict equality on own top-level fields, every field ANDed. */
export function matchesByHand(meta: Record<string, unknown> | undefined, filter: Filter): boolean {
  return Object.entries(filter).every(([f, c]) => meta !== undefined && Object.prototype.hasOwnProperty.call(meta, f) && (c !== null && typeof c === 'object' ? c.$in.includes(meta[f] as never) : meta[f] === c));
}

/**
 * Where the store's filtered answers differ from its metadata, or undefined: for each filter, the ids
 * an exact filtered search returns (k = every record) against the ids whose metadata, read with
 * get(), meets it. What a column made afresh from the metadata gives, whatever the columns hold.
 */
export async function columnsDisagree(store: MemStore, ids: Iterable<string>, filters: readonly Filter[], query: Float32Array | readonly number[]): Promise<string | undefined> {
  const metas = new Map<string, Record<string, unknown> | undefined>();
  for (const id of ids) {
    const r = await store.get(id);
    if (r !== undefined) metas.set(id, r.meta);
  }
  const k = Math.max(1, store.stats().count);
  for (const filter of filters) {
    const got = (await store.search(query, { k, filter, exact: true, rescore: false })).map((h) => h.id).sort();
    const want = [...metas].filter(([, m]) => matchesByHand(m, filter)).map(([id]) => id).sort();
    if (got.join('\n') !== want.join('\n')) return `${JSON.stringify(filter)}: got ${got.length} ids, the metadata says ${want.length}`;
  }
  return undefined;
}

/** Counts the store's reads of documents from its state (each record's metadata is read so), and the ids read. */
export function spyOnDocReads(store: MemStore): { ids: string[] } {
  const state = (store as unknown as { state: { getDoc(id: string): unknown } }).state;
  const read = state.getDoc.bind(state);
  const seen = { ids: [] as string[] };
  state.getDoc = (id: string) => {
    seen.ids.push(id);
    return read(id);
  };
  return seen;
}

/** Filters on the crash workload's metadata (crash-ops.ts: `{ op, seed, even }`) the crash and power-loss tests check. */
export const COLUMN_CRASH_FILTERS: readonly Filter[] = [{ even: true }, { even: false }, { op: { $in: [1, 2, 3, 5, 8, 13, 21] } }, { seed: 1 }, { even: true, op: 4 }];

/**
 * Names the columns file on disk in the checkpoint by the digest of its blocks as they are now, as
 * the writer of those bytes would have: a test that reseals a block reaches the rule it tests
 * instead of stopping at the digest (INDEX.md, "Filter columns").
 */
export async function nameColumnsFileAsIs(dir: string): Promise<void> {
  const state = StateStore.open(dir);
  try {
    const c = state.readCheckpoint();
    const ref = c.columns!;
    const bytes = readFileSync(columnsFilePath(dir, ref.file)).subarray(0, ref.bytes);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headers: Uint8Array[] = [];
    for (let at = 0; at + COLUMN_HEADER_SIZE <= bytes.length; at += COLUMN_HEADER_SIZE + view.getUint32(at, true)) headers.push(bytes.subarray(at, at + COLUMN_HEADER_SIZE));
    await state.commitCheckpoint({ checkpoint: { ...c, columns: { ...ref, digest: columnsDigest(headers) } }, docs: new Map() });
  } finally {
    await state.close();
  }
}
