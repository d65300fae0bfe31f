import { MemstoreError } from '../errors.js';
import type { PcaOption } from '../options.js';
import { kernels } from '../kernels/index.js';
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
 * Fits PCA on `rows` (each of length `inDim`): the covariance matrix accumulated in float64, then
 * its eigendecomposition (eigen.ts).
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
