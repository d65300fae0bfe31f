import { isRqCodec, type Codec } from '../codec/codec.js';
import type { FilterColumns } from '../filter/columns.js';
import type { KernelMetric } from '../kernels/index.js';
import { kernelQueryOf, type KernelForm, type LoadedRecord, type ScanQuery, type StoredRecord, type VectorPlace } from '../scan/code-blocks.js';
import { LargestNorm } from '../scan/largest-norm.js';
import { SlotTable } from '../scan/slot-table.js';
import type { PoolScope, SearchScope } from '../scan/score-pool.js';
import type { TopK } from '../scan/topk.js';
import { GATHER_COST, MatchingScan } from './matching-scan.js';
import { PageClusters } from './page-clusters.js';
import type { RouteSphere } from './router.js';
import type { IndexSearch, VectorIndex } from './vector-index.js';

/** How a store's page-clustered index is shaped (PAGES.md, "The index over the pages"). */
export interface PageIndexOptions {
  /** Vectors a page holds before it splits in two. @default 192 */
  readonly maxPage?: number;
  /** Seed of the clustering: the same vectors in the same order give the same pages. @default 1 */
  readonly seed?: number;
  /** Route queries on the unit sphere: a cosine store with a model (VectorSpace.routeSphere()). @default none: by the kernel score */
  readonly sphere?: RouteSphere;
  /** `W μ` of a dot or l2 store with a model (VectorSpace.inputMean(); PageClusterOptions.inputMean). @default none */
  readonly inputMean?: Float32Array;
}

export const PAGE_INDEX_DEFAULTS = Object.freeze({ maxPage: 192, seed: 1 });

/** Pages every search probes however many there are: below this many pages, a search scans them all. */
export const MIN_PROBES = 32;
/**
 * Past MIN_PROBES, a search probes this many times √(pages): on the sets measured
 * (`bench/results/index.md`) the nprobe that finds 0.95 of float32's top 10 grew like √(pages), not
 * like the pages (1.6√ at 50k x 512-d, 2.7√ on GloVe 100-d at 100k and 331k), so a share of the
 * pages probes too many at scale and too few when small.
 */
export const PROBE_FACTOR = 3;

/**
 * The factor of a store whose vectors' lengths spread (probeFactor()): the pages that hold a dot
 * store's largest inner products, or the l2 neighbours of a query among lengths of many scales, are
 * not the ones whose centroids rank first as often as a cosine store's are. Measured on GloVe 100-d
 * (2026-12-06, `bench/builds.ts`, bench/results/index.md): at its own norms, a dot store's default
 * search found 0.916 of the exact top 10 at 100k and 0.918 at 331k with 3·√pages, 0.964 and 0.958
 * with 6·√pages; as the data sets' script makes it (lengths over five decades), an l2 store's 0.922
 * and 0.955 at 100k.
 */
export const UNEQUAL_PROBE_FACTOR = 6;
/**
 * A dot store probes UNEQUAL_PROBE_FACTOR · √pages once the 90th percentile of the lengths of its
 * vectors is more than this times the 10th (LengthSpread.ratio()): of one length, as most embedding
 * models make them, inner products rank as cosines do. Between what needed it and what did not: GloVe
 * at its own norms (1.8 times) found 0.916 with 3·√pages; a hostile pass's 32-d clusters at 1.23
 * times found 0.985 with 3·√pages and 0.999 with 6.
 */
export const DOT_UNEQUAL_RATIO = 1.5;
/**
 * An l2 store probes UNEQUAL_PROBE_FACTOR · √pages once that ratio is at least this: GloVe at its own
 * norms (1.8 times) found 0.962 with 3·√pages, its lengths as the data sets' script makes them (14.7
 * times) 0.922. The lengths are read from the origin (through a model, of the input vectors:
 * PageClusterOptions.inputMean), so data far from the origin reads as one length whatever its spread.
 */
export const L2_MANY_LENGTHS_RATIO = 4;

/** Times √pages a search probes by default in pages of vectors whose lengths spread as `lengths` says (PageClusters.lengthRatio(); undefined: not kept, a cosine store). */
export function probeFactor(lengths: { readonly metric: 'dot' | 'l2'; readonly ratio: number } | undefined): number {
  if (lengths === undefined) return PROBE_FACTOR;
  const unequal = lengths.metric === 'dot' ? lengths.ratio > DOT_UNEQUAL_RATIO : lengths.ratio >= L2_MANY_LENGTHS_RATIO;
  return unequal ? UNEQUAL_PROBE_FACTOR : PROBE_FACTOR;
}

