import { kernels } from '../kernels/index.js';
// The same function for every member wherever its squared norm is taken (joins, leaves, sums afresh, opening): each multiple is then a function of the member.
import { dot } from '../vector.js';

/** The members of each page, as PageSums sums them afresh. */
export interface PageMembers {
  /** How many members `page` has. */
  countOf(page: number): number;
  /** Decodes every member of `page`, one after another, into `out` (room for countOf(page) × dim floats). */
  decodeInto(page: number, out: Float32Array): void;
}

/** Bits of an int32 sum: the bits of a member's multiple of the grid and those of the member count share them. */
const SUM_BITS = 31;
/** Bits of the exact float64 sum of squared norms: a member's multiple of its grid and the member count share them. */
const SQUARE_BITS = 52;
/** Below every float32 value but zero (the least subnormal is 2^−149). */
const LEAST_EXPONENT = -150;
/** The exponent of an empty page: every member's is above it. */
const EMPTY = -100_000;

const bits = new Float64Array(1);
const words = new Int32Array(bits.buffer);

/** floor(log2(m)) for m > 0, read from the float64's exponent bits (no rounding of log2); LEAST_EXPONENT for 0. */
function exponentOf(m: number): number {
  if (m === 0) return LEAST_EXPONENT;
  bits[0] = m;
  return Math.max(LEAST_EXPONENT, ((words[1]! >>> 20) & 0x7ff) - 1023);
}

function largestMagnitude(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]!);
    if (a > m) m = a;
  }
  return m;
}

/** A page's E (the exponent of its members' largest magnitude) and how many members have it, as members' largest magnitudes are added. */
class TopExponent {
  top = EMPTY;
  atTop = 0;

  add(largest: number): void {
    const e = exponentOf(largest);
    if (e > this.top) {
      this.top = e;
      this.atTop = 1;
    } else if (e === this.top) {
      this.atTop++;
    }
  }
}

/** Bits that hold counts up to `n`: the least b with n < 2^b. */
function bitsFor(n: number): number {
  return 32 - Math.clz32(n);
}

/**
 * The sum of each page's vectors, kept exact so that it depends on which vectors a page holds and
 * never on the order they came and went in (PAGES.md, "Determinism"). Each value is rounded to its
 * page's grid and the multiples are added as int32s, exactly. The grid of a page with members of
 * largest magnitude in [2^E, 2^(E+1)) is 2^(E + 1 − P), each multiple below 2^P in magnitude,
 * where P = 31 − C and the page's count is below 2^C: so no sum leaves int32. C is enough bits for
 * `roomFor` members (twice the largest page the index keeps) and more only while a page is larger.
 *
 * A member that raises E, the last member at E leaving, or a count that needs another C changes
 * the grid: the page is summed again from its members before its mean is next read, as opening
 * sums every page. So a store that reopens (or recovers from a crash) has the centroids of the
 * store that never closed, bit for bit, and splits, routes and answers as it would have.
 */
export class PageSums {
  /**
   * Per page, the integer multiples of its grid, dim each; undefined for a page whose sums were
   * released (release()) and not made again since.
   */
  private sums: (Int32Array | undefined)[] = [];
  /** Per page, E; how many members have a largest magnitude in [2^E, 2^(E+1)); C. */
  private exponents: number[] = [];
  private atTop: number[] = [];
  private countBits: number[] = [];
  /** Per page, whether its sums wait to be made afresh from its members (at the next mean()). */
  private stale: boolean[] = [];
  /**
   * With `keepSquares`, per page, the sum of its members' squared norms as integer multiples of a
   * grid, in a float64 that holds it exactly: so it too depends on which vectors a page holds, never
   * on their order. A member's squared norm is below dim · 2^(2E+2), so the grid is
   * 2^(2E + 2 + ⌈log2 dim⌉ − (52 − C)) and no sum reaches 2^52; it changes with E and C, as the
   * vectors' grid does, and is made afresh with it.
   */
  private squares: number[] = [];
  private readonly dimBits: number;
  /** C for a page of up to roomFor members. */
  private readonly leastCountBits: number;

  constructor(
    readonly dim: number,
    /** Members a page holds in the ordinary course (at most 2^24); a larger page costs precision, not exactness. */
    roomFor: number,
    private readonly members: PageMembers,
    /** Keep each page's mean squared norm (meanSquaredNorm()): a dot store's router widens pages by their spread. */
    readonly keepSquares = false,
  ) {
    if (!(Number.isInteger(roomFor) && roomFor >= 1 && roomFor <= 2 ** 24)) throw new RangeError(`roomFor must be an integer from 1 to 2^24, got ${roomFor}`);
    this.leastCountBits = bitsFor(roomFor);
    this.dimBits = Math.ceil(Math.log2(dim));
  }

