/**
 * The lookaside cache under a conversational query stream: an agent's queries repeat (retries,
 * tool loops), come back nearly the same (follow-up turns) or are new. The same stream is replayed
 * on one store with the cache and without it. By default both run in one fresh process per round,
 * on two copies of the store, query by query, which one goes first alternating: each query's two
 * timings are taken under the same conditions, so a machine shared with other work moves both
 * (replays in separate processes, `--separate`, differed by 25% between two runs of the same build
 * on this project's machine). With `--separate`, each replays in a fresh process of its own (so
 * neither pays for the other's heap), alternating over rounds. It reports hit rates by kind, latency of exact
 * hits, near hits and misses, queries/s, and the full-precision reads the cache's hot vectors
 * saved; every answer with the cache is checked against the answer without it. Beside the p50s
 * over all rounds it gives each round's ratios against that round's searches without the cache, and
 * their geometric mean: the rounds take turns at which copy is opened first, which moves a round's
 * ratios one way or the other (replayPaired()), and over an even number of rounds the mean takes
 * that out.
 *
 *   node dist/bench/cache.js [--data FILE --queries FILE --dim N] [--n 10000] [--stream 4000]
 *                            [--repeat 0.3] [--near 0.3] [--near-cos 0.99,0.9999] [--k 10] [--rescore true] [--rounds 2]
 *                            [--cache '{"bytes":16777216}']   (the cache's options where it is on; default: the defaults)
 *                            [--separate]   (each configuration in a process of its own instead of both in one)
 *                            [--off-at misses]   (the store without the cache searches only the queries the one with it misses)
 *                            [--mmap false]   (both stores read full vectors with positioned reads, not through memory maps)
 *
 * Without --data it uses the 1k WordNet set the project ships.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { MemStore } from '../src/memstore.js';
import type { CacheOptions } from '../src/options.js';
import { rng } from '../src/random.js';
import type { Dataset } from '../src/cli/datasets.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { percentile } from './percentile.js';

export interface CacheBenchOptions {
  /** Documents stored. @default all of the data set */
  n?: number;
  /** Queries in the stream. @default 4000 */
  stream?: number;
  /** Share of queries that repeat an earlier one exactly. @default 0.3 */
  repeat?: number;
  /** Share of queries near an earlier one. @default 0.3 */
  near?: number;
  /** Cosine range of a near query to the one it follows. @default [0.99, 0.9999] */
  nearCos?: readonly [number, number];
  /** @default 10 */
  k?: number;
  /** @default true */
  rescore?: boolean;
  /** @default 1 */
  seed?: number;
  /** The cache's options in the replay with the cache on. @default the store's defaults */
  cache?: CacheOptions;
  /** Replay with and without the cache each in a process of its own, instead of both in one, query by query. @default false */
  separate?: boolean;
  /**
   * Which queries the store without the cache searches: `every` one, or only those the store with
   * the cache `misses` (known from an untimed replay on a third copy first). A store that searches
   * every query keeps its codes warmer in the CPU's caches than one whose hits leave gaps between its
   * scans; with `misses` both scan at the same queries, and a miss is compared like for like.
   * Paired replays only. @default 'every'
   */
  offAt?: 'every' | 'misses';
  /** Both stores' `mmap` option: false reads full vectors and texts with positioned reads. @default true */
  mmap?: boolean;
}

interface Resolved {
  readonly n: number;
  readonly stream: number;
  readonly repeat: number;
  readonly near: number;
  readonly nearCos: readonly [number, number];
  readonly k: number;
  readonly rescore: boolean;
  readonly seed: number;
  readonly cache: CacheOptions | undefined;
  readonly separate: boolean;
  readonly offAt: 'every' | 'misses';
  readonly mmap: boolean;
}

