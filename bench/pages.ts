/**
 * What page clustering buys, before it serves a store: int8 codes clustered into pages
 * (src/index/page-clusters.ts) and searched by probing the `nprobe` nearest pages, against the
 * exact scan of the same codes and hnswlib-node (float32 HNSW, M 16, efConstruction 200, ef swept),
 * side by side in one run, one query in flight, with the bytes per vector each structure holds (the pages':
 * codes in rooms of powers of two, scales, slots, centroids; no id table, which a page index shares
 * with the exact one). Two recalls@10: against the exact scan of the same
 * codes (routing alone), and against exact float32 (what hnswlib is measured by; the store's
 * default search rescores candidates, which closes most of the codes' own gap).
 *
 *   node dist/bench/pages.js [--data docs.f32 --queries queries.f32 --dim N] [--n first-N-docs] [--max-page 256,512] [--nprobe 4,8,16,32,64] [--ef 16,32,64,128,256] [--recluster]
 *
 * --recluster: after the sweep over the pages built by inserts, re-cluster them by k-means over every
 * vector (PageClusters.recluster, what compaction will do) and sweep again; build time includes it.
 *
 * Without --data it uses the 1k WordNet set the project ships.
 */
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import hnswlib from 'hnswlib-node';
import { getCodec } from '../src/codec/index.js';
import { PageClusters } from '../src/index/page-clusters.js';
import { CodeBlocks, INDEX_BLOCK_VECTORS, type ScanQuery } from '../src/scan/code-blocks.js';
import { TopK } from '../src/scan/topk.js';
import { normalized } from '../src/vector.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';

const K = 10;

function topSlots(run: (top: TopK) => void): number[] {
  const top = new TopK(K);
  run(top);
  return top.sorted().map((e) => e.slot);
}

/** hnswlib-node over the same (unit) vectors, float32, M 16, efConstruction 200: recall against float32 and p50 per ef. */
function hnswRows(docs: readonly Float32Array[], queries: readonly ScanQuery[], truth: readonly Set<number>[], efs: readonly number[], flatUs: number): string[] {
  const dim = docs[0]!.length;
  const index = new hnswlib.HierarchicalNSW('ip', dim);
  const built = performance.now();
  index.initIndex(docs.length, 16, 200, 100);
  docs.forEach((v, i) => index.addPoint(Array.from(v), i));
  const buildS = (performance.now() - built) / 1000;
  const lines = [`hnswlib-node (float32, M 16, efConstruction 200), built in ${buildS.toFixed(1)} s:`, '', '| ef | recall@10 vs float32 | p50 µs | speedup over the exact int8 scan |', '|---:|---:|---:|---:|'];
  const arrays = queries.map((q) => Array.from(q.vector));
  for (const ef of efs) {
    index.setEf(ef);
    let found = 0;
    const times: number[] = [];
    arrays.forEach((q, i) => {
      const t = performance.now();
      const { neighbors } = index.searchKnn(q, K);
      times.push(performance.now() - t);
      for (const slot of neighbors) if (truth[i]!.has(slot)) found++;
    });
    const us = median(times) * 1000;
    lines.push(`| ${ef} | ${(found / (queries.length * K)).toFixed(3)} | ${us.toFixed(0)} | ${(flatUs / us).toFixed(1)}x |`);
  }
  return lines;
}

