import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore, type OpenOptions } from '../src/index.js';
import type { Filter } from '../src/options.js';
import { columnsFilePath } from '../src/store/files.js';
import { checkStore } from '../src/store/verify.js';
import { COLUMN_HEADER_SIZE, idHash } from '../src/store/column-file.js';
import { crc32c, maskCrc } from '../io/crc32c.js';
import { copyFileSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { checkpointOf, clustered, rng, tempDir } from './helpers.js';
import { columnsDisagree, matchesByHand, nameColumnsFileAsIs } from './support/column-oracle.js';

/**
 * Hostile tests of the persisted filter columns (src/store/INDEX.md, "Filter columns"): whatever
 * the ids, the values, the order of writes, crashes, reopenings and damage to the columns file, a
 * filtered search answers as the records' metadata says, and opening never fails for the file.
 * The oracle (columnsDisagree): an exact filtered search of k = every record returns exactly the
 * ids whose metadata, read with get(), meets the filter.
 */
const DIM = 8;
const BASE: OpenOptions = { dim: DIM, durability: 'none', cache: false };

const LONG = 'x'.repeat(1024);
const IDS = ['\u00e9', 'e\u0301', '\u212b', '\u00c5', 'A\u030a', '__proto__', 'constructor', LONG, `${'\u00e9'.repeat(511)}y`, `${'\u00e9'.repeat(511)}z`, '\ud83d\ude00', ' ', '0', '00'];
const VALUES: unknown[] = [null, true, false, 0, -0, 1, -1, 1e308, -1e308, 2 ** 53 + 2, 5e-324, '', '0', 's', 'x'.repeat(3000), '\u00e9', 'e\u0301', '\ud83d\ude00'];
const FIELDS = ['ns', '__proto__', 'constructor', '', 'toString', 'v'];

function filtersOver(next: () => number, n: number): Filter[] {
  const out: Filter[] = [];
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!;
  for (let i = 0; i < n; i++) {
    const f: Record<string, unknown> = {};
    const fields = 1 + Math.floor(next() * 2);
    for (let j = 0; j < fields; j++) {
      const field = pick(FIELDS);
      Object.defineProperty(f, field, { value: next() < 0.3 ? { $in: [pick(VALUES), pick(VALUES), pick(VALUES)] } : pick(VALUES), enumerable: true, writable: true, configurable: true });
    }
    out.push(f as Filter);
  }
  return out;
}

function metaOf(next: () => number): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  for (const field of FIELDS) {
    const r = next();
    if (r < 0.25) continue;
    const v = r < 0.3 ? { nested: 1 } : r < 0.35 ? [1] : VALUES[Math.floor(next() * VALUES.length)];
    Object.defineProperty(m, field, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return m;
}

async function check(store: MemStore, next: () => number, what: string): Promise<void> {
  const q = Float32Array.from({ length: DIM }, () => next() - 0.5);
  const filters = filtersOver(next, 12);
  // ids(filter) first, while restored columns may still hold records they cannot vouch for.
  const metas = new Map<string, Record<string, unknown> | undefined>();
  for (const id of store.ids()) metas.set(id, (await store.get(id))?.meta);
  for (const filter of filters.slice(0, 4)) {
    const want = [...metas].filter(([, m]) => matchesByHand(m, filter)).map(([id]) => id).sort();
    assert.deepEqual(store.ids(filter).sort(), want, `${what}: ids(${JSON.stringify(filter)})`);
  }
  const bad = await columnsDisagree(store, store.ids(), filters, q);
  assert.equal(bad, undefined, what);
}

test('persisted columns: a random sequence of upserts, deletes, re-adds, crashes, reopenings (paged or not) and compactions never gives a wrong filtered answer', async () => {
  // HOSTILE_SEEDS=1,2,3 runs more seeds by hand (about 0.7 s each).
  for (const seed of (process.env['HOSTILE_SEEDS'] ?? '77,78,79').split(',').map(Number)) await randomRun(seed);
});

async function randomRun(seed: number): Promise<void> {
  const dir = tempDir('memstore-hostile-columns-');
  const next = rng(seed);
  const vecs = clustered(400, DIM, 5);
  const ids = [...IDS, ...Array.from({ length: 300 }, (_, i) => `r${i}`)];
  // Half the runs train the codec early (records come from the index file's codes), half never do (from the vectors).
  let store = await MemStore.open(dir, { ...BASE, checkpointBytes: 8192, pages: { from: 60, maxPage: 16 }, ...(seed % 2 === 0 ? { trainSize: 40 } : {}), ...(seed % 3 === 0 ? { durability: 'batch' as const } : {}) });
  let v = 0;
  for (let step = 0; step < 60; step++) {
    const r = next();
    if (r < 0.45) {
      const batch = Array.from({ length: 1 + Math.floor(next() * 40) }, () => ({ id: ids[Math.floor(next() * ids.length)]!, vector: vecs[v++ % vecs.length]!, meta: metaOf(next) }));
      await store.add(batch);
    } else if (r < 0.52) {
      // A burst of writes not awaited one by one: background checkpoints capture the columns between them.
      const s0 = store;
      const burst: Promise<unknown>[] = [];
      for (let j = 0; j < 30; j++) {
        const id = ids[Math.floor(next() * ids.length)]!;
        burst.push(next() < 0.8 ? s0.add([{ id, vector: vecs[v++ % vecs.length]!, meta: metaOf(next) }]) : s0.delete([id]));
        if (j % 10 === 0) burst.push(s0.search(vecs[j]!, { k: 5, filter: { ns: 's' } }));
      }
      await Promise.all(burst);
    } else if (r < 0.6) {
      await store.delete(Array.from({ length: 1 + Math.floor(next() * 20) }, () => ids[Math.floor(next() * ids.length)]!));
    } else if (r < 0.75) {
      await check(store, next, `seed ${seed} step ${step}`);
    } else if (r < 0.85) {
      await check(store, next, `seed ${seed} step ${step} before close`);
      await store.close();
      store = await MemStore.open(dir, { ...BASE, checkpointBytes: 8192, pages: next() < 0.5 ? false : { from: 60, maxPage: 16 } });
      await check(store, next, `seed ${seed} step ${step} after reopen`);
    } else if (r < 0.93) {
      await check(store, next, `seed ${seed} step ${step} before crash`);
      await store.abandon();
      store = await MemStore.open(dir, { ...BASE, checkpointBytes: 8192, pages: next() < 0.5 ? false : { from: 60, maxPage: 16 } });
      await check(store, next, `seed ${seed} step ${step} after crash`);
    } else {
      await store.compact();
      await check(store, next, `seed ${seed} step ${step} after compact`);
    }
  }
  await store.close();
}

function columnsFileOf(dir: string): string {
  return columnsFilePath(dir, checkpointOf(dir).columns!.file);
}

test('persisted columns: the columns file of another store (another index length), copied in its place, is ignored: answers stay true', async () => {
  const vecs = clustered(200, DIM, 9);
  const make = async (value: string, n: number) => {
    const dir = tempDir('memstore-hostile-columns-');
    const store = await MemStore.open(dir, BASE);
    await store.add(vecs.slice(0, n).map((vector, i) => ({ id: `r${i}`, vector, meta: { c: value, i: i % 3 } })));
    assert.equal(await columnsDisagree(store, store.ids(), [{ c: value }, { i: 1 }], vecs[0]!), undefined);
    await store.close();
    return dir;
  };
  const a = await make('a', 200);
  const b = await make('b', 199);
  copyFileSync(columnsFileOf(b), columnsFileOf(a));
  const store = await MemStore.open(a, BASE);
  try {
    assert.equal(await columnsDisagree(store, store.ids(), [{ c: 'a' }, { c: 'b' }, { i: 1 }], vecs[1]!), undefined);
  } finally {
    await store.close();
  }
});

test('persisted columns: the columns file of another store stamped alike (same index generation, length and ids), copied in its place, is not read as this store\'s: answers stay true', async () => {
  const vecs = clustered(200, DIM, 9);
  const make = async (value: string) => {
    const dir = tempDir('memstore-hostile-columns-');
    const store = await MemStore.open(dir, BASE);
    await store.add(vecs.map((vector, i) => ({ id: `r${i}`, vector, meta: { c: value, i: i % 3 } })));
    assert.equal(await columnsDisagree(store, store.ids(), [{ c: value }, { i: 1 }], vecs[0]!), undefined);
    await store.close();
    return dir;
  };
  const a = await make('a');
  const b = await make('b');
  const [ca, cb] = [checkpointOf(a).columns!, checkpointOf(b).columns!];
  assert.deepEqual([ca.file, ca.indexGeneration, ca.indexBytes], [cb.file, cb.indexGeneration, cb.indexBytes], 'the two files are stamped alike');
  assert.notEqual(ca.digest, cb.digest);
  copyFileSync(columnsFileOf(b), columnsFileOf(a));
  const report = await checkStore(a);
  assert.ok(report.problems.some((p) => p.file === columnsFileOf(a)), 'verify names the foreign columns file');
  const store = await MemStore.open(a, BASE);
  try {
    assert.deepEqual((await store.search(vecs[3]!, { k: 5, filter: { c: 'b' } })).map((h) => h.id), []);
    assert.equal((await store.search(vecs[3]!, { k: 5, filter: { c: 'a' } })).length, 5);
    assert.equal(await columnsDisagree(store, store.ids(), [{ c: 'a' }, { c: 'b' }, { i: 1 }], vecs[1]!), undefined);
  } finally {
    await store.close();
  }
});

/** Two ASCII ids of one length whose FNV-1a 32 and CRC-32C (the columns file's 64-bit id hash) are both equal. */
const COLLIDING = ['`ca`abb`b`aaaa``b`b``cc`ab`cbbcccbabaabb`cabcabc', '``bbccbaaccaca`cccacbcababc`ab``bc`a``c```a`aaab'] as const;

test('persisted columns: two ids whose 64-bit hashes collide never take each other\'s codes, in any order of adds, deletes, checkpoints, crashes and reopenings', async () => {
  const [a, b] = COLLIDING;
  const enc = new TextEncoder();
  const ha = new Uint32Array(2);
  const hb = new Uint32Array(2);
  idHash(enc.encode(a), ha, 0);
  idHash(enc.encode(b), hb, 0);
  assert.deepEqual([...ha], [...hb], 'the ids collide');
  const vecs = clustered(120, DIM, 3);
  const filters: Filter[] = [{ c: 1 }, { c: 2 }, { c: { $in: [1, 2] } }, { other: true }];
  const next = rng(5);
  for (let round = 0; round < 12; round++) {
    const dir = tempDir('memstore-hostile-columns-');
    const options = { ...BASE, checkpointBytes: 2048 };
    let store = await MemStore.open(dir, options);
    await store.add(vecs.slice(0, 100).map((vector, i) => ({ id: `r${i}`, vector, meta: { other: i % 2 === 0 } })));
    let v = 100;
    for (let step = 0; step < 14; step++) {
      const r = next();
      const id = next() < 0.5 ? a : b;
      if (r < 0.4) await store.add([{ id, vector: vecs[v++ % vecs.length]!, meta: { c: 1 + Math.floor(next() * 2), ...(next() < 0.5 ? { other: true } : {}) } }]);
      else if (r < 0.55) await store.delete([id]);
      else if (r < 0.65) await store.add(vecs.slice(0, 20 + Math.floor(next() * 40)).map((vector, i) => ({ id: `r${i}`, vector, meta: { other: next() < 0.5 } })));
      else if (r < 0.8) {
        assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[0]!), undefined, `round ${round} step ${step} before close`);
        await store.close();
        store = await MemStore.open(dir, options);
      } else {
        assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[0]!), undefined, `round ${round} step ${step} before crash`);
        await store.abandon();
        store = await MemStore.open(dir, options);
      }
      assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[1]!), undefined, `round ${round} step ${step}`);
    }
    await store.close();
  }
});

