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
   * G · delta / 2 for the rounding of the table's entries, plus what rounding the bias to float32
   * lost. The kernels' float32 steps after S add their own rounding (KERNELS.md, "Fast scan").
   */
  readonly maxError: number;
}

/**
 * The table of `qRotated` (the rotated query, its length D a multiple of 32) against rq codes of
 * `bits` bits per dimension, whose nibbles nibblesOf() packs.
 */
export function buildLut(bits: RqBits, qRotated: Float32Array): FastScanLut {
  const dim = qRotated.length;
  const groups = fastScanGroups(bits, dim);
  const perNibble = 4 / bits;
  const levelMask = (1 << bits) - 1;
  const m = levelMask / 2;
  const values = new Float64Array(groups * FAST_SCAN_GROUP_BYTES);
  const mins = new Float64Array(groups);
  let widest = 0;
  for (let g = 0; g < groups; g++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let n = 0; n < 16; n++) {
      let value = 0;
      for (let k = 0; k < perNibble; k++) value += (((n >> (k * bits)) & levelMask) - m) * qRotated[g * perNibble + k]!;
      values[g * 16 + n] = value;
      if (value < lo) lo = value;
      if (value > hi) hi = value;
    }
    mins[g] = lo;
    if (hi - lo > widest) widest = hi - lo;
  }
  const delta = widest > 0 ? froundUp(widest / 255) : 0;
  const lut = new Uint8Array(groups * FAST_SCAN_GROUP_BYTES);
  let exactBias = 0;
  for (let g = 0; g < groups; g++) {
    exactBias += mins[g]!;
    if (delta === 0) continue;
    for (let n = 0; n < 16; n++) lut[g * 16 + n] = Math.min(255, Math.round((values[g * 16 + n]! - mins[g]!) / delta));
  }
  const bias = Math.fround(exactBias);
  return { lut, delta, bias, maxError: (groups * delta) / 2 + Math.abs(bias - exactBias) };
}
