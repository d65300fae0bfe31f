import { MemstoreError } from '../errors.js';
import type { PcaOption } from '../options.js';
import { kernels } from '../kernels/index.js';
import { EXACT_DIM_STEP } from '../kernels/contract.js';
import { symmetricEigen } from './eigen.js';

/**
 * A fitted projection: `components` holds `outDim` rows of `inDim` floats, the principal axes in
 * order of decreasing variance; `mean` is the training sample's mean.
 */
export interface PcaModel {
  readonly inDim: number;
  readonly outDim: number;
  readonly mean: Float32Array;
  readonly components: Float32Array;
  /** Share of the sample's variance the kept axes explain, in [0, 1]. */
  readonly explainedVariance: number;
  /**
   * The sample's variance along the first axis the projection drops (the largest eigenvalue not
   * kept; 0 when every axis is kept): what bounds a query's score against the part of a stored
   * vector outside the projection (src/search/RESCORING.md, "PCA"). Absent in models fitted before
   * it was kept, and in a rotation without PCA, which drops nothing.
   */
  readonly residualVariance?: number;
  /**
   * The signs of a structured rotation (src/space/hadamard-rotation.ts) over outDim dimensions, the
   * input zero-padded to them: the model of an rq store without PCA, whose `components` is then empty.
   */
  readonly hadamard?: Uint8Array;
}

/**
 * Rows of the sample summed together by the exact kernel (covarianceSums): its vectors' length, so a
 * multiple of EXACT_DIM_STEP (the kernel refuses any other); 256 rows of 2,048 dimensions take 2 MiB
 * of linear memory while a fit runs.
 */
const COV_BLOCK = 256;

/** Training vectors PCA needs at least: one has no variance to find axes in. */
export const PCA_MIN_ROWS = 2;

/**
 * The most rows, as a share of the dimensions, that fitPca() fits from their Gram matrix. Since the
 * eigensolver's kernels the covariance's fit is the faster one well below as many rows as
 * dimensions (one fit each, decaying spectra, a scratch script): 300 rows of 512-d keeping 128 axes
 * 255 ms by the Gram matrix against 187, 512 of 2,048-d keeping 512 6.3 s against 4.7 s, 768 of
 * 1,024-d keeping all 9.2 s against 4.3 s; at an eighth or less the Gram matrix's: 128 of 512-d 149
 * ms against 243 (all axes 236 against 670), 256 of 1,024-d all axes 2.2 s against 5.2 s.
 * @internal Exported for the PCA bench, which times the covariance's fit beside the Gram matrix's.
 */
export const DUAL_SHARE = 1 / 8;

/**
 * Fits PCA on `rows` (each of length `inDim`): the eigendecomposition (eigen.ts) of the covariance
 * matrix accumulated in float64, or, with at most DUAL_SHARE as many rows as dimensions, of their
 * Gram matrix (fitDual).
 */
export function fitPca(rows: readonly Float32Array[], inDim: number, option: PcaOption): PcaModel {
  const n = rows.length;
  if (n < PCA_MIN_ROWS) throw new MemstoreError('INVALID_OPTION', `PCA needs at least ${PCA_MIN_ROWS} training vectors`, { field: 'trainSize' });
  if ('dims' in option && option.dims > inDim) {
    throw new MemstoreError('INVALID_OPTION', `pca.dims (${option.dims}) exceeds dim (${inDim})`, { field: 'pca.dims' });
  }
  const mean = new Float64Array(inDim);
  for (const row of rows) for (let i = 0; i < inDim; i++) mean[i]! += row[i]!;
  for (let i = 0; i < inDim; i++) mean[i]! /= n;
  return n <= DUAL_SHARE * inDim ? fitDual(rows, mean, inDim, option) : fitCovariance(rows, mean, inDim, option);
}

/**
 * fitPca() by the eigendecomposition of the sample's covariance (d × d), whatever the number of
 * rows: what fitPca() does with more than DUAL_SHARE as many rows as dimensions. @internal Exported
 * for the tests and the PCA bench, which compare it with the Gram matrix's fit.
 */