/** Rewrites the HEAD block (the file's first) with `entries`, its checksum sealed again: damage a checksum cannot see. */
function resealHead(path: string, entries: number): void {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(12, entries, true);
  view.setUint32(4, maskCrc(crc32c(bytes, 8, COLUMN_HEADER_SIZE + view.getUint32(0, true))), true);
  writeFileSync(path, bytes);
}

test('persisted columns: a sealed HEAD claiming more entries than the committed length can hold costs the columns, never the open', async () => {
  for (const entries of [0xffffffff, 0x7fffffff, 1 << 28, 201, 199, 0]) {
    const dir = tempDir('memstore-hostile-columns-');
    const vecs = clustered(200, DIM, 9);
    let store = await MemStore.open(dir, BASE);
    await store.add(vecs.map((vector, i) => ({ id: `r${i}`, vector, meta: { c: i % 4, s: `v${i % 3}` } })));
    const filters: Filter[] = [{ c: 1 }, { s: 'v2' }, { c: { $in: [0, 3] }, s: 'v0' }];
    assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[0]!), undefined);
    await store.close();
    const path = columnsFileOf(dir);
    resealHead(path, entries);
    await nameColumnsFileAsIs(dir);
    if (entries !== 200) assert.deepEqual((await checkStore(dir)).problems.map((p) => p.file), [path], `verify, entries ${entries}`);
    store = await MemStore.open(dir, BASE);
    try {
      assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[1]!), undefined, `entries ${entries}`);
    } finally {
      await store.close();
    }
  }
});

