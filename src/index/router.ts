import { kernels, ROUTE_PLAIN, ROUTE_SPHERE, ROUTE_WIDEN, type ScanFn } from '../kernels/index.js';
import { BestIndices } from '../scan/best-indices.js';
import { paddedDim } from '../scan/code-blocks.js';
import { TopK } from '../scan/topk.js';
import { dot } from '../vector.js';

/**
 * nearestOrder() picks its pages from all the scores at once (BestIndices) when it asks for at
 * least one page in this many, and through a TopK when fewer: a TopK turns most pages away with one
 * comparison each, where BestIndices makes a few passes over all of them. Scratch probes on GloVe
 * centroids (300 queries, the two ways interleaved), BestIndices' time against the TopK's: 0.61–0.70
 * for 48 to 81 of 256 and 718 pages, 0.76 for 147 of 2,388, 0.80 for 192 of 4,096, 0.99 for 384 of
 * 16,384; but 1.04 for 64 of 2,388, 1.14 for 64 of 4,096, 1.32 for 16 of 2,388 and 4,096. A
 * search's default, 3·√pages, asks for more than one in 32 below about 9,000 pages (6·√pages, where the
 * lengths of the vectors spread, below about 36,000).
 */
const BUCKETED_SHARE = 32;

/**
 * A widening router adds to a page's score `‖q‖ · SPREAD_Z · σ / √dim`, σ the root mean square
 * distance of its members from their mean (PAGES.md, "Search"): `σ / √dim` is how far they spread
 * along any one direction, were they spread alike in all, and the best of the ~137 draws a page
 * holds lies about √(2 ln 137) ≈ 3.1 such spreads above the mean. Scratch probes of the share of
 * the exact top 10 in the pages a dot store's default search takes (100k GloVe vectors at their
 * own norms, 730 pages, 82 taken; the same words at norms falling with frequency rank, 760, 83; the
 * 50k sentence set, 364, 58): 0.843, 0.272, 0.981 by the mean alone; 0.917, 0.976, 0.988 at 3
 * spreads; the earlier widening by `½ · max(0, N − ‖c‖)`, N the longest member, 0.758, 0.994, 0.988.
 */
const SPREAD_Z = 3;

/** Centroids the router has room for before it first grows (by a quarter from there). */
const FIRST_CAPACITY = 64;

/** ‖c‖²/2, in float64: what CentroidRouter.nearestByDistance() takes off the dot product with `c`. */
export function halfNormSq(c: Float32Array): number {
  let sq = 0;
  for (let i = 0; i < c.length; i++) sq += c[i]! * c[i]!;
  return sq / 2;
}

/**
 * Where a cosine store's centroids sit when its stored space is a model's (PCA or the rq rotation):
 * a stored vector is `W (x − μ)` for a unit `x`, a centroid `c'` the mean of some, so the centroid
 * in the input space is `c = μ + Wᵀ c'`. Routing a query on the unit sphere ranks by
 * `⟨q, c⟩ / ‖c‖`, the cosine to the centroid's direction, as a store without a model routes by unit
 * centroids (PAGES.md). W is an isometry times a matrix of orthonormal rows (PCA, a rotation, or
 * both), so `‖Wᵀ c'‖` is the length of `c'`'s part in W's range, and
 * `‖c‖² = ‖μ‖² + 2⟨W μ, c'⟩ + ‖c'‖² − Σ ⟨v, c'⟩²` over an orthonormal basis `v` of what W's range
 * leaves out: nothing for PCA or a rotation onto as many dimensions as it takes, the padding for a
 * rotation padded to more (rq at a dimension not a multiple of 128), where a centroid of decoded
 * codes leaves W's range (their quantization noise fills every dimension) and `‖c'‖` alone
 * overstated `‖Wᵀ c'‖` by 0.5% to 22% (found by a hostile test).
 */
export interface RouteSphere {
  /** `W μ`: the mean in the stored space, uncentered (dim floats). */
  readonly center: Float32Array;
  /** `‖μ‖²`, in the input space. */
  readonly centerSq: number;
  /** An orthonormal basis of what W's range leaves out (rangeComplement()), dim floats each, row-major; none when W's range is all of the stored space. */
  readonly complement?: Float32Array;
}

