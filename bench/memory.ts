/**
 * Memory as a user's `top` shows it (DESIGN.md, "Memory, measured as users see it"): each phase
 * runs in a fresh process, and RAM per vector is the growth of anonymous RSS (`RssAnon`) from just
 * before opening (with the C allocator trimmed: baseline()) to after the searches, both at rest
 * (atRest()), divided by the count; the figure
 * right after the searches is shown too. hnswlib-node's float32 HNSW graph
 * over the same vectors is measured the same way in the same run.
 *
 * The processes that open (memstore's and hnswlib's) never load the data set: the parent writes
 * the queries to a file of their own. Reading the whole set first, even to drop it, grew V8's young
 * generation to its maximum (about 25 MB more RSS once open refilled it) and left malloc's heap
 * and thresholds in a state no process that only opens a store is in.
 *
 *   node dist/bench/memory.js [--data docs.f32 --queries queries.f32 --dim N] [--n N] [--searches 1000] [--no-hnsw]
 *                             [--cache '{"entries":1,"bytes":65536}']   (the cache-on phase's options; default: the defaults)
 *                             [--codec int8]   (the store's codec)
 *                             [--pca DIMS]   (reduce to DIMS dimensions by PCA before the codec)
 *
 * Without --data it uses the 1k WordNet set the project ships. A `docs.jsonl` beside --data gives
 * the records their texts. Phases: load (bulk add in batches of 1,000, peak RSS), open + searches
 * (open time, file-backed RSS after open and after the searches, anonymous RSS after), latency (codes only against
 * rescored, cache off), hnswlib build (once) and hnswlib open + searches.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { getHeapSpaceStatistics } from 'node:v8';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import hnswlib from 'hnswlib-node';
import { MemStore } from '../src/memstore.js';
import type { CodecName } from '../src/codec/codec.js';
import { resolveOpenOptions, type CacheOptions } from '../src/options.js';
import { shippedDataset, type Dataset } from '../src/cli/datasets.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { rescoreCost } from './rescore.js';
import { heapTrim } from '../io/heap-trim.js';

interface Proc {
  anon: number;
  file: number;
  rss: number;
  peak: number;
}

/** The process's resident memory by kind, in bytes, from /proc/self/status. */
function proc(): Proc {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { anon: kb('RssAnon'), file: kb('RssFile'), rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Bytes V8's young generation has committed: it grows under allocation and V8 alone sizes it. */
function youngBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;
}

/**
 * Collects garbage first, so the figure is what the process holds, not what it has yet to free.
 * V8 frees the memory of dead ArrayBuffers on a background thread after a collection: the pause
 * lets that finish, so neither end of a measurement counts buffers already dead.
 */
async function settled(): Promise<Proc> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) {
    gc();
    gc();
    await new Promise((resolve) => setTimeout(resolve, 200));
    gc();
  }
  return proc();
}

/**
 * What `top` shows of a process between bursts of work. V8 grows its young generation while a
 * process allocates fast and shrinks it at a collection once the recent allocation rate is low: here,
 * after six seconds idle it had in every run, and at once never. So each end of a measurement
 * "at rest" waits that long before settled(); a process that never rests keeps up to 32 MiB more
 * (V8's largest young generation), whatever it holds, and "busy" figures show that too.
 */
const REST_MS = 6000;

async function atRest(): Promise<Proc> {
  await new Promise((resolve) => setTimeout(resolve, REST_MS));
  return settled();
}

/**
 * The process before it opens anything, at rest, with the C allocator's free memory given back
 * (io/heap-trim.ts): a store trims when idle (`trimWhenIdle`), which also gave back what loading
 * the modules had left free, so a baseline holding that had made the store look smaller than it is.
 * Every phase's baseline is taken so, hnswlib-node's too.
 */
async function baseline(): Promise<Proc> {
  await new Promise((resolve) => setTimeout(resolve, REST_MS));
  heapTrim()?.();
  return settled();
}

/**
 * What most processes have done before they open a store: freed a buffer of a few MiB (a file read
 * whole, a large JSON). glibc then raises its mmap and trim thresholds to that size and keeps up to
 * twice it free in each arena for the rest of the process (the phases above avoid exactly this:
 * readQueries()); a store's trims give it back.
 */
