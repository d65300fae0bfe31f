/**
 * Do vectors near a page's boundary, kept in a second page too (SPANN's boundary replicas), find the
 * true neighbours with fewer vectors scanned? (The page index issue: "consider boundary vectors kept
 * in two pages if it buys recall cheaply".) Pages are built as a store builds them (unit vectors
 * added one by one to int8 page clusters). A vector is also listed in each next-nearest page whose
 * centroid is within (1 + ε) of its nearest one's squared distance, up to `--replicas` pages in all,
 * skipping a page whose centroid is nearer an already chosen page's centroid than to the vector
 * (SPANN's rule against replicas that add nothing); ε 0 keeps none. Each query probes its `nprobe` nearest pages
 * (the router's order); what it finds is the share of the exact top 10 in them, what it costs the
 * vectors listed in them, replicas included.
 *
 *   node dist/bench/boundary.js [--data docs.f32 --queries queries.f32 --dim N] [--n first-N-docs]
 *     [--queries-n 300] [--max-page 192] [--eps 0,0.1,0.2,0.3] [--replicas 4] [--nprobe 16,24,...]
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

interface Row {
  readonly nprobe: number;
  readonly recall: number;
  readonly vectors: number;
}

function main(): void {
  const { values } = benchArgs('dist/bench/boundary.js', { options: { ...DATA_OPTIONS, 'queries-n': { type: 'string' }, 'max-page': { type: 'string' }, eps: { type: 'string' }, replicas: { type: 'string' }, nprobe: { type: 'string' } } }, { numbers: ['queries-n', 'max-page', 'eps', 'replicas', 'nprobe'] });
  const data = datasetFrom(values);
  const dim = data.dim;
  const docs = (values.n === undefined ? data.docs : data.docs.slice(0, Number(values.n))).map(normalized);
  const queries = data.queries.slice(0, Number(values['queries-n'] ?? 300)).map(normalized);
  const maxPage = Number(values['max-page'] ?? 192);
  const replicas = Number(values.replicas ?? 4);
  const epsList = (values.eps ?? '0,0.1,0.2,0.3').split(',').map(Number);
  const clusters = new PageClusters(getCodec('int8'), dim, 'cosine', { maxPage });
  try {
    docs.forEach((v, slot) => clusters.add(slot, v));
    const total = clusters.pageCount;
    const pageOf = Int32Array.from(docs, (_, slot) => clusters.pageOf(slot));
    // Unit centroids of the members (the store's are of their decoded codes: alike for this rule).
    const centroids = new Float32Array(total * dim);
    docs.forEach((v, i) => {
      for (let j = 0; j < dim; j++) centroids[pageOf[i]! * dim + j]! += v[j]!;
    });
    for (let p = 0; p < total; p++) centroids.set(normalized(centroids.subarray(p * dim, (p + 1) * dim)), p * dim);
    const centroidCos = (a: number, b: number): number => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += centroids[a * dim + j]! * centroids[b * dim + j]!;
      return s;
    };
    // Each vector's nearest pages after its own, with their cosines, as the router ranks them.
    const near = docs.map((v) => {
      const { pages, scores } = clusters.rankedPages({ vector: v, metric: 'cosine', int8Query: true });
      return { pages: pages.slice(0, 2 * replicas), scores: scores.slice(0, 2 * replicas) };
    });
    const ranked = queries.map((q) => clusters.rankedPages({ vector: q, metric: 'cosine', int8Query: true } satisfies ScanQuery).pages);
    const truth = queries.map((q) => {
      const exact = docs.map((v) => {
        let s = 0;
        for (let j = 0; j < dim; j++) s += v[j]! * q[j]!;
        return s;
      });
      return Array.from(exact.keys()).sort((a, b) => exact[b]! - exact[a]!).slice(0, K);
    });
    const probes = (values.nprobe ?? '16,24,32,40,48,64,81,96,128').split(',').map(Number).filter((n) => n <= total);
    const lines: string[] = [];
    lines.push(`data: ${data.name}, ${docs.length} x ${dim}-d, int8 page clusters (maxPage ${maxPage}, built by adds), ${total} pages, ${queries.length} queries, k ${K}; at most ${replicas} pages per vector`);
    lines.push('');
    lines.push('| ε | codes held per vector | nprobe | recall@10 reachable | vectors scanned, mean | recall without replicas at as many vectors scanned |');
    lines.push('|---:|---:|---:|---:|---:|---:|');
    let plain: Row[] = [];
    for (const eps of epsList) {
      // Pages each vector is listed in: its own, then the boundary replicas the rule admits.
      const listed: number[][] = Array.from({ length: total }, () => []);
      const pagesOfVector: number[][] = docs.map((_, i) => {
        const own = pageOf[i]!;
        const chosen = [own];
        const { pages, scores } = near[i]!;
        const ownCos = pages[0] === own ? scores[0]! : Math.max(...Array.from(scores));
        const ownSq = 2 - 2 * ownCos;
        for (let r = 0; eps > 0 && r < pages.length && chosen.length < replicas; r++) {
          const page = pages[r]!;
          if (page === own) continue;
          const sq = 2 - 2 * scores[r]!;
          if (sq > (1 + eps) * ownSq) break;
          if (chosen.some((c) => 2 - 2 * centroidCos(c, page) < sq)) continue;
          chosen.push(page);
        }
        for (const page of chosen) listed[page]!.push(i);
        return chosen;
      });
      const held = pagesOfVector.reduce((n, p) => n + p.length, 0) / docs.length;
      const rows: Row[] = probes.map((nprobe) => {
        let found = 0;
        let vectors = 0;
        ranked.forEach((pages, qi) => {
          const probed = new Set<number>();
          for (let i = 0; i < nprobe; i++) {
            probed.add(pages[i]!);
            vectors += listed[pages[i]!]!.length;
          }
          for (const t of truth[qi]!) if (pagesOfVector[t]!.some((p) => probed.has(p))) found++;
        });
        return { nprobe, recall: found / (queries.length * K), vectors: vectors / queries.length };
      });
      if (eps === epsList[0]) plain = rows;
      for (const row of rows) {
        const same = eps === epsList[0] ? undefined : interpolate(plain, row.vectors, (r) => r.vectors, (r) => r.recall);
        lines.push(`| ${eps} | ${held.toFixed(3)} | ${row.nprobe} | ${row.recall.toFixed(4)} | ${row.vectors.toFixed(0)} | ${same === undefined ? '–' : same.toFixed(4)} |`);
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    clusters.free();
  }
}

main();