/**
 * The pages nearest a query, for the page-clustered index: every page's centroid in WebAssembly
 * linear memory, scored against the query with one f32 kernel call, the best `n` kept (ties to the
 * lower page): for a search, picked from all the scores at once (nearestOrder(), BestIndices); for
 * placing a vector, through the caller's TopK. Exact, and faster than an HNSW over the centroids at
 * a search's default nprobe at every size measured: up to 16,384 pages at 512-d and 65,536 at 100-d
 * (bench/results/router.md; the HNSW wins only when few pages of many thousands are asked for).
 *
 * Metrics are the kernel's: 'dot' (for cosine, the caller gives unit centroids and queries, as
 * spherical k-means makes them, or a RouteSphere when the stored space is a model's) or 'l2'.
 * Pages are numbered 0..size-1; removeSwap() moves the last page's centroid into the hole, as the
 * index renumbers its pages. Nothing is allocated per query: the caller passes the TopK or the order it reuses.
 */
export class CentroidRouter {
  private readonly kernels = kernels();
  private readonly mem = this.kernels.memory;
  private readonly scan: ScanFn;
  private readonly padded: number;
  private capacity = 0;
  private changes = 0;
  private count = 0;
  /** `capacity` padded centroids, one after another; then the query; then one score per centroid. */
  private base = 0;
  private readonly query: number;
  private scores = 0;
  /** Half the squared norm of each centroid ('dot' routers): what nearestByDistance() subtracts. */
  private halfNormSq = new Float64Array(0);
  /**
   * Per page, float64 in linear memory (`capacity` of them), what route_scores reads beside the
   * kernel's score: with `widens`, SPREAD_Z / √dim of its members' spread (add(), set()), which a
   * query's score of the page adds `‖q‖` times; with a sphere, 1 / ‖c‖ of its centroid in the input
   * space (0 for a centroid at the origin); nothing otherwise.
   */
  private coefs = 0;
  private readonly mode: number;
  /** The norm of the query scoreAll() last scored, for the widths. */
  private queryNorm = 0;
  /** route_scores' least and greatest score (two float64). */
  private readonly bounds: number;
  /** What picks a search's pages from every page's score: BestIndices, or a TopK kept while its capacity serves. */
  private readonly best = new BestIndices();
  private orderTop: TopK | undefined;
  private freed = false;

  constructor(
    readonly dim: number,
    readonly metric: 'dot' | 'l2',
    private readonly sphere?: RouteSphere,
    /**
     * Rank pages by `⟨q, c⟩ + ‖q‖ · SPREAD_Z · σ / √dim` instead of `⟨q, c⟩` ('dot' without a sphere:
     * a dot store's pages, PAGES.md "Search"), σ each page's spread.
     */
    private readonly widens = false,
  ) {
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim must be a positive integer, got ${dim}`);
    if (sphere !== undefined && (metric !== 'dot' || sphere.center.length !== dim)) throw new RangeError(`a sphere routes a 'dot' router by a center of ${dim} floats`);
    if (sphere?.complement !== undefined && sphere.complement.length % dim !== 0) throw new RangeError(`a sphere's complement needs rows of ${dim} floats`);
    if (widens && (metric !== 'dot' || sphere !== undefined)) throw new RangeError('only a dot router without a sphere widens its pages');
    this.padded = paddedDim(dim);
    this.scan = this.kernels.scanFunction('f32', metric);
    this.mode = sphere !== undefined ? ROUTE_SPHERE : widens ? ROUTE_WIDEN : ROUTE_PLAIN;
    this.bounds = this.mem.alloc(16);
    this.query = this.mem.alloc(this.padded * 4);
    this.mem.f32().fill(0, this.query >> 2, (this.query >> 2) + this.padded);
  }

  /** Changes of any centroid so far: a route computed at one count holds while it stays. */
  get version(): number {
    return this.changes;
  }

  /** Pages routed to. */
  get size(): number {
    return this.count;
  }

