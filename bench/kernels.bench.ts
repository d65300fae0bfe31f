import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { getScalarCodec, type ScalarCodecName } from '../src/codec/index.js';
import {
  DIM_STEP,
  FAST_SCAN_GROUP_BYTES,
  FAST_SCAN_LANES,
  FLOAT_NORMED_CODECS,
  KERNEL_CODECS,
  KERNEL_METRICS,
  RQ_BITS,
  RQ_DIM_STEP,
  kernels,
  referenceScan,
  referenceScanI8,
  referenceScanI8CosineNormed,
  int8CodeNorm,
  instantiateKernels,
  rqCodeBytes,
  rqPlaneBytes,
  type I8Metric,
  type KernelMetric,
  type Kernels,
  type RqBits,
} from '../src/kernels/index.js';
import { PageSums } from '../src/index/page-sums.js';
import { rq1Codec, rq2Codec, rq4Codec } from '../src/codec/rq.js';
import { FastScanRows } from '../src/scan/fast-scan-rows.js';
import { writeTable } from '../src/scan/fast-scan-lut.js';
import { modelMatrix, projectorOf } from '../src/pca/projector.js';
import { fitRotation } from '../src/space/rotation.js';
import { dot, squaredDistance } from '../src/vector.js';

/**
 * Micro-benchmark of the distance kernels: nanoseconds per scored vector for every codec × metric
 * (and the int8-query kernels), WebAssembly against the plain TypeScript reference, each iteration
 * scanning one contiguous block of vectors as the store does; the exact rescoring kernels
 * against vector.ts, whose numbers they reproduce; the gather kernel, which scores vectors
 * scattered over the index (a cache pool) in one call per run; and the rotated-code kernels,
 * popcount and fast scan, against the int8-query kernel they would stand in for; the builder of
 * a query's fast-scan table against writeTable; an rq query's rotation, structured and dense;
 * a page's sums made afresh, by the page-sum kernels and in JavaScript; and a page of int8 codes'
 * norms and decoding, as opening a store makes them, by the int8-row kernels and in JavaScript.
 */

export interface KernelBenchOptions {
  /** Dimensions to measure; rounded up to a multiple of 16 like the store pads them. */
  readonly dims?: readonly number[];
  /** Vectors scanned per iteration. */
  readonly vectors?: number;
  /** tinybench time budget per task in milliseconds (warmup gets a third of it). */
  readonly timeMs?: number;
  /** Where the markdown table goes, one line per call. */
  readonly write?: (line: string) => void;
}

export interface KernelBenchRow {
  readonly codec: string;
  readonly metric: string;
  readonly dim: number;
  readonly wasmNsPerVector: number;
  readonly tsNsPerVector: number;
}

function gaussian(): number {
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}

/** A random direction, like a normalized embedding. */
function randomUnitVector(dim: number): Float32Array {
  const v = Float32Array.from({ length: dim }, gaussian);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/**
 * n embedding-like vectors encoded by the real codec, so the benchmark sees the code values a
 * store holds. (Uniformly random bit patterns would be unrealistic: they make 1/16 of the fp8 and
 * 1/32 of the f16 values subnormal, and each SIMD multiply with a subnormal input takes a slow
 * microcode path on x86; see KERNELS.md.)
 */
function encodedVectors(codec: ScalarCodecName, n: number, dim: number): { codes: Uint8Array; scales: Float32Array } {
  const c = getScalarCodec(codec);
  const stride = c.codeBytes(dim);
  const codes = new Uint8Array(n * stride);
  const scales = new Float32Array(n);
  for (let j = 0; j < n; j++) scales[j] = c.encode(randomUnitVector(dim), codes.subarray(j * stride, (j + 1) * stride));
  return { codes, scales };
}

/** Median latency of a finished task in nanoseconds per vector. */
function nsPerVector(bench: Bench, name: string, vectors: number): number {
  const result = bench.getTask(name)?.result;
  if (result === undefined || !('latency' in result)) throw new Error(`benchmark task ${name} did not complete`);
  return (result.latency.p50 * 1e6) / vectors;
}

interface Case {
  readonly codec: string;
  readonly metric: string;
  readonly wasm: () => void;
  readonly ts: () => void;
}

async function measure(cases: readonly Case[], dim: number, opts: Required<KernelBenchOptions>): Promise<KernelBenchRow[]> {
  const bench = new Bench({ time: opts.timeMs, warmupTime: opts.timeMs / 3, iterations: 8, warmupIterations: 4 });
  for (const c of cases) {
    bench.add(`wasm ${c.codec} ${c.metric}`, c.wasm);
    bench.add(`ts ${c.codec} ${c.metric}`, c.ts);
  }
  await bench.run();
  return cases.map((c) => ({
    codec: c.codec,
    metric: c.metric,
    dim,
    wasmNsPerVector: nsPerVector(bench, `wasm ${c.codec} ${c.metric}`, opts.vectors),
    tsNsPerVector: nsPerVector(bench, `ts ${c.codec} ${c.metric}`, opts.vectors),
  }));
}

/** Copies `data` into linear memory; the caller frees (ptr, data.byteLength). */
function place(k: Kernels, data: ArrayBufferView): number {
  const ptr = k.memory.alloc(data.byteLength);
  k.memory.u8().set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ptr);
  return ptr;
}

