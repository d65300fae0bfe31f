/**
 * What page clustering buys, before it serves a store: int8 codes clustered into pages
 * (src/index/page-clusters.ts) and searched by probing the `nprobe` nearest pages, against the
 * exact scan of the same codes, side by side in one run. Recall@10 is against that exact scan (the
 * codes' own top 10, what the store's default search then rescores), so it measures routing alone.
 *
 *   node dist/bench/pages.js [--data docs.f32 --queries queries.f32 --dim N] [--max-page 256,512] [--nprobe 4,8,16,32,64]
 *
 * Without --data it uses the 1k WordNet set the project ships.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
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

function main(): void {
  const { values } = parseArgs({ options: { ...DATA_OPTIONS, 'max-page': { type: 'string' }, nprobe: { type: 'string' } } });
  const data = datasetFrom(values);
  const dim = data.dim;
  const codec = getCodec('int8');
  const docs = data.docs.map(normalized);
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
  const lines: string[] = [];
  lines.push(`data: ${data.name}, ${docs.length} x ${dim}-d, int8 codes, cosine, k ${K}, ${queries.length} queries; recall@10 against the exact scan of the same codes`);
  lines.push('');
  lines.push(`exact scan: p50 ${flatUs.toFixed(0)} µs per query`);
  lines.push('');
  lines.push('| max page | pages | build (adds, s) | nprobe | scanned | recall@10 | p50 µs | speedup over the exact scan |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const maxPage of (values['max-page'] ?? '256,512').split(',').map(Number)) {
    const pages = new PageClusters(codec, dim, 'cosine', { maxPage });
    try {
      const built = performance.now();
      docs.forEach((v, slot) => pages.add(slot, v));
      const buildS = (performance.now() - built) / 1000;
      for (const nprobe of (values.nprobe ?? '4,8,16,32,64').split(',').map(Number)) {
        if (nprobe > pages.pageCount) continue;
        let found = 0;
        const times: number[] = [];
        queries.forEach((q, i) => {
          const t = performance.now();
          const got = topSlots((top) => pages.search(q, top, nprobe));
          times.push(performance.now() - t);
          const want = new Set(exact[i]);
          for (const slot of got) if (want.has(slot)) found++;
        });
        const us = median(times) * 1000;
        const scanned = (nprobe / pages.pageCount) * 100;
        lines.push(`| ${maxPage} | ${pages.pageCount} | ${buildS.toFixed(1)} | ${nprobe} | ${scanned.toFixed(1)}% | ${(found / (queries.length * K)).toFixed(3)} | ${us.toFixed(0)} | ${(flatUs / us).toFixed(1)}x |`);
      }
    } finally {
      pages.free();
    }
  }
  flat.free();
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
