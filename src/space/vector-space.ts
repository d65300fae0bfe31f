import type { KernelMetric } from '../kernels/index.js';
import { dotMean, fitPca, type PcaModel } from '../pca/pca.js';
import { projectorOf, type ModelHead, type Projector } from '../pca/projector.js';
import type { RouteSphere } from '../index/router.js';
import type { ScanQuery } from '../scan/code-blocks.js';
import type { StoreConfig } from '../store/state.js';
import type { Metric } from '../options.js';
import { dot, normalized } from '../vector.js';
import { isRqCodec } from '../codec/codec.js';
import { fitRotation } from './rotation.js';

/**
 * Whether int8 stores quantize the query to int8 as well and scan with the integer kernels: about
 * 3x faster than float-query int8, measured at recall@10 0.997 on wordnet-use512 (README).
 */
const INT8_QUERY = true;

/** Slack for a model's rows being orthonormal only to float32 rounding (about 1e-6 of their squares). */
const PROJECTION_ROUNDING = 1e-5;

/**
 * Whether a store of `config` fits a model on its first `trainSize` vectors: PCA, or the rotation and
 * center of rq codes. Until it has, it keeps float32 vectors and answers exactly; once marked
 * trained, it must hold the model (open and verify check that).
 */
export function fitsModel(config: Pick<StoreConfig, 'pca' | 'codec'>): boolean {
  return config.pca !== null || isRqCodec(config.codec);
}

/** What a store's model is fitted from: its dimension, its PCA (null for none) and its codec. */
export type ModelShape = Pick<StoreConfig, 'dim' | 'pca' | 'codec'>;

/**
 * The model of a store of `shape` fitted on `rows` (stored forms before training: normalized for
 * cosine): PCA, composed with the rotation of rq codes (src/space/rotation.ts) when the codec is
 * one. Plain data, so a worker thread can fit it (src/space/fit-job.ts).
 */
export function fitModel(rows: readonly Float32Array[], shape: ModelShape): PcaModel {
  const pca = shape.pca === null ? undefined : fitPca(rows, shape.dim, shape.pca);
  return isRqCodec(shape.codec) ? fitRotation(rows, shape.dim, pca) : pca!;
}

/** `model` with its projector: what fit() returns, whichever thread fitted the model. */
export function fittedOf(model: PcaModel): Fitted {
  return { model, projector: projectorOf(model) };
}

/**
 * How many standard deviations of a query's score against the part of a stored vector PCA drops
 * the rescoring bound allows (src/search/RESCORING.md, "PCA"): as the rq codes' fine bound.
 */
export const PCA_BOUND_SIGMAS = 3.5;

/** A PCA fitted by VectorSpace.fit(): project with `projector.centered`, then adopt() it or free the projector. */
export interface Fitted {
  readonly model: PcaModel;
  readonly projector: Projector;
}

/** What the scan kernels rank by in a store of `metric` whose stored space is `projected` by a model (PCA) or not. */
export function kernelMetricOf(metric: Metric, projected: boolean): KernelMetric {
  if (metric === 'l2') return 'l2';
  // Projections are not renormalized (that costs recall), so cosine on a PCA store ranks by the dot product.
  return metric === 'cosine' && !projected ? 'cosine' : 'dot';
}

/**
 * The geometry of a store: how a vector is normalized (cosine) and projected (PCA, once fitted)
 * before the codec sees it, how a query is brought into the same space, which kernel metric ranks
 * there. PCA follows the geometry that keeps inner products
 * unbiased: stored vectors are projected centered, queries uncentered (q·x ≈ q·μ + (Wq)·W(x − μ)),
 * and projections are not renormalized; for L2 both are centered.
 */
export class VectorSpace {
  /** The model without its axes, which the projector alone holds (in linear memory). */
  private model: ModelHead | undefined;
  private projector: Projector | undefined;
  /** ‖μ‖ of the model's mean (0 without one), for projectionSlack(). */
  private meanNorm = 0;

  constructor(
    private readonly config: StoreConfig,
    model: PcaModel | undefined,
  ) {
    this.setModel(model);
  }

