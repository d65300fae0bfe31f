import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MemstoreError } from '../errors.js';
import type { ScalarCodecName } from '../codec/codec.js';
import {
  DIM_STEP,
  EXACT_DIM_STEP,
  EXACT_DOT_NORM,
  EXACT_SQDIST,
  FAST_SCAN_MAX_GROUPS,
  I8_METRICS,
  KERNEL_CODECS,
  KERNEL_METRICS,
  SELECT_AT_LEAST,
  ROUTE_SCORES,
  BUCKET_SELECT,
  INT8_NORMS,
  INT8_DECODE,
  ROW_MAX_ABS,
  SIGN_SKETCH,
  SUM_MULTIPLES,
  HADAMARD_TRANSFORM,
  MULTIPLY_SIGNS,
  GIVENS_HALVES,
  EIGEN_DOT_AXPY,
  EIGEN_RANK2,
  EIGEN_REFLECT,
  HAMMING_ROWS,
  QUERY_SHIFT_I8,
  QUERY_SHIFT_F32,
  MAX_I8_DIM,
  RQ_BITS,
  RQ_MAX_PLANE_BYTES,
  RQ_MAX_QUERY_BITS,
  RQ_METRICS,
  fastScanDecodeExportName,
  fastScanExportName,
  fastScanTableExportName,
  fastScanWriteExportName,
  gatherName,
  scanExportName,
  scanI8ExportName,
  SCAN_I8_COSINE_NORMED,
  FLOAT_NORMED_CODECS,
  floatNormsExportName,
  scanCosineNormedExportName,
  type FloatNormedCodec,
  scanRqExportName,
  type I8Metric,
  type KernelMetric,
  type RqBits,
  type RqMetric,
} from './contract.js';
import { LinearMemory } from './memory.js';
import type { RqQueryParams } from './reference.js';

export type { I8Metric, KernelMetric, RqBits, RqMetric } from './contract.js';
export type { RqQueryParams } from './reference.js';

/** A float-query kernel as exported by the module: addresses are byte offsets in linear memory. */
export type ScanFn = (qPtr: number, codesPtr: number, scalesPtr: number, n: number, dim: number, outPtr: number) => void;

/** An int8-query kernel as exported by the module. */
export type ScanI8Fn = (
  qPtr: number,
  qScale: number,
  codesPtr: number,
  scalesPtr: number,
  n: number,
  dim: number,
  outPtr: number,
) => void;

/**
 * The gather form of a float-query kernel: vector j's code address and scale address are the
 * i32 pair at tablePtr + 8j (KERNELS.md, "Gather").
 */
export type GatherFn = (qPtr: number, tablePtr: number, n: number, dim: number, outPtr: number) => void;

/** The gather form of an int8-query kernel. */
export type GatherI8Fn = (qPtr: number, qScale: number, tablePtr: number, n: number, dim: number, outPtr: number) => void;

/** A rotated-code kernel as exported by the module (KERNELS.md, "Rotated codes"). */
export type ScanRqFn = (
  qPtr: number,
  qBits: number,
  delta: number,
  lo: number,
  corr: number,
  qNormSq: number,
  codesPtr: number,
  scalesPtr: number,
  n: number,
  planeBytes: number,
  stride: number,
  outPtr: number,
) => void;

/** The gather form of a rotated-code kernel: the (code address, scale address) pair of vector j at tablePtr + 8j. */
export type GatherRqFn = (
  qPtr: number,
  qBits: number,
  delta: number,
  lo: number,
  corr: number,
  qNormSq: number,
  tablePtr: number,
  n: number,
  planeBytes: number,
  outPtr: number,
) => void;

/**
 * A fast-scan kernel as exported by the module (KERNELS.md, "Fast scan"): nBlocks blocks of 32
 * codes, block b's G · 16 bytes at blocksPtr + b · G · 16, its 32 float32 factors at scalesPtr +
 * 128b and its 32 float32 ‖r‖² at normsPtr + 128b; 32 · nBlocks float32 scores written at outPtr.
 */
export type FastScanFn = (
  lutPtr: number,
  groups: number,
  delta: number,
  bias: number,
  qNormSq: number,
  blocksPtr: number,
  scalesPtr: number,
  normsPtr: number,
  nBlocks: number,
  outPtr: number,
) => void;

/**
 * The builder of a query's fast-scan table (KERNELS.md, "The table kernel"), bit for bit writeTable()
 * of src/scan/fast-scan-lut.ts: the rotated query's D = G · 4 / bits float32 at qPtr; the table's
 * G · 16 bytes written at tablePtr; delta and Σ min_g written as two f64 at outPtr.
 */
export type FastScanTableFn = (qPtr: number, groups: number, tablePtr: number, outPtr: number) => void;

