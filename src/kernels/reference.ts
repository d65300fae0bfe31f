import type { ScalarCodecName } from '../codec/codec.js';
import { DIM_STEP, ROUTE_SPHERE, ROUTE_WIDEN, SELECT_BUCKETS, isScaled, type FloatNormedCodec, type I8Metric, type KernelMetric, type RqBits, type RqMetric } from './contract.js';

/**
 * Plain TypeScript versions of every kernel, with the same arguments as the WebAssembly exports
 * but over typed arrays. They are the oracle of the kernel tests and the baseline of the benchmark,
 * so they follow the definitions literally: codes are decoded with the arithmetic rules of each
 * format (no bit tricks) and float sums are accumulated in float64.
 */

/** IEEE binary16 bits to their value. */
export function decodeF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** OCP FP8 E4M3 byte to its value (before the vector's scale): no infinities, S.1111.111 is NaN. */
export function decodeE4M3(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 0xf;
  const m = b & 0x7;
  if (e === 0) return sign * m * 2 ** -9;
  if (e === 0xf && m === 0x7) return NaN;
  return sign * (1 + m / 8) * 2 ** (e - 7);
}

/** OCP FP8 E5M2 byte to its value (before the vector's scale): IEEE-like, exponent 31 is Inf/NaN. */
export function decodeE5M2(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 2) & 0x1f;
  const m = b & 0x3;
  if (e === 0) return sign * m * 2 ** -16;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 4) * 2 ** (e - 15);
}

function table(size: number, decode: (bits: number) => number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = decode(i);
  return out;
}

let f16Table: Float32Array | undefined;
let e4m3Table: Float32Array | undefined;
let e5m2Table: Float32Array | undefined;

/** Writes the unscaled values d of the code starting at element `base` into `out` (dim long). */
type CodeDecoder = (base: number, out: Float32Array) => void;

/** A typed view of `codes`; copies only when the bytes are not aligned for the element type. */
function viewOf<T>(codes: Uint8Array, bytesPerElement: number, make: (b: ArrayBuffer, off: number, len: number) => T): T {
  if (codes.byteOffset % bytesPerElement === 0) {
    return make(codes.buffer as ArrayBuffer, codes.byteOffset, Math.floor(codes.byteLength / bytesPerElement));
  }
  const copy = codes.slice();
  return make(copy.buffer, 0, Math.floor(copy.byteLength / bytesPerElement));
}

function lookupDecoder(src: Uint8Array | Uint16Array, lut: Float32Array): CodeDecoder {
  return (base, out) => {
    for (let i = 0; i < out.length; i++) out[i] = lut[src[base + i]!]!;
  };
}

/** Element j · dim of the decoder's source array is the start of code j, for every codec. */
function decoderFor(codec: Exclude<ScalarCodecName, 'f32'>, codes: Uint8Array): CodeDecoder {
  switch (codec) {
    case 'f16':
      return lookupDecoder(viewOf(codes, 2, (b, o, l) => new Uint16Array(b, o, l)), (f16Table ??= table(65536, decodeF16)));
    case 'int8': {
      const src = new Int8Array(codes.buffer, codes.byteOffset, codes.byteLength);
      return (base, out) => {
        for (let i = 0; i < out.length; i++) out[i] = src[base + i]!;
      };
    }
    case 'fp8-e4m3':
      return lookupDecoder(codes, (e4m3Table ??= table(256, decodeE4M3)));
    case 'fp8-e5m2':
      return lookupDecoder(codes, (e5m2Table ??= table(256, decodeE5M2)));
  }
}

/**
 * The unscaled values of each code as (values, offset): f32 codes are read in place, the others
 * are decoded one vector at a time into a scratch array, so the metric loops below only ever see
 * two Float32Arrays.
 */
interface DecodedCodes {
  readonly values: Float32Array;
  /** Makes code j available and returns the index of its first value in `values`. */
  at(j: number): number;
}

function decodedCodes(codec: ScalarCodecName, codes: Uint8Array, dim: number): DecodedCodes {
  if (codec === 'f32') {
    const values = viewOf(codes, 4, (b, o, l) => new Float32Array(b, o, l));
    return { values, at: (j) => j * dim };
  }
  const values = new Float32Array(dim);
  const decode = decoderFor(codec, codes);
  return {
    values,
    at(j) {
      decode(j * dim, values);
      return 0;
    },
  };
}

function dotAt(q: Float32Array, d: Float32Array, base: number, dim: number): number {
  let sum = 0;
  for (let i = 0; i < dim; i++) sum += q[i]! * d[base + i]!;
  return sum;
}