export function fitCovariance(rows: readonly Float32Array[], mean: Float64Array, inDim: number, option: PcaOption): PcaModel {
  const n = rows.length;
  const cov = covarianceSums(rows, mean, inDim);
  for (let i = 0; i < cov.length; i++) cov[i]! /= n - 1;
  // Only the axes kept are found (symmetricEigen's keep): their number follows from the eigenvalues.
  const eigen = symmetricEigen(cov, inDim, (values) => axesKept(values, option));
  const eigenvalues = Array.from(eigen.values, (v) => Math.max(0, v));
  const total = eigenvalues.reduce((a, b) => a + b, 0);
  const outDim = eigen.count;
  const kept = eigenvalues.slice(0, outDim).reduce((a, b) => a + b, 0);
  const components = Float32Array.from(eigen.vectors);
  return {
    inDim,
    outDim,
    mean: Float32Array.from(mean),
    components,
    explainedVariance: total === 0 ? 1 : kept / total,
    residualVariance: eigenvalues[outDim] ?? 0,
  };
}

/**
 * Fits PCA on fewer rows than dimensions by the eigendecomposition of the rows' Gram matrix (n × n)
 * instead of the covariance (d × d): the centered rows X (n × d) span every axis with variance, and
 * for X Xᵀ u = λ u with λ > 0, v = Xᵀ u / √λ is a unit eigenvector of XᵀX with the same eigenvalue
 * (the snapshot method). The covariance's other eigenvalues, d − n + 1 or more, are 0. Cubic in n,
 * not in d: 40 rows of 2,100 dimensions took 252 ms against 6.2 s by the covariance (its reduction
 * to tridiagonal form is cubic in d), and `memstore bench` fits on its data's rows. Each axis is orthogonalized
 * against those before it: v loses accuracy as √λ shrinks against the largest, where the
 * covariance's own eigenvectors do not. Axes past the rows' rank (asked for by `dims`, or by
 * `variance` 1 on data of low rank) are an orthonormal completion (complete()), as the covariance's
 * eigenvectors of a repeated 0 are any orthonormal basis of their space. @internal Exported for the tests.
 */
export function fitDual(rows: readonly Float32Array[], mean: Float64Array, inDim: number, option: PcaOption): PcaModel {
  const n = rows.length;
  const { centered, gram } = gramOf(rows, mean, inDim);
  // The covariance's eigenvalues: the Gram matrix's, then zeros.
  const values = new Float64Array(inDim);
  let outDim = 0;
  const eigen = symmetricEigen(gram, n, (gramValues) => {
    for (let i = 0; i < n; i++) values[i] = Math.max(0, gramValues[i]!);
    outDim = axesKept(values, option);
    return Math.min(outDim, n);
  });
  // Below n·ε of the largest, λ is rounding of a 0 (what the eigensolver resolves): its v = Xᵀu / √λ
  // would be noise. A floor of 1e-12 had dropped axes the covariance's fit finds, of data whose one
  // feature's variance was 10¹² times the others' (a hostile pass).
  const floor = values[0]! * n * Number.EPSILON;
  const components = new Float64Array(outDim * inDim);
  const v = new Float64Array(inDim);
  let found = 0;
  let r = 0;
  for (; r < n && found < outDim && values[r]! > floor; r++) {
    v.fill(0);
    for (let i = 0; i < n; i++) {
      const ui = eigen.vectors[r * n + i]!;
      const at = i * inDim;
      for (let t = 0; t < inDim; t++) v[t]! += ui * centered[at + t]!;
    }
    let length = 0;
    for (let t = 0; t < inDim; t++) length += v[t]! * v[t]!;
    for (let pass = 0; pass < 2; pass++) {
      for (let a = 0; a < found; a++) {
        const axis = a * inDim;
        let dot = 0;
        for (let t = 0; t < inDim; t++) dot += components[axis + t]! * v[t]!;
        for (let t = 0; t < inDim; t++) v[t]! -= dot * components[axis + t]!;
      }
    }
    let norm = 0;
    for (let t = 0; t < inDim; t++) norm += v[t]! * v[t]!;
    // Stops at the first axis the ones before nearly span: those after it are smaller still.
    if (!(norm > 0.25 * length)) break;
    const unit = 1 / Math.sqrt(norm);
    for (let t = 0; t < inDim; t++) components[found * inDim + t] = v[t]! * unit;
    found++;
  }
  complete(components, found, outDim, inDim);
  const total = values.reduce((a, b) => a + b, 0);
  const kept = values.subarray(0, outDim).reduce((a, b) => a + b, 0);
  return {
    inDim,
    outDim,
    mean: Float32Array.from(mean),
    components: Float32Array.from(components),
    explainedVariance: total === 0 ? 1 : kept / total,
    // Where the completion stands in for axes with variance the loop could not take, the largest of
    // those is what the projection drops, not the eigenvalue past the kept ones.
    residualVariance: Math.max(values[outDim] ?? 0, found < outDim && r < n ? values[r]! : 0),
  };
}

