import type { ScalarCodecName } from '../codec/codec.js';

/**
 * The calling contract shared by the WAT generator, the loader and the TypeScript reference:
 * metric names, export names, code sizes and the limits a scan call must respect.
 */

export type KernelMetric = 'dot' | 'cosine' | 'l2';

/** Metrics of the int8-query kernels; l2 has no integer form because the scales do not factor out. */
export type I8Metric = 'dot' | 'cosine';

export const KERNEL_CODECS: readonly ScalarCodecName[] = ['f32', 'f16', 'int8', 'fp8-e4m3', 'fp8-e5m2'];
export const KERNEL_METRICS: readonly KernelMetric[] = ['dot', 'cosine', 'l2'];
export const I8_METRICS: readonly I8Metric[] = ['dot', 'cosine'];

/** Bytes of one dimension of a stored code; kept here so the kernels do not depend on codec objects. */
export const BYTES_PER_DIM: Readonly<Record<ScalarCodecName, 1 | 2 | 4>> = {
  f32: 4,
  f16: 2,
  int8: 1,
  'fp8-e4m3': 1,
  'fp8-e5m2': 1,
};

/** Codecs whose codes carry a per-vector float32 scale; f32 and f16 kernels never read the scales. */
export function isScaled(codec: ScalarCodecName): boolean {
  return codec === 'int8' || codec === 'fp8-e4m3' || codec === 'fp8-e5m2';
}

/** Every kernel consumes 16 dimensions per step; callers zero-pad vectors to a multiple of this. */
export const DIM_STEP = 16;

/** Alignment (bytes) the allocator guarantees and the store should keep for every kernel operand. */
export const ALIGN = 16;

/**
 * Largest dim for which the int8-query kernels cannot overflow their i32 accumulators, for any
 * int8 bytes: every partial sum is bounded by 128 · 128 · dim, and 2^14 · 131071 < 2^31. Rounded
 * down to a multiple of DIM_STEP. (Codes in [-127, 127], as the int8 codec writes, would allow
 * 133144; the margin makes a stray -128 in a hand-quantized query harmless.)
 */
export const MAX_I8_DIM = 131056;

/** Name under which the module exports the float-query kernel for (codec, metric). */
export function scanExportName(codec: ScalarCodecName, metric: KernelMetric): string {
  return `scan_${codec.replace('-', '_')}_${metric}`;
}

/** Name under which the module exports the int8-query kernel for metric. */
export function scanI8ExportName(metric: I8Metric): string {
  return `scanI8_${metric}`;
}

/**
 * Name under which the module exports the int8-query cosine kernel that reads each code's norm
 * (int8CodeNorm()) where scanI8_cosine reads its scale, instead of summing Σc² from the code.
 */
export const SCAN_I8_COSINE_NORMED = 'scanI8_cosine_normed';

/**
 * The norm scanI8_cosine_normed reads for an int8 code (its `dim` bytes from `at` in `code`):
 * float32 √(float32 Σc²), the value scanI8_cosine computes from the code (Σc² is an exact integer,
 * its conversion and the square root rounded once each, as f32.convert_i32_s and f32.sqrt do).
 */
export function int8CodeNorm(code: Uint8Array, at: number, dim: number): number {
  let sum = 0;
  for (let i = at; i < at + dim; i++) {
    const c = (code[i]! << 24) >> 24;
    sum += c * c;
  }
  return Math.fround(Math.sqrt(Math.fround(sum)));
}

/** Codecs whose float-query cosine kernel has a stored-norms form (int8 has its own, scanI8_cosine_normed). */
export type FloatNormedCodec = Exclude<ScalarCodecName, 'int8'>;
export const FLOAT_NORMED_CODECS: readonly FloatNormedCodec[] = ['f32', 'f16', 'fp8-e4m3', 'fp8-e5m2'];

/**
 * Name under which the module exports the float-query cosine kernel for `codec` that reads each
 * code's norm (as norms_<codec> computes it) where scan_<codec>_cosine would read its scale, instead
 * of summing the squares of the decoded values.
 */