function freeLargeBuffer(): void {
  let buffer: Uint8Array | undefined = new Uint8Array(4 << 20).fill(1);
  if (buffer[0] !== 1) throw new Error('unreachable');
  buffer = undefined;
}

/** What a trim of the C allocator would give back now: the anonymous RSS it frees (0 without the addon). */
function trimmable(): number {
  const trim = heapTrim();
  if (trim === undefined) return 0;
  const before = proc().anon;
  trim();
  return before - proc().anon;
}

/** Resets the kernel's peak-RSS mark, so VmHWM from here on measures this phase alone. */
function resetPeak(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Kernels without it leave VmHWM at the process's own peak; the sampled peak still holds.
  }
}

interface Args {
  data: string | undefined;
  queries: string | undefined;
  dim: string | undefined;
  n: number | undefined;
  searches: number;
  hnsw: boolean;
  /** The cache options of the phase with the cache on (JSON); undefined: the defaults. */
  cache: CacheOptions | undefined;
  /** The store's codec; rq codes train on the first 4,096 vectors, as PCA does. */
  codec: CodecName;
  /** Dimensions PCA reduces to (trained on the first 4,096 vectors); undefined: no PCA. */
  pca: number | undefined;
}

interface Loaded {
  readonly data: Dataset;
  readonly texts: readonly string[] | undefined;
}

function load(args: Args): Loaded {
  if (args.data === undefined) {
    const data = shippedDataset();
    const texts = readFileSync(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { text: string }).text);
    return { data: args.n === undefined ? data : { ...data, docs: data.docs.slice(0, args.n) }, texts };
  }
  const data = datasetFrom(args);
  const rows = args.n === undefined ? data.docs : data.docs.slice(0, args.n);
  const jsonl = join(dirname(args.data), 'docs.jsonl');
  const texts = existsSync(jsonl)
    ? readFileSync(jsonl, 'utf8')
        .trim()
        .split('\n')
        .slice(0, rows.length)
        .map((l) => (JSON.parse(l) as { text: string }).text)
    : undefined;
  return { data: { ...data, docs: rows }, texts };
}

function queriesFor(data: Dataset, count: number): Float32Array[] {
  return Array.from({ length: count }, (_, i) => data.queries[i % data.queries.length]!);
}

/** The searches' queries, as the parent writes them for the phases that open: dim (u32 LE), then the rows. */
function writeQueries(file: string, data: Dataset, count: number): void {
  const out = new Float32Array(1 + count * data.dim);
  new Uint32Array(out.buffer, 0, 1)[0] = data.dim;
  queriesFor(data, count).forEach((q, i) => out.set(q, 1 + i * data.dim));
  writeFileSync(file, out);
}

/**
 * One buffer for all the queries (rows are views of it), read in place, so nothing large is freed
 * before measuring: freeing a malloc'd buffer of N bytes raises glibc's mmap and trim thresholds to
 * N and 2N for the rest of the process, which changes what every later free keeps resident.
 */
function readQueries(file: string): Float32Array[] {
  const all = new Float32Array(statSync(file).size / 4);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, new Uint8Array(all.buffer), 0, all.byteLength, 0);
  } finally {
    closeSync(fd);
  }
  const dim = new Uint32Array(all.buffer, 0, 1)[0]!;
  return Array.from({ length: (all.length - 1) / dim }, (_, i) => all.subarray(1 + i * dim, 1 + (i + 1) * dim));
}

function bytesUnder(dir: string): number {
  let sum = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    sum += entry.isDirectory() ? bytesUnder(path) : statSync(path).blocks * 512;
  }
  return sum;
}

type Phase = 'load' | 'open' | 'open-uncached' | 'open-untrimmed' | 'open-freed' | 'open-freed-untrimmed' | 'latency' | 'hnsw-build' | 'hnsw-open';