async function benchCodec(codec: ScalarCodecName, dim: number, opts: Required<KernelBenchOptions>): Promise<KernelBenchRow[]> {
  const k = kernels();
  const n = opts.vectors;
  const q = randomUnitVector(dim);
  const { codes, scales } = encodedVectors(codec, n, dim);
  const out = new Float32Array(n);
  const norms = new Float32Array(n);
  const ptrs = [q, codes, scales, out, norms].map((a) => [place(k, a), a.byteLength] as const);
  const [qPtr, codesPtr, scalesPtr, outPtr, normsPtr] = ptrs.map(([ptr]) => ptr) as [number, number, number, number, number];
  try {
    const cases = KERNEL_METRICS.map(
      (metric: KernelMetric): Case => ({
        codec,
        metric,
        wasm: () => k.scan(codec, metric, qPtr, codesPtr, scalesPtr, n, dim, outPtr),
        ts: () => referenceScan(codec, metric, q, codes, scales, n, dim, out),
      }),
    );
    const normed = FLOAT_NORMED_CODECS.find((c) => c === codec);
    if (normed !== undefined) {
      // What a cosine store keeps beside these codes (PageStore.cosineNorms); the reference is the summing one.
      k.floatNorms(normed, codesPtr, n, dim, normsPtr);
      const scan = k.scanCosineNormedFunction(normed);
      cases.push({
        codec,
        metric: 'cosine, stored norms',
        wasm: () => scan(qPtr, codesPtr, normsPtr, n, dim, outPtr),
        ts: () => referenceScan(codec, 'cosine', q, codes, scales, n, dim, out),
      });
    }
    return await measure(cases, dim, opts);
  } finally {
    for (const [ptr, bytes] of ptrs.reverse()) k.memory.free(ptr, bytes);
  }
}

async function benchInt8Query(dim: number, opts: Required<KernelBenchOptions>): Promise<KernelBenchRow[]> {
  const k = kernels();
  const n = opts.vectors;
  const query = encodedVectors('int8', 1, dim);
  const q = new Int8Array(query.codes.buffer);
  const qScale = query.scales[0]!;
  const stored = encodedVectors('int8', n, dim);
  const codes = new Int8Array(stored.codes.buffer);
  const scales = stored.scales;
  const out = new Float32Array(n);
  // What a cosine store keeps beside its int8 codes (PageStore.cosineNorms).
  const norms = Float32Array.from({ length: n }, (_, j) => int8CodeNorm(stored.codes, j * dim, dim));
  const ptrs = [q, codes, scales, out, norms].map((a) => [place(k, a), a.byteLength] as const);
  const [qPtr, codesPtr, scalesPtr, outPtr, normsPtr] = ptrs.map(([ptr]) => ptr) as [number, number, number, number, number];
  try {
    const metrics: readonly I8Metric[] = ['dot', 'cosine'];
    const cases = metrics.map(
      (metric): Case => ({
        codec: 'int8 (int8 query)',
        metric,
        wasm: () => k.scanI8(metric, qPtr, qScale, codesPtr, scalesPtr, n, dim, outPtr),
        ts: () => referenceScanI8(metric, q, qScale, codes, scales, n, dim, out),
      }),
    );
    cases.push({
      codec: 'int8 (int8 query)',
      metric: 'cosine, stored norms',
      wasm: () => k.scanI8CosineNormed(qPtr, qScale, codesPtr, normsPtr, n, dim, outPtr),
      ts: () => referenceScanI8CosineNormed(q, qScale, codes, norms, n, dim, out),
    });
    return await measure(cases, dim, opts);
  } finally {
    for (const [ptr, bytes] of ptrs.reverse()) k.memory.free(ptr, bytes);
  }
}

/** The exact rescoring kernels (float64 sums, as vector.ts) against vector.ts itself, per vector. */
async function benchExact(dim: number, opts: Required<KernelBenchOptions>): Promise<KernelBenchRow[]> {
  const k = kernels();
  const n = opts.vectors;
  const q = randomUnitVector(dim);
  const rows = Array.from({ length: n }, () => randomUnitVector(dim));
  const flat = new Float32Array(n * dim);
  rows.forEach((x, j) => flat.set(x, j * dim));
  const out = new Float64Array(2 * n);
  const ptrs = [q, flat, out].map((a) => [place(k, a), a.byteLength] as const);
  const [qPtr, xPtr, outPtr] = ptrs.map(([ptr]) => ptr) as [number, number, number];
  let sink = 0;
  try {
    const cases: Case[] = [
      {
        codec: 'f32 exact (f64 sums)',
        metric: 'dot, norm',
        wasm: () => k.exactDotNorm(qPtr, xPtr, n, dim, outPtr),
        ts: () => {
          for (const x of rows) sink += dot(q, x) + dot(x, x);
        },
      },
      {
        codec: 'f32 exact (f64 sums)',
        metric: 'l2',
        wasm: () => k.exactSquaredDistance(qPtr, xPtr, n, dim, outPtr),
        ts: () => {
          for (const x of rows) sink += squaredDistance(q, x);
        },
      },
    ];
    return await measure(cases, dim, opts);
  } finally {
    for (const [ptr, bytes] of ptrs.reverse()) k.memory.free(ptr, bytes);
    if (Number.isNaN(sink)) process.stdout.write('');
  }
}

/** Scattered codes scored three ways (int8 query, cosine): ns per vector, as the lookaside cache scores a pool. */
export interface GatherBenchRow {
  readonly dim: number;
  readonly contiguousNs: number;
  readonly gatherNs: number;
  readonly singleCallsNs: number;
}

/** Vectors per gather call, as CodeBlocks.scanSlots makes them. */
const GATHER_RUN = 16;

/**
 * Every stored vector scored in a shuffled order, as a pool's slots come: by the gather kernel in
 * runs of GATHER_RUN (an address table per run), and by one call of the contiguous kernel per
 * vector (what scanSlots did before); beside one contiguous scan of them all.
 */
