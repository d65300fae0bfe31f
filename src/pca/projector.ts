import { kernels } from '../kernels/index.js';
import { paddedDim } from '../scan/code-blocks.js';
import type { PcaModel } from './pca.js';

/**
 * Applies a fitted PCA with the float32 dot-product kernel: the principal axes are "stored vectors"
 * in linear memory and projecting is one scan of them against the (centered) input, several times
 * faster than a JavaScript loop and done on every insert and query.
 */
export class Projector {
  private readonly padded: number;
  private readonly axes: number;
  private readonly input: number;
  private readonly output: number;
  private readonly mem = kernels().memory;
  private freed = false;

  constructor(readonly model: PcaModel) {
    this.padded = paddedDim(model.inDim);
    this.axes = this.mem.alloc(model.outDim * this.padded * 4);
    this.input = this.mem.alloc(this.padded * 4);
    this.output = this.mem.alloc(Math.max(16, model.outDim) * 4);
    const f32 = this.mem.f32();
    for (let r = 0; r < model.outDim; r++) {
      const at = (this.axes >> 2) + r * this.padded;
      f32.set(model.components.subarray(r * model.inDim, (r + 1) * model.inDim), at);
      f32.fill(0, at + model.inDim, at + this.padded);
    }
    f32.fill(0, this.input >> 2, (this.input >> 2) + this.padded);
  }

  /** Bytes of linear memory held: the padded axes, the input and the output. */
  get bytes(): number {
    return (this.model.outDim * this.padded + this.padded + Math.max(16, this.model.outDim)) * 4;
  }

  /** `W (x − μ)` into a new array of outDim floats. */
  centered(x: Float32Array): Float32Array {
    const f32 = this.mem.f32();
    const at = this.input >> 2;
    const mean = this.model.mean;
    for (let i = 0; i < this.model.inDim; i++) f32[at + i] = x[i]! - mean[i]!;
    return this.run();
  }

  /** `W q` into a new array of outDim floats. */
  uncentered(q: Float32Array): Float32Array {
    this.mem.f32().set(q, this.input >> 2);
    return this.run();
  }

  private run(): Float32Array {
    kernels().scan('f32', 'dot', this.input, this.axes, this.input, this.model.outDim, this.padded, this.output);
    const at = this.output >> 2;
    return this.mem.f32().slice(at, at + this.model.outDim);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.mem.free(this.axes, this.model.outDim * this.padded * 4);
    this.mem.free(this.input, this.padded * 4);
    this.mem.free(this.output, Math.max(16, this.model.outDim) * 4);
  }
}
