import type { Codec } from '../codec/codec.js';
import { rqTermsOf, type RqCodec } from '../codec/rq.js';
import { kernels, type KernelMetric } from '../kernels/index.js';
import { FastScanCodes, fastScanLanes } from '../scan/fast-scan-codes.js';
import { paddedDim, type KernelForm, type ScanQuery } from '../scan/code-blocks.js';
import { GATHER_RUN, QueryScratch, keepsCodeNorms, pushPicked } from '../scan/query-scratch.js';
import { recordingVerdicts, type ScorePool } from '../scan/score-pool.js';
import type { TopK } from '../scan/topk.js';
import { eighthStepAtLeast } from '../eighth-step.js';
import { SlotMap } from './slot-map.js';

/** The smallest room a page is given, in vectors (PAGES.md). */
const MIN_ROOM = 16;

/**
 * The room for `rows` rows: the least of 16 and the sizes 2^k · {1, 1.125, ..., 1.875} that holds
 * them. Steps of an eighth keep a page's unused room under an eighth of its codes (powers of two
 * left a third of them unused on average: 969 bytes per 512-d int8 vector on 1k vectors in pages
 * of at most 256; quarter steps left 8.2%, 10.7 bytes per 100-d vector on GloVe 331k), and the
 * sizes stay few, so the allocator's free lists still serve them.
 */
export function roomFor(rows: number): number {
  return rows <= MIN_ROOM ? MIN_ROOM : eighthStepAtLeast(rows);
}

/** `rows` rounded up to whole 16-byte steps of float32: where the next page's kept scores start. */
function aligned(rows: number): number {
  return (rows + 3) & ~3;
}

/**
 * One page: its codes and scales in linear memory, and the slot of each row. In the fast-scan
 * layout `codes` holds blocks of 32 rows and each row's ‖r‖² and ‖e‖ (the code's two floats) are in
 * `norms` and `errs`; otherwise codes lie back to back, `errs` is 0 and `norms` holds each code's
 * norm for a cosine scan (PageStore.cosineNorms), or is 0. A class, so that every page has one
 * shape: literals made by spreading the fast-scan area had left V8 a map, descriptors and property
 * array per page (heap snapshots of GloVe 331k's 2,387 pages opened: 0.66 MB, 280 bytes a page).
 */
class Page {
  count = 0;

  constructor(
    public codes: number,
    public scales: number,
    public norms: number,
    public errs: number,
    /** Rows allocated: roomFor() of some count. */
    public room: number,
    public slots: Int32Array,
  ) {}
}

/**
 * The codes of a page-clustered index (PAGES.md): each page a contiguous run of codes and scales in
 * WebAssembly linear memory, scanned by one kernel call, with the slot of each row. A vector is
 * known to the rest of the store by its slot (the slot table's dense number, which moves when the
 * table removes a vector); this keeps, per slot, the page and row that hold its code.
 *
 * Removing a vector moves its page's last row into the hole, so pages stay dense and a scan never
 * meets a tombstone. A page's room grows a quarter step when it fills, and shrinks to twice its
 * count when a quarter of it is used, so a page of steady size is never copied.
 */
export class PageStore {
  readonly paddedDim: number;
  /** Bytes of one code in memory, padding included. */
  readonly stride: number;
  private pages: Page[] = [];
  /** Per slot: the page and row of its code. */
  private readonly slotMap = new SlotMap();
  private vectors = 0;
  private readonly query: QueryScratch;
  /** Scratch for one page's scores, then as much for its picked rows: `scratchRoom` of each. */
  private scratchBase = 0;
  private scratchRoom = 0;
  /** Where a scan that collects a pool keeps its pages' scores until it ends (scanKeeping): `keptRoom` floats, made at the first one. */
  private keptBase = 0;
  private keptRoom = 0;
  private readonly mem = kernels().memory;
  private freed = false;
  /** The fast-scan layout, for rq codes of a dimension that is a multiple of 32 (PAGES.md, "Fast-scan pages"): a page is its area. */
  private readonly fast: FastScanCodes | undefined;
  /**
   * Whether each page keeps its codes' norms beside their scales (4 bytes a vector), for a store
   * searched by cosine (keepsCodeNorms: the scalar codecs): the scan then reads each norm instead of summing it from the code, at
   * half the multiplies (KERNELS.md, "Stored norms"), with the same scores bit for bit.
   */
  readonly cosineNorms: boolean;