async function benchGather(dim: number, opts: Required<KernelBenchOptions>): Promise<GatherBenchRow> {
  const k = kernels();
  const n = opts.vectors;
  const query = encodedVectors('int8', 1, dim);
  const stored = encodedVectors('int8', n, dim);
  const order = Array.from({ length: n }, (_, j) => j);
  for (let j = n - 1; j > 0; j--) {
    const r = Math.floor(Math.random() * (j + 1));
    [order[j], order[r]] = [order[r]!, order[j]!];
  }
  const table = new Int32Array(2 * n);
  const out = new Float32Array(n);
  const ptrs = [query.codes, stored.codes, stored.scales, out, table].map((a) => [place(k, a), a.byteLength] as const);
  const [qPtr, codesPtr, scalesPtr, outPtr, tablePtr] = ptrs.map(([ptr]) => ptr) as [number, number, number, number, number];
  const qScale = query.scales[0]!;
  const i32 = k.memory.i32();
  order.forEach((j, at) => {
    i32[(tablePtr >> 2) + 2 * at] = codesPtr + j * dim;
    i32[(tablePtr >> 2) + 2 * at + 1] = scalesPtr + 4 * j;
  });
  const gather = k.gatherI8Function('cosine');
  const single = k.scanI8Function('cosine');
  try {
    const bench = new Bench({ time: opts.timeMs, warmupTime: opts.timeMs / 3, iterations: 8, warmupIterations: 4 });
    bench.add('contiguous', () => k.scanI8('cosine', qPtr, qScale, codesPtr, scalesPtr, n, dim, outPtr));
    bench.add('gather', () => {
      for (let at = 0; at < n; at += GATHER_RUN) gather(qPtr, qScale, tablePtr + 8 * at, Math.min(GATHER_RUN, n - at), dim, outPtr + 4 * at);
    });
    bench.add('single calls', () => {
      for (let at = 0; at < n; at++) single(qPtr, qScale, codesPtr + order[at]! * dim, scalesPtr + 4 * order[at]!, 1, dim, outPtr + 4 * at);
    });
    await bench.run();
    return { dim, contiguousNs: nsPerVector(bench, 'contiguous', n), gatherNs: nsPerVector(bench, 'gather', n), singleCallsNs: nsPerVector(bench, 'single calls', n) };
  } finally {
    for (const [ptr, bytes] of ptrs.reverse()) k.memory.free(ptr, bytes);
  }
}

/** One rotated-code kernel (or the int8-query kernel it is compared with) over a run of codes. */
export interface RqBenchRow {
  readonly kernel: string;
  readonly dim: number;
  /** Codes scored per call. */
  readonly vectors: number;
  /** Bytes one stored vector takes where the kernel reads it (code, float32 scale, and the fast-scan ‖r‖²). */
  readonly bytesPerVector: number;
  readonly nsPerVector: number;
}

/** Query bit planes the popcount rq kernels score with, as a 4-bit quantized query would have. */
const RQ_BENCH_QUERY_BITS = 4;

/**
 * rq1, rq2 and rq4 (dot) by the popcount kernels (a 4-bit query, codes at their store stride,
 * rqCodeBytes) and by the fast-scan kernel (blocks of 32, a byte table per 4-bit group), beside
 * scanI8 dot, each scoring `vectors` codes back to back in one call. Random bits: neither kernel's
 * time depends on the values. At 50,000 codes the working set (3.6 MB of fast-scan rq1 at 512-d,
 * 26 MB of int8) no longer fits in the caches.
 */
async function benchRq(dim: number, vectors: number, timeMs: number): Promise<RqBenchRow[]> {
  const k = kernels();
  const n = vectors;
  const planeBytes = rqPlaneBytes(dim);
  const randomBytes = (count: number): Uint8Array => Uint8Array.from({ length: count }, () => Math.floor(Math.random() * 256));
  const nBlocks = Math.ceil(n / FAST_SCAN_LANES);
  const lanes = nBlocks * FAST_SCAN_LANES;
  const query = randomBytes(RQ_BENCH_QUERY_BITS * planeBytes);
  const scales = Float32Array.from({ length: lanes }, () => Math.random());
  const norms = Float32Array.from({ length: lanes }, () => Math.random());
  const out = new Float32Array(lanes);
  const int8Query = encodedVectors('int8', 1, dim);
  const int8Stored = encodedVectors('int8', n, dim);
  const rqCodes = RQ_BITS.map((bits) => randomBytes(n * rqCodeBytes(bits, dim)));
  const groupsOf = (bits: RqBits): number => (dim * bits) / 4;
  const fastBlocks = RQ_BITS.map((bits) => randomBytes(nBlocks * groupsOf(bits) * FAST_SCAN_GROUP_BYTES));
  const tables = RQ_BITS.map((bits) => randomBytes(groupsOf(bits) * FAST_SCAN_GROUP_BYTES));
  const arrays: ArrayBufferView[] = [query, scales, norms, out, int8Query.codes, int8Stored.codes, int8Stored.scales, ...rqCodes, ...fastBlocks, ...tables];
  const ptrs = arrays.map((a) => [place(k, a), a.byteLength] as const);
  const [qPtr, scalesPtr, normsPtr, outPtr, i8QueryPtr, i8CodesPtr, i8ScalesPtr, ...rest] = ptrs.map(([ptr]) => ptr) as [number, ...number[]];
  const rqPtrs = rest.slice(0, RQ_BITS.length);
  const blockPtrs = rest.slice(RQ_BITS.length, 2 * RQ_BITS.length);
  const tablePtrs = rest.slice(2 * RQ_BITS.length);
  const params = { qBits: RQ_BENCH_QUERY_BITS, delta: 0.01, lo: -0.5, corr: 1, qNormSq: 1 };
  try {
    const bench = new Bench({ time: timeMs, warmupTime: timeMs / 3, iterations: 8, warmupIterations: 4 });
    const int8Name = 'int8 (int8 query), dot';
    const qScale = int8Query.scales[0]!;
    bench.add(int8Name, () => k.scanI8('dot', i8QueryPtr!, qScale, i8CodesPtr!, i8ScalesPtr!, n, dim, outPtr!));
    const rqName = (bits: RqBits): string => `rq${bits} popcount (${RQ_BENCH_QUERY_BITS}-bit query), dot`;
    const fastName = (bits: RqBits): string => `rq${bits} fast scan (byte table), dot`;
    RQ_BITS.forEach((bits, i) => {
      const stride = rqCodeBytes(bits, dim);
      const codesPtr = rqPtrs[i]!;
      bench.add(rqName(bits), () => k.scanRq(bits, 'dot', qPtr, params, codesPtr, scalesPtr!, n, planeBytes, stride, outPtr!));
    });
    RQ_BITS.forEach((bits, i) => {
      const blocksPtr = blockPtrs[i]!;
      const lutPtr = tablePtrs[i]!;
      bench.add(fastName(bits), () => k.fastScan('dot', lutPtr, groupsOf(bits), 0.01, -3, 1, blocksPtr, scalesPtr!, normsPtr!, nBlocks, outPtr!));
    });
    await bench.run();
    const row = (kernel: string, bytesPerVector: number): RqBenchRow => ({ kernel, dim, vectors: n, bytesPerVector, nsPerVector: nsPerVector(bench, kernel, n) });
    return [
      row(int8Name, dim + 4),
      ...RQ_BITS.map((bits) => row(rqName(bits), rqCodeBytes(bits, dim) + 4)),
      ...RQ_BITS.map((bits) => row(fastName(bits), (groupsOf(bits) * FAST_SCAN_GROUP_BYTES) / FAST_SCAN_LANES + 8)),
    ];
  } finally {
    for (const [ptr, bytes] of ptrs.reverse()) k.memory.free(ptr, bytes);
  }
}