/** The phases that need the data set itself: the bulk load, and hnswlib's build. */
async function build(name: 'load' | 'hnsw-build', args: Args, store: string, hnswFile: string): Promise<Record<string, number>> {
  const { data, texts } = load(args);
  const n = data.docs.length;
  if (name === 'hnsw-build') {
    const started = performance.now();
    const index = new hnswlib.HierarchicalNSW('cosine', data.dim);
    index.initIndex(n, 16, 200, 100);
    for (let i = 0; i < n; i++) index.addPoint(Array.from(data.docs[i]!), i);
    await index.writeIndex(hnswFile);
    return { buildSeconds: (performance.now() - started) / 1000 };
  }
  const before = await settled();
  resetPeak();
  let sampledPeak = before.rss;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, proc().rss);
  }, 20);
  const started = performance.now();
  const s = await MemStore.open(store, { dim: data.dim, codec: args.codec, ...(args.pca === undefined ? {} : { pca: { dims: args.pca } }) });
  for (let at = 0; at < n; at += 1000) {
    const batch = [];
    for (let i = at; i < Math.min(n, at + 1000); i++) {
      const text = texts?.[i];
      batch.push(text === undefined ? { id: `doc-${i}`, vector: data.docs[i]! } : { id: `doc-${i}`, vector: data.docs[i]!, text });
    }
    await s.add(batch);
  }
  // The default the load ran with: the bound its peak is held to adds one checkpoint's worth of log.
  const { checkpointBytes } = resolveOpenOptions({});
  const codeBytes = s.stats().codeBytesPerVector;
  await s.close();
  clearInterval(sampler);
  const after = proc();
  const rawText = texts === undefined ? 0 : texts.reduce((sum, t) => sum + Buffer.byteLength(t), 0);
  return {
    loadSeconds: (performance.now() - started) / 1000,
    peakAbove: Math.max(after.peak, sampledPeak) - before.rss,
    checkpointBytes,
    diskBytes: bytesUnder(store),
    rawBytes: n * (data.dim * 4 + codeBytes) + rawText,
  };
}

/** One phase, in this (fresh) process; returns what it measured. */
async function phase(name: Phase, args: Args, work: string): Promise<Record<string, number>> {
  const store = join(work, 'store');
  const hnswFile = join(work, 'hnsw.bin');
  if (name === 'load' || name === 'hnsw-build') return build(name, args, store, hnswFile);
  // A process that opens a store does not hold its data set, nor ever did: only the queries.
  const queries = readQueries(join(work, 'queries.bin'));
  if (name.startsWith('open')) {
    if (name.startsWith('open-freed')) freeLargeBuffer();
    const before = await baseline();
    const youngBefore = youngBytes();
    const started = performance.now();
    const cache = name === 'open-uncached' ? { cache: false as const } : args.cache === undefined ? {} : { cache: args.cache };
    const s = await MemStore.open(store, { ...cache, trimWhenIdle: !name.endsWith('-untrimmed') });
    const openMs = performance.now() - started;
    const opened = proc();
    for (const q of queries) await s.search(q, { k: 10 });
    const stats = s.stats();
    const busy = await settled();
    const young = youngBytes() - youngBefore;
    const after = await atRest();
    const left = trimmable();
    await s.close();
    return {
      openMs,
      trimmablePerVector: left / stats.count,
      fileAfterOpen: opened.file - before.file,
      fileAfterSearches: after.file - before.file,
      storeBytes: bytesUnder(store),
      anonPerVector: (after.anon - before.anon) / stats.count,
      busyPerVector: (busy.anon - before.anon) / stats.count,
      cacheBytes: stats.cache.bytes,
      bytesPerVector: stats.bytesPerVector,
      memoryBytes: stats.memoryBytes,
      anonBytes: after.anon - before.anon,
      youngBytes: young,
      youngAtRest: youngBytes() - youngBefore,
    };
  }
  if (name === 'latency') {
    const s = await MemStore.open(store, { cache: false });
    try {
      return await rescoreCost(s, queries, 3);
    } finally {
      await s.close();
    }
  }
  const plain = queries.map((q) => Array.from(q));
  const before = await baseline();
  const started = performance.now();
  const index = new hnswlib.HierarchicalNSW('cosine', queries[0]!.length);
  await index.readIndex(hnswFile);
  index.setEf(128);
  const openMs = performance.now() - started;
  for (const q of plain) index.searchKnn(q, 10);
  const busy = await settled();
  const after = await atRest();
  const count = index.getCurrentCount();
  return { openMs, anonPerVector: (after.anon - before.anon) / count, busyPerVector: (busy.anon - before.anon) / count, trimmablePerVector: trimmable() / count };
}

