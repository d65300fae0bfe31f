import { idHash, slotHash } from './presence.js';

/**
 * Ids read recently, as hashes in a direct-mapped table: the cache keeps a record's parts hot
 * (vector, document, text) only when the record is read again while its hash is still here.
 *
 * A search that misses reads its candidates once, and most of a fresh query's candidates are never
 * read again; keeping each of them hot cost every miss copies into the slab, evictions and
 * survivors for V8's young generation (a miss was 18% slower than without the cache at a 2 MiB
 * budget, measured). Neighbourhoods that come back are read a second time and kept from then on.
 * Two ids sharing a hash, or an id crowded out of its slot, only admit an id one read early or late.
 */
export class SeenIds {
  private readonly table: Int32Array;
  private readonly mask: number;

  /** `slots`: a power of two, or 0 for a table that remembers nothing (every read is a first one). */
  constructor(slots: number) {
    if (!(slots === 0 || Number.isInteger(Math.log2(slots)))) throw new RangeError(`slots must be 0 or a power of two, got ${slots}`);
    this.table = new Int32Array(slots);
    this.mask = slots - 1;
  }

  get bytes(): number {
    return this.table.byteLength;
  }

  /** Notes a read of `id`; true when it was read before and is still remembered. */
  again(id: string): boolean {
    return this.againHash(idHash(id));
  }

  /**
   * again() for a record known by a number (a slot in the index), with no string to hash. A slot
   * that a removal renumbers only admits its vector one read early or late.
   */
  againNumber(n: number): boolean {
    return this.againHash(slotHash(n));
  }

  private againHash(hash: number): boolean {
    if (this.table.length === 0) return false;
    // Never 0, which marks an empty slot.
    const h = hash | 1;
    const at = (h ^ (h >>> 15)) & this.mask;
    const seen = this.table[at] === h;
    this.table[at] = h;
    return seen;
  }

  clear(): void {
    this.table.fill(0);
  }
}
