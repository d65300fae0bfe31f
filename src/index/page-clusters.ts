import type { Codec } from '../codec/codec.js';
import { kernels, type KernelMetric } from '../kernels/index.js';
import type { KernelForm, ScanQuery } from '../scan/code-blocks.js';
import type { ScorePool } from '../scan/score-pool.js';
import { TopK } from '../scan/topk.js';
import { kmeans } from './kmeans.js';
import { LengthSpread } from './length-spread.js';
import { LoadStaging } from './load-staging.js';
import { PageStore } from './pages.js';
import { PageSums } from './page-sums.js';
import { CentroidRouter, halfNormSq, type RouteSphere } from './router.js';
import { dot, sameBits } from '../vector.js';

/** Vectors of the sample per coarse centroid in re-clustering's first level (FAISS trains on 39 to 256 per centroid). */
const RECLUSTER_SAMPLE_PER_CENTROID = 256;
/** Pages next to each of a split's two whose vectors it reassigns (SPFresh reassigns within a few neighbours). */
const REASSIGN_NEIGHBOURS = 16;
/** Lloyd rounds over the new pages after re-clustering's second level, and the coarse groups whose pages each vector may choose from. */
const RECLUSTER_REFINEMENTS = 3;
const RECLUSTER_GROUPS = 3;

/** `order[0..count)` ascending, in a new array. */
function sortedCopy(order: Int32Array, count: number): Int32Array {
  return order.slice(0, count).sort();
}

/** How a page-clustered set of codes grows and is searched (PAGES.md). */
export interface PageClusterOptions {
  /** Vectors a page holds before it splits in two by 2-means over its members. @default 512 */
  readonly maxPage?: number;
  /** A page left with fewer vectors than this gives them to their nearest other pages. @default maxPage / 8 */
  readonly minPage?: number;
  /** Seed of the splits' and re-clustering's k-means: the same vectors in the same order give the same pages. @default 1 */
  readonly seed?: number;
  /**
   * Sorts slots, in place, into the order in which a split or a re-clustering takes the vectors it
   * clusters: one that survives reopening (a store's ids), so that k-means sees the same points in
   * the same order after it as before.
   * @default ascending slot numbers
   */
  readonly sortSlots?: (slots: Int32Array) => void;
  /** Route queries on the unit sphere (a cosine store whose stored space is a model's; router.ts). @default none: by the kernel score */
  readonly sphere?: RouteSphere;
  /**
   * For a dot or l2 store whose stored space is a model's (PCA or the rq rotation, where a stored
   * vector is `W (x − μ)`): `W μ`, so that the lengths counted for the default `nprobe` are those of
   * `W x`, the input vectors' (all of them through a rotation; their projection through PCA), not of
   * their differences from the mean. @default none: the stored vectors' own lengths
   */
  readonly inputMean?: Float32Array;
}

type ResolvedOptions = Required<Omit<PageClusterOptions, 'sphere' | 'inputMean'>> & Pick<PageClusterOptions, 'sphere' | 'inputMean'>;

const bySlot = (slots: Int32Array): void => void slots.sort();

function resolve(o: PageClusterOptions): ResolvedOptions {
  const maxPage = o.maxPage ?? 512;
  if (!(Number.isInteger(maxPage) && maxPage >= 2)) throw new RangeError(`maxPage must be an integer >= 2, got ${maxPage}`);
  const minPage = o.minPage ?? Math.floor(maxPage / 8);
  if (!(Number.isInteger(minPage) && minPage >= 0 && minPage < maxPage / 2)) throw new RangeError(`minPage must be an integer from 0 to below maxPage / 2, got ${minPage}`);
  if (o.inputMean !== undefined && o.inputMean.some((x) => !Number.isFinite(x))) throw new RangeError('inputMean must be finite');
  return { maxPage, minPage, seed: o.seed ?? 1, sortSlots: o.sortSlots ?? bySlot, sphere: o.sphere, inputMean: o.inputMean };
}

/**
 * Codes clustered into pages (PAGES.md, "The index over the pages"): a vector goes to the page whose
 * centroid is nearest; a page that outgrows `maxPage` splits in two by 2-means over its members
 * (seeded: deterministic); a page that shrinks under `minPage` hands its vectors to their nearest
 * other pages and goes. Each centroid is the mean of its page's vectors (exact sums, PageSums: the
 * same members give the same centroid in whatever order they came; unit length for cosine, whose
 * routing is by dot product), so centroids follow their members.
 *
 * A search scans the `nprobe` pages whose centroids are nearest the query. Vectors are known by the
 * slot the owner gives them (its slot table), as in the page store.
 */