  /**
   * Bytes held: centroids (capacity), their scores, half squared norms, inverse norms or widths, the
   * query, what picks a search's pages (BestIndices), and the sphere's center and complement (each
   * page index is given its own).
   */
  get bytes(): number {
    const sphere = this.sphere === undefined ? 0 : (this.sphere.center.length + (this.sphere.complement?.length ?? 0)) * 4;
    return this.capacity * (this.padded * 4 + 4 + 8 + (this.mode === ROUTE_PLAIN ? 0 : 8)) + this.padded * 4 + 16 + this.best.bytes + sphere;
  }

  /**
   * Room for `capacity` pages at once, when the count is known (loading a checkpoint): growing a
   * quarter at a time leaves each smaller array behind in linear memory's free lists, about four
   * times the centroids' own size, resident (2.6 MB at 368 pages of 512-d).
   */
  reserve(capacity: number): void {
    if (capacity > this.capacity) this.grow(capacity);
  }

  /**
   * Adds a page with `centroid` (dim floats) whose members spread from it by `spread`, the root mean
   * square distance (read by a router that widens; 0, the default, adds nothing); returns its number,
   * `size` before the call.
   */
  add(centroid: Float32Array, spread = 0): number {
    this.check(centroid);
    // A quarter more each time: the centroids are most of a page index's own memory beside its codes.
    if (this.count === this.capacity) this.grow(Math.max(FIRST_CAPACITY, Math.ceil(this.capacity * 1.25)));
    const page = this.count++;
    this.write(page, centroid, spread);
    return page;
  }

  /** Replaces the centroid of `page` (centroids follow their members), and its members' spread (as add()). */
  set(page: number, centroid: Float32Array, spread = 0): void {
    this.checkPage(page);
    this.check(centroid);
    this.write(page, centroid, spread);
  }

  /** A copy of the centroid of `page`. */
  centroid(page: number): Float32Array {
    this.checkPage(page);
    const at = (this.base >> 2) + page * this.padded;
    return this.mem.f32().slice(at, at + this.dim);
  }

  /** With a sphere, the 1/‖c‖ `page` is ranked by (RouteSphere; 0 for a centroid at the origin); undefined without one. */
  inverseNorm(page: number): number | undefined {
    this.checkPage(page);
    return this.mode === ROUTE_SPHERE ? this.mem.f64()[(this.coefs >> 3) + page]! : undefined;
  }

  /** Removes `page`; the last page, if another, takes its number. */
  removeSwap(page: number): void {
    this.checkPage(page);
    this.changes++;
    const last = --this.count;
    if (page === last) return;
    const f32 = this.mem.f32();
    const from = (this.base >> 2) + last * this.padded;
    f32.copyWithin((this.base >> 2) + page * this.padded, from, from + this.padded);
    this.halfNormSq[page] = this.halfNormSq[last]!;
    if (this.mode !== ROUTE_PLAIN) {
      const coefs = this.mem.f64();
      coefs[(this.coefs >> 3) + page] = coefs[(this.coefs >> 3) + last]!;
    }
  }

  /**
   * The `top.capacity` pages nearest `query` (dim floats), by kernel score (higher is closer; for
   * 'l2' the negated squared distance), left in `top`, which is cleared first. With a sphere, by
   * `(offset + ⟨query, c'⟩) / ‖c‖`, where `offset` is `⟨q, μ⟩` for the input query `q` whose stored
   * form is `query` (VectorSpace.scanQueryOf): the cosine of `q` to each centroid.
   */
  nearest(query: Float32Array, top: TopK, offset = 0): void {
    this.rank(query, top, false, offset);
  }