  get pageCount(): number {
    return this.sums.length;
  }

  /** Bytes held: each page's sums while it keeps them, and its grid and flags. */
  get bytes(): number {
    let bytes = 40 * this.sums.length;
    for (const sum of this.sums) if (sum !== undefined) bytes += sum.byteLength;
    return bytes;
  }

  /** A new empty page at the end. */
  addPage(): void {
    this.sums.push(new Int32Array(this.dim));
    this.exponents.push(EMPTY);
    this.atTop.push(0);
    this.countBits.push(this.leastCountBits);
    this.stale.push(false);
    this.squares.push(0);
  }

  /**
   * Gives back `page`'s sums (4 bytes a dimension) until a change of its members needs them: the page
   * is then summed afresh from its members, as after a change of grid, to the same multiples. An
   * index opened to be searched keeps no sums (15 bytes a vector at 512-d in pages of 136), and one
   * written to makes them again page by page.
   */
  release(page: number): void {
    this.sums[page] = undefined;
    this.stale[page] = true;
  }

  /** Drops `page` (empty): the last page takes its number, as PageStore.removeEmptyPage does. */
  removeSwap(page: number): void {
    const last = this.sums.length - 1;
    this.sums[page] = this.sums[last];
    this.exponents[page] = this.exponents[last]!;
    this.atTop[page] = this.atTop[last]!;
    this.countBits[page] = this.countBits[last]!;
    this.stale[page] = this.stale[last]!;
    this.squares[page] = this.squares[last]!;
    this.squares.pop();
    this.sums.pop();
    this.exponents.pop();
    this.atTop.pop();
    this.countBits.pop();
    this.stale.pop();
  }

  /**
   * `v` is now a member of `page`, which holds `count` with it (visit() sees it). A change of grid
   * leaves the page to be summed afresh when its mean is next asked for: a re-clustering that moves
   * many vectors in and out of a page between two reads of its centroid sums it once.
   */
  joined(page: number, v: Float32Array, count: number, squared: number): void {
    if (this.stale[page]) return;
    const e = exponentOf(largestMagnitude(v));
    const top = this.exponents[page]!;
    if (e > top || this.gridCountBits(count) !== this.countBits[page]) {
      this.stale[page] = true;
      return;
    }
    if (e === top) this.atTop[page]!++;
    this.accumulate(page, v, 1, squared);
  }

  /** The mean squared norm of `page`'s `count` members (0 when empty), with `keepSquares`; 0 without. */
  meanSquaredNorm(page: number, count: number): number {
    if (this.stale[page]) this.recompute(page);
    if (count === 0 || this.exponents[page] === EMPTY) return 0;
    return (this.squares[page]! * this.squareGridOf(page)) / count;
  }

  /** `v` is no longer a member of `page`, which holds `count` without it (visit() no longer sees it). */
  left(page: number, v: Float32Array, count: number, squared: number): void {
    if (this.stale[page]) return;
    const atTop = exponentOf(largestMagnitude(v)) === this.exponents[page];
    if ((atTop && --this.atTop[page]! === 0) || this.gridCountBits(count) !== this.countBits[page]) {
      this.stale[page] = true;
      return;
    }
    this.accumulate(page, v, -1, squared);
  }

  /**
   * Sums `page` afresh from its members: its grid from their largest magnitude and their count, then
   * their multiples. The members are decoded once into a block of linear memory, given back after,
   * and summed by the kernels as opening sums them (recomputeInMemory): a page written to after it
   * was opened (its sums released) costs this once, about a tenth of decoding each member twice
   * in JavaScript.
   */
  recompute(page: number): void {
    const count = this.members.countOf(page);
    if (count === 0) {
      this.setGrid(page, new TopExponent(), 0);
      return;
    }
    const mem = kernels().memory;
    const bytes = count * this.dim * 4;
    const block = mem.allocScratch(bytes);
    const scratch = mem.allocScratch(4 * (count + this.dim));
    try {
      this.members.decodeInto(page, mem.f32().subarray(block >> 2, (block >> 2) + count * this.dim));
      this.recomputeInMemory(page, block, count, scratch);
    } finally {
      mem.freeScratch(scratch, 4 * (count + this.dim));
      mem.freeScratch(block, bytes);
    }
  }

