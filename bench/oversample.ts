/**
 * How many candidates rescoring needs: one store built with its defaults, copied once per
 * `oversample` value and each copy opened with it (cache off, so each query is searched), then
 * searched at its default `nprobe`, an `nprobe` sweep and `exact: true`, the copies interleaved
 * query by query (in an order that turns from query to query), so a change in the machine's load
 * falls on all of them alike.
 * Recall@10 is against exact float32 search; the figures are p50 and mean latency per setting.
 *
 *   node dist/bench/oversample.js [--data docs.f32 --queries queries.f32 --dim N] [--n first-N] [--oversample 4,2] [--nprobe 32,64,128] [--queries-used 1000] [--pca DIMS] [--codec int8] [--metric cosine]
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import { MemStore } from '../src/memstore.js';
import type { Metric, SearchOptions } from '../src/options.js';
import type { CodecName } from '../src/codec/codec.js';
import { exactSearch } from './baselines.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';

const K = 10;
const ROUNDS = 3;

const { values } = benchArgs('dist/bench/oversample.js', { options: { ...DATA_OPTIONS, oversample: { type: 'string' }, nprobe: { type: 'string' }, 'queries-used': { type: 'string' }, pca: { type: 'string' }, codec: { type: 'string' }, metric: { type: 'string' } } }, { numbers: ['oversample', 'nprobe', 'queries-used'] });
const all = datasetFrom(values);
const n = Math.min(all.docs.length, values.n === undefined ? all.docs.length : Number(values.n));
const data = { ...all, docs: all.docs.slice(0, n), queries: all.queries.slice(0, values['queries-used'] === undefined ? 1000 : Number(values['queries-used'])) };
const oversamples = (values.oversample ?? '4,2').split(',').map(Number);
const pca = values.pca === undefined ? {} : { pca: { dims: Number(values.pca) } };
const codec = (values.codec ?? 'int8') as CodecName;
// The store's metric and the ground truth's: a store refuses one it does not know.
const metric = (values.metric ?? 'cosine') as Metric;

const root = mkdtempSync(join(tmpdir(), 'memstore-oversample-'));
try {
  const built = join(root, 'built');
  // Opened before the ground truth is computed: a codec or metric it does not know is refused at once.
  const store = await MemStore.open(built, { dim: data.dim, durability: 'none', cache: false, codec, metric, ...pca });
  for (let at = 0; at < n; at += 1000) await store.add(data.docs.slice(at, at + 1000).map((vector, i) => ({ id: String(at + i), vector })));
  await store.close();
  const truth = exactSearch(data, metric, K).result.map((rows) => new Set(rows.map(String)));
  const stores = await Promise.all(
    oversamples.map(async (oversample) => {
      const dir = join(root, `oversample-${oversample}`);
      cpSync(built, dir, { recursive: true });
      return { oversample, store: await MemStore.open(dir, { cache: false, oversample }) };
    }),
  );
  try {
    const { nprobe, pages } = stores[0]!.store.stats();
    const settings: { label: string; options: SearchOptions }[] = [
      { label: `default (nprobe ${nprobe} of ${pages})`, options: {} },
      // Probing every page is the default's search again.
      ...(values.nprobe ?? '32,64,128').split(',').map(Number).filter((p) => p < pages).map((p) => ({ label: `nprobe ${p}`, options: { nprobe: p } })),
      { label: 'exact: true', options: { exact: true } },
    ];
    const runs = settings.flatMap((s) => stores.map((st) => ({ ...s, ...st, times: [] as number[], found: 0, read: 0 })));
    for (const r of runs) for (const q of data.queries.slice(0, 20)) await r.store.search(q, { k: K, ...r.options });
    const chunk = Math.ceil(data.queries.length / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = round * chunk; i < Math.min(data.queries.length, (round + 1) * chunk); i++) {
        // Each query takes the copies in another order: the one searched right after another copy's
        // scan ran up to 20% slower or faster on GloVe, whichever oversample it had.
        for (const r of runs.map((_, j) => runs[(j + i) % runs.length]!)) {
          const before = r.store.stats().rescoring;
          const t = performance.now();
          const hits = await r.store.search(data.queries[i]!, { k: K, ...r.options });
          r.times.push(performance.now() - t);
          const after = r.store.stats().rescoring;
          r.read += after.candidates - after.skipped - (before.candidates - before.skipped);
          for (const h of hits) if (truth[i]!.has(h.id)) r.found++;
        }
      }
    }
    const q = data.queries.length;
    process.stdout.write(`${data.name}: ${n} x ${data.dim}-d, ${metric}, ${codec}${values.pca === undefined ? '' : `, PCA ${values.pca}`}, k ${K}, ${q} queries, cache off, ${ROUNDS} rounds interleaved\n\n`);
    process.stdout.write('| search | oversample | recall@10 | vectors read per search | p50 µs | mean µs | mean against the first oversample |\n|---|---:|---:|---:|---:|---:|---:|\n');
    for (const s of settings) {
      const mine = runs.filter((r) => r.label === s.label);
      const base = mine[0]!.times.reduce((a, b) => a + b, 0);
      for (const r of mine) {
        const total = r.times.reduce((a, b) => a + b, 0);
        process.stdout.write(`| ${s.label} | ${r.oversample} | ${(r.found / (q * K)).toFixed(4)} | ${(r.read / q).toFixed(1)} | ${(median(r.times) * 1000).toFixed(0)} | ${((total / q) * 1000).toFixed(0)} | ${(total / base).toFixed(3)} |\n`);
      }
    }
  } finally {
    for (const { store } of stores) await store.close();
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
