import { kernels, type ScanFn } from '../kernels/index.js';
import { paddedDim } from '../scan/code-blocks.js';
import { TopK } from '../scan/topk.js';

/** Centroids the router has room for before it first grows (by a quarter from there). */
const FIRST_CAPACITY = 64;

/** ‖c‖²/2, in float64: what CentroidRouter.nearestByDistance() takes off the dot product with `c`. */
export function halfNormSq(c: Float32Array): number {
  let sq = 0;
  for (let i = 0; i < c.length; i++) sq += c[i]! * c[i]!;
  return sq / 2;
}

/**
 * The pages nearest a query, for the page-clustered index: every page's centroid in WebAssembly
 * linear memory, scored against the query with one f32 kernel call, the best `n` kept in a heap
 * whose ties go to the lower page. Exact, and faster than an HNSW over the centroids up to about
 * 4,096 pages at 512-d and 16,384 at 100-d (bench/results/router.md).
 *
 * Metrics are the kernel's: 'dot' (for cosine, the caller gives unit centroids and queries, as
 * spherical k-means makes them) or 'l2'. Pages are numbered 0..size-1; removeSwap() moves the last
 * page's centroid into the hole, as the index renumbers its pages. Nothing is allocated per query:
 * the caller passes the heap it reuses.
 */
export class CentroidRouter {
  private readonly kernels = kernels();
  private readonly mem = this.kernels.memory;
  private readonly scan: ScanFn;
  private readonly padded: number;
  private capacity = 0;
  private count = 0;
  /** `capacity` padded centroids, one after another; then the query; then one score per centroid. */
  private base = 0;
  private readonly query: number;
  private scores = 0;
  /** Half the squared norm of each centroid ('dot' routers): what nearestByDistance() subtracts. */
  private halfNormSq = new Float64Array(0);
  private freed = false;

  constructor(
    readonly dim: number,
    readonly metric: 'dot' | 'l2',
  ) {
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim must be a positive integer, got ${dim}`);
    this.padded = paddedDim(dim);
    this.scan = this.kernels.scanFunction('f32', metric);
    this.query = this.mem.alloc(this.padded * 4);
    this.mem.f32().fill(0, this.query >> 2, (this.query >> 2) + this.padded);
  }

  /** Pages routed to. */
  get size(): number {
    return this.count;
  }

  /** Bytes held: centroids (capacity), their scores and half squared norms, and the query. */
  get bytes(): number {
    return this.capacity * (this.padded * 4 + 4 + 8) + this.padded * 4;
  }

  /** Adds a page with `centroid` (dim floats); returns its number, `size` before the call. */
  add(centroid: Float32Array): number {
    this.check(centroid);
    // A quarter more each time: the centroids are most of a page index's own memory beside its codes.
    if (this.count === this.capacity) this.grow(Math.max(FIRST_CAPACITY, Math.ceil(this.capacity * 1.25)));
    const page = this.count++;
    this.write(page, centroid);
    return page;
  }

  /** Replaces the centroid of `page` (centroids follow their members). */
  set(page: number, centroid: Float32Array): void {
    this.checkPage(page);
    this.check(centroid);
    this.write(page, centroid);
  }

  /** A copy of the centroid of `page`. */
  centroid(page: number): Float32Array {
    this.checkPage(page);
    const at = (this.base >> 2) + page * this.padded;
    return this.mem.f32().slice(at, at + this.dim);
  }

  /** Removes `page`; the last page, if another, takes its number. */
  removeSwap(page: number): void {
    this.checkPage(page);
    const last = --this.count;
    if (page === last) return;
    const f32 = this.mem.f32();
    const from = (this.base >> 2) + last * this.padded;
    f32.copyWithin((this.base >> 2) + page * this.padded, from, from + this.padded);
    this.halfNormSq[page] = this.halfNormSq[last]!;
  }

  /**
   * The `top.capacity` pages nearest `query` (dim floats), by kernel score (higher is closer; for
   * 'l2' the negated squared distance), left in `top`, which is cleared first.
   */
  nearest(query: Float32Array, top: TopK): void {
    this.rank(query, top, false);
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
  private rank(v: Float32Array, top: TopK, byDistance: boolean): void {
    if (this.freed) throw new Error('router used after free()');
    if (v.length !== this.dim) throw new RangeError(`query has ${v.length} dimensions, the router ${this.dim}`);
    top.clear();
    if (this.count === 0) return;
    this.mem.f32().set(v, this.query >> 2);
    this.scan(this.query, this.base, this.base, this.count, this.padded, this.scores);
    const f32 = this.mem.f32();
    const at = this.scores >> 2;
    for (let page = 0; page < this.count; page++) {
      const score = byDistance ? f32[at + page]! - this.halfNormSq[page]! : f32[at + page]!;
      if (top.admits(score)) top.push(score, page);
    }
  }

  /** Gives the router's linear memory back; the router is unusable after. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    if (this.capacity > 0) {
      this.mem.free(this.base, this.capacity * this.padded * 4);
      this.mem.free(this.scores, this.capacity * 4);
    }
    this.mem.free(this.query, this.padded * 4);
  }

  private write(page: number, centroid: Float32Array): void {
    const f32 = this.mem.f32();
    const at = (this.base >> 2) + page * this.padded;
    f32.set(centroid, at);
    f32.fill(0, at + this.dim, at + this.padded);
    this.halfNormSq[page] = halfNormSq(centroid);
  }

  private grow(capacity: number): void {
    const base = this.mem.alloc(capacity * this.padded * 4);
    const scores = this.mem.alloc(capacity * 4);
    if (this.capacity > 0) {
      const f32 = this.mem.f32();
      f32.copyWithin(base >> 2, this.base >> 2, (this.base >> 2) + this.count * this.padded);
      this.mem.free(this.base, this.capacity * this.padded * 4);
      this.mem.free(this.scores, this.capacity * 4);
    }
    this.base = base;
    this.scores = scores;
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