function resolve(o: CacheBenchOptions, data: Dataset): Resolved {
  if (o.offAt !== undefined) offAtOf(o.offAt);
  // Apart, the store without the cache replays in a process of its own and cannot know the other's misses.
  if (o.separate === true && o.offAt === 'misses') throw new Error('--off-at misses needs both stores in one process: it cannot go with --separate');
  return Object.freeze<Resolved>({
    n: Math.min(o.n ?? data.docs.length, data.docs.length),
    stream: o.stream ?? 4000,
    repeat: o.repeat ?? 0.3,
    near: o.near ?? 0.3,
    nearCos: o.nearCos ?? [0.99, 0.9999],
    k: o.k ?? 10,
    rescore: o.rescore ?? true,
    seed: o.seed ?? 1,
    cache: o.cache,
    separate: o.separate ?? false,
    offAt: o.offAt ?? 'every',
    mmap: o.mmap ?? true,
  });
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next());
}

/** A vector at cosine `cos` to `q`, with q's length. */
function perturb(q: Float32Array, cos: number, next: () => number): Float32Array {
  const len = Math.hypot(...q);
  const u = q.map((x) => x / len);
  const r = u.map(() => gaussian(next));
  const along = r.reduce((s, x, i) => s + x * u[i]!, 0);
  const o = r.map((x, i) => x - along * u[i]!);
  const olen = Math.hypot(...o);
  const sin = Math.sqrt(1 - cos * cos);
  return u.map((x, i) => (cos * x + (sin * o[i]!) / olen) * len);
}

type Kind = 'repeat' | 'near' | 'fresh';

/** The query stream: fresh queries from the data set's queries, repeats and near repeats of earlier ones. */
function makeStream(data: Dataset, o: Resolved): { q: Float32Array; kind: Kind }[] {
  const next = rng(o.seed);
  const out: { q: Float32Array; kind: Kind }[] = [];
  let fresh = 0;
  for (let i = 0; i < o.stream; i++) {
    const roll = next();
    const earlier = out[Math.floor(next() * Math.min(out.length, 64)) + Math.max(0, out.length - 64)];
    if (earlier !== undefined && roll < o.repeat) out.push({ q: earlier.q, kind: 'repeat' });
    else if (earlier !== undefined && roll < o.repeat + o.near) out.push({ q: perturb(earlier.q, o.nearCos[0] + (o.nearCos[1] - o.nearCos[0]) * next(), next), kind: 'near' });
    else out.push({ q: data.queries[fresh++ % data.queries.length]!, kind: 'fresh' });
  }
  return out;
}

/** What one process measured replaying the stream on one store. */
interface Replay {
  /** Milliseconds per query, in stream order. */
  ms: number[];
  /** 'exact' | 'near' | 'miss' per query (all 'miss' without the cache). */
  served: ('exact' | 'near' | 'miss')[];
  /** Ids and scores of every answer, to compare the two stores. */
  answers: string[];
  cache: ReturnType<MemStore['stats']>['cache'];
  rescoring: ReturnType<MemStore['stats']>['rescoring'];
  /**
   * Where `served` was foreseen (replayPaired() with `expected`): the exact and near hits the cache
   * counted over the replay, less those foreseen (0 and 0 when every query went as foreseen, the
   * replay being deterministic; a query served otherwise than foreseen shows as one of them).
   */
  unforeseen?: { exact: number; near: number };
}

/** The options a replay opens its store with, the cache on or off. */
function openOptions(o: Resolved, cache: boolean): { rescore: boolean; mmap: boolean; cache?: CacheOptions | false } {
  const base = { rescore: o.rescore, mmap: o.mmap };
  return cache ? (o.cache === undefined ? base : { ...base, cache: o.cache }) : { ...base, cache: false };
}

/** Warm-up before a replay: JIT and page cache, with queries the stream does not ask; the store is closed after, so its cache starts cold. */
async function warmUp(dir: string, cache: boolean, o: Resolved, warm: readonly Float32Array[]): Promise<void> {
  const store = await MemStore.open(dir, openOptions(o, cache));
  try {
    for (const q of warm) await store.search(q, { k: o.k });
  } finally {
    await store.close();
  }
}

/** A replay with nothing recorded yet, its counters as `store` has them now. */
function emptyReplay(store: MemStore): Replay {
  return { ms: [], served: [], answers: [], cache: store.stats().cache, rescoring: store.stats().rescoring };
}