export function formatRqTable(rows: readonly RqBenchRow[]): string {
  const lines = ['| kernel | dim | codes per call | bytes/vec | ns/vec | int8 ns / this |', '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    const int8 = rows.find((other) => other.dim === r.dim && other.vectors === r.vectors && other.kernel.startsWith('int8'));
    const ratio = int8 === undefined ? '' : `${(int8.nsPerVector / r.nsPerVector).toFixed(2)}x`;
    lines.push(`| ${r.kernel} | ${r.dim} | ${r.vectors} | ${r.bytesPerVector} | ${r.nsPerVector.toFixed(1)} | ${ratio} |`);
  }
  return lines.join('\n');
}

export interface RqBenchOptions {
  /** Dimensions to measure (the plane bytes round them up to a multiple of 128). */
  readonly dims?: readonly number[];
  /** Codes scored per call, one table row each: one block of the store, and a scan larger than the caches. */
  readonly vectors?: readonly number[];
  /** tinybench time budget per task in milliseconds (warmup gets a third of it). */
  readonly timeMs?: number;
  readonly write?: (line: string) => void;
}

/** The rotated-code table alone (`node dist/bench/kernels.bench.js rq`); runKernelBench ends with it too. */
export async function runRqBench(options: RqBenchOptions = {}): Promise<RqBenchRow[]> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rows: RqBenchRow[] = [];
  for (const vectors of options.vectors ?? [1024, 50_000]) {
    // Rotations pad to a multiple of RQ_DIM_STEP, as the tables' bench rounds its dims: 100 is measured as 128.
    for (const requested of options.dims ?? [128, 512]) rows.push(...(await benchRq(Math.max(RQ_DIM_STEP, Math.ceil(requested / RQ_DIM_STEP) * RQ_DIM_STEP), vectors, options.timeMs ?? 300)));
  }
  write(formatRqTable(rows));
  return rows;
}

/** A block's scores filtered by a top-k's floor: ns per score, by the selection kernel and by the JavaScript loop it replaced. */
export interface SelectBenchRow {
  readonly scores: number;
  /** Share of the scores at or above the floor. */
  readonly passing: number;
  readonly wasmNs: number;
  readonly jsNs: number;
}

/**
 * One block of 1,024 gaussian scores, the floor set so that 0.4% pass (a top-40 of 10k once its floor
 * has risen): the positions at or above it found by select_at_least, or by reading every score
 * from the memory's Float32Array view, as CodeBlocks.scan did before. Both sum what they find, so
 * neither is optimized away.
 */
async function benchSelect(opts: Required<KernelBenchOptions>): Promise<SelectBenchRow> {
  const k = kernels();
  const n = 1024;
  const scores = Float32Array.from({ length: n }, () => gaussian());
  const floor = [...scores].sort((a, b) => b - a)[Math.floor(n * 0.004)]!;
  const scoresPtr = place(k, scores);
  const outPtr = k.memory.alloc(4 * n);
  let sink = 0;
  try {
    const bench = new Bench({ time: opts.timeMs, warmupTime: opts.timeMs / 3, iterations: 8, warmupIterations: 4 });
    bench.add('wasm', () => {
      const m = k.selectAtLeast(scoresPtr, n, floor, outPtr);
      const f32 = k.memory.f32();
      const i32 = k.memory.i32();
      for (let i = 0; i < m; i++) sink += f32[(scoresPtr >> 2) + i32[(outPtr >> 2) + i]!]!;
    });
    bench.add('js', () => {
      const f32 = k.memory.f32();
      const s0 = scoresPtr >> 2;
      for (let j = 0; j < n; j++) {
        const score = f32[s0 + j]!;
        if (score >= floor) sink += score;
      }
    });
    await bench.run();
    if (Number.isNaN(sink)) process.stdout.write('');
    const passing = scores.filter((x) => x >= floor).length / n;
    return { scores: n, passing, wasmNs: nsPerVector(bench, 'wasm', n), jsNs: nsPerVector(bench, 'js', n) };
  } finally {
    k.memory.free(outPtr, 4 * n);
    k.memory.free(scoresPtr, scores.byteLength);
  }
}

/** Microseconds to build one query's fast-scan table, by the table kernel and by writeTable (its reference). */
export interface TablesBenchRow {
  readonly bits: RqBits;
  readonly dim: number;
  readonly wasmUs: number;
  readonly jsUs: number;
}

/**
 * A query's fast-scan table (KERNELS.md, "The table kernel") for each bit width at `dim`, built for
 * 64 Gaussian queries in turn (a search builds it once for a new query, and a repeated one would
 * let the branch predictor learn its data): the table kernel, and writeTable in JavaScript.
 */