  /**
   * nearest()'s pages in its order, nearest first, into `order` (and their scores into `scores`,
   * when given): the same pages in the same order. Returns how many: min(count, size). Where a
   * search asks for at least one page in BUCKETED_SHARE, they are picked from every page's score
   * at once (BestIndices), which costs a few passes over the scores; where it asks for fewer, a
   * TopK turns most pages away with one comparison each, and is faster (the two measured below).
   */
  nearestOrder(query: Float32Array, count: number, order: Int32Array, offset = 0, scores?: Float64Array): number {
    this.scoreAll(query);
    const n = this.count;
    const m = Math.min(Math.max(0, Math.floor(count)), n);
    if (this.orderTop?.capacity !== m) this.orderTop = new TopK(m);
    const top = this.orderTop;
    if (m * BUCKETED_SHARE >= n) {
      // Every page's score and their least and greatest by route_scores, straight into what
      // BestIndices picks from: in JavaScript this pass and BestIndices' first round took longer
      // than the f32 kernel's scores of 2,825 centroids of 100-d (50–75 µs against 33–36).
      const at = this.best.scoresPointer(n);
      this.kernels.routeScores(this.scores, n, this.mode, offset, this.queryNorm, this.coefs, at, this.bounds);
      const f64 = this.mem.f64();
      const found = this.best.takeWritten(n, m, f64[this.bounds >> 3]!, f64[(this.bounds >> 3) + 1]!, order, scores);
      if (found >= 0) return found;
    }
    // Few pages asked, or a NaN or infinite score (a query or centroid past float32's range), which
    // has no place in BestIndices' order: a TopK ranks them, as nearest() does.
    this.pushAll(top, false, offset);
    const kept = top.sortBestFirst();
    for (let i = 0; i < kept; i++) {
      order[i] = top.slotAt(i);
      if (scores !== undefined) scores[i] = top.scoreAt(i);
    }
    return kept;
  }

  /**
   * The `top.capacity` pages whose centroids are nearest `vector` in Euclidean distance, scored
   * ⟨vector, c⟩ − ‖c‖²/2 (the same order as −‖vector − c‖²/2, whose ‖vector‖² is the same for every
   * page), whatever the routing metric: where a vector belongs, as the k-means of an 'l2'-clustered
   * index made its pages. A 'dot' router ranks queries by ⟨query, c⟩, which is right for a query
   * (the page's mean score) and wrong for placing a vector: it favours the centroids of large norm,
   * which then take vectors from their neighbours (measured on an rq2 store of GloVe 50k: recall at
   * 64 pages 0.919 with vectors placed by the dot product, 0.950 by distance; int8's, 0.968).
   */
  nearestByDistance(vector: Float32Array, top: TopK): void {
    this.rank(vector, top, this.metric === 'dot');
  }

  /** Scores every centroid against `v` with the kernel, less ‖c‖²/2 when `byDistance`, the best into `top` (cleared first). */
  private rank(v: Float32Array, top: TopK, byDistance: boolean, offset = 0): void {
    this.scoreAll(v);
    this.pushAll(top, byDistance, offset);
  }

  /** Every page's score (scoreAll()'s), less ‖c‖²/2 when `byDistance`, into `top` (cleared first). */
  private pushAll(top: TopK, byDistance: boolean, offset: number): void {
    top.clear();
    const f32 = this.mem.f32();
    const coefs = this.mem.f64();
    const at = this.scores >> 2;
    for (let page = 0; page < this.count; page++) {
      const score = byDistance ? f32[at + page]! - this.halfNormSq[page]! : this.queryScore(f32, at, page, offset, coefs);
      if (top.admits(score)) top.push(score, page);
    }
  }

  /**
   * A query's score of `page` from the kernel's at `f32[at + page]`: with a sphere, the cosine
   * `(offset + ⟨q', c'⟩) / ‖c‖` (nearest()), else the kernel's score itself. nearest() and
   * nearestOrder() both rank by it, so they pick the same pages.
   */
  private queryScore(f32: Float32Array, at: number, page: number, offset: number, coefs: Float64Array): number {
    if (this.mode === ROUTE_SPHERE) return (offset + f32[at + page]!) * coefs[(this.coefs >> 3) + page]!;
    return this.mode === ROUTE_WIDEN ? f32[at + page]! + this.queryNorm * coefs[(this.coefs >> 3) + page]! : f32[at + page]!;
  }

