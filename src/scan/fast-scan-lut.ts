import { FAST_SCAN_GROUP_BYTES, type RqBits } from '../kernels/contract.js';
import { froundUp } from '../codec/rq.js';
import { fastScanGroups } from './fast-scan-layout.js';

/**
 * A query as the fast-scan kernels take it (src/kernels/KERNELS.md, "Fast scan"): for each group g
 * of 4 / bits dimensions and each of the 16 values n its nibble can take, the partial inner product
 * val_g[n] = Σ_{d in g} (level_d(n) − m) · q_d of the code's grid point ŷ with the rotated query,
 * quantized to a byte with one step `delta` for all groups and an offset per group. A code's sum
 * S = Σ_g LUT[g][nibble_g] then gives delta · S + bias ≈ ⟨ŷ, q⟩.
 */
export interface FastScanLut {
  /** G · 16 bytes, entry n of group g at g · 16 + n. */
  readonly lut: Uint8Array;
  /** The float32 step of the table's bytes, at least max_g(max_n val_g − min_n val_g) / 255. */
  readonly delta: number;
  /** Σ_g min_n val_g, rounded to float32. */
  readonly bias: number;
  /**
   * A bound on |delta · S + bias − ⟨ŷ, q⟩| for every code, with S exact and the operations exact:
   * G · delta · (½ + 2^-40) for the rounding of the table's entries, plus what rounding the bias to
   * float32 lost. The kernels' float32 steps after S add their own rounding (KERNELS.md, "Fast scan").
   */
  readonly maxError: number;
}

/**
 * The table of `qRotated` (the rotated query, its length D a multiple of 32) against rq codes of
 * `bits` bits per dimension, whose nibbles nibblesOf() packs.
 */
export function buildLut(bits: RqBits, qRotated: Float32Array): FastScanLut {
  const lut = new Uint8Array(fastScanGroups(bits, qRotated.length) * FAST_SCAN_GROUP_BYTES);
  return { lut, ...writeTable(bits, qRotated, lut) };
}

/** A table's constants, its bytes written elsewhere. */
export type TableParams = Omit<FastScanLut, 'lut'>;

const lowHalf = new Float64Array(4);
const highHalf = new Float64Array(4);

/** The nearest integer to x ≥ 0, at most 255 (rounding half up, as Math.round does for x ≥ 0). */
function roundEntry(x: number): number {
  const r = (x + 0.5) | 0;
  return r > 255 ? 255 : r;
}

/**
 * The halves of group g's nibble values: val_g[n] = low[n & 3] + high[n >> 2] (a nibble is two
 * halves), eight products per group instead of sixteen sums of 4 / B. Each pass of writeTable()
 * computes them again rather than keeping G · 16 values: the same operations give the same values.
 * With delta 0 (a zero query), inv is 0 and every entry is 0.
 */
function halves(bits: RqBits, q: Float32Array, d0: number, low: Float64Array, high: Float64Array): void {
  if (bits === 4) {
    const x = q[d0]!;
    for (let j = 0; j < 4; j++) {
      low[j] = (j - 7.5) * x;
      high[j] = 4 * j * x;
    }
  } else if (bits === 2) {
    const q0 = q[d0]!;
    const q1 = q[d0 + 1]!;
    for (let j = 0; j < 4; j++) {
      low[j] = (j - 1.5) * q0;
      high[j] = (j - 1.5) * q1;
    }
  } else {
    const q0 = q[d0]! / 2;
    const q1 = q[d0 + 1]! / 2;
    const q2 = q[d0 + 2]! / 2;
    const q3 = q[d0 + 3]! / 2;
    for (let j = 0; j < 4; j++) {
      low[j] = (j & 1 ? q0 : -q0) + (j & 2 ? q1 : -q1);
      high[j] = (j & 1 ? q2 : -q2) + (j & 2 ? q3 : -q3);
    }
  }
}

/**
 * Writes the table of `qRotated` into `table` (G · 16 bytes) and returns its constants (buildLut).
 * The definition the table kernel (FastScanTableFn) matches bit for bit, pass for pass.
 *
 * Pass 1 takes each group's least and most value from its halves: rounding is monotonic, so
 * fl(min low + min high) is the least of the sixteen fl(low[a] + high[b]), and likewise the most.
 * Pass 2 writes the entries.
 */