function squaredNorm(d: Float32Array, base: number, dim: number): number {
  let sum = 0;
  for (let i = 0; i < dim; i++) sum += d[base + i]! * d[base + i]!;
  return sum;
}

function squaredDistance(q: Float32Array, d: Float32Array, base: number, dim: number, scale: number): number {
  let sum = 0;
  for (let i = 0; i < dim; i++) {
    const e = q[i]! - scale * d[base + i]!;
    sum += e * e;
  }
  return sum;
}

/**
 * Each byte pattern of an fp8 (or f16) code as the float kernels decode it (KERNELS.md, "Decoding"):
 * the field bits moved into a binary32 pattern, then multiplied by the rebias power of two, in
 * float32. For every valid code this is the codec's value; it is built the kernels' way so that
 * the norm of any bytes at all (a damaged code too) is the one the summing kernel computes.
 */
function kernelDecodeTable(codec: Exclude<FloatNormedCodec, 'f32'>): Float32Array {
  const bits = new Int32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  if (codec === 'f16') {
    const table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      bits[0] = (((h << 16) >> 16) << 13) & 0x8fffe000;
      table[h] = Math.fround(asFloat[0]! * 2 ** 112);
    }
    return table;
  }
  const [shift, mask, rebias] = codec === 'fp8-e4m3' ? [4, 0x87f0, 2 ** 120] : [5, 0x8fe0, 2 ** 112];
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    bits[0] = ((((b << 24) >> 24) << shift) & mask) << 16;
    table[b] = Math.fround(asFloat[0]! * rebias);
  }
  return table;
}

const kernelDecodeTables = new Map<FloatNormedCodec, Float32Array>();

/**
 * Reference of norms_<codec> (the norm scan_<codec>_cosine_normed reads) for one code of `codec`,
 * its bytes from `at` in `code`, `dim` values (the kernels pad codes with zeros to a multiple of
 * DIM_STEP): float32 √ of the sum of squares exactly as scan_<codec>_cosine sums it, in four float32
 * lanes (lane j adds, per step s, ((v0² + v1²) + (v2² + v3²)) of the values 16s + 4k + j), the lanes
 * then added as (l0 + l1) + (l2 + l3). Each operation rounded to float32 (Math.fround of a double
 * result is the float32 result for +, × and √: a double holds more than twice float32's precision),
 * so it must match the kernel bit for bit.
 */
export function referenceFloatCodeNorm(codec: FloatNormedCodec, code: Uint8Array, at: number, dim: number): number {
  const values = new Float32Array(Math.ceil(dim / DIM_STEP) * DIM_STEP);
  if (codec === 'f32') {
    const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
    for (let i = 0; i < dim; i++) values[i] = view.getFloat32(at + 4 * i, true);
  } else {
    let table = kernelDecodeTables.get(codec);
    if (table === undefined) kernelDecodeTables.set(codec, (table = kernelDecodeTable(codec)));
    for (let i = 0; i < dim; i++) values[i] = table[codec === 'f16' ? code[at + 2 * i]! | (code[at + 2 * i + 1]! << 8) : code[at + i]!]!;
  }
  const lanes = [0, 0, 0, 0];
  for (let step = 0; step < values.length; step += DIM_STEP) {
    for (let j = 0; j < 4; j++) {
      const sq = (k: number): number => {
        const v = values[step + 4 * k + j]!;
        return Math.fround(v * v);
      };
      lanes[j] = Math.fround(lanes[j]! + Math.fround(Math.fround(sq(0) + sq(1)) + Math.fround(sq(2) + sq(3))));
    }
  }
  return Math.fround(Math.sqrt(Math.fround(Math.fround(lanes[0]! + lanes[1]!) + Math.fround(lanes[2]! + lanes[3]!))));
}

/**
 * Reference of scan_<codec>_<metric>: `q` holds dim floats, `codes` n codes of dim · bytesPerDim
 * bytes, `scales` n scales (ignored for f32 and f16), and n scores go to `out`.
 */
export function referenceScan(
  codec: ScalarCodecName,
  metric: KernelMetric,
  q: Float32Array,
  codes: Uint8Array,
  scales: Float32Array,
  n: number,
  dim: number,
  out: Float32Array,
): void {
  const { values, at } = decodedCodes(codec, codes, dim);
  const scaled = isScaled(codec);
  for (let j = 0; j < n; j++) {
    const base = at(j);
    const s = scaled ? scales[j]! : 1;
    if (metric === 'dot') {
      out[j] = s * dotAt(q, values, base, dim);
    } else if (metric === 'cosine') {
      const norm = squaredNorm(values, base, dim);
      out[j] = norm > 0 ? dotAt(q, values, base, dim) / Math.sqrt(norm) : 0;
    } else {
      out[j] = -squaredDistance(q, values, base, dim, s);
    }
  }
}

