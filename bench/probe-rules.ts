/**
 * Does a probing rule that adapts to each query find the true neighbours with fewer vectors scanned
 * than a fixed `nprobe`? (src/index/PAGES.md, "How many pages a search probes".) Pages are built as a
 * store builds them (unit vectors added one by one to int8 page clusters, `--recluster`: then
 * re-clustered as `compact()` does); each query's pages are ranked by the router, and every stored
 * vector is scored exactly in float32. A rule decides, query by query, how many of the ranked pages to
 * probe; what it finds is the share of the exact top 10 that lie in those pages (the recall a search
 * can reach there when rescoring finds them, as it does at these depths), what it costs the vectors in them.
 *
 * The rules, beside fixed counts: `gap δ` probes the pages whose router score is within δ of the
 * best page's; `kth ρ` probes pages in order and stops when the next page's score plus ρ is below
 * the k-th best exact score found so far (the issue's "stop once the next page's bound cannot beat
 * the current k-th result", with ρ for the members' spread around their centroid, which no proven
 * radius bounds usefully in 100–512 dimensions); `ratio a` stops when the next page's score is
 * below a times that k-th best score. Each adaptive row is set against the fixed count of equal recall
 * (interpolated): the vectors it scans against the fixed count's, under 1 where it wins.
 *
 *   node dist/bench/probe-rules.js [--data docs.f32 --queries queries.f32 --dim N] [--n first-N-docs]
 *     [--queries-n 300] [--max-page 192] [--recluster] [--nprobe 8,16,...] [--min 16]
 *
 * Without --data it uses the 1k WordNet set the project ships (a few pages only).
 */
import { benchArgs } from './args.js';
import { getCodec } from '../src/codec/index.js';
import { PageClusters } from '../src/index/page-clusters.js';
import type { ScanQuery } from '../src/scan/code-blocks.js';
import { normalized } from '../src/vector.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { interpolate } from './interpolate.js';

const K = 10;

/** What one query sees: its pages in the router's order, their scores, and what each holds. */
interface Ranked {
  readonly scores: Float32Array;
  /** Per page, in ranked order: its members' best K exact scores, best first. */
  readonly best: Float32Array[];
  /** Per page, in ranked order: how many vectors it holds. */
  readonly sizes: Int32Array;
  /** Ranked positions of the pages holding the exact top K. */
  readonly truth: number[];
}

/** A rule: how many of a query's ranked pages to probe. */
type Rule = (r: Ranked) => number;

interface Row {
  readonly name: string;
  readonly recall: number;
  readonly pages: number;
  readonly p90: number;
  readonly vectors: number;
}

function evaluate(name: string, ranked: readonly Ranked[], rule: Rule): Row {
  let found = 0;
  let pages = 0;
  let vectors = 0;
  const counts: number[] = [];
  for (const r of ranked) {
    const m = rule(r);
    counts.push(m);
    pages += m;
    for (let i = 0; i < m; i++) vectors += r.sizes[i]!;
    found += r.truth.filter((at) => at < m).length;
  }
  counts.sort((a, b) => a - b);
  const n = ranked.length;
  return { name, recall: found / (n * K), pages: pages / n, p90: counts[Math.floor(0.9 * (n - 1))]!, vectors: vectors / n };
}

/** Probes pages in order while `goOn(score of the next page, k-th best exact score so far)`, at least `min`. */
function byKth(min: number, goOn: (next: number, kth: number) => boolean): Rule {
  return (r) => {
    const best: number[] = [];
    let m = 0;
    for (; m < r.scores.length; m++) {
      if (m >= min && best.length >= K && !goOn(r.scores[m]!, best[K - 1]!)) break;
      for (const s of r.best[m]!) best.push(s);
      best.sort((a, b) => b - a);
      best.length = Math.min(best.length, K);
    }
    return m;
  };
}