/**
 * The gather form of a fast-scan kernel: vector j is the i32 quadruple at tablePtr + 16j (its
 * block's code address, its lane 0-31, the address of its float32 factor, of its float32 ‖r‖²).
 */
export type GatherFastScanFn = (
  lutPtr: number,
  groups: number,
  delta: number,
  bias: number,
  qNormSq: number,
  tablePtr: number,
  n: number,
  outPtr: number,
) => void;

/**
 * The distance kernels over their linear memory. Every address is a byte offset into `memory`.
 * Scores are "higher is closer" for every metric; KERNELS.md gives the exact definitions.
 */
export interface Kernels {
  readonly memory: LinearMemory;
  /**
   * Scores n stored vectors of `codec` against the float32 query at qPtr (dim floats), writing
   * n float32 scores at outPtr. Codes are contiguous (dim · bytesPerDim each) from codesPtr, their
   * float32 scales contiguous from scalesPtr (ignored for f32 and f16). dim must be a positive
   * multiple of 16.
   */
  scan(
    codec: ScalarCodecName,
    metric: KernelMetric,
    qPtr: number,
    codesPtr: number,
    scalesPtr: number,
    n: number,
    dim: number,
    outPtr: number,
  ): void;
  /**
   * Same for an int8 query (dim int8 codes at qPtr, scale qScale) against int8 codes, with exact
   * integer accumulation. dim must also be at most MAX_I8_DIM.
   */
  scanI8(
    metric: I8Metric,
    qPtr: number,
    qScale: number,
    codesPtr: number,
    scalesPtr: number,
    n: number,
    dim: number,
    outPtr: number,
  ): void;
  /**
   * Exact scores for rescoring: n float32 vectors contiguous from xPtr (dim floats each, zero
   * padded to a multiple of EXACT_DIM_STEP) against the float32 query at qPtr, accumulated in
   * float64 exactly as vector.ts's dot() does. Writes n float64 pairs (q · x, ‖x‖²) at outPtr.
   */
  exactDotNorm(qPtr: number, xPtr: number, n: number, dim: number, outPtr: number): void;
  /** As exactDotNorm, writing n float64 ‖q − x‖², exactly as vector.ts's squaredDistance(). */
  exactSquaredDistance(qPtr: number, xPtr: number, n: number, dim: number, outPtr: number): void;
  /** The unchecked export behind scan(codec, metric, …), for callers that validate once. */
  scanFunction(codec: ScalarCodecName, metric: KernelMetric): ScanFn;
  /** The unchecked export behind scanI8(metric, …). */
  scanI8Function(metric: I8Metric): ScanI8Fn;
  /**
   * scanI8('cosine', …) with each code's norm (int8CodeNorm()) at normsPtr in place of its scale,
   * unchecked: the same scores bit for bit, without summing Σc² from the codes (KERNELS.md).
   */
  readonly scanI8CosineNormed: ScanI8Fn;
  /**
   * scan(codec, 'cosine', …) with each code's norm (floatNorms()) at scalesPtr in place of its
   * scale, unchecked: the same scores bit for bit, without summing the squares of the decoded
   * values (KERNELS.md, "Stored norms").
   */
  scanCosineNormedFunction(codec: FloatNormedCodec): ScanFn;
  /**
   * The norms scanCosineNormedFunction(codec) reads: of n codes back to back from codesPtr, dim
   * values each (a multiple of DIM_STEP), n float32 at outPtr, each the f32.sqrt of the sum of
   * squares scan(codec, 'cosine', …) forms for that code. Unchecked.
   */
  floatNorms(codec: FloatNormedCodec, codesPtr: number, n: number, dim: number, outPtr: number): void;
  /**
   * The gather form of scan(codec, metric, …), unchecked: each score is bit for bit the one the
   * contiguous kernel gives the same code and scale.
   */
  gatherFunction(codec: ScalarCodecName, metric: KernelMetric): GatherFn;
  /** The gather form of scanI8(metric, …), unchecked. */
  gatherI8Function(metric: I8Metric): GatherI8Fn;
  /**
   * Scores n rotated codes of `bits` bits per dimension against a query given as params.qBits bit
   * planes at qPtr, writing n float32 scores at outPtr (KERNELS.md, "Rotated codes", defines them
   * exactly; they equal referenceScanRq's bit for bit). Code j is at codesPtr + j · stride:
   * `bits` planes of planeBytes, then float32 ‖r‖² (read by l2) and float32 ‖r − r̃‖ (not read);
   * its float32 factor F_j at scalesPtr + 4j. Each query plane is planeBytes too.
   *
   * Throws RangeError unless n is a non-negative integer, planeBytes a positive multiple of 16 up
   * to RQ_MAX_PLANE_BYTES, stride an integer of at least bits · planeBytes + 8, and qBits an
   * integer from 1 to RQ_MAX_QUERY_BITS.
   */
  scanRq(
    bits: RqBits,
    metric: RqMetric,
    qPtr: number,
    params: RqQueryParams,
    codesPtr: number,
    scalesPtr: number,
    n: number,
    planeBytes: number,
    stride: number,
    outPtr: number,
  ): void;
  /** The unchecked export behind scanRq(bits, metric, …), for callers that validate once. */
  scanRqFunction(bits: RqBits, metric: RqMetric): ScanRqFn;
  /**
   * The gather form of scanRq(bits, metric, …), unchecked: each score is bit for bit the one the
   * contiguous kernel gives the same code and factor.
   */
  gatherRqFunction(bits: RqBits, metric: RqMetric): GatherRqFn;
  /**
   * Scores nBlocks fast-scan blocks of 32 codes of G 4-bit groups each against the query's table of
   * G · 16 bytes at lutPtr, writing 32 · nBlocks float32 scores at outPtr in block and lane order
   * (KERNELS.md, "Fast scan", defines them exactly; they equal referenceFastScan's bit for bit).
   * Lanes a partial last block leaves unused are scored like any other; the caller ignores them.
   *
   * Throws RangeError unless G is an integer from 1 to FAST_SCAN_MAX_GROUPS and nBlocks a
   * non-negative integer, with the blocks and the scores inside a 32-bit address space.
   */
  fastScan(
    metric: RqMetric,
    lutPtr: number,
    groups: number,
    delta: number,
    bias: number,
    qNormSq: number,
    blocksPtr: number,
    scalesPtr: number,
    normsPtr: number,
    nBlocks: number,
    outPtr: number,
  ): void;
  /** The unchecked export behind fastScan(metric, …), for callers that validate once. */
  fastScanFunction(metric: RqMetric): FastScanFn;
  /**
   * The gather form of fastScan(metric, …), unchecked: each score is bit for bit the one the block
   * kernel gives the same lane of the same block.
   */
  gatherFastScanFunction(metric: RqMetric): GatherFastScanFn;
  /** The unchecked builder of a query's fast-scan table for codes of `bits` bits (FastScanTableFn). */
  fastScanTableFunction(bits: RqBits): FastScanTableFn;
  /**
   * Writes, from outPtr (room for n int32), the positions i < n in increasing order whose float32
   * score at scoresPtr + 4i is at least `floor` (NaN never is); returns how many. Unchecked.
   */
  selectAtLeast(scoresPtr: number, n: number, floor: number, outPtr: number): number;
  /**
   * The norm of each of n int8 codes back to back from codesPtr (dim bytes each, a multiple of
   * DIM_STEP, zeros past the code) as float32 from outPtr: int8CodeNorm()'s, bit for bit
   * (KERNELS.md, "Int8 rows"). Unchecked.
   */
  int8Norms(codesPtr: number, n: number, dim: number, outPtr: number): void;
  /**
   * Decodes n int8 codes `stride` bytes apart from codesPtr (scales float32 from scalesPtr) as the
   * int8 codec does, `dim` float32 a row, rows back to back from outPtr (KERNELS.md, "Int8 rows").
   * Unchecked.
   */
  int8Decode(codesPtr: number, stride: number, scalesPtr: number, n: number, dim: number, outPtr: number): void;
  /**
   * The router's float64 score of each of n pages from the kernel's float32 scores at kPtr, by `mode`
   * (ROUTE_PLAIN, ROUTE_SPHERE, ROUTE_WIDEN) with `offset`, `qn` and the n float64 at coefPtr, from
   * outPtr; then their least and greatest at boundsPtr (both NaN if any is) (KERNELS.md, "Router
   * selection"). Unchecked.
   */
  routeScores(kPtr: number, n: number, mode: number, offset: number, qn: number, coefPtr: number, outPtr: number, boundsPtr: number): void;
  /**
   * One round of BestIndices' selection over n finite float64 scores at sPtr, or (indicesPtr not 0)
   * over the scores of the n int32 positions at indicesPtr: bucket bytes at bucketOfPtr,
   * SELECT_BUCKETS int32 counts at countsPtr, positions taken and kept from takenPtr and boundaryPtr
   * (which may be indicesPtr), and at outPtr the two counts (int32) and the least and greatest kept
   * (float64, at +8 and +16) (KERNELS.md, "Router selection"). Unchecked.
   */
  bucketSelect(sPtr: number, n: number, indicesPtr: number, need: number, f: number, base: number, scale: number, bucketOfPtr: number, countsPtr: number, takenPtr: number, boundaryPtr: number, outPtr: number): void;
  /** Writes the largest |x| of each of `rows` rows of `dim` float32 from vPtr as float32 from outPtr (NaN passed over). Unchecked. */
  rowMaxAbs(vPtr: number, rows: number, dim: number, outPtr: number): void;
  /**
   * Adds to each of the `dim` int32 at sumsPtr, wrapping, floor(x · up + 0.5) (float64; 0 for ±∞ and
   * NaN, as `| 0` gives) of the value in that place of each of `rows` rows of `dim` float32 from vPtr,
   * every finite x · up below 2^31 in magnitude. Unchecked.
   */
  sumMultiples(vPtr: number, rows: number, dim: number, up: number, sumsPtr: number): void;
  /**
   * Writes the sign sketch of the words · 32 float32 at vPtr (zeros past the vector) as `words`
   * uint32 at outPtr: bit b of word w is set when float 32w + b is > 0. Unchecked.
   */
  signSketch(vPtr: number, words: number, outPtr: number): void;
  /**
   * Writes, as int32 from outPtr, how many bits each of n rows of `step` · 128 bits (back to back
   * from rowsPtr) differs in from the `step` · 128 bits at qPtr. Unchecked.
   */
  hammingRows(rowsPtr: number, n: number, step: number, qPtr: number, outPtr: number): void;
  /**
   * Decodes rows first..first+count−1 of the fast-scan blocks of `bits`-bit codes at blocksPtr
   * (`groups` groups a block; row r's factor F at scalesPtr + 4r) as the codec decodes them, one row
   * of groups · 4 / bits float32 after another from outPtr; `tablePtr`: FAST_SCAN_DECODE_TABLE_BYTES
   * of scratch (KERNELS.md, "Fast-scan rows"). Unchecked.
   */
  fastScanDecode(bits: RqBits, blocksPtr: number, scalesPtr: number, first: number, count: number, groups: number, tablePtr: number, outPtr: number): void;
  /**
   * Writes the `bits`-bit code whose bit planes (`planeBytes` apart, then its ‖r‖² and ‖e‖ as float32)
   * are at planesPtr into the lane of `row` of the fast-scan blocks at blocksPtr, `groups` groups a
   * block (the other lanes stay), and `scale`, ‖r‖² and ‖e‖ as float32 at scalesPtr, normsPtr and
   * errsPtr + 4 · row (KERNELS.md, "Fast-scan rows"). Unchecked.
   */
  fastScanWrite(bits: RqBits, planesPtr: number, planeBytes: number, groups: number, blocksPtr: number, row: number, scale: number, scalesPtr: number, normsPtr: number, errsPtr: number): void;
  /**
   * Writes Σ(x − y)², Σx², Σy², Σxy as four float64 at outPtr, x the n int8 codes at aPtr times
   * scaleA rounded to float32 each, y those at bPtr times scaleB (both scales float32 values, as
   * int8 codes have); n a multiple of SHIFT_DIM_STEP,
   * zeros past the queries. The sums' order is fixed (KERNELS.md, "Query shift"). Unchecked.
   */
  queryShiftI8(aPtr: number, bPtr: number, scaleA: number, scaleB: number, n: number, outPtr: number): void;
  /** queryShiftI8() for two float32 queries of n values, in the same order. Unchecked. */
  queryShiftF32(aPtr: number, bPtr: number, n: number, outPtr: number): void;
  /**
   * The unscaled Walsh–Hadamard transform of the n float32 at ptr in place, then each times `scale`
   * (KERNELS.md, "Hadamard steps"); n a power of two, at least 4. Unchecked.
   */
  hadamardTransform(ptr: number, n: number, scale: number): void;
  /** The n float32 at ptr times the n float32 at signsPtr, in place; n a multiple of 4. Unchecked. */
  multiplySigns(ptr: number, signsPtr: number, n: number): void;
  /** For i < half: (x_i, x_{i+half}) → (x_i + x_{i+half}, x_i − x_{i+half}), float32 at ptr in place; half a multiple of 4. Unchecked. */
  givensHalves(ptr: number, half: number): void;
  /**
   * Σ row[k]·d[k] over k < m, returned, while e[k] += f·row[k]: float64 arrays (KERNELS.md,
   * "Eigensolver steps"). Unchecked.
   */
  eigenDotAxpy(rowPtr: number, dPtr: number, ePtr: number, m: number, f: number): number;
  /** row[k] −= f·e[k] + g·d[k] over k < m, float64 in place. Unchecked. */
  eigenRank2(rowPtr: number, ePtr: number, dPtr: number, m: number, f: number, g: number): void;
  /** z −= (Σ u[k]·z[k] / h)·u over k < m, float64 in place (nothing where the sum is 0). Unchecked. */
  eigenReflect(uPtr: number, zPtr: number, m: number, h: number): void;
}

