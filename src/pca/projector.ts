import { kernels } from '../kernels/index.js';
import { paddedDim } from '../scan/code-blocks.js';
import { HadamardRotation } from '../space/hadamard-rotation.js';
import { rangeComplement } from '../space/range-complement.js';
import { dot } from '../vector.js';
import type { PcaModel } from './pca.js';

/** A model without its axes: what the projector keeps in JavaScript (the axes live in linear memory only). */
export type ModelHead = Omit<PcaModel, 'components' | 'hadamard'>;

/**
 * How far from 1 a row's squared norm may be for the model's rows to count as orthonormal: far above
 * the float32 model's rounding (about 1e-6), far below a padded rotation's shortfall (its rows'
 * squares average the taken dimensions over the padded ones, at most 1 − 1/128).
 */
const ROW_NORM_SLACK = 1e-3;

/** A fitted model applied: W (x − μ), W q, and back. */
export interface Projector {
  readonly head: ModelHead;
  /** Bytes of RAM held beyond the head. */
  readonly bytes: number;
  /** The model whole, as persisted. */
  model(): PcaModel;
  /** `μ + Wᵀ y` into `out` (inDim floats). */
  reconstruct(y: Float32Array, out: Float32Array): void;
  /** `W (x − μ)` into a new array of outDim floats. */
  centered(x: Float32Array): Float32Array;
  /** `W q` into a new array of outDim floats. */
  uncentered(q: Float32Array): Float32Array;
  /**
   * An orthonormal basis (rows of outDim floats) of what W's range leaves out of the stored space,
   * or undefined when its range is all of it (RouteSphere, router.ts).
   */
  complement(): Float32Array | undefined;
  free(): void;
}

/**
 * `model`'s map as a dense matrix, outDim rows of inDim (row-major float32): its `components`, or
 * for a structured rotation its columns R e_i over the input dimensions (a 1 MiB matrix at 512-d:
 * for checking and comparing the space against its definition, never on a store's path).
 */
export function modelMatrix(model: PcaModel): Float32Array {
  if (model.hadamard === undefined) return model.components;
  const { inDim, outDim } = model;
  const rotation = new HadamardRotation(outDim, model.hadamard);
  const columns = rotation.columns(0, inDim);
  rotation.free();
  const out = new Float32Array(outDim * inDim);
  for (let i = 0; i < inDim; i++) for (let o = 0; o < outDim; o++) out[o * inDim + i] = columns[i * outDim + o]!;
  return out;
}

/** What a projector keeps of `model` in JavaScript: every field but the axes (and a rotation's signs). */
function headOf(model: PcaModel): ModelHead {
  const { inDim, outDim, mean, explainedVariance, residualVariance } = model;
  return residualVariance === undefined ? { inDim, outDim, mean, explainedVariance } : { inDim, outDim, mean, explainedVariance, residualVariance };
}

/** The projector of `model`: its structured rotation, or its axes in linear memory. */
export function projectorOf(model: PcaModel): Projector {
  return model.hadamard !== undefined ? new HadamardProjector(model, model.hadamard) : new MatrixProjector(model);
}

/**
 * An rq store's structured rotation (hadamard-rotation.ts) behind its mean: O(D log D) a vector,
 * and only its signs held (a bit per dimension and round), where the dense form held a D x d matrix
 * (1 MiB at 512-d) and read all of it for every query.
 */
class HadamardProjector implements Projector {
  readonly head: ModelHead;
  private readonly rotation: HadamardRotation;
  private readonly input: Float64Array;
  private readonly back: Float32Array;

  constructor(
    model: PcaModel,
    private readonly signs: Uint8Array,
  ) {
    const { inDim, outDim } = model;
    if (outDim < inDim) throw new RangeError(`a rotation maps ${inDim} dimensions onto at least as many, not ${outDim}`);
    this.head = headOf(model);
    this.rotation = new HadamardRotation(outDim, signs);
    this.input = new Float64Array(inDim);
    this.back = new Float32Array(outDim);
  }

  get bytes(): number {
    return this.signs.length + this.rotation.bytes + this.head.outDim * 4 + this.head.inDim * 8;
  }

  model(): PcaModel {
    return { ...this.head, components: new Float32Array(0), hadamard: this.signs.slice() };
  }

  reconstruct(y: Float32Array, out: Float32Array): void {
    this.rotation.transpose(y, this.back);
    const mean = this.head.mean;
    for (let i = 0; i < this.head.inDim; i++) out[i] = mean[i]! + this.back[i]!;
  }

  centered(x: Float32Array): Float32Array {
    const mean = this.head.mean;
    for (let i = 0; i < this.head.inDim; i++) this.input[i] = x[i]! - mean[i]!;
    const out = new Float32Array(this.head.outDim);
    this.rotation.apply(this.input, this.head.inDim, out);
    return out;
  }