test('persisted columns: a columns file cut, flipped, zeroed, grown or deleted at random offsets costs columns, never the open or a true answer', async () => {
  const vecs = clustered(150, DIM, 21);
  const filters: Filter[] = [{ c: 1 }, { s: 'v2' }, { c: { $in: [0, 3] }, s: 'v0' }, { z: null }, { big: { $in: [1e308, -0] } }];
  const meta = (i: number, round: number) => ({ c: (i + round) % 4, s: `v${i % 3}`, ...(i % 5 === 0 ? { z: null } : {}), big: i % 2 === 0 ? 1e308 : 0 });
  const dir = tempDir('memstore-hostile-columns-');
  let store = await MemStore.open(dir, { ...BASE, checkpointBytes: 4096 });
  await store.add(vecs.map((vector, i) => ({ id: `r${i}`, vector, meta: meta(i, 0) })));
  const next = rng(13);
  for (let round = 0; round < 24; round++) {
    assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[round]!), undefined, `round ${round} before close`);
    // Some records changed after the last columns file, so that the damaged one holds stale entries too.
    await store.add(vecs.slice(0, 10).map((vector, i) => ({ id: `r${(i * 7 + round) % 150}`, vector, meta: meta(i, round + 1) })));
    if (round % 3 === 0) await store.delete([`r${round}`]);
    if (round % 2 === 0) await store.close();
    else await store.abandon();
    const ref = checkpointOf(dir).columns;
    // A file deleted by an earlier round stays missing until a checkpoint writes the columns again.
    if (ref !== undefined && existsSync(columnsFilePath(dir, ref.file))) {
      const path = columnsFilePath(dir, ref.file);
      const bytes = readFileSync(path);
      const at = Math.floor(next() * bytes.length);
      const how = round % 6;
      if (how === 0) truncateSync(path, at);
      else if (how === 1) {
        bytes[at]! ^= 1 << Math.floor(next() * 8);
        writeFileSync(path, bytes);
      } else if (how === 2) writeFileSync(path, new Uint8Array(bytes.length));
      else if (how === 3) writeFileSync(path, Buffer.concat([bytes, bytes]));
      else if (how === 4) rmSync(path);
      else writeFileSync(path, Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]));
    }
    store = await MemStore.open(dir, { ...BASE, checkpointBytes: 4096 });
    assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[round + 1]!), undefined, `round ${round} after damage`);
  }
  await store.close();
});