function checkShape(n: number, dim: number, maxDim: number): void {
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!(Number.isInteger(dim) && dim > 0 && dim % DIM_STEP === 0 && dim <= maxDim)) {
    throw new RangeError(`dim must be a positive multiple of ${DIM_STEP} up to ${maxDim}, got ${dim}`);
  }
}

function checkExactShape(n: number, dim: number): void {
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!(Number.isInteger(dim) && dim > 0 && dim % EXACT_DIM_STEP === 0 && dim <= MAX_SCAN_DIM)) {
    throw new RangeError(`dim must be a positive multiple of ${EXACT_DIM_STEP} up to ${MAX_SCAN_DIM}, got ${dim}`);
  }
}

function checkRqShape(bits: RqBits, n: number, qBits: number, planeBytes: number, stride: number): void {
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!(Number.isInteger(qBits) && qBits >= 1 && qBits <= RQ_MAX_QUERY_BITS)) {
    throw new RangeError(`qBits must be an integer from 1 to ${RQ_MAX_QUERY_BITS}, got ${qBits}`);
  }
  if (!(Number.isInteger(planeBytes) && planeBytes > 0 && planeBytes % 16 === 0 && planeBytes <= RQ_MAX_PLANE_BYTES)) {
    throw new RangeError(`planeBytes must be a positive multiple of 16 up to ${RQ_MAX_PLANE_BYTES}, got ${planeBytes}`);
  }
  const least = bits * planeBytes + 8;
  if (!(Number.isInteger(stride) && stride >= least)) {
    throw new RangeError(`stride must be an integer of at least ${least} (${bits} planes of ${planeBytes} bytes and two float32), got ${stride}`);
  }
}

