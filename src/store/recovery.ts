import type { BlobArena } from '../arena/arena.js';
import { MemstoreError } from '../errors.js';
import type { VectorIndex } from '../index/vector-index.js';
import type { VectorPlace } from '../scan/code-blocks.js';
import type { VectorSpace } from '../space/vector-space.js';
import type { DamagedKey } from './damage.js';
import { statePath } from './files.js';
import { damagedId } from './record-errors.js';
import type { RecordReads } from './record-reads.js';
import type { Entry, StateStore } from './state.js';

/** What loading a checkpoint fills and reads. */
export interface LoadEnv {
  readonly dir: string;
  readonly state: StateStore;
  /** Empty; filled with the checkpoint's records. */
  readonly index: VectorIndex;
  readonly space: VectorSpace;
  readonly reads: RecordReads;
  readonly texts: BlobArena;
  readonly vectors: BlobArena;
  /** Full-precision vectors are kept once trained (a record without one is damaged). */
  readonly keepFull: boolean;
  /** Damaged entries no id reaches are added here. */
  readonly damagedKeys: DamagedKey[];
}

/**
 * Returns a check that each table's keys come in strictly increasing byte order, as LMDB keeps them;
 * a key out of order means the B-tree was damaged, and it is recorded once per table as damage.
 */
function orderCheck(damagedKeys: DamagedKey[], file: string): (key: Uint8Array, table: string) => void {
  const last = new Map<string, Uint8Array>();
  const reported = new Set<string>();
  return (key, table) => {
    const previous = last.get(table);
    last.set(table, key);
    if (previous === undefined || Buffer.compare(key, previous) > 0 || reported.has(table)) return;
    reported.add(table);
    damagedKeys.push({ key, error: new MemstoreError('CORRUPTION', `${file}: keys of ${table} out of order: LMDB's B-tree is damaged; run memstore repair`, { file, offset: table }) });
  };
}

/**
 * Fills the index from the checkpoint and tells the arenas which texts and vectors are live.
 * Returns the records to set aside as damaged: a damaged value, or a record missing its code (or,
 * where one is kept, its vector) or its document, since that is what a damaged key leaves behind.
 * A damaged value whose id also has a sound value in the same table (a key flipped onto another
 * id's), a key that is not UTF-8, and keys out of order (LMDB's lookups near them are unreliable)
 * are damage no id reaches: they go to `damagedKeys`, for `memstore repair` to clear.
 *
 * Before training the index holds the full vectors themselves, read from the vector arena; once
 * trained it holds the codes and where each vector is, and no vector is read.
 */
export async function loadCheckpoint(env: LoadEnv): Promise<Map<string, MemstoreError>> {
  const { dir, state, index, space, reads, vectors } = env;
  const place = (id: string, where: VectorPlace): void => {
    index.setPlace(id, where);
    vectors.markLive(reads.vectorRef(where));
  };
  const damagedEntries: { table: 'vectors' | 'codes' | 'docs'; entry: Entry<unknown> }[] = [];
  const inOrder = orderCheck(env.damagedKeys, statePath(dir));
  if (space.trained) {
    for (const entry of state.iterateCodes(index.dim * index.codec.bytesPerDim)) {
      inOrder(entry.key, 'codes');
      if (entry.error !== undefined) damagedEntries.push({ table: 'codes', entry });
      else index.putCode(entry.id, entry.value.code, entry.value.scale);
    }
  }
  // Once trained, places go straight to their slots: a store's worth of JS objects kept through
  // the pass would grow the heap for good. Before training there are at most trainSize.
  const untrained: [string, VectorPlace][] = [];
  const placedOutside = new Set<string>();
  for (const entry of state.iteratePlaces()) {
    inOrder(entry.key, 'vectors');
    if (entry.error !== undefined) damagedEntries.push({ table: 'vectors', entry });
    else if (!space.trained) untrained.push([entry.id, entry.value]);
    else if (index.has(entry.id)) place(entry.id, entry.value);
    else placedOutside.add(entry.id);
  }
  const setAside = new Map<string, MemstoreError>();
  for (const [id, where] of untrained) {
    try {
      index.put(id, space.storedForm(await reads.vector(id, where)));
    } catch (e) {
      if (damagedId(e) !== id) throw e;
      setAside.set(id, e as MemstoreError);
      continue;
    }
    place(id, where);
  }
  // Slots do not move until the pass is over: records are set aside only after it.
  const documented = new Uint8Array(index.size);
  const withoutVector: string[] = [];
  const soundDocs = new Set<string>();
  for (const entry of state.iterateDocs()) {
    inOrder(entry.key, 'docs');
    if (entry.error !== undefined) {
      damagedEntries.push({ table: 'docs', entry });
      continue;
    }
    const slot = index.slotOf(entry.id);
    if (slot === undefined) {
      if (!setAside.has(entry.id)) withoutVector.push(entry.id);
      soundDocs.add(entry.id);
      continue;
    }
    if (documented[slot] === 1) continue;
    documented[slot] = 1;
    if (entry.value.text !== undefined) env.texts.markLive(entry.value.text);
  }
  for (const { table, entry } of damagedEntries) {
    const slot = entry.id === undefined ? undefined : index.slotOf(entry.id);
    const hasSound =
      entry.id !== undefined &&
      (table === 'codes'
        ? slot !== undefined
        : table === 'vectors'
          ? index.placeOf(entry.id) !== undefined || placedOutside.has(entry.id)
          : (slot !== undefined && documented[slot] === 1) || soundDocs.has(entry.id));
    if (entry.id === undefined || hasSound) env.damagedKeys.push({ key: entry.key, error: entry.error! });
    else if (!setAside.has(entry.id)) setAside.set(entry.id, entry.error!);
  }
  const file = statePath(dir);
  const what = space.trained ? 'codes' : 'vectors';
  for (const id of withoutVector) {
    if (!setAside.has(id)) setAside.set(id, new MemstoreError('CORRUPTION', `${file}: record ${JSON.stringify(id)} has a document but no ${what} value`, { file, offset: `${what}/${id}`, id }));
  }
  const needPlaces = env.keepFull || !space.trained;
  for (const id of index.allIds()) {
    if (setAside.has(id)) continue;
    if (documented[index.slotOf(id)!] === 0) {
      setAside.set(id, new MemstoreError('CORRUPTION', `${file}: record ${JSON.stringify(id)} has no document`, { file, offset: `docs/${id}`, id }));
    } else if (needPlaces && index.placeOf(id) === undefined) {
      setAside.set(id, new MemstoreError('CORRUPTION', `${file}: record ${JSON.stringify(id)} has no full-precision vector`, { file, offset: `vectors/${id}`, id }));
    }
  }
  return setAside;
}