  /**
   * recompute(`page`) from its `count` members' decoded vectors, one after another as float32 in
   * linear memory from `members`, by the page-sum kernels (KERNELS.md, "Page sums"): what
   * largestMagnitude() and accumulate() compute, bit for bit. `scratch`: room for `count` float32
   * and `dim` int32. `squaredNorms`, when the caller has them (dot() of each member with itself, as
   * accumulate() takes them), spare a pass over the members for keepSquares.
   */
  recomputeInMemory(page: number, members: number, count: number, scratch: number, squaredNorms?: Float64Array): void {
    const k = kernels();
    const dim = this.dim;
    k.rowMaxAbs(members, count, dim, scratch);
    const maxes = k.memory.f32();
    const top = new TopExponent();
    for (let r = 0; r < count; r++) top.add(maxes[(scratch >> 2) + r]!);
    this.setGrid(page, top, count);
    if (this.keepSquares && top.top !== EMPTY) {
      const f32 = k.memory.f32();
      for (let r = 0; r < count; r++) {
        let squared = squaredNorms?.[r];
        if (squared === undefined) {
          const v = f32.subarray((members >> 2) + r * dim, (members >> 2) + (r + 1) * dim);
          squared = dot(v, v);
        }
        this.accumulateSquaredNorm(page, squared, 1);
      }
    }
    const sumsAt = scratch + 4 * count;
    k.memory.i32().fill(0, sumsAt >> 2, (sumsAt >> 2) + dim);
    if (top.top !== EMPTY) k.sumMultiples(members, count, dim, this.upOf(page), sumsAt);
    this.sums[page]!.set(k.memory.i32().subarray(sumsAt >> 2, (sumsAt >> 2) + dim));
  }

  private setGrid(page: number, top: TopExponent, count: number): void {
    this.exponents[page] = top.top;
    this.atTop[page] = top.atTop;
    this.countBits[page] = this.gridCountBits(count);
    this.stale[page] = false;
    const sum = this.sums[page];
    if (sum === undefined) this.sums[page] = new Int32Array(this.dim);
    else sum.fill(0);
    this.squares[page] = 0;
  }

  /** The mean of `page`'s `count` members into `out` (float32 rounding of the exact mean's float64 quotient); zeros when empty. */
  mean(page: number, count: number, out: Float32Array): void {
    if (this.stale[page]) this.recompute(page);
    const sum = this.sums[page]!;
    const top = this.exponents[page]!;
    if (count === 0 || top === EMPTY) {
      out.fill(0);
      return;
    }
    const grid = 2 ** (top + 1 - (SUM_BITS - this.countBits[page]!));
    for (let i = 0; i < this.dim; i++) out[i] = (sum[i]! * grid) / count;
  }

  private gridCountBits(count: number): number {
    return Math.max(this.leastCountBits, bitsFor(count));
  }

  /** What a value of `page` is multiplied by before it is rounded to a multiple of the grid. */
  private upOf(page: number): number {
    return 2 ** (SUM_BITS - this.countBits[page]! - 1 - this.exponents[page]!);
  }

  /** The grid of `page`'s sum of squared norms (keepSquares). */
  private squareGridOf(page: number): number {
    return 2 ** (2 * this.exponents[page]! + 2 + this.dimBits - (SQUARE_BITS - this.countBits[page]!));
  }

  /** Adds (or takes away) a squared norm as a multiple of `page`'s grid: exact, as the multiples are integers and their sum stays below 2^52. */
  private accumulateSquaredNorm(page: number, squared: number, sign: 1 | -1): void {
    this.squares[page]! += sign * Math.round(squared / this.squareGridOf(page));
  }

  /** Adds (or takes away) `v`, and with keepSquares its squared norm `squared` (dot(v, v), which the caller may have for itself). */
  private accumulate(page: number, v: Float32Array, sign: 1 | -1, squared: number): void {
    if (this.keepSquares) this.accumulateSquaredNorm(page, squared, sign);
    const sum = this.sums[page]!;
    const dim = this.dim;
    // |v| < 2^(E+1), so each multiple is below 2^P. Rounded as floor(x + 0.5), the same function
    // wherever a value is summed (Math.round costs 3x as much here), before the sign is applied:
    // halves go up, so the multiple of −x may not be minus that of x.
    const up = this.upOf(page);
    if (sign === 1) for (let i = 0; i < dim; i++) sum[i] = (sum[i]! + (Math.floor(v[i]! * up + 0.5) | 0)) | 0;
    else for (let i = 0; i < dim; i++) sum[i] = (sum[i]! - (Math.floor(v[i]! * up + 0.5) | 0)) | 0;
  }
}
