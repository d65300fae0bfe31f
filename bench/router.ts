/**
 * Which router finds a query's nearest page centroids faster, for how many pages: a WebAssembly
 * scan over every centroid (exact) against hnswlib-node's HNSW over the centroids (approximate),
 * side by side in one run. Centroids are drawn from the data set (what k-means centroids of it
 * look like at these counts); each query asks for its `nprobe` nearest, and the HNSW's router
 * recall is the share of the exact nearest it finds.
 *
 *   node dist/bench/router.js [--data docs.f32 --queries queries.f32 --dim N] [--pages 256,1024,4096,16384] [--nprobe 16,64]
 *
 * Without --data it uses the 1k WordNet set the project ships (pages beyond its size are skipped).
 */
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import hnswlib from 'hnswlib-node';
import { CentroidRouter } from '../src/index/router.js';
import { rng } from '../src/random.js';
import { normalized } from '../src/vector.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';

interface Row {
  readonly pages: number;
  readonly nprobe: number;
  readonly scanUs: number;
  readonly hnswUs: number;
  readonly hnswEf: number;
  readonly hnswRecall: number;
  readonly hnswBuildS: number;
}

function main(): void {
  const { values } = benchArgs('dist/bench/router.js', { options: { ...DATA_OPTIONS, pages: { type: 'string' }, nprobe: { type: 'string' } } }, { numbers: ['pages', 'nprobe'] });
  const data = datasetFrom(values);
  const dim = data.dim;
  const pageCounts = (values.pages ?? '256,1024,4096,16384').split(',').map(Number).filter((p) => p <= data.docs.length);
  const probes = (values.nprobe ?? '16,64').split(',').map(Number);
  const queries = data.queries.slice(0, 500).map(normalized);
  const random = rng(3);
  const rows: Row[] = [];
  for (const pages of pageCounts) {
    const chosen = new Set<number>();
    while (chosen.size < pages) chosen.add(Math.floor(random() * data.docs.length));
    const centroids = [...chosen].map((i) => normalized(data.docs[i]!));
    const router = new CentroidRouter(dim, 'dot');
    for (const c of centroids) router.add(c);
    const built = performance.now();
    const hnsw = new hnswlib.HierarchicalNSW('ip', dim);
    hnsw.initIndex(pages, 16, 200, 100);
    centroids.forEach((c, i) => hnsw.addPoint(Array.from(c), i));
    const hnswBuildS = (performance.now() - built) / 1000;
    try {
      for (const nprobe of probes) {
        if (nprobe > pages) continue;
        const exact: Set<number>[] = [];
        const scanTimes: number[] = [];
        // The pages in order, as a search asks for them (nearestOrder()), once untimed first: the
        // first count measured at each size otherwise paid for compiling the path it takes.
        const order = new Int32Array(nprobe);
        for (const q of queries) router.nearestOrder(q, nprobe, order);
        for (const q of queries) {
          const t = performance.now();
          const n = router.nearestOrder(q, nprobe, order);
          scanTimes.push(performance.now() - t);
          exact.push(new Set(order.subarray(0, n)));
        }
        // The smallest ef (from nprobe up, doubling) whose router recall reaches 0.99: what a router must pay to be nearly exact.
        let ef = nprobe;
        let hnswTimes: number[] = [];
        let recall = 0;
        for (;;) {
          hnsw.setEf(ef);
          hnswTimes = [];
          let hits = 0;
          queries.forEach((q, j) => {
            const arr = Array.from(q);
            const t = performance.now();
            const r = hnsw.searchKnn(arr, nprobe);
            hnswTimes.push(performance.now() - t);
            for (const label of r.neighbors) if (exact[j]!.has(label)) hits++;
          });
          recall = hits / (queries.length * nprobe);
          if (recall >= 0.99 || ef >= 4 * pages) break;
          ef *= 2;
        }
        rows.push({ pages, nprobe, scanUs: median(scanTimes) * 1000, hnswUs: median(hnswTimes) * 1000, hnswEf: ef, hnswRecall: recall, hnswBuildS });
      }
    } finally {
      router.free();
    }
  }
  process.stdout.write(`${data.name}: ${data.docs.length} x ${dim}-d; centroids drawn from the data, ${queries.length} queries; p50 per query\n\n`);
  process.stdout.write('| pages | nprobe | WASM scan, exact µs | hnswlib µs | hnswlib ef (router recall ≥ 0.99) | router recall | hnswlib build s | scan / hnswlib |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.pages} | ${r.nprobe} | ${r.scanUs.toFixed(1)} | ${r.hnswUs.toFixed(1)} | ${r.hnswEf} | ${r.hnswRecall.toFixed(3)} | ${r.hnswBuildS.toFixed(2)} | ${(r.scanUs / r.hnswUs).toFixed(2)} |\n`);
  }
}

main();