async function benchTables(dim: number, timeMs: number): Promise<TablesBenchRow[]> {
  const k = kernels();
  const rows: TablesBenchRow[] = [];
  const queries = Array.from({ length: 64 }, () => Float32Array.from({ length: dim }, () => gaussian() / Math.sqrt(dim)));
  for (const bits of RQ_BITS) {
    const groups = (dim * bits) / 4;
    const qPtrs = queries.map((q) => place(k, q));
    const tablePtr = k.memory.alloc(16 * groups);
    const outPtr = k.memory.alloc(16);
    const table = new Uint8Array(16 * groups);
    const build = k.fastScanTableFunction(bits);
    let i = 0;
    let j = 0;
    try {
      const bench = new Bench({ time: timeMs, warmupTime: timeMs / 3, iterations: 64, warmupIterations: 16 });
      bench.add('wasm', () => build(qPtrs[i++ & 63]!, groups, tablePtr, outPtr));
      bench.add('js', () => writeTable(bits, queries[j++ & 63]!, table));
      await bench.run();
      rows.push({ bits, dim, wasmUs: nsPerVector(bench, 'wasm', 1) / 1000, jsUs: nsPerVector(bench, 'js', 1) / 1000 });
    } finally {
      qPtrs.forEach((ptr) => k.memory.free(ptr, 4 * dim));
      k.memory.free(tablePtr, 16 * groups);
      k.memory.free(outPtr, 16);
    }
  }
  return rows;
}

export function formatTablesTable(rows: readonly TablesBenchRow[]): string {
  const lines = ['| a query\'s fast-scan table | dim | table kernel µs | writeTable (JavaScript) µs |', '|---|---:|---:|---:|'];
  for (const r of rows) lines.push(`| rq${r.bits} | ${r.dim} | ${r.wasmUs.toFixed(1)} | ${r.jsUs.toFixed(1)} |`);
  return lines.join('\n');
}

/** The tables' table alone (`node dist/bench/kernels.bench.js tables`); runKernelBench ends with it too. */
export async function runTablesBench(options: { readonly dims?: readonly number[]; readonly timeMs?: number; readonly write?: (line: string) => void } = {}): Promise<TablesBenchRow[]> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rows: TablesBenchRow[] = [];
  for (const requested of options.dims ?? [128, 512]) rows.push(...(await benchTables(Math.max(128, Math.ceil(requested / 128) * 128), options.timeMs ?? 300)));
  write(formatTablesTable(rows));
  return rows;
}

/** Microseconds to rotate one query (an rq store's model applied, Projector.uncentered) by the structured rotation and by the dense float32 matrix of the same map. */
export interface RotationBenchRow {
  readonly dim: number;
  readonly rotatedDim: number;
  readonly structuredUs: number;
  readonly denseUs: number;
}

/**
 * An rq store's rotation of a query (CODECS.md, "The rotation") at `dim`: the structured one stores
 * take since format version 6 (hadamard-rotation.ts, its steps WebAssembly kernels), and the same map
 * as the dense matrix stores made before hold (one float32 kernel pass over outDim rows), for 64
 * Gaussian queries in turn.
 */
async function benchRotation(dim: number, timeMs: number): Promise<RotationBenchRow> {
  const model = fitRotation([], dim, undefined);
  const structured = projectorOf(model);
  const dense = projectorOf({ ...model, components: modelMatrix(model), hadamard: undefined });
  const queries = Array.from({ length: 64 }, () => Float32Array.from({ length: dim }, () => gaussian() / Math.sqrt(dim)));
  let i = 0;
  let j = 0;
  try {
    const bench = new Bench({ time: timeMs, warmupTime: timeMs / 3, iterations: 64, warmupIterations: 16 });
    bench.add('structured', () => structured.uncentered(queries[i++ & 63]!));
    bench.add('dense', () => dense.uncentered(queries[j++ & 63]!));
    await bench.run();
    return { dim, rotatedDim: model.outDim, structuredUs: nsPerVector(bench, 'structured', 1) / 1000, denseUs: nsPerVector(bench, 'dense', 1) / 1000 };
  } finally {
    structured.free();
    dense.free();
  }
}

export function formatRotationTable(rows: readonly RotationBenchRow[]): string {
  const lines = ["| a query's rq rotation | dim | rotated dim | structured µs | dense matrix µs |", '|---|---:|---:|---:|---:|'];
  for (const r of rows) lines.push(`| Projector.uncentered | ${r.dim} | ${r.rotatedDim} | ${r.structuredUs.toFixed(1)} | ${r.denseUs.toFixed(1)} |`);
  return lines.join('\n');
}

/** The rotation's table alone (`node dist/bench/kernels.bench.js rotation`); runKernelBench ends with it too. */
export async function runRotationBench(options: { readonly dims?: readonly number[]; readonly timeMs?: number; readonly write?: (line: string) => void } = {}): Promise<RotationBenchRow[]> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rows: RotationBenchRow[] = [];
  for (const dim of options.dims ?? [100, 384, 512, 1024, 1536]) rows.push(await benchRotation(dim, options.timeMs ?? 300));
  write(formatRotationTable(rows));
  return rows;
}

export function formatSelectTable(row: SelectBenchRow): string {
  return [
    `| the scores of a block at or above a floor (${row.scores} scores, ${(row.passing * 100).toFixed(1)}% pass) | ns/score |`,
    '|---|---:|',
    `| select_at_least | ${row.wasmNs.toFixed(2)} |`,
    `| JavaScript loop over the Float32Array view | ${row.jsNs.toFixed(2)} |`,
  ].join('\n');
}

export function formatGatherTable(rows: readonly GatherBenchRow[]): string {
  const lines = ['| int8 query, cosine, vectors in a shuffled order | dim | ns/vec |', '|---|---:|---:|'];
  for (const r of rows) {
    lines.push(`| one contiguous scan (no shuffle) | ${r.dim} | ${r.contiguousNs.toFixed(1)} |`);
    lines.push(`| gather kernel, runs of ${GATHER_RUN} | ${r.dim} | ${r.gatherNs.toFixed(1)} |`);
    lines.push(`| one call of the contiguous kernel per vector | ${r.dim} | ${r.singleCallsNs.toFixed(1)} |`);
  }
  return lines.join('\n');
}

export function formatKernelTable(rows: readonly KernelBenchRow[]): string {
  const lines = ['| codec | metric | dim | wasm ns/vec | ts ns/vec | speedup |', '|---|---|---:|---:|---:|---:|'];
  for (const r of rows) {
    const speedup = r.tsNsPerVector / r.wasmNsPerVector;
    lines.push(
      `| ${r.codec} | ${r.metric} | ${r.dim} | ${r.wasmNsPerVector.toFixed(1)} | ${r.tsNsPerVector.toFixed(1)} | ${speedup.toFixed(1)}x |`,
    );
  }
  return lines.join('\n');
}

