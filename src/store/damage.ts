import { MemstoreError } from '../errors.js';
import type { VectorPlace } from '../scan/code-blocks.js';

/** A damaged state value the store cannot address by id (its key is not UTF-8, or names no record). */
export interface DamagedKey {
  readonly key: Uint8Array;
  readonly error: MemstoreError;
}

/**
 * What an open store knows to be damaged: records whose persisted form failed a check (with the
 * error `get` throws for them; they are out of the index, so searches skip them), and state entries
 * no id reaches. Both wait for `memstore repair`.
 */
export class Damage {
  readonly records = new Map<string, MemstoreError>();
  readonly keys: DamagedKey[] = [];
  /** Where the vectors of damaged records are, when known (for the repair report). */
  readonly places = new Map<string, VectorPlace>();
  /** Damaged stretches of the index file a repair opened around (their records' ids are in the damaged bytes). */
  readonly index: MemstoreError[] = [];

  get count(): number {
    return this.records.size + this.keys.length + this.index.length;
  }

  /** CORRUPTION, naming the first damaged record, when there is any damage: `what` cannot run around it. */
  refuse(what: string, dir: string): void {
    if (this.count === 0) return;
    const [first] = this.records.values();
    throw new MemstoreError('CORRUPTION', `${what} needs a store without damage: ${this.count} damaged record(s); run memstore repair ${dir}`, {
      cause: first ?? this.keys[0]?.error ?? this.index[0],
      ...(first?.id === undefined ? {} : { id: first.id }),
    });
  }
}