  /** Whether the space has a model to fit: PCA, or the rotation and center of rq codes. */
  get fits(): boolean {
    return fitsModel(this.config);
  }

  /** Its model is fitted (or it has none to fit). */
  get trained(): boolean {
    return !this.fits || this.model !== undefined;
  }

  /** Whether stored vectors lose a part of the input: PCA is fitted (a rotation alone loses nothing). */
  get reduced(): boolean {
    return this.config.pca !== null && this.model !== undefined;
  }

  /** The model whole, its axes copied out of the projector (persisting a model just trained needs them). */
  get pca(): PcaModel | undefined {
    return this.projector?.model();
  }

  /** Dimensions of the stored space: the PCA output once fitted, else the input dimension. */
  get storedDim(): number {
    return this.model?.outDim ?? this.config.dim;
  }

  /**
   * Bytes of RAM the model holds: its mean, and its axes in the projector's linear memory (PCA with
   * an rq rotation at 512-d: 1 MiB), or a structured rotation's signs and scratch.
   */
  get bytes(): number {
    if (this.model === undefined) return 0;
    return this.model.mean.length * 4 + (this.projector?.bytes ?? 0);
  }

  /** The vector as the index holds it: unit length for cosine, then projected once PCA is fitted. */
  storedForm(vector: Float32Array): Float32Array {
    const v = this.config.metric === 'cosine' ? normalized(vector) : vector;
    return this.projector === undefined ? v : this.projector.centered(v);
  }

  /** What the scan kernels rank by in the stored space. */
  kernelMetric(): KernelMetric {
    return kernelMetricOf(this.config.metric, this.model !== undefined);
  }

  /** The query as the scan takes it, with the constant to add back to its kernel scores (`offset`, with a model). */
  scanQueryOf(query: Float32Array): ScanQuery {
    const q = this.config.metric === 'cosine' ? normalized(query) : query;
    const metric = this.kernelMetric();
    if (this.model === undefined || this.projector === undefined) return { vector: q, metric, int8Query: INT8_QUERY };
    if (this.config.metric === 'l2') return { vector: this.projector.centered(q), metric, int8Query: INT8_QUERY };
    const vector = this.projector.uncentered(q);
    const offset = dotMean(this.model, q);
    // A dot store's query is not unit length: projectionSlack() needs its own norm for the part the projection drops.
    return this.config.metric === 'dot' ? { vector, metric, int8Query: INT8_QUERY, offset, inputNormSq: dot(q, q) } : { vector, metric, int8Query: INT8_QUERY, offset };
  }

  /**
   * How much the part of a stored vector that PCA drops may add to the exact score of `scan` (a
   * query as scanQueryOf() made it) over what its projection scores (src/search/RESCORING.md, "PCA"):
   * undefined when the space drops nothing (no PCA fitted); Infinity where nothing bounds it (an
   * l2 store, or a model fitted before its residual variance was kept). PCA_BOUND_SIGMAS standard
   * deviations of ⟨q⊥, r⟩ over the stored vectors, where q⊥ is the query's part outside the
   * projection (‖q⊥‖² = ‖q‖² − ‖Wq‖²: 1 − ‖Wq‖² for a cosine store, whose queries are unit length;
   * a dot store's query carries ‖q‖², ScanQuery.inputNormSq) and r a vector's: along any direction
   * r varies by at most λ, the largest variance of the dropped axes. Plus what float32 rounding of
   * both projections and of q·μ may add: relative to ‖q‖ times the length of a centered vector,
   * at most 1 + ‖μ‖ for unit vectors; for a dot store `largestStored()` (the largest norm of a
   * stored code, VectorIndex.maxNorm) plus the dropped part's length at PCA_BOUND_SIGMAS of its
   * spread, √((inDim − outDim)·λ), plus ‖μ‖.
   */
  projectionSlack(scan: ScanQuery, largestStored: () => number): number | undefined {
    if (!this.reduced) return undefined;
    const lambda = this.model?.residualVariance;
    const metric = this.config.metric;
    if (metric === 'l2' || lambda === undefined) return Infinity;
    const { inDim, outDim } = this.model!;
    const kept = dot(scan.vector, scan.vector);
    const normSq = metric === 'cosine' ? 1 : scan.inputNormSq;
    if (normSq === undefined || !(normSq < Infinity)) return Infinity;
    // The projection's rows are orthonormal to float32 rounding: ‖Wq‖² may pass ‖q‖² by a little.
    const outside = Math.sqrt(Math.max(0, normSq - kept) + PROJECTION_ROUNDING * normSq);
    // Each projected coordinate is a float32 sum of inDim terms of a centered vector.
    const centered = metric === 'cosine' ? 1 + this.meanNorm : largestStored() + PCA_BOUND_SIGMAS * Math.sqrt((inDim - outDim) * lambda) + this.meanNorm;
    const rounding = (Math.sqrt(outDim) * (inDim / 4 + 8) * 2 ** -21 + PROJECTION_ROUNDING) * centered * Math.sqrt(normSq);
    return PCA_BOUND_SIGMAS * Math.sqrt(lambda) * outside + rounding;
  }