/** Microseconds to sum one page afresh: from its decoded members in linear memory, and through PageSums.recompute (the members decoded into a block first). */
export interface PageSumsBenchRow {
  readonly rows: number;
  readonly dim: number;
  readonly kernelsUs: number;
  readonly recomputeUs: number;
}

/**
 * A page's sums made afresh (page-sums.ts; KERNELS.md, "Page sums"), as opening makes every page's
 * and as a page is summed again after a change of grid or at its first change after opening:
 * `rows` Gaussian members of `dim`, summed by recomputeInMemory (the kernels) from a block of
 * linear memory, and by recompute(), which also takes a block and decodes the members into it
 * (here: copies them from JavaScript arrays, where a page store decodes its codes).
 */
async function benchPageSums(rows: number, dim: number, timeMs: number): Promise<PageSumsBenchRow> {
  const k = kernels();
  const members = Array.from({ length: rows }, () => Float32Array.from({ length: dim }, () => gaussian() / Math.sqrt(dim)));
  const block = k.memory.alloc(4 * rows * dim);
  const scratch = k.memory.alloc(4 * (rows + dim));
  members.forEach((v, r) => k.memory.f32().set(v, (block >> 2) + r * dim));
  const sums = new PageSums(dim, 2 * rows, {
    countOf: () => rows,
    decodeInto: (_page, out) => members.forEach((v, r) => out.set(v, r * dim)),
  });
  sums.addPage();
  try {
    const bench = new Bench({ time: timeMs, warmupTime: timeMs / 3 });
    bench.add('kernels', () => sums.recomputeInMemory(0, block, rows, scratch));
    bench.add('recompute', () => sums.recompute(0));
    await bench.run();
    return { rows, dim, kernelsUs: nsPerVector(bench, 'kernels', 1) / 1000, recomputeUs: nsPerVector(bench, 'recompute', 1) / 1000 };
  } finally {
    k.memory.free(scratch, 4 * (rows + dim));
    k.memory.free(block, 4 * rows * dim);
  }
}

/** The page sums' table (`node dist/bench/kernels.bench.js page-sums`); runKernelBench ends with it too. */
export async function runPageSumsBench(options: { readonly dims?: readonly number[]; readonly timeMs?: number; readonly write?: (line: string) => void } = {}): Promise<PageSumsBenchRow[]> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rows: PageSumsBenchRow[] = [];
  for (const dim of options.dims ?? [100, 128, 512]) rows.push(await benchPageSums(192, dim, options.timeMs ?? 300));
  const lines = ['| a page summed afresh: members x dim | page-sum kernels µs | recompute() (a block taken, the members copied in, the kernels) µs |', '|---|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.rows} x ${r.dim} | ${r.kernelsUs.toFixed(1)} | ${r.recomputeUs.toFixed(1)} |`);
  write(lines.join('\n'));
  return rows;
}

export interface FastScanRowsBenchRow {
  readonly codec: string;
  readonly dim: number;
  /** Nanoseconds to write one code into its lane and its three floats beside the blocks (the codec's code, from a JavaScript buffer). */
  readonly writeNs: number;
  /** Nanoseconds per row to decode a page of them into linear memory. */
  readonly decodeNs: number;
}

/**
 * Fast-scan rows (KERNELS.md, "Fast-scan rows"): a page of `rows` codes of random vectors written
 * into their lanes one by one, as opening a store writes every code, and the page decoded, as opening
 * and a page summed afresh decode it.
 */
async function benchFastScanRows(bits: 1 | 2 | 4, dim: number, rows: number, timeMs: number): Promise<FastScanRowsBenchRow> {
  const k = kernels();
  const codec = bits === 1 ? rq1Codec : bits === 2 ? rq2Codec : rq4Codec;
  const fast = new FastScanRows(codec, dim);
  const codes = Array.from({ length: rows }, () => {
    const code = new Uint8Array(codec.codeBytes(dim));
    return { code, scale: codec.encode(randomUnitVector(dim), code) };
  });
  const bytes = fast.bytesFor(rows);
  const area = { codes: k.memory.alloc(bytes), scales: k.memory.alloc(4 * rows), norms: k.memory.alloc(4 * rows), errs: k.memory.alloc(4 * rows) };
  const out = k.memory.alloc(4 * rows * dim);
  try {
    const bench = new Bench({ time: timeMs, warmupTime: timeMs / 3 });
    bench.add('write', () => {
      for (let r = 0; r < rows; r++) fast.writeCode(area, r, codes[r]!.code, 0, codes[r]!.scale);
    });
    bench.add('decode', () => fast.decodeRows(area, 0, rows, out));
    await bench.run();
    return { codec: codec.name, dim, writeNs: nsPerVector(bench, 'write', rows), decodeNs: nsPerVector(bench, 'decode', rows) };
  } finally {
    k.memory.free(out, 4 * rows * dim);
    for (const at of [area.scales, area.norms, area.errs]) k.memory.free(at, 4 * rows);
    k.memory.free(area.codes, bytes);
    fast.free();
  }
}

/** The fast-scan rows' table (`node dist/bench/kernels.bench.js fast-scan-rows`); runKernelBench ends with it too. */
export async function runFastScanRowsBench(options: { readonly dims?: readonly number[]; readonly timeMs?: number; readonly write?: (line: string) => void } = {}): Promise<FastScanRowsBenchRow[]> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rows: FastScanRowsBenchRow[] = [];
  // Fast-scan pages take dimensions in multiples of 32 (the rotation pads to 128).
  for (const requested of options.dims ?? [128, 512]) {
    const dim = Math.max(128, Math.ceil(requested / 128) * 128);
    for (const bits of [1, 2, 4] as const) rows.push(await benchFastScanRows(bits, dim, 192, options.timeMs ?? 300));
  }
  const lines = ['| fast-scan rows, a page of 192 | dim | write a code, ns | decode, ns per row |', '|---|---:|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.codec} | ${r.dim} | ${r.writeNs.toFixed(0)} | ${r.decodeNs.toFixed(0)} |`);
  write(lines.join('\n'));
  return rows;
}

