import { makeBenchDir, removeBenchDir } from './temp-dirs.js';
import { performance } from 'node:perf_hooks';
import type { TopLevelSpec } from 'vega-lite';
import type { Dataset } from '../src/cli/datasets.js';
import { MemStore } from '../src/memstore.js';
import type { Metric } from '../src/options.js';
import { buildHnsw } from './baselines.js';
import { equalRecallLine } from './equal-recall.js';
import { svgOf } from './report.js';
import { buildOptions, configLabel, latency, type StudyConfig, type Truth } from './study.js';

/** One point of the recall / speed trade-off: a page-index `nprobe` of one configuration, or an hnswlib-node `ef`. */
export interface SweepRow {
  readonly kind: 'pages' | 'hnsw-f32';
  /** The store's configuration (study.ts configLabel), or 'hnswlib-node'. */
  readonly config: string;
  readonly label: string;
  /** nprobe (pages) or ef (HNSW). */
  readonly effort: number;
  readonly recall10: number;
  readonly qps: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

/** One store the sweep searched: its pages, default nprobe and RAM per vector. */
export interface SweepStore {
  readonly config: string;
  readonly pages: number;
  readonly defaultProbes: number;
  readonly maxPage: number;
  readonly bytesPerVector: number;
  /** RAM that does not grow with the count: the model (stats().modelBytes), shared out in `bytesPerVector`. */
  readonly fixedBytes: number;
  /** Vectors the store held. */
  readonly vectors: number;
}

export interface SweepResult {
  readonly rows: SweepRow[];
  readonly stores: SweepStore[];
}

export interface SweepOptions {
  readonly data: Dataset;
  /** The study's ground truth (study.ts, Truth): a row counts as found when it scores at least the k-th best. */
  readonly truth: Truth;
  readonly k: number;
  readonly metric: Metric;
  readonly hnsw: boolean;
  /** The configurations swept, each a store of its own. @default int8 without PCA */
  readonly configs?: readonly StudyConfig[];
  /** Vectors PCA and rq codes train on (the study's). @default 4096 */
  readonly trainSize?: number;
  readonly onProgress?: (line: string) => void;
  /** Told after each store of `configs` and after hnswlib-node's sweep how many of those steps are done. @default none */
  readonly onStep?: (done: number) => void;
}

/** The steps runIndexSweep() tells onStep of: a store per configuration, and hnswlib-node's sweep when asked. */
export function sweepSteps(configs: number, hnsw: boolean): number {
  return configs + (hnsw ? 1 : 0);
}

/**
 * Pages of at most this many vectors for a store of `n`: the store's default (192) from 36,864
 * vectors on, smaller below so that a small data set still has pages to probe (about √n / 1.0 of them).
 */
export function sweepMaxPage(n: number): number {
  return Math.max(16, Math.min(192, Math.round(Math.sqrt(n))));
}

/** Recall as the study takes it (study.ts, recallAt): of `possible`, the true neighbours there are to find, min(k, n) a query. */
function timed(times: number[], found: number, possible: number): Pick<SweepRow, 'recall10' | 'qps' | 'p50Us' | 'p99Us'> {
  return { recall10: possible === 0 ? 1 : found / possible, ...latency(times) };
}

/**
 * The index's recall against speed, per configuration: a store of each (rescoring on, cache off)
 * whose codes are clustered into pages from the start (`pages.from` 1, `maxPage` from
 * sweepMaxPage()), searched with `nprobe` doubling from 1 to every page; and hnswlib-node float32
 * (M 16, efConstruction 200) with `ef` doubling from k to 16k. One query in flight, single thread, one run.
 */
export async function runIndexSweep(options: SweepOptions): Promise<SweepResult> {
  const { data, truth, k, metric } = options;
  const progress = options.onProgress ?? (() => undefined);
  const maxPage = sweepMaxPage(data.docs.length);
  const rows: SweepRow[] = [];
  const stores: SweepStore[] = [];
  const truthSets = truth.tiedK.map((t) => new Set(t));
  // A store of fewer than k vectors has fewer than k to find: recall was found / (queries · k), 0.1 for one vector.
  const possible = data.queries.length * Math.min(k, data.docs.length);
  for (const config of options.configs ?? [{ codec: 'int8', pca: undefined }]) {
    const label = configLabel(config);
    const dir = makeBenchDir('memstore-sweep-');
    try {
      progress(`index sweep: building ${label} with pages of at most ${maxPage}`);
      const built = await MemStore.open(dir, { ...buildOptions(data, config, metric, options.trainSize ?? 4096), pages: { from: 1, maxPage } });
      for (let at = 0; at < data.docs.length; at += 1000) await built.add(data.docs.slice(at, at + 1000).map((vector, j) => ({ id: String(at + j), vector })));
      await built.close();
      const store = await MemStore.open(dir, { cache: false, pages: { from: 1, maxPage } });
      try {
        const s = store.stats();
        stores.push({ config: label, pages: s.pages, defaultProbes: s.nprobe, maxPage, bytesPerVector: s.bytesPerVector, fixedBytes: s.modelBytes, vectors: s.count });
        for (let nprobe = 1; ; nprobe = Math.min(2 * nprobe, s.pages)) {
          progress(`index sweep: ${label}, nprobe ${nprobe} of ${s.pages} pages`);
          for (const q of data.queries.slice(0, 20)) await store.search(q, { k, nprobe });
          const times: number[] = [];
          let found = 0;
          for (const [i, q] of data.queries.entries()) {
            const t = performance.now();
            const hits = await store.search(q, { k, nprobe });
            times.push(performance.now() - t);
            for (const h of hits) if (truthSets[i]!.has(Number(h.id))) found++;
          }
          rows.push({ kind: 'pages', config: label, label: `memstore ${label} pages, nprobe ${nprobe}${nprobe === s.nprobe ? ' (default)' : ''}`, effort: nprobe, ...timed(times, found, possible) });
          if (nprobe >= s.pages) break;
        }
      } finally {
        await store.close();
      }
    } finally {
      removeBenchDir(dir);
    }
    options.onStep?.(stores.length);
  }
  if (options.hnsw) {
    progress('index sweep: hnswlib-node (M 16, efConstruction 200)');
    const index = buildHnsw(data.docs, data.dim, metric);
    const queries = data.queries.map((q) => Array.from(q));
    for (let ef = k; ef <= 16 * k; ef *= 2) {
      index.setEf(ef);
      const times: number[] = [];
      let found = 0;
      queries.forEach((q, i) => {
        const t = performance.now();
        const { neighbors } = index.searchKnn(q, Math.min(k, data.docs.length));
        times.push(performance.now() - t);
        for (const id of neighbors) if (truthSets[i]!.has(id)) found++;
      });
      rows.push({ kind: 'hnsw-f32', config: 'hnswlib-node', label: `hnswlib-node HNSW f32, ef ${ef}`, effort: ef, ...timed(times, found, possible) });
    }
    options.onStep?.(stores.length + 1);
  }
  return { rows, stores };
}

export function formatSweep(sweep: SweepResult, k: number): string {
  const head = `| search | recall@${k} | QPS | p50 µs | p99 µs |`;
  const lines = sweep.rows.map((r) => `| ${r.label} | ${r.recall10.toFixed(4)} | ${r.qps.toFixed(0)} | ${r.p50Us.toFixed(0)} | ${r.p99Us.toFixed(0)} |`);
  const stores = sweep.stores.map((st) => `${st.config}: ${st.pages} pages of at most ${st.maxPage} vectors, ${st.bytesPerVector.toFixed(0)} B per vector, default nprobe ${st.defaultProbes}`);
  // Each configuration's nprobe sweep against hnswlib-node's ef sweep at equal recall (bench/equal-recall.ts).
  const hnsw = sweep.rows.filter((r) => r.kind === 'hnsw-f32').map((r) => ({ setting: `ef ${r.effort}`, recall: r.recall10, qps: r.qps }));
  const configs = [...new Set(sweep.rows.filter((r) => r.kind === 'pages').map((r) => r.config))];
  const pointsOf = (config: string) => sweep.rows.filter((r) => r.kind === 'pages' && r.config === config).map((r) => ({ recall: r.recall10, qps: r.qps }));
  const ratios = hnsw.length === 0 || configs.length === 0 ? [] : ['', ...configs.map((c) => equalRecallLine(`memstore ${c}`, pointsOf(c), hnsw, [0.95, 0.99]))];
  return [`The index, rescoring on, against hnswlib-node's ef (${stores.join('; ')}):`, '', head, '|---|---:|---:|---:|---:|', ...lines, ...ratios].join('\n');
}

/** Recall@k against queries per second: the page index's nprobe sweep of each configuration beside hnswlib-node's ef sweep. */
export async function renderSweepChart(sweep: SweepResult, k: number, subtitle: readonly string[]): Promise<string | undefined> {
  const values = sweep.rows.map((r) => ({ series: r.kind === 'pages' ? `memstore ${r.config} (nprobe)` : 'hnswlib-node f32 (ef)', qps: r.qps, recall: r.recall10, effort: r.effort, label: String(r.effort) }));
  const x = { field: 'recall', type: 'quantitative' as const, scale: { zero: false }, title: `recall@${k} against exact float32` };
  const y = { field: 'qps', type: 'quantitative' as const, scale: { type: 'log' as const }, title: 'queries per second (log scale, one query in flight)' };
  // A line per configuration: up to 24 of them in the default matrix, more than ten colours tell apart.
  const color = { field: 'series', type: 'nominal' as const, title: 'index', scale: { scheme: 'tableau20' } };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'memstore bench: recall against speed (labels: nprobe or ef)', subtitle: [...subtitle] },
    width: 640,
    height: 420,
    data: { values },
    layer: [
      { mark: { type: 'line', point: { filled: true, size: 60 } }, encoding: { x, y, color, order: { field: 'effort', type: 'quantitative' } } },
      { mark: { type: 'text', align: 'left', dx: 6, dy: -6, fontSize: 10 }, encoding: { x, y, color, text: { field: 'label' } } },
    ],
  };
  return svgOf(spec);
}