export class PageClusters {
  private readonly options: ResolvedOptions;
  /** How centroids rank vectors (the router's and k-means' forms of `metric`). */
  private readonly routing: 'dot' | 'l2';
  private readonly clustering: 'cosine' | 'l2';
  /**
   * A dot store's pages (a 'dot' router without a sphere) are ranked for a search by how far their
   * members spread from their mean as well as by the mean (CentroidRouter's `widens`; PAGES.md,
   * "Search"): a page's best inner product is its best member's, which the dot product with the
   * mean does not see.
   */
  private readonly widens: boolean;
  /**
   * The lengths of the vectors of a dot store's pages (where the router widens them) or an l2
   * store's: how many pages a search probes by default depends on how far they spread
   * (PageIndex.defaultProbes; PAGES.md, "Search").
   */
  private readonly lengths: LengthSpread | undefined;
  /** ‖W μ‖² of the options' inputMean (0 without). */
  private readonly inputMeanSq: number;
  private readonly pages: PageStore;
  private readonly router: CentroidRouter;
  /** Per page, the sum of its vectors' decoded codes. */
  private readonly sums: PageSums;
  private readonly codeScratch: Uint8Array;
  private readonly decoded: Float32Array;
  private readonly centroidScratch: Float32Array;
  private splits = 0;
  /** The nearest page of a vector being added (reused). */
  private readonly nearest = new TopK(1);
  /** A search's nearest pages in order, and the router's score of each (reused while their sizes hold). */
  private probeOrder = new Int32Array(0);
  private probeScores = new Float64Array(0);
  /** route()'s last answer, and what it was asked: a copy of the query, the offset, the count, the router's version. */
  private routeOrder = new Int32Array(0);
  private lastRoute: { vector: Float32Array; offset: number; count: number; version: number } | undefined;
  /** layoutEpoch. */
  private layoutChanges = 0;
  /** Between the first load() and settle(): the codes loaded, put in their pages by settle(). */
  private staging: LoadStaging | undefined;

  constructor(
    readonly codec: Codec,
    readonly dim: number,
    /** The metric of the queries it will be searched with. */
    readonly metric: KernelMetric,
    options: PageClusterOptions = {},
    /** Told the slot of each vector whose page number changes (a split, a merge, a page renumbered, a re-clustering). */
    private readonly moved: (slot: number) => void = () => undefined,
  ) {
    this.options = resolve(options);
    this.routing = metric === 'l2' ? 'l2' : 'dot';
    this.clustering = metric === 'cosine' ? 'cosine' : 'l2';
    this.widens = metric === 'dot' && this.options.sphere === undefined;
    this.lengths = this.widens || metric === 'l2' ? new LengthSpread() : undefined;
    this.inputMeanSq = this.options.inputMean === undefined ? 0 : dot(this.options.inputMean, this.options.inputMean);
    this.pages = new PageStore(codec, dim, metric);
    this.router = new CentroidRouter(dim, this.routing, this.options.sphere, this.widens);
    this.codeScratch = new Uint8Array(codec.codeBytes(dim));
    this.decoded = new Float32Array(dim);
    this.centroidScratch = new Float32Array(dim);
    // Pages pass maxPage only until the split that follows, or by what a merge hands them.
    this.sums = new PageSums(
      dim,
      2 * this.options.maxPage,
      { countOf: (page) => this.pages.sizeOf(page), decodeInto: (page, out) => this.pages.decodePage(page, out) },
      this.widens,
    );
  }

  get size(): number {
    return this.pages.size;
  }

  get pageCount(): number {
    return this.pages.pageCount;
  }

  /** Whether the pages keep their codes' norms for cosine scans (PageStore.cosineNorms). */
  get cosineNorms(): boolean {
    return this.pages.cosineNorms;
  }

  /** Splits made so far. */
  get splitCount(): number {
    return this.splits;
  }

  /** Bytes held: pages, centroids (router and sums). */
  get bytes(): number {
    return this.pages.bytes + this.router.bytes + this.sums.bytes;
  }

  /** Room in the slot map for `slots` vectors (PageStore.reserveSlots). */
  reserve(slots: number): void {
    this.pages.reserveSlots(slots);
  }

  /**
   * For a dot store's pages (where the router widens them) and an l2 store's, the metric and how far
   * the lengths of their vectors spread (LengthSpread.ratio(): the 90th percentile over the 10th);
   * undefined for the others.
   */
  lengthRatio(): { readonly metric: 'dot' | 'l2'; readonly ratio: number } | undefined {
    return this.lengths === undefined ? undefined : { metric: this.widens ? 'dot' : 'l2', ratio: this.lengths.ratio() };
  }

  /** dot(v, v) where the sums keep squares or the lengths are counted (once for both), else 0: nothing reads it. */
  private squaredNorm(v: Float32Array): number {
    return this.sums.keepSquares || this.lengths !== undefined ? dot(v, v) : 0;
  }

  /** The squared length LengthSpread counts for decoded vector `v`, whose own squared norm is `squared` (inputMean). */
  private lengthOf(v: Float32Array, squared: number): number {
    const mean = this.options.inputMean;
    return mean === undefined ? squared : squared + 2 * dot(v, mean) + this.inputMeanSq;
  }

  /** Vectors in each page. */
  pageSizes(): number[] {
    return Array.from({ length: this.pages.pageCount }, (_, p) => this.pages.sizeOf(p));
  }

  /** Encodes `vector` (dim floats, in the stored space) as the vector of `slot` (absent) in its nearest page. */
  add(slot: number, vector: Float32Array): void {
    if (vector.length !== this.dim) throw new RangeError(`a vector has ${this.dim} dimensions, not ${vector.length}`);
    const scale = this.codec.encode(vector, this.codeScratch);
    this.addCode(slot, this.codeScratch, scale);
  }

