import type { RqCodec } from '../codec/rq.js';
import { FAST_SCAN_DECODE_TABLE_BYTES, FAST_SCAN_GROUP_BYTES, FAST_SCAN_LANES, rqPlaneBytes, type RqBits } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import { fastScanBlockBytes, fastScanGroups } from './fast-scan-layout.js';

/** Bytes of a code up to which writeCode() copies it byte by byte (tinybench, `kernels.bench.js fast-scan-rows`: rq1 at 128-d, when 16 bytes of planes were copied, wrote a code in 161 ns through a view, 124 byte by byte). */
const SHORT_CODE = 40;

/**
 * Where a run of rows lies in the fast-scan layout (src/index/PAGES.md, "Fast-scan pages"): blocks of
 * 32 rows' nibbles at `codes`, and per row its factor F, ‖r‖² and ‖e‖ (float32, in row order).
 */
export interface FastScanArea {
  readonly codes: number;
  readonly scales: number;
  readonly norms: number;
  readonly errs: number;
}

/** The shift of `row`'s nibble in its lane's bytes: lanes 0–15 take the low half, 16–31 the high. */
function laneShift(row: number): number {
  return row % FAST_SCAN_LANES >= 16 ? 4 : 0;
}

/**
 * Rows of codes in the fast-scan layout (src/index/PAGES.md, "Fast-scan pages"; KERNELS.md, "Fast scan"):
 * row i is lane i % 32 of block ⌊i / 32⌋, its levels in 4-bit nibbles. The codec's code (bit planes,
 * then ‖r‖² and ‖e‖, CODECS.md) goes in by writeCode(), which puts the two floats and the row's F in
 * the area's arrays beside the blocks, and its planes come back, byte for byte, by readCode() (the
 * caller takes the floats from those arrays). These work on linear memory in place and
 * allocate nothing per row; writing a code and decoding rows are kernel calls (they run for every
 * code when a store opens).
 */
export class FastScanRows {
  readonly groups: number;
  /** Bytes of one block of 32 rows. */
  readonly blockBytes: number;
  private readonly bits: RqBits;
  private readonly planeBytes: number;
  private readonly perNibble: number;
  /**
   * Linear memory of its own for the kernels: the decode table (FAST_SCAN_DECODE_TABLE_BYTES), then
   * room for a code's planes or one decoded row. Its own, not the shared kernel scratch, whose growth
   * would detach the views of linear memory callers hold across a decode.
   */
  private readonly scratch: number;
  /** Bytes of `scratch`. */
  readonly bytes: number;
  private freed = false;

  constructor(
    codec: RqCodec,
    readonly dim: number,
  ) {
    this.bits = codec.bits;
    this.groups = fastScanGroups(codec.bits, dim);
    this.blockBytes = fastScanBlockBytes(this.groups);
    this.planeBytes = rqPlaneBytes(dim);
    this.perNibble = 4 / codec.bits;
    this.bytes = FAST_SCAN_DECODE_TABLE_BYTES + Math.max(this.bits * this.planeBytes + 8, 4 * dim);
    this.scratch = kernels().memory.alloc(this.bytes);
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

  /**
   * Writes `code` (the codec's code from `codeAt` in `src`: bit planes, then ‖r‖² and ‖e‖) as `row`
   * of `area`, its levels into the row's lane (the other lanes stay) and its `scale`, ‖r‖² and ‖e‖
   * beside the blocks: one kernel call. The code is copied next to the kernel first (byte by byte
   * when short: no view per code, as opening writes every code through here), unless it is in linear
   * memory already.
   */
  writeCode(area: FastScanArea, row: number, src: Uint8Array, codeAt: number, scale: number): void {
    const n = this.bits * this.planeBytes + 8;
    // A view of linear memory taken before it grew is detached (empty): its bytes would read as zeros.
    if (!(codeAt >= 0 && codeAt + n <= src.length)) throw new RangeError(`no code of ${n} bytes at ${codeAt} of ${src.length}`);
    const k = kernels();
    const u8 = k.memory.u8();
    let planes = src.byteOffset + codeAt;
    if (src.buffer !== u8.buffer) {
      planes = this.scratch + FAST_SCAN_DECODE_TABLE_BYTES;
      if (n <= SHORT_CODE) for (let i = 0; i < n; i++) u8[planes + i] = src[codeAt + i]!;
      else u8.set(src.subarray(codeAt, codeAt + n), planes);
    }
    k.fastScanWrite(this.bits, planes, this.planeBytes, this.groups, area.codes, row, scale, area.scales, area.norms, area.errs);
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

  /**
   * Rows first..first+count−1 of `area` decoded as the codec decodes them, F · (u_i − m) per
   * dimension, one after another as `dim` float32 each from `outPtr` in linear memory: one kernel
   * call (KERNELS.md, "Fast-scan rows").
   */
  decodeRows(area: FastScanArea, first: number, count: number, outPtr: number): void {
    kernels().fastScanDecode(this.bits, area.codes, area.scales, first, count, this.groups, this.scratch, outPtr);
  }

  /** `row` of `area` decoded into `out` (dim floats), wherever `out` is: through the scratch when it is not in linear memory. */
  decode(area: FastScanArea, row: number, out: Float32Array): void {
    const mem = kernels().memory;
    if (out.buffer === mem.memory.buffer) {
      this.decodeRows(area, row, 1, out.byteOffset);
      return;
    }
    const at = this.scratch + FAST_SCAN_DECODE_TABLE_BYTES;
    this.decodeRows(area, row, 1, at);
    out.set(mem.f32().subarray(at >> 2, (at >> 2) + this.dim));
  }

  /** Gives back its scratch in linear memory; the object is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    kernels().memory.free(this.scratch, this.bytes);
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
