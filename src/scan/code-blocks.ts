import type { Codec } from '../codec/codec.js';
import type { FilterColumns } from '../filter/columns.js';
import { rqTermsOf, type RqCodec } from '../codec/rq.js';
import { kernels, type KernelMetric } from '../kernels/index.js';
import { FAST_SCAN_LANES } from '../kernels/contract.js';
import { FastScanCodes } from './fast-scan-codes.js';
import { LargestNorm } from './largest-norm.js';
import { GATHER_RUN, QueryScratch, keepsCodeNorms, pushPicked } from './query-scratch.js';
import { recordingVerdicts, type ScorePool } from './score-pool.js';
import { SlotTable, type VectorPlace } from './slot-table.js';
import { TopK } from './topk.js';

/** Vectors per block of a store's index: large enough that one kernel call amortizes its JS overhead, small enough to recycle. */
export const INDEX_BLOCK_VECTORS = 1024;

/** Kernels read 16 dimensions per step, so codes are zero-padded to a multiple of 16. */
export function paddedDim(dim: number): number {
  return Math.ceil(dim / 16) * 16;
}

/**
 * A block's codes and scales; in the fast-scan layout (FastScanCodes) also each row's ‖r‖² and ‖e‖
 * in `norms` and `errs`; otherwise `errs` is 0 and `norms` holds each code's norm for a cosine scan
 * (CodeBlocks.cosineNorms), or is 0.
 */
interface Block {
  readonly codes: number;
  readonly scales: number;
  readonly norms: number;
  readonly errs: number;
  /** Where a scan that collects a pool leaves this block's scores (blockVectors float32), made by the first such scan; 0: none yet. */
  scores: number;
}

/**
 * A record as the index file holds it, read in place (src/store/INDEX.md, "Records"): its id and
 * code lie in `block`, so loading one makes no view or copy of either.
 */
export interface LoadedRecord extends RecordState {
  readonly block: Uint8Array;
  readonly idAt: number;
  readonly idLength: number;
  /** Where the code starts in `block`; -1 for none. */
  readonly codeAt: number;
  readonly codeBytes: number;
}

/** What the index file keeps of a record beside its id and code. */
interface RecordState {
  readonly scale: number;
  /** The full-precision vector's frame in the vector arena; segment 0: none is kept. */
  readonly generation: number;
  readonly segment: number;
  readonly offset: number;
  readonly documented: boolean;
  /** The page of a page-clustered index holding the code; -1 for none. */
  readonly page: number;
}

export type { VectorPlace } from './slot-table.js';

/**
 * A stored record as the index file writes it, without a lookup: the id's UTF-8 and the code are
 * views (valid until the next change or allocation), the place's segment is 0 for none, `page` -1
 * when the index has no pages.
 */
export interface StoredRecord extends RecordState {
  readonly idBytes: Uint8Array;
  readonly code: Uint8Array;
}

export function samePlace(a: VectorPlace | undefined, b: VectorPlace | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a[0] === b[0] && a[1] === b[1] && a[2] === b[2]);
}

export interface ScanQuery {
  /** The query, already projected into the stored space (length = stored dim). */
  readonly vector: Float32Array;
  readonly metric: KernelMetric;
  /** Quantize the query to int8 too and use the integer kernels; honoured for the int8 codec with dot/cosine. */
  readonly int8Query: boolean;
  /** What the space adds back to kernel scores (`⟨q, μ⟩` with a model, VectorSpace.scanQueryOf); a sphere router needs it. @default 0 */
  readonly offset?: number;
  /**
   * ‖q‖² of the query before its projection, for a dot store with PCA: the part of the query the
   * projection drops, ‖q‖² − ‖vector‖², bounds what the dropped part of a vector adds to its score
   * (VectorSpace.projectionSlack). @default undefined (a cosine store's query is unit length)
   */
  readonly inputNormSq?: number;
}

/**
 * A query as the kernels see it (kernelQuery()), in its cheapest exact form: an int8 query's code
 * and scale (value i is fl32(code[i] · scale)), or a float query's vector itself.
 */
export type KernelForm = { readonly kind: 'int8'; readonly code: Int8Array; readonly scale: number } | { readonly kind: 'float'; readonly vector: Float32Array };