export interface Int8RowsBenchRow {
  readonly dim: number;
  /** Nanoseconds per code: its norm by int8_norms (a call for the page) and by int8CodeNorm(). */
  readonly normsNs: number;
  readonly normsJsNs: number;
  /** Nanoseconds per code: decoded by int8_decode (a call for the page) and by the codec's decode. */
  readonly decodeNs: number;
  readonly decodeJsNs: number;
}

/**
 * Int8 rows (KERNELS.md, "Int8 rows"): a page of `rows` int8 codes of random vectors, their norms
 * and their decoding, as opening a cosine store makes them, by the kernels (one call for the page)
 * and by the JavaScript they replaced (a call per code), side by side in one run.
 */
async function benchInt8Rows(dim: number, rows: number, timeMs: number): Promise<Int8RowsBenchRow> {
  const k = kernels();
  const codec = getScalarCodec('int8');
  const stride = Math.ceil(dim / DIM_STEP) * DIM_STEP;
  const { codes, scales } = encodedVectors('int8', rows, dim);
  const codesAt = k.memory.alloc(rows * stride);
  const scalesAt = k.memory.alloc(4 * rows);
  const normsAt = k.memory.alloc(4 * rows);
  const out = k.memory.alloc(4 * rows * dim);
  try {
    const u8 = k.memory.u8();
    for (let r = 0; r < rows; r++) u8.set(codes.subarray(r * dim, (r + 1) * dim), codesAt + r * stride);
    k.memory.f32().set(scales, scalesAt >> 2);
    const bench = new Bench({ time: timeMs, warmupTime: timeMs / 3 });
    bench.add('norms', () => k.int8Norms(codesAt, rows, stride, normsAt));
    bench.add('norms js', () => {
      const mem = k.memory.u8();
      const f32 = k.memory.f32();
      for (let r = 0; r < rows; r++) f32[(normsAt >> 2) + r] = int8CodeNorm(mem, codesAt + r * stride, dim);
    });
    bench.add('decode', () => k.int8Decode(codesAt, stride, scalesAt, rows, dim, out));
    bench.add('decode js', () => {
      const mem = k.memory.u8();
      const f32 = k.memory.f32();
      for (let r = 0; r < rows; r++) codec.decode(mem.subarray(codesAt + r * stride, codesAt + r * stride + dim), f32[(scalesAt >> 2) + r]!, f32.subarray((out >> 2) + r * dim, (out >> 2) + (r + 1) * dim));
    });
    await bench.run();
    return { dim, normsNs: nsPerVector(bench, 'norms', rows), normsJsNs: nsPerVector(bench, 'norms js', rows), decodeNs: nsPerVector(bench, 'decode', rows), decodeJsNs: nsPerVector(bench, 'decode js', rows) };
  } finally {
    k.memory.free(out, 4 * rows * dim);
    k.memory.free(normsAt, 4 * rows);
    k.memory.free(scalesAt, 4 * rows);
    k.memory.free(codesAt, rows * stride);
  }
}

/** The int8 rows' table (`node dist/bench/kernels.bench.js int8-rows`); runKernelBench ends with it too. */
export async function runInt8RowsBench(options: { readonly dims?: readonly number[]; readonly timeMs?: number; readonly write?: (line: string) => void } = {}): Promise<Int8RowsBenchRow[]> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rows: Int8RowsBenchRow[] = [];
  for (const dim of options.dims ?? [100, 512]) rows.push(await benchInt8Rows(dim, 192, options.timeMs ?? 300));
  const lines = ['| int8 rows, a page of 192 | dim | norm, ns per code | in JavaScript | decode, ns per code | in JavaScript |', '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) lines.push(`| int8 | ${r.dim} | ${r.normsNs.toFixed(0)} | ${r.normsJsNs.toFixed(0)} | ${r.decodeNs.toFixed(0)} | ${r.decodeJsNs.toFixed(0)} |`);
  write(lines.join('\n'));
  return rows;
}

/** Runs the suite, writes the markdown table through `write` (stdout by default) and returns the rows. */
export async function runKernelBench(options: KernelBenchOptions = {}): Promise<KernelBenchRow[]> {
  const opts: Required<KernelBenchOptions> = {
    dims: options.dims ?? [384, 512],
    vectors: options.vectors ?? 4096,
    timeMs: options.timeMs ?? 300,
    write: options.write ?? ((line) => process.stdout.write(`${line}\n`)),
  };
  const rows: KernelBenchRow[] = [];
  const gathers: GatherBenchRow[] = [];
  for (const requested of opts.dims) {
    const dim = Math.max(DIM_STEP, Math.ceil(requested / DIM_STEP) * DIM_STEP);
    for (const codec of KERNEL_CODECS) rows.push(...(await benchCodec(codec, dim, opts)));
    rows.push(...(await benchInt8Query(dim, opts)));
    rows.push(...(await benchExact(dim, opts)));
    gathers.push(await benchGather(dim, opts));
  }
  const select = await benchSelect(opts);
  opts.write(formatKernelTable(rows));
  opts.write('');
  opts.write(formatGatherTable(gathers));
  opts.write('');
  opts.write(formatSelectTable(select));
  opts.write('');
  await runRqBench({ ...(options.dims === undefined ? {} : { dims: options.dims }), timeMs: opts.timeMs, write: opts.write });
  opts.write('');
  await runTablesBench({ ...(options.dims === undefined ? {} : { dims: options.dims }), timeMs: opts.timeMs, write: opts.write });
  opts.write('');
  await runRotationBench({ ...(options.dims === undefined ? {} : { dims: options.dims }), timeMs: opts.timeMs, write: opts.write });
  opts.write('');
  await runPageSumsBench({ ...(options.dims === undefined ? {} : { dims: options.dims }), timeMs: opts.timeMs, write: opts.write });
  opts.write('');
  await runFastScanRowsBench({ ...(options.dims === undefined ? {} : { dims: options.dims }), timeMs: opts.timeMs, write: opts.write });
  opts.write('');
  await runInt8RowsBench({ ...(options.dims === undefined ? {} : { dims: options.dims }), timeMs: opts.timeMs, write: opts.write });
  return rows;
}