  constructor(
    readonly codec: Codec,
    readonly dim: number,
    /** The metric the store is searched with: 'cosine' keeps the codes' norms. @default none: no norms kept */
    metric?: KernelMetric,
  ) {
    this.paddedDim = paddedDim(dim);
    this.stride = codec.strideBytes(this.dim);
    this.query = new QueryScratch(codec, dim, this.paddedDim);
    this.fast = FastScanCodes.of(codec, dim);
    this.cosineNorms = keepsCodeNorms(codec, metric);
  }

  /** Whether pages hold their codes in the fast-scan layout. */
  get fastScan(): boolean {
    return this.fast !== undefined;
  }

  /** The room for `rows` rows: roomFor(), in whole blocks of 32 in the fast-scan layout. */
  private roomOf(rows: number): number {
    const room = roomFor(rows);
    return this.fast === undefined ? room : fastScanLanes(room);
  }

  /** Rows of scores a scan of `rows` rows writes: the kernel scores whole blocks in the fast-scan layout. */
  private scored(rows: number): number {
    return this.fast === undefined ? rows : fastScanLanes(rows);
  }

  /** Vectors held. */
  get size(): number {
    return this.vectors;
  }

  get pageCount(): number {
    return this.pages.length;
  }

  /** Bytes of memory held: the rooms of the pages (codes, scales, norms when kept, slots), the slot map and scratch space. */
  get bytes(): number {
    const fast = this.fast;
    let total = this.slotMap.bytes + this.query.bytes + 8 * this.scratchRoom + 4 * this.keptRoom + (fast === undefined ? 0 : fast.bytes);
    const row = this.stride + 8 + (this.cosineNorms ? 4 : 0);
    for (const p of this.pages) total += fast === undefined ? p.room * row : fast.areaBytes(p.room) + 4 * p.room;
    return total;
  }

  /** Adds an empty page; returns its number (pages are numbered 0..pageCount-1). */
  addPage(rows = 0): number {
    this.pages.push(this.allocate(this.roomOf(rows)));
    return this.pages.length - 1;
  }

  /**
   * Removes the empty page `page`: the last page takes its number. Returns the number the moved page
   * had (equal to `page` when it was the last), for the router to follow.
   */
  removeEmptyPage(page: number): number {
    const p = this.pageAt(page);
    if (p.count !== 0) throw new RangeError(`page ${page} still holds ${p.count} vectors`);
    this.release(p);
    const last = this.pages.length - 1;
    const moved = this.pages.pop()!;
    if (page !== last) {
      this.pages[page] = moved;
      for (let row = 0; row < moved.count; row++) this.slotMap.setPage(moved.slots[row]!, page);
    }
    return last;
  }

  /** Gives `page` the room its vectors need, no more (after a split or a merge moved many out). */
  fit(page: number): void {
    const p = this.pageAt(page);
    const room = this.roomOf(p.count);
    if (room < p.room) this.resize(p, room);
  }

  /** Vectors in `page`. */
  sizeOf(page: number): number {
    return this.pageAt(page).count;
  }

  /** The slots of the vectors in `page`, in row order (a copy). */
  slotsOf(page: number): Int32Array {
    const p = this.pageAt(page);
    return p.slots.slice(0, p.count);
  }

  has(slot: number): boolean {
    return this.slotMap.pageOf(slot) >= 0;
  }

  /** The page holding the vector in `slot`; RangeError when none does. */
  pageOf(slot: number): number {
    const page = this.slotMap.pageOf(slot);
    if (page < 0) throw new RangeError(`no vector in slot ${slot}`);
    return page;
  }