  uncentered(q: Float32Array): Float32Array {
    const out = new Float32Array(this.head.outDim);
    this.rotation.apply(q, this.head.inDim, out);
    return out;
  }

  /** R e_j for the padded dimensions j: the rotation is orthogonal, so they are orthonormal and span what the input's image leaves out. */
  complement(): Float32Array | undefined {
    const { inDim, outDim } = this.head;
    return inDim === outDim ? undefined : this.rotation.columns(inDim, outDim);
  }

  free(): void {
    this.rotation.free();
  }
}

/**
 * Applies a fitted PCA (or rq rotation) with the float32 dot-product kernel: the principal axes are
 * "stored vectors" in linear memory and projecting is one scan of them against the (centered)
 * input, several times faster than a JavaScript loop and done on every insert and query.
 *
 * The axes are held there only: the rare callers that need them as an array (persisting a newly
 * trained model, the router's sphere when pages are made) get a copy from model(), and
 * reconstruction reads them in place. A second copy in JavaScript had doubled the model's RAM
 * (an rq rotation at 512-d is 1 MiB).
 */
class MatrixProjector implements Projector {
  private readonly padded: number;
  private readonly axes: number;
  private readonly input: number;
  private readonly output: number;
  private readonly mem = kernels().memory;
  private freed = false;
  readonly head: ModelHead;

  constructor(model: PcaModel) {
    this.head = headOf(model);
    const { inDim, outDim } = model;
    this.padded = paddedDim(inDim);
    this.axes = this.mem.alloc(outDim * this.padded * 4);
    this.input = this.mem.alloc(this.padded * 4);
    this.output = this.mem.alloc(Math.max(16, outDim) * 4);
    const f32 = this.mem.f32();
    for (let r = 0; r < outDim; r++) {
      const at = (this.axes >> 2) + r * this.padded;
      f32.set(model.components.subarray(r * inDim, (r + 1) * inDim), at);
      f32.fill(0, at + inDim, at + this.padded);
    }
    f32.fill(0, this.input >> 2, (this.input >> 2) + this.padded);
  }

  /** Bytes of linear memory held: the padded axes, the input and the output. */
  get bytes(): number {
    return (this.head.outDim * this.padded + this.padded + Math.max(16, this.head.outDim)) * 4;
  }

  /** The model whole: its axes copied out of linear memory (outDim rows of inDim), bit for bit as given. */
  model(): PcaModel {
    const { inDim, outDim } = this.head;
    const components = new Float32Array(outDim * inDim);
    const f32 = this.mem.f32();
    for (let r = 0; r < outDim; r++) {
      const at = (this.axes >> 2) + r * this.padded;
      components.set(f32.subarray(at, at + inDim), r * inDim);
    }
    return { ...this.head, components };
  }

  /** `μ + Wᵀ y` into `out` (inDim floats): a vector of the input space from a projected one, the axes read in place. */
  reconstruct(y: Float32Array, out: Float32Array): void {
    const { inDim, outDim, mean } = this.head;
    out.set(mean);
    const f32 = this.mem.f32();
    for (let r = 0; r < outDim; r++) {
      const yr = y[r]!;
      const base = (this.axes >> 2) + r * this.padded;
      for (let i = 0; i < inDim; i++) out[i]! += yr * f32[base + i]!;
    }
  }

  /** `W (x − μ)` into a new array of outDim floats. */
  centered(x: Float32Array): Float32Array {
    const f32 = this.mem.f32();
    const at = this.input >> 2;
    const mean = this.head.mean;
    for (let i = 0; i < this.head.inDim; i++) f32[at + i] = x[i]! - mean[i]!;
    return this.run();
  }

  /** `W q` into a new array of outDim floats. */
  uncentered(q: Float32Array): Float32Array {
    this.mem.f32().set(q, this.input >> 2);
    return this.run();
  }

  complement(): Float32Array | undefined {
    const { components, inDim, outDim } = this.model();
    // Rows of length 1 are orthonormal here (an isometry times orthonormal rows), and W's range is
    // the whole stored space; a padded rotation's rows are shorter (their squares sum to the
    // dimensions it takes): then the router needs what its range leaves out.
    for (let o = 0; o < outDim; o++) {
      const row = components.subarray(o * inDim, (o + 1) * inDim);
      if (Math.abs(dot(row, row) - 1) > ROW_NORM_SLACK) return rangeComplement(components, outDim, inDim).complement;
    }
    return undefined;
  }

  private run(): Float32Array {
    kernels().scan('f32', 'dot', this.input, this.axes, this.input, this.head.outDim, this.padded, this.output);
    const at = this.output >> 2;
    return this.mem.f32().slice(at, at + this.head.outDim);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.mem.free(this.axes, this.head.outDim * this.padded * 4);
    this.mem.free(this.input, this.padded * 4);
    this.mem.free(this.output, Math.max(16, this.head.outDim) * 4);
  }
}
