import { eighthStepAtLeast } from '../eighth-step.js';
import { MAX_ID_BYTES } from '../limits.js';
import { isWellFormed } from '../text.js';

const encoder = new TextEncoder();
// A leading U+FEFF is part of an id, not a byte-order mark to drop.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });

/** Every table encodes a looked-up id here; each use is synchronous, so one buffer serves all. */
const scratch = new Uint8Array(MAX_ID_BYTES);

const EMPTY = 0;
/**
 * An id's length (at most MAX_ID_BYTES, 1,024) takes the low 11 bits of its Uint16 in `lengths`;
 * the top 5 hold a tag from its hash, so a probe that meets another id of the same length is
 * rejected, 31 times in 32, without reading that id's bytes.
 */
const LENGTH_BITS = 11;
const LENGTH_MASK = (1 << LENGTH_BITS) - 1;
/** Buckets are at most this full before the table grows, so a probe run stays short. */
const MAX_LOAD = 0.7;
const GROWTH = 1.5;

/**
 * The buckets for `ids` ids at most MAX_LOAD full: the least of 32 and the sizes 2^k · {1, 1.125, ...,
 * 1.875} that holds them. A power of two left a table between 35% and 70% full, 10.5 bytes of
 * buckets an id at 50k ids (131,072 of them); eighth steps keep it above 61% once reserved.
 */
function bucketsFor(ids: number): number {
  return eighthStepAtLeast(Math.max(32, Math.ceil(ids / MAX_LOAD)));
}

/**
 * The bucket a probe for `hash` starts at: the hash mixed again (so the bucket does not follow the
 * high bits that make an id's tag, and ids whose probe runs meet still differ in their tags) and
 * scaled to the table's size by a multiply, which any size takes, where a mask takes powers of two.
 */
function homeOf(hash: number, size: number): number {
  const mixed = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b) >>> 0;
  // Exact below 2^53 (tables under 2^21 buckets); past it the product rounds, never to more than size - 1 after the min.
  return Math.min(size - 1, Math.floor((mixed * size) / 4294967296));
}
/** JavaScript's cost of one string beyond its characters (header, hash), estimated, for `bytes`. */
const STRING_OVERHEAD = 24;
/** idAt() keeps at most one string per this many ids in the table (and at most the table's `recent`). */
const RECENT_PER_IDS = 8;