function inChild(name: Phase, argv: readonly string[], work: string): Record<string, number> {
  const result = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--phase', name, '--work', work, ...argv], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (result.status !== 0) throw new Error(`phase ${name} failed (${result.status ?? result.signal}): ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const b = (bytes: number) => `${Math.round(bytes).toLocaleString('en-US')} B`;

export function runMemoryBench(argv: readonly string[], args: Args, write: (line: string) => void): void {
  const work = mkdtempSync(join(tmpdir(), 'memstore-memory-'));
  try {
    const { data } = load(args);
    const n = data.docs.length;
    const options = args.cache === undefined ? 'default options' : `default options but cache ${JSON.stringify(args.cache)} where it is on`;
    write(`${data.name}: ${n.toLocaleString('en-US')} x ${data.dim}-d, ${args.codec}${args.pca === undefined ? '' : `, PCA to ${args.pca}`}, ${options}; each phase a fresh process`);
    writeQueries(join(work, 'queries.bin'), data, args.searches);
    const loaded = inChild('load', argv, work);
    const opened = inChild('open', argv, work);
    const uncached = inChild('open-uncached', argv, work);
    const untrimmed = inChild('open-untrimmed', argv, work);
    const freed = inChild('open-freed', argv, work);
    const freedUntrimmed = inChild('open-freed-untrimmed', argv, work);
    const timed = inChild('latency', argv, work);
    const rows: [string, string][] = [
      ['bulk load (batches of 1,000)', `${loaded.loadSeconds!.toFixed(1)} s`],
      ['peak RSS above the data set while loading', `${b(loaded.peakAbove! / n)} per vector (${kb(loaded.peakAbove!)}); at rest + checkpointBytes = ${kb(opened.anonPerVector! * n + loaded.checkpointBytes!)}: ${(loaded.peakAbove! / (opened.anonPerVector! * n + loaded.checkpointBytes!)).toFixed(2)}x`],
      ['disk per record', `${b(loaded.diskBytes! / n)} (raw vector + code + text ${b(loaded.rawBytes! / n)}: ${(loaded.diskBytes! / loaded.rawBytes!).toFixed(2)}x)`],
      ['open time', `${opened.openMs!.toFixed(0)} ms`],
      ['file-backed RSS after open', `${kb(opened.fileAfterOpen!)} of ${kb(opened.storeBytes!)} of files (${((100 * opened.fileAfterOpen!) / opened.storeBytes!).toFixed(1)}%)`],
      // Shared pages of the store's files mapped in (the state file; the arenas' maps, where searches read through them): the kernel's page cache, which it can drop.
      ['file-backed RSS after the searches, at rest', `${kb(opened.fileAfterSearches!)} (cache off ${kb(uncached.fileAfterSearches!)})`],
      [`anonymous RSS per vector after open + ${args.searches} searches, at rest`, `${b(opened.anonPerVector!)} (stats().bytesPerVector ${b(opened.bytesPerVector!)}: ${(opened.anonPerVector! / opened.bytesPerVector!).toFixed(2)}x)`],
      ['the same with the cache off', `${b(uncached.anonPerVector!)} (${b(uncached.bytesPerVector!)}: ${(uncached.anonPerVector! / uncached.bytesPerVector!).toFixed(2)}x)`],
      // What trimWhenIdle does: the C allocator's free memory given back after a quiet second (src/idle-trim.ts).
      ['the same, cache on, trimWhenIdle: false', `${b(untrimmed.anonPerVector!)} (${(untrimmed.anonPerVector! / untrimmed.bytesPerVector!).toFixed(2)}x); a trim would have given back ${b(untrimmed.trimmablePerVector!)} of it (${b(opened.trimmablePerVector!)} with it on)`],
      ['the same, cache on, after the process freed a 4 MiB buffer: trimWhenIdle true / false', `${b(freed.anonPerVector!)} / ${b(freedUntrimmed.anonPerVector!)}; a trim would have given back ${b(freed.trimmablePerVector!)} / ${b(freedUntrimmed.trimmablePerVector!)}`],
      ['right after the searches (busy), cache on / off', `${b(opened.busyPerVector!)} (${(opened.busyPerVector! / opened.bytesPerVector!).toFixed(2)}x) / ${b(uncached.busyPerVector!)} (${(uncached.busyPerVector! / uncached.bytesPerVector!).toFixed(2)}x)`],
      ['anonymous RSS after open + searches at rest, in all', `${kb(opened.anonBytes!)} (stats().memoryBytes ${kb(opened.memoryBytes!)}: ${(opened.anonBytes! / opened.memoryBytes!).toFixed(2)}x; the cache holds ${kb(opened.cacheBytes!)} of it)`],
      ['  V8 young generation busy / at rest, against before open', `${kb(opened.youngBytes!)} / ${kb(opened.youngAtRest!)}; cache off ${kb(uncached.youngBytes!)} / ${kb(uncached.youngAtRest!)}`],
      ['p50 codes only → rescored (cache off)', `${(timed.codesP50! * 1000).toFixed(0)} → ${(timed.rescoredP50! * 1000).toFixed(0)} µs (${(timed.rescoredP50! / timed.codesP50!).toFixed(2)}x); ${timed.read!.toFixed(1)} of ${timed.candidates} candidates read, ${(((timed.rescoredP50! - timed.codesP50!) * 1000) / timed.read!).toFixed(2)} µs per vector read`],
    ];
    if (args.hnsw) {
      const built = inChild('hnsw-build', argv, work);
      const hnsw = inChild('hnsw-open', argv, work);
      rows.push(['hnswlib-node f32 (M 16, efC 200) build', `${built.buildSeconds!.toFixed(1)} s`]);
      rows.push([`hnswlib-node anonymous RSS per vector after open + ${args.searches} searches (ef 128), at rest`, `${b(hnsw.anonPerVector!)}; memstore / hnswlib = ${(opened.anonPerVector! / hnsw.anonPerVector!).toFixed(2)}, cache off ${(uncached.anonPerVector! / hnsw.anonPerVector!).toFixed(2)}, trimWhenIdle: false ${(untrimmed.anonPerVector! / hnsw.anonPerVector!).toFixed(2)}`]);
      // hnswlib-node does not trim; had its process trimmed as memstore's does, it would hold this much less.
      const trimmed = hnsw.anonPerVector! - hnsw.trimmablePerVector!;
      rows.push(['  the same, its process trimmed as memstore trims its own', `${b(trimmed)}; memstore / hnswlib = ${(opened.anonPerVector! / trimmed).toFixed(2)}, cache off ${(uncached.anonPerVector! / trimmed).toFixed(2)}`]);
      rows.push(['  right after the searches (busy)', `${b(hnsw.busyPerVector!)}; memstore / hnswlib = ${(opened.busyPerVector! / hnsw.busyPerVector!).toFixed(2)}, cache off ${(uncached.busyPerVector! / hnsw.busyPerVector!).toFixed(2)}`]);
    }
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) write(`${k.padEnd(width)}  ${v}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = benchArgs('dist/bench/memory.js', {
    options: {
      ...DATA_OPTIONS,
      searches: { type: 'string' },
      cache: { type: 'string' },
      'no-hnsw': { type: 'boolean' },
      phase: { type: 'string' },
      work: { type: 'string' },
      codec: { type: 'string' },
      pca: { type: 'string' },
    },
  }, { numbers: ['searches'] });
  const args: Args = {
    data: values.data,
    queries: values.queries,
    dim: values.dim,
    n: values.n === undefined ? undefined : Number(values.n),
    searches: values.searches === undefined ? 1000 : Number(values.searches),
    hnsw: values['no-hnsw'] !== true,
    cache: values.cache === undefined ? undefined : (JSON.parse(values.cache) as CacheOptions),
    codec: (values.codec ?? 'int8') as CodecName,
    pca: values.pca === undefined ? undefined : Number(values.pca),
  };
  if (values.phase !== undefined) {
    process.stdout.write(`${JSON.stringify(await phase(values.phase as Phase, args, values.work!))}\n`);
    return;
  }
  const argv = process.argv.slice(2);
  runMemoryBench(argv, args, (line) => process.stdout.write(`${line}\n`));
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) await main();
