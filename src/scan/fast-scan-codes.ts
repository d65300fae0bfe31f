import { isRqCodec, type Codec } from '../codec/codec.js';
import type { RqCodec } from '../codec/rq.js';
import { FAST_SCAN_LANES, type RqMetric } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import type { ScanQuery } from './code-blocks.js';
import { FAST_SCAN_DIM_STEP } from './fast-scan-layout.js';
import { FastScanQuery } from './fast-scan-query.js';
import { FastScanRows, type FastScanArea } from './fast-scan-rows.js';
import { GATHER_RUN } from './query-scratch.js';

export type { FastScanArea } from './fast-scan-rows.js';

/** `rows` rounded up to whole fast-scan blocks of 32. */
export function fastScanLanes(rows: number): number {
  return Math.ceil(rows / FAST_SCAN_LANES) * FAST_SCAN_LANES;
}

/**
 * The rq codes of a page store or a block store in the fast-scan layout, and the query as its
 * kernels take it: what both stores do with a row, an area and a query, so that they score a code
 * alike, bit for bit. A store keeps its areas' addresses; this keeps the query's table and a
 * buffer view() rebuilds a code in.
 */
export class FastScanCodes {
  readonly rows: FastScanRows;
  private readonly query: FastScanQuery;
  private readonly code: Uint8Array;
  /** The last 8 bytes of `code`: its two floats, ‖r‖² and ‖e‖. */
  private readonly codeTail: DataView;
  private readonly mem = kernels().memory;
  private freed = false;

  /** The fast-scan codes of `codec` at `dim`, when it has them: rq codes of a dimension that is a positive multiple of 32. */
  static of(codec: Codec, dim: number): FastScanCodes | undefined {
    return isRqCodec(codec.name) && dim > 0 && dim % FAST_SCAN_DIM_STEP === 0 ? new FastScanCodes(codec as RqCodec, dim) : undefined;
  }

  private constructor(codec: RqCodec, dim: number) {
    this.rows = new FastScanRows(codec, dim);
    this.query = new FastScanQuery(codec, dim);
    this.code = new Uint8Array(codec.codeBytes(dim));
    this.codeTail = new DataView(this.code.buffer, this.code.length - 8, 8);
  }

  /** Bytes of linear memory held for queries (the table and the table kernel's scratch) and for writing and decoding rows. */
  get bytes(): number {
    return this.query.bytes + this.rows.bytes;
  }

  /** Bytes an area of `room` rows takes: whole blocks, and three float32 per row. */
  areaBytes(room: number): number {
    return this.rows.bytesFor(room) + 12 * room;
  }

  /** An area of `room` rows (a multiple of 32), from the allocator. */
  allocate(room: number): FastScanArea {
    return { codes: this.mem.alloc(this.rows.bytesFor(room)), scales: this.mem.alloc(4 * room), norms: this.mem.alloc(4 * room), errs: this.mem.alloc(4 * room) };
  }

  release(area: FastScanArea, room: number): void {
    this.mem.free(area.codes, this.rows.bytesFor(room));
    this.mem.free(area.scales, 4 * room);
    this.mem.free(area.norms, 4 * room);
    this.mem.free(area.errs, 4 * room);
  }

  /** Copies rows 0..count-1 of `from` to `to` (whole blocks: the layout does not depend on the room). */
  copyRows(from: FastScanArea, to: FastScanArea, count: number): void {
    const u8 = this.mem.u8();
    u8.copyWithin(to.codes, from.codes, from.codes + this.rows.bytesFor(count));
    u8.copyWithin(to.scales, from.scales, from.scales + 4 * count);
    u8.copyWithin(to.norms, from.norms, from.norms + 4 * count);
    u8.copyWithin(to.errs, from.errs, from.errs + 4 * count);
  }

  /** Writes the codec's code, from byte `at` of `src` (at 0 of a code by default), and its `scale` as `row` of `area`. */
  write(area: FastScanArea, row: number, src: Uint8Array, scale: number, at = 0): void {
    this.rows.writeCode(area, row, src, at, scale);
  }

  /** Row `from` of `fromArea` becomes row `to` of `toArea` (the same area, or another), its old content gone. */
  move(fromArea: FastScanArea, from: number, toArea: FastScanArea, to: number): void {
    this.rows.moveRow(this.mem.u8(), fromArea.codes, from, toArea.codes, to);
    const f32 = this.mem.f32();
    f32[(toArea.scales >> 2) + to] = f32[(fromArea.scales >> 2) + from]!;
    f32[(toArea.norms >> 2) + to] = f32[(fromArea.norms >> 2) + from]!;
    f32[(toArea.errs >> 2) + to] = f32[(fromArea.errs >> 2) + from]!;
  }

