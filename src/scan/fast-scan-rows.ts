import type { RqCodec } from '../codec/rq.js';
import { FAST_SCAN_GROUP_BYTES, FAST_SCAN_LANES, rqPlaneBytes } from '../kernels/contract.js';
import { fastScanBlockBytes, fastScanGroups } from './fast-scan-layout.js';

/** The shift of `row`'s nibble in its lane's bytes: lanes 0–15 take the low half, 16–31 the high. */
function laneShift(row: number): number {
  return row % FAST_SCAN_LANES >= 16 ? 4 : 0;
}

/**
 * Rows of codes in the fast-scan layout (src/index/PAGES.md, "Fast-scan pages"; KERNELS.md, "Fast scan"):
 * row i is lane i % 32 of block ⌊i / 32⌋, its levels in 4-bit nibbles. The codec's code (bit planes,
 * then ‖r‖² and ‖e‖, CODECS.md) goes in by writeCode() and comes back, byte for byte, by readCode();
 * the two floats are kept beside the blocks by the caller. These work on linear memory in place and
 * allocate nothing per row.
 */
export class FastScanRows {
  readonly groups: number;
  /** Bytes of one block of 32 rows. */
  readonly blockBytes: number;
  private readonly bits: number;
  private readonly planeBytes: number;
  private readonly perNibble: number;

  constructor(
    codec: RqCodec,
    readonly dim: number,
  ) {
    this.bits = codec.bits;
    this.groups = fastScanGroups(codec.bits, dim);
    this.blockBytes = fastScanBlockBytes(this.groups);
    this.planeBytes = rqPlaneBytes(dim);
    this.perNibble = 4 / codec.bits;
  }

  /** Bytes of the blocks that hold `rows` rows. */
  bytesFor(rows: number): number {
    return Math.ceil(rows / FAST_SCAN_LANES) * this.blockBytes;
  }

  /** Blocks that hold `rows` rows. */
  blocksFor(rows: number): number {
    return Math.ceil(rows / FAST_SCAN_LANES);
  }

  /** Address of the 16-byte step of group 0 that holds `row`'s lane (laneShift() gives its nibble): two numbers and no object, as decode() comes here for every member of a page. */
  private laneAt(blocksPtr: number, row: number): number {
    return blocksPtr + Math.floor(row / FAST_SCAN_LANES) * this.blockBytes + ((row % FAST_SCAN_LANES) & 15);
  }

  /** Writes the levels of `code` (the codec's bit planes, from `codeAt` in `src`) into `row`'s lane; the other lanes stay. */
  writeCode(u8: Uint8Array, blocksPtr: number, row: number, src: Uint8Array, codeAt: number): void {
    const at = this.laneAt(blocksPtr, row);
    const shift = laneShift(row);
    const keep = shift === 0 ? 0xf0 : 0x0f;
    const groups = this.groups;
    const p0 = codeAt;
    const p1 = codeAt + this.planeBytes;
    const p2 = codeAt + 2 * this.planeBytes;
    const p3 = codeAt + 3 * this.planeBytes;
    // One loop per width, the width not tested at each group: opening a store writes every code through here.
    if (this.bits === 1) {
      // Dimensions 4g to 4g + 3: one half of a byte of the plane.
      for (let g = 0, i = at; g < groups; g++, i += FAST_SCAN_GROUP_BYTES) {
        const nibble = (src[p0 + (g >> 1)]! >> ((g & 1) << 2)) & 0x0f;
        u8[i] = (u8[i]! & keep) | (nibble << shift);
      }
    } else if (this.bits === 2) {
      // Dimensions 2g and 2g + 1: two bits of each plane, interleaved (level bit 0, then bit 1, per dimension).
      for (let g = 0, i = at; g < groups; g++, i += FAST_SCAN_GROUP_BYTES) {
        const off = (g & 3) << 1;
        const x0 = (src[p0 + (g >> 2)]! >> off) & 3;
        const x1 = (src[p1 + (g >> 2)]! >> off) & 3;
        const nibble = (x0 & 1) | ((x1 & 1) << 1) | ((x0 & 2) << 1) | ((x1 & 2) << 2);
        u8[i] = (u8[i]! & keep) | (nibble << shift);
      }
    } else {
      // Dimension g: its bit of each of the four planes.
      for (let g = 0, i = at; g < groups; g++, i += FAST_SCAN_GROUP_BYTES) {
        const byte = g >> 3;
        const off = g & 7;
        const nibble = ((src[p0 + byte]! >> off) & 1) | (((src[p1 + byte]! >> off) & 1) << 1) | (((src[p2 + byte]! >> off) & 1) << 2) | (((src[p3 + byte]! >> off) & 1) << 3);
        u8[i] = (u8[i]! & keep) | (nibble << shift);
      }
    }
  }

