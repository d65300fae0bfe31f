import type { VectorPlace } from '../scan/code-blocks.js';
import type { BlobRef } from '../arena/arena.js';
import type { DocRecord } from './state.js';

/** A record's state newer than the last checkpoint: where its vector is (when one is kept) and its document. */
export interface ChangedRecord {
  readonly place: VectorPlace | undefined;
  readonly doc: DocRecord;
}

/**
 * The records changed since the last checkpoint (`null`: deleted), which reads consult before the
 * state. A checkpoint takes them all at once and they stay readable ("flushing") until its commit is
 * durable; if the commit fails they come back, under any newer change. It holds no vector: only
 * where each one is in the vector arena, so a bulk load does not grow the heap by its vectors.
 */
export class ChangedRecords {
  private changed = new Map<string, ChangedRecord | null>();
  private flushing: ReadonlyMap<string, ChangedRecord | null> | undefined;

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

  entries(): IterableIterator<[string, ChangedRecord | null]> {
    return this.changed.entries();
  }

  /** Takes every change for a checkpoint; they stay readable until settle(). */
  take(): ReadonlyMap<string, ChangedRecord | null> {
    const taken = this.changed;
    this.changed = new Map();
    this.flushing = taken;
    return taken;
  }

  /** The checkpoint is over: committed, or (`failed`) not, and then its changes come back under any newer one. */
  settle(failed: boolean): void {
    if (failed && this.flushing !== undefined) {
      for (const [id, change] of this.flushing) if (!this.changed.has(id)) this.changed.set(id, change);
    }
    this.flushing = undefined;
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
