import { Presence, slotHash } from './presence.js';

/** JavaScript's cost of a row's key, its entry in the map by slot, estimated. */
const SLOT_OVERHEAD = 32;

/** The most buckets of the slots' Presence: 16 KiB. */
const PRESENCE_MAX = 8192;

/**
 * The largest slab made, in bytes of vectors, whatever the budget: the slab is allocated at its
 * full capacity at once, and a budget of a terabyte (any safe integer is a valid `cache.bytes`)
 * would ask for a typed array longer than V8 makes. 2 GiB of vectors is a million rows of 512
 * dimensions, more than a neighbourhood that keeps coming back needs.
 */
export const MAX_SLAB_BYTES = 2 ** 31;

/**
 * Full-precision vectors kept hot for rescoring, in one slab of rows with their norms (float64, as
 * computed), found by the vector's slot in the index: a search asks about each of its candidates by
 * slot, a small integer a Map hashes at once, where an id string must first be made from the index
 * and then hashed (after a scan has pushed everything out of the CPU caches, the two cost a near hit
 * more than its pool's scoring). A row knows its slot and nothing else: a write names the slot of
 * the id it changes (LookasideCache.touch()), so no id string is kept per row (the ids and a second
 * map by id took 96 bytes and more a row of the budget, a fifth of a row at 100 dimensions). Slots
 * move when the index removes a vector (the last one moves into the hole): the owner replays those
 * moves with moved() before it asks or drops by slot again. One typed array for all the vectors,
 * where an object per vector (a Float32Array and its backing store each) would survive into V8's old
 * generation, grow its young one, and leave malloc'd backing stores behind until a full collection:
 * about 4x the budget in RSS, measured.
 *
 * The slab is allocated at its full capacity with the first vector and never grown: the kernel
 * gives a large allocation untouched zero pages, so RSS follows the rows in use, where growing by
 * doubling freed every smaller slab, and freeing megabytes raised malloc's trim threshold for the
 * whole process (io/transient-buffers.ts): the cache's first 8 MiB cost about 6 MiB more resident
 * heap. `bytes` counts the rows ever used, which is what is resident.
 *
 * Replacement is the clock algorithm: a read sets the row's bit (a new row starts without it); a
 * full slab evicts the first row the hand finds without one, clearing bits as it passes. A row
 * given up stays where it is, free, and the next vector kept takes it: the hand has just passed
 * it, so a new row gets a whole turn of the clock to be read. Nothing is moved to close a hole: a
 * row is a vector's 2 KiB at 512-d, in memory the last scan pushed out of the CPU's caches (moving
 * the last row into each hole took half the time rows were given up in, in a CPU profile of the
 * 10k cache bench's stream).
 */
export class HotVectors {
  private readonly bySlot = new Map<number, number>();
  /** The slots `bySlot` holds, by hash: most candidates of a search are not hot, and are told so without a probe of the Map (presence.ts). */
  private readonly slotsHeld: Presence;
  /** The slot of each row ever used, rows 0..touched-1; -1: a free row. */
  private slots = new Int32Array(0);
  /** Rows below `touched` that are free, the next to be used last. */
  private free: number[] = [];
  /** Rows in use. */
  private count = 0;
  private slab = new Float32Array(0);
  private norms = new Float64Array(0);
  private used = new Uint8Array(0);
  private hand = 0;
  /** Rows ever used since the slab was made: its resident part. */
  private touched = 0;
  /** Rows given up for room. */
  evictions = 0;
  /** Rows the slab has room for; 0 when none could be allocated (then nothing is kept). */
  private rows: number;

  /** Bytes of one row: the vector, its norm, its use bit and its slot, and its key in the map. */
  static rowBytes(dim: number): number {
    return 4 * dim + 13 + SLOT_OVERHEAD;
  }

  /** `maxBytes`: at most this much in all (`bytes`). */
  constructor(
    readonly dim: number,
    maxBytes: number,
  ) {
    this.rows = Math.max(0, Math.min(Math.floor(maxBytes / HotVectors.rowBytes(dim)), Math.floor(MAX_SLAB_BYTES / (4 * Math.max(1, dim)))));
    // About four buckets a row, within the limit: a bucket is 2 bytes, a row a whole vector.
    this.slotsHeld = new Presence(this.rows === 0 ? 0 : 2 ** Math.ceil(Math.log2(Math.min(PRESENCE_MAX, 4 * this.rows))));
  }

  /** Rows it may hold: what the budget pays for, at most MAX_SLAB_BYTES of vectors; 0 once an allocation failed. */
  get capacity(): number {
    return this.rows;
  }

  get size(): number {
    return this.count;
  }