  /**
   * Puts the code of the vector in `slot` (absent) at the end of `page`: `code` itself, or with `at`,
   * the code from byte `at` of a buffer of codes (as a loading page index hands them over, without a
   * view per code).
   */
  add(slot: number, page: number, code: Uint8Array, scale: number, at?: number): void {
    this.put(slot, page, code, scale, at, true);
  }

  /**
   * add() for a store being opened: the code's norm, where the page keeps them, is left for
   * writeNorms() to write for the whole page in one kernel call (a call per row was a tenth of
   * opening GloVe 331k, int8). Until then the page's norms are not its codes'.
   */
  addLoaded(slot: number, page: number, code: Uint8Array, scale: number, at?: number): void {
    this.put(slot, page, code, scale, at, false);
  }

  /** The norm of every code of `page`, where it keeps them (addLoaded()). */
  writeNorms(page: number): void {
    const p = this.pageAt(page);
    if (p.norms !== 0 && p.count > 0 && this.fast === undefined) this.query.writeCodeNorms(p.codes, p.count, p.norms);
  }

  private put(slot: number, page: number, code: Uint8Array, scale: number, at: number | undefined, norm: boolean): void {
    if (!(Number.isInteger(slot) && slot >= 0)) throw new RangeError(`slot must be a non-negative integer, got ${slot}`);
    if (this.has(slot)) throw new RangeError(`slot ${slot} already holds a vector`);
    const codeBytes = this.codec.codeBytes(this.dim);
    if (at === undefined ? code.length !== codeBytes : !(Number.isInteger(at) && at >= 0 && at + codeBytes <= code.length)) {
      throw new RangeError(at === undefined ? `a code has ${codeBytes} bytes, not ${code.length}` : `no code of ${codeBytes} bytes at ${at} of ${code.length}`);
    }
    const p = this.pageAt(page);
    if (p.count === p.room) this.resize(p, this.roomOf(p.room + 1));
    const row = p.count++;
    this.writeRow(p, row, code, scale, at ?? 0, norm);
    p.slots[row] = slot;
    this.slotMap.set(slot, page, row);
    this.vectors++;
  }

  /** Replaces the code of the vector in `slot`, where it is. */
  replace(slot: number, code: Uint8Array, scale: number): void {
    const page = this.pageOf(slot);
    this.writeRow(this.pages[page]!, this.slotMap.rowOf(slot), code, scale);
  }

  /** Removes the vector in `slot`; its page's last row moves into its row. */
  remove(slot: number): void {
    const page = this.pageOf(slot);
    const p = this.pages[page]!;
    const row = this.slotMap.rowOf(slot);
    const last = p.count - 1;
    if (row !== last) {
      if (this.fast === undefined) {
        this.mem.u8().copyWithin(p.codes + row * this.stride, p.codes + last * this.stride, p.codes + (last + 1) * this.stride);
        const f32 = this.mem.f32();
        f32[(p.scales >> 2) + row] = f32[(p.scales >> 2) + last]!;
        if (p.norms !== 0) f32[(p.norms >> 2) + row] = f32[(p.norms >> 2) + last]!;
      } else {
        this.fast.move(p, last, p, row);
      }
      const moved = p.slots[last]!;
      p.slots[row] = moved;
      this.slotMap.setRow(moved, row);
    }
    p.count--;
    this.slotMap.clear(slot);
    this.vectors--;
    if (p.room > this.roomOf(0) && p.count <= p.room / 4) this.resize(p, this.roomOf(2 * p.count));
  }

  /** Moves the vector in `slot` to the end of page `to` (a split or a merge). */
  moveTo(slot: number, to: number): void {
    const { code, scale } = this.codeAt(slot);
    this.remove(slot);
    this.add(slot, to, code, scale);
  }