export interface VersusRow {
  readonly kernel: string;
  readonly dim: number;
  /** Nanoseconds per vector, median over the rounds of each round's median: this build's kernels and the other's. */
  readonly thisNs: number;
  readonly otherNs: number;
}

/**
 * The int8-query kernels of this build against another build's (its kernels.wasm), one module
 * each over the same linear memory, on the same codes: the before and after of a kernel change,
 * side by side in one process. Rounds alternate which goes first; each is a tinybench median.
 */
export async function runVersusBench(otherWasm: string, options: { readonly dims?: readonly number[]; readonly vectors?: number; readonly rounds?: number; readonly timeMs?: number; readonly write?: (line: string) => void } = {}): Promise<VersusRow[]> {
  const write = options.write ?? ((line: string) => console.log(line));
  const n = options.vectors ?? 1024;
  const rounds = options.rounds ?? 3;
  const mine = kernels();
  const other = instantiateKernels(new WebAssembly.Module(readFileSync(otherWasm)), mine.memory);
  const int8 = getScalarCodec('int8');
  const rows: VersusRow[] = [];
  write(`int8-query kernels, this build against ${otherWasm}: ${n} codes in one call, ${rounds} rounds, ns per vector (median of the rounds' tinybench medians)`);
  write('');
  write('| kernel | dim | this build | other build | this / other |');
  write('|---|---:|---:|---:|---:|');
  for (const requested of options.dims ?? [112, 384, 512]) {
    const dim = Math.ceil(requested / DIM_STEP) * DIM_STEP;
    const query = new Int8Array(dim);
    const qScale = int8.encode(randomUnitVector(dim), new Uint8Array(query.buffer));
    const { codes, scales } = encodedVectors('int8', n, dim);
    const norms = Float32Array.from({ length: n }, (_, j) => int8CodeNorm(codes, j * dim, dim));
    const addresses = new Int32Array(2 * n);
    const qPtr = place(mine, query);
    const cPtr = place(mine, codes);
    const sPtr = place(mine, scales);
    const nPtr = place(mine, norms);
    const outPtr = mine.memory.alloc(4 * n);
    // Scattered: the gather form reads the codes in a shuffled order, as a cache pool's are.
    const order = Array.from({ length: n }, (_, j) => j).sort(() => Math.random() - 0.5);
    order.forEach((j, at) => {
      addresses[2 * at] = cPtr + j * dim;
      addresses[2 * at + 1] = sPtr + 4 * j;
    });
    const aPtr = place(mine, addresses);
    const cases: [string, (k: Kernels) => () => void][] = [
      ['cosine, stored norms', (k) => () => k.scanI8CosineNormed(qPtr, qScale, cPtr, nPtr, n, dim, outPtr)],
      ...(['dot', 'cosine'] as const).map((metric): [string, (k: Kernels) => () => void] => [metric, (k) => {
        const fn = k.scanI8Function(metric);
        return () => fn(qPtr, qScale, cPtr, sPtr, n, dim, outPtr);
      }]),
      ...(['dot', 'cosine'] as const).map((metric): [string, (k: Kernels) => () => void] => [`${metric}, gather`, (k) => {
        const fn = k.gatherI8Function(metric);
        return () => fn(qPtr, qScale, aPtr, n, dim, outPtr);
      }]),
    ];
    const times = new Map<string, { mine: number[]; other: number[] }>(cases.map(([name]) => [name, { mine: [], other: [] }]));
    for (let round = 0; round < rounds; round++) {
      const bench = new Bench({ time: options.timeMs ?? 200, warmupTime: (options.timeMs ?? 200) / 3 });
      for (const [name, make] of cases) {
        const sides: ['mine' | 'other', Kernels][] = round % 2 === 0 ? [['mine', mine], ['other', other]] : [['other', other], ['mine', mine]];
        for (const [side, k] of sides) bench.add(`${side} ${name}`, make(k));
      }
      await bench.run();
      for (const [name] of cases) {
        times.get(name)!.mine.push(nsPerVector(bench, `mine ${name}`, n));
        times.get(name)!.other.push(nsPerVector(bench, `other ${name}`, n));
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    for (const [name] of cases) {
      const t = times.get(name)!;
      const row = { kernel: name, dim, thisNs: median(t.mine), otherNs: median(t.other) };
      rows.push(row);
      write(`| ${name} | ${dim} | ${row.thisNs.toFixed(2)} | ${row.otherNs.toFixed(2)} | ${(row.thisNs / row.otherNs).toFixed(3)} |`);
    }
    for (const [ptr, bytes] of [[qPtr, dim], [cPtr, codes.byteLength], [sPtr, 4 * n], [nPtr, 4 * n], [outPtr, 4 * n], [aPtr, addresses.byteLength]] as const) mine.memory.free(ptr, bytes);
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === 'versus') {
    const other = process.argv[3];
    if (other === undefined) throw new Error('usage: node dist/bench/kernels.bench.js versus <another build>/dist/src/kernels/kernels.wasm [dims, e.g. 112,384,512] [vectors]');
    const dims = process.argv[4]?.split(',').map(Number);
    const vectors = process.argv[5] === undefined ? undefined : Number(process.argv[5]);
    await runVersusBench(other, { ...(dims === undefined ? {} : { dims }), ...(vectors === undefined ? {} : { vectors }) });
  } else if (process.argv[2] === 'rq') await runRqBench();
  else if (process.argv[2] === 'tables') await runTablesBench();
  else if (process.argv[2] === 'rotation') await runRotationBench();
  else if (process.argv[2] === 'page-sums') await runPageSumsBench();
  else if (process.argv[2] === 'fast-scan-rows') await runFastScanRowsBench();
  else if (process.argv[2] === 'int8-rows') await runInt8RowsBench();
  else await runKernelBench();
}
