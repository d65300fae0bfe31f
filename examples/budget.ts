/**
 * Choosing a codec and PCA for a memory budget from `memstore bench` output: every configuration
 * the bench measured whose RAM, projected to the vectors to hold, fits the budget, ranked by
 * recall@10 and then speed; the choice as `MemStore.open` options. The projection counts the
 * model (PCA axes, rq rotation) once: `bytesPerVector` as measured includes its share of the
 * bench's vectors, which at a thousand vectors is most of an rq row.
 *
 *   npm run build && node dist/examples/budget.js [results.json] [budget bytes] [vectors]
 *   (defaults: bench/results/default/results.json, 256MiB, 1M; sizes and counts as memstore bench
 *   takes them: 2GB, 512MiB, 5M, 1000000)
 *
 * Make your own results.json with `npx memstore bench --data your.f32 --dim N --out DIR` on your
 * embeddings: recall and the bytes PCA saves depend on the data.
 */
import { readFileSync } from 'node:fs';

interface Row {
  kind: string;
  label: string;
  codec: string;
  pca: string;
  rescore: boolean;
  bytesPerVector: number;
  /** RAM that does not grow with the count (the model), and the vectors it was measured with. */
  fixedBytes: number;
  vectors: number;
  recall10: number;
  qps: number;
}

const [file = new URL('../../bench/results/default/results.json', import.meta.url).pathname, budgetArg = '256MiB', countArg = '1M'] = process.argv.slice(2);

/** `2GB`, `512MiB`, `1.5g`, `5M`, `1000000`: as `memstore bench --budget` and `--count` take them. */
function amount(text: string, what: string): number {
  const units: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m === null ? undefined : units[m[2]!.toLowerCase()];
  const n = m === null || unit === undefined ? Number.NaN : Number(m[1]) * unit;
  if (!(n >= 1)) {
    console.error(`cannot read ${JSON.stringify(text)} as ${what} (e.g. 2GB, 512MiB, 5M, 1000000)\nusage: node dist/examples/budget.js [results.json] [budget] [vectors]`);
    process.exit(2);
  }
  return n;
}

const budget = amount(budgetArg, 'a budget');
const count = Math.round(amount(countArg, 'a count of vectors'));
const MIN_RECALL = 0.95;

/** RAM for `count` vectors: each costs what it did less its share of the model, and the model comes once. */
function projected(r: Row): number {
  const perVector = r.vectors > 0 ? r.bytesPerVector - r.fixedBytes / r.vectors : r.bytesPerVector;
  return count * perVector + r.fixedBytes;
}

let report: { data: unknown; rows: Row[] };
try {
  report = JSON.parse(readFileSync(file, 'utf8')) as { data: unknown; rows: Row[] };
} catch (e) {
  console.error(`cannot read ${file} as the results.json of memstore bench (${(e as Error).message}); make one with npx memstore bench --out DIR`);
  process.exit(2);
}
const fitting = report.rows
  .filter((r) => r.kind === 'memstore' && projected(r) <= budget)
  .sort((a, b) => b.recall10 - a.recall10 || b.qps - a.qps);

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
console.log(`budget ${mib(budget)} for ${count.toLocaleString('en')} vectors: ${(budget / count).toFixed(0)} B per vector (results: ${file})`);
if (fitting.length === 0) {
  console.log('no configuration the bench measured fits: raise the budget, or hold fewer vectors per store');
} else {
  for (const r of fitting.slice(0, 5)) {
    console.log(`  ${r.label.padEnd(40)} ${(projected(r) / count).toFixed(0).padStart(5)} B/vector  ${mib(projected(r)).padStart(8)}  recall@10 ${r.recall10.toFixed(3)}  ${r.qps.toFixed(0)} q/s`);
  }
  const best = fitting[0]!;
  if (best.recall10 < MIN_RECALL) console.log(`note: the best that fits finds ${best.recall10.toFixed(3)} of the exact top 10, under ${MIN_RECALL}`);
  const pca = best.pca === 'none' ? undefined : { dims: Number(best.pca.replace(/d$/, '')) };
  const options = { codec: best.codec, ...(pca === undefined ? {} : { pca }), rescore: best.rescore };
  console.log(`\nMemStore.open(dir, { dim, ...${JSON.stringify(options)} })`);
}
