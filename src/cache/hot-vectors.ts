import { Presence, slotHash } from './presence.js';

/**
 * JavaScript's cost of one row's keys (an entry in each of the two maps, and the id string's
 * header), estimated; the id's characters come on top, at two bytes each at most.
 */
const ID_OVERHEAD = 96;

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
 * more than its pool's scoring). The id of each row is kept too, for writes, which name ids. Slots
 * move when the index removes a vector (the last one moves into the hole): the owner replays those
 * moves with moved() before it asks by slot again. One typed array for all the vectors, where an
 * object per vector (a Float32Array and its backing store each) would survive into V8's old
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
 *
 * Everything counts against the byte budget, ids included: the rows are sized for an id's fixed
 * cost, and an id's characters take further rows from the clock when they would overrun it.
 */
export class HotVectors {
  private readonly bySlot = new Map<number, number>();
  /** The slots `bySlot` holds, by hash: most candidates of a search are not hot, and are told so without a probe of the Map (presence.ts). */
  private readonly slotsHeld: Presence;
  private readonly byId = new Map<string, number>();
  /** The id and the slot of each row ever used, rows 0..touched-1; a free row's id is undefined. */
  private ids: (string | undefined)[] = [];
  private slots: number[] = [];
  /** Rows below `touched` that are free, the next to be used last. */
  private free: number[] = [];
  /** Rows in use. */
  private count = 0;
  /** Characters of the ids in the map, for `bytes`. */
  private idChars = 0;
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

  /** Bytes of one row: the vector, its norm and its use bit. */
  static rowBytes(dim: number): number {
    return 4 * dim + 9;
  }

  /** Bytes an id costs beside its row: its entry in the map and its characters. */
  static idBytes(id: string): number {
    return ID_OVERHEAD + 2 * id.length;
  }

  /** `maxBytes`: at most this much in all (`bytes`): rows and ids. */
  constructor(
    readonly dim: number,
    private readonly maxBytes: number,
  ) {
    this.rows = Math.max(0, Math.min(Math.floor(maxBytes / (HotVectors.rowBytes(dim) + ID_OVERHEAD)), Math.floor(MAX_SLAB_BYTES / (4 * Math.max(1, dim)))));
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

  /** Memory held: the rows of the slab ever used (what is resident of it), and the ids' map. */
  get bytes(): number {
    return this.touched * HotVectors.rowBytes(this.dim) + this.count * ID_OVERHEAD + 2 * this.idChars;
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
   * Keeps `vector`, the vector of `id` in `slot`, with its norm when known, evicting rows (the
   * clock's choice) while the slab is full or the id would not fit in the bytes; an id too long to
   * fit even alone is not kept. A row of the same id or slot is replaced.
   */
  put(slot: number, id: string, vector: Float32Array, norm: number | undefined): void {
    if (this.capacity === 0 || vector.length !== this.dim) return;
    let row = this.byId.get(id);
    if (row !== undefined && this.slots[row] !== slot) {
      this.removeRow(row);
      row = undefined;
    }
    const other = this.bySlot.get(slot);
    if (other !== undefined && this.ids[other] !== id) this.removeRow(other);
    if (row === undefined) {
      // Before any row is added: a slab that cannot be allocated keeps nothing, and breaks no search.
      if (!this.allocate()) return;
      const rowBytes = HotVectors.rowBytes(this.dim);
      // What it would hold with one more id of `chars` characters (a free row is resident already;
      // without one, the next row of the slab becomes so).
      const heldWithOneMore = () => (this.free.length > 0 ? this.touched : this.touched + 1) * rowBytes + (this.count + 1) * ID_OVERHEAD + 2 * (this.idChars + id.length);
      while (this.count > 0 && (this.count === this.capacity || heldWithOneMore() > this.maxBytes)) this.evictOne();
      if (Math.max(this.touched, 1) * rowBytes + ID_OVERHEAD + 2 * id.length > this.maxBytes) return;
      row = this.free.pop() ?? this.touched++;
      this.ids[row] = id;
      this.slots[row] = slot;
      this.byId.set(id, row);
      this.bySlot.set(slot, row);
      this.slotsHeld.add(slotHash(slot));
      this.idChars += id.length;
      this.count++;
      // Unused until read again: a one-off read makes way before vectors that keep coming back.
      this.used[row] = 0;
    }
    this.slab.set(vector, row * this.dim);
    // NaN: no norm kept (no vector has a NaN norm: input checks refuse NaN components).
    this.norms[row] = norm ?? NaN;
  }

  /** Forgets the vector of `id`; true when it was kept. */
  drop(id: string): boolean {
    const row = this.byId.get(id);
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
    this.byId.clear();
    this.ids = [];
    this.slots = [];
    this.free = [];
    this.count = 0;
    this.idChars = 0;
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
      if (this.ids[row] === undefined) continue;
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
    const id = this.ids[row]!;
    this.byId.delete(id);
    this.bySlot.delete(this.slots[row]!);
    this.slotsHeld.remove(slotHash(this.slots[row]!));
    this.idChars -= id.length;
    this.ids[row] = undefined;
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
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.rows = 0;
      this.slab = new Float32Array(0);
      this.norms = new Float64Array(0);
      this.used = new Uint8Array(0);
      return false;
    }
    return true;
  }
}