/** The float32 values of `form`, as the kernels see them: a float query's vector itself, an int8 one's code times its scale. */
export function kernelValues(form: KernelForm): Float32Array {
  if (form.kind === 'float') return form.vector;
  const out = new Float32Array(form.code.length);
  for (let i = 0; i < out.length; i++) out[i] = form.code[i]! * form.scale;
  return out;
}

/** kernelValues() in an array of its own: what VectorIndex.kernelQuery() returns. */
export function kernelQueryOf(form: KernelForm): Float32Array {
  return form.kind === 'float' ? Float32Array.from(form.vector) : kernelValues(form);
}

/**
 * The quantized vectors of a store, dense in fixed-size blocks of WebAssembly linear memory,
 * addressed by slot (block · blockVectors + row). A scan is one kernel call per block, reading the
 * codes in place. Deletion moves the last vector into the hole, so blocks stay dense and a scan
 * never meets a tombstone.
 */
export class CodeBlocks {
  readonly paddedDim: number;
  /** Bytes of one code in memory, padding included. */
  readonly stride: number;
  private readonly blocks: Block[] = [];
  /** Ids, slots, places, document flags and slot moves; the blocks hold the codes in slot order. */
  private readonly slots: SlotTable;
  /** The query as the kernels take it, and the int8 encoding of the last one. */
  private readonly query: QueryScratch;
  private readonly scratchScores: number;
  /** scanSlots()'s address table: GATHER_RUN pairs of i32 (code address, scale address), or quadruples in the fast-scan layout. */
  private readonly scratchTable: number;
  private readonly tableBytes: number;
  /**
   * The fast-scan layout, for rq codes of a dimension that is a multiple of 32 in blocks of a
   * multiple of 32 vectors (src/index/PAGES.md, "Fast-scan pages"): a block is its area, and the
   * codes are scored through the query's table, as pages of the same codes are.
   */
  private readonly fast: FastScanCodes | undefined;
  /** put()'s code, encoded here before the fast-scan layout takes it. */
  private readonly encoded: Uint8Array | undefined;
  /** The positions in a block that the selection kernel picks: one i32 per vector of a block. */
  private readonly scratchPicks: number;
  private readonly mem = kernels().memory;
  private freed = false;
  /** Largest ‖decoded code‖ of any vector put since it was first asked for (never lowered by removals). */
  private readonly norms: LargestNorm;
  /**
   * Whether each block keeps its codes' norms (4 bytes a vector) for a store searched by cosine
   * (keepsCodeNorms: the scalar codecs): the scan reads them instead of summing them from the codes
   * (KERNELS.md, "Stored norms").
   */
  readonly cosineNorms: boolean;

  /**
   * `blockVectors`: vectors per block (a store's index uses INDEX_BLOCK_VECTORS; a cache pool a few
   * dozen). `places`: keep, per vector, where its full-precision copy lives (12 bytes each).
   */
  constructor(
    readonly codec: Codec,
    readonly dim: number,
    readonly blockVectors = INDEX_BLOCK_VECTORS,
    readonly places = false,
    /** What scans rank by: 'cosine' keeps the codes' norms (cosineNorms). @default none: no norms kept */
    metric?: KernelMetric,
  ) {
    this.paddedDim = paddedDim(dim);
    this.stride = codec.strideBytes(this.dim);
    this.norms = new LargestNorm(codec, dim);
    this.query = new QueryScratch(codec, dim, this.paddedDim);
    this.slots = new SlotTable(places, blockVectors);
    this.fast = blockVectors % FAST_SCAN_LANES === 0 ? FastScanCodes.of(codec, dim) : undefined;
    this.encoded = this.fast === undefined ? undefined : new Uint8Array(codec.codeBytes(dim));
    this.cosineNorms = keepsCodeNorms(codec, metric);
    this.scratchScores = this.mem.alloc(Math.max(blockVectors, GATHER_RUN) * 4);
    this.tableBytes = GATHER_RUN * (this.fast === undefined ? 8 : 16);
    this.scratchTable = this.mem.alloc(this.tableBytes);
    this.scratchPicks = this.mem.alloc(blockVectors * 4);
  }

  /** Whether the codes are held in the fast-scan layout. */
  get fastScan(): boolean {
    return this.fast !== undefined;
  }

