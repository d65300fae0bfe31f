import { kernels } from '../kernels/index.js';
import { rng } from '../random.js';

/**
 * Rounds of random signs and Hadamard transforms in a structured rotation: four, as RaBitQ's own
 * library and others that replaced its dense rotation do; each round mixes every coordinate into
 * every other of its block, and the signs make the blocks' fixed patterns random.
 */
export const HADAMARD_ROUNDS = 4;

/** Bytes of the signs of a rotation of `dim` dimensions (a multiple of 8): one bit per dimension and round. */
export function hadamardSignBytes(dim: number): number {
  return (HADAMARD_ROUNDS * dim) / 8;
}

/** Seeded signs for a rotation of `dim` dimensions: bit `i & 7` of byte `i >> 3` set means −1 at position i of the rounds' concatenated signs. */
export function drawHadamardSigns(dim: number, seed: number): Uint8Array {
  const rand = rng(seed);
  const out = new Uint8Array(hadamardSignBytes(dim));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

/**
 * A random orthogonal map of `dim` dimensions in O(dim log dim) (CODECS.md, "The rotation"):
 * HADAMARD_ROUNDS rounds, each flipping the signs its bits say, then a Walsh–Hadamard transform
 * over the largest power of two `P` ≤ dim (the first `P` coordinates in even rounds, the last `P` in
 * odd ones), then, when `P` < dim, a Givens rotation by π/4 of each coordinate `i` < dim/2 with
 * `i + dim/2` (Kac's walk), which carries the block's mixing to the coordinates it left out. Each
 * step is orthogonal (the transform scaled by 1/√P, the Givens step by 1/√2; a scale every
 * coordinate shares is applied once, at the end), and each is its own inverse, so the transpose runs
 * them in the opposite order. The steps are WebAssembly kernels over float32 in linear memory
 * (KERNELS.md, "Hadamard steps"): at 512-d a rotation costs a few microseconds, where the float32
 * matrix it replaced read 1 MiB. Allocates nothing per call; free() gives its memory back.
 */
export class HadamardRotation {
  readonly dim: number;
  private readonly block: number;
  private readonly kernels = kernels();
  private readonly mem = this.kernels.memory;
  /** ±1 as float32 per round and dimension, then the work vector, in linear memory. */
  private readonly signs: number;
  private readonly work: number;
  /** 1/√P, applied where the transform runs when its block is short of every dimension. */
  private readonly blockScale: number;
  /** The product of the scales deferred to the end. */
  private readonly scale: number;
  private freed = false;

  constructor(dim: number, signs: Uint8Array) {
    if (!(Number.isInteger(dim) && dim >= 8 && dim % 8 === 0)) throw new RangeError(`a Hadamard rotation needs a multiple of 8 dimensions, got ${dim}`);
    if (signs.length !== hadamardSignBytes(dim)) throw new RangeError(`a rotation of ${dim} dimensions takes ${hadamardSignBytes(dim)} bytes of signs, got ${signs.length}`);
    this.dim = dim;
    let block = 1;
    while (block * 2 <= dim) block *= 2;
    this.block = block;
    this.signs = this.mem.alloc(HADAMARD_ROUNDS * dim * 4);
    this.work = this.mem.alloc(dim * 4);
    const f32 = this.mem.f32();
    for (let i = 0; i < HADAMARD_ROUNDS * dim; i++) f32[(this.signs >> 2) + i] = (signs[i >> 3]! >> (i & 7)) & 1 ? -1 : 1;
    this.blockScale = Math.fround(1 / Math.sqrt(block));
    // Steps that scale every coordinate alike are scaled once, at the end (in float64, then the
    // output rounded once); a transform of a block short of every dimension is scaled where it runs
    // (the coordinates outside it are not).
    this.scale = (block < dim ? Math.SQRT1_2 : 1 / Math.sqrt(block)) ** HADAMARD_ROUNDS;
  }

  /** Bytes of linear memory held: the signs as float32 and the work vector. */
  get bytes(): number {
    return (HADAMARD_ROUNDS + 1) * this.dim * 4;
  }

  /** `R x` into `out` (dim floats): `x`'s first `length` values, zeros past them. */
  apply(x: ArrayLike<number>, length: number, out: Float32Array): void {
    this.load(x, length);
    for (let r = 0; r < HADAMARD_ROUNDS; r++) {
      this.kernels.multiplySigns(this.work, this.signs + r * this.dim * 4, this.dim);
      this.transform(r);
      if (this.block < this.dim) this.kernels.givensHalves(this.work, this.dim >> 1);
    }
    this.store(out);
  }

  /** The columns `R e_j` for j in [from, to), dim floats each, one after another. */
  columns(from: number, to: number): Float32Array {
    const out = new Float32Array((to - from) * this.dim);
    const unit = new Float64Array(this.dim);
    for (let j = from; j < to; j++) {
      unit[j] = 1;
      this.apply(unit, this.dim, out.subarray((j - from) * this.dim, (j - from + 1) * this.dim));
      unit[j] = 0;
    }
    return out;
  }

  /** `Rᵀ y` into `out` (dim floats): the inverse, `y` of dim values. */
  transpose(y: ArrayLike<number>, out: Float32Array): void {
    this.load(y, this.dim);
    for (let r = HADAMARD_ROUNDS - 1; r >= 0; r--) {
      if (this.block < this.dim) this.kernels.givensHalves(this.work, this.dim >> 1);
      this.transform(r);
      this.kernels.multiplySigns(this.work, this.signs + r * this.dim * 4, this.dim);
    }
    this.store(out);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.mem.free(this.signs, HADAMARD_ROUNDS * this.dim * 4);
    this.mem.free(this.work, this.dim * 4);
  }

  private transform(round: number): void {
    const start = round % 2 === 0 ? 0 : this.dim - this.block;
    this.kernels.hadamardTransform(this.work + start * 4, this.block, this.block < this.dim ? this.blockScale : 1);
  }

  private load(x: ArrayLike<number>, length: number): void {
    if (this.freed) throw new Error('rotation used after free()');
    if (length > this.dim || x.length < length) throw new RangeError(`a rotation of ${this.dim} dimensions takes at most that many values, got ${length}`);
    const f32 = this.mem.f32();
    const at = this.work >> 2;
    for (let i = 0; i < length; i++) f32[at + i] = x[i]!;
    f32.fill(0, at + length, at + this.dim);
  }

  private store(out: Float32Array): void {
    if (out.length < this.dim) throw new RangeError(`a rotation of ${this.dim} dimensions writes that many values, room for ${out.length}`);
    const f32 = this.mem.f32();
    const at = this.work >> 2;
    const s = this.scale;
    for (let i = 0; i < this.dim; i++) out[i] = f32[at + i]! * s;
  }
}