function checkFastScanShape(groups: number, nBlocks: number): void {
  if (!(Number.isInteger(groups) && groups >= 1 && groups <= FAST_SCAN_MAX_GROUPS)) {
    throw new RangeError(`G must be an integer from 1 to ${FAST_SCAN_MAX_GROUPS}, got ${groups}`);
  }
  if (!(Number.isInteger(nBlocks) && nBlocks >= 0)) throw new RangeError(`nBlocks must be a non-negative integer, got ${nBlocks}`);
  // The kernel's end pointers are i32 sums: past 4 GiB they would wrap.
  if (nBlocks * groups * 16 > ADDRESS_SPACE || nBlocks * 128 > ADDRESS_SPACE) {
    throw new RangeError(`${nBlocks} blocks of ${groups} groups do not fit in a 32-bit address space`);
  }
}

/** Bytes a 32-bit WebAssembly memory can address. */
const ADDRESS_SPACE = 2 ** 32;

/** A 32-bit address space: no scan can address more bytes than this. */
const MAX_SCAN_DIM = 2 ** 30;

class WasmKernels implements Kernels {
  private readonly scans: Readonly<Record<ScalarCodecName, Readonly<Record<KernelMetric, ScanFn>>>>;
  private readonly scansI8: Readonly<Record<I8Metric, ScanI8Fn>>;
  readonly scanI8CosineNormed: ScanI8Fn;
  private readonly scansCosineNormed: ReadonlyMap<FloatNormedCodec, ScanFn>;
  private readonly norms: ReadonlyMap<FloatNormedCodec, (codesPtr: number, n: number, dim: number, outPtr: number) => void>;
  private readonly gathers: Readonly<Record<ScalarCodecName, Readonly<Record<KernelMetric, GatherFn>>>>;
  private readonly gathersI8: ReadonlyMap<I8Metric, GatherI8Fn>;
  private readonly scansRq: Readonly<Record<RqBits, Readonly<Record<RqMetric, ScanRqFn>>>>;
  private readonly gathersRq: Readonly<Record<RqBits, Readonly<Record<RqMetric, GatherRqFn>>>>;
  private readonly fastScans: ReadonlyMap<RqMetric, FastScanFn>;
  private readonly gathersFastScan: ReadonlyMap<RqMetric, GatherFastScanFn>;
  private readonly tableBuilders: ReadonlyMap<RqBits, FastScanTableFn>;
  private readonly exactDot: (q: number, x: number, n: number, dim: number, out: number) => void;
  private readonly exactL2: (q: number, x: number, n: number, dim: number, out: number) => void;
  readonly selectAtLeast: (scoresPtr: number, n: number, floor: number, outPtr: number) => number;
  readonly int8Norms: (codesPtr: number, n: number, dim: number, outPtr: number) => void;
  readonly int8Decode: (codesPtr: number, stride: number, scalesPtr: number, n: number, dim: number, outPtr: number) => void;
  readonly routeScores: (kPtr: number, n: number, mode: number, offset: number, qn: number, coefPtr: number, outPtr: number, boundsPtr: number) => void;
  readonly bucketSelect: (sPtr: number, n: number, indicesPtr: number, need: number, f: number, base: number, scale: number, bucketOfPtr: number, countsPtr: number, takenPtr: number, boundaryPtr: number, outPtr: number) => void;
  readonly signSketch: (vPtr: number, words: number, outPtr: number) => void;
  readonly rowMaxAbs: (vPtr: number, rows: number, dim: number, outPtr: number) => void;
  readonly sumMultiples: (vPtr: number, rows: number, dim: number, up: number, sumsPtr: number) => void;
  readonly hadamardTransform: (ptr: number, n: number, scale: number) => void;
  readonly multiplySigns: (ptr: number, signsPtr: number, n: number) => void;
  readonly givensHalves: (ptr: number, half: number) => void;
  readonly eigenDotAxpy: (rowPtr: number, dPtr: number, ePtr: number, m: number, f: number) => number;
  readonly eigenRank2: (rowPtr: number, ePtr: number, dPtr: number, m: number, f: number, g: number) => void;
  readonly eigenReflect: (uPtr: number, zPtr: number, m: number, h: number) => void;
  readonly hammingRows: (rowsPtr: number, n: number, step: number, qPtr: number, outPtr: number) => void;
  private readonly fastScanDecoders: Readonly<Record<RqBits, (blocksPtr: number, scalesPtr: number, first: number, count: number, groups: number, tablePtr: number, outPtr: number) => void>>;
  private readonly fastScanWriters: Readonly<Record<RqBits, (planesPtr: number, planeBytes: number, groups: number, blocksPtr: number, row: number, scale: number, scalesPtr: number, normsPtr: number, errsPtr: number) => void>>;
  readonly queryShiftI8: (aPtr: number, bPtr: number, scaleA: number, scaleB: number, n: number, outPtr: number) => void;
  readonly queryShiftF32: (aPtr: number, bPtr: number, n: number, outPtr: number) => void;

