import { SKETCH_WORD_STEP } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import { inputCopied, kernelScratch } from '../kernels/scratch.js';

/**
 * Sign sketches: one bit per dimension of a query (set when the component is positive), so that
 * near queries, which mostly agree in sign, are found by Hamming distance over a few 32-bit words
 * instead of a float pass over every remembered query.
 */

/** Words of a sketch as tables and the kernels hold it: zero-padded to a multiple of SKETCH_WORD_STEP. */
function paddedWords(words: number): number {
  return Math.ceil(words / SKETCH_WORD_STEP) * SKETCH_WORD_STEP;
}

/**
 * The sign sketch of `v`: bit i % 32 of word i / 32 set when component i is > 0 (zeros of either
 * sign are not), bits past the vector clear. One call of the sign_sketch kernel over a copy: four
 * components compared per step (a JavaScript loop over the float's bits took 1.2 µs at 512-d).
 */
export function signSketch(v: Float32Array): Uint32Array {
  const words = Math.ceil(v.length / 32);
  const out = new Uint32Array(words);
  if (words === 0) return out;
  const floats = 32 * words;
  const length = v.length;
  const at = kernelScratch(4 * (floats + words));
  inputCopied(v, length);
  const k = kernels();
  const f32 = k.memory.f32();
  f32.set(v, at >> 2);
  f32.fill(0, (at >> 2) + v.length, (at >> 2) + floats);
  k.signSketch(at, words, at + 4 * floats);
  out.set(new Uint32Array(k.memory.memory.buffer, at + 4 * floats, words));
  return out;
}

/** Words of a query the hash reads: its first ones (a few cache lines); equality is checked on all of them after. */
const HASHED_WORDS = 64;

/** A hash of the exact bits of `v` (its length and first words), to find a repeated query at once (equality is checked after). */
export function bitsHash(v: Float32Array): number {
  return bytesHash(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
}

/** bitsHash() of the float32 components whose bytes `b` views (float32Bytes()), little-endian as every platform Node runs on. */
export function bytesHash(b: Uint8Array): number {
  const length = b.length >> 2;
  const words = Math.min(length, HASHED_WORDS);
  let h = Math.imul(0x811c9dc5 ^ length, 0x01000193);
  for (let i = 0; i < 4 * words; i += 4) h = Math.imul(h ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)), 0x01000193);
  return h >>> 0;
}


/**
 * Sketches of many items side by side in one array (each row zero-padded to a multiple of
 * SKETCH_WORD_STEP words), so that comparing a query with all of them is one copy and one call of
 * the hamming_rows kernel instead of a pass per item (a JavaScript popcount over 64 sketches of
 * 512-d took about 2 µs of every search the cache looked up).
 */
export class SketchTable<T> {
  private rows = new Int32Array(0);
  private readonly items: T[] = [];
  private readonly rowOf = new Map<T, number>();
  /** Words a row takes. */
  private readonly stride: number;

  constructor(readonly words: number) {
    this.stride = paddedWords(words);
  }

  get size(): number {
    return this.items.length;
  }

  add(item: T, sketch: Uint32Array): void {
    if (sketch.length !== this.words || this.rowOf.has(item)) throw new RangeError('a sketch of another length, or an item already in the table');
    const row = this.items.length;
    if ((row + 1) * this.stride > this.rows.length) {
      const grown = new Int32Array(Math.max(16, 2 * (row + 1)) * this.stride);
      grown.set(this.rows);
      this.rows = grown;
    }
    // The row's padding is zero: rows start zeroed, and delete() moves whole rows.
    this.rows.set(sketch, row * this.stride);
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
    this.rows.copyWithin(row * this.stride, last * this.stride, (last + 1) * this.stride);
    this.items[row] = moved;
    this.rowOf.set(moved, row);
  }

  /** Calls `visit(item, distance)` for every item whose sketch differs from `sketch` in at most `limit` bits. */
  near(sketch: Uint32Array, limit: number, visit: (item: T, distance: number) => void): void {
    const n = this.items.length;
    if (n === 0) return;
    if (sketch.length !== this.words) throw new RangeError('a sketch of another length');
    const stride = this.stride;
    const at = kernelScratch(4 * ((n + 1) * stride + n));
    const k = kernels();
    const base = at >> 2;
    const query = base + n * stride;
    const out = query + stride;
    let i32 = k.memory.i32();
    i32.set(this.rows.subarray(0, n * stride), base);
    i32.set(sketch, query);
    i32.fill(0, query + this.words, out);
    k.hammingRows(at, n, stride / SKETCH_WORD_STEP, 4 * query, 4 * out);
    // The rows within the limit first, then the visits: a visit may grow linear memory (which
    // replaces the view, and taking it again per row cost more than the kernel) or use the scratch.
    i32 = k.memory.i32();
    const found: number[] = [];
    for (let row = 0; row < n; row++) {
      const d = i32[out + row]!;
      if (d <= limit) found.push(row, d);
    }
    for (let i = 0; i < found.length; i += 2) visit(this.items[found[i]!]!, found[i + 1]!);
  }
}
