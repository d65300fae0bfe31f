import type { Codec } from '../codec/codec.js';

/**
 * The largest Euclidean norm of a decoded code an index has held: what a bound on how much a dot
 * product can change with the query needs. Computed over every code at the first get(), then raised
 * as codes are put; removals never lower it, so once vectors were removed it is an upper bound.
 * The exact index and the page index each keep one.
 */
export class LargestNorm {
  private value: number | undefined;
  private decoded: Float32Array | undefined;

  constructor(
    private readonly codec: Codec,
    private readonly dim: number,
  ) {}

  /** Whether the bound has been computed (until then, note() need not be called). */
  get known(): boolean {
    return this.value !== undefined;
  }

  /** Raises the bound to cover the code `code` with `scale`, once it is known. */
  note(code: Uint8Array, scale: number): void {
    if (this.value === undefined) return;
    const decoded = (this.decoded ??= new Float32Array(this.dim));
    this.codec.decode(code, scale, decoded);
    let sum = 0;
    for (let i = 0; i < decoded.length; i++) sum += decoded[i]! * decoded[i]!;
    this.value = Math.max(this.value, Math.sqrt(sum));
  }

  /** Forgets the bound (codes were loaded in bulk): the next get() computes it again. */
  forget(): void {
    this.value = undefined;
  }

  /** The bound; `every` notes every code held, when it is not known yet. */
  get(every: () => void): number {
    if (this.value === undefined) {
      this.value = 0;
      every();
    }
    return this.value;
  }
}