  constructor(
    readonly memory: LinearMemory,
    instance: WebAssembly.Instance,
  ) {
    const exported = (name: string): ((...args: number[]) => void) => {
      const fn = instance.exports[name];
      if (typeof fn !== 'function') throw new Error(`kernels.wasm does not export ${name}`);
      return fn as (...args: number[]) => void;
    };
    // Looked up by property, not by a name built per call: a gather runs once per scattered code run,
    // and a template string and a Map lookup of it cost it about 0.2 µs each time.
    const table = <A extends string | number, B extends string, F>(as: readonly A[], bs: readonly B[], name: (a: A, b: B) => string): Record<A, Record<B, F>> =>
      Object.fromEntries(as.map((a) => [a, Object.fromEntries(bs.map((b) => [b, exported(name(a, b))]))])) as Record<A, Record<B, F>>;
    this.scans = table<ScalarCodecName, KernelMetric, ScanFn>(KERNEL_CODECS, KERNEL_METRICS, scanExportName);
    this.scansI8 = Object.fromEntries(
      I8_METRICS.map((metric) => [metric, exported(scanI8ExportName(metric))]),
    ) as Record<I8Metric, ScanI8Fn>;
    this.gathers = table<ScalarCodecName, KernelMetric, GatherFn>(KERNEL_CODECS, KERNEL_METRICS, (codec, metric) => gatherName(scanExportName(codec, metric)));
    this.scanI8CosineNormed = exported(SCAN_I8_COSINE_NORMED);
    this.scansCosineNormed = new Map(FLOAT_NORMED_CODECS.map((codec) => [codec, exported(scanCosineNormedExportName(codec))]));
    this.norms = new Map(FLOAT_NORMED_CODECS.map((codec) => [codec, exported(floatNormsExportName(codec))]));
    this.gathersI8 = new Map(I8_METRICS.map((metric) => [metric, exported(gatherName(scanI8ExportName(metric)))]));
    this.scansRq = table<RqBits, RqMetric, ScanRqFn>(RQ_BITS, RQ_METRICS, scanRqExportName);
    this.gathersRq = table<RqBits, RqMetric, GatherRqFn>(RQ_BITS, RQ_METRICS, (bits, metric) => gatherName(scanRqExportName(bits, metric)));
    this.fastScans = new Map(RQ_METRICS.map((metric) => [metric, exported(fastScanExportName(metric))]));
    this.gathersFastScan = new Map(RQ_METRICS.map((metric) => [metric, exported(gatherName(fastScanExportName(metric)))]));
    this.tableBuilders = new Map(RQ_BITS.map((bits) => [bits, exported(fastScanTableExportName(bits))]));
    this.exactDot = exported(EXACT_DOT_NORM);
    this.exactL2 = exported(EXACT_SQDIST);
    this.selectAtLeast = exported(SELECT_AT_LEAST) as unknown as (scoresPtr: number, n: number, floor: number, outPtr: number) => number;
    this.int8Norms = exported(INT8_NORMS);
    this.int8Decode = exported(INT8_DECODE);
    this.routeScores = exported(ROUTE_SCORES);
    this.bucketSelect = exported(BUCKET_SELECT);
    this.signSketch = exported(SIGN_SKETCH);
    this.rowMaxAbs = exported(ROW_MAX_ABS);
    this.sumMultiples = exported(SUM_MULTIPLES);
    this.hadamardTransform = exported(HADAMARD_TRANSFORM);
    this.multiplySigns = exported(MULTIPLY_SIGNS);
    this.givensHalves = exported(GIVENS_HALVES);
    this.eigenDotAxpy = exported(EIGEN_DOT_AXPY) as unknown as (rowPtr: number, dPtr: number, ePtr: number, m: number, f: number) => number;
    this.eigenRank2 = exported(EIGEN_RANK2);
    this.eigenReflect = exported(EIGEN_REFLECT);
    this.hammingRows = exported(HAMMING_ROWS);
    this.fastScanDecoders = { 1: exported(fastScanDecodeExportName(1)), 2: exported(fastScanDecodeExportName(2)), 4: exported(fastScanDecodeExportName(4)) };
    this.fastScanWriters = { 1: exported(fastScanWriteExportName(1)), 2: exported(fastScanWriteExportName(2)), 4: exported(fastScanWriteExportName(4)) };
    this.queryShiftI8 = exported(QUERY_SHIFT_I8);
    this.queryShiftF32 = exported(QUERY_SHIFT_F32);
  }