  /**
   * The vector in slot `from` is now known as slot `to` (absent): the slot table moved it, as it does
   * when it removes another vector. Its code stays where it is.
   */
  renumber(from: number, to: number): void {
    const page = this.pageOf(from);
    if (this.has(to)) throw new RangeError(`slot ${to} already holds a vector`);
    const row = this.slotMap.rowOf(from);
    this.pages[page]!.slots[row] = to;
    this.slotMap.clear(from);
    this.slotMap.set(to, page, row);
  }

  /** A copy of the code of the vector in `slot`, and its scale. */
  codeAt(slot: number): { code: Uint8Array; scale: number } {
    const { code, scale } = this.codeView(slot);
    return { code: code.slice(), scale };
  }

  /**
   * The code of the vector in `slot` as a view of linear memory (valid until the next change or
   * allocation), and its scale: what a checkpoint writes, without a copy per record. In the
   * fast-scan layout the code is rebuilt from the row's lane into a buffer of this store, valid
   * until the next call.
   */
  codeView(slot: number): { code: Uint8Array; scale: number } {
    const p = this.pages[this.pageOf(slot)]!;
    const row = this.slotMap.rowOf(slot);
    if (this.fast !== undefined) return this.fast.view(p, row);
    const scale = this.mem.f32()[(p.scales >> 2) + row]!;
    const at = p.codes + row * this.stride;
    return { code: this.mem.u8().subarray(at, at + this.codec.codeBytes(this.dim)), scale };
  }

  /** The decoded code of the vector in `slot` (Codec.decode), into `out` (dim floats), read where it lies. */
  decode(slot: number, out: Float32Array): void {
    this.decodeRow(this.pages[this.pageOf(slot)]!, this.slotMap.rowOf(slot), out);
  }

  /** The decoded codes of every vector of `page`, in row order (slotsOf's), one after another into `out` (room for sizeOf(page) × dim). */
  decodePage(page: number, out: Float32Array): void {
    const p = this.pageAt(page);
    const dim = this.dim;
    if (out.length < p.count * dim) throw new RangeError(`room for ${out.length / dim} vectors, not ${p.count}`);
    // Out in linear memory (as opening and PageSums.recompute give it): one kernel call for the page.
    if (this.fast !== undefined && out.buffer === this.mem.memory.buffer) this.fast.decodeRows(p, p.count, out.byteOffset);
    else if (this.codec.name === 'int8' && out.buffer === this.mem.memory.buffer) kernels().int8Decode(p.codes, this.stride, p.scales, p.count, dim, out.byteOffset);
    else for (let row = 0; row < p.count; row++) this.decodeRow(p, row, out.subarray(row * dim, (row + 1) * dim));
  }

  private decodeRow(p: Page, row: number, out: Float32Array): void {
    if (this.fast !== undefined) {
      this.fast.decode(p, row, out);
      return;
    }
    const at = p.codes + row * this.stride;
    this.codec.decode(this.mem.u8().subarray(at, at + this.codec.codeBytes(this.dim)), this.mem.f32()[(p.scales >> 2) + row]!, out);
  }

  /**
   * An rq code's ‖e‖ and ‖r‖² (RqCodec.residualError, normSquared) and its factor F, of the vectors
   * in `slots[0..count)`, into `out[3i..3i + 3)`: what the rescoring bound reads of each candidate,
   * without a code. One loop, no call per candidate: the terms of a search's candidates are scattered
   * over its pages, and a loop of plain reads keeps several of their cache misses in flight.
   */
  rqTermsOf(slots: Int32Array, count: number, out: Float64Array): void {
    const fast = this.fast;
    if (fast !== undefined) {
      const f32 = this.mem.f32();
      for (let i = 0; i < count; i++) {
        const slot = slots[i]!;
        fast.terms(f32, this.pages[this.pageOf(slot)]!, this.slotMap.rowOf(slot), out, 3 * i);
      }
      return;
    }
    for (let i = 0; i < count; i++) {
      const { code, scale } = this.codeView(slots[i]!);
      rqTermsOf(this.codec as RqCodec, code, scale, this.dim, out, 3 * i);
    }
  }