/**
 * The rows' centered values (float32, row-major, as the covariance path sums them) and their Gram
 * matrix's upper triangle over n − 1, each entry summed in float64 by the exact kernel.
 */
function gramOf(rows: readonly Float32Array[], mean: Float64Array, inDim: number): { centered: Float32Array; gram: Float64Array } {
  const n = rows.length;
  const centered = new Float32Array(n * inDim);
  for (let i = 0; i < n; i++) {
    const row = rows[i]!;
    for (let t = 0; t < inDim; t++) centered[i * inDim + t] = row[t]! - mean[t]!;
  }
  const gram = new Float64Array(n * n);
  const k = kernels();
  const mem = k.memory;
  const padded = Math.ceil(inDim / EXACT_DIM_STEP) * EXACT_DIM_STEP;
  const rowsBytes = n * padded * 4;
  const outBytes = n * 16;
  const block = mem.alloc(rowsBytes);
  const out = mem.alloc(outBytes);
  try {
    const f32 = mem.f32();
    const at = block >> 2;
    f32.fill(0, at, at + n * padded);
    for (let i = 0; i < n; i++) f32.set(centered.subarray(i * inDim, (i + 1) * inDim), at + i * padded);
    for (let i = 0; i < n; i++) {
      const row = block + i * padded * 4;
      k.exactDotNorm(row, row, n - i, padded, out);
      const f64 = mem.f64();
      const o = out >> 3;
      for (let j = i; j < n; j++) gram[i * n + j] = f64[o + 2 * (j - i)]! / (n - 1);
    }
  } finally {
    mem.free(out, outBytes);
    mem.free(block, rowsBytes);
  }
  return { centered, gram };
}

/**
 * Rows `found` to `outDim` of `axes` (outDim × dim, the first `found` rows orthonormal) made an
 * orthonormal completion: with Q = H₀ ⋯ H₍found−1₎ the Householder reflectors that take the found
 * axes to the first standard basis vectors (QR of a matrix whose columns are orthonormal), the
 * columns Q e_j for j = found, found + 1, ... are unit vectors orthogonal to the axes and to each
 * other, each found by `found` reflections: linear in the axes wanted, where orthogonalizing basis
 * vectors one against all before them is quadratic.
 */
function complete(axes: Float64Array, found: number, outDim: number, dim: number): void {
  if (found >= outDim) return;
  // Reflector k: I − 2 w wᵀ with w a unit vector (zero where it is the identity), in rows of w.
  const w = new Float64Array(found * dim);
  const x = new Float64Array(dim);
  const reflect = (k: number, y: Float64Array): void => {
    const at = k * dim;
    let dot = 0;
    for (let t = k; t < dim; t++) dot += w[at + t]! * y[t]!;
    if (dot === 0) return;
    for (let t = k; t < dim; t++) y[t]! -= 2 * dot * w[at + t]!;
  };
  for (let k = 0; k < found; k++) {
    x.set(axes.subarray(k * dim, (k + 1) * dim));
    for (let j = 0; j < k; j++) reflect(j, x);
    // x is zero above k (the axes are orthonormal); reflect its tail onto ∓‖tail‖ e_k.
    let tail = 0;
    for (let t = k; t < dim; t++) tail += x[t]! * x[t]!;
    tail = Math.sqrt(tail);
    const alpha = x[k]! >= 0 ? -tail : tail;
    const at = k * dim;
    w[at + k] = x[k]! - alpha;
    for (let t = k + 1; t < dim; t++) w[at + t] = x[t]!;
    let norm = 0;
    for (let t = k; t < dim; t++) norm += w[at + t]! * w[at + t]!;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    for (let t = k; t < dim; t++) w[at + t]! /= norm;
  }
  for (let r = found; r < outDim; r++) {
    x.fill(0);
    x[r] = 1;
    for (let k = found - 1; k >= 0; k--) reflect(k, x);
    axes.set(x, r * dim);
  }
}