function main(): void {
  const { values } = benchArgs('dist/bench/pages.js', { options: { ...DATA_OPTIONS, 'max-page': { type: 'string' }, nprobe: { type: 'string' }, ef: { type: 'string' }, recluster: { type: 'boolean' } } }, { numbers: ['max-page', 'nprobe', 'ef'] });
  const data = datasetFrom(values);
  const dim = data.dim;
  const codec = getCodec('int8');
  const docs = (values.n === undefined ? data.docs : data.docs.slice(0, Number(values.n))).map(normalized);
  const queries = data.queries.slice(0, 1000).map((q): ScanQuery => ({ vector: normalized(q), metric: 'cosine', int8Query: true }));
  const flat = new CodeBlocks(codec, dim, INDEX_BLOCK_VECTORS);
  docs.forEach((v, slot) => flat.put(`${slot}`, v));
  const exact: number[][] = [];
  const flatTimes: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    exact.push(topSlots((top) => flat.scan(q, top)));
    flatTimes.push(performance.now() - t);
  }
  const flatUs = median(flatTimes) * 1000;
  // Exact float32 ground truth: the f32 codec's scan is exact up to float32 rounding.
  const f32 = new CodeBlocks(getCodec('f32'), dim, INDEX_BLOCK_VECTORS);
  docs.forEach((v, slot) => f32.put(`${slot}`, v));
  const truth = queries.map((q) => new Set(topSlots((top) => f32.scan({ vector: q.vector, metric: 'cosine', int8Query: false }, top))));
  f32.free();
  const recallOf = (got: readonly number[], want: ReadonlySet<number>) => got.filter((slot) => want.has(slot)).length;
  let flatFound = 0;
  exact.forEach((got, i) => (flatFound += recallOf(got, truth[i]!)));
  const lines: string[] = [];
  lines.push(`data: ${data.name}, ${docs.length} x ${dim}-d, int8 codes, cosine, k ${K}, ${queries.length} queries`);
  lines.push('');
  lines.push(`exact scan of the int8 codes: p50 ${flatUs.toFixed(0)} µs per query, recall@10 against float32 ${(flatFound / (queries.length * K)).toFixed(3)}`);
  lines.push('');
  lines.push(`the exact index's codes: ${(flat.bytes / docs.length).toFixed(0)} B per vector (code, scale, id table; no places kept here)`);
  lines.push('');
  lines.push('| max page | pages | B per vector | build (adds, s) | nprobe | scanned | recall@10 vs the int8 scan | vs float32 | p50 µs | speedup over the exact scan |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const maxPage of (values['max-page'] ?? '256,512').split(',').map(Number)) {
    const pages = new PageClusters(codec, dim, 'cosine', { maxPage });
    try {
      const built = performance.now();
      docs.forEach((v, slot) => pages.add(slot, v));
      const buildS = (performance.now() - built) / 1000;
      const sweep = (label: string, buildS: number) => {
        for (const nprobe of (values.nprobe ?? '4,8,16,32,64').split(',').map(Number)) {
          if (nprobe > pages.pageCount) continue;
          let found = 0;
          let foundF32 = 0;
          const times: number[] = [];
          queries.forEach((q, i) => {
            const t = performance.now();
            const got = topSlots((top) => pages.search(q, top, nprobe));
            times.push(performance.now() - t);
            found += recallOf(got, new Set(exact[i]));
            foundF32 += recallOf(got, truth[i]!);
          });
          const us = median(times) * 1000;
          const scanned = (nprobe / pages.pageCount) * 100;
          const n = queries.length * K;
          lines.push(`| ${label} | ${pages.pageCount} | ${(pages.bytes / pages.size).toFixed(0)} | ${buildS.toFixed(1)} | ${nprobe} | ${scanned.toFixed(1)}% | ${(found / n).toFixed(3)} | ${(foundF32 / n).toFixed(3)} | ${us.toFixed(0)} | ${(flatUs / us).toFixed(1)}x |`);
        }
      };
      sweep(`${maxPage}`, buildS);
      if (values.recluster === true) {
        const t = performance.now();
        pages.recluster();
        sweep(`${maxPage}, re-clustered`, buildS + (performance.now() - t) / 1000);
      }
    } finally {
      pages.free();
    }
  }
  flat.free();
  lines.push('');
  lines.push(...hnswRows(docs, queries, truth, (values.ef ?? '16,32,64,128,256').split(',').map(Number), flatUs));
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