  /**
   * Stores `code` (dim · bytesPerDim bytes) and its scale as the vector of `slot` (absent) in the
   * page nearest its decoded form: routing, sums and splits see the code, never the vector it came
   * from, so a code loaded from disk lands where the same vector put directly does.
   */
  addCode(slot: number, code: Uint8Array, scale: number): void {
    this.notLoading();
    // Sums of the decoded codes, which are what removals and splits subtract.
    this.codec.decode(code, scale, this.decoded);
    let page: number;
    if (this.pages.pageCount === 0) {
      page = this.newPage();
    } else {
      this.place(this.router, this.routed(this.decoded), this.nearest);
      page = this.nearest.sortBestFirst() > 0 ? this.nearest.slotAt(0) : 0;
    }
    this.pages.add(slot, page, code, scale);
    const squared = this.squaredNorm(this.decoded);
    this.sums.joined(page, this.decoded, this.pages.sizeOf(page), squared);
    this.lengths?.add(this.lengthOf(this.decoded, squared));
    this.setCentroid(page);
    if (this.pages.sizeOf(page) > this.options.maxPage) this.reassignAfterSplit(page, this.split(page));
  }

  /**
   * Stores a code in the page a checkpoint recorded for it, as opening does: no routing, sums,
   * splits or merges until settle(), which every load() must be followed by before anything else.
   */
  load(slot: number, page: number, code: Uint8Array, scale: number): void {
    if (!(Number.isInteger(page) && page >= 0)) throw new RangeError(`page must be a non-negative integer, got ${page}`);
    this.expectLoad(0);
    this.staging!.put(slot, page, code, scale);
  }

  /** Loading is about to put about `records` codes (the checkpoint's count): room for them at once. */
  expectLoad(records: number): void {
    if (this.staging !== undefined) return;
    if (this.pages.size > 0) throw new Error('load() fills empty page clusters only');
    this.staging = new LoadStaging(this.codec.codeBytes(this.dim), records);
  }

  /**
   * Ends loading: pages left empty (their members deleted since the checkpoint) go, each centroid is
   * made from its members' codes, and pages past `maxPage` or under `minPage` split or merge as
   * after an add or a removal. Does nothing when nothing was loaded.
   */
  settle(): void {
    const steps = this.settling();
    while (steps.next().done !== true);
  }

  /**
   * settle() in steps: the codes put in their pages, then a page summed at each step after (about a
   * millisecond a page of 130 at 512-d), for a caller that lets the event loop turn between steps
   * while nothing else sees these pages (loadPlanInSteps: summing 154 pages of 20,000 512-d codes was
   * a stall of 156 ms). Until it is done, nothing else may be asked of these pages; a caller that
   * stops early ends it with return(), which gives its scratch memory back.
   */
  *settling(): Generator<void, void, void> {
    const staging = this.staging;
    if (staging === undefined) return;
    this.staging = undefined;
    this.layoutChanges++;
    // Each page allocated once, at the room its records need, in page order.
    const counts: number[] = [];
    for (let slot = 0; slot < staging.slots; slot++) {
      const page = staging.pageOf(slot);
      if (page >= 0) counts[page] = (counts[page] ?? 0) + 1;
    }
    this.router.reserve(counts.length);
    for (let p = 0; p < counts.length; p++) this.newPage(counts[p] ?? 0);
    if (this.pages.fastScan) this.addByPage(staging, counts);
    else {
      const codes = staging.codeBuffer;
      for (let slot = 0; slot < staging.slots; slot++) {
        const page = staging.pageOf(slot);
        if (page >= 0) this.pages.addLoaded(slot, page, codes, staging.scaleOf(slot), staging.codeAt(slot));
      }
      for (let p = 0; p < this.pages.pageCount; p++) this.pages.writeNorms(p);
    }
    for (let p = this.pages.pageCount - 1; p >= 0; p--) if (this.pages.sizeOf(p) === 0) this.dropEmpty(p);
    yield;
    // Every page summed by the page-sum kernels, each member decoded once into a block of linear
    // memory the size of the largest page, given back after.
    let largest = 1;
    for (let p = 0; p < this.pages.pageCount; p++) largest = Math.max(largest, this.pages.sizeOf(p));
    const mem = kernels().memory;
    const members = mem.allocScratch(largest * this.dim * 4);
    const scratch = mem.allocScratch(4 * (largest + this.dim));
    const squares = new Float64Array(this.lengths === undefined ? 0 : largest);
    try {
      for (let p = 0; p < this.pages.pageCount; p++) {
        const size = this.pages.sizeOf(p);
        // A view taken anew for each page: fitting a page or setting a centroid may grow the memory.
        const decoded = mem.f32().subarray(members >> 2, (members >> 2) + size * this.dim);
        this.pages.decodePage(p, decoded);
        // Each member's squared norm once, for the lengths and a dot store's sums alike (as addCode() and remove() take it).
        if (this.lengths !== undefined) {
          for (let r = 0; r < size; r++) {
            const row = decoded.subarray(r * this.dim, (r + 1) * this.dim);
            squares[r] = dot(row, row);
            this.lengths.add(this.lengthOf(row, squares[r]!));
          }
        }
        this.sums.recomputeInMemory(p, members, size, scratch, this.lengths === undefined ? undefined : squares);
        this.pages.fit(p);
        this.setCentroid(p);
        // The centroid is set; the sums wait for a change of the page's members (PageSums.release).
        this.sums.release(p);
        yield;
      }
    } finally {
      mem.freeScratch(scratch, 4 * (largest + this.dim));
      mem.freeScratch(members, largest * this.dim * 4);
    }
    this.enforceSizes();
  }

