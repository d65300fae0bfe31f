import { MemstoreError } from '../errors.js';
import { FAST_SCAN_GROUP_BYTES, FAST_SCAN_LANES, type RqBits } from '../kernels/contract.js';

/**
 * The block layout of the fast-scan kernels (src/kernels/KERNELS.md, "Fast scan"): an rq code's
 * levels cut into 4-bit nibbles, and 32 codes' nibbles interleaved so that one 16-byte load holds
 * group g of every lane, lanes 0-15 in the low nibbles and 16-31 in the high ones.
 */

/** Dimensions must be a multiple of this: every nibble then holds whole levels of one code, for every bit width. */
export const FAST_SCAN_DIM_STEP = 32;

/** Groups (nibbles) of a code of `dim` dimensions at `bits` bits per dimension: dim · bits / 4. */
export function fastScanGroups(bits: RqBits, dim: number): number {
  if (!(Number.isInteger(dim) && dim > 0 && dim % FAST_SCAN_DIM_STEP === 0)) {
    throw new MemstoreError('INVALID_ARGUMENT', `fast-scan dimensions must be a positive multiple of ${FAST_SCAN_DIM_STEP}, got ${dim}`);
  }
  return (dim * bits) / 4;
}

/** Bytes of one block of 32 codes of `groups` nibbles. */
export function fastScanBlockBytes(groups: number): number {
  return groups * FAST_SCAN_GROUP_BYTES;
}

/**
 * The nibbles of one code: `levels` holds dim levels u_i in [0, 2^bits), and nibble g packs the
 * 4 / bits levels u_{g·k}, …, u_{g·k + k − 1} (k = 4 / bits), the first in the lowest bits.
 */
export function nibblesOf(bits: RqBits, levels: Uint8Array, dim: number): Uint8Array {
  const groups = fastScanGroups(bits, dim);
  if (levels.length < dim) throw new MemstoreError('INVALID_ARGUMENT', `${dim} levels needed, got ${levels.length}`);
  const perNibble = 4 / bits;
  const top = (1 << bits) - 1;
  const out = new Uint8Array(groups);
  for (let g = 0; g < groups; g++) {
    let nibble = 0;
    for (let k = 0; k < perNibble; k++) {
      const level = levels[g * perNibble + k]!;
      if (level > top) throw new MemstoreError('INVALID_ARGUMENT', `level ${level} of dimension ${g * perNibble + k} does not fit in ${bits} bits`);
      nibble |= level << (k * bits);
    }
    out[g] = nibble;
  }
  return out;
}

function checkLane(lane: number): void {
  if (!(Number.isInteger(lane) && lane >= 0 && lane < FAST_SCAN_LANES)) {
    throw new MemstoreError('INVALID_ARGUMENT', `lane must be an integer from 0 to ${FAST_SCAN_LANES - 1}, got ${lane}`);
  }
}

/** Writes one code's nibbles (one per group) into `lane` of `block`, leaving the other 31 lanes as they are. */
export function writeLane(block: Uint8Array, lane: number, nibbles: Uint8Array): void {
  checkLane(lane);
  if (block.length < fastScanBlockBytes(nibbles.length)) {
    throw new MemstoreError('INVALID_ARGUMENT', `a block of ${nibbles.length} groups needs ${fastScanBlockBytes(nibbles.length)} bytes, got ${block.length}`);
  }
  const high = lane >= 16;
  const at = lane & 15;
  for (let g = 0; g < nibbles.length; g++) {
    const i = g * FAST_SCAN_GROUP_BYTES + at;
    const nibble = nibbles[g]! & 0x0f;
    block[i] = high ? (block[i]! & 0x0f) | (nibble << 4) : (block[i]! & 0xf0) | nibble;
  }
}

/** The `groups` nibbles of `lane` in `block`, as writeLane took them. */
export function readLane(block: Uint8Array, lane: number, groups: number): Uint8Array {
  checkLane(lane);
  if (block.length < fastScanBlockBytes(groups)) {
    throw new MemstoreError('INVALID_ARGUMENT', `a block of ${groups} groups needs ${fastScanBlockBytes(groups)} bytes, got ${block.length}`);
  }
  const shift = lane >= 16 ? 4 : 0;
  const at = lane & 15;
  const out = new Uint8Array(groups);
  for (let g = 0; g < groups; g++) out[g] = (block[g * FAST_SCAN_GROUP_BYTES + at]! >> shift) & 0x0f;
  return out;
}