  /** Memory held: the rows of the slab ever used (what is resident of it), with their keys. */
  get bytes(): number {
    return this.touched * HotVectors.rowBytes(this.dim);
  }

  /** Memory of the Presence of the slots held, beside `bytes` (at most 16 bytes a row of the capacity): the owner counts it against its own budget. */
  get presenceBytes(): number {
    return this.slotsHeld.bytes;
  }

  /**
   * The vector in `slot` in place (no copy) with its norm when one was kept, or undefined. The view
   * is valid until the next put(): callers score it before anything can store another vector.
   */
  view(slot: number): { full: Float32Array; norm: number | undefined } | undefined {
    if (!this.slotsHeld.mayHave(slotHash(slot))) return undefined;
    const row = this.bySlot.get(slot);
    if (row === undefined) return undefined;
    this.used[row] = 1;
    const norm = this.norms[row]!;
    return { full: this.slab.subarray(row * this.dim, (row + 1) * this.dim), norm: Number.isNaN(norm) ? undefined : norm };
  }

  /**
   * Keeps `vector`, the vector in `slot`, with its norm when known, evicting a row (the clock's
   * choice) while the slab is full. A row of the same slot is replaced.
   */
  put(slot: number, vector: Float32Array, norm: number | undefined): void {
    if (this.capacity === 0 || vector.length !== this.dim) return;
    let row = this.bySlot.get(slot);
    if (row === undefined) {
      // Before any row is added: a slab that cannot be allocated keeps nothing, and breaks no search.
      if (!this.allocate()) return;
      if (this.count === this.capacity) this.evictOne();
      row = this.free.pop() ?? this.touched++;
      this.slots[row] = slot;
      this.bySlot.set(slot, row);
      this.slotsHeld.add(slotHash(slot));
      this.count++;
      // Unused until read again: a one-off read makes way before vectors that keep coming back.
      this.used[row] = 0;
    }
    this.slab.set(vector, row * this.dim);
    // NaN: no norm kept (no vector has a NaN norm: input checks refuse NaN components).
    this.norms[row] = norm ?? NaN;
  }

  /** Forgets the vector in `slot`; true when it was kept. */
  drop(slot: number): boolean {
    const row = this.bySlot.get(slot);
    if (row === undefined) return false;
    this.removeRow(row);
    return true;
  }

  /**
   * Follows one removal in the index: the vector in slot `hole` is gone, and the one in slot `from`
   * moved into it (`from === hole`: none moved).
   */
  moved(hole: number, from: number): void {
    const gone = this.bySlot.get(hole);
    if (gone !== undefined) this.removeRow(gone);
    if (from === hole) return;
    const row = this.bySlot.get(from);
    if (row === undefined) return;
    this.bySlot.delete(from);
    this.slotsHeld.remove(slotHash(from));
    this.bySlot.set(hole, row);
    this.slotsHeld.add(slotHash(hole));
    this.slots[row] = hole;
  }

  clear(): void {
    this.bySlot.clear();
    this.slotsHeld.clear();
    this.free = [];
    this.count = 0;
    this.slots = new Int32Array(0);
    this.slab = new Float32Array(0);
    this.norms = new Float64Array(0);
    this.used = new Uint8Array(0);
    this.hand = 0;
    this.touched = 0;
  }

  private evictOne(): void {
    for (;;) {
      if (this.hand >= this.touched) this.hand = 0;
      const row = this.hand++;
      if (this.slots[row] === -1) continue;
      if (this.used[row] === 0) {
        this.removeRow(row);
        this.evictions++;
        return;
      }
      this.used[row] = 0;
    }
  }

  /** Frees `row` (in use): it stays where it is, for the next vector kept. */
  private removeRow(row: number): void {
    const slot = this.slots[row]!;
    this.bySlot.delete(slot);
    this.slotsHeld.remove(slotHash(slot));
    this.slots[row] = -1;
    this.used[row] = 0;
    this.count--;
    this.free.push(row);
  }

  /**
   * Makes the slab at its full capacity, unless made: false when it cannot be (the memory is not
   * there), and then the capacity becomes 0, so that nothing is ever kept and no search pays again.
   */
  private allocate(): boolean {
    if (this.rows === 0) return false;
    if (this.norms.length === this.rows) return true;
    try {
      this.slab = new Float32Array(this.rows * this.dim);
      this.norms = new Float64Array(this.rows);
      this.used = new Uint8Array(this.rows);
      this.slots = new Int32Array(this.rows).fill(-1);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.rows = 0;
      this.slab = new Float32Array(0);
      this.norms = new Float64Array(0);
      this.used = new Uint8Array(0);
      this.slots = new Int32Array(0);
      return false;
    }
    return true;
  }
}