export function scanCosineNormedExportName(codec: FloatNormedCodec): string {
  return `${scanExportName(codec, 'cosine')}_normed`;
}

/** Name under which the module exports the kernel computing the norms scanCosineNormedExportName(codec) reads. */
export function floatNormsExportName(codec: FloatNormedCodec): string {
  return `norms_${codec.replace('-', '_')}`;
}

/** Name of the gather form of the kernel exported as `name` (an address table instead of contiguous codes; KERNELS.md). */
export function gatherName(name: string): string {
  return `gather_${name}`;
}

/** Names under which the module exports the exact (float64-accumulating) rescoring kernels. */
export const EXACT_DOT_NORM = 'exact_dot_norm';

/**
 * What a float32 kernel score at `dim` dimensions may lose outright to subnormals, whatever its
 * size: each float32 operation at most 2⁻¹⁴⁹, and an int8 kernel's product of its two scales at most
 * 2⁻¹⁴⁹ times its integer sum, ≤ 127² · dim. The rescoring bound (src/search/rescore-bound.ts) and the
 * cache's rounding margin (src/cache/bounds.ts) both add it.
 */
export function kernelUnderflow(dim: number): number {
  return ((127 * 127 + 2) * dim + 16) * 2 ** -149;
}
export const EXACT_SQDIST = 'exact_sqdist';

/** Name under which the module exports the selection kernel (KERNELS.md "Selection"). */
export const SELECT_AT_LEAST = 'select_at_least';

/** Names under which the module exports the int8 codes' loading steps (KERNELS.md "Int8 rows"). */
export const INT8_NORMS = 'int8_norms';
export const INT8_DECODE = 'int8_decode';

/** Names under which the module exports the router's selection steps (KERNELS.md "Router selection"). */
export const ROUTE_SCORES = 'route_scores';
export const BUCKET_SELECT = 'bucket_select';

/** route_scores' modes: a page's score as the kernel gave it, its cosine on the unit sphere, or widened by its spread. */
export const ROUTE_PLAIN = 0;
export const ROUTE_SPHERE = 1;
export const ROUTE_WIDEN = 2;

/** Buckets bucket_select counts scores into. */
export const SELECT_BUCKETS = 256;

/** Names under which the module exports the page-sum kernels (KERNELS.md "Page sums"). */
export const ROW_MAX_ABS = 'row_max_abs';
export const SUM_MULTIPLES = 'sum_multiples';

/** Names under which the module exports the sign-sketch kernels (KERNELS.md "Sign sketches"). */
export const SIGN_SKETCH = 'sign_sketch';
export const HAMMING_ROWS = 'hamming_rows';

/** Names under which the module exports the structured rotation's steps (KERNELS.md "Hadamard steps"). */
export const HADAMARD_TRANSFORM = 'hadamard_transform';
export const MULTIPLY_SIGNS = 'multiply_signs';
export const GIVENS_HALVES = 'givens_halves';

/** Names under which the module exports the eigensolver's float64 steps (KERNELS.md "Eigensolver steps"). */
export const EIGEN_DOT_AXPY = 'eigen_dot_axpy';
export const EIGEN_RANK2 = 'eigen_rank2';
export const EIGEN_REFLECT = 'eigen_reflect';

/** Names under which the module exports the kernels of the distance between two kernel queries (KERNELS.md "Query shift"). */
export const QUERY_SHIFT_I8 = 'query_shift_i8';
export const QUERY_SHIFT_F32 = 'query_shift_f32';

/** The query-shift kernels read 4 values per step; callers zero-pad both queries to a multiple of this. */
export const SHIFT_DIM_STEP = 4;

/** The sketch kernels read 4 words (128 bits) per step; callers zero-pad sketches, and the vectors they sketch, to a multiple of this. */
export const SKETCH_WORD_STEP = 4;

/** The exact kernels read 4 floats per step; callers zero-pad vectors to a multiple of this. */
export const EXACT_DIM_STEP = 4;