function main(): void {
  const { values } = benchArgs('dist/bench/probe-rules.js', { options: { ...DATA_OPTIONS, 'queries-n': { type: 'string' }, 'max-page': { type: 'string' }, recluster: { type: 'boolean' }, nprobe: { type: 'string' }, min: { type: 'string' } } }, { numbers: ['queries-n', 'max-page', 'nprobe', 'min'] });
  const data = datasetFrom(values);
  const dim = data.dim;
  const docs = (values.n === undefined ? data.docs : data.docs.slice(0, Number(values.n))).map(normalized);
  const queries = data.queries.slice(0, Number(values['queries-n'] ?? 300)).map(normalized);
  const maxPage = Number(values['max-page'] ?? 192);
  const min = Number(values.min ?? 16);
  const clusters = new PageClusters(getCodec('int8'), dim, 'cosine', { maxPage });
  try {
    docs.forEach((v, slot) => clusters.add(slot, v));
    if (values.recluster === true) clusters.recluster();
    const total = clusters.pageCount;
    const flat = new Float32Array(docs.length * dim);
    docs.forEach((v, i) => flat.set(v, i * dim));
    const pageOf = Int32Array.from(docs, (_, slot) => clusters.pageOf(slot));
    const exact = new Float32Array(docs.length);
    const ranked: Ranked[] = queries.map((q) => {
      const query: ScanQuery = { vector: q, metric: 'cosine', int8Query: true };
      const { pages, scores } = clusters.rankedPages(query);
      const at = new Int32Array(total);
      pages.forEach((page, i) => (at[page] = i));
      for (let i = 0; i < docs.length; i++) {
        let s = 0;
        for (let j = 0, o = i * dim; j < dim; j++) s += flat[o + j]! * q[j]!;
        exact[i] = s;
      }
      const members: number[][] = Array.from({ length: total }, () => []);
      for (let i = 0; i < docs.length; i++) members[at[pageOf[i]!]!]!.push(exact[i]!);
      const top = Array.from(exact.keys()).sort((a, b) => exact[b]! - exact[a]!).slice(0, K);
      return {
        scores,
        best: members.map((m) => Float32Array.from(m.sort((a, b) => b - a).slice(0, K))),
        sizes: Int32Array.from(members, (m) => m.length),
        truth: top.map((i) => at[pageOf[i]!]!),
      };
    });
    const fixedCounts = (values.nprobe ?? '8,16,24,32,48,64,96,128,192,256').split(',').map(Number).filter((n) => n <= total);
    const fixed = fixedCounts.map((n) => evaluate(`fixed ${n}`, ranked, () => n));
    const adaptive = [
      ...[0.1, 0.15, 0.2, 0.25, 0.3].map((d) => evaluate(`gap ${d}, at least ${min}`, ranked, (r) => {
        let m = 0;
        while (m < total && r.scores[m]! >= r.scores[0]! - d) m++;
        return Math.min(total, Math.max(min, m));
      })),
      ...[0.05, 0.1, 0.15, 0.2, 0.25, 0.3].map((rho) => evaluate(`kth ${rho}, at least ${min}`, ranked, byKth(min, (next, kth) => next + rho >= kth))),
      ...[0.6, 0.7, 0.75, 0.8, 0.85].map((a) => evaluate(`ratio ${a}, at least ${min}`, ranked, byKth(min, (next, kth) => next >= a * kth))),
    ];
    const lines: string[] = [];
    lines.push(`data: ${data.name}, ${docs.length} x ${dim}-d, int8 page clusters (maxPage ${maxPage}${values.recluster === true ? ', re-clustered' : ', built by adds'}), ${total} pages, ${queries.length} queries, k ${K}`);
    lines.push('');
    lines.push('| rule | recall@10 reachable | pages, mean | pages, p90 | vectors scanned, mean | against a fixed count of equal recall |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    for (const row of fixed) lines.push(`| ${row.name} | ${row.recall.toFixed(4)} | ${row.pages.toFixed(1)} | ${row.p90} | ${row.vectors.toFixed(0)} | |`);
    for (const row of adaptive) {
      const same = interpolate(fixed, row.recall, (r) => r.recall, (r) => r.vectors);
      lines.push(`| ${row.name} | ${row.recall.toFixed(4)} | ${row.pages.toFixed(1)} | ${row.p90} | ${row.vectors.toFixed(0)} | ${same === undefined ? '–' : `${(row.vectors / same).toFixed(2)}x`} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    clusters.free();
  }
}

main();