  /**
   * How a page index routes this store's queries on the unit sphere: for a cosine store with a
   * model (whose kernels rank by the dot product of uncentered queries with centered vectors), the
   * mean in the stored space; else undefined (the router ranks by the kernel score). Routing by
   * the dot product with the centroids instead favours the pages whose members are least spread
   * (their means are longest): measured on rq2 over GloVe 50k at the default `nprobe`, 0.947
   * recall@10 that way against 0.968 on the sphere (README, "Rotated codes").
   */
  routeSphere(): RouteSphere | undefined {
    if (this.config.metric !== 'cosine' || this.model === undefined || this.projector === undefined) return undefined;
    const mean = this.model.mean;
    const centerSq = dot(mean, mean);
    const center = this.projector.uncentered(mean);
    // Made once, when pages are made (and on open).
    const complement = this.projector.complement();
    return complement === undefined ? { center, centerSq } : { center, centerSq, complement };
  }

  /**
   * `W μ` for a dot or l2 store with a model, whose stored vectors are `W (x − μ)`: added to one, it
   * gives `W x`, the input vector as the model sees it (PageIndexOptions.inputMean). Undefined
   * without a model, and for cosine stores (their input vectors are of one length).
   */
  inputMean(): Float32Array | undefined {
    if (this.config.metric === 'cosine' || this.model === undefined || this.projector === undefined) return undefined;
    return this.projector.uncentered(this.model.mean);
  }

  /** A vector of the input space from a stored (projected) one: the PCA reconstruction, or itself. */
  reconstruct(stored: Float32Array): Float32Array {
    if (this.projector === undefined) return stored;
    const out = new Float32Array(this.config.dim);
    this.projector.reconstruct(stored, out);
    return out;
  }

  /**
   * Fits PCA on `rows` (stored forms before training: normalized for cosine), composed with the
   * rotation of rq codes (src/space/rotation.ts) when the codec is one, and returns the fitted
   * space's projector, without changing this one: the caller re-encodes with it, then adopts it.
   */
  fit(rows: readonly Float32Array[]): Fitted {
    if (!this.fits) throw new Error('this space has no model to fit');
    return fittedOf(fitModel(rows, this.config));
  }

  /** Takes a fitted model (from fit()) as this space's. */
  adopt(fitted: Fitted): void {
    this.projector?.free();
    this.projector = fitted.projector;
    this.setHead(fitted.projector.head);
  }

  private setModel(model: PcaModel | undefined): void {
    this.projector?.free();
    this.projector = model === undefined ? undefined : projectorOf(model);
    this.setHead(this.projector?.head);
  }

  private setHead(head: ModelHead | undefined): void {
    this.model = head;
    this.meanNorm = head === undefined ? 0 : Math.sqrt(dot(head.mean, head.mean));
  }

  free(): void {
    this.projector?.free();
    this.projector = undefined;
  }
}
