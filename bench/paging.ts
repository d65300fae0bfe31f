/**
 * What the write that brings a store to `pages.from` costs the rest of the process: a store is
 * built by adds in batches while a loop searches it (one search in flight, a 1 ms pause between
 * searches), once with the clustering in a worker thread (the store's way) and once in the write's
 * own thread (the way where no worker thread can start: `new Worker` made to throw, as Node's
 * permission model does), one after the other in one process. For each: every add's latency (the
 * one that reached `pages.from` apart), the event loop's longest stall (monitorEventLoopDelay) and
 * the searches answered while that add was under way; then the same for a compact(), which
 * re-clusters every page.
 *
 *   node dist/bench/paging.js [--data docs.f32 --dim N] [--n vectors] [--from 16384] [--batch 100]
 *
 * Without --data it uses the 1k WordNet set the project ships, with `--from` 512.
 */
import module from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MemStore } from '../src/index.js';
import { benchArgs } from './args.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';
import { addInBatches, searchBeside, type StallRun } from './stall-loop.js';
import { makeBenchDir, removeBenchDir } from './temp-dirs.js';

interface Run extends StallRun {
  readonly pages: number;
  readonly compact: number;
  readonly compactStall: number;
  readonly searchesCompacting: number;
}

const require = module.createRequire(import.meta.url);
const threads = require('node:worker_threads') as { Worker: unknown };

async function build(way: 'worker thread' | 'own thread', docs: readonly Float32Array[], from: number, batch: number): Promise<Run> {
  const real = threads.Worker;
  if (way === 'own thread') {
    threads.Worker = class {
      constructor() {
        throw Object.assign(new Error('no worker threads in this run'), { code: 'ERR_ACCESS_DENIED' });
      }
    };
    module.syncBuiltinESMExports();
  }
  const dir = makeBenchDir('memstore-paging-');
  try {
    const store = await MemStore.open(dir, { dim: docs[0]!.length, cache: false, pages: { from } });
    try {
      const delay = monitorEventLoopDelay({ resolution: 5 });
      const loop = searchBeside(store, docs);
      delay.enable();
      const { times, crossing, searchesDuring } = await addInBatches(store, docs, batch, from, loop.searches);
      delay.disable();
      const stall = delay.max / 1e6;
      const pages = store.stats().pages;
      // Then compact(), which re-clusters every page, with the searches still going.
      const compacting = monitorEventLoopDelay({ resolution: 5 });
      const before = loop.searches();
      compacting.enable();
      const t = performance.now();
      await store.compact();
      const compact = performance.now() - t;
      compacting.disable();
      const searchesCompacting = loop.searches() - before;
      await loop.stop();
      return { way, addP50: median(times), crossing, stall, searchesDuring, pages, compact, compactStall: compacting.max / 1e6, searchesCompacting };
    } finally {
      await store.close();
    }
  } finally {
    removeBenchDir(dir);
    threads.Worker = real;
    module.syncBuiltinESMExports();
  }
}

async function main(): Promise<void> {
  const { values } = benchArgs('dist/bench/paging.js', { options: { ...DATA_OPTIONS, from: { type: 'string' }, batch: { type: 'string' } } }, { numbers: ['n', 'from', 'batch'] });
  const data = datasetFrom(values);
  const docs = values.n === undefined ? data.docs : data.docs.slice(0, Number(values.n));
  const from = Number(values.from ?? (values.data === undefined ? 512 : 16_384));
  const batch = Number(values.batch ?? 100);
  if (docs.length < from) throw new Error(`${docs.length} vectors never reach pages.from ${from}`);
  const runs = [await build('worker thread', docs, from, batch), await build('own thread', docs, from, batch)];
  process.stdout.write(`data: ${data.name}, ${docs.length} x ${data.dim}-d, added in batches of ${batch}, pages.from ${from}; a search loop beside the adds (one in flight, 1 ms apart)\n\n`);
  process.stdout.write('| clustering in | add p50 (others) | the add that reached pages.from | longest event-loop stall (adds) | searches answered during that add | pages | compact() | longest stall during it | searches answered during it |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const r of runs) {
    process.stdout.write(`| ${r.way} | ${r.addP50.toFixed(1)} ms | ${r.crossing.toFixed(0)} ms | ${r.stall.toFixed(0)} ms | ${r.searchesDuring} | ${r.pages} | ${r.compact.toFixed(0)} ms | ${r.compactStall.toFixed(0)} ms | ${r.searchesCompacting} |\n`);
  }
}

await main();
