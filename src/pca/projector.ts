import { kernels } from '../kernels/index.js';
import { paddedDim } from '../scan/code-blocks.js';
import type { PcaModel } from './pca.js';

/** A model without its axes: what the projector keeps in JavaScript (the axes live in linear memory only). */
export type ModelHead = Omit<PcaModel, 'components'>;

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
export class Projector {
  private readonly padded: number;
  private readonly axes: number;
  private readonly input: number;
  private readonly output: number;
  private readonly mem = kernels().memory;
  private freed = false;
  readonly head: ModelHead;

  constructor(model: PcaModel) {
    const { inDim, outDim, mean, explainedVariance } = model;
    this.head = { inDim, outDim, mean, explainedVariance };
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