  /** The bit planes of `row`'s levels, written at `into[0..bits · planeBytes)` (the padding bits past dim zero). */
  readCode(u8: Uint8Array, blocksPtr: number, row: number, into: Uint8Array): void {
    const at = this.laneAt(blocksPtr, row);
    const shift = laneShift(row);
    const { bits, planeBytes, perNibble } = this;
    const mask = (1 << bits) - 1;
    into.fill(0, 0, bits * planeBytes);
    for (let g = 0; g < this.groups; g++) {
      const nibble = (u8[at + g * FAST_SCAN_GROUP_BYTES]! >> shift) & 0x0f;
      for (let k = 0; k < perNibble; k++) {
        const d = g * perNibble + k;
        const level = (nibble >> (k * bits)) & mask;
        for (let b = 0; b < bits; b++) if ((level >> b) & 1) into[b * planeBytes + (d >> 3)]! |= 1 << (d & 7);
      }
    }
  }

  /** `row`'s decoded code, scale · (u_i − m) per dimension as the codec decodes it, into `out[outAt, outAt + dim)`. */
  decode(u8: Uint8Array, blocksPtr: number, row: number, scale: number, out: Float32Array, outAt = 0): void {
    const at = this.laneAt(blocksPtr, row);
    const shift = laneShift(row);
    const groups = this.groups;
    // One loop per width, each level's place in the nibble a constant: opening and a page summed
    // afresh decode every member here (2 bits at 512-d: 1.9 µs a vector with a loop over the nibble's levels).
    if (this.bits === 2) {
      for (let g = 0, d = outAt, i = at; g < groups; g++, i += FAST_SCAN_GROUP_BYTES, d += 2) {
        const nibble = (u8[i]! >> shift) & 0x0f;
        out[d] = scale * ((nibble & 3) - 1.5);
        out[d + 1] = scale * ((nibble >> 2) - 1.5);
      }
    } else if (this.bits === 1) {
      for (let g = 0, d = outAt, i = at; g < groups; g++, i += FAST_SCAN_GROUP_BYTES, d += 4) {
        const nibble = (u8[i]! >> shift) & 0x0f;
        out[d] = scale * ((nibble & 1) - 0.5);
        out[d + 1] = scale * (((nibble >> 1) & 1) - 0.5);
        out[d + 2] = scale * (((nibble >> 2) & 1) - 0.5);
        out[d + 3] = scale * ((nibble >> 3) - 0.5);
      }
    } else {
      for (let g = 0, i = at; g < groups; g++, i += FAST_SCAN_GROUP_BYTES) out[outAt + g] = scale * (((u8[i]! >> shift) & 0x0f) - 7.5);
    }
  }

  /** Copies the lane of row `from` of the blocks at `fromBlocks` into the lane of row `to` of those at `toBlocks` (the same blocks, or others). */
  moveRow(u8: Uint8Array, fromBlocks: number, from: number, toBlocks: number, to: number): void {
    const fromAt = this.laneAt(fromBlocks, from);
    const fromShift = laneShift(from);
    const toAt = this.laneAt(toBlocks, to);
    const toShift = laneShift(to);
    const keep = toShift === 0 ? 0xf0 : 0x0f;
    for (let g = 0, step = 0; g < this.groups; g++, step += FAST_SCAN_GROUP_BYTES) {
      const nibble = (u8[fromAt + step]! >> fromShift) & 0x0f;
      u8[toAt + step] = (u8[toAt + step]! & keep) | (nibble << toShift);
    }
  }
}