  exactDotNorm(qPtr: number, xPtr: number, n: number, dim: number, outPtr: number): void {
    checkExactShape(n, dim);
    this.exactDot(qPtr, xPtr, n, dim, outPtr);
  }

  exactSquaredDistance(qPtr: number, xPtr: number, n: number, dim: number, outPtr: number): void {
    checkExactShape(n, dim);
    this.exactL2(qPtr, xPtr, n, dim, outPtr);
  }

  scanFunction(codec: ScalarCodecName, metric: KernelMetric): ScanFn {
    const fn = this.scans[codec]?.[metric];
    if (fn === undefined) throw new RangeError(`no kernel for codec ${codec} and metric ${metric}`);
    return fn;
  }

  scanI8Function(metric: I8Metric): ScanI8Fn {
    const fn = this.scansI8[metric];
    if (fn === undefined) throw new RangeError(`no int8-query kernel for metric ${metric}`);
    return fn;
  }

  gatherFunction(codec: ScalarCodecName, metric: KernelMetric): GatherFn {
    const fn = this.gathers[codec]?.[metric];
    if (fn === undefined) throw new RangeError(`no kernel for codec ${codec} and metric ${metric}`);
    return fn;
  }

  scanCosineNormedFunction(codec: FloatNormedCodec): ScanFn {
    const fn = this.scansCosineNormed.get(codec);
    if (fn === undefined) throw new RangeError(`no stored-norms cosine kernel for codec ${codec}`);
    return fn;
  }

