import { makeBenchDir, removeBenchDir } from './temp-dirs.js';
import { performance } from 'node:perf_hooks';
import { MemStore } from '../src/memstore.js';
import { CODEC_NAMES, isRqCodec, type CodecName } from '../src/codec/codec.js';
import type { Metric, OpenOptions, PcaOption } from '../src/options.js';
import { exactSearch, hnswSearch } from './baselines.js';
import type { Dataset } from '../src/cli/datasets.js';
import { percentileOfSorted } from './percentile.js';

export interface StudyConfig {
  readonly codec: CodecName;
  readonly pca: PcaOption | undefined;
}

export interface StudyRow {
  /** 'memstore' rows are real stores; baselines are exact float32 search and hnswlib-node HNSW. */
  readonly kind: 'memstore' | 'exact-f32' | 'hnsw-f32';
  readonly label: string;
  readonly codec: CodecName | 'f32';
  readonly pca: string;
  /** Dimensions kept in RAM (after PCA). */
  readonly storedDim: number;
  readonly rescore: boolean;
  /** RAM of the search structure per vector (stats().bytesPerVector for memstore rows). */
  readonly bytesPerVector: number;
  /** The quantized part alone: code and scale (stats().codeBytesPerVector); equals bytesPerVector for baselines. */
  readonly codeBytesPerVector: number;
  /**
   * RAM that does not grow with the count (stats().modelBytes: PCA's or the rq rotation's axes),
   * whose share is in `bytesPerVector` at this data set's size; 0 for baselines.
   */
  readonly fixedBytes: number;
  /** Vectors the row's store held: `bytesPerVector` is its RAM over them. */
  readonly vectors: number;
  /** float32 vector bytes (4 · dim) over this row's code bytes. */
  readonly compression: number;
  /** Everything on disk per vector (memstore directory; the serialized index for HNSW; 0 for the in-RAM exact scan). */
  readonly diskBytesPerVector: number;
  readonly recall1: number;
  readonly recall10: number;
  /** 1 − recall@k: the share of the exact top-k this configuration misses. */
  readonly relativeLoss: number;
  readonly qps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly buildMs: number;
  /** Full-precision vectors read per query by rescoring, mean and p99 (0 without rescoring): error bounds let the rest go unread. */
  readonly rescoredMean: number;
  readonly rescoredP99: number;
  /** No other row has at most this RAM per vector and a strictly better recall@k (or equal recall and less RAM). */
  pareto: boolean;
  /** The same, among the rows that answer from RAM alone (no rescoring reads from disk), baselines included. */
  paretoCodesOnly: boolean;
}

export interface StudyOptions {
  readonly data: Dataset;
  readonly configs: readonly StudyConfig[];
  /** @default 10 */
  readonly k?: number;
  /** @default 'cosine' */
  readonly metric?: Metric;
  /** Vectors buffered before PCA is fitted (capped at the data size). @default 4096 */
  readonly trainSize?: number;
  /** Add the hnswlib-node baseline row. @default true */
  readonly hnsw?: boolean;
  /** Called with a line of progress. @default no-op */
  readonly onProgress?: (line: string) => void;
  /** Told the steps done of all (baselines and configurations) as each ends, for a progress bar. @default none */
  readonly onStep?: (done: number, total: number) => void;
  /** Steps the caller runs after the study (the index sweep's stores), counted in the total onStep is told and in the time left the lines give. @default 0 */
  readonly laterSteps?: number;
}

/** The steps runStudy() counts for itself: the ground truth, the HNSW baseline when asked, and each configuration. */
export function studySteps(configs: number, hnsw: boolean): number {
  return configs + 1 + (hnsw ? 1 : 0);
}

/** The ground truth of a study, from exact float32 search (baselines.ts, exactSearch). */
export interface Truth {
  /** Each query's rows that score at least its k-th best (its top k and the rows tied with the k-th). */
  readonly tiedK: readonly (readonly number[])[];
  /** The same at rank 1. */
  readonly tied1: readonly (readonly number[])[];
}

export interface StudyResult {
  readonly rows: StudyRow[];
  readonly truth: Truth;
}

/**
 * Recall at `k` of `found` (a search's rows, best first): the share of the min(k, `stored`) true
 * neighbours found, where any row that scores at least the k-th best exact score (`atLeast`) is one
 * (ties: among equal vectors, any k of them is the exact answer).
 */
export function recallAt(found: readonly number[], atLeast: readonly number[], k: number, stored: number): number {
  const t = new Set(atLeast);
  let hit = 0;
  for (const id of new Set(found.slice(0, k))) if (t.has(id)) hit++;
  const possible = Math.min(k, stored);
  return possible === 0 ? 1 : Math.min(hit, possible) / possible;
}