test('persisted columns: a field past the dictionary and filters naming 64 fields at once (the most one may; 66 fields in all) stay true across close, upserts, a crash and reopen', async () => {
  const N = 5000;
  const vecs = clustered(N, DIM, 31);
  const FIELDS64 = Array.from({ length: 64 }, (_, f) => `f${f}`);
  const meta = (i: number, gen: number): Record<string, unknown> => {
    const m: Record<string, unknown> = { v: i + gen * N, w: `w${(i * 7 + gen) % 4500}` };
    for (const f of FIELDS64) if ((i + f.length) % 11 !== gen % 11) m[f] = (i + gen) % 3;
    return m;
  };
  const all = (x: number) => Object.fromEntries(FIELDS64.map((f) => [f, x])) as Filter;
  const filters: Filter[] = [
    all(0),
    { ...Object.fromEntries(FIELDS64.slice(0, 63).map((f) => [f, 1])), w: { $in: ['w1', 'w4499', 'w4100', 'w7'] } },
    { v: { $in: [1, 4093, 4094, 4095, 4999, 5000 + 17, 2 * N + 3] } },
    { w: 'w4321' },
    { v: 4500, f3: 1 },
  ];
  const dir = tempDir('memstore-hostile-columns-');
  const options = { ...BASE, checkpointBytes: 1 << 16 };
  let store = await MemStore.open(dir, options);
  await store.add(vecs.map((vector, i) => ({ id: `r${i}`, vector, meta: meta(i, 0) })));
  assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[0]!), undefined, 'as made');
  await store.close();
  store = await MemStore.open(dir, options);
  assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[1]!), undefined, 'restored');
  // Upserts with values new to every dictionary, a field dropped, deletes; then a crash.
  await store.add(vecs.slice(0, 300).map((vector, i) => ({ id: `r${i * 13}`, vector, meta: meta(i * 13, 1) })));
  await store.delete(Array.from({ length: 50 }, (_, i) => `r${i * 17 + 1}`));
  await store.add([{ id: 'r2', vector: vecs[2]!, meta: {} }]);
  assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[2]!), undefined, 'after upserts');
  await store.abandon();
  store = await MemStore.open(dir, options);
  assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[3]!), undefined, 'after the crash');
  await store.add(vecs.slice(0, 100).map((vector, i) => ({ id: `n${i}`, vector, meta: meta(i, 2) })));
  await store.close();
  store = await MemStore.open(dir, options);
  try {
    assert.equal(await columnsDisagree(store, store.ids(), filters, vecs[4]!), undefined, 'reopened');
  } finally {
    await store.close();
  }
});