  /** Bytes of memory this holds: blocks of codes, scales and places (whole blocks), scratch space, and the id table. */
  get bytes(): number {
    const codes = this.fast === undefined ? this.blocks.length * this.blockVectors * (this.stride + 4 + (this.cosineNorms ? 4 : 0)) : this.blocks.length * this.fast.areaBytes(this.blockVectors) + this.fast.bytes;
    return codes + this.paddedDim * 4 + Math.max(this.blockVectors, GATHER_RUN) * 4 + this.tableBytes + this.blockVectors * 4 + this.blocks.filter((b) => b.scores !== 0).length * this.blockVectors * 4 + this.slots.bytes;
  }

  /** Bytes each stored vector costs once blocks are full: code, scale, norm (when kept), place and document flag (when kept) and its share of the id table. */
  get bytesPerVector(): number {
    // The fast-scan layout holds the same bytes: the levels in nibbles, the code's two floats beside them.
    return this.stride + 4 + (this.cosineNorms ? 4 : 0) + this.slots.bytesPerVector;
  }

  get size(): number {
    return this.slots.size;
  }

  /** UTF-8 bytes of the live ids. */
  get idBytes(): number {
    return this.slots.idBytes;
  }

  /** Room in the id table for `records` ids of `idBytes` bytes in all (VectorIndex.reserve). */
  reserve(records: number, idBytes: number): void {
    this.slots.reserve(records, idBytes);
  }