/** Bits per dimension of the rotated-quantization codes (CODECS.md, "rq1, rq2, rq4"). */
export type RqBits = 1 | 2 | 4;
export const RQ_BITS: readonly RqBits[] = [1, 2, 4];

/** Metrics of the rq kernels: rotated codes are scored by inner product or by squared distance (cosine is a dot product there). */
export type RqMetric = 'dot' | 'l2';
export const RQ_METRICS: readonly RqMetric[] = ['dot', 'l2'];

/** Dimensions one step of an rq kernel reads from each bit plane (16 bytes). */
export const RQ_DIM_STEP = 128;

/** Bytes of one bit plane of `dim` dimensions: one bit per dimension, padded with zero bits to a multiple of RQ_DIM_STEP. */
export function rqPlaneBytes(dim: number): number {
  return Math.ceil(dim / RQ_DIM_STEP) * (RQ_DIM_STEP / 8);
}

/** Bytes of an rq code: `bits` planes, then float32 ‖r‖² and float32 ‖r − r̃‖ (CODECS.md). */
export function rqCodeBytes(bits: RqBits, dim: number): number {
  return bits * rqPlaneBytes(dim) + 8;
}

/** Largest number of query bit planes an rq kernel takes. */
export const RQ_MAX_QUERY_BITS = 8;

/**
 * Largest planeBytes an rq kernel takes (524,288 dimensions), so that its integer sums stay exact
 * in i32. The dot sum is at most (2^4 − 1) · (2^8 − 1) · 8 · planeBytes, every bit of every plane
 * set, which is below 2^31 for planeBytes ≤ 70,187; every partial sum (an i32 lane, a flushed
 * segment) is a part of that sum, so none overflows either. The i8 and i16 lanes in between are
 * bounded by the segment length, not by planeBytes (KERNELS.md, "Rotated codes").
 */
export const RQ_MAX_PLANE_BYTES = 65536;

/** Name under which the module exports the rq kernel for (bits, metric). */
export function scanRqExportName(bits: RqBits, metric: RqMetric): string {
  return `scanRq${bits}_${metric}`;
}

/** Vectors of one fast-scan block (KERNELS.md, "Fast scan"): 16 in the low nibbles of its bytes, 16 in the high. */
export const FAST_SCAN_LANES = 32;

/** Bytes of one group of a fast-scan block (one nibble of each of its 32 vectors) and of one group's query table. */
export const FAST_SCAN_GROUP_BYTES = 16;

/**
 * Largest number of groups G a fast-scan kernel takes: a lane's sum is at most 255 · G, which must
 * stay exact in i32 (255 · 2^23 < 2^31). That is 2^25 dimensions of 1-bit codes, and a block of
 * 128 MiB, so no real code comes near it.
 */
export const FAST_SCAN_MAX_GROUPS = 2 ** 23;

/** Name under which the module exports the builder of a query's fast-scan table for codes of `bits` bits (KERNELS.md, "The table kernel"). */
export function fastScanTableExportName(bits: RqBits): string {
  return `fastScanTable${bits}`;
}

/** Name under which the module exports the decoder of fast-scan rows of `bits`-bit codes (KERNELS.md, "Fast-scan rows"). */
export function fastScanDecodeExportName(bits: RqBits): string {
  return `fastScanDecode${bits}`;
}

/** Name under which the module exports the writer of one `bits`-bit code into a fast-scan lane (KERNELS.md, "Fast-scan rows"). */
export function fastScanWriteExportName(bits: RqBits): string {
  return `fastScanWrite${bits}`;
}

/** Bytes of the table fastScanDecode<bits> writes at its `table` pointer: 16 nibble values, 4 float32 room each. */
export const FAST_SCAN_DECODE_TABLE_BYTES = 256;

/** Name under which the module exports the fast-scan kernel for metric. */
export function fastScanExportName(metric: RqMetric): string {
  return `fastScan_${metric}`;
}