  /**
   * Puts the loaded codes in their pages a page at a time, each page's slots in increasing order (the
   * rows a load in slot order gives). In the fast-scan layout a row's nibbles span every 16-byte step
   * of its block: loaded in slot order, where each row goes to another page, each row written missed
   * the CPU's caches again (GloVe 331k rq2: 0.6–0.7x the time to open). A row of the other layout is
   * contiguous, and its codes read in slot order cost less than these reads out of order (int8: 1.1x).
   */
  private addByPage(staging: LoadStaging, counts: readonly (number | undefined)[]): void {
    const starts = new Int32Array(counts.length + 1);
    for (let p = 0; p < counts.length; p++) starts[p + 1] = starts[p]! + (counts[p] ?? 0);
    const bySlot = new Int32Array(starts[counts.length]!);
    const next = starts.slice(0, counts.length);
    for (let slot = 0; slot < staging.slots; slot++) {
      const page = staging.pageOf(slot);
      if (page >= 0) bySlot[next[page]!++] = slot;
    }
    const codes = staging.codeBuffer;
    for (let p = 0; p < counts.length; p++) {
      for (let i = starts[p]!; i < starts[p + 1]!; i++) {
        const slot = bySlot[i]!;
        this.pages.add(slot, p, codes, staging.scaleOf(slot), staging.codeAt(slot));
      }
    }
  }

  /** The page holding the vector of `slot`. */
  pageOf(slot: number): number {
    return this.pages.pageOf(slot);
  }

  /** The code of `slot` as a view, and its scale (PageStore.codeView). */
  codeView(slot: number): { code: Uint8Array; scale: number } {
    return this.pages.codeView(slot);
  }

  /** Vectors in `page`. */
  sizeOf(page: number): number {
    return this.pages.sizeOf(page);
  }

  /** The query as the scan kernels see it (QueryScratch.kernelForm). */
  kernelForm(query: ScanQuery, into?: Int8Array): KernelForm {
    return this.pages.kernelForm(query, into);
  }

  kernelQueryError(query: ScanQuery): number {
    return this.pages.kernelQueryError(query);
  }

  /** PageStore.tableError. */
  tableError(query: ScanQuery): number {
    return this.pages.tableError(query);
  }

  /** PageStore.rqTermsOf. */
  rqTermsOf(slots: Int32Array, count: number, out: Float64Array): void {
    this.pages.rqTermsOf(slots, count, out);
  }

  /** The scores a scan gives the vectors of `slots[0..count)` (PageStore.scoreSlots). */
  scoreSlots(query: ScanQuery, slots: Int32Array, count: number, out: Float32Array): void {
    this.pages.scoreSlots(query, slots, count, out);
  }

  /** Removes the vector of `slot`; a page left too small hands its vectors to the nearest other pages. */
  remove(slot: number): void {
    if (this.staging !== undefined) {
      this.staging.remove(slot);
      return;
    }
    const page = this.pages.pageOf(slot);
    this.decodeSlot(slot);
    this.pages.remove(slot);
    const squared = this.squaredNorm(this.decoded);
    this.sums.left(page, this.decoded, this.pages.sizeOf(page), squared);
    this.lengths?.remove(this.lengthOf(this.decoded, squared));
    const size = this.pages.sizeOf(page);
    // The last vector gone: no page, as loading leaves an empty store (the running store had kept
    // one empty page, and reported pages and nprobe 1 where the same store reopened said 0).
    if (size === 0 && this.pages.pageCount === 1) this.dropEmpty(page);
    else if (size < this.options.minPage && this.pages.pageCount > 1) this.dissolve(page);
    else if (size > 0) this.setCentroid(page);
  }

  /** The vector of slot `from` is now slot `to` (SlotTable.removeSwap moved it). */
  renumber(from: number, to: number): void {
    if (this.staging !== undefined) this.staging.renumber(from, to);
    else this.pages.renumber(from, to);
  }

  /**
   * Scans the `nprobe` pages nearest `query` (all of them when `nprobe` is at least their count),
   * keeping the best in `top` as the page store's scan does; then, while `top` holds fewer than its
   * capacity, or than `wanted` when that is less (a selective `accept`, or pages too small), the
   * next nearest pages one by one, so a search finds as many results as the store holds that
   * `accept` takes.
   *
   * With `pool`, the scan of the first pages collects it (PageStore.scan), and its scope is those
   * pages (scopePages()) in this layout. A search that then needs more pages scans them after the
   * pool is collected; VectorIndex.scopeOf() tells a later search that would do so.
   */
  search(query: ScanQuery, top: TopK, nprobe: number, accept?: (slot: number) => boolean, pool?: ScorePool, wanted = top.capacity): void {
    this.notLoading();
    const total = this.pages.pageCount;
    const count = this.probeCount(nprobe);
    if (count === 0) return;
    const order = count === total ? this.allPages() : this.route(query, count);
    this.pages.scan(query, order, count, top, accept, pool);
    // Collected from these pages alone, before any more are scanned: it vouches for them whatever comes next.
    if (pool !== undefined) pool.scope = { pages: sortedCopy(order, count), layout: this.layoutChanges };
    const needed = Math.min(top.capacity, wanted);
    if (top.size >= needed || count === total) return;
    const all = this.nearestPages(this.routed(query.vector), total, query.offset ?? 0);
    for (let i = count; i < total && top.size < needed; i++) this.pages.scan(query, all.subarray(i, i + 1), 1, top, accept);
  }