  /**
   * The query as the scan kernels see it (QueryScratch.kernelForm). The fast-scan kernels see the
   * query itself, through tables whose rounding tableError() bounds.
   */
  kernelForm(query: ScanQuery, into?: Int8Array): KernelForm {
    if (this.fast !== undefined) return { kind: 'float', vector: query.vector };
    return this.query.kernelForm(query, into);
  }

  /** How far the query the kernels see is from `query.vector` (QueryScratch.kernelQueryError); 0 in the fast-scan layout. */
  kernelQueryError(query: ScanQuery): number {
    if (this.fast !== undefined) return 0;
    return this.query.kernelQueryError(query);
  }

  /**
   * In the fast-scan layout, a bound on |estimate of ⟨ŷ, q⟩ − ⟨ŷ, q⟩| for every code, for the scores
   * of `query` (FastScanQuery.tableError); 0 otherwise. A score is F times the estimate.
   */
  tableError(query: ScanQuery): number {
    return this.fast === undefined ? 0 : this.fast.tableError(query);
  }

  /** Loads `query` for scanPage(). */
  private loadQuery(query: ScanQuery): void {
    if (this.fast === undefined) this.query.load(query);
    else this.fast.load(query);
  }

  /** Scores the rows of `p` against the loaded `query` into `out` (room for scored(p.count) float32). */
  private scanPage(query: ScanQuery, p: Page, out: number): void {
    if (this.fast === undefined) this.query.scan(query, p.codes, p.scales, p.count, out, p.norms);
    else this.fast.scan(query, p, p.count, out);
  }

  /**
   * Scores the vectors of `pages[0..count)` against `query` (one kernel call per page) and keeps the
   * best, by slot, in `top`; `accept(slot)` is asked only about vectors that could enter it. The
   * selection kernel picks the rows at or above the top's floor, so JavaScript visits only those.
   * Each score is the one a scan of the same code by the same kernel gives anywhere.
   *
   * With `pool`, every accepted vector of those pages at or above the pool's line (score-pool.ts) is
   * collected too, as the exact index's scan collects it over every vector (CodeBlocks.scan): each
   * page's scores are kept until the scan ends, then one pass of the selection kernel per page finds
   * them, and `accept` is asked once per vector at most.
   */
  scan(query: ScanQuery, pages: ArrayLike<number>, count: number, top: TopK, accept?: (slot: number) => boolean, pool?: ScorePool): void {
    this.loadQuery(query);
    if (pool !== undefined) {
      this.scanKeeping(query, pages, count, top, accept, pool);
      return;
    }
    for (let i = 0; i < count; i++) {
      const p = this.pageAt(pages[i]!);
      if (p.count === 0) continue;
      this.reserveScratch(this.scored(p.count));
      const out = this.scratchAt(0);
      this.scanPage(query, p, out);
      pushPicked(top, out, p.count, this.scratchAt(1), (row) => p.slots[row]!, accept);
    }
  }

