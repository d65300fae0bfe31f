import { RQ_DIM_STEP } from '../kernels/contract.js';
import type { PcaModel } from '../pca/pca.js';
import { rng } from '../random.js';
import { drawHadamardSigns } from './hadamard-rotation.js';

/**
 * The seed of every store's rotation: the rotation is persisted with the model, so the seed only
 * makes a fit reproducible (the same sample gives the same pages and answers, DESIGN.md).
 */
export const ROTATION_SEED = 0x52510001;

/** Rotated dimensions for an input of `dim`: the next multiple of the rq kernels' step, so no plane bit is padding. */
export function rotatedDim(dim: number): number {
  return Math.ceil(dim / RQ_DIM_STEP) * RQ_DIM_STEP;
}

function gaussian(rand: () => number): number {
  // Box–Muller; 1 − u keeps the logarithm finite.
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/**
 * `cols` orthonormal columns of length `rows` (rows ≥ cols), row-major rows × cols, in float64: a
 * Gaussian matrix orthonormalized by modified Gram–Schmidt in one pass. Its loss of orthogonality
 * is about 2⁻⁵² times the matrix's condition number (a few thousand for a square Gaussian matrix of
 * a few thousand columns), far below the float32 the model is kept in; a second pass doubled the
 * cost for nothing measurable. Its columns span a uniformly random subspace, and in that basis the
 * map is a uniformly random isometry: the rotation RaBitQ's estimator and bound assume. The rotation
 * of an rq store with PCA, composed with PCA's axes (fitRotation); one without PCA takes the
 * structured rotation (hadamard-rotation.ts), which approximates it at O(D log D) a vector.
 */
export function randomIsometry(rows: number, cols: number, seed: number): Float64Array {
  if (!(rows >= cols && cols > 0)) throw new RangeError(`an isometry needs rows ≥ cols > 0, got ${rows} × ${cols}`);
  const rand = rng(seed);
  // Column-major while orthonormalizing: each column is contiguous.
  const q = new Float64Array(rows * cols);
  for (let i = 0; i < q.length; i++) q[i] = gaussian(rand);
  for (let c = 0; c < cols; c++) {
    const col = c * rows;
    for (let p = 0; p < c; p++) {
      const prev = p * rows;
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += q[prev + i]! * q[col + i]!;
      for (let i = 0; i < rows; i++) q[col + i]! -= dot * q[prev + i]!;
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += q[col + i]! * q[col + i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < rows; i++) q[col + i]! /= norm;
  }
  const out = new Float64Array(rows * cols);
  for (let c = 0; c < cols; c++) for (let i = 0; i < rows; i++) out[i * cols + c] = q[c * rows + i]!;
  return out;
}

/**
 * The model of a store with rotated codes: `R (x − μ)` padded to rotatedDim() dimensions, where R is
 * a structured rotation (hadamard-rotation.ts, its signs seeded) without PCA, and `C (x − μ)` with
 * C = R W, R a random isometry onto rotatedDim() dimensions (randomIsometry), with PCA `W`: PCA's
 * axes are a dense matrix anyway, and the product costs what PCA alone does. μ is the sample mean
 * (PCA's own with PCA). The result has the shape of a PCA model, so the space projects, persists
 * and reconstructs with it as it does with PCA: stored vectors centered, queries uncentered with
 * q·μ added back, both centered for l2.
 */
export function fitRotation(rows: readonly Float32Array[], inDim: number, pca: PcaModel | undefined): PcaModel {
  if (pca === undefined) {
    const outDim = rotatedDim(inDim);
    const sum = new Float64Array(inDim);
    for (const row of rows) for (let i = 0; i < inDim; i++) sum[i]! += row[i]!;
    const mean = new Float32Array(inDim);
    for (let i = 0; i < inDim; i++) mean[i] = rows.length > 0 ? sum[i]! / rows.length : 0;
    return { inDim, outDim, mean, components: new Float32Array(0), explainedVariance: 1, hadamard: drawHadamardSigns(outDim, ROTATION_SEED) };
  }
  const inner = pca.outDim;
  const outDim = rotatedDim(inner);
  const r = randomIsometry(outDim, inner, ROTATION_SEED);
  const w = pca.components;
  const components = new Float32Array(outDim * inDim);
  const acc = new Float64Array(inDim);
  for (let o = 0; o < outDim; o++) {
    acc.fill(0);
    for (let p = 0; p < inner; p++) {
      const c = r[o * inner + p]!;
      if (c === 0) continue;
      const base = p * inDim;
      for (let i = 0; i < inDim; i++) acc[i]! += c * w[base + i]!;
    }
    for (let i = 0; i < inDim; i++) components[o * inDim + i] = acc[i]!;
  }
  // The rotation is orthogonal: the axes PCA drops, and the variance along them, are the same.
  const { residualVariance } = pca;
  return residualVariance === undefined ? { inDim, outDim, mean: pca.mean, components, explainedVariance: pca.explainedVariance } : { inDim, outDim, mean: pca.mean, components, explainedVariance: pca.explainedVariance, residualVariance };
}