  /**
   * Changes of which page holds which vector other than adds and removals: a vector moved (a split,
   * its reassignments, a merge, a re-clustering), a page renumbered, loading. A pool's scope
   * (PoolScope) names pages by number in the layout of one count.
   */
  get layoutEpoch(): number {
    return this.layoutChanges;
  }

  /**
   * The pages search() scans first for `query` at `nprobe`, ascending, while the layout is
   * `layoutEpoch` (a new array): what a pool collected now would be scoped to.
   */
  scopePages(query: ScanQuery, nprobe: number): Int32Array {
    this.notLoading();
    const count = this.probeCount(nprobe);
    return sortedCopy(count === this.pages.pageCount ? this.allPages() : this.route(query, count), count);
  }

  /**
   * Every page, nearest `query` first, with the router's score of each (higher is nearer), in new
   * arrays: the order search() probes them in, for measuring probing rules (bench/probe-rules.ts).
   */
  rankedPages(query: ScanQuery): { pages: Int32Array; scores: Float32Array } {
    this.notLoading();
    const total = this.pages.pageCount;
    const pages = this.nearestPages(this.routed(query.vector), total, query.offset ?? 0).slice(0, total);
    const scores = new Float32Array(total);
    for (let i = 0; i < total; i++) scores[i] = this.probeScores[i]!;
    return { pages, scores };
  }

  /** The pages a search asked for `nprobe` probes first: at least one, at most every page. */
  private probeCount(nprobe: number): number {
    return Math.min(Math.max(1, Math.floor(nprobe)), this.pages.pageCount);
  }

  /** Scores every vector of `pages[0..count)` into `top` (PageStore.scan). */
  scanPages(query: ScanQuery, pages: Int32Array, count: number, top: TopK): void {
    this.notLoading();
    for (let i = 0; i < count; i++) if (!(pages[i]! >= 0 && pages[i]! < this.pages.pageCount)) throw new RangeError(`no page ${pages[i]}`);
    this.pages.scan(query, pages, count, top);
  }

  /** Vectors the pages of `pages` hold together. */
  sizeOfPages(pages: ArrayLike<number>): number {
    let n = 0;
    for (let i = 0; i < pages.length; i++) n += this.pages.sizeOf(pages[i]!);
    return n;
  }

  /**
   * The `count` pages nearest `query`, nearest first (a reused buffer, valid until the next call).
   * The same query asked again at the same count with no centroid changed since is not routed
   * again: the cache's check of a near query's pages, then its search, route once.
   */
  private route(query: ScanQuery, count: number): Int32Array {
    const offset = query.offset ?? 0;
    const last = this.lastRoute;
    if (last !== undefined && last.count === count && last.offset === offset && last.version === this.router.version && sameBits(last.vector, query.vector)) return this.routeOrder;
    const order = this.nearestPages(this.routed(query.vector), count, offset);
    if (this.routeOrder.length < count) this.routeOrder = new Int32Array(Math.max(count, 2 * this.routeOrder.length));
    this.routeOrder.set(order.subarray(0, count));
    const vector = last?.vector.length === query.vector.length ? last.vector : new Float32Array(query.vector.length);
    vector.set(query.vector);
    this.lastRoute = { vector, offset, count, version: this.router.version };
    return this.routeOrder;
  }

  /** The `n` pages whose centroids are nearest `routed`, nearest first (a reused buffer). */
  private nearestPages(routed: Float32Array, n: number, offset: number): Int32Array {
    if (this.probeOrder.length < n) this.probeOrder = new Int32Array(Math.max(n, 2 * this.probeOrder.length));
    if (this.probeScores.length < n) this.probeScores = new Float64Array(this.probeOrder.length);
    this.router.nearestOrder(routed, n, this.probeOrder, offset, this.probeScores);
    return this.probeOrder;
  }

  /** 0 .. pageCount − 1 (a reused buffer). */
  private allPages(): Int32Array {
    const total = this.pages.pageCount;
    if (this.probeOrder.length < total) this.probeOrder = new Int32Array(Math.max(total, 2 * this.probeOrder.length));
    for (let p = 0; p < total; p++) this.probeOrder[p] = p;
    return this.probeOrder;
  }

