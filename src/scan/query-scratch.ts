import type { Codec } from '../codec/codec.js';
import { getCodec } from '../codec/index.js';
import { kernels } from '../kernels/index.js';
import type { ScanQuery } from './code-blocks.js';

const int8 = getCodec('int8');

/**
 * A query as the scan kernels take it, in scratch space of linear memory: a float32 query zero-padded
 * to `paddedDim`, or, where the codes are int8 and the metric is not l2, its int8 code and scale
 * (the kernels then accumulate in integers). The int8 encoding of the last query is kept: a search
 * encodes the same query for its bound, its pool and its scan, and encoding costs more than comparing.
 */
export class QueryScratch {
  /** Where the loaded query is: paddedDim float32, or paddedDim int8 bytes. */
  readonly ptr: number;
  private readonly mem = kernels().memory;
  private encoded: { readonly vector: Float32Array; readonly code: Uint8Array; scale: number } | undefined;
  private freed = false;

  constructor(
    private readonly codec: Codec,
    private readonly dim: number,
    private readonly paddedDim: number,
  ) {
    this.ptr = this.mem.alloc(paddedDim * 4);
  }

  /** Whether the kernels take `query` as an int8 code (int8 codes, an int8 query, a metric other than l2). */
  usesInt8(query: ScanQuery): boolean {
    return query.int8Query && query.metric !== 'l2' && this.codec.name === 'int8';
  }

  /** The int8 code and scale of `vector` (length dim), encoded now unless it is the one encoded last. */
  encode(vector: Float32Array): { readonly code: Uint8Array; readonly scale: number } {
    let e = this.encoded;
    if (e !== undefined) {
      const a = e.vector;
      // Equal values give equal codes and scale (encoding is a function of the values alone).
      let same = a.length === vector.length;
      for (let i = 0; same && i < a.length; i++) same = a[i] === vector[i];
      if (same) return e;
    } else {
      e = this.encoded = { vector: new Float32Array(this.dim), code: new Uint8Array(this.dim), scale: 0 };
    }
    e.scale = int8.encode(vector, e.code);
    e.vector.set(vector);
    return e;
  }

  /** Writes `query` at `ptr` as the kernels take it; returns its int8 scale (0 for a float query). */
  load(query: ScanQuery): number {
    if (this.usesInt8(query)) {
      const { code, scale } = this.encode(query.vector);
      const u8 = this.mem.u8();
      u8.set(code, this.ptr);
      u8.fill(0, this.ptr + this.dim, this.ptr + this.paddedDim);
      return scale;
    }
    const f32 = this.mem.f32();
    const q = this.ptr >> 2;
    f32.set(query.vector, q);
    f32.fill(0, q + this.dim, q + this.paddedDim);
    return 0;
  }

  /** Bytes of linear memory it holds. */
  get bytes(): number {
    return this.paddedDim * 4;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.mem.free(this.ptr, this.paddedDim * 4);
  }
}