/** Seeded 32-bit hash of bytes (murmur3's mixing); the seed is random per table, so no fixed set of ids collides everywhere. */
function hashBytes(bytes: Uint8Array, from: number, length: number, seed: number): number {
  let h = seed ^ length;
  for (let i = 0; i < length; i++) {
    h = Math.imul(h ^ bytes[from + i]!, 0x5bd1e995);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The ids of an index by slot, and the slot of each id. Each id is kept once, as UTF-8 bytes in one
 * byte store, and found through an open-addressing hash table (linear probing, deletion by backward
 * shift, so no tombstones): an id costs its bytes and about 12–17 more, where a JS string in an
 * array plus a Map entry cost about 100 in V8. Strings are made only when asked for (`idAt`).
 *
 * Slots are dense, 0..size-1; `removeSwap` moves the last slot's id into the hole, as the index
 * moves its codes. Ids must be well-formed Unicode of at most MAX_ID_BYTES bytes (checked at the
 * API); a lookup of any other string finds nothing.
 */
export class IdTable {
  private store = new Uint8Array(256);
  /** Bytes of `store` in use, live or not. */
  private used = 0;
  /** Bytes of `store` no slot refers to any more; compacted away when the store must grow. */
  private garbage = 0;
  private starts = new Uint32Array(16);
  /** Per slot, the id's length in bytes and its hash tag (LENGTH_BITS). */
  private lengths = new Uint16Array(16);
  /** Per bucket, slot + 1 of an id whose probe run passes here, or EMPTY. Length bucketsFor() of some count. */
  private buckets = new Uint32Array(32);
  private count = 0;
  /** Set by a `find` that failed: the bucket a new id would take. */
  private runEnd = 0;
  /** Set by `find`: the length and hash tag of the id it looked for. */
  private key = 0;
  private readonly seed = (Math.random() * 0x100000000) >>> 0;
  /**
   * The strings idAt() made lately, direct-mapped by slot (slot mod their number), with the slot
   * each is of (-1: none). A search turns its candidates' slots into ids, and the same neighbourhoods
   * come back: a string made once is handed out again, with its hash already computed for the Maps
   * that look it up, instead of decoding the bytes (cold in the CPU's cache) into a new one.
   */
  private recentIds: (string | undefined)[] = [];
  private recentSlots = new Int32Array(0);
  /**
   * The length of each recent string: a string handed over to be replaced is not read again to
   * count what it held (a cold object far from these arrays: 3% of a 50k search returning 40 ids).
   */
  private recentLengths = new Int32Array(0);
  private recentChars = 0;
  private recentCount = 0;

  /**
   * `recent`: how many strings idAt() may keep (a power of two, or 0 for none). It keeps one per
   * RECENT_PER_IDS ids at most, so that a small table does not pay for them more than a large one.
   */
  constructor(private readonly recent = 0) {
    if (!(recent === 0 || (Number.isInteger(recent) && recent > 0 && (recent & (recent - 1)) === 0))) throw new RangeError(`recent must be 0 or a power of two, got ${recent}`);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes of memory held: byte store, per-slot offsets and lengths, buckets (capacity, not use), recent strings. */
  get bytes(): number {
    const recent = this.recentSlots.byteLength + this.recentLengths.byteLength + 8 * this.recentIds.length + STRING_OVERHEAD * this.recentCount + 2 * this.recentChars;
    return this.store.byteLength + this.starts.byteLength + this.lengths.byteLength + this.buckets.byteLength + recent;
  }

  /** Bytes of UTF-8 the live ids take. */
  get idBytes(): number {
    return this.used - this.garbage;
  }

  /**
   * Capacity for `slots` ids and `bytes` more bytes of them, allocated in one step: a table grown id by id
   * frees each smaller copy of its arrays, and freeing buffers of hundreds of KiB raises malloc's
   * thresholds for the whole process (io/transient-buffers.ts). Never shrinks.
   */
  reserve(slots: number, bytes: number): void {
    this.reserveSlots(slots);
    this.reserveBytes(bytes);
    if (slots > this.buckets.length * MAX_LOAD) this.rehash(bucketsFor(slots));
  }

  /** The slot of `id`, or undefined. */
  slotOf(id: string): number | undefined {
    const length = this.encode(id);
    if (length < 0) return undefined;
    const slot = this.find(length);
    return slot < 0 ? undefined : slot;
  }

  idAt(slot: number): string {
    if (!(slot >= 0 && slot < this.count)) throw new RangeError(`slot ${slot} out of range`);
    const at = slot & (this.recentSlots.length - 1);
    if (this.recentSlots.length > 0 && this.recentSlots[at] === slot) return this.recentIds[at]!;
    const start = this.starts[slot]!;
    const id = decoder.decode(this.store.subarray(start, start + (this.lengths[slot]! & LENGTH_MASK)));
    if (this.recentSlots.length > 0) {
      if (this.recentSlots[at]! >= 0) {
        this.recentChars -= this.recentLengths[at]!;
        this.recentCount--;
      }
      this.recentIds[at] = id;
      this.recentSlots[at] = slot;
      this.recentLengths[at] = id.length;
      this.recentChars += id.length;
      this.recentCount++;
    }
    return id;
  }

  /** The UTF-8 of the id in `slot`: a view, valid until the table next changes. */
  bytesAt(slot: number): Uint8Array {
    if (!(slot >= 0 && slot < this.count)) throw new RangeError(`slot ${slot} out of range`);
    const start = this.starts[slot]!;
    return this.store.subarray(start, start + (this.lengths[slot]! & LENGTH_MASK));
  }

  /** The slot of `id`, added as slot `size` if it is new. */
  slotFor(id: string): { slot: number; added: boolean } {
    const length = this.encode(id);
    if (length < 0) throw new RangeError(`id is not well-formed or longer than ${MAX_ID_BYTES} bytes`);
    const before = this.count;
    const slot = this.slotForScratch(length);
    return { slot, added: this.count > before };
  }

  /**
   * The slot of the id whose UTF-8 is `bytes[from, from + length)` (as an index file stores it),
   * added as slot `size` if it is new (`size` then grows), without making a string or any object:
   * the caller vouches that the bytes are well-formed UTF-8 of at most MAX_ID_BYTES.
   */
  slotForBytes(bytes: Uint8Array, from: number, length: number): number {
    if (length === 0 || length > MAX_ID_BYTES || from + length > bytes.length) throw new RangeError(`id of ${length} bytes at ${from}`);
    for (let i = 0; i < length; i++) scratch[i] = bytes[from + i]!;
    return this.slotForScratch(length);
  }

  private slotForScratch(length: number): number {
    const found = this.find(length);
    if (found >= 0) return found;
    const slot = this.count;
    this.reserveSlots(slot + 1);
    this.reserveBytes(length);
    for (let i = 0; i < length; i++) this.store[this.used + i] = scratch[i]!;
    // A slot number can come back after removals: its string of before is not this id.
    this.forget(slot);
    this.starts[slot] = this.used;
    this.lengths[slot] = this.key;
    this.used += length;
    this.count++;
    if (this.recentSlots.length < this.recent && this.count >= 2 * RECENT_PER_IDS * Math.max(1, this.recentSlots.length)) this.growRecent();
    if (this.count > this.buckets.length * MAX_LOAD) this.rehash(bucketsFor(this.count * GROWTH));
    else this.buckets[this.runEnd] = slot + 1;
    return slot;
  }

  /** Removes the id in `slot`; the id of the last slot, if another, moves into it. */
  removeSwap(slot: number): void {
    if (!(slot >= 0 && slot < this.count)) throw new RangeError(`slot ${slot} out of range`);
    this.deleteBucket(this.bucketOf(slot));
    this.garbage += this.lengths[slot]! & LENGTH_MASK;
    const last = this.count - 1;
    // The last slot's string stays until an add takes that slot number again (it forgets it then).
    this.forget(slot);
    if (slot !== last) {
      this.buckets[this.bucketOf(last)] = slot + 1;
      this.starts[slot] = this.starts[last]!;
      this.lengths[slot] = this.lengths[last]!;
    }
    this.count--;
  }

  clear(): void {
    this.recentIds.fill(undefined);
    this.recentSlots.fill(-1);
    this.recentLengths.fill(0);
    this.recentChars = 0;
    this.recentCount = 0;
    this.count = 0;
    this.used = 0;
    this.garbage = 0;
    this.buckets.fill(EMPTY);
  }

  /** Twice the room for recent strings (at least one), starting empty: they are a cache. */
  private growRecent(): void {
    const size = Math.min(this.recent, Math.max(1, 2 * this.recentSlots.length));
    this.recentIds = new Array<string | undefined>(size).fill(undefined);
    this.recentSlots = new Int32Array(size).fill(-1);
    this.recentLengths = new Int32Array(size);
    this.recentChars = 0;
    this.recentCount = 0;
  }

  /** Drops the recent string of `slot`, if one is kept (slot -1: none). */
  private forget(slot: number): void {
    if (slot < 0 || this.recentSlots.length === 0) return;
    const at = slot & (this.recentSlots.length - 1);
    if (this.recentSlots[at] !== slot) return;
    this.recentChars -= this.recentLengths[at]!;
    this.recentCount--;
    this.recentIds[at] = undefined;
    this.recentSlots[at] = -1;
  }

  /** UTF-8 of `id` into `scratch`; -1 when it cannot be a stored id. */
  private encode(id: string): number {
    if (id.length > MAX_ID_BYTES || !isWellFormed(id)) return -1;
    const { read, written } = encoder.encodeInto(id, scratch);
    return read === id.length ? written : -1;
  }

  /** Whether the id in `slot` is the `length` bytes in `scratch`, whose length and tag are `key`. */
  private equalsAt(slot: number, length: number, key: number): boolean {
    if (this.lengths[slot] !== key) return false;
    const start = this.starts[slot]!;
    for (let i = 0; i < length; i++) if (this.store[start + i] !== scratch[i]) return false;
    return true;
  }

  /** The slot holding the `length` bytes in `scratch`, or -1 with `runEnd` set to the empty bucket that ended the probe run. */
  private find(length: number): number {
    const size = this.buckets.length;
    const hash = hashBytes(scratch, 0, length, this.seed);
    const key = length | ((hash >>> (32 - (16 - LENGTH_BITS))) << LENGTH_BITS);
    this.key = key;
    for (let b = homeOf(hash, size); ; b = b + 1 === size ? 0 : b + 1) {
      const entry = this.buckets[b]!;
      if (entry === EMPTY) {
        this.runEnd = b;
        return -1;
      }
      if (this.equalsAt(entry - 1, length, key)) return entry - 1;
    }
  }

  private hashOf(slot: number): number {
    return hashBytes(this.store, this.starts[slot]!, this.lengths[slot]! & LENGTH_MASK, this.seed);
  }

  private bucketOf(slot: number): number {
    const size = this.buckets.length;
    for (let b = homeOf(this.hashOf(slot), size); ; b = b + 1 === size ? 0 : b + 1) {
      const entry = this.buckets[b]!;
      if (entry === slot + 1) return b;
      if (entry === EMPTY) throw new Error(`unreachable: slot ${slot} is in no bucket`);
    }
  }

  /** Empties bucket `hole` and shifts back the entries of its probe run that may now sit earlier. */
  private deleteBucket(hole: number): void {
    const size = this.buckets.length;
    this.buckets[hole] = EMPTY;
    for (let b = hole + 1 === size ? 0 : hole + 1; ; b = b + 1 === size ? 0 : b + 1) {
      const entry = this.buckets[b]!;
      if (entry === EMPTY) return;
      const home = homeOf(this.hashOf(entry - 1), size);
      // The entry may move into the hole unless its home lies cyclically in (hole, b].
      const homeInRun = hole <= b ? home > hole && home <= b : home > hole || home <= b;
      if (!homeInRun) {
        this.buckets[hole] = entry;
        this.buckets[b] = EMPTY;
        hole = b;
      }
    }
  }

  private rehash(capacity: number): void {
    this.buckets = new Uint32Array(capacity);
    for (let slot = 0; slot < this.count; slot++) {
      let b = homeOf(this.hashOf(slot), capacity);
      while (this.buckets[b] !== EMPTY) b = b + 1 === capacity ? 0 : b + 1;
      this.buckets[b] = slot + 1;
    }
  }

  private reserveSlots(n: number): void {
    if (n <= this.starts.length) return;
    const capacity = Math.ceil(Math.max(n, this.starts.length * GROWTH));
    const starts = new Uint32Array(capacity);
    starts.set(this.starts.subarray(0, this.count));
    const lengths = new Uint16Array(capacity);
    lengths.set(this.lengths.subarray(0, this.count));
    this.starts = starts;
    this.lengths = lengths;
  }

  /** Room for `n` more bytes: compacts when at least half the store is garbage, else grows it. */
  private reserveBytes(n: number): void {
    if (this.used + n <= this.store.length) return;
    const live = this.used - this.garbage;
    const capacity = this.garbage >= this.used / 2 ? Math.max(this.store.length, live + n) : Math.ceil(Math.max(live + n, this.store.length * GROWTH));
    const store = new Uint8Array(capacity);
    if (this.garbage === 0) {
      // Nothing to compact (a table only ever added to, as while opening): one copy, offsets unchanged.
      store.set(this.store.subarray(0, this.used));
      this.store = store;
      return;
    }
    let at = 0;
    for (let slot = 0; slot < this.count; slot++) {
      const start = this.starts[slot]!;
      const length = this.lengths[slot]! & LENGTH_MASK;
      store.set(this.store.subarray(start, start + length), at);
      this.starts[slot] = at;
      at += length;
    }
    this.store = store;
    this.used = at;
    this.garbage = 0;
  }
}