  /**
   * Re-clusters every vector, as compaction does (incremental splits only ever see one page's
   * members): two-level k-means, so the cost grows like n·√pages, not n·pages (a flat k-means over
   * 331k x 100-d into 2,527 pages took 237 s; this, seconds). First √pages coarse centroids from
   * k-means over a sample (every vector when there are few), every vector assigned to the nearest;
   * then each coarse group is clustered on its own into its share of the pages (k-means over its
   * members). Then pages past `maxPage` split and pages under `minPage` dissolve, as after inserts
   * and removals, and every page gets the room its vectors need. Only one group's vectors are
   * decoded at a time. Seeded: the same pages in, the same pages out.
   */
  recluster(iterations = 10): void {
    this.notLoading();
    const count = this.pages.pageCount;
    if (count < 2) return;
    const n = this.pages.size;
    const slots = new Int32Array(n);
    for (let p = 0, at = 0; p < count; p++) {
      const members = this.pages.slotsOf(p);
      slots.set(members, at);
      at += members.length;
    }
    // The same vectors in the same order whatever pages and rows they are in now.
    this.options.sortSlots(slots);
    const coarse = Math.max(1, Math.round(Math.sqrt(count)));
    const sampleSize = Math.min(n, coarse * RECLUSTER_SAMPLE_PER_CENTROID);
    const sample = this.decodeAll(Int32Array.from({ length: sampleSize }, (_, j) => slots[Math.floor((j * n) / sampleSize)]!));
    const { centroids } = kmeans(sample, this.dim, { k: Math.min(coarse, sampleSize), seed: this.options.seed, iterations, metric: this.clustering });
    const coarseRouter = new CentroidRouter(this.dim, this.routing);
    const groups = this.groupsOf(slots, centroids, coarseRouter);
    /** The new pages each coarse group made. */
    const pagesOfGroup: number[][] = groups.map(() => []);
    // New pages are made after the old ones as clusters get their first member; the old ones, emptied, go.
    for (const [g, members] of groups.entries()) {
      if (members.length === 0) continue;
      const points = this.decodeAll(members);
      const k = Math.min(members.length, Math.max(1, Math.round((members.length * count) / n)));
      const assignment = k === 1 ? new Int32Array(members.length) : kmeans(points, this.dim, { k, seed: this.options.seed, iterations, metric: this.clustering }).assignment;
      const pageOf = new Int32Array(k).fill(-1);
      members.forEach((slot, i) => {
        const c = assignment[i]!;
        if (pageOf[c] === -1) {
          pageOf[c] = this.newPage();
          pagesOfGroup[g]!.push(pageOf[c]!);
        }
        this.move(slot, pageOf[c]!, points.subarray(i * this.dim, (i + 1) * this.dim));
      });
    }
    try {
      this.refineAcrossGroups(slots, coarseRouter, pagesOfGroup, RECLUSTER_REFINEMENTS);
    } finally {
      coarseRouter.free();
    }
    // Dropping old page p moves the last page into its number: drop from the back of the old ones
    // while new ones remain behind them, so that each drop renumbers one new page.
    for (let p = count - 1; p >= 0; p--) this.dropEmpty(p);
    for (let p = 0; p < this.pages.pageCount; p++) {
      this.pages.fit(p);
      this.setCentroid(p);
    }
    // k-means leaves some clusters large and some nearly empty: the rules of inserts and removals
    // apply (a split appends its new page, which the loop reaches in turn).
    this.enforceSizes();
  }

  /** The slots of each coarse centroid's group: every vector of `slots` goes to its nearest of `centroids` (k · dim floats). */
  private groupsOf(slots: Int32Array, centroids: Float32Array, router: CentroidRouter): number[][] {
    const k = centroids.length / this.dim;
    for (let c = 0; c < k; c++) router.add(this.routed(centroids.subarray(c * this.dim, (c + 1) * this.dim)));
    const groups: number[][] = Array.from({ length: k }, () => []);
    const nearest = new TopK(1);
    for (const slot of slots) {
      this.decodeSlot(slot);
      this.place(router, this.routed(this.decoded), nearest);
      groups[nearest.sortBestFirst() > 0 ? nearest.slotAt(0) : 0]!.push(slot);
    }
    return groups;
  }

  /**
   * Lloyd iterations over the new pages, each vector choosing among the pages of its
   * RECLUSTER_GROUPS nearest coarse groups only (each group's pages in a router of their own), so
   * that a vector near the border of its group can move to the better page next door at a cost of
   * a few groups' pages, not all of them.
   */
  private refineAcrossGroups(slots: Int32Array, coarse: CentroidRouter, pagesOfGroup: readonly number[][], rounds: number): void {
    if (rounds <= 0 || pagesOfGroup.length < 2) return;
    const nearGroups = new TopK(Math.min(RECLUSTER_GROUPS, pagesOfGroup.length));
    const best = new TopK(1);
    const x = new Float32Array(this.dim);
    for (let round = 0; round < rounds; round++) {
      const routers = pagesOfGroup.map((pages) => {
        const r = new CentroidRouter(this.dim, this.routing);
        for (const p of pages) r.add(this.centroidOf(p));
        return r;
      });
      let moved = 0;
      try {
        for (const slot of slots) {
          this.decodeSlot(slot);
          x.set(this.routed(this.decoded));
          this.place(coarse, x, nearGroups);
          const groups = nearGroups.sortBestFirst();
          let to = -1;
          let toScore = -Infinity;
          for (let i = 0; i < groups; i++) {
            const g = nearGroups.slotAt(i);
            const pages = pagesOfGroup[g]!;
            if (pages.length === 0) continue;
            this.place(routers[g]!, x, best);
            if (best.sortBestFirst() > 0 && best.scoreAt(0) > toScore) {
              toScore = best.scoreAt(0);
              to = pages[best.slotAt(0)]!;
            }
          }
          if (to < 0 || to === this.pages.pageOf(slot)) continue;
          this.move(slot, to, this.decoded);
          moved++;
        }
      } finally {
        for (const r of routers) r.free();
      }
      if (moved === 0) break;
    }
  }

  /** Splits every page past `maxPage` and dissolves every page under `minPage` (a split appends its new page, which the loop reaches in turn). */
  private enforceSizes(): void {
    for (let p = 0; p < this.pages.pageCount; p++) while (this.pages.sizeOf(p) > this.options.maxPage) this.split(p);
    for (let p = this.pages.pageCount - 1; p >= 0 && this.pages.pageCount > 1; p--) {
      if (p < this.pages.pageCount && this.pages.sizeOf(p) < this.options.minPage) this.dissolve(p);
    }
  }