  /** The codec's code of `row`, rebuilt byte for byte in a buffer of this object (valid until the next call), and its scale. */
  view(area: FastScanArea, row: number): { code: Uint8Array; scale: number } {
    const code = this.code;
    this.rows.readCode(this.mem.u8(), area.codes, row, code);
    const f32 = this.mem.f32();
    this.codeTail.setFloat32(0, f32[(area.norms >> 2) + row]!, true);
    this.codeTail.setFloat32(4, f32[(area.errs >> 2) + row]!, true);
    return { code, scale: f32[(area.scales >> 2) + row]! };
  }

  /** `row` decoded as the codec decodes its code, into `out`. */
  decode(area: FastScanArea, row: number, out: Float32Array): void {
    this.rows.decode(area, row, out);
  }

  /** Rows 0..count-1 decoded as decode() decodes each, one after another from `outPtr` in linear memory (`dim` floats each): one kernel call. */
  decodeRows(area: FastScanArea, count: number, outPtr: number): void {
    this.rows.decodeRows(area, 0, count, outPtr);
  }

  /** ‖e‖, ‖r‖² and F of `row`, into `out[at..at + 3)` (VectorIndex.rqTermsOf), read from `f32`, the memory's view now. */
  terms(f32: Float32Array, area: FastScanArea, row: number, out: Float64Array, at: number): void {
    out[at] = f32[(area.errs >> 2) + row]!;
    out[at + 1] = f32[(area.norms >> 2) + row]!;
    out[at + 2] = f32[(area.scales >> 2) + row]!;
  }

  /** The rq kernels' metric: rotated codes rank by dot product (cosine is one there) or by l2. */
  private metricOf(query: ScanQuery): RqMetric {
    if (query.metric === 'cosine') throw new RangeError('rq codes are scored by dot product in the rotated space, never by cosine');
    return query.metric;
  }

  /** Builds the table of `query` (kept while the same values come back). */
  load(query: ScanQuery): void {
    this.query.load(query.vector);
  }

  /** A bound on how far the estimate of ⟨ŷ, q⟩ behind a score of `query` is from the exact one, for every code (FastScanQuery.tableError). */
  tableError(query: ScanQuery): number {
    this.load(query);
    return this.query.tableError();
  }

  /** Scores rows 0..rows-1 of `area` against the loaded `query`, writing fastScanLanes(rows) float32 at `outPtr`. */
  scan(query: ScanQuery, area: FastScanArea, rows: number, outPtr: number): void {
    this.query.scan(this.metricOf(query), area.codes, area.scales, area.norms, this.rows.blocksFor(rows), outPtr);
  }

  /** Writes the gather kernel's quadruple for `row` of `area` at table[at..at + 4): its block's address, its lane, the addresses of its F and ‖r‖². */
  entry(table: Int32Array, at: number, area: FastScanArea, row: number): void {
    table[at] = area.codes + Math.floor(row / FAST_SCAN_LANES) * this.rows.blockBytes;
    table[at + 1] = row % FAST_SCAN_LANES;
    table[at + 2] = area.scales + 4 * row;
    table[at + 3] = area.norms + 4 * row;
  }

  /**
   * Scores `count` rows wherever they are against `query` (loading it), GATHER_RUN per call: for
   * each run `fill(from, n, table, at)` writes their quadruples (entry()) at table[at..at + 4n) (the
   * table at `tablePtr`, room for 4 · GATHER_RUN i32), and `take(from, n, scores, at)` gets their
   * scores as scores[at..at + n) (`outPtr`: room for GATHER_RUN float32). Each score is the one
   * scan() gives that row.
   */
  gather(query: ScanQuery, count: number, tablePtr: number, outPtr: number, fill: (from: number, n: number, table: Int32Array, at: number) => void, take: (from: number, n: number, scores: Float32Array, at: number) => void): void {
    if (count <= 0) return;
    const metric = this.metricOf(query);
    this.load(query);
    for (let from = 0; from < count; from += GATHER_RUN) {
      const n = Math.min(GATHER_RUN, count - from);
      fill(from, n, this.mem.i32(), tablePtr >> 2);
      this.query.gather(metric, tablePtr, n, outPtr);
      take(from, n, this.mem.f32(), outPtr >> 2);
    }
  }

  /** Returns the table's and the scratch's memory; the object is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.query.free();
    this.rows.free();
  }
}
