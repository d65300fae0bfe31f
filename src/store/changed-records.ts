import type { VectorPlace } from '../scan/code-blocks.js';
import type { BlobRef } from '../arena/arena.js';
import type { DocRecord } from './state.js';

/** A record's state newer than the last checkpoint: where its vector is (when one is kept) and its document. */
export interface ChangedRecord {
  readonly place: VectorPlace | undefined;
  readonly doc: DocRecord;
}

/** The document of a record written without a text or metadata: one shared object, not one per record. */
export const NO_DOC: DocRecord = Object.freeze({});

/**
 * The records changed since the last checkpoint (`null`: deleted), which reads consult before the
 * state. A checkpoint takes them all at once and they stay readable ("flushing") until its commit is
 * durable; if the commit fails they come back, under any newer change. It holds no vector: only
 * where each one is in the vector arena, so a bulk load does not grow the heap by its vectors.
 *
 * Beside them, the ids whose `docs` value in the state may be out of date with no document to
 * replace it (a record that had one, deleted or rewritten without one): only those cost the
 * checkpoint an LMDB delete. A bulk load of records without texts or metadata costs none, where a
 * delete per record (a no-op) made 331k records' checkpoints allocate hundreds of megabytes.
 */
export class ChangedRecords {
  private changed = new Map<string, ChangedRecord | null>();
  private flushing: ReadonlyMap<string, ChangedRecord | null> | undefined;
  private stale = new Set<string>();
  private flushingStale: ReadonlySet<string> | undefined;

  /** The change of `id` newer than the checkpoint, `null` for a deletion, undefined when the checkpoint is current. */
  of(id: string): ChangedRecord | null | undefined {
    const c = this.changed.get(id);
    if (c !== undefined || this.changed.has(id)) return c ?? null;
    if (this.flushing?.has(id) === true) return this.flushing.get(id)!;
    return undefined;
  }

  /** Changed since the last checkpoint taken (not counting one being written). */
  has(id: string): boolean {
    return this.changed.has(id);
  }

  get size(): number {
    return this.changed.size;
  }

  set(id: string, change: ChangedRecord | null): void {
    this.changed.set(id, change);
  }

  /** The state may hold a `docs` value for `id` that the record, as changed now, must not keep. */
  markStale(id: string): void {
    this.stale.add(id);
  }

  entries(): IterableIterator<[string, ChangedRecord | null]> {
    return this.changed.entries();
  }

  /**
   * Takes every change for a checkpoint, and the ids whose state document must go unless the
   * change carries one; they stay readable until settle().
   */
  take(): { changes: ReadonlyMap<string, ChangedRecord | null>; stale: ReadonlySet<string> } {
    const taken = this.changed;
    const stale = this.stale;
    this.changed = new Map();
    this.stale = new Set();
    this.flushing = taken;
    this.flushingStale = stale;
    return { changes: taken, stale };
  }

  /** The checkpoint is over: committed, or (`failed`) not, and then its changes come back under any newer one. */
  settle(failed: boolean): void {
    if (failed && this.flushing !== undefined) {
      for (const [id, change] of this.flushing) if (!this.changed.has(id)) this.changed.set(id, change);
      for (const id of this.flushingStale ?? []) this.stale.add(id);
    }
    this.flushing = undefined;
    this.flushingStale = undefined;
  }

  /** Records that a collection moved the text of `id` (changed since the checkpoint) to `ref`. */
  movedText(id: string, ref: BlobRef): void {
    const c = this.changed.get(id);
    if (c !== undefined && c !== null) this.changed.set(id, { ...c, doc: { ...c.doc, text: ref } });
  }

  /** Records that a collection (or training, with undefined) moved the vector of `id`. */
  movedVector(id: string, place: VectorPlace | undefined): void {
    const c = this.changed.get(id);
    if (c !== undefined && c !== null) this.changed.set(id, { ...c, place });
  }
}