  /**
   * The pages nearest the vector `v` (routed), where it belongs: by Euclidean distance when the
   * pages are 'l2'-clustered (CentroidRouter.nearestByDistance: a 'dot' router's own order is for
   * queries), by the router's order on the unit sphere of a cosine index, where the two agree.
   */
  private place(router: CentroidRouter, v: Float32Array, top: TopK): void {
    if (this.clustering === 'l2') router.nearestByDistance(v, top);
    else router.nearest(v, top);
  }

  private notLoading(): void {
    if (this.staging !== undefined) throw new Error('pages are loading: settle() first');
  }

  /** Moves the vector of `slot` (decoded: `v`) to page `to`, its value from one page's sum to the other's, telling the owner. */
  private move(slot: number, to: number, v: Float32Array): void {
    const from = this.pages.pageOf(slot);
    this.pages.moveTo(slot, to);
    const squared = this.squaredNorm(v);
    this.sums.left(from, v, this.pages.sizeOf(from), squared);
    this.sums.joined(to, v, this.pages.sizeOf(to), squared);
    this.layoutChanges++;
    this.moved(slot);
  }

  /** A new page at the end, with room for `rows`, a zero sum and a centroid to be set. */
  private newPage(rows = 0): number {
    const page = this.pages.addPage(rows);
    this.sums.addPage();
    this.router.add(this.centroidScratch.fill(0));
    return page;
  }

  /** The decoded codes of `slots`, one after another. */
  private decodeAll(slots: ArrayLike<number>): Float32Array {
    const points = new Float32Array(slots.length * this.dim);
    for (let i = 0; i < slots.length; i++) {
      this.decodeSlot(slots[i]!);
      points.set(this.decoded, i * this.dim);
    }
    return points;
  }

  /** Drops `page` (empty): the last page takes its number, and each of that page's members is reported moved. */
  private dropEmpty(page: number): void {
    const last = this.pages.removeEmptyPage(page);
    this.router.removeSwap(page);
    this.sums.removeSwap(page);
    if (last === page) return;
    this.layoutChanges++;
    for (const slot of this.pages.slotsOf(page)) this.moved(slot);
  }

  free(): void {
    this.pages.free();
    this.router.free();
  }

  /**
   * Splits `page` by 2-means over its members' decoded codes; the second cluster becomes a new page,
   * whose number it returns. The members are taken in `sortSlots` order and the seed is the
   * options' own: what the page holds decides the split, not the order its rows are in or how many
   * splits came before (neither survives reopening).
   */
  private split(page: number): number {
    const slots = this.pages.slotsOf(page);
    this.options.sortSlots(slots);
    const points = this.decodeAll(slots);
    let { assignment } = kmeans(points, this.dim, { k: 2, seed: this.options.seed, metric: this.clustering });
    let moving = 0;
    for (const a of assignment) if (a === 1) moving++;
    // Members 2-means cannot tell apart (duplicates, near-duplicates) would split off one or two at
    // a time, a page per insert: halves in `sortSlots` order instead, which serve them as well.
    if (Math.min(moving, slots.length - moving) < slots.length / 4) assignment = Int32Array.from(slots, (_, i) => (i < slots.length / 2 ? 0 : 1));
    const other = this.newPage();
    slots.forEach((slot, i) => {
      if (assignment[i] === 1) this.move(slot, other, points.subarray(i * this.dim, (i + 1) * this.dim));
    });
    this.splits++;
    // The page kept the room it outgrew; half of it went.
    this.pages.fit(page);
    this.setCentroid(page);
    this.setCentroid(other);
    return other;
  }

