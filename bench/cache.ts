/**
 * The lookaside cache under a conversational query stream: an agent's queries repeat (retries,
 * tool loops), come back nearly the same (follow-up turns) or are new. The same stream runs on two
 * stores built from the same data, one with the cache and one without, interleaved query by query
 * so that both see the same machine load; it reports hit rates by kind, latency of exact hits, near
 * hits and misses, queries/s, and the full-precision reads the cache's hot vectors saved. Every
 * answer of the cached store is checked against the uncached one.
 *
 *   node dist/bench/cache.js [--data FILE --queries FILE --dim N] [--n 10000] [--stream 4000]
 *                            [--repeat 0.3] [--near 0.3] [--near-cos 0.99,0.9999] [--k 10] [--rescore true]
 *
 * Without --data it uses the 1k WordNet set the project ships.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MemStore } from '../src/memstore.js';
import type { SearchHit } from '../src/memstore.js';
import { readVectors, rng, shippedDataset, type Dataset } from './data.js';

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
}

function resolve(o: CacheBenchOptions, data: Dataset): Resolved {
  return Object.freeze<Resolved>({
    n: Math.min(o.n ?? data.docs.length, data.docs.length),
    stream: o.stream ?? 4000,
    repeat: o.repeat ?? 0.3,
    near: o.near ?? 0.3,
    nearCos: o.nearCos ?? [0.99, 0.9999],
    k: o.k ?? 10,
    rescore: o.rescore ?? true,
    seed: o.seed ?? 1,
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

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function p99(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

function same(a: SearchHit[], b: SearchHit[]): boolean {
  return a.length === b.length && a.every((h, i) => h.id === b[i]!.id && Math.abs(h.score - b[i]!.score) <= 1e-6);
}

export async function runCacheBench(data: Dataset, options: CacheBenchOptions, write: (line: string) => void): Promise<void> {
  const o = resolve(options, data);
  const stream = makeStream(data, o);
  const dirs = [mkdtempSync(join(tmpdir(), 'memstore-cache-on-')), mkdtempSync(join(tmpdir(), 'memstore-cache-off-'))];
  try {
    const records = data.docs.slice(0, o.n).map((vector, i) => ({ id: `doc-${i}`, vector, meta: { i } }));
    for (const dir of dirs) {
      const s = await MemStore.open(dir, { dim: data.dim, durability: 'none', cache: false });
      for (let at = 0; at < records.length; at += 1000) await s.add(records.slice(at, at + 1000));
      await s.close();
    }
    const on = await MemStore.open(dirs[0]!, { rescore: o.rescore });
    const off = await MemStore.open(dirs[1]!, { rescore: o.rescore, cache: false });
    const search = { k: o.k };
    // Warm-up: JIT, page cache; then a fresh cache, so the stream starts cold.
    for (const q of data.queries.slice(0, 50)) {
      await off.search(q, search);
      await on.search(q, search);
    }
    await on.close();
    const cached = await MemStore.open(dirs[0]!, { rescore: o.rescore });
    const times = { exact: [] as number[], near: [] as number[], miss: [] as number[], off: [] as number[], offFresh: [] as number[], missFresh: [] as number[] };
    const byKind: Record<Kind, { n: number; exact: number; near: number }> = { repeat: { n: 0, exact: 0, near: 0 }, near: { n: 0, exact: 0, near: 0 }, fresh: { n: 0, exact: 0, near: 0 } };
    let mismatches = 0;
    let onTotal = 0;
    let offTotal = 0;
    const progressEvery = Math.max(1, Math.floor(stream.length / 10));
    for (const [i, { q, kind }] of stream.entries()) {
      const before = cached.stats().cache;
      // Alternate which store goes first, so neither always finds the CPU caches warm.
      let a: SearchHit[];
      let b: SearchHit[];
      let tOn: number;
      let tOff: number;
      if (i % 2 === 0) {
        let t = performance.now();
        a = await cached.search(q, search);
        tOn = performance.now() - t;
        t = performance.now();
        b = await off.search(q, search);
        tOff = performance.now() - t;
      } else {
        let t = performance.now();
        b = await off.search(q, search);
        tOff = performance.now() - t;
        t = performance.now();
        a = await cached.search(q, search);
        tOn = performance.now() - t;
      }
      onTotal += tOn;
      offTotal += tOff;
      if (!same(a, b)) mismatches++;
      const after = cached.stats().cache;
      byKind[kind].n++;
      times.off.push(tOff);
      if (after.exactHits > before.exactHits) {
        times.exact.push(tOn);
        byKind[kind].exact++;
      } else if (after.nearHits > before.nearHits) {
        times.near.push(tOn);
        byKind[kind].near++;
      } else {
        times.miss.push(tOn);
        if (kind === 'fresh') {
          times.missFresh.push(tOn);
          times.offFresh.push(tOff);
        }
      }
      if ((i + 1) % progressEvery === 0) process.stderr.write(`  ${i + 1}/${stream.length} queries\n`);
    }
    const s = cached.stats().cache;
    const us = (ms: number) => (ms * 1000).toFixed(1);
    write(`data: ${data.name}, ${o.n} x ${data.dim}-d, int8, rescore ${o.rescore}, k ${o.k}; stream of ${stream.length} queries: ${o.repeat} repeats, ${o.near} near (cosine ${o.nearCos[0]}-${o.nearCos[1]}), the rest fresh; cache defaults (64 entries)`);
    write('');
    write('| query kind | queries | exact hits | near hits | hit rate |');
    write('|---|---:|---:|---:|---:|');
    for (const kind of ['repeat', 'near', 'fresh'] as const) {
      const k = byKind[kind];
      write(`| ${kind} | ${k.n} | ${k.exact} | ${k.near} | ${(((k.exact + k.near) / Math.max(1, k.n)) * 100).toFixed(1)}% |`);
    }
    write('');
    write('| | count | p50 µs | p99 µs | p50 / p50 of a search without the cache |');
    write('|---|---:|---:|---:|---:|');
    const offP50 = median(times.off);
    write(`| exact hit | ${times.exact.length} | ${us(median(times.exact))} | ${us(p99(times.exact))} | 1/${(offP50 / median(times.exact)).toFixed(0)} |`);
    write(`| near hit | ${times.near.length} | ${us(median(times.near))} | ${us(p99(times.near))} | 1/${(offP50 / median(times.near)).toFixed(1)} |`);
    write(`| miss (cache on) | ${times.miss.length} | ${us(median(times.miss))} | ${us(p99(times.miss))} | ${(median(times.miss) / offP50).toFixed(3)} |`);
    write(`| every query, cache off | ${times.off.length} | ${us(offP50)} | ${us(p99(times.off))} | 1 |`);
    write('');
    write(`fresh queries only (all misses on both): p50 ${us(median(times.missFresh))} µs with the cache, ${us(median(times.offFresh))} µs without: ratio ${(median(times.missFresh) / median(times.offFresh)).toFixed(3)}`);
    write(`queries/s over the stream: ${(stream.length / (onTotal / 1000)).toFixed(0)} with the cache, ${(stream.length / (offTotal / 1000)).toFixed(0)} without (${(offTotal / onTotal).toFixed(2)}x)`);
    write(`bound failures ${s.boundFailures}, evictions ${s.evictions}, cache bytes ${s.bytes}, full-precision reads saved by hot vectors ${s.fullReadsSaved}`);
    write(`answers that differed from the uncached store: ${mismatches}`);
    await cached.close();
    await off.close();
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      queries: { type: 'string' },
      dim: { type: 'string' },
      n: { type: 'string' },
      stream: { type: 'string' },
      repeat: { type: 'string' },
      near: { type: 'string' },
      'near-cos': { type: 'string' },
      k: { type: 'string' },
      rescore: { type: 'string' },
    },
  });
  let data: Dataset;
  if (values.data !== undefined) {
    const docs = readVectors(values.data, values.dim === undefined ? undefined : Number(values.dim));
    const queries = values.queries === undefined ? docs.rows.splice(Math.floor(docs.rows.length * 0.9)) : readVectors(values.queries, docs.dim).rows;
    data = { name: values.data, dim: docs.dim, docs: docs.rows, queries };
  } else {
    data = shippedDataset();
  }
  const cos = values['near-cos']?.split(',').map(Number);
  await runCacheBench(
    data,
    {
      ...(values.n === undefined ? {} : { n: Number(values.n) }),
      ...(values.stream === undefined ? {} : { stream: Number(values.stream) }),
      ...(values.repeat === undefined ? {} : { repeat: Number(values.repeat) }),
      ...(values.near === undefined ? {} : { near: Number(values.near) }),
      ...(cos === undefined ? {} : { nearCos: [cos[0]!, cos[1]!] as const }),
      ...(values.k === undefined ? {} : { k: Number(values.k) }),
      ...(values.rescore === undefined ? {} : { rescore: values.rescore !== 'false' }),
    },
    (line) => process.stdout.write(`${line}\n`),
  );
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) await main();
