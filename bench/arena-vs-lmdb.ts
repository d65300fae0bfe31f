/**
 * The measurement behind src/arena/ARENA.md, "Why segment files and not LMDB": the same blobs
 * (real WordNet glosses with small msgpack metadata, ~200 bytes each) written into the blob arena
 * and into an LMDB sub-database, both durably in batches; read back at random; then half deleted
 * and the disk use compared after the arena's collection and after LMDB's deletes (plus LMDB's
 * copy-compaction, the only way its file shrinks).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/arena-vs-lmdb.js [--n 100000] [--batch 1000]
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { pack } from 'msgpackr';
import { BlobArena, type BlobRef } from '../src/arena/arena.js';
import { arenaDir } from '../src/store/files.js';

interface Options {
  /** Blobs written. @default 100000 */
  n: number;
  /** Blobs per durable commit (arena sync, LMDB transaction). @default 1000 */
  batch: number;
  /** Random single reads timed. @default 20000 */
  reads: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { n: 100_000, batch: 1000, reads: 20_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--n') options.n = value;
    else if (argv[i] === '--batch') options.batch = value;
    else if (argv[i] === '--reads') options.reads = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return options;
}

/** n blobs: two real glosses as the text (a chunk an agent remembers) and the metadata a store keeps with it. */
function makeBlobs(n: number): Uint8Array[] {
  const path = fileURLToPath(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url));
  const glosses = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { text: string }).text);
  return Array.from({ length: n }, (_, i) => {
    const text = `${glosses[i % glosses.length]!} ${glosses[(i * 7 + 3) % glosses.length]!}`;
    return pack({ text, meta: { source: 'wordnet', turn: i, tags: ['gloss'] } });
  });
}

interface DiskUse {
  bytes: number;
  /** Allocated blocks: what `du` shows (LMDB files can be sparse). */
  allocated: number;
}

function diskUse(paths: string[]): DiskUse {
  let bytes = 0;
  let allocated = 0;
  for (const p of paths) {
    const s = statSync(p);
    bytes += s.size;
    allocated += s.blocks * 512;
  }
  return { bytes, allocated };
}

function arenaFiles(dir: string): string[] {
  return readdirSync(arenaDir(dir)).map((name) => join(arenaDir(dir), name));
}

/** A random sample of indices, the same for both stores. */
function sample(n: number, count: number): number[] {
  let x = 12345;
  return Array.from({ length: count }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  });
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

async function benchArena(blobs: Uint8Array[], o: Options, picks: number[], dir: string): Promise<Record<string, string | number>> {
  const arena = await BlobArena.open({ dir, generation: 1 });
  const refs: BlobRef[] = [];
  const t0 = performance.now();
  for (let i = 0; i < blobs.length; i += o.batch) {
    for (let j = i; j < Math.min(i + o.batch, blobs.length); j++) refs.push(arena.append(blobs[j]!));
    await arena.sync();
  }
  const writeMs = performance.now() - t0;
  const full = diskUse(arenaFiles(dir));

  const t1 = performance.now();
  for (const i of picks) await arena.read(refs[i]!);
  const readUs = ((performance.now() - t1) * 1000) / picks.length;
  // Ten at once, as a search hands back its top 10.
  const t2 = performance.now();
  for (let k = 0; k + 10 <= picks.length; k += 10) await Promise.all(picks.slice(k, k + 10).map((i) => arena.read(refs[i]!)));
  const read10Us = ((performance.now() - t2) * 1000) / (picks.length / 10);

  const live: Array<[string, BlobRef]> = [];
  for (const [i, ref] of refs.entries()) {
    if (i % 2 === 0) live.push([String(i), ref]);
    else arena.release(ref);
  }
  const afterDeletes = diskUse(arenaFiles(dir));
  const t3 = performance.now();
  const { generation } = await arena.collect(live);
  await arena.finishCollect(generation);
  const collectMs = performance.now() - t3;
  const collected = diskUse(arenaFiles(dir));
  await arena.close();
  return {
    store: 'arena (segment files)',
    'write blobs/s': Math.round(blobs.length / (writeMs / 1000)),
    'write ms': Math.round(writeMs),
    'MB full': mb(full.bytes),
    'read µs (1 at a time)': readUs.toFixed(1),
    'read µs per 10 (concurrent)': read10Us.toFixed(1),
    'MB after deleting half': mb(afterDeletes.bytes),
    'MB after reclaim': mb(collected.bytes),
    'reclaim': `collect ${Math.round(collectMs)} ms`,
  };
}

