import { cpus, totalmem, arch, platform } from 'node:os';
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import { missing, optionalPackage } from './optional.js';
import type { StudyRow } from './study.js';

export function formatTable(rows: readonly StudyRow[], k: number): string {
  const head = `| | configuration | stored dim | RAM B/vec | code B/vec | compression | disk B/vec | recall@1 | recall@${k} | loss | rescored/query, mean | p99 | QPS | p50 µs | p99 µs | build s |`;
  const sep = '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) =>
    `| ${r.pareto ? '★' : r.paretoCodesOnly ? '☆' : ''} | ${r.label} | ${r.storedDim} | ${r.bytesPerVector.toFixed(0)} | ${r.codeBytesPerVector.toFixed(0)} | ` +
      `${r.compression.toFixed(2)}x | ${r.diskBytesPerVector.toFixed(0)} | ${r.recall1.toFixed(3)} | ${r.recall10.toFixed(4)} | ` +
      `${(r.relativeLoss * 100).toFixed(2)}% | ${r.rescore ? r.rescoredMean.toFixed(1) : ''} | ${r.rescore ? r.rescoredP99.toFixed(0) : ''} | ${r.qps.toFixed(0)} | ${r.p50Us.toFixed(0)} | ${r.p99Us.toFixed(0)} | ${(r.buildMs / 1000).toFixed(2)} |`,
  );
  return [head, sep, ...lines, '', `★ Pareto front: no other row is as good in both RAM per vector and recall@${k} and better in one. ☆ the front among rows that answer from RAM alone (no rescoring). Rescored: full-precision vectors read per query, the rest let go by their error bounds.`].join('\n');
}

export interface Machine {
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
}

export function machine(): Machine {
  const c = cpus();
  return { node: process.version, platform: platform(), arch: arch(), cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', memoryBytes: totalmem() };
}

/** Recall@k against RAM per vector on a log axis: every row, the Pareto front joined, baselines labelled. */
export async function renderChart(rows: readonly StudyRow[], k: number, subtitle: readonly string[]): Promise<string | undefined> {
  const name = (r: StudyRow): string =>
    r.kind === 'memstore' ? `${r.codec}${r.pca === 'none' ? '' : ` pca ${r.pca}`}${r.rescore ? ' +rescore' : ''}` : r.kind === 'hnsw-f32' ? 'HNSW f32' : 'exact f32';
  // Rows on the same spot share one label, so coinciding points stay readable.
  const labels = new Map<string, string[]>();
  for (const r of rows) {
    if (!r.pareto && !r.paretoCodesOnly && r.kind === 'memstore') continue;
    const spot = `${r.bytesPerVector.toFixed(0)}|${r.recall10.toFixed(4)}`;
    labels.set(spot, [...(labels.get(spot) ?? []), name(r)]);
  }
  const values = rows.map((r) => {
    const spot = `${r.bytesPerVector.toFixed(0)}|${r.recall10.toFixed(4)}`;
    const label = labels.get(spot);
    if (label !== undefined) labels.delete(spot);
    return {
      label: r.label,
      bytes: r.bytesPerVector,
      recall: r.recall10,
      codec: r.kind === 'memstore' ? r.codec : r.kind === 'hnsw-f32' ? 'HNSW f32 (baseline)' : 'exact f32 (baseline)',
      rescore: r.kind === 'memstore' ? (r.rescore ? 'rescored' : 'codes only') : 'baseline',
      pareto: r.pareto,
      front: r.paretoCodesOnly,
      text: label === undefined ? '' : label.join(' = '),
    };
  });
  const bytes = rows.map((r) => r.bytesPerVector);
  const domain = [Math.min(...bytes) * 0.8, Math.max(...bytes) * 1.6];
  const x = { field: 'bytes', type: 'quantitative' as const, scale: { type: 'log' as const, domain }, title: 'RAM bytes per vector (log scale)' };
  const y = { field: 'recall', type: 'quantitative' as const, scale: { zero: false }, title: `recall@${k} against exact float32` };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'memstore bench: recall against RAM (dashed: Pareto front without rescoring)', subtitle: [...subtitle] },
    width: 640,
    height: 420,
    data: { values },
    layer: [
      {
        transform: [{ filter: 'datum.front' }],
        mark: { type: 'line', color: '#777', strokeDash: [5, 3], interpolate: 'step-after' },
        encoding: { x, y, order: { field: 'bytes', type: 'quantitative' } },
      },
      {
        mark: { type: 'point', filled: true, size: 90, opacity: 0.85 },
        encoding: {
          x,
          y,
          color: { field: 'codec', type: 'nominal', title: 'codec' },
          shape: { field: 'rescore', type: 'nominal', title: 'rescoring' },
          tooltip: [{ field: 'label' }, { field: 'bytes' }, { field: 'recall' }],
        },
      },
      {
        transform: [{ filter: "datum.text !== ''" }],
        mark: { type: 'text', align: 'left', angle: 0, dx: 6, dy: 12, fontSize: 10 },
        encoding: { x, y, text: { field: 'text' } },
      },
    ],
  };
  return svgOf(spec);
}

/** vega and vega-lite, when installed (optional dependencies: bench/optional.ts). */
const vega = await optionalPackage<typeof Vega>('vega');
const vegaLite = await optionalPackage<typeof VegaLite>('vega-lite');

/** The line the bench prints when the charts cannot be drawn. */
export const CHARTS_MISSING = missing(vega === undefined ? 'vega' : 'vega-lite', 'the SVG charts');

/** A vega-lite chart rendered to SVG, with no browser; undefined when vega or vega-lite is not installed. */
export async function svgOf(spec: TopLevelSpec): Promise<string | undefined> {
  if (vega === undefined || vegaLite === undefined) return undefined;
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