/** How many axes `option` keeps, given the eigenvalues in decreasing order: `dims`, or the fewest that explain `variance` of the total. */
function axesKept(values: Float64Array, option: PcaOption): number {
  if ('dims' in option) return option.dims;
  let total = 0;
  for (const v of values) total += Math.max(0, v);
  let acc = 0;
  for (let d = 0; d < values.length; d++) {
    acc += Math.max(0, values[d]!);
    // Within float64 rounding of the share: summing the eigenvalues of rank-3 data in 16-d reached
    // 1 - 2e-16, and variance 1 kept noise axes up to 10.
    if (total === 0 || acc / total >= option.variance - 1e-12) return d + 1;
  }
  return values.length;
}

/** `out = W (x − μ)`: how stored vectors are projected (and queries, for L2). */
export function projectCentered(model: PcaModel, x: Float32Array, out: Float32Array): void {
  const { inDim, outDim, mean, components } = model;
  for (let r = 0; r < outDim; r++) {
    const base = r * inDim;
    let s = 0;
    for (let i = 0; i < inDim; i++) s += components[base + i]! * (x[i]! - mean[i]!);
    out[r] = s;
  }
}

/**
 * `out = W q`: how inner-product queries are projected. Since `q·x ≈ q·μ + (Wq)·W(x − μ)` and `q·μ`
 * is the same for every candidate, centering the query would shift scores without changing ranks
 * while centering only one side keeps the estimate unbiased.
 */
export function projectUncentered(model: PcaModel, q: Float32Array, out: Float32Array): void {
  const { inDim, outDim, components } = model;
  for (let r = 0; r < outDim; r++) {
    const base = r * inDim;
    let s = 0;
    for (let i = 0; i < inDim; i++) s += components[base + i]! * q[i]!;
    out[r] = s;
  }
}

export function dotMean(model: Pick<PcaModel, 'inDim' | 'mean'>, q: Float32Array): number {
  let s = 0;
  for (let i = 0; i < model.inDim; i++) s += q[i]! * model.mean[i]!;
  return s;
}

/** `out = μ + Wᵀ y`: the reconstruction `get` returns when no full-precision copy is kept. */
export function reconstruct(model: PcaModel, y: Float32Array, out: Float32Array): void {
  const { inDim, outDim, mean, components } = model;
  out.set(mean);
  for (let r = 0; r < outDim; r++) {
    const yr = y[r]!;
    const base = r * inDim;
    for (let i = 0; i < inDim; i++) out[i]! += yr * components[base + i]!;
  }
}

/**
 * The upper triangle of Σ (x − μ)(x − μ)ᵀ over `rows` (symmetricEigen() reads no other), row-major
 * `inDim` × `inDim`: entry (i, j) is the dot product of the sample's centered coordinates i and j,
 * which the exact kernel sums a block of COV_BLOCK rows at a time (coordinate i of the block's rows
 * as the query, coordinates i.. as the vectors), in float64 over float32 inputs as vector.ts does.
 * The centered values are rounded to float32 first (the rows are float32, the model is kept in
 * float32). One row at a time in JavaScript, the sums took 1 s of a 1.6 s fit of 4,096 x 512.
 */
function covarianceSums(rows: readonly Float32Array[], mean: Float64Array, inDim: number): Float64Array {
  const k = kernels();
  const mem = k.memory;
  const cov = new Float64Array(inDim * inDim);
  const blockBytes = inDim * COV_BLOCK * 4;
  const outBytes = inDim * 16;
  const block = mem.alloc(blockBytes);
  const out = mem.alloc(outBytes);
  try {
    for (let start = 0; start < rows.length; start += COV_BLOCK) {
      const count = Math.min(COV_BLOCK, rows.length - start);
      // Views taken after alloc(): growing linear memory detaches older ones.
      const f32 = mem.f32();
      const at = block >> 2;
      if (count < COV_BLOCK) f32.fill(0, at, at + inDim * COV_BLOCK);
      for (let r = 0; r < count; r++) {
        const row = rows[start + r]!;
        for (let i = 0; i < inDim; i++) f32[at + i * COV_BLOCK + r] = row[i]! - mean[i]!;
      }
      for (let i = 0; i < inDim; i++) {
        const coordinate = block + i * COV_BLOCK * 4;
        k.exactDotNorm(coordinate, coordinate, inDim - i, COV_BLOCK, out);
        const f64 = mem.f64();
        const o = out >> 3;
        const base = i * inDim + i;
        for (let j = 0; j < inDim - i; j++) cov[base + j]! += f64[o + 2 * j]!;
      }
    }
  } finally {
    mem.free(out, outBytes);
    mem.free(block, blockBytes);
  }
  return cov;
}