export function writeTable(bits: RqBits, qRotated: Float32Array, table: Uint8Array): TableParams {
  const dim = qRotated.length;
  const groups = fastScanGroups(bits, dim);
  const entries = groups * FAST_SCAN_GROUP_BYTES;
  if (table.length < entries) throw new RangeError(`a table of ${groups} groups needs ${entries} bytes`);
  const perNibble = 4 / bits;
  const low = lowHalf;
  const high = highHalf;
  let widest = 0;
  for (let g = 0; g < groups; g++) {
    halves(bits, qRotated, g * perNibble, low, high);
    const lo = Math.min(low[0]!, low[1]!, low[2]!, low[3]!) + Math.min(high[0]!, high[1]!, high[2]!, high[3]!);
    const hi = Math.max(low[0]!, low[1]!, low[2]!, low[3]!) + Math.max(high[0]!, high[1]!, high[2]!, high[3]!);
    widest = Math.max(widest, hi - lo);
  }
  const delta = widest > 0 ? froundUp(widest / 255) : 0;
  // Multiplying by 1/delta, not dividing: the quotient may be off by a few ulps of 255, so an entry
  // is within ½ + 2^-40 steps of its value, and maxError counts that.
  const inv = delta > 0 ? 1 / delta : 0;
  let exactBias = 0;
  for (let g = 0, e = 0; g < groups; g++) {
    halves(bits, qRotated, g * perNibble, low, high);
    const lo = Math.min(low[0]!, low[1]!, low[2]!, low[3]!) + Math.min(high[0]!, high[1]!, high[2]!, high[3]!);
    exactBias += lo;
    for (let n = 0; n < 16; n++, e++) {
      const value = low[n & 3]! + high[n >> 2]!;
      table[e] = roundEntry((value - lo) * inv);
    }
  }
  return tableParams(groups, delta, exactBias);
}

/**
 * The constants of a query's table from its step and exact (float64) sum of offsets: what
 * writeTable() and the table kernel (FastScanTableFn) leave behind. The bias is that sum rounded to
 * float32; maxError is G · delta · (½ + 2^-40) plus what that rounding lost (KERNELS.md, "Fast scan").
 */
export function tableParams(groups: number, delta: number, exactBias: number): TableParams {
  const bias = Math.fround(exactBias);
  return { delta, bias, maxError: groups * delta * (0.5 + 2 ** -40) + Math.abs(bias - exactBias) };
}

/**
 * An upper bound on buildLut(bits, qRotated).maxError in one pass over the query, without the
 * table: group g's entries span exactly (2^B − 1) · Σ_{d in g} |q_d|, so delta is at most the
 * widest span over 255 (a relative 2^-40 over for the float64 sums, rounded up to float32), and the
 * bias loses at most 2^-24 of Σ_g |min_g| ≤ m · Σ|q_d|, or 2^-150 where it rounds to a float32
 * subnormal (Infinity when it overflows float32, as maxError then is). The lookaside cache bounds how far a score
 * can move between two queries with it (src/cache/CACHE.md).
 */
export function lutErrorBound(bits: RqBits, qRotated: Float32Array): number {
  const dim = qRotated.length;
  const groups = fastScanGroups(bits, dim);
  const perNibble = 4 / bits;
  const top = (1 << bits) - 1;
  let widest = 0;
  let total = 0;
  for (let g = 0; g < groups; g++) {
    let span = 0;
    for (let k = 0; k < perNibble; k++) span += Math.abs(qRotated[g * perNibble + k]!);
    total += span;
    if (span > widest) widest = span;
  }
  const delta = froundUp(((top * widest) / 255) * (1 + 2 ** -40));
  // |Σ_g min_g| ≤ m · Σ|q_d|: its float32 rounding loses at most 2^-24 of it while normal, and up to
  // 2^-150 outright in the subnormal range; past float32's range the bias is infinite, and so is maxError.
  const bias = (top / 2) * total;
  if (Math.fround(bias * (1 + 2 ** -20)) === Infinity) return Infinity;
  return groups * delta * (0.5 + 2 ** -40) + bias * 2 ** -23 + 2 ** -149;
}