/** How the cache served the search between two readings of its counters. */
function servedBy(before: Replay['cache'], after: Replay['cache']): Replay['served'][number] {
  return after.exactHits > before.exactHits ? 'exact' : after.nearHits > before.nearHits ? 'near' : 'miss';
}

/** An answer as the two stores' are compared: ids and scores to 6 decimals. */
function answerOf(hits: readonly { id: string; score: number }[]): string {
  return hits.map((h) => `${h.id}:${h.score.toFixed(6)}`).join(' ');
}

/** Ends `out` with the counters `store` has now. */
function finishReplay(out: Replay, store: MemStore): Replay {
  out.cache = store.stats().cache;
  out.rescoring = store.stats().rescoring;
  return out;
}

/** How the store in `dir`, with the cache, serves each query of `stream` (untimed), after the warm-up a timed replay has. */
async function servedAlong(dir: string, stream: readonly Float32Array[], o: Resolved, warm: readonly Float32Array[]): Promise<Replay['served']> {
  await warmUp(dir, true, o, warm);
  const s = await MemStore.open(dir, openOptions(o, true));
  try {
    const served: Replay['served'] = [];
    for (const q of stream) {
      const before = s.stats().cache;
      await s.search(q, { k: o.k });
      served.push(servedBy(before, s.stats().cache));
    }
    return served;
  } finally {
    await s.close();
  }
}

/** Replays `stream` on the store in `dir` (the child side): a fresh process, so neither store pays for the other's heap. */
async function replay(dir: string, cache: boolean, stream: readonly Float32Array[], o: Resolved, warm: readonly Float32Array[]): Promise<Replay> {
  await warmUp(dir, cache, o, warm);
  const s = await MemStore.open(dir, openOptions(o, cache));
  try {
    const out = emptyReplay(s);
    for (const q of stream) {
      const before = s.stats().cache;
      const t = performance.now();
      const hits = await s.search(q, { k: o.k });
      out.ms.push(performance.now() - t);
      out.served.push(servedBy(before, s.stats().cache));
      out.answers.push(answerOf(hits));
    }
    return finishReplay(out, s);
  } finally {
    await s.close();
  }
}

/**
 * Replays `stream` on two copies of a store in one process (the child side), the copy in `onDir`
 * with the cache and the one in `offDir` without, query by query, which goes first alternating, so
 * both timings of a query are taken under the same conditions. With `expected` (how the store with
 * the cache serves each query), the store without it searches only where that is a miss: its time
 * elsewhere is NaN, its answer empty. With `offFirst`, the store without the cache is warmed and
 * opened first. Of two copies of a store opened in one process, the one opened first searched
 * slower, whatever its cache did: both without the cache, 1.03 to 1.05 of the other's mean time
 * (fresh queries on the 10k set, four runs of a scratch probe: bench/results/cache.md); the store with the cache, 1.11 to 1.14 of the store
 * without it when opened first, 1.01 to 1.02 when opened second. So the rounds take turns.
 */