  floatNorms(codec: FloatNormedCodec, codesPtr: number, n: number, dim: number, outPtr: number): void {
    const fn = this.norms.get(codec);
    if (fn === undefined) throw new RangeError(`no norms kernel for codec ${codec}`);
    fn(codesPtr, n, dim, outPtr);
  }

  gatherI8Function(metric: I8Metric): GatherI8Fn {
    const fn = this.gathersI8.get(metric);
    if (fn === undefined) throw new RangeError(`no int8-query kernel for metric ${metric}`);
    return fn;
  }

  scanRqFunction(bits: RqBits, metric: RqMetric): ScanRqFn {
    const fn = this.scansRq[bits]?.[metric];
    if (fn === undefined) throw new RangeError(`no rq kernel for ${bits} bits and metric ${metric}`);
    return fn;
  }

  gatherRqFunction(bits: RqBits, metric: RqMetric): GatherRqFn {
    const fn = this.gathersRq[bits]?.[metric];
    if (fn === undefined) throw new RangeError(`no rq kernel for ${bits} bits and metric ${metric}`);
    return fn;
  }

  scanRq(
    bits: RqBits,
    metric: RqMetric,
    qPtr: number,
    params: RqQueryParams,
    codesPtr: number,
    scalesPtr: number,
    n: number,
    planeBytes: number,
    stride: number,
    outPtr: number,
  ): void {
    const fn = this.scanRqFunction(bits, metric);
    checkRqShape(bits, n, params.qBits, planeBytes, stride);
    const { qBits, delta, lo, corr, qNormSq } = params;
    fn(qPtr, qBits, delta, lo, corr, qNormSq, codesPtr, scalesPtr, n, planeBytes, stride, outPtr);
  }