  /** The kernel's score of every centroid against `v` (dim floats), at `this.scores`. */
  private scoreAll(v: Float32Array): void {
    if (this.freed) throw new Error('router used after free()');
    if (v.length !== this.dim) throw new RangeError(`query has ${v.length} dimensions, the router ${this.dim}`);
    if (this.count === 0) return;
    if (this.widens) this.queryNorm = Math.sqrt(2 * halfNormSq(v));
    this.mem.f32().set(v, this.query >> 2);
    this.scan(this.query, this.base, this.base, this.count, this.padded, this.scores);
  }

  /** Gives the router's linear memory back; the router is unusable after. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    if (this.capacity > 0) {
      this.mem.free(this.base, this.capacity * this.padded * 4);
      this.mem.free(this.scores, this.capacity * 4);
      if (this.mode !== ROUTE_PLAIN) this.mem.free(this.coefs, this.capacity * 8);
    }
    this.mem.free(this.query, this.padded * 4);
    this.mem.free(this.bounds, 16);
    this.best.free();
  }

  private write(page: number, centroid: Float32Array, spread: number): void {
    this.changes++;
    const f32 = this.mem.f32();
    const at = (this.base >> 2) + page * this.padded;
    f32.set(centroid, at);
    f32.fill(0, at + this.dim, at + this.padded);
    const half = halfNormSq(centroid);
    this.halfNormSq[page] = half;
    // A member x scores ⟨q, c⟩ + ⟨q, x − c⟩: the page's best is its best member's, which the mean
    // does not show and the members' spread along q bounds in likelihood.
    if (this.mode === ROUTE_WIDEN) this.mem.f64()[(this.coefs >> 3) + page] = (SPREAD_Z * spread) / Math.sqrt(this.dim);
    if (this.mode === ROUTE_SPHERE) {
      const sq = this.inputNormSq(centroid, half);
      // Rounding can take a centroid at the origin a little below zero: it ranks as 0, neither near nor far.
      this.mem.f64()[(this.coefs >> 3) + page] = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    }
  }

  /** ‖μ + Wᵀ c'‖² = ‖μ‖² + 2⟨W μ, c'⟩ + ‖c'‖² − Σ ⟨v, c'⟩² (RouteSphere; `half` = ‖c'‖²/2). */
  private inputNormSq(centroid: Float32Array, half: number): number {
    const { center, centerSq, complement } = this.sphere!;
    const cross = dot(center, centroid);
    let outside = 0;
    if (complement !== undefined) {
      for (let at = 0; at < complement.length; at += this.dim) {
        let d = 0;
        for (let i = 0; i < this.dim; i++) d += complement[at + i]! * centroid[i]!;
        outside += d * d;
      }
    }
    return centerSq + 2 * cross + 2 * half - outside;
  }

  private grow(capacity: number): void {
    const base = this.mem.alloc(capacity * this.padded * 4);
    const scores = this.mem.alloc(capacity * 4);
    const coefs = this.mode === ROUTE_PLAIN ? 0 : this.mem.alloc(capacity * 8);
    if (this.capacity > 0) {
      const f32 = this.mem.f32();
      f32.copyWithin(base >> 2, this.base >> 2, (this.base >> 2) + this.count * this.padded);
      this.mem.free(this.base, this.capacity * this.padded * 4);
      this.mem.free(this.scores, this.capacity * 4);
      if (this.mode !== ROUTE_PLAIN) {
        this.mem.f64().copyWithin(coefs >> 3, this.coefs >> 3, (this.coefs >> 3) + this.count);
        this.mem.free(this.coefs, this.capacity * 8);
      }
    }
    this.base = base;
    this.scores = scores;
    this.coefs = coefs;
    this.capacity = capacity;
    const halfNormSq = new Float64Array(capacity);
    halfNormSq.set(this.halfNormSq.subarray(0, this.count));
    this.halfNormSq = halfNormSq;
  }

  private check(centroid: Float32Array): void {
    if (this.freed) throw new Error('router used after free()');
    if (centroid.length !== this.dim) throw new RangeError(`centroid has ${centroid.length} dimensions, the router ${this.dim}`);
  }

  private checkPage(page: number): void {
    if (this.freed) throw new Error('router used after free()');
    if (!(Number.isInteger(page) && page >= 0 && page < this.count)) throw new RangeError(`page ${page} out of range (${this.count} pages)`);
  }
}