/**
 * Reference of scanI8_<metric>. The integer sums are exact; the float steps replay the kernel's
 * float32 operations in the same order with Math.fround, so results must match bit for bit.
 */
export function referenceScanI8(
  metric: I8Metric,
  q: Int8Array,
  qScale: number,
  codes: Int8Array,
  scales: Float32Array,
  n: number,
  dim: number,
  out: Float32Array,
): void {
  const f = Math.fround;
  const qs = f(qScale);
  for (let j = 0; j < n; j++) {
    const base = j * dim;
    let sum = 0;
    if (metric === 'dot') {
      for (let i = 0; i < dim; i++) sum += q[i]! * codes[base + i]!;
      out[j] = f(f(qs * scales[j]!) * f(sum));
    } else {
      let norm = 0;
      for (let i = 0; i < dim; i++) {
        const c = codes[base + i]!;
        sum += q[i]! * c;
        norm += c * c;
      }
      out[j] = norm === 0 ? 0 : f(f(qs * f(sum)) / f(Math.sqrt(f(norm))));
    }
  }
}

/** Reference of scanI8_cosine_normed: scanI8_cosine's scores with each code's norm read from `norms`. */
export function referenceScanI8CosineNormed(q: Int8Array, qScale: number, codes: Int8Array, norms: Float32Array, n: number, dim: number, out: Float32Array): void {
  const f = Math.fround;
  const qs = f(qScale);
  for (let j = 0; j < n; j++) {
    const base = j * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += q[i]! * codes[base + i]!;
    out[j] = norms[j] === 0 ? 0 : f(f(qs * f(sum)) / norms[j]!);
  }
}

/** What select_at_least computes: the positions, in order, whose float32 score is at least `floor` (as float32). */
export function referenceSelectAtLeast(scores: Float32Array, floor: number): number[] {
  const line = Math.fround(floor);
  const out: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i]! >= line) out.push(i);
  return out;
}

/** What route_scores writes: each page's float64 score by `mode` (contract.ts ROUTE_*), and the least and greatest (NaN both once any is NaN). */
export function referenceRouteScores(k: Float32Array, mode: number, offset: number, qn: number, coef: Float64Array): { scores: number[]; least: number; most: number } {
  const scores: number[] = [];
  let least = Infinity;
  let most = -Infinity;
  for (let j = 0; j < k.length; j++) {
    const s = mode === ROUTE_SPHERE ? (offset + k[j]!) * coef[j]! : mode === ROUTE_WIDEN ? k[j]! + qn * coef[j]! : k[j]!;
    scores.push(s);
    if (s !== s) least = most = Number.NaN;
    if (s < least) least = s;
    if (s > most) most = s;
  }
  return { scores, least, most };
}

/** What bucket_select finds in one round over `s` (or over s[i] for the positions i in `indices`): the positions taken and kept in the order met, the counts, the least and greatest kept. */
export function referenceBucketSelect(s: Float64Array, need: number, f: number, base: number, scale: number, indices?: readonly number[]): { taken: number[]; boundary: number[]; least: number; most: number; counts: number[] } {
  const positions = indices ?? Array.from(s, (_, i) => i);
  const counts = new Array<number>(SELECT_BUCKETS).fill(0);
  const bucketOf = positions.map((i) => Math.min(SELECT_BUCKETS - 1, ((s[i]! * f - base) * scale) | 0));
  for (const b of bucketOf) counts[b]!++;
  let above = 0;
  let from = SELECT_BUCKETS - 1;
  while (above + counts[from]! < need) above += counts[from--]!;
  const whole = above + counts[from]! === need;
  const taken: number[] = [];
  const boundary: number[] = [];
  let least = Infinity;
  let most = -Infinity;
  positions.forEach((i, j) => {
    const b = bucketOf[j]!;
    if (b < from) return;
    if (b > from || whole) taken.push(i);
    else {
      if (s[i]! < least) least = s[i]!;
      if (s[i]! > most) most = s[i]!;
      boundary.push(i);
    }
  });
  return { taken, boundary, least, most, counts };
}

