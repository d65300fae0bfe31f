/**
 * Sign sketches: one bit per dimension of a query (set when the component is positive), so that
 * near queries, which mostly agree in sign, are found by Hamming distance over a few 32-bit words
 * instead of a float pass over every remembered query.
 */

export function signSketch(v: Float32Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(v.length / 32));
  // On the float's bits, without a branch: a query's signs are a coin toss per component, and a
  // branch on each mispredicts half the time (a CPU profile of the 10k cache bench's stream: 4 µs
  // a 512-d query with the branch, 1.2 µs without).
  // As an int32, a float is > 0 exactly when its int is > 0 (-0 is the least int32, NaN never comes:
  // queries are checked), and `(-x & ~x) >>> 31` is 1 exactly for x > 0.
  const bits = new Int32Array(v.buffer, v.byteOffset, v.length);
  for (let w = 0; w < out.length; w++) {
    const base = 32 * w;
    const end = Math.min(32, v.length - base);
    let word = 0;
    for (let b = 0; b < end; b++) {
      const x = bits[base + b]!;
      word |= ((-x & ~x) >>> 31) << b;
    }
    out[w] = word;
  }
  return out;
}

/**
 * Bits that differ between two sketches (or, once the count passes `limit`, that count so far),
 * counted in registers (SWAR popcount): a table of counts would be read at random for every
 * remembered query, from a CPU cache the scans keep emptying.
 */
export function hamming(a: Uint32Array, b: Uint32Array, limit = Infinity): number {
  return hammingAt(a, 0, b, limit);
}

/** hamming() of the sketch at `a[from..]` (as long as `b`) and `b`. */
function hammingAt(a: Uint32Array, from: number, b: Uint32Array, limit: number): number {
  let d = 0;
  for (let i = 0; i < b.length; i++) {
    let x = a[from + i]! ^ b[i]!;
    x = x - ((x >>> 1) & 0x55555555);
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    x = (x + (x >>> 4)) & 0x0f0f0f0f;
    d += Math.imul(x, 0x01010101) >>> 24;
    // Past `limit` the exact count does not matter to the caller.
    if (d > limit) return d;
  }
  return d;
}

/** Words of a query the hash reads: its first ones (a few cache lines); equality is checked on all of them after. */
const HASHED_WORDS = 64;

/** A hash of the exact bits of `v` (its length and first words), to find a repeated query at once (equality is checked after). */
export function bitsHash(v: Float32Array): number {
  const words = new Uint32Array(v.buffer, v.byteOffset, Math.min(v.length, HASHED_WORDS));
  let h = Math.imul(0x811c9dc5 ^ v.length, 0x01000193);
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  return h >>> 0;
}


/**
 * Sketches of many items side by side in one array, so that comparing a query with all of them reads
 * a few contiguous cache lines instead of following a pointer per item to an array of its own.
 */
export class SketchTable<T> {
  private rows = new Uint32Array(0);
  private readonly items: T[] = [];
  private readonly rowOf = new Map<T, number>();

  constructor(readonly words: number) {}

  get size(): number {
    return this.items.length;
  }

  add(item: T, sketch: Uint32Array): void {
    if (sketch.length !== this.words || this.rowOf.has(item)) throw new RangeError('a sketch of another length, or an item already in the table');
    const row = this.items.length;
    if ((row + 1) * this.words > this.rows.length) {
      const grown = new Uint32Array(Math.max(16, 2 * (row + 1)) * this.words);
      grown.set(this.rows);
      this.rows = grown;
    }
    this.rows.set(sketch, row * this.words);
    this.items.push(item);
    this.rowOf.set(item, row);
  }

  /** Removes `item`; the last row moves into its place. */
  delete(item: T): void {
    const row = this.rowOf.get(item);
    if (row === undefined) return;
    this.rowOf.delete(item);
    const last = this.items.length - 1;
    const moved = this.items.pop()!;
    if (row === last) return;
    this.rows.copyWithin(row * this.words, last * this.words, (last + 1) * this.words);
    this.items[row] = moved;
    this.rowOf.set(moved, row);
  }

  /** Calls `visit(item, distance)` for every item whose sketch differs from `sketch` in at most `limit` bits. */
  near(sketch: Uint32Array, limit: number, visit: (item: T, distance: number) => void): void {
    for (let row = 0; row < this.items.length; row++) {
      const d = hammingAt(this.rows, row * this.words, sketch, limit);
      if (d <= limit) visit(this.items[row]!, d);
    }
  }
}