function textVector(t: string): Float32Array {
  const v = new Float32Array(DIM).fill(0.01);
  for (const [i, c] of [...t].entries()) v[(c.codePointAt(0)! + i) % DIM]! += 1;
  return v;
}

test('persisted columns: namespaces(), forget({ namespace, filter }) and compact()\'s expiry sweep read restored columns as the metadata says, after changes the file cannot vouch for', async () => {
  const dir = tempDir('memstore-hostile-columns-');
  const options: OpenOptions = { ...BASE, dedupe: 1, embed: async (texts: string[]) => texts.map(textVector), checkpointBytes: 4096 };
  const now = Date.now();
  let store = await MemStore.open(dir, options);
  // Model: id -> [namespace, kind, expires]
  const model = new Map<string, [string, number, boolean]>();
  const remember = async (i: number, ns: string, kind: number, expired: boolean) => {
    const id = `m${i}`;
    await store.remember(`text ${i} ${ns}`, { id, namespace: ns, meta: { kind }, ...(expired ? { ttl: 1, at: now - 10_000 } : {}) });
    model.set(id, [ns, kind, expired]);
  };
  for (let i = 0; i < 120; i++) await remember(i, `ns${i % 4}`, i % 3, i % 10 === 0);
  assert.deepEqual(store.namespaces(), ['ns0', 'ns1', 'ns2', 'ns3']);
  await store.close();
  store = await MemStore.open(dir, options);
  // Changes past the columns file: a namespace emptied by moves, a new one, kinds changed.
  for (let i = 0; i < 120; i += 4) await remember(i, 'ns-new', 7, i % 8 === 0);
  await store.abandon();
  store = await MemStore.open(dir, options);
  const live = [...model].filter(([id]) => store.ids().includes(id));
  assert.equal(live.length, store.ids().length);
  const expect = (pairs: [string, [string, number, boolean]][]) => [...new Set(pairs.map(([, [ns]]) => ns))].sort();
  assert.deepEqual(store.namespaces(), expect(live));
  const ns1kind2 = live.filter(([, [ns, kind]]) => ns === 'ns1' && kind === 2).length;
  assert.equal(await store.forget({ namespace: 'ns1', filter: { kind: 2 } }), ns1kind2);
  const newKind7 = live.filter(([, [ns, kind]]) => ns === 'ns-new' && kind === 7).length;
  await store.close();
  store = await MemStore.open(dir, options);
  try {
    await store.compact();
    const left = live.filter(([, [ns, kind, expired]]) => !(ns === 'ns1' && kind === 2) && !expired);
    assert.deepEqual(store.ids().sort(), left.map(([id]) => id).sort());
    assert.deepEqual(store.namespaces(), expect(left));
    assert.equal(await store.forget({ namespace: 'ns-new', filter: { kind: 7 } }), left.filter(([, [ns]]) => ns === 'ns-new').length);
    assert.ok(newKind7 > 0);
  } finally {
    await store.close();
  }
});