/** Queries per second (one in flight: 1 / the mean time), p50 and p99 in µs, of per-query times in ms. */
export function latency(times: readonly number[]): { qps: number; p50Us: number; p99Us: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const total = times.reduce((a, b) => a + b, 0);
  return { qps: total === 0 ? 0 : (times.length * 1000) / total, p50Us: percentileOfSorted(sorted, 0.5) * 1000, p99Us: percentileOfSorted(sorted, 0.99) * 1000 };
}

function recalls(found: readonly (readonly number[])[], truth: Truth, k: number, stored: number): { recall1: number; recall10: number } {
  let r1 = 0;
  let rk = 0;
  found.forEach((f, i) => {
    r1 += recallAt(f, truth.tied1[i]!, 1, stored);
    rk += recallAt(f, truth.tiedK[i]!, k, stored);
  });
  return { recall1: r1 / found.length, recall10: rk / found.length };
}

/** How tables and charts name a configuration: `int8 pca=none`, `int8 pca=128d`. */
export function configLabel(config: StudyConfig): string {
  return `${config.codec} pca=${pcaLabel(config.pca)}`;
}

export function pcaLabel(pca: PcaOption | undefined): string {
  if (pca === undefined) return 'none';
  return 'dims' in pca ? `${pca.dims}d` : `${pca.variance * 100}%var`;
}

function dominated(r: StudyRow, rows: readonly StudyRow[]): boolean {
  return rows.some(
    (o) => o !== r && o.bytesPerVector <= r.bytesPerVector && o.recall10 >= r.recall10 &&
      (o.bytesPerVector < r.bytesPerVector || o.recall10 > r.recall10),
  );
}

/** Marks the rows no other row beats on both RAM per vector and recall@k, overall and without rescoring. */
export function markPareto(rows: StudyRow[]): void {
  const codesOnly = rows.filter((r) => !r.rescore);
  for (const r of rows) {
    r.pareto = !dominated(r, rows);
    r.paretoCodesOnly = !r.rescore && !dominated(r, codesOnly);
  }
}

/** How the study (and the index sweep) builds a store of `config` over `data`: durability and the cache off. */
export function buildOptions(data: Dataset, config: StudyConfig, metric: Metric, trainSize: number): OpenOptions {
  return {
    dim: data.dim,
    metric,
    codec: config.codec,
    durability: 'none',
    cache: false,
    ...(config.pca === undefined ? {} : { pca: config.pca }),
    // PCA and rq codes fit a model on the first trainSize vectors: fewer than the data set, or the store never trains.
    ...(config.pca === undefined && !isRqCodec(config.codec) ? {} : { trainSize: Math.min(trainSize, data.docs.length) }),
  };
}

async function measureStore(data: Dataset, config: StudyConfig, metric: Metric, k: number, trainSize: number, truth: Truth, progress: (l: string) => void, tag: string): Promise<StudyRow[]> {
  const label = configLabel(config);
  progress(`${tag} building ${label}`);
  const dir = makeBenchDir('memstore-bench-');
  const rows: StudyRow[] = [];
  try {
    const started = performance.now();
    const built = await MemStore.open(dir, buildOptions(data, config, metric, trainSize));
    for (let at = 0; at < data.docs.length; at += 1000) {
      await built.add(data.docs.slice(at, at + 1000).map((vector, j) => ({ id: String(at + j), vector })));
    }
    // Closing checkpoints: the figures are those of the store at rest, as a user reopens it.
    await built.close();
    const buildMs = performance.now() - started;
    const store = await MemStore.open(dir, { cache: false });
    try {
      const stats = store.stats();
      for (const rescore of [false, true]) {
        progress(`${tag} querying ${label} rescore=${rescore ? 'on' : 'off'}`);
        for (const q of data.queries.slice(0, 20)) await store.search(q, { k, rescore });
        const times: number[] = [];
        const found: number[][] = [];
        const read: number[] = [];
        const readSoFar = () => {
          const r = store.stats().rescoring;
          return r.candidates - r.skipped;
        };
        for (const q of data.queries) {
          const before = readSoFar();
          const s = performance.now();
          const hits = await store.search(q, { k, rescore });
          times.push(performance.now() - s);
          read.push(readSoFar() - before);
          found.push(hits.map((h) => Number(h.id)));
        }
        read.sort((a, b) => a - b);
        const r = recalls(found, truth, k, data.docs.length);
        rows.push({
          kind: 'memstore',
          label: `${label} rescore=${rescore ? 'on' : 'off'}`,
          codec: config.codec,
          pca: pcaLabel(config.pca),
          storedDim: stats.storedDim,
          rescore,
          bytesPerVector: stats.bytesPerVector,
          codeBytesPerVector: stats.codeBytesPerVector,
          fixedBytes: stats.modelBytes,
          vectors: stats.count,
          compression: (data.dim * 4) / stats.codeBytesPerVector,
          diskBytesPerVector: stats.diskBytesPerVector,
          ...r,
          relativeLoss: 1 - r.recall10,
          ...latency(times),
          buildMs,
          rescoredMean: read.reduce((a, b) => a + b, 0) / Math.max(1, read.length),
          rescoredP99: read.length === 0 ? 0 : percentileOfSorted(read, 0.99),
          pareto: false,
          paretoCodesOnly: false,
        });
      }
    } finally {
      await store.close();
    }
  } finally {
    removeBenchDir(dir);
  }
  return rows;
}

