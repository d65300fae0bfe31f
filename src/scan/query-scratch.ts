import { isRqCodec, type Codec, type ScalarCodecName } from '../codec/codec.js';
import type { RqCodec } from '../codec/rq.js';
import type { RqMetric } from '../kernels/contract.js';
import { RQ_QUERY_BITS, RqQuery } from './rq-query.js';
import { getCodec } from '../codec/index.js';
import { FLOAT_NORMED_CODECS, kernels, type FloatNormedCodec, type I8Metric, type KernelMetric } from '../kernels/index.js';
import type { KernelForm, ScanQuery } from './code-blocks.js';
import type { TopK } from './topk.js';
import { sameBits } from '../vector.js';

const int8 = getCodec('int8');

/** Vectors a gather call scores (callers' address tables hold this many pairs); a run's blocks of four scattered codes keep four streams of loads in flight. */
export const GATHER_RUN = 16;

/**
 * Pushes into `top` the scores of a run of `n` vectors (float32 at `scoresPtr`) at or above its
 * floor: the selection kernel picks their rows (into `picksPtr`, room for `n` i32), so JavaScript
 * visits only those; `slotOf(row)` names each one's slot, and `accept(slot)` is asked only about
 * those that could enter.
 */
export function pushPicked(top: TopK, scoresPtr: number, n: number, picksPtr: number, slotOf: (row: number) => number, accept: ((slot: number) => boolean) | undefined): void {
  const k = kernels();
  const m = k.selectAtLeast(scoresPtr, n, top.floor, picksPtr);
  const scores = k.memory.f32();
  const picks = k.memory.i32();
  for (let i = 0; i < m; i++) {
    const row = picks[(picksPtr >> 2) + i]!;
    const score = scores[(scoresPtr >> 2) + row]!;
    if (!top.admits(score)) continue;
    const slot = slotOf(row);
    if (accept !== undefined && !accept(slot)) continue;
    top.push(score, slot);
  }
}

/** The float codec whose cosine kernel has a stored-norms form, or undefined (int8 has its own; rq none). */
function floatNormed(codec: Codec): FloatNormedCodec | undefined {
  return (FLOAT_NORMED_CODECS as readonly string[]).includes(codec.name) ? (codec.name as FloatNormedCodec) : undefined;
}

/**
 * Whether codes of `codec` scanned by `metric` keep each code's norm beside its scale, for scan()
 * to read instead of summing it (KERNELS.md, "Stored norms"): codes of the scalar codecs ranked by
 * cosine (rq codes are ranked by dot product in the rotated space, and never read norms).
 */