  get blockCount(): number {
    return this.blocks.length;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  /** Where the full-precision vector of `id` lives, or undefined (none kept, or no such id). */
  placeOf(id: string): VectorPlace | undefined {
    return this.slots.placeOf(id);
  }

  /** Records where the full-precision vector of `id` (already put) lives; undefined: nowhere. */
  setPlace(id: string, place: VectorPlace | undefined): void {
    this.slots.setPlace(id, place);
  }

  /** The filter columns of the slots (SlotTable). */
  get columns(): FilterColumns {
    return this.slots.columns;
  }

  /** Whether the record `id` has a document in the state (false for an unknown id). */
  documented(id: string): boolean {
    return this.slots.documented(id);
  }

  /** documented() of the record in `slot`. */
  documentedAt(slot: number): boolean {
    return this.slots.documentedAt(slot);
  }

  setDocumented(id: string, documented: boolean): void {
    this.slots.setDocumented(id, documented);
  }

  /** placeOf() for the vector in `slot`. */
  placeAt(slot: number): VectorPlace | undefined {
    return this.slots.placeAt(slot);
  }

  /** The slot of `id`, or undefined; slots move when vectors are removed. */
  slotOf(id: string): number | undefined {
    return this.slots.slotOf(id);
  }

  idAt(slot: number): string {
    return this.slots.idAt(slot);
  }

  allIds(): IterableIterator<string> {
    return this.slots.allIds();
  }

  private slotFor(id: string): number {
    const { slot, added } = this.slots.slotFor(id);
    if (added) this.blockFor(slot);
    return slot;
  }

  /** Makes the block of a slot just added, when it starts one. */
  private blockFor(slot: number): void {
    if (slot !== this.blocks.length * this.blockVectors) return;
    if (this.fast !== undefined) this.blocks.push({ scores: 0, ...this.fast.allocate(this.blockVectors) });
    else this.blocks.push({ scores: 0, codes: this.mem.alloc(this.blockVectors * this.stride), scales: this.mem.alloc(this.blockVectors * 4), norms: this.cosineNorms ? this.mem.alloc(this.blockVectors * 4) : 0, errs: 0 });
  }

  private blockOf(slot: number): Block {
    return this.blocks[Math.floor(slot / this.blockVectors)]!;
  }

  /**
   * The code of `slot` as a view (valid until the next change or allocation; in the fast-scan
   * layout rebuilt in a buffer, valid until the next call) and its scale.
   */
  private codeView(slot: number): { code: Uint8Array; scale: number } {
    const block = this.blockOf(slot);
    const row = slot % this.blockVectors;
    if (this.fast !== undefined) return this.fast.view(block, row);
    const at = block.codes + row * this.stride;
    return { code: this.mem.u8().subarray(at, at + this.codec.codeBytes(this.dim)), scale: this.mem.f32()[(block.scales >> 2) + row]! };
  }

  private codeAddress(slot: number): number {
    const block = this.blocks[Math.floor(slot / this.blockVectors)]!;
    return block.codes + (slot % this.blockVectors) * this.stride;
  }

  private scaleAddress(slot: number): number {
    const block = this.blocks[Math.floor(slot / this.blockVectors)]!;
    return block.scales + (slot % this.blockVectors) * 4;
  }

  private normAddress(slot: number): number {
    const block = this.blocks[Math.floor(slot / this.blockVectors)]!;
    return block.norms + (slot % this.blockVectors) * 4;
  }

  /** Keeps the norm of the code just written in `slot`, when norms are kept. */
  private writeCodeNorm(slot: number): void {
    if (!this.cosineNorms) return;
    this.query.writeCodeNorm(this.codeAddress(slot), this.normAddress(slot));
  }

  /** Encodes `vector` (length dim) as the code of `id`, inserting or replacing. */
  put(id: string, vector: Float32Array): void {
    if (this.fast !== undefined) {
      const code = this.encoded!;
      const scale = this.codec.encode(vector, code);
      this.putCode(id, code, scale);
      return;
    }
    const slot = this.slotFor(id);
    const at = this.codeAddress(slot);
    const u8 = this.mem.u8();
    const codeBytes = this.codec.codeBytes(this.dim);
    const scale = this.codec.encode(vector, u8.subarray(at, at + codeBytes));
    u8.fill(0, at + codeBytes, at + this.stride);
    this.mem.f32()[this.scaleAddress(slot) >> 2] = scale;
    this.writeCodeNorm(slot);
    this.noteNorm(slot);
  }

  /** Stores an already-encoded code (length dim · bytesPerDim), as loaded from disk. */
  putCode(id: string, code: Uint8Array, scale: number): void {
    const codeBytes = this.codec.codeBytes(this.dim);
    if (code.length !== codeBytes) throw new RangeError(`code of ${code.length} bytes, expected ${codeBytes}`);
    const slot = this.slotFor(id);
    if (this.fast !== undefined) {
      this.fast.write(this.blockOf(slot), slot % this.blockVectors, code, scale);
      this.noteNorm(slot);
      return;
    }
    const at = this.codeAddress(slot);
    const u8 = this.mem.u8();
    u8.set(code, at);
    u8.fill(0, at + codeBytes, at + this.stride);
    this.mem.f32()[this.scaleAddress(slot) >> 2] = scale;
    this.writeCodeNorm(slot);
    this.noteNorm(slot);
  }

  /**
   * The record in `slot` as the index file stores it, without a lookup: the id's UTF-8 and the code
   * are views (valid until the next change or allocation), the place's segment is 0 for none.
   */
  recordAt(slot: number): StoredRecord {
    const idBytes = this.slots.idBytesAt(slot);
    const { code, scale } = this.codeView(slot);
    return {
      idBytes,
      code,
      scale,
      generation: this.slots.placePartAt(slot, 0),
      segment: this.slots.placePartAt(slot, 1),
      offset: this.slots.placePartAt(slot, 2),
      documented: this.slots.documentedAt(slot),
      page: -1,
    };
  }

  /**
   * Puts a record as the index file stores it, in one lookup: the code of the id whose UTF-8 is
   * `idBytes`, its place (`segment` 0: none) and document flag. Returns the place it replaced, when
   * the id was already there with one (so the caller can release it), else undefined.
   */
  loadRecord(r: LoadedRecord): VectorPlace | undefined {
    const codeBytes = this.codec.codeBytes(this.dim);
    if (r.codeAt < 0 || r.codeBytes !== codeBytes) throw new RangeError(`code of ${r.codeBytes} bytes, expected ${codeBytes}`);
    if (!this.places) throw new RangeError('this index keeps no places');
    const { slot, added } = this.slots.slotForBytes(r.block, r.idAt, r.idLength);
    if (added) this.blockFor(slot);
    const previous = added ? undefined : this.slots.placeAt(slot);
    const block = this.blockOf(slot);
    const row = slot % this.blockVectors;
    if (this.fast !== undefined) {
      this.fast.write(block, row, r.block, r.scale, r.codeAt);
    } else {
      const at = block.codes + row * this.stride;
      const u8 = this.mem.u8();
      // A loop, not set(subarray): no view per record while opening.
      const from = r.block;
      for (let i = 0, j = r.codeAt; i < codeBytes; i++, j++) u8[at + i] = from[j]!;
      u8.fill(0, at + codeBytes, at + this.stride);
      this.mem.f32()[(block.scales >> 2) + row] = r.scale;
      this.writeCodeNorm(slot);
    }
    this.slots.setPlaceParts(slot, r.generation, r.segment, r.offset);
    this.slots.setDocumentedAt(slot, r.documented);
    this.noteNorm(slot);
    return previous;
  }

  /** The code of `slot` as a view into linear memory, valid until the next write or growth (in the fast-scan layout, until the next call). */
  codeAt(slot: number): Uint8Array {
    if (!(slot >= 0 && slot < this.slots.size)) throw new RangeError(`slot ${slot} out of range`);
    return this.codeView(slot).code;
  }

  /** ‖e‖, ‖r‖² and the factor F of the rq codes in `slots[0..count)`, into `out[3i..3i + 3)` (VectorIndex.rqTermsOf). */
  rqTermsOf(slots: Int32Array, count: number, out: Float64Array): void {
    for (let i = 0; i < count; i++) if (!(slots[i]! >= 0 && slots[i]! < this.slots.size)) throw new RangeError(`slot ${slots[i]} out of range`);
    const fast = this.fast;
    if (fast !== undefined) {
      const f32 = this.mem.f32();
      for (let i = 0; i < count; i++) fast.terms(f32, this.blockOf(slots[i]!), slots[i]! % this.blockVectors, out, 3 * i);
      return;
    }
    for (let i = 0; i < count; i++) {
      const { code, scale } = this.codeView(slots[i]!);
      rqTermsOf(this.codec as RqCodec, code, scale, this.dim, out, 3 * i);
    }
  }

  /** An upper bound on how far the decoded code in `slot` is from the vector it encodes (Codec.codeError). */
  codeErrorAt(slot: number): number {
    if (!(slot >= 0 && slot < this.slots.size)) throw new RangeError(`slot ${slot} out of range`);
    const { code, scale } = this.codeView(slot);
    return this.codec.codeError(code, scale, this.dim);
  }

  /**
   * The largest Euclidean norm of a decoded code put here (an upper bound once vectors were removed):
   * what a bound on how much a dot product can change with the query needs. Computed on first use.
   */
  maxNorm(): number {
    return this.norms.get(() => {
      for (let slot = 0; slot < this.slots.size; slot++) this.noteNorm(slot);
    });
  }

  private noteNorm(slot: number): void {
    if (!this.norms.known) return;
    const { code, scale } = this.codeView(slot);
    this.norms.note(code, scale);
  }

  /**
   * The query exactly as the kernels of `scan` see it: for an int8 query, its code times its scale;
   * otherwise the float32 vector itself. Bounds on how much a score can move between two queries
   * are computed on these.
   */
  kernelQuery(query: ScanQuery): Float32Array {
    return kernelQueryOf(this.kernelForm(query));
  }

  /**
   * kernelQuery() in its cheapest exact form: the int8 code and its scale, copied into `into` (dim
   * bytes; a new array when not given), or the float vector itself.
   */
  kernelForm(query: ScanQuery, into?: Int8Array): KernelForm {
    // The fast-scan kernels see the query itself, through tables whose rounding tableError() bounds.
    if (this.fast !== undefined) return { kind: 'float', vector: query.vector };
    return this.query.kernelForm(query, into);
  }

  /** In the fast-scan layout, a bound on how far a score's estimate of ⟨ŷ, q⟩ is from the exact one, for every code (FastScanCodes.tableError); 0 otherwise. */
  tableError(query: ScanQuery): number {
    return this.fast === undefined ? 0 : this.fast.tableError(query);
  }

  /**
   * ‖query.vector − kernelQuery(query)‖ in float64, without making the kernel query: 0 for a float
   * query, which the kernels see as it is.
   */
  kernelQueryError(query: ScanQuery): number {
    if (this.fast !== undefined) return 0;
    return this.query.kernelQueryError(query);
  }

  /** A copy of the code of `id` and its scale, or undefined. */
  code(id: string): { code: Uint8Array; scale: number } | undefined {
    const slot = this.slots.slotOf(id);
    if (slot === undefined) return undefined;
    const { code, scale } = this.codeView(slot);
    return { code: code.slice(), scale };
  }

  /** Decodes the stored code of `id` (in the stored space). */
  decode(id: string, out: Float32Array): boolean {
    const c = this.code(id);
    if (c === undefined) return false;
    this.codec.decode(c.code, c.scale, out);
    return true;
  }

  remove(id: string): boolean {
    const slot = this.slots.slotOf(id);
    if (slot === undefined) return false;
    const last = this.slots.size - 1;
    if (slot !== last && this.fast !== undefined) {
      this.fast.move(this.blockOf(last), last % this.blockVectors, this.blockOf(slot), slot % this.blockVectors);
    } else if (slot !== last) {
      const u8 = this.mem.u8();
      const from = this.codeAddress(last);
      u8.copyWithin(this.codeAddress(slot), from, from + this.stride);
      const f32 = this.mem.f32();
      f32[this.scaleAddress(slot) >> 2] = f32[this.scaleAddress(last) >> 2]!;
      if (this.cosineNorms) f32[this.normAddress(slot) >> 2] = f32[this.normAddress(last) >> 2]!;
    }
    this.slots.removeSwap(slot);
    if (this.slots.size <= (this.blocks.length - 1) * this.blockVectors) {
      this.freeBlock(this.blocks.pop()!);
    }
    return true;
  }

  /**
   * Scores every stored vector against `query` and keeps the best in `top`; `accept(slot)` is asked
   * only about vectors good enough to enter it (so a filter costs nothing for the rest). With
   * `pool`, every accepted vector at or above the pool's line (score-pool.ts: within its reach of
   * the final k-th best score) is collected too: the scores of each block are kept until the scan
   * ends, and `accept` is asked once per vector at most.
   *
   * The selection kernel picks the positions in a block at or above the top's floor, so
   * JavaScript only visits those (a few dozen of a block's thousand, once the floor has risen).
   */
  scan(query: ScanQuery, top: TopK, accept?: (slot: number) => boolean, pool?: ScorePool): void {
    if (this.fast === undefined) this.query.load(query);
    else this.fast.load(query);
    const total = this.slots.size;
    // What `accept` said, by slot, for a pool to reuse.
    const { asked, verdicts } = pool === undefined ? { asked: accept, verdicts: undefined } : recordingVerdicts(accept);
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      const base = b * this.blockVectors;
      const n = Math.min(this.blockVectors, total - base);
      if (n <= 0) break;
      const out = pool === undefined ? this.scratchScores : this.scoresOf(block);
      // The fast-scan kernel scores whole blocks of 32: at most blockVectors scores, which `out` holds.
      if (this.fast === undefined) this.query.scan(query, block.codes, block.scales, n, out, block.norms);
      else this.fast.scan(query, block, n, out);
      pushPicked(top, out, n, this.scratchPicks, (row) => base + row, asked);
    }
    if (pool !== undefined) this.collect(top, pool, accept, verdicts);
  }