/** The pages a search probes when it does not say: all while they are few, then `factor` · √pages. */
export function defaultProbes(pages: number, factor = PROBE_FACTOR): number {
  return Math.min(pages, Math.max(MIN_PROBES, Math.ceil(factor * Math.sqrt(pages))));
}

/** Vectors a filtered search without filter columns asks its filter about to estimate the share it takes (search()). */
const FILTER_SAMPLE = 64;

/** Ids in slot tables are chunked like this (SlotTable's places and document flags). */
const SLOT_CHUNK = 1024;

/**
 * Sorts `slots` in place by the id `idAt` gives each (UTF-16 code unit order): the order of a
 * store's vectors that survives reopening, where slot numbers do not (PAGES.md, "Determinism").
 */
export function sortSlotsById(slots: Int32Array, idAt: (slot: number) => string): void {
  const ids = Array.from(slots, idAt);
  const order = ids.map((_, i) => i).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
  const before = slots.slice();
  for (let i = 0; i < order.length; i++) slots[i] = before[order[i]!]!;
}

/**
 * The page-clustered index: the slot table (ids, places, document flags, slot moves) as in the
 * exact index, and the codes in pages of vectors near each other (PageClusters). A search scans the
 * `nprobe` pages whose centroids are nearest the query (`defaultProbes` when not given; every page
 * with `exact`), so its cost follows the pages probed, not the store's size.
 *
 * Which page holds each vector is part of the store's checkpoint (the index file's PAGE field,
 * INDEX.md): the vectors whose page changed since the last checkpoint (splits, merges, pages
 * renumbered, re-clustering) are kept by id until a checkpoint takes them.
 */
export class PageIndex implements VectorIndex {
  readonly stride: number;
  private readonly slots = new SlotTable(true, SLOT_CHUNK);
  private readonly clusters: PageClusters;
  private readonly matching = new MatchingScan();
  /** Ids whose page changed since the last checkpoint took them. */
  private relocated = new Set<string>();
  /** Ids loaded without a page (a record a checkpoint wrote before it had one): routed at loaded(). */
  private unplaced: Set<string> | undefined;
  /**
   * Pages a loaded record may name: fewer than the records the checkpoint holds (reserve()), since
   * every page holds one at least. A record naming a page past it is loaded as one without a page,
   * so a checksum-intact record naming page 2^32 - 1 cannot make billions of empty pages.
   */
  private pageLimit = Infinity;
  private readonly norms: LargestNorm;
  private scores = new Float32Array(0);

  constructor(
    readonly codec: Codec,
    readonly dim: number,
    metric: KernelMetric,
    options: PageIndexOptions = {},
  ) {
    this.stride = codec.strideBytes(dim);
    const maxPage = options.maxPage ?? PAGE_INDEX_DEFAULTS.maxPage;
    this.clusters = new PageClusters(codec, dim, metric, { maxPage, seed: options.seed ?? PAGE_INDEX_DEFAULTS.seed, sphere: options.sphere, inputMean: options.inputMean, sortSlots: (slots) => sortSlotsById(slots, (slot) => this.slots.idAt(slot)) }, (slot) => this.relocated.add(this.slots.idAt(slot)));
    this.norms = new LargestNorm(codec, dim);
  }

  get size(): number {
    return this.slots.size;
  }

  get bytes(): number {
    return this.clusters.bytes + this.slots.bytes + this.scores.byteLength;
  }

  get bytesPerVector(): number {
    return this.size === 0 ? this.stride + 4 + (this.clusters.cosineNorms ? 4 : 0) + this.slots.bytesPerVector : (this.clusters.bytes + this.slots.bytes) / this.size;
  }

  get idBytes(): number {
    return this.slots.idBytes;
  }

  get pages(): number {
    return this.clusters.pageCount;
  }

  get paged(): boolean {
    return true;
  }

  get columns(): FilterColumns {
    return this.slots.columns;
  }

  get defaultProbes(): number {
    return defaultProbes(this.clusters.pageCount, probeFactor(this.clusters.lengthRatio()));
  }

  /** Vectors in each page. */
  pageSizes(): number[] {
    return this.clusters.pageSizes();
  }