export function keepsCodeNorms(codec: Codec, metric: KernelMetric | undefined): boolean {
  return metric === 'cosine' && (codec.name === 'int8' || floatNormed(codec) !== undefined);
}


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
  /** The int8 scale of the query last loaded (0 for a float query). */
  private loadedScale = 0;
  private freed = false;
  /** The query's bit planes and constants when the codes are rq (rq-query.ts). */
  private readonly rq: RqQuery | undefined;
  /** The codec, when its cosine codes can be scanned with stored norms by the float kernels. */
  private readonly floatNormed: FloatNormedCodec | undefined;
  /** Bytes at `ptr`. */
  private readonly room: number;

  constructor(
    private readonly codec: Codec,
    private readonly dim: number,
    private readonly paddedDim: number,
  ) {
    this.rq = isRqCodec(codec.name) ? new RqQuery(codec as RqCodec, dim) : undefined;
    this.floatNormed = floatNormed(codec);
    this.room = Math.max(paddedDim * 4, this.rq?.bytes ?? 0);
    this.ptr = this.mem.alloc(this.room);
  }

  /** The rq kernels' metric: rotated codes rank by dot product (cosine is one there) or by l2. */
  private rqMetric(query: ScanQuery): RqMetric {
    if (query.metric === 'cosine') throw new RangeError('rq codes are scored by dot product in the rotated space, never by cosine');
    return query.metric;
  }

  /** Whether the kernels take `query` as an int8 code (int8 codes, an int8 query, a metric other than l2). */
  usesInt8(query: ScanQuery): boolean {
    return query.int8Query && query.metric !== 'l2' && this.codec.name === 'int8';
  }

  /** The int8 code and scale of `vector` (length dim), encoded now unless it is the one encoded last. */
  encode(vector: Float32Array): { readonly code: Uint8Array; readonly scale: number } {
    let e = this.encoded;
    if (e !== undefined) {
      // Equal values give equal codes and scale (encoding is a function of the values alone); equal
      // bits are equal values, and memcmp tells them apart faster than a loop (0 and -0 differ in
      // bits only: such a query is encoded again, to the same code).
      if (sameBits(e.vector, vector)) return e;
    } else {
      e = this.encoded = { vector: new Float32Array(this.dim), code: new Uint8Array(this.dim), scale: 0 };
    }
    e.scale = int8.encode(vector, e.code);
    e.vector.set(vector);
    return e;
  }

  /**
   * The query exactly as the kernels see it, in its cheapest exact form: the int8 code and its scale,
   * copied into `into` (dim bytes; a new array when not given), or the float vector itself.
   */
  kernelForm(query: ScanQuery, into?: Int8Array): KernelForm {
    if (this.rq !== undefined) {
      this.load(query);
      return { kind: 'float', vector: this.rq.seenVector() };
    }
    if (!this.usesInt8(query)) return { kind: 'float', vector: query.vector };
    const { code, scale } = this.encode(query.vector);
    const out = into ?? new Int8Array(this.dim);
    if (out.length !== this.dim) throw new RangeError(`an int8 query code has ${this.dim} bytes, not ${out.length}`);
    out.set(new Int8Array(code.buffer, code.byteOffset, this.dim));
    return { kind: 'int8', code: out, scale };
  }

  /**
   * ‖query.vector − the kernels' query‖ in float64, without making the latter: 0 for a float
   * query, which the kernels see as it is.
   */
  kernelQueryError(query: ScanQuery): number {
    if (this.rq !== undefined) {
      this.load(query);
      return this.rq.error(query.vector);
    }
    if (!this.usesInt8(query)) return 0;
    const { code, scale } = this.encode(query.vector);
    const v = query.vector;
    let sum = 0;
    for (let i = 0; i < this.dim; i++) {
      // Rounded to float32 as the kernels' query holds it.
      const d = v[i]! - Math.fround(((code[i]! << 24) >> 24) * scale);
      sum += d * d;
    }
    return Math.sqrt(sum);
  }

  /** Writes `query` at `ptr` as the kernels take it, for scan() and gather(). */
  load(query: ScanQuery): void {
    if (this.rq !== undefined) {
      this.rq.load(query.vector, this.ptr, RQ_QUERY_BITS);
      return;
    }
    if (this.usesInt8(query)) {
      const { code, scale } = this.encode(query.vector);
      const u8 = this.mem.u8();
      u8.set(code, this.ptr);
      u8.fill(0, this.ptr + this.dim, this.ptr + this.paddedDim);
      this.loadedScale = scale;
      return;
    }
    const f32 = this.mem.f32();
    const q = this.ptr >> 2;
    f32.set(query.vector, q);
    f32.fill(0, q + this.dim, q + this.paddedDim);
    this.loadedScale = 0;
  }

  /**
   * Writes at `normPtr` the norm of this codec's code at `codeAt` in linear memory (its bytes
   * padded with zeros to paddedDim), as the stored-norms scan reads it, for stores that keep norms
   * (keepsCodeNorms): int8CodeNorm()'s for int8, the norms kernel of the codec for the others.
   */
  writeCodeNorm(codeAt: number, normPtr: number): void {
    this.writeCodeNorms(codeAt, 1, normPtr);
  }

  /** writeCodeNorm() for `n` codes back to back from `codesAt`, their norms float32 from `normsPtr`: one kernel call. */
  writeCodeNorms(codesAt: number, n: number, normsPtr: number): void {
    const k = kernels();
    if (this.floatNormed !== undefined) k.floatNorms(this.floatNormed, codesAt, n, this.paddedDim, normsPtr);
    else k.int8Norms(codesAt, n, this.paddedDim, normsPtr);
  }

  /**
   * Scores `n` codes back to back from `codesPtr` (scales from `scalesPtr`) against `query`, loaded
   * by load(), writing `n` float32 at `outPtr`: the kernel for its codec, metric and form. With
   * `normsPtr` (the codes' norms, writeCodeNorm()), a cosine scan reads them instead of summing
   * them from the codes: the same scores. (An int8 code scanned with a float query, which no store
   * scan does, still sums: its norm is int8CodeNorm(), not the float kernel's sum.)
   */
  scan(query: ScanQuery, codesPtr: number, scalesPtr: number, n: number, outPtr: number, normsPtr = 0): void {
    const k = kernels();
    const normed = normsPtr !== 0 && query.metric === 'cosine';
    if (this.rq !== undefined) this.rq.scan(this.rqMetric(query), this.ptr, codesPtr, scalesPtr, n, this.codec.strideBytes(this.dim), outPtr);
    else if (normed && this.usesInt8(query)) k.scanI8CosineNormed(this.ptr, this.loadedScale, codesPtr, normsPtr, n, this.paddedDim, outPtr);
    else if (this.usesInt8(query)) k.scanI8(query.metric as I8Metric, this.ptr, this.loadedScale, codesPtr, scalesPtr, n, this.paddedDim, outPtr);
    else if (normed && this.floatNormed !== undefined) k.scanCosineNormedFunction(this.floatNormed)(this.ptr, codesPtr, normsPtr, n, this.paddedDim, outPtr);
    else k.scan(this.codec.name as ScalarCodecName, query.metric, this.ptr, codesPtr, scalesPtr, n, this.paddedDim, outPtr);
  }

  /**
   * Scores `count` codes wherever they are against `query` (loading it), with the gather form of the
   * kernel scan() uses, so each score is the one scan() gives that code: GATHER_RUN per call. For
   * each run, `fill(from, n, table, at)` writes the addresses of codes from..from+n-1 as pairs
   * (code, scale) of i32 at table[at..at + 2n) (the table at `tablePtr`, GATHER_RUN pairs), the
   * kernel writes their scores at `outPtr`, and `take(from, n, scores, at)` gets them as
   * scores[at..at + n). One call per run, not per code: these run once per scattered code.
   */
  gather(query: ScanQuery, count: number, tablePtr: number, outPtr: number, fill: (from: number, n: number, table: Int32Array, at: number) => void, take: (from: number, n: number, scores: Float32Array, at: number) => void): void {
    if (count <= 0) return;
    const k = kernels();
    this.load(query);
    const rq = this.rq;
    if (rq !== undefined) {
      const metric = this.rqMetric(query);
      for (let from = 0; from < count; from += GATHER_RUN) {
        const n = Math.min(GATHER_RUN, count - from);
        fill(from, n, this.mem.i32(), tablePtr >> 2);
        rq.gather(metric, this.ptr, tablePtr, n, outPtr);
        take(from, n, this.mem.f32(), outPtr >> 2);
      }
      return;
    }
    // The unchecked exports: the caller's paddedDim passed the checks with every scan(), and every run fits its scratch space.
    const i8 = this.usesInt8(query) ? k.gatherI8Function(query.metric as I8Metric) : undefined;
    const float = i8 === undefined ? k.gatherFunction(this.codec.name as ScalarCodecName, query.metric) : undefined;
    for (let from = 0; from < count; from += GATHER_RUN) {
      const n = Math.min(GATHER_RUN, count - from);
      fill(from, n, this.mem.i32(), tablePtr >> 2);
      if (i8 !== undefined) i8(this.ptr, this.loadedScale, tablePtr, n, this.paddedDim, outPtr);
      else float!(this.ptr, tablePtr, n, this.paddedDim, outPtr);
      take(from, n, this.mem.f32(), outPtr >> 2);
    }
  }

  /** Bytes of linear memory it holds. */
  get bytes(): number {
    return this.room;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.mem.free(this.ptr, this.room);
  }
}