/** What row_max_abs computes: per row of `dim` values, the largest |x| (a NaN passed over, as `a > m` does). */
export function referenceRowMaxAbs(v: Float32Array, dim: number): number[] {
  const out: number[] = [];
  for (let at = 0; at < v.length; at += dim) {
    let m = 0;
    for (let i = at; i < at + dim; i++) if (Math.abs(v[i]!) > m) m = Math.abs(v[i]!);
    out.push(m);
  }
  return out;
}

/** What sum_multiples adds to `sums`: each value's floor(x · up + 0.5) | 0 (float64; ToInt32, so ±∞ and NaN give 0), wrapping. */
export function referenceSumMultiples(v: Float32Array, dim: number, up: number, sums: Int32Array): void {
  for (let at = 0; at < v.length; at += dim) for (let i = 0; i < dim; i++) sums[i] = (sums[i]! + (Math.floor(v[at + i]! * up + 0.5) | 0)) | 0;
}

/** What an rq kernel takes of a query besides its bit planes (KERNELS.md, "Rotated codes"). */
export interface RqQueryParams {
  /** Query bit planes (1..RQ_MAX_QUERY_BITS). */
  readonly qBits: number;
  /** Step and lowest value of the query's levels: dimension i is lo + delta · q̄_i. */
  readonly delta: number;
  readonly lo: number;
  /** m · Σ_i (lo + delta · q̄_i) over the real dimensions, m = (2^bits − 1) / 2. */
  readonly corr: number;
  /** ‖q‖² of the query (l2 only). */
  readonly qNormSq: number;
}

function popcount8(x: number): number {
  let c = 0;
  for (let v = x; v !== 0; v &= v - 1) c++;
  return c;
}

/**
 * Reference of scanRq<bits>_<metric>: `qPlanes` holds params.qBits planes of `planeBytes` bytes,
 * `codes` n codes of `stride` bytes (bits planes of planeBytes, then float32 ‖r‖² and ‖r − r̃‖),
 * `scales` the n factors F. The integer sums are exact; the float steps replay the kernel's float32
 * operations in order with Math.fround, so results must match bit for bit.
 */
export function referenceScanRq(
  bits: RqBits,
  metric: RqMetric,
  qPlanes: Uint8Array,
  params: RqQueryParams,
  codes: Uint8Array,
  scales: Float32Array,
  n: number,
  planeBytes: number,
  stride: number,
  out: Float32Array,
): void {
  const f = Math.fround;
  const view = new DataView(codes.buffer, codes.byteOffset, codes.byteLength);
  for (let j = 0; j < n; j++) {
    const base = j * stride;
    let dot = 0;
    let sumU = 0;
    for (let b = 0; b < bits; b++) {
      for (let i = 0; i < planeBytes; i++) {
        const u = codes[base + b * planeBytes + i]!;
        sumU += popcount8(u) << b;
        for (let c = 0; c < params.qBits; c++) dot += popcount8(u & qPlanes[c * planeBytes + i]!) << (b + c);
      }
    }
    const inner = f(f(f(f(params.delta) * f(dot)) + f(f(params.lo) * f(sumU))) - f(params.corr));
    const p = f(scales[j]! * inner);
    if (metric === 'dot') out[j] = p;
    else out[j] = -f(f(f(params.qNormSq) + view.getFloat32(base + bits * planeBytes, true)) - f(p + p));
  }
}

/**
 * Reference of fastScan_<metric> (KERNELS.md, "Fast scan"): `blocks` holds nBlocks blocks of
 * `groups` · 16 bytes, byte g·16 + j of a block holding nibble g of lane j in its low four bits and
 * of lane j + 16 in its high four; `scales` and `norms` hold 32 float32 per block in lane order;
 * `lut` holds groups · 16 bytes, entry n of group g at g·16 + n. Writes 32 · nBlocks scores. The
 * lane sums are exact integers and the float steps replay the kernel's float32 operations in order
 * with Math.fround, so results must match bit for bit.
 */
export function referenceFastScan(
  metric: RqMetric,
  lut: Uint8Array,
  groups: number,
  delta: number,
  bias: number,
  qNormSq: number,
  blocks: Uint8Array,
  scales: Float32Array,
  norms: Float32Array,
  nBlocks: number,
  out: Float32Array,
): void {
  const f = Math.fround;
  const blockBytes = groups * 16;
  for (let b = 0; b < nBlocks; b++) {
    for (let lane = 0; lane < 32; lane++) {
      let sum = 0;
      for (let g = 0; g < groups; g++) {
        const byte = blocks[b * blockBytes + g * 16 + (lane & 15)]!;
        const nibble = lane < 16 ? byte & 0x0f : byte >> 4;
        sum += lut[g * 16 + nibble]!;
      }
      const j = b * 32 + lane;
      const inner = f(f(f(delta) * f(sum)) + f(bias));
      const p = f(scales[j]! * inner);
      if (metric === 'dot') out[j] = p;
      else out[j] = -f(f(f(qNormSq) + norms[j]!) - f(p + p));
    }
  }
}

