/**
 * Which keys a Map of the cache may hold, as counts per hash bucket in one small typed array: a
 * bucket at 0 proves the key absent, so the Map is probed only for keys it may hold.
 *
 * After a scan has pushed everything out of the CPU's caches, one probe of a Map (its hash table
 * and the entry it points at) costs a few cache misses: the hot records' Map, asked about each
 * result of every search, took about 7 µs of a 10k search that missed (a CPU profile, 4% of its
 * time), nearly always to find nothing. One bucket of this array is one cache line at most, and
 * the array is small enough to stay in the CPU's caches between searches.
 *
 * A count that reaches the largest a bucket holds stays there (never counted down again): the
 * bucket then says "maybe" for good, which costs probes, never an answer.
 */
export class Presence {
  private readonly counts: Uint16Array;
  private readonly mask: number;

  /** `buckets`: a power of two, or 0 for one that tells nothing (every key may be there), for budgets too small to spare it. */
  constructor(buckets: number) {
    if (!(buckets === 0 || Number.isInteger(Math.log2(buckets)))) throw new RangeError(`buckets must be 0 or a power of two, got ${buckets}`);
    this.counts = new Uint16Array(buckets);
    this.mask = buckets - 1;
  }

  get bytes(): number {
    return this.counts.byteLength;
  }

  /** False when no key of hash `hash` was added and not yet removed; true when one may have been. */
  mayHave(hash: number): boolean {
    return this.counts.length === 0 || this.counts[this.bucket(hash)] !== 0;
  }

  add(hash: number): void {
    if (this.counts.length === 0) return;
    const at = this.bucket(hash);
    const n = this.counts[at]!;
    if (n < 0xffff) this.counts[at] = n + 1;
  }

  /** Takes back one add() of `hash` (a key the Map held). */
  remove(hash: number): void {
    if (this.counts.length === 0) return;
    const at = this.bucket(hash);
    const n = this.counts[at]!;
    // A saturated bucket has lost count of its keys: it stays "maybe".
    if (n > 0 && n < 0xffff) this.counts[at] = n - 1;
  }

  clear(): void {
    this.counts.fill(0);
  }

  private bucket(hash: number): number {
    return (hash ^ (hash >>> 16)) & this.mask;
  }
}

/** FNV-1a over the UTF-16 code units of `id`: the hash ids are filed under (Presence, SeenIds). */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h;
}

/** The hash a slot number is filed under. */
export function slotHash(slot: number): number {
  return Math.imul(slot ^ 0x9e3779b9, 0x85ebca6b);
}
