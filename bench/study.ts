import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MemStore } from '../src/memstore.js';
import type { CodecName } from '../src/codec/codec.js';
import type { Metric, PcaOption } from '../src/options.js';
import type { Dataset } from './data.js';

export interface StudyConfig {
  readonly codec: CodecName;
  readonly pca: PcaOption | undefined;
}

export interface StudyRow {
  readonly codec: CodecName;
  readonly pca: string;
  readonly rescore: boolean;
  /** RAM of the search structure per vector (stats().bytesPerVector). */
  readonly bytesPerVector: number;
  /** The quantized part alone: code and scale (stats().codeBytesPerVector). */
  readonly codeBytesPerVector: number;
  /** float32 code bytes over this row's code bytes. */
  readonly compression: number;
  readonly diskBytesPerVector: number;
  readonly recall1: number;
  readonly recall10: number;
  readonly qps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly buildMs: number;
}

export interface StudyOptions {
  readonly data: Dataset;
  readonly configs: readonly StudyConfig[];
  /** @default 10 */
  readonly k?: number;
  /** @default 'cosine' */
  readonly metric?: Metric;
  /** Vectors buffered before PCA is fitted. @default 4096 */
  readonly trainSize?: number;
  /** Called with a line of progress. @default no-op */
  readonly onProgress?: (line: string) => void;
}

function exactScore(metric: Metric, q: Float32Array, qNorm: number, x: Float32Array, xNorm: number): number {
  let d = 0;
  if (metric === 'l2') {
    for (let i = 0; i < q.length; i++) d += (q[i]! - x[i]!) ** 2;
    return -d;
  }
  for (let i = 0; i < q.length; i++) d += q[i]! * x[i]!;
  if (metric === 'dot') return d;
  return qNorm === 0 || xNorm === 0 ? 0 : d / (qNorm * xNorm);
}

/** Exact top-k row numbers per query, computed independently of memstore in float64. */
export function groundTruth(data: Dataset, metric: Metric, k: number): number[][] {
  const norms = data.docs.map((x) => Math.hypot(...x));
  return data.queries.map((q) => {
    const qNorm = Math.hypot(...q);
    const scored = data.docs.map((x, i) => ({ i, s: exactScore(metric, q, qNorm, x, norms[i]!) }));
    scored.sort((a, b) => b.s - a.s || a.i - b.i);
    return scored.slice(0, k).map((e) => e.i);
  });
}

function recallAt(found: readonly number[], truth: readonly number[], k: number): number {
  const t = new Set(truth.slice(0, k));
  let hit = 0;
  for (const id of found.slice(0, k)) if (t.has(id)) hit++;
  return hit / Math.min(k, truth.length);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

export function pcaLabel(pca: PcaOption | undefined): string {
  if (pca === undefined) return 'none';
  return 'dims' in pca ? `${pca.dims}d` : `${pca.variance * 100}%var`;
}

/**
 * Builds a real MemStore per configuration in a temporary directory, so every figure includes what
 * the store really keeps, and measures each with and without rescoring against exact search.
 */
export async function runStudy(options: StudyOptions): Promise<StudyRow[]> {
  const { data, configs } = options;
  const k = options.k ?? 10;
  const metric = options.metric ?? 'cosine';
  const progress = options.onProgress ?? (() => undefined);
  progress(`ground truth: exact ${metric} top-${k} for ${data.queries.length} queries over ${data.docs.length} vectors`);
  const truth = groundTruth(data, metric, k);
  const rows: StudyRow[] = [];
  const f32CodeBytes = Math.ceil(data.dim / 16) * 16 * 4;

  for (const [i, config] of configs.entries()) {
    const label = `${config.codec} pca=${pcaLabel(config.pca)}`;
    progress(`[${i + 1}/${configs.length}] building ${label}`);
    const dir = mkdtempSync(join(tmpdir(), 'memstore-bench-'));
    try {
      const started = performance.now();
      const store = await MemStore.open(dir, {
        dim: data.dim,
        metric,
        codec: config.codec,
        durability: 'none',
        cache: false,
        ...(config.pca === undefined ? {} : { pca: config.pca, trainSize: Math.min(options.trainSize ?? 4096, data.docs.length) }),
      });
      try {
        const batch = 1000;
        for (let at = 0; at < data.docs.length; at += batch) {
          await store.add(data.docs.slice(at, at + batch).map((vector, j) => ({ id: String(at + j), vector })));
        }
        const buildMs = performance.now() - started;
        const stats = store.stats();
        for (const rescore of [false, true]) {
          progress(`[${i + 1}/${configs.length}] querying ${label} rescore=${rescore}`);
          for (const q of data.queries.slice(0, 20)) await store.search(q, { k, rescore });
          const times: number[] = [];
          let r1 = 0;
          let r10 = 0;
          const t0 = performance.now();
          for (const [qi, q] of data.queries.entries()) {
            const s = performance.now();
            const hits = await store.search(q, { k, rescore });
            times.push(performance.now() - s);
            const found = hits.map((h) => Number(h.id));
            r1 += recallAt(found, truth[qi]!, 1);
            r10 += recallAt(found, truth[qi]!, k);
          }
          const elapsed = performance.now() - t0;
          times.sort((a, b) => a - b);
          rows.push({
            codec: config.codec,
            pca: pcaLabel(config.pca),
            rescore,
            bytesPerVector: stats.bytesPerVector,
            codeBytesPerVector: stats.codeBytesPerVector,
            compression: f32CodeBytes / stats.codeBytesPerVector,
            diskBytesPerVector: stats.diskBytesPerVector,
            recall1: r1 / data.queries.length,
            recall10: r10 / data.queries.length,
            qps: (data.queries.length * 1000) / elapsed,
            p50Us: percentile(times, 0.5) * 1000,
            p99Us: percentile(times, 0.99) * 1000,
            buildMs,
          });
        }
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

/** The default matrix: every codec, without PCA and with PCA to 1/2 and 1/4 of the dimensions. */
export function defaultConfigs(dim: number): StudyConfig[] {
  const codecs: CodecName[] = ['f32', 'f16', 'int8', 'fp8-e4m3', 'fp8-e5m2'];
  const pcas: (PcaOption | undefined)[] = [undefined, { dims: Math.max(1, Math.round(dim / 2)) }, { dims: Math.max(1, Math.round(dim / 4)) }];
  return pcas.flatMap((pca) => codecs.map((codec) => ({ codec, pca })));
}

export function formatTable(rows: readonly StudyRow[], k: number): string {
  const head = `| codec | PCA | rescore | code B/vec | RAM B/vec | compression | disk B/vec | recall@1 | recall@${k} | QPS | p50 µs | p99 µs | build s |`;
  const sep = '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) =>
    `| ${r.codec} | ${r.pca} | ${r.rescore ? 'yes' : 'no'} | ${r.codeBytesPerVector.toFixed(0)} | ${r.bytesPerVector.toFixed(0)} | ` +
      `${r.compression.toFixed(2)}x | ${r.diskBytesPerVector.toFixed(0)} | ${r.recall1.toFixed(4)} | ${r.recall10.toFixed(4)} | ` +
      `${r.qps.toFixed(0)} | ${r.p50Us.toFixed(0)} | ${r.p99Us.toFixed(0)} | ${(r.buildMs / 1000).toFixed(2)} |`,
  );
  return [head, sep, ...lines].join('\n');
}