/**
 * hadamard_transform in place on `v` (its length a power of two, at least 4): every butterfly of span
 * 1, 2, 4, ... as `a + b` and `a − b` rounded to float32, then each value times `scale` (unless 1).
 */
export function referenceHadamard(v: Float32Array, scale: number): void {
  const f = Math.fround;
  for (let h = 1; h < v.length; h <<= 1) {
    for (let i = 0; i < v.length; i += h << 1) {
      for (let j = i; j < i + h; j++) {
        const a = v[j]!;
        const b = v[j + h]!;
        v[j] = f(a + b);
        v[j + h] = f(a - b);
      }
    }
  }
  if (f(scale) !== 1) for (let i = 0; i < v.length; i++) v[i] = f(v[i]! * f(scale));
}

/** sign_sketch over a vector: bit i % 32 of word i / 32 set exactly when component i is > 0. */
export function referenceSignSketch(v: Float32Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(v.length / 32));
  for (let i = 0; i < v.length; i++) if (v[i]! > 0) out[i >>> 5] = (out[i >>> 5]! | (1 << (i & 31))) >>> 0;
  return out;
}

/** hamming_rows for one pair: the bits in which two sketches of equal length differ. */
export function referenceHamming(a: Uint32Array, b: Uint32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) for (let bit = 0; bit < 32; bit++) d += ((a[i]! ^ b[i]!) >>> bit) & 1;
  return d;
}

/**
 * query_shift over two float32 queries of equal length (an int8 query's values are code · scale
 * rounded to float32): Σ(x − y)², Σx², Σy², Σxy in float64, each summed as the kernel does, value i
 * into partial sum i mod 4, folded (p0 + p1) + (p2 + p3).
 */
export function referenceQueryShift(x: Float32Array, y: Float32Array): [number, number, number, number] {
  const parts = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
  for (let i = 0; i < x.length; i++) {
    const p = parts[i % 4]!;
    const a = x[i]!;
    const b = y[i]!;
    p[0]! += (a - b) * (a - b);
    p[1]! += a * a;
    p[2]! += b * b;
    p[3]! += a * b;
  }
  const fold = (j: number): number => parts[0]![j]! + parts[1]![j]! + (parts[2]![j]! + parts[3]![j]!);
  return [fold(0), fold(1), fold(2), fold(3)];
}

/**
 * Σ a[k]·b[k] over k < m in eigen kernels' order (KERNELS.md, "Eigensolver steps"): the even and
 * the odd indices of the whole pairs summed apart (two lanes), added, then the odd last product.
 */
function pairSum(a: Float64Array, b: Float64Array, m: number): number {
  let even = 0;
  let odd = 0;
  const pairs = m & ~1;
  for (let k = 0; k < pairs; k += 2) {
    even += a[k]! * b[k]!;
    odd += a[k + 1]! * b[k + 1]!;
  }
  return even + odd + (pairs < m ? a[m - 1]! * b[m - 1]! : 0);
}

/** eigen_dot_axpy: returns Σ row[k]·d[k] over k < m, while e[k] += f·row[k]. */
export function referenceEigenDotAxpy(row: Float64Array, d: Float64Array, e: Float64Array, m: number, f: number): number {
  for (let k = 0; k < m; k++) e[k]! += row[k]! * f;
  return pairSum(row, d, m);
}

/** eigen_rank2: row[k] −= f·e[k] + g·d[k] over k < m. */
export function referenceEigenRank2(row: Float64Array, e: Float64Array, d: Float64Array, m: number, f: number, g: number): void {
  for (let k = 0; k < m; k++) row[k]! -= f * e[k]! + g * d[k]!;
}

/** eigen_reflect: z −= (Σ u[k]·z[k] / h)·u over k < m, z left alone where that factor is 0. */
export function referenceEigenReflect(u: Float64Array, z: Float64Array, m: number, h: number): void {
  const g = pairSum(u, z, m) / h;
  if (g === 0) return;
  for (let k = 0; k < m; k++) z[k]! -= g * u[k]!;
}