  /** scan() with a pool: the scores of every page kept in one run of linear memory (each page's 16-byte aligned), then collected. */
  private scanKeeping(query: ScanQuery, pages: ArrayLike<number>, count: number, top: TopK, accept: ((slot: number) => boolean) | undefined, pool: ScorePool): void {
    let rows = 0;
    for (let i = 0; i < count; i++) rows += aligned(this.scored(this.pageAt(pages[i]!).count));
    this.reserveKept(rows);
    // What `accept` said, by slot, for the pool to reuse.
    const { asked, verdicts } = recordingVerdicts(accept);
    for (let i = 0, at = this.keptBase; i < count; i++) {
      const p = this.pageAt(pages[i]!);
      if (p.count === 0) continue;
      this.reserveScratch(p.count);
      this.scanPage(query, p, at);
      pushPicked(top, at, p.count, this.scratchAt(1), (row) => p.slots[row]!, asked);
      at += 4 * aligned(this.scored(p.count));
    }
    const k = kernels();
    pool.setLine(top.kthBest(), top.meanBest());
    for (let i = 0, at = this.keptBase; i < count; i++) {
      const p = this.pageAt(pages[i]!);
      if (p.count === 0) continue;
      const picks = this.scratchAt(1);
      const m = k.selectAtLeast(at, p.count, pool.line, picks);
      if (m < p.count) pool.passedOver = true;
      const scores = this.mem.f32();
      const positions = this.mem.i32();
      for (let j = 0; j < m; j++) {
        const row = positions[(picks >> 2) + j]!;
        const slot = p.slots[row]!;
        if (accept !== undefined && !(verdicts?.get(slot) ?? accept(slot))) continue;
        pool.add(slot, scores[(at >> 2) + row]!);
      }
      at += 4 * aligned(this.scored(p.count));
    }
  }

  /** Room for `rows` kept scores (scanKeeping), made at the first scan that collects a pool. */
  private reserveKept(rows: number): void {
    if (rows <= this.keptRoom) return;
    if (this.keptRoom > 0) this.mem.free(this.keptBase, 4 * this.keptRoom);
    this.keptRoom = roomFor(rows);
    this.keptBase = this.mem.alloc(4 * this.keptRoom);
  }

  /** The kernel scores of every vector of `page` against `query`, in row order (slotsOf's), into `out` (room for sizeOf(page)). */
  scorePage(query: ScanQuery, page: number, out: Float32Array): void {
    const p = this.pageAt(page);
    if (out.length < p.count) throw new RangeError(`room for ${out.length} scores, not ${p.count}`);
    if (p.count === 0) return;
    this.loadQuery(query);
    this.reserveScratch(this.scored(p.count));
    const at = this.scratchAt(0);
    this.scanPage(query, p, at);
    out.set(this.mem.f32().subarray(at >> 2, (at >> 2) + p.count));
  }

  /**
   * The scores of the vectors in `slots[0..count)` against `query`, written to `out[0..count)`: the
   * gather form of the same kernel reads each code where its page holds it, one call per run of
   * GATHER_RUN, so each score is the one scan() gives that vector.
   */
  scoreSlots(query: ScanQuery, slots: Int32Array, count: number, out: Float32Array): void {
    if (out.length < count) throw new RangeError(`room for ${out.length} scores, not ${count}`);
    // The address table takes two i32 per vector of a run, in the second half of the scratch.
    this.reserveScratch(2 * GATHER_RUN);
    const { slotMap, stride } = this;
    const fill = (from: number, n: number, table: Int32Array, at: number) => {
      for (let j = 0; j < n; j++) {
        const slot = slots[from + j]!;
        const page = this.holding(slot);
        const row = slotMap.rowOf(slot);
        table[at + 2 * j] = page.codes + row * stride;
        table[at + 2 * j + 1] = page.scales + row * 4;
      }
    };
    const take = (from: number, n: number, scores: Float32Array, at: number) => {
      for (let j = 0; j < n; j++) out[from + j] = scores[at + j]!;
    };
    const fast = this.fast;
    if (fast !== undefined) {
      // Quadruples (FastScanCodes.entry) in the second half of the scratch; the scores in the first.
      this.reserveScratch(4 * GATHER_RUN);
      const quad = (from: number, n: number, table: Int32Array, at: number) => {
        for (let j = 0; j < n; j++) {
          const slot = slots[from + j]!;
          fast.entry(table, at + 4 * j, this.holding(slot), slotMap.rowOf(slot));
        }
      };
      fast.gather(query, count, this.scratchAt(1), this.scratchAt(0), quad, take);
      return;
    }
    this.query.gather(query, count, this.scratchAt(1), this.scratchAt(0), fill, take);
  }