  reserve(records: number, idBytes: number): void {
    this.slots.reserve(records, idBytes);
    this.clusters.reserve(records);
    this.pageLimit = Math.max(1, records);
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  slotOf(id: string): number | undefined {
    return this.slots.slotOf(id);
  }

  idAt(slot: number): string {
    return this.slots.idAt(slot);
  }

  allIds(): IterableIterator<string> {
    return this.slots.allIds();
  }

  put(id: string, vector: Float32Array): void {
    const slot = this.freshSlot(id);
    this.clusters.add(slot, vector);
    this.noteNorm(slot);
  }

  putCode(id: string, code: Uint8Array, scale: number): void {
    const codeBytes = this.codec.codeBytes(this.dim);
    if (code.length !== codeBytes) throw new RangeError(`code of ${code.length} bytes, expected ${codeBytes}`);
    const slot = this.freshSlot(id);
    this.clusters.addCode(slot, code, scale);
    this.noteNorm(slot);
  }

  loadRecord(r: LoadedRecord): VectorPlace | undefined {
    const codeBytes = this.codec.codeBytes(this.dim);
    if (r.codeAt < 0 || r.codeBytes !== codeBytes) throw new RangeError(`code of ${r.codeBytes} bytes, expected ${codeBytes}`);
    // Room for the checkpoint's records at once (a no-op after the first record).
    this.clusters.expectLoad(Number.isFinite(this.pageLimit) ? this.pageLimit : 0);
    const { slot, added } = this.slots.slotForBytes(r.block, r.idAt, r.idLength);
    const previous = added ? undefined : this.slots.placeAt(slot);
    if (!added) this.clusters.remove(slot);
    const code = r.block.subarray(r.codeAt, r.codeAt + codeBytes);
    if (r.page >= 0 && r.page < this.pageLimit) {
      this.clusters.load(slot, r.page, code, r.scale);
      this.unplaced?.delete(this.slots.idAt(slot));
    } else {
      // Held in page 0 until loaded() routes it.
      this.clusters.load(slot, 0, code, r.scale);
      (this.unplaced ??= new Set()).add(this.slots.idAt(slot));
    }
    this.slots.setPlaceParts(slot, r.generation, r.segment, r.offset);
    this.slots.setDocumentedAt(slot, r.documented);
    // The codes are staged until loaded(): a bound known now is computed again from them.
    this.norms.forget();
    return previous;
  }

  /**
   * Puts the code of `id` in page `page`, as loadRecord() puts a checkpoint's: for an index built
   * from a plan of its pages (page-plan.ts) with codes in memory. loaded() ends it, as it ends a load.
   */
  loadCode(id: string, page: number, code: Uint8Array, scale: number): void {
    const codeBytes = this.codec.codeBytes(this.dim);
    if (code.length !== codeBytes) throw new RangeError(`code of ${code.length} bytes, expected ${codeBytes}`);
    if (!(Number.isInteger(page) && page >= 0 && page < this.pageLimit)) throw new RangeError(`page must be an integer from 0 to ${this.pageLimit - 1}, got ${page}`);
    this.clusters.expectLoad(this.pageLimit);
    const slot = this.freshSlot(id);
    this.clusters.load(slot, page, code, scale);
    this.norms.forget();
  }

  /** The page that holds the vector of `id`; undefined when it holds none. */
  pageOf(id: string): number | undefined {
    const slot = this.slots.slotOf(id);
    return slot === undefined ? undefined : this.clusters.pageOf(slot);
  }

  loaded(): void {
    const steps = this.loading();
    while (steps.next().done !== true);
  }

  /** loaded() in steps (PageClusters.settling): nothing else may be asked of this index until it is done; return() ends it early. */
  *loading(): Generator<void, void, void> {
    yield* this.clusters.settling();
    const unplaced = this.unplaced;
    this.unplaced = undefined;
    for (const id of unplaced ?? []) {
      const slot = this.slots.slotOf(id);
      if (slot === undefined) continue;
      const { code, scale } = this.clusters.codeView(slot);
      const copy = code.slice();
      this.clusters.remove(slot);
      this.clusters.addCode(slot, copy, scale);
      this.relocated.add(id);
    }
  }

  recordAt(slot: number): StoredRecord {
    const { code, scale } = this.clusters.codeView(slot);
    return {
      idBytes: this.slots.idBytesAt(slot),
      code,
      scale,
      generation: this.slots.placePartAt(slot, 0),
      segment: this.slots.placePartAt(slot, 1),
      offset: this.slots.placePartAt(slot, 2),
      documented: this.slots.documentedAt(slot),
      page: this.clusters.pageOf(slot),
    };
  }

  code(id: string): { code: Uint8Array; scale: number } | undefined {
    const slot = this.slots.slotOf(id);
    if (slot === undefined) return undefined;
    const { code, scale } = this.clusters.codeView(slot);
    return { code: code.slice(), scale };
  }

  decode(id: string, out: Float32Array): boolean {
    const slot = this.slots.slotOf(id);
    if (slot === undefined) return false;
    const { code, scale } = this.clusters.codeView(slot);
    this.codec.decode(code, scale, out);
    return true;
  }

  remove(id: string): boolean {
    const slot = this.slots.slotOf(id);
    if (slot === undefined) return false;
    this.clusters.remove(slot);
    const last = this.slots.removeSwap(slot);
    if (last !== slot) this.clusters.renumber(last, slot);
    this.relocated.delete(id);
    return true;
  }

  placeOf(id: string): VectorPlace | undefined {
    return this.slots.placeOf(id);
  }

  placeAt(slot: number): VectorPlace | undefined {
    return this.slots.placeAt(slot);
  }

  setPlace(id: string, place: VectorPlace | undefined): void {
    this.slots.setPlace(id, place);
  }

  documented(id: string): boolean {
    return this.slots.documented(id);
  }

  documentedAt(slot: number): boolean {
    return this.slots.documentedAt(slot);
  }

  setDocumented(id: string, documented: boolean): void {
    this.slots.setDocumented(id, documented);
  }

  kernelQuery(query: ScanQuery): Float32Array {
    return kernelQueryOf(this.kernelForm(query));
  }

  kernelForm(query: ScanQuery, into?: Int8Array): KernelForm {
    return this.clusters.kernelForm(query, into);
  }

  kernelQueryError(query: ScanQuery): number {
    return this.clusters.kernelQueryError(query);
  }

  tableError(query: ScanQuery): number {
    return this.clusters.tableError(query);
  }

  rqTermsOf(slots: Int32Array, count: number, out: Float64Array): void {
    if (!isRqCodec(this.codec.name)) throw new RangeError(`${this.codec.name} codes are not rq codes`);
    for (let i = 0; i < count; i++) if (!(slots[i]! >= 0 && slots[i]! < this.slots.size)) throw new RangeError(`slot ${slots[i]} out of range`);
    this.clusters.rqTermsOf(slots, count, out);
  }

  maxNorm(): number {
    return this.norms.get(() => {
      for (let slot = 0; slot < this.slots.size; slot++) this.noteNorm(slot);
    });
  }

  codeAt(slot: number): Uint8Array {
    if (!(slot >= 0 && slot < this.slots.size)) throw new RangeError(`slot ${slot} out of range`);
    return this.clusters.codeView(slot).code;
  }

  codeErrorAt(slot: number): number {
    if (!(slot >= 0 && slot < this.slots.size)) throw new RangeError(`slot ${slot} out of range`);
    const { code, scale } = this.clusters.codeView(slot);
    return this.codec.codeError(code, scale, this.dim);
  }

  /**
   * A filtered search probes `nprobe` / (the share of vectors the filter takes) pages, at most all
   * of them, so that it examines about as many matching vectors as an unfiltered search examines
   * vectors: the pages nearest a query hold few matches of a selective filter, and probing only
   * `nprobe` of them found 0.82 of the exact filtered top 10 at 1% on GloVe 100k. The share comes
   * from the filter's columns (FilterTest.atMost), or, for a bare `accept`, from asking it about
   * FILTER_SAMPLE vectors spread over the slots. When the matching vectors are fewer than what those
   * pages hold over GATHER_COST, only they are scored (MatchingScan): exact, and cheaper.
   */
  search(query: ScanQuery, top: TopK, options: IndexSearch): void {
    const pages = this.clusters.pageCount;
    const n = this.slots.size;
    const exact = options.exact === true;
    let probes = exact ? pages : (options.nprobe ?? this.defaultProbes);
    const { accept, filter } = options;
    // A filtered search's pages follow the share its filter takes, which writes move: no pool is scoped to them.
    const pool = accept === undefined ? options.pool : undefined;
    if (options.pool !== undefined && pool === undefined) options.pool.scope = null;
    if (accept !== undefined && filter !== undefined) {
      const matching = filter.atMost;
      if (matching === 0) return;
      if (!exact) probes = Math.min(pages, Math.ceil((probes * n) / matching));
      if (matching * GATHER_COST <= (probes * n) / pages) {
        this.matching.run(this, query, top, filter, accept);
        return;
      }
    } else if (accept !== undefined && probes < pages) {
      const asked = Math.min(n, FILTER_SAMPLE);
      let taken = 0;
      for (let i = 0; i < asked; i++) if (accept(Math.floor((i * n) / asked))) taken++;
      // None taken of the sample: the share is under 1 / asked, so every page.
      probes = taken === 0 ? pages : Math.min(pages, Math.ceil((probes * asked) / taken));
    }
    this.clusters.search(query, top, probes, accept, pool, options.wanted);
    // Every page scanned: the pool is drawn from every stored vector, whatever pages come later.
    if (exact && pool !== undefined) pool.scope = undefined;
  }

  /**
   * Not while it is empty either: its search scans nothing, so nothing would scope the pool, and an
   * unscoped empty pool would vouch for every vector added since, which a search probing some of the
   * pages does not see.
   */
  collectsPools(options: { readonly nprobe?: number | undefined; readonly exact?: boolean | undefined; readonly filter?: object | undefined }): boolean {
    return options.filter === undefined && this.size > 0;
  }

  /** The pages, ascending, that a search of `query` probing `nprobe` of them scans first (a pool's scope). */
  scopePages(query: ScanQuery, nprobe: number): Int32Array {
    return this.clusters.scopePages(query, nprobe);
  }

  layoutEpoch(): number {
    return this.clusters.layoutEpoch;
  }

  scopeOf(query: ScanQuery, options: { readonly nprobe?: number | undefined; readonly exact?: boolean | undefined }, candidates: number): SearchScope | undefined {
    if (options.exact === true || this.clusters.pageCount === 0) return undefined;
    const pages = this.scopePages(query, options.nprobe ?? this.defaultProbes);
    // Pages that hold fewer than the candidates: the search goes on to the next nearest ones.
    const complete = pages.length === this.clusters.pageCount || this.clusters.sizeOfPages(pages) >= Math.max(1, candidates);
    return { pages, layout: this.clusters.layoutEpoch, complete };
  }

  scanPages(query: ScanQuery, pages: Int32Array, count: number, top: TopK): void {
    this.clusters.scanPages(query, pages, count, top);
  }

  inScope(scope: PoolScope, slot: number): boolean {
    const page = this.clusters.pageOf(slot);
    const pages = scope.pages;
    let lo = 0;
    let hi = pages.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pages[mid]! < page) lo = mid + 1;
      else hi = mid;
    }
    return lo < pages.length && pages[lo] === page;
  }

  scanSlots(query: ScanQuery, slots: Int32Array, count: number, top: TopK): void {
    if (this.scores.length < count) this.scores = new Float32Array(Math.max(count, 2 * this.scores.length));
    this.clusters.scoreSlots(query, slots, count, this.scores);
    for (let i = 0; i < count; i++) {
      const score = this.scores[i]!;
      if (top.admits(score)) top.push(score, slots[i]!);
    }
  }

  scoreSlots(query: ScanQuery, slots: Int32Array, count: number, out: Float32Array): void {
    for (let i = 0; i < count; i++) if (!(slots[i]! >= 0 && slots[i]! < this.slots.size)) throw new RangeError(`slot ${slots[i]} out of range`);
    this.clusters.scoreSlots(query, slots, count, out);
  }

  moveEpoch(): number {
    return this.slots.moveEpoch();
  }

  movesSince(epoch: number, visit: (hole: number, from: number) => void): boolean {
    return this.slots.movesSince(epoch, visit);
  }

  takeRelocated(): ReadonlySet<string> {
    const taken = this.relocated;
    this.relocated = new Set();
    return taken;
  }

  hasRelocated(): boolean {
    return this.relocated.size > 0;
  }

  relocatedAgain(ids: Iterable<string>): void {
    for (const id of ids) if (this.slots.has(id)) this.relocated.add(id);
  }

  /**
   * Re-clusters every vector by k-means (PageClusters.recluster: two levels), as compaction
   * does: pages made by splits alone are worse than those k-means makes over every vector.
   */
  recluster(): boolean {
    if (this.clusters.pageCount < 2) return false;
    this.clusters.recluster();
    return true;
  }

  free(): void {
    this.clusters.free();
    this.slots.clear();
    this.relocated.clear();
  }

  /** The slot of `id` with no vector in the pages: a new slot, or its slot with its old code removed. */
  private freshSlot(id: string): number {
    const { slot, added } = this.slots.slotFor(id);
    if (!added) this.clusters.remove(slot);
    return slot;
  }

  private noteNorm(slot: number): void {
    if (!this.norms.known) return;
    const { code, scale } = this.clusters.codeView(slot);
    this.norms.note(code, scale);
  }
}