  fastScanFunction(metric: RqMetric): FastScanFn {
    const fn = this.fastScans.get(metric);
    if (fn === undefined) throw new RangeError(`no fast-scan kernel for metric ${metric}`);
    return fn;
  }

  gatherFastScanFunction(metric: RqMetric): GatherFastScanFn {
    const fn = this.gathersFastScan.get(metric);
    if (fn === undefined) throw new RangeError(`no fast-scan kernel for metric ${metric}`);
    return fn;
  }

  fastScanTableFunction(bits: RqBits): FastScanTableFn {
    const fn = this.tableBuilders.get(bits);
    if (fn === undefined) throw new RangeError(`no fast-scan table builder for ${bits}-bit codes`);
    return fn;
  }

  fastScanDecode(bits: RqBits, blocksPtr: number, scalesPtr: number, first: number, count: number, groups: number, tablePtr: number, outPtr: number): void {
    this.fastScanDecoders[bits](blocksPtr, scalesPtr, first, count, groups, tablePtr, outPtr);
  }

  fastScanWrite(bits: RqBits, planesPtr: number, planeBytes: number, groups: number, blocksPtr: number, row: number, scale: number, scalesPtr: number, normsPtr: number, errsPtr: number): void {
    this.fastScanWriters[bits](planesPtr, planeBytes, groups, blocksPtr, row, scale, scalesPtr, normsPtr, errsPtr);
  }

  fastScan(
    metric: RqMetric,
    lutPtr: number,
    groups: number,
    delta: number,
    bias: number,
    qNormSq: number,
    blocksPtr: number,
    scalesPtr: number,
    normsPtr: number,
    nBlocks: number,
    outPtr: number,
  ): void {
    const fn = this.fastScanFunction(metric);
    checkFastScanShape(groups, nBlocks);
    fn(lutPtr, groups, delta, bias, qNormSq, blocksPtr, scalesPtr, normsPtr, nBlocks, outPtr);
  }

  scan(
    codec: ScalarCodecName,
    metric: KernelMetric,
    qPtr: number,
    codesPtr: number,
    scalesPtr: number,
    n: number,
    dim: number,
    outPtr: number,
  ): void {
    checkShape(n, dim, MAX_SCAN_DIM);
    this.scanFunction(codec, metric)(qPtr, codesPtr, scalesPtr, n, dim, outPtr);
  }

  scanI8(
    metric: I8Metric,
    qPtr: number,
    qScale: number,
    codesPtr: number,
    scalesPtr: number,
    n: number,
    dim: number,
    outPtr: number,
  ): void {
    checkShape(n, dim, MAX_I8_DIM);
    this.scanI8Function(metric)(qPtr, qScale, codesPtr, scalesPtr, n, dim, outPtr);
  }
}

/**
 * Instantiates a kernel module over `memory` (a fresh one by default). Used by kernels() with the
 * built kernels.wasm, and by the benchmark to compare tunings.
 */
export function instantiateKernels(module: WebAssembly.Module, memory = new LinearMemory()): Kernels {
  const instance = new WebAssembly.Instance(module, { env: { memory: memory.memory } });
  return new WasmKernels(memory, instance);
}

let singleton: Kernels | undefined;

/**
 * The process-wide kernels, loaded synchronously on first use from kernels.wasm next to this file
 * (written by the build step). All stores share its one linear memory.
 */
export function kernels(): Kernels {
  if (singleton === undefined) {
    // Without it (node --jitless, --no-expose-wasm) the first store's constructor threw a plain
    // ReferenceError, its files already made; open() asks for the kernels before it makes any.
    if (typeof WebAssembly === 'undefined') throw new MemstoreError('UNSUPPORTED', 'this runtime has no WebAssembly (node --jitless?); memstore scans with WebAssembly kernels');
    const file = new URL('./kernels.wasm', import.meta.url);
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      // Out of file descriptors (EMFILE) at the first open of the process, or an install missing
      // its build output: the caller's operation fails with IO, and the next one tries again.
      throw new MemstoreError('IO', `cannot read the search kernels ${fileURLToPath(file)}`, { cause: e, file: fileURLToPath(file) });
    }
    let memory: LinearMemory;
    try {
      memory = new LinearMemory();
    } catch (e) {
      // V8 reserves about 10 GiB of address space for each WebAssembly memory (its bounds checks
      // are guard pages): under a smaller `ulimit -v` (a container's, a CI's) the reservation
      // fails, and it had come out as a bare RangeError (a hostile pass).
      if (!(e instanceof RangeError)) throw e;
      throw new MemstoreError('UNSUPPORTED', 'WebAssembly could not reserve its memory: V8 needs about 10 GiB of virtual address space for it; is a virtual memory limit (ulimit -v) set below that?', { cause: e });
    }
    singleton = instantiateKernels(new WebAssembly.Module(bytes), memory);
  }
  return singleton;
}