  /** The pool part of scan(): every accepted vector at or above the line, from the scores the scan kept. */
  private collect(top: TopK, pool: ScorePool, accept: ((slot: number) => boolean) | undefined, verdicts: Map<number, boolean> | undefined): void {
    const k = kernels();
    const total = this.slots.size;
    const picks = this.scratchPicks >> 2;
    pool.setLine(top.kthBest(), top.meanBest());
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      const base = b * this.blockVectors;
      const n = Math.min(this.blockVectors, total - base);
      if (n <= 0) break;
      const m = k.selectAtLeast(block.scores, n, pool.line, this.scratchPicks);
      if (m < n) pool.passedOver = true;
      const scores = this.mem.f32();
      const positions = this.mem.i32();
      const s0 = block.scores >> 2;
      for (let i = 0; i < m; i++) {
        const j = positions[picks + i]!;
        const slot = base + j;
        if (accept !== undefined && !(verdicts?.get(slot) ?? accept(slot))) continue;
        pool.add(slot, scores[s0 + j]!);
      }
    }
  }

  /** The address of `block`'s kept scores, made at first use. */
  private scoresOf(block: Block): number {
    if (block.scores === 0) block.scores = this.mem.alloc(this.blockVectors * 4);
    return block.scores;
  }

  private freeBlock(block: Block): void {
    if (this.fast !== undefined) {
      this.fast.release(block, this.blockVectors);
    } else {
      this.mem.free(block.codes, this.blockVectors * this.stride);
      this.mem.free(block.scales, this.blockVectors * 4);
      if (block.norms !== 0) this.mem.free(block.norms, this.blockVectors * 4);
    }
    if (block.scores !== 0) this.mem.free(block.scores, this.blockVectors * 4);
  }

  /**
   * scan() over the vectors in `slots[0..count)` only (each pushed into `top` with its slot): the
   * gather form of the same kernel scores each code where it is (no copy), so each score is the one
   * scan() gives that vector; one kernel call per run of GATHER_RUN vectors.
   */
  scanSlots(query: ScanQuery, slots: Int32Array, count: number, top: TopK): void {
    this.gather(query, slots, count, (from, n, scores, at) => {
      for (let j = 0; j < n; j++) {
        const score = scores[at + j]!;
        if (top.admits(score)) top.push(score, slots[from + j]!);
      }
    });
  }

  /** The scores scanSlots() gives the vectors in `slots[0..count)`, written to `out[0..count)`. */
  scoreSlots(query: ScanQuery, slots: Int32Array, count: number, out: Float32Array): void {
    if (out.length < count) throw new RangeError(`room for ${out.length} scores, not ${count}`);
    this.gather(query, slots, count, (from, n, scores, at) => {
      for (let j = 0; j < n; j++) out[from + j] = scores[at + j]!;
    });
  }

  /** Scores `slots[0..count)` a run at a time (QueryScratch.gather); `take(from, n, scores, at)` gets run `from` as scores[at..at + n). */
  private gather(query: ScanQuery, slots: Int32Array, count: number, take: (from: number, n: number, scores: Float32Array, at: number) => void): void {
    const total = this.slots.size;
    const { blocks, blockVectors, stride } = this;
    const fast = this.fast;
    if (fast !== undefined) {
      const quad = (from: number, n: number, table: Int32Array, at: number) => {
        for (let j = 0; j < n; j++) {
          const slot = slots[from + j]!;
          if (!(slot >= 0 && slot < total)) throw new RangeError(`slot ${slot} out of range`);
          fast.entry(table, at + 4 * j, blocks[Math.floor(slot / blockVectors)]!, slot % blockVectors);
        }
      };
      fast.gather(query, count, this.scratchTable, this.scratchScores, quad, take);
      return;
    }
    const fill = (from: number, n: number, table: Int32Array, at: number) => {
      for (let j = 0; j < n; j++) {
        const slot = slots[from + j]!;
        if (!(slot >= 0 && slot < total)) throw new RangeError(`slot ${slot} out of range`);
        const block = blocks[Math.floor(slot / blockVectors)]!;
        const row = slot % blockVectors;
        table[at + 2 * j] = block.codes + row * stride;
        table[at + 2 * j + 1] = block.scales + row * 4;
      }
    };
    this.query.gather(query, count, this.scratchTable, this.scratchScores, fill, take);
  }

  /** The count of removals so far, to replay the slot moves after it with movesSince() (SlotTable). */
  moveEpoch(): number {
    return this.slots.moveEpoch();
  }

  /** The removals since `epoch`, in order (SlotTable.movesSince). */
  movesSince(epoch: number, visit: (hole: number, from: number) => void): boolean {
    return this.slots.movesSince(epoch, visit);
  }

  /** Returns all linear memory to the allocator; the object is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const block of this.blocks) {
      this.freeBlock(block);
    }
    this.blocks.length = 0;
    this.query.free();
    this.fast?.free();
    this.mem.free(this.scratchScores, Math.max(this.blockVectors, GATHER_RUN) * 4);
    this.mem.free(this.scratchTable, this.tableBytes);
    this.mem.free(this.scratchPicks, this.blockVectors * 4);
    this.slots.clear();
  }
}
