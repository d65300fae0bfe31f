/**
 * What the write that brings a store to `trainSize` costs the rest of the process (src/space/TRAINING.md):
 * a store with a model to fit (an rq codec, or PCA) is built by adds in batches while a loop
 * searches it (one search in flight, a 1 ms pause between searches), once training off the write
 * (the store's way: a PCA fitted in a worker thread, the buffer re-encoded a step at a time) and
 * once inside the write (every fit and re-encode in the write's own thread, as the store did before:
 * `fitThreads` set so), one after the other in one process, pages off. For each: the add that
 * reached `trainSize`, the other adds' median, the event loop's longest stall
 * (monitorEventLoopDelay), and the searches answered while that add was under way.
 *
 *   node dist/bench/training.js [--data docs.f32 --dim N] [--n vectors] [--codec rq2] [--pca dims] [--train-size 4096] [--batch 1000]
 *
 * Without --data it uses the 1k WordNet set the project ships, each vector added again with small
 * perturbations up to 6,000 (`--n`).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MemStore, type OpenOptions } from '../src/index.js';
import type { CodecName } from '../src/codec/codec.js';
import { fitThreads } from '../src/space/fit-job.js';
import { benchArgs } from './args.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';
import { addInBatches, searchBeside, type StallRun } from './stall-loop.js';
import { makeBenchDir, removeBenchDir } from './temp-dirs.js';

interface Run extends StallRun {
  readonly trained: boolean;
}

const INSIDE = { minWork: Infinity, inlineMax: Infinity };

async function build(way: 'off the write' | 'inside the write', docs: readonly Float32Array[], options: OpenOptions, trainSize: number, batch: number): Promise<Run> {
  const saved = { ...fitThreads };
  if (way === 'inside the write') Object.assign(fitThreads, INSIDE);
  const dir = makeBenchDir('memstore-training-');
  try {
    const store = await MemStore.open(dir, { ...options, dim: docs[0]!.length, cache: false, pages: false, trainSize });
    try {
      const delay = monitorEventLoopDelay({ resolution: 5 });
      const loop = searchBeside(store, docs);
      delay.enable();
      const { times, crossing, searchesDuring } = await addInBatches(store, docs, batch, trainSize, loop.searches);
      delay.disable();
      await loop.stop();
      return { way, addP50: median(times), crossing, stall: delay.max / 1e6, searchesDuring, trained: store.stats().trained };
    } finally {
      await store.close();
    }
  } finally {
    removeBenchDir(dir);
    Object.assign(fitThreads, saved);
  }
}

/** `docs`, repeated with small seeded perturbations until there are `n`. */
function grown(docs: readonly Float32Array[], n: number): Float32Array[] {
  let seed = 7;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  return Array.from({ length: n }, (_, i) => {
    const v = docs[i % docs.length]!;
    return i < docs.length ? v : v.map((x) => x + 0.01 * next());
  });
}

async function main(): Promise<void> {
  const { values } = benchArgs(
    'dist/bench/training.js',
    { options: { ...DATA_OPTIONS, codec: { type: 'string' }, pca: { type: 'string' }, 'train-size': { type: 'string' }, batch: { type: 'string' } } },
    { numbers: ['n', 'pca', 'train-size', 'batch'] },
  );
  const data = datasetFrom(values);
  const n = Number(values.n ?? (values.data === undefined ? 6_000 : data.docs.length));
  const docs = data.docs.length >= n ? data.docs.slice(0, n) : grown(data.docs, n);
  const trainSize = Number(values['train-size'] ?? 4096);
  const batch = Number(values.batch ?? 1000);
  const codec = (values.codec ?? 'rq2') as CodecName;
  const options: OpenOptions = { codec, ...(values.pca === undefined ? {} : { pca: { dims: Number(values.pca) } }) };
  if (docs.length <= trainSize) throw new Error(`${docs.length} vectors never pass trainSize ${trainSize}`);
  const runs = [await build('off the write', docs, options, trainSize, batch), await build('inside the write', docs, options, trainSize, batch)];
  process.stdout.write(`data: ${data.name}, ${docs.length} x ${data.dim}-d, ${codec}${values.pca === undefined ? '' : ` with PCA to ${values.pca}`}, trainSize ${trainSize}, added in batches of ${batch}; a search loop beside the adds (one in flight, 1 ms apart)\n\n`);
  process.stdout.write('| training | add p50 (others) | the add that reached trainSize | longest event-loop stall (adds) | searches answered during that add | trained at the end |\n|---|---:|---:|---:|---:|---|\n');
  for (const r of runs) process.stdout.write(`| ${r.way} | ${r.addP50.toFixed(1)} ms | ${r.crossing.toFixed(0)} ms | ${r.stall.toFixed(0)} ms | ${r.searchesDuring} | ${r.trained} |\n`);
}

await main();
