/**
 * Two builds of memstore side by side in one process, for a change's before and after: one store is
 * built with this build's defaults (and the options given), copied once per build, each copy opened
 * by its build, and the two searched in turn query by query (which goes first alternating), so a
 * change in the machine's load falls on both alike (separate runs of one build differed by 25% on
 * this project's machine). A build is a compiled tree, the `dist` folder of a checkout after
 * `npm run build` (an earlier commit's in a worktree, say); its `src/memstore.js` is imported, and
 * it must read the store format of this build; with `--each`, each build builds its own store from
 * the same records instead (a change of the format, or of what a store builds: the two stores then
 * differ in their pages and codes too). Reports per build recall@10 against exact float32,
 * full-precision vectors read per search, p50 and mean latency, the mean of B over A, and how many
 * searches got other ids from the two.
 *
 *   node dist/bench/builds.js --a ../before/dist [--b dist] [--data docs.f32 --queries queries.f32 --dim N] [--n N]
 *                             [--codec int8] [--metric cosine] [--queries-used 1000] [--rounds 2] [--k 10]
 *                             [--cache false] [--mmap true] [--nprobe N] [--oversample N] [--exact] [--each]
 *
 * Without --data it uses the 1k WordNet set the project ships; --b defaults to this build. With
 * memory maps (the default), each build's checkout must have its native addon built (`npm run
 * build` does it; a worktree made with `git worktree add` and only `tsc` does not): a build without
 * it would read full vectors with positioned reads, and the bench refuses to compare that.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchArgs } from './args.js';
import type { CodecName } from '../src/codec/codec.js';
import { MemStore } from '../src/memstore.js';
import type { Metric, OpenOptions, SearchOptions } from '../src/options.js';
import { exactSearch } from './baselines.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';

type Build = typeof import('../src/memstore.js');

const { values } = benchArgs('dist/bench/builds.js', {
  options: {
    ...DATA_OPTIONS,
    a: { type: 'string' },
    b: { type: 'string' },
    codec: { type: 'string' },
    metric: { type: 'string' },
    'queries-used': { type: 'string' },
    rounds: { type: 'string' },
    k: { type: 'string' },
    cache: { type: 'string' },
    mmap: { type: 'string' },
    nprobe: { type: 'string' },
    oversample: { type: 'string' },
    each: { type: 'boolean' },
    exact: { type: 'boolean' },
  },
}, { numbers: ['queries-used', 'rounds', 'k', 'nprobe', 'oversample'] });
if (values.a === undefined) throw new Error('--a: the dist folder of the build to compare with (after npm run build)');
const here = fileURLToPath(new URL('..', import.meta.url));
const builds = [
  { name: 'A', dist: resolve(values.a) },
  { name: 'B', dist: resolve(values.b ?? here) },
];
const all = datasetFrom(values);
const n = Math.min(all.docs.length, values.n === undefined ? all.docs.length : Number(values.n));
const data = { ...all, docs: all.docs.slice(0, n), queries: all.queries.slice(0, values['queries-used'] === undefined ? 1000 : Number(values['queries-used'])) };
const k = values.k === undefined ? 10 : Number(values.k);
const rounds = values.rounds === undefined ? 2 : Number(values.rounds);
const codec = (values.codec ?? 'int8') as CodecName;
const metric = (values.metric ?? 'cosine') as Metric;
const cacheOn = values.cache === 'true';
const openOptions: OpenOptions = { ...(cacheOn ? {} : { cache: false }), mmap: values.mmap !== 'false', ...(values.oversample === undefined ? {} : { oversample: Number(values.oversample) }) };
const searchOptions: SearchOptions = { k, ...(values.nprobe === undefined ? {} : { nprobe: Number(values.nprobe) }), ...(values.exact === true ? { exact: true } : {}) };

const loaded = await Promise.all(builds.map(async (b) => ({ ...b, module: (await import(pathToFileURL(join(b.dist, 'src', 'memstore.js')).href)) as Build })));
// A build whose native addon is not built (a fresh worktree, say) reads full vectors with positioned
// reads, while the other copies them out of memory maps: a comparison of the two builds would
// measure that instead. Builds from before the maps have no io/mmap.js.
if (openOptions.mmap !== false) {
  for (const b of builds) {
    const maps = await import(pathToFileURL(join(b.dist, 'io', 'mmap.js')).href).then(
      (m: { canMapFiles?: () => boolean }) => m.canMapFiles?.() === true,
      () => false,
    );
    if (!maps) throw new Error(`build ${b.name} (${b.dist}) cannot map files: build its native addon (node native/build.mjs in its checkout), or compare both with --mmap false`);
  }
}
const truth = exactSearch(data, metric, k).result.map((rows) => new Set(rows.map(String)));
const root = mkdtempSync(join(tmpdir(), 'memstore-builds-'));
try {
  const build = async (dir: string, make: Build['MemStore']): Promise<void> => {
    const store = await make.open(dir, { dim: data.dim, metric, codec, durability: 'none', cache: false });
    for (let at = 0; at < n; at += 1000) await store.add(data.docs.slice(at, at + 1000).map((vector, i) => ({ id: String(at + i), vector })));
    await store.close();
  };
  const built = join(root, 'built');
  if (values.each !== true) await build(built, MemStore);
  const runs = [];
  for (const b of loaded) {
    const dir = join(root, b.name);
    if (values.each === true) await build(dir, b.module.MemStore);
    else cpSync(built, dir, { recursive: true });
    runs.push({ ...b, store: await b.module.MemStore.open(dir, openOptions), times: [] as number[], found: 0, read: 0, answers: [] as string[] });
  }
  try {
    for (const r of runs) for (const q of data.queries.slice(0, 20)) await r.store.search(q, searchOptions);
    for (let round = 0; round < rounds; round++) {
      for (const [i, q] of data.queries.entries()) {
        for (const r of (i + round) % 2 === 0 ? runs : [...runs].reverse()) {
          const before = r.store.stats().rescoring;
          const t = performance.now();
          const hits = await r.store.search(q, searchOptions);
          r.times.push(performance.now() - t);
          const after = r.store.stats().rescoring;
          r.read += after.candidates - after.skipped - (before.candidates - before.skipped);
          for (const h of hits) if (truth[i]!.has(h.id)) r.found++;
          if (round === 0) r.answers.push(hits.map((h) => h.id).join(','));
        }
      }
    }
    const searches = rounds * data.queries.length;
    const [a, b] = runs as [(typeof runs)[number], (typeof runs)[number]];
    const mean = (r: typeof a) => r.times.reduce((x, y) => x + y, 0) / r.times.length;
    process.stdout.write(`${data.name}: ${n} x ${data.dim}-d, ${codec}, ${metric}, k ${k}, ${data.queries.length} queries x ${rounds} rounds, cache ${cacheOn ? 'on' : 'off'}, ${openOptions.mmap === false ? 'positioned reads' : 'memory maps'}${values.nprobe === undefined ? '' : `, nprobe ${values.nprobe}`}${values.oversample === undefined ? '' : `, oversample ${values.oversample}`}${values.exact === true ? ', exact: true' : ''}; the two builds searched in turn query by query${values.each === true ? ', each on a store it built' : ''}\n\n`);
    process.stdout.write('| build | dist | recall@10 | vectors read per search | p50 µs | mean µs | mean against A |\n|---|---|---:|---:|---:|---:|---:|\n');
    for (const r of runs) {
      process.stdout.write(`| ${r.name} | ${r.dist} | ${(r.found / (searches * k)).toFixed(4)} | ${(r.read / searches).toFixed(1)} | ${(median(r.times) * 1000).toFixed(0)} | ${(mean(r) * 1000).toFixed(0)} | ${(mean(r) / mean(a)).toFixed(3)} |\n`);
    }
    process.stdout.write(`\nsearches whose ids differ between A and B: ${a.answers.filter((x, i) => x !== b.answers[i]).length} of ${data.queries.length}\n`);
  } finally {
    for (const r of runs) await r.store.close();
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