  /**
   * After an insert split `a` into `a` and `b`: each vector of the two and of the pages nearest them
   * goes to the nearest of those pages' centroids (one Lloyd step over a neighbourhood), as
   * SPFresh's reassignment does. A split moves two centroids, so vectors of the pages next door may
   * now be nearer one of them, and a vector of the split page nearer a neighbour; without this,
   * pages made by inserts drift from what k-means makes (measured in `bench/pages.ts`). Then every
   * page past `maxPage` splits, and every page under `minPage` dissolves, without reassignment (no
   * cascade).
   */
  private reassignAfterSplit(a: number, b: number): void {
    const near = new TopK(REASSIGN_NEIGHBOURS + 1);
    const around = new Set<number>([a, b]);
    for (const p of [a, b]) {
      this.place(this.router, this.router.centroid(p), near);
      const count = near.sortBestFirst();
      for (let i = 0; i < count; i++) around.add(near.slotAt(i));
    }
    const pages = [...around].sort((x, y) => x - y);
    // Copies of the centroids the router holds (routing form, current: every change of a page sets its own).
    const centroids = pages.map((p) => this.router.centroid(p));
    // What closenessOfPage() takes off a 'dot' kernel score for each centroid: ‖c‖²/2 (nearestByDistance).
    const offsets = centroids.map((c) => (this.metric === 'dot' ? halfNormSq(c) : 0));
    const split = pages.flatMap((p, i) => (p === a || p === b ? [i] : []));
    const all = pages.map((_, i) => i);
    const plans: { slot: number; to: number }[] = [];
    let best = new Float32Array(0);
    let scores = new Float32Array(0);
    let owner = new Int32Array(0);
    for (const [i, p] of pages.entries()) {
      // A vector of the split pages may belong anywhere around; one of a neighbour only in a split page.
      const choices = p === a || p === b ? all : [i, ...split.filter((j) => j !== i)];
      const n = this.pages.sizeOf(p);
      if (best.length < n) {
        best = new Float32Array(2 * n);
        scores = new Float32Array(2 * n);
        owner = new Int32Array(2 * n);
      }
      owner.fill(i, 0, n);
      best.fill(-Infinity, 0, n);
      for (const j of choices) {
        this.closenessOfPage(p, centroids[j]!, offsets[j]!, scores);
        for (let r = 0; r < n; r++) {
          // Strictly better: a tie keeps the vector where it is (its own page is first in `choices`).
          if (scores[r]! > best[r]!) {
            best[r] = scores[r]!;
            owner[r] = j;
          }
        }
      }
      const slots = this.pages.slotsOf(p);
      for (let r = 0; r < n; r++) if (owner[r] !== i) plans.push({ slot: slots[r]!, to: pages[owner[r]!]! });
    }
    // Moved after every page was scored, against the centroids as the split left them (one Lloyd step).
    const touched = new Set<number>();
    for (const { slot, to } of plans) {
      touched.add(this.pages.pageOf(slot)).add(to);
      this.decodeSlot(slot);
      this.move(slot, to, this.decoded);
    }
    for (const p of touched) this.setCentroid(p);
    // Over every page, not the touched ones alone: a touched page that splits more than once hands
    // the excess to a page it appends, which must split in turn, and a page that dissolves takes the
    // last page's number. (Vectors near the origin among much larger ones in an 'l2' store can all
    // go to one page here: 128 into a page of 16.)
    this.enforceSizes();
  }

  /**
   * How close each vector of `page` is to centroid `c` (routing form), higher closer, into `out` in
   * row order, by the scan's own kernel over the page's codes (one call), less `offset`: the dot
   * product with a unit centroid on the unit sphere (offset 0), −‖v − c‖² for 'l2' (0), and for a
   * 'dot' index ⟨v, c⟩ − ‖c‖²/2, which orders centroids as the distance does
   * (CentroidRouter.nearestByDistance).
   */
  private closenessOfPage(page: number, c: Float32Array, offset: number, out: Float32Array): void {
    this.pages.scorePage({ vector: c, metric: this.metric, int8Query: false }, page, out);
    if (offset === 0) return;
    const n = this.pages.sizeOf(page);
    for (let r = 0; r < n; r++) out[r] = out[r]! - offset;
  }

  /** Moves every vector of `page` to its nearest other page, then drops the page. */
  private dissolve(page: number): void {
    const slots = this.pages.slotsOf(page);
    const near = new TopK(2);
    const receivers = new Set<number>();
    for (const slot of slots) {
      this.decodeSlot(slot);
      this.place(this.router, this.routed(this.decoded), near);
      const count = near.sortBestFirst();
      // The nearest page other than this one (the router still has its centroid).
      let to = -1;
      for (let i = 0; i < count && to < 0; i++) if (near.slotAt(i) !== page) to = near.slotAt(i);
      if (to < 0) throw new Error(`no page to take the vectors of page ${page}`);
      this.move(slot, to, this.decoded);
      receivers.add(to);
    }
    for (const p of receivers) this.setCentroid(p);
    const moved = this.pages.pageCount - 1;
    this.dropEmpty(page);
    // A page that took more than it had room for splits, as after an add (the last page took the
    // dissolved one's number), in page order: splits number new pages in the order they happen.
    for (const p of [...receivers].sort((x, y) => x - y)) {
      const now = p === moved ? page : p;
      if (this.pages.sizeOf(now) > this.options.maxPage) this.split(now);
    }
  }

  private decodeSlot(slot: number): void {
    // Decoded where the code lies: no copy per vector (re-clustering and opening decode every one).
    this.pages.decode(slot, this.decoded);
  }

  /** The routing form of a vector: unit length for cosine, as itself otherwise. */
  private routed(v: Float32Array): Float32Array {
    if (this.metric !== 'cosine') return v;
    let n = 0;
    for (let i = 0; i < this.dim; i++) n += v[i]! * v[i]!;
    const out = this.centroidScratch;
    const s = n > 0 ? 1 / Math.sqrt(n) : 0;
    for (let i = 0; i < this.dim; i++) out[i] = v[i]! * s;
    return out;
  }

  /** Sets the router's centroid of `page` from its members, with their spread where the router widens pages by it. */
  private setCentroid(page: number): void {
    const centroid = this.centroidOf(page);
    this.router.set(page, centroid, this.widens ? this.spreadOf(page, centroid) : 0);
  }

  /**
   * The root mean square distance of `page`'s members from their mean `centroid`, √(E‖x‖² − ‖c‖²)
   * (0 where rounding takes it below 0): from the exact sums, so a function of the members alone.
   */
  private spreadOf(page: number, centroid: Float32Array): number {
    return Math.sqrt(Math.max(0, this.sums.meanSquaredNorm(page, this.pages.sizeOf(page)) - dot(centroid, centroid)));
  }

  /** The centroid of `page` in routing form (in a scratch array). */
  private centroidOf(page: number): Float32Array {
    const out = this.centroidScratch;
    this.sums.mean(page, this.pages.sizeOf(page), out);
    return this.routed(out);
  }
}