/**
 * The trade-off study: every configuration built as a real MemStore in a temporary directory (so
 * the figures include everything the store really keeps), measured with and without rescoring
 * against exact search, beside the exact float32 and hnswlib-node HNSW baselines.
 */
export async function runStudy(options: StudyOptions): Promise<StudyResult> {
  const { data, configs } = options;
  const k = options.k ?? 10;
  const metric = options.metric ?? 'cosine';
  const progress = options.onProgress ?? (() => undefined);
  const own = studySteps(configs.length, options.hnsw !== false);
  const steps = own + (options.laterSteps ?? 0);
  const started = performance.now();

  progress(`[1/${steps}] exact float32 search (ground truth): ${data.queries.length} queries over ${data.docs.length} vectors`);
  const exact = exactSearch(data, metric, k);
  const truth: Truth = { tiedK: exact.tiedK, tied1: exact.tied1 };
  const rows: StudyRow[] = [
    {
      kind: 'exact-f32',
      label: 'baseline: exact float32 scan (JS)',
      codec: 'f32',
      pca: 'none',
      storedDim: data.dim,
      rescore: false,
      bytesPerVector: data.dim * 4,
      codeBytesPerVector: data.dim * 4,
      fixedBytes: 0,
      vectors: data.docs.length,
      compression: 1,
      diskBytesPerVector: 0,
      recall1: 1,
      recall10: 1,
      relativeLoss: 0,
      ...latency(exact.times),
      buildMs: 0,
      rescoredMean: 0,
      rescoredP99: 0,
      pareto: false,
      paretoCodesOnly: false,
    },
  ];
  if (options.hnsw !== false) {
    progress(`[2/${steps}] hnswlib-node HNSW float32 (M=16, efConstruction=200)`);
    const h = hnswSearch(data, metric, k);
    const r = recalls(h.result, truth, k, data.docs.length);
    rows.push({
      kind: 'hnsw-f32',
      label: `baseline: hnswlib-node HNSW f32 (M=${h.m}, efC=${h.efConstruction}, ef=${h.efSearch})`,
      codec: 'f32',
      pca: 'none',
      storedDim: data.dim,
      rescore: false,
      bytesPerVector: h.bytesPerVector,
      codeBytesPerVector: h.bytesPerVector,
      fixedBytes: 0,
      vectors: data.docs.length,
      compression: (data.dim * 4) / h.bytesPerVector,
      diskBytesPerVector: h.bytesPerVector,
      ...r,
      relativeLoss: 1 - r.recall10,
      ...latency(h.times),
      buildMs: h.buildMs,
      rescoredMean: 0,
      rescoredP99: 0,
      pareto: false,
      paretoCodesOnly: false,
    });
  }
  const first = own - configs.length;
  for (const [i, config] of configs.entries()) {
    // The time the steps so far took, per step, times the steps left: an ETA on each step's lines.
    const done = first + i;
    options.onStep?.(done, steps);
    const perStep = (performance.now() - started) / 1000 / done;
    rows.push(...(await measureStore(data, config, metric, k, options.trainSize ?? 4096, truth, progress, `[${done + 1}/${steps}, about ${Math.ceil(perStep * (steps - done))} s left]`)));
  }
  options.onStep?.(own, steps);
  markPareto(rows);
  return { rows, truth };
}

/** Every codec x every PCA setting. */
export function matrix(pcas: readonly (PcaOption | undefined)[], codecs: readonly CodecName[] = CODEC_NAMES): StudyConfig[] {
  return pcas.flatMap((pca) => codecs.map((codec) => ({ codec, pca })));
}