async function replayPaired(onDir: string, offDir: string, stream: readonly Float32Array[], o: Resolved, warm: readonly Float32Array[], expected: Replay['served'] | undefined, offFirst: boolean): Promise<{ on: Replay; off: Replay }> {
  const order = offFirst ? ([false, true] as const) : ([true, false] as const);
  for (const cache of order) await warmUp(cache ? onDir : offDir, cache, o, warm);
  const opened: MemStore[] = [];
  for (const cache of order) opened.push(await MemStore.open(cache ? onDir : offDir, openOptions(o, cache)));
  const [on, off] = offFirst ? [opened[1]!, opened[0]!] : [opened[0]!, opened[1]!];
  try {
    const stores = { on, off };
    const out = { on: emptyReplay(on), off: emptyReplay(off) };
    for (const [i, q] of stream.entries()) {
      // With the kinds foreseen, the counters are read once, after the replay: read before each
      // search, stats() (a few stat calls) had cooled the caches for it, and an exact hit right after
      // one took 1 µs more (4.6 against 3.7, a scratch probe on the 10k set), a fifth of it.
      const before = expected === undefined ? on.stats().cache : undefined;
      for (const which of i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        if (which === 'off' && expected !== undefined && expected[i] !== 'miss') {
          out.off.ms.push(Number.NaN);
          out.off.answers.push('');
          continue;
        }
        const t = performance.now();
        const hits = await stores[which].search(q, { k: o.k });
        out[which].ms.push(performance.now() - t);
        out[which].answers.push(answerOf(hits));
      }
      out.on.served.push(before === undefined ? expected![i]! : servedBy(before, on.stats().cache));
      out.off.served.push('miss');
    }
    const start = out.on.cache;
    const onReplay = finishReplay(out.on, on);
    if (expected !== undefined) {
      const counted = (kind: Replay['served'][number]) => expected.filter((s) => s === kind).length;
      onReplay.unforeseen = { exact: onReplay.cache.exactHits - start.exactHits - counted('exact'), near: onReplay.cache.nearHits - start.nearHits - counted('near') };
    }
    return { on: onReplay, off: finishReplay(out.off, off) };
  } finally {
    await on.close();
    await off.close();
  }
}

/**
 * Builds one store, then replays the stream on it with the cache and without for `rounds` rounds,
 * each round in a fresh process (both stores in it, on a copy each, unless `separate`: then one
 * process per configuration, alternating on, off, off, on, ...), and reports medians over all rounds.
 */