  /** Returns all linear memory; the store is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const p of this.pages) this.release(p);
    this.pages = [];
    if (this.scratchRoom > 0) this.mem.free(this.scratchBase, 8 * this.scratchRoom);
    if (this.keptRoom > 0) this.mem.free(this.keptBase, 4 * this.keptRoom);
    this.query.free();
    this.fast?.free();
  }

  /** Scratch for one page's scores (which 0) or its picked rows (which 1). */
  private scratchAt(which: 0 | 1): number {
    return this.scratchBase + which * 4 * this.scratchRoom;
  }

  private reserveScratch(rows: number): void {
    if (rows <= this.scratchRoom) return;
    if (this.scratchRoom > 0) this.mem.free(this.scratchBase, 8 * this.scratchRoom);
    this.scratchRoom = roomFor(rows);
    this.scratchBase = this.mem.alloc(8 * this.scratchRoom);
  }

  /** The page holding `slot`, for a gather: RangeError when none does. */
  private holding(slot: number): Page {
    const p = this.slotMap.pageOf(slot);
    if (p < 0) throw new RangeError(`no vector in slot ${slot}`);
    return this.pages[p]!;
  }

  private pageAt(page: number): Page {
    const p = this.pages[page];
    if (p === undefined) throw new RangeError(`no page ${page}`);
    return p;
  }

  private allocate(room: number): Page {
    if (this.fast !== undefined) {
      const area = this.fast.allocate(room);
      return new Page(area.codes, area.scales, area.norms, area.errs, room, new Int32Array(room));
    }
    const norms = this.cosineNorms ? this.mem.alloc(room * 4) : 0;
    return new Page(this.mem.alloc(room * this.stride), this.mem.alloc(room * 4), norms, 0, room, new Int32Array(room));
  }

  private release(p: Page): void {
    if (this.fast !== undefined) {
      this.fast.release(p, p.room);
      return;
    }
    this.mem.free(p.codes, p.room * this.stride);
    this.mem.free(p.scales, p.room * 4);
    if (p.norms !== 0) this.mem.free(p.norms, p.room * 4);
  }

  /** Gives `p` a room of `room` rows, keeping its rows. */
  private resize(p: Page, room: number): void {
    const next = this.allocate(room);
    if (this.fast !== undefined) {
      this.fast.copyRows(p, next, p.count);
    } else {
      const u8 = this.mem.u8();
      u8.copyWithin(next.codes, p.codes, p.codes + p.count * this.stride);
      u8.copyWithin(next.scales, p.scales, p.scales + p.count * 4);
      if (p.norms !== 0) u8.copyWithin(next.norms, p.norms, p.norms + p.count * 4);
    }
    next.slots.set(p.slots.subarray(0, p.count));
    this.release(p);
    p.codes = next.codes;
    p.scales = next.scales;
    p.norms = next.norms;
    p.errs = next.errs;
    p.room = room;
    p.slots = next.slots;
  }

  /** Writes the code from byte `from` of `code` (and `scale`) as `row` of `p`; its norm too unless `norm` is false (writeNorms()). */
  private writeRow(p: Page, row: number, code: Uint8Array, scale: number, from = 0, norm = true): void {
    if (this.fast !== undefined) {
      this.fast.write(p, row, code, scale, from);
      return;
    }
    const at = p.codes + row * this.stride;
    const codeBytes = this.codec.codeBytes(this.dim);
    const u8 = this.mem.u8();
    u8.set(from === 0 && code.length === codeBytes ? code : code.subarray(from, from + codeBytes), at);
    u8.fill(0, at + codeBytes, at + this.stride);
    const f32 = this.mem.f32();
    f32[(p.scales >> 2) + row] = scale;
    if (p.norms !== 0 && norm) this.query.writeCodeNorm(at, p.norms + 4 * row);
  }

  /**
   * Makes the slot map hold slots up to `slots` - 1 (slots are dense: the slot table's count), so
   * that a store opened at n vectors holds a map of n, not of the power of two past it.
   */
  reserveSlots(slots: number): void {
    this.slotMap.reserve(slots);
  }
}