async function benchLmdb(blobs: Uint8Array[], o: Options, picks: number[], dir: string): Promise<Record<string, string | number>> {
  const path = join(dir, 'blobs.mdb');
  // As the store opens its state environment: durable commits, no compression.
  const env = open({ path, maxDbs: 4, compression: false });
  const db = env.openDB<Buffer, string>({ name: 'blobs', encoding: 'binary' });
  const key = (i: number): string => `doc-${i}`;
  const t0 = performance.now();
  for (let i = 0; i < blobs.length; i += o.batch) {
    await db.transaction(() => {
      for (let j = i; j < Math.min(i + o.batch, blobs.length); j++) void db.put(key(j), Buffer.from(blobs[j]!.buffer, blobs[j]!.byteOffset, blobs[j]!.byteLength));
    });
  }
  const writeMs = performance.now() - t0;
  const files = [path, `${path}-lock`].filter((p) => statSync(p, { throwIfNoEntry: false }) !== undefined);
  const full = diskUse([path]);

  const t1 = performance.now();
  for (const i of picks) db.get(key(i));
  const readUs = ((performance.now() - t1) * 1000) / picks.length;
  const t2 = performance.now();
  for (let k = 0; k + 10 <= picks.length; k += 10) for (const i of picks.slice(k, k + 10)) db.get(key(i));
  const read10Us = ((performance.now() - t2) * 1000) / (picks.length / 10);

  for (let i = 0; i < blobs.length; i += o.batch) {
    await db.transaction(() => {
      for (let j = i; j < Math.min(i + o.batch, blobs.length); j++) if (j % 2 === 1) void db.remove(key(j));
    });
  }
  const afterDeletes = diskUse([path]);
  const compactPath = join(dir, 'compacted.mdb');
  const t3 = performance.now();
  await env.backup(compactPath, true);
  const compactMs = performance.now() - t3;
  const compacted = diskUse([compactPath]);
  await env.close();
  void files;
  return {
    store: 'LMDB sub-database',
    'write blobs/s': Math.round(blobs.length / (writeMs / 1000)),
    'write ms': Math.round(writeMs),
    'MB full': mb(full.bytes),
    'read µs (1 at a time)': readUs.toFixed(2),
    'read µs per 10 (concurrent)': read10Us.toFixed(2),
    'MB after deleting half': mb(afterDeletes.bytes),
    'MB after reclaim': `${mb(afterDeletes.bytes)} (copy-compacted: ${mb(compacted.bytes)})`,
    'reclaim': `none in place; compacting copy ${Math.round(compactMs)} ms`,
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const blobs = makeBlobs(o.n);
  const payload = blobs.reduce((sum, b) => sum + b.length, 0);
  const picks = sample(o.n, o.reads);
  const cpu = cpus();
  console.log(`# arena vs LMDB: ${o.n} blobs, mean ${(payload / o.n).toFixed(0)} B (${mb(payload)} MB payload), durable commit every ${o.batch}`);
  console.log(`# node ${process.version}, ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${process.platform}/${process.arch}, tmpdir ${tmpdir()}`);
  const rows: Array<Record<string, string | number>> = [];
  for (const run of [benchArena, benchLmdb]) {
    const dir = mkdtempSync(join(tmpdir(), 'memstore-arena-bench-'));
    try {
      rows.push(await run(blobs, o, picks, dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const columns = Object.keys(rows[0]!);
  console.log(`| ${columns.join(' | ')} |`);
  console.log(`|${columns.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${columns.map((c) => String(row[c])).join(' | ')} |`);
}

await main();