export async function runCacheBench(data: Dataset, dataArgs: readonly string[], options: CacheBenchOptions & { rounds?: number }, write: (line: string) => void): Promise<void> {
  const o = resolve(options, data);
  const rounds = options.rounds ?? 2;
  const kinds = makeStream(data, o).map((x) => x.kind);
  const dir = mkdtempSync(join(tmpdir(), 'memstore-cache-bench-'));
  try {
    const records = data.docs.slice(0, o.n).map((vector, i) => ({ id: `doc-${i}`, vector, meta: { i } }));
    const s = await MemStore.open(dir, { dim: data.dim, durability: 'none', cache: false });
    for (let at = 0; at < records.length; at += 1000) await s.add(records.slice(at, at + 1000));
    await s.close();
    const runs: { on: Replay[]; off: Replay[] } = { on: [], off: [] };
    const child = (args: readonly string[], what: string): string => {
      const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...args, ...dataArgs, ...optionArgs(options)], { encoding: 'utf8', maxBuffer: 1 << 30 });
      if (run.status !== 0) throw new Error(`the ${what} replay failed: ${run.stderr}`);
      return run.stdout;
    };
    // Replayed side by side, each store is a copy of the one built, made the same way: the built
    // store's own files against a fresh copy of them were not alike (a CPU profile of the same
    // searches: copying full vectors out of the memory map took 4x the samples in the built store's
    // files as in the copy's), and the store with the cache had been the built one.
    const copies = { on: `${dir}-on`, off: `${dir}-off`, ...(o.offAt === 'misses' ? { ahead: `${dir}-ahead` } : {}) };
    if (!o.separate) for (const copy of Object.values(copies)) cpSync(dir, copy, { recursive: true });
    try {
      for (let r = 0; r < rounds; r++) {
        if (!o.separate) {
          process.stderr.write(`  round ${r + 1}/${rounds}: cache on and off, query by query\n`);
          const ahead = copies.ahead === undefined ? [] : ['--dir3', copies.ahead];
          // JSON writes NaN (a query not searched) as null.
          const both = JSON.parse(child(['--child', 'paired', '--dir', copies.on, '--dir2', copies.off, ...ahead, ...(r % 2 === 1 ? ['--off-first'] : [])], 'paired'), (key, v: unknown) => (key !== '' && v === null ? Number.NaN : v)) as { on: Replay; off: Replay };
          runs.on.push(both.on);
          runs.off.push(both.off);
          continue;
        }
        for (const mode of r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
          process.stderr.write(`  round ${r + 1}/${rounds}: cache ${mode}\n`);
          runs[mode].push(JSON.parse(child(['--child', mode, '--dir', dir], mode)) as Replay);
        }
      }
    } finally {
      for (const copy of Object.values(copies)) rmSync(copy, { recursive: true, force: true });
    }
    const on = runs.on[runs.on.length - 1]!;
    const off = runs.off[runs.off.length - 1]!;
    const mismatches = on.answers.filter((a, i) => off.answers[i] !== '' && a !== off.answers[i]).length;
    // NaN: a query the store without the cache did not search (--off-at misses).
    const pick = (rs: Replay[], keep: (i: number, r: Replay) => boolean) => rs.flatMap((r) => r.ms.filter((ms, i) => !Number.isNaN(ms) && keep(i, r)));
    const offAll = pick(runs.off, () => true);
    const offP50 = percentile(offAll, 0.5);
    const exact = pick(runs.on, (i, r) => r.served[i] === 'exact');
    const near = pick(runs.on, (i, r) => r.served[i] === 'near');
    const miss = pick(runs.on, (i, r) => r.served[i] === 'miss');
    const freshOn = pick(runs.on, (i, r) => kinds[i] === 'fresh' && r.served[i] === 'miss');
    const freshOff = pick(runs.off, (i) => kinds[i] === 'fresh' && on.served[i] === 'miss');
    const us = (ms: number) => (ms * 1000).toFixed(1);
    const offAtMisses = o.offAt === 'misses';
    write(`data: ${data.name}, ${o.n} x ${data.dim}-d, int8, rescore ${o.rescore}, k ${o.k}; a stream of ${kinds.length} queries: ${o.repeat} repeats, ${o.near} near (cosine ${o.nearCos[0]} to ${o.nearCos[1]} to an earlier one), the rest fresh; ${o.cache === undefined ? 'default cache options' : `cache ${JSON.stringify(o.cache)}`}; ${rounds} rounds, ${o.separate ? 'each configuration in a fresh process' : 'each a fresh process replaying both stores (a copy each) query by query, the one opened first taking turns'}${offAtMisses ? '; the store without the cache searching only the queries the one with it missed' : ''}${o.mmap ? '' : '; full vectors and texts read with positioned reads (mmap: false)'}`);
    write('');
    write('| query kind | queries | exact hits | near hits | served by the cache |');
    write('|---|---:|---:|---:|---:|');
    for (const kind of ['repeat', 'near', 'fresh'] as const) {
      const at = kinds.flatMap((k, i) => (k === kind ? [i] : []));
      const ex = at.filter((i) => on.served[i] === 'exact').length;
      const nr = at.filter((i) => on.served[i] === 'near').length;
      write(`| ${kind} | ${at.length} | ${ex} | ${nr} | ${(((ex + nr) / Math.max(1, at.length)) * 100).toFixed(1)}% |`);
    }
    write('');
    write('| | samples | p50 µs | p99 µs | p50 against a search without the cache |');
    write('|---|---:|---:|---:|---:|');
    // A kind the stream never served (a stream of fresh queries only has no hits) gets dashes, not NaN.
    const row = (name: string, ms: readonly number[], against: (p50: number) => string) =>
      ms.length === 0 ? `| ${name} | 0 | – | – | – |` : `| ${name} | ${ms.length} | ${us(percentile(ms, 0.5))} | ${us(percentile(ms, 0.99))} | ${against(percentile(ms, 0.5))} |`;
    write(row('exact hit', exact, (p50) => `1/${(offP50 / p50).toFixed(0)}`));
    write(row('near hit', near, (p50) => `1/${(offP50 / p50).toFixed(1)}`));
    write(row('miss', miss, (p50) => (p50 / offP50).toFixed(3)));
    write(`| ${offAtMisses ? 'the same misses, cache off' : 'any query, cache off'} | ${offAll.length} | ${us(offP50)} | ${us(percentile(offAll, 0.99))} | 1 |`);
    write('');
    // Round by round, each against the same round's searches without the cache, and their geometric
    // mean: the copy opened first in a process searched slower whatever its cache did (replayPaired()),
    // so a round's ratios lean one way when the store with the cache was opened first and the other
    // way in the next round; over an even number of rounds the mean takes that out.
    const perRound = runs.on.map((onRun, r) => {
      const off = percentile(pick([runs.off[r]!], () => true), 0.5);
      const kind = (served: Replay['served'][number]) => percentile(pick([onRun], (i) => onRun.served[i] === served), 0.5);
      return { exact: off / kind('exact'), near: off / kind('near'), miss: kind('miss') / off, offFirst: r % 2 === 1 };
    });
    const geomean = (xs: readonly number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
    // A kind a round never served (no near hits in a stream of fresh queries) is a dash, not NaN.
    const fixed = (x: number, digits: number, prefix = '') => (Number.isFinite(x) ? `${prefix}${x.toFixed(digits)}` : '–');
    const ratios = (x: { exact: number; near: number; miss: number }) => `exact hit ${fixed(x.exact, 0, '1/')}, near hit ${fixed(x.near, 1, '1/')}, miss ${fixed(x.miss, 3)}`;
    write(`by round, against that round's searches without the cache: ${perRound.map((x, r) => `round ${r + 1} (${x.offFirst ? 'cache off' : 'cache on'} ${o.separate ? 'ran first' : 'opened first'}): ${ratios(x)}`).join('; ')}`);
    write(`geometric mean over the ${rounds} round${rounds === 1 ? '' : 's'}: ${ratios({ exact: geomean(perRound.map((x) => x.exact)), near: geomean(perRound.map((x) => x.near)), miss: geomean(perRound.map((x) => x.miss)) })}${rounds % 2 === 1 ? ' (an odd number of rounds: one order counts once more than the other)' : ''}`);
    write('');
    write(`fresh queries (misses with the cache): p50 ${us(percentile(freshOn, 0.5))} µs with the cache, ${us(percentile(freshOff, 0.5))} µs without: ${(percentile(freshOn, 0.5) / percentile(freshOff, 0.5)).toFixed(3)}`);
    const total = (rs: Replay[]) => rs.reduce((t, r) => t + r.ms.reduce((a, b) => a + b, 0), 0) / rs.length;
    if (offAtMisses) {
      // A miss the first replay did not foresee was searched by one store only: compared as it came.
      // Each query's kind is the one foreseen; the cache's counters over each round say whether they all went so.
      const off = (kind: 'exact' | 'near') => runs.on.reduce((n, r) => n + Math.abs(r.unforeseen?.[kind] ?? 0), 0);
      write(`each query's kind as the untimed replay ahead foresaw it; the cache's counters over the rounds differ from the hits foreseen by ${off('exact')} exact and ${off('near')} near (0 and 0: every query went as foreseen); queries/s not compared (the store without the cache skipped the hits)`);
    } else {
      write(`queries/s over the stream: ${(kinds.length / (total(runs.on) / 1000)).toFixed(0)} with the cache, ${(kinds.length / (total(runs.off) / 1000)).toFixed(0)} without (${(total(runs.off) / total(runs.on)).toFixed(2)}x)`);
    }
    write(`bound failures ${on.cache.boundFailures}, misses remembered with their answer alone (quiet spells) ${on.cache.answerOnly}, evictions ${on.cache.evictions}, cache bytes ${on.cache.bytes}, full-precision reads saved by hot vectors ${on.cache.fullReadsSaved} (of ${on.rescoring.candidates} candidates rescored)`);
    const unread = (r: Replay) => `${r.rescoring.skipped} of ${r.rescoring.candidates} candidates in ${r.rescoring.searches} rescored searches`;
    write(`left unread by their error bounds: ${unread(on)} with the cache, ${unread(off)} without`);
    write(`answers that differed between the two stores: ${mismatches}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function optionArgs(o: CacheBenchOptions): string[] {
  const out: string[] = [];
  if (o.n !== undefined) out.push('--n', String(o.n));
  if (o.stream !== undefined) out.push('--stream', String(o.stream));
  if (o.repeat !== undefined) out.push('--repeat', String(o.repeat));
  if (o.near !== undefined) out.push('--near', String(o.near));
  if (o.nearCos !== undefined) out.push('--near-cos', o.nearCos.join(','));
  if (o.k !== undefined) out.push('--k', String(o.k));
  if (o.rescore !== undefined) out.push('--rescore', String(o.rescore));
  if (o.cache !== undefined) out.push('--cache', JSON.stringify(o.cache));
  if (o.separate === true) out.push('--separate');
  if (o.offAt !== undefined) out.push('--off-at', o.offAt);
  if (o.mmap !== undefined) out.push('--mmap', String(o.mmap));
  return out;
}

function offAtOf(v: string): 'every' | 'misses' {
  if (v !== 'every' && v !== 'misses') throw new Error(`--off-at must be every or misses, got ${JSON.stringify(v)}`);
  return v;
}

async function main(): Promise<void> {
  const { values } = benchArgs('dist/bench/cache.js', {
    options: {
      ...DATA_OPTIONS,
      stream: { type: 'string' },
      repeat: { type: 'string' },
      near: { type: 'string' },
      'near-cos': { type: 'string' },
      k: { type: 'string' },
      rescore: { type: 'string' },
      cache: { type: 'string' },
      rounds: { type: 'string' },
      child: { type: 'string' },
      dir: { type: 'string' },
      dir2: { type: 'string' },
      dir3: { type: 'string' },
      separate: { type: 'boolean' },
      'off-at': { type: 'string' },
      'off-first': { type: 'boolean' },
      mmap: { type: 'string' },
    },
  }, { numbers: ['stream', 'repeat', 'near', 'near-cos', 'k', 'rounds'], choices: { 'off-at': ['every', 'misses'], mmap: ['true', 'false'], rescore: ['true', 'false'] } });
  const data = datasetFrom(values);
  const cos = values['near-cos']?.split(',').map(Number);
  const dataArgs = [
    ...(values.data === undefined ? [] : ['--data', values.data]),
    ...(values.queries === undefined ? [] : ['--queries', values.queries]),
    ...(values.dim === undefined ? [] : ['--dim', values.dim]),
  ];
  const options: CacheBenchOptions = {
    ...(values.n === undefined ? {} : { n: Number(values.n) }),
    ...(values.stream === undefined ? {} : { stream: Number(values.stream) }),
    ...(values.repeat === undefined ? {} : { repeat: Number(values.repeat) }),
    ...(values.near === undefined ? {} : { near: Number(values.near) }),
    ...(cos === undefined ? {} : { nearCos: [cos[0]!, cos[1]!] as const }),
    ...(values.k === undefined ? {} : { k: Number(values.k) }),
    ...(values.rescore === undefined ? {} : { rescore: values.rescore !== 'false' }),
    ...(values.cache === undefined ? {} : { cache: JSON.parse(values.cache) as CacheOptions }),
    ...(values.separate === true ? { separate: true } : {}),
    ...(values['off-at'] === undefined ? {} : { offAt: offAtOf(values['off-at']) }),
    // benchArgs took true or false only.
    ...(values.mmap === undefined ? {} : { mmap: values.mmap === 'true' }),
  };
  if (values.child !== undefined) {
    const o = resolve(options, data);
    const stream = makeStream(data, o).map((x) => x.q);
    const warm = data.docs.slice(-50).map((v) => perturb(v, 0.9, rng(o.seed + 1)));
    const expected = values.dir3 === undefined ? undefined : await servedAlong(values.dir3, stream, o, warm);
    const result = values.child === 'paired' ? await replayPaired(values.dir!, values.dir2!, stream, o, warm, expected, values['off-first'] === true) : await replay(values.dir!, values.child === 'on', stream, o, warm);
    process.stdout.write(JSON.stringify(result));
    return;
  }
  await runCacheBench(
    data,
    dataArgs,
    { ...options, ...(values.rounds === undefined ? {} : { rounds: Number(values.rounds) }) },
    (line) => process.stdout.write(`${line}\n`),
  );
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) await main();
