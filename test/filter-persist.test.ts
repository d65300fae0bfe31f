import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32c, maskCrc } from '../io/crc32c.js';
import { MemStore } from '../src/index.js';
import type { Filter } from '../src/options.js';
import { checkStore } from '../src/store/verify.js';
import { repairStore } from '../src/store/repair.js';
import { COLUMN_CODES, COLUMN_FIELD, COLUMN_HEADER_SIZE } from '../src/store/column-file.js';
import { columnsFilePath, indexDir, parseColumnsFileName } from '../src/store/files.js';
import { StateStore } from '../src/store/state.js';
import { checkpointOf, clustered, tempDir } from './helpers.js';
import { columnsDisagree, nameColumnsFileAsIs, spyOnDocReads } from './support/column-oracle.js';

const DIM = 8;
const N = 300;
const vectors = clustered(N, DIM, 11);

const metaOf = (i: number): Record<string, unknown> => ({ ns: `ns-${i % 7}`, even: i % 2 === 0, n: i % 5, ...(i % 3 === 0 ? { rare: null } : {}) });
const FILTERS: Filter[] = [{ ns: 'ns-3' }, { even: true }, { n: { $in: [1, 4] } }, { rare: null }, { ns: 'ns-1', even: false }, { missing: 1 }];

function columnsFiles(dir: string): string[] {
  return readdirSync(indexDir(dir)).filter((n) => parseColumnsFileName(n) !== undefined);
}

/** A closed store of N records whose columns for every field of FILTERS were made, then persisted by close(). */
async function storeWithColumns(): Promise<string> {
  const dir = tempDir('memstore-columns-');
  const store = await MemStore.open(dir, { dim: DIM, cache: false });
  await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: metaOf(i) })));
  assert.equal(await columnsDisagree(store, ids(), FILTERS, vectors[0]!), undefined);
  await store.close();
  assert.equal(columnsFiles(dir).length, 1, 'close persisted the columns');
  return dir;
}

function ids(): string[] {
  return vectors.map((_, i) => `r${i}`);
}

/** Opens `dir`, counts the documents the first filtered search reads that are not its hits', checks every filter against the metadata. */
async function firstSearchReads(dir: string): Promise<number> {
  const store = await MemStore.open(dir, { cache: false });
  try {
    const spy = spyOnDocReads(store);
    const hits = await store.search(vectors[0]!, { k: 5, filter: { ns: 'ns-3', even: true } });
    const others = spy.ids.filter((id) => !hits.some((h) => h.id === id)).length;
    assert.equal(await columnsDisagree(store, ids(), FILTERS, vectors[1]!), undefined);
    return others;
  } finally {
    await store.close();
  }
}

/** The offset of the first block of `kind` in a columns file. */
function blockAt(bytes: Uint8Array, kind: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + COLUMN_HEADER_SIZE <= bytes.length; at += COLUMN_HEADER_SIZE + v.getUint32(at, true)) if (bytes[at + 8] === kind) return at;
  throw new Error(`no block of kind ${kind}`);
}

function columnsPath(dir: string): string {
  return columnsFilePath(dir, checkpointOf(dir).columns!.file);
}

async function verifyProblems(dir: string): Promise<string[]> {
  return (await checkStore(dir)).problems.map((p) => String(p.file));
}

test('columns: a checkpoint persists them; after close and reopen the first filtered search reads no record\'s metadata but its hits\'', async () => {
  const dir = await storeWithColumns();
  assert.equal(await firstSearchReads(dir), 0);
  assert.deepEqual(await verifyProblems(dir), []);
});

test('columns: without a columns file (as before they were persisted) the first filtered search reads every record\'s metadata', async () => {
  const dir = await storeWithColumns();
  const state = StateStore.open(dir);
  const { columns: _c, ...rest } = state.readCheckpoint();
  await state.commitCheckpoint({ checkpoint: rest, docs: new Map() });
  await state.close();
  const [orphan] = columnsFiles(dir);
  assert.ok((await firstSearchReads(dir)) >= N - 10);
  assert.ok(!columnsFiles(dir).includes(orphan!), 'opening deleted the file no checkpoint names');
});

test('columns: upserts that change metadata and deletes replayed from the log leave the loaded columns as made afresh', async () => {
  const dir = await storeWithColumns();
  let store = await MemStore.open(dir, { cache: false });
  await store.add([
    { id: 'r3', vector: vectors[3]!, meta: { ns: 'ns-4', even: true } },
    { id: 'r10', vector: vectors[10]!, meta: { n: 'text now' } },
    { id: 'r11', vector: vectors[11]! },
    { id: 'new-1', vector: vectors[12]!, meta: { ns: 'ns-3', even: true, rare: null } },
  ]);
  await store.delete(['r24', 'r0', 'r299']);
  // No checkpoint: the next open replays these from the log over the columns the file holds.
  await store.abandon();
  store = await MemStore.open(dir, { cache: false });
  try {
    const spy = spyOnDocReads(store);
    const hits = await store.search(vectors[0]!, { k: 5, filter: { ns: 'ns-3' } });
    assert.deepEqual(spy.ids.filter((id) => !hits.some((h) => h.id === id)), [], 'the replay set the changed records\' codes from the log');
    const all = [...ids(), 'new-1'];
    assert.equal(await columnsDisagree(store, all, [...FILTERS, { ns: 'ns-4' }, { n: 'text now' }], vectors[2]!), undefined);
  } finally {
    await store.close();
  }
});

test('columns: records a kept columns file cannot vouch for (changed after it) hold UNKNOWN, and only their metadata is read', async () => {
  const dir = await storeWithColumns();
  // checkpointBytes of 1: every write checkpoints in the background; few changes keep the file (1/8 of the records).
  let store = await MemStore.open(dir, { cache: false, checkpointBytes: 1 });
  await store.add([{ id: 'r5', vector: vectors[5]!, meta: { ns: 'ns-6', even: false } }]);
  await store.add([{ id: 'r6', vector: vectors[6]!, meta: { ns: 'ns-3', even: true } }]);
  await new Promise((r) => setTimeout(r, 50));
  const file = checkpointOf(dir).columns!.file;
  await store.abandon();
  assert.ok(checkpointOf(dir).indexBytes > checkpointOf(dir).columns!.indexBytes, 'the index went past the columns file\'s stamp');
  assert.equal(checkpointOf(dir).columns!.file, file);
  store = await MemStore.open(dir, { cache: false });
  try {
    const spy = spyOnDocReads(store);
    const hits = await store.search(vectors[0]!, { k: 3, filter: { ns: 'ns-3' } });
    const others = new Set(spy.ids.filter((id) => !hits.some((h) => h.id === id)));
    assert.ok([...others].every((id) => id === 'r5' || id === 'r6'), `read ${[...others].join()}`);
    assert.equal(await columnsDisagree(store, ids(), FILTERS, vectors[1]!), undefined);
  } finally {
    await store.close();
  }
  assert.equal(await firstSearchReads(dir), 0, 'close wrote the columns whole again');
});

test('columns: torn block (the file cut inside a block): opening makes the columns from metadata, verify names the file, repair leaves a clean store', async () => {
  const dir = await storeWithColumns();
  const path = columnsPath(dir);
  truncateSync(path, readFileSync(path).length - 7);
  assert.ok((await firstSearchReads(dir)) > 0, 'made from metadata');
  // That open's close wrote the columns again.
  assert.deepEqual(await verifyProblems(dir), []);
  truncateSync(columnsPath(dir), 30);
  assert.deepEqual(await verifyProblems(dir), [columnsPath(dir)]);
  await repairStore(dir, { report: join(dir, 'report.jsonl') });
  assert.deepEqual(await verifyProblems(dir), []);
  // The repair kept the columns it had in memory; the first open after it makes the others, its close persists them.
  await firstSearchReads(dir);
  assert.equal(await firstSearchReads(dir), 0);
});

test('columns: bad checksum in a CODES block: the columns before it are kept, that one and the rest are made from metadata; never a wrong answer', async () => {
  const dir = await storeWithColumns();
  const path = columnsPath(dir);
  const bytes = readFileSync(path);
  const at = blockAt(bytes, COLUMN_CODES);
  bytes[at + COLUMN_HEADER_SIZE + 1]! ^= 0x01;
  writeFileSync(path, bytes);
  const report = await checkStore(dir);
  assert.deepEqual(report.problems.map((p) => [p.file, p.offset]), [[path, at]]);
  const store = await MemStore.open(dir, { cache: false });
  try {
    assert.equal(await columnsDisagree(store, ids(), FILTERS, vectors[4]!), undefined);
  } finally {
    await store.close();
  }
});

test('columns: partial tail (bytes past the committed length) is not read, and is no damage', async () => {
  const dir = await storeWithColumns();
  appendFileSync(columnsPath(dir), Buffer.alloc(300, 0xab));
  assert.deepEqual(await verifyProblems(dir), []);
  assert.equal(await firstSearchReads(dir), 0);
});

test('columns: unknown block kind, checksum intact (a newer writer): reading stops there, as at damage', async () => {
  const dir = await storeWithColumns();
  const path = columnsPath(dir);
  const bytes = readFileSync(path);
  const at = blockAt(bytes, COLUMN_FIELD);
  bytes[at + 8] = 9;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  v.setUint32(at + 4, maskCrc(crc32c(bytes, at + 8, at + COLUMN_HEADER_SIZE + v.getUint32(at, true))), true);
  writeFileSync(path, bytes);
  await nameColumnsFileAsIs(dir);
  assert.deepEqual(await verifyProblems(dir), [path]);
  assert.ok((await firstSearchReads(dir)) > 0);
});

test('columns: a checkpoint naming a file of another index generation (an older writer kept the field) is ignored, and the file deleted', async () => {
  const dir = await storeWithColumns();
  const state = StateStore.open(dir);
  const c = state.readCheckpoint();
  await state.commitCheckpoint({ checkpoint: { ...c, columns: { ...c.columns!, indexGeneration: c.indexGeneration + 5 } }, docs: new Map() });
  await state.close();
  assert.deepEqual(await verifyProblems(dir), []);
  assert.ok((await firstSearchReads(dir)) > 0);
  assert.ok(!readdirSync(indexDir(dir)).includes(`columns-${String(c.columns!.file).padStart(6, '0')}.col`));
});

test('columns: training PCA, the switch to pages and compaction keep filtered answers true across reopens', async () => {
  const dir = tempDir('memstore-columns-');
  const many = clustered(600, 16, 5);
  const options = { dim: 16, cache: false as const, pca: { dims: 8 }, trainSize: 100, pages: { from: 300, maxPage: 64 } };
  let store = await MemStore.open(dir, options);
  const all: string[] = [];
  try {
    for (let at = 0; at < 600; at += 50) {
      await store.add(many.slice(at, at + 50).map((vector, j) => ({ id: `p${at + j}`, vector, meta: metaOf(at + j) })));
      for (let j = 0; j < 50; j++) all.push(`p${at + j}`);
      assert.equal(await columnsDisagree(store, all, FILTERS.slice(0, 3), many[0]!), undefined, `after ${at + 50}`);
      if (at % 150 === 0) {
        await store.close();
        store = await MemStore.open(dir, { cache: false, pages: options.pages });
      }
      if (at === 400) await store.compact();
    }
    await store.close();
    store = await MemStore.open(dir, { cache: false, pages: options.pages });
    const spy = spyOnDocReads(store);
    await store.search(many[0]!, { k: 5, filter: { even: true } });
    assert.ok(spy.ids.length <= 5);
    assert.equal(await columnsDisagree(store, all, FILTERS, many[1]!), undefined);
  } finally {
    await store.close();
  }
});

test('columns: hostile field names and values of every JSON type survive a checkpoint and a replay exactly (property)', async () => {
  const name = fc.oneof(fc.constantFrom('__proto__', '', 'constructor', 'a.b', '\u{1f600}', 'ns', 'x'.repeat(300)), fc.string({ maxLength: 4 }));
  const scalar = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('\u{1f600}', 's', 'n1', '', 'x'.repeat(5000)), fc.integer({ min: -3, max: 3 }), fc.constantFrom(0, -0, 1e300, 2 ** -1074, 0.1), fc.boolean(), fc.constant(null));
  const value = fc.oneof(scalar, fc.constant([1]), fc.constant({ a: 1 }));
  const meta = fc.option(fc.dictionary(name, value, { maxKeys: 3 }), { nil: undefined });
  const op = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), recs: fc.array(fc.record({ n: fc.nat(39), meta }), { minLength: 1, maxLength: 8 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), ns: fc.array(fc.nat(39), { maxLength: 4 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('filter' as const), field: name, values: fc.array(scalar, { minLength: 1, maxLength: 3 }) }) },
    { weight: 1, arbitrary: fc.constantFrom({ kind: 'close' as const }, { kind: 'crash' as const }, { kind: 'compact' as const }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 4, maxLength: 30 }), async (ops) => {
      const dir = tempDir('memstore-columns-prop-');
      let store = await MemStore.open(dir, { dim: DIM, cache: false, durability: 'none' });
      const filters: Filter[] = [];
      const universe = Array.from({ length: 40 }, (_, i) => `h${i}`);
      try {
        for (const o of ops) {
          if (o.kind === 'put') await store.add(o.recs.map((r) => ({ id: `h${r.n}`, vector: vectors[r.n]!, ...(r.meta === undefined ? {} : { meta: r.meta }) })));
          else if (o.kind === 'delete') await store.delete(o.ns.map((n) => `h${n}`));
          else if (o.kind === 'compact') await store.compact();
          else if (o.kind === 'filter') {
            const f: Filter = { [o.field]: o.values.length === 1 ? o.values[0]! : { $in: o.values } };
            filters.push(f);
            const wrong = await columnsDisagree(store, universe, [f], vectors[0]!);
            assert.equal(wrong, undefined);
          } else {
            if (o.kind === 'close') await store.close();
            else await store.abandon();
            store = await MemStore.open(dir, { cache: false, durability: 'none' });
            assert.equal(await columnsDisagree(store, universe, filters, vectors[1]!), undefined, 'after reopening');
          }
        }
      } finally {
        await store.close();
      }
    }),
    { numRuns: 30 },
  );
});

test('columns: a field past the dictionary (hashed into buckets) and more fields than MAX_COLUMNS round-trip through a checkpoint', async () => {
  const dir = tempDir('memstore-columns-');
  const n = 4300;
  const many = clustered(n, DIM, 3);
  let store = await MemStore.open(dir, { dim: DIM, cache: false, durability: 'none' });
  const fields = Array.from({ length: 70 }, (_, f) => `f${f}`);
  await store.add(many.map((vector, i) => ({ id: `u${i}`, vector, meta: { u: `u-${i}`, ...(i < 40 ? Object.fromEntries(fields.map((f, j) => [f, (i + j) % 3])) : {}) } })));
  const all = many.map((_, i) => `u${i}`);
  const filters: Filter[] = [{ u: 'u-4299' }, { u: { $in: ['u-1', 'u-4100', 'nope'] } }, ...fields.map((f) => ({ [f]: 1 }))];
  assert.equal(await columnsDisagree(store, all, filters, many[0]!), undefined);
  await store.close();
  store = await MemStore.open(dir, { cache: false, durability: 'none' });
  try {
    assert.equal(await columnsDisagree(store, all, filters, many[1]!), undefined);
  } finally {
    await store.close();
  }
});

test('columns: a HEAD stamped with another index prefix than the checkpoint names, sealed and named by its digest, is not read', async () => {
  const dir = await storeWithColumns();
  const path = columnsPath(dir);
  const bytes = readFileSync(path);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  v.setUint32(COLUMN_HEADER_SIZE + 12, v.getUint32(COLUMN_HEADER_SIZE + 12, true) - 1, true);
  v.setUint32(4, maskCrc(crc32c(bytes, 8, COLUMN_HEADER_SIZE + v.getUint32(0, true))), true);
  writeFileSync(path, bytes);
  await nameColumnsFileAsIs(dir);
  assert.deepEqual(await verifyProblems(dir), [path]);
  assert.ok((await firstSearchReads(dir)) >= N - 10, 'nothing of the file was used');
});

test('columns: a block header changed (its block resealed) without the checkpoint naming the new digest: nothing of the file is read', async () => {
  const dir = await storeWithColumns();
  const path = columnsPath(dir);
  const bytes = readFileSync(path);
  const at = blockAt(bytes, COLUMN_CODES);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The last column's codes, resealed: a checksum cannot see it, the digest does.
  let last = at;
  for (let p = at; p + COLUMN_HEADER_SIZE <= bytes.length; p += COLUMN_HEADER_SIZE + v.getUint32(p, true)) if (bytes[p + 8] === COLUMN_CODES) last = p;
  bytes[last + COLUMN_HEADER_SIZE] = bytes[last + COLUMN_HEADER_SIZE]! ^ 1;
  v.setUint32(last + 4, maskCrc(crc32c(bytes, last + 8, last + COLUMN_HEADER_SIZE + v.getUint32(last, true))), true);
  writeFileSync(path, bytes);
  assert.deepEqual(await verifyProblems(dir), [path]);
  assert.ok((await firstSearchReads(dir)) >= N - 10, 'no column of the file was used, not even those before the changed block');
});

test('columns: a checkpoint naming its columns file without a digest (an older writer): the file is not used, and the next checkpoint writes one named by its digest', async () => {
  const dir = await storeWithColumns();
  const state = StateStore.open(dir);
  const c = state.readCheckpoint();
  const { digest: _d, ...undigested } = c.columns!;
  await state.commitCheckpoint({ checkpoint: { ...c, columns: undigested as never }, docs: new Map() });
  await state.close();
  assert.deepEqual(await verifyProblems(dir), []);
  assert.ok((await firstSearchReads(dir)) >= N - 10);
  assert.equal(typeof checkpointOf(dir).columns?.digest, 'number', 'close() wrote the columns again, named by their digest');
  assert.equal(await firstSearchReads(dir), 0);
});

test('columns: training and the switch to pages carry the columns over: the first filtered search after either reads no record\'s metadata but its hits\', and answers as the metadata says', async () => {
  for (const model of [{ pca: { dims: 8 } }, { codec: 'rq2' as const }]) {
    const dir = tempDir('memstore-columns-');
    const many = clustered(240, DIM, 17);
    const options = { dim: DIM, cache: false as const, trainSize: 64, pages: { from: 200, maxPage: 32 }, ...model };
    let store = await MemStore.open(dir, options);
    const ids: string[] = [];
    const add = async (from: number, to: number) => {
      await store.add(many.slice(from, to).map((vector, i) => ({ id: `r${from + i}`, vector, meta: metaOf(from + i) })));
      for (let i = from; i < to; i++) ids.push(`r${i}`);
    };
    // Closed and reopened before each step, so that the records' metadata is read from the state
    // (not from the writes a checkpoint has yet to take), and the columns from their file.
    const reopen = async () => {
      await store.close();
      store = await MemStore.open(dir, options);
    };
    const firstReads = async (what: string) => {
      const spy = spyOnDocReads(store);
      const hits = await store.search(many[0]!, { k: 5, filter: { ns: 'ns-3', even: true } });
      assert.equal(spy.ids.filter((id) => !hits.some((h) => h.id === id)).length, 0, `${JSON.stringify(model)}: ${what}`);
      assert.equal(await columnsDisagree(store, ids, FILTERS, many[1]!), undefined, `${JSON.stringify(model)}: ${what}`);
    };
    try {
      await add(0, 40);
      assert.equal(await columnsDisagree(store, ids, FILTERS, many[0]!), undefined);
      await reopen();
      assert.equal(store.stats().trained, false);
      await add(40, 80);
      assert.equal(store.stats().trained, true, 'trained');
      await firstReads('after training');
      await reopen();
      await add(80, 220);
      assert.ok(store.stats().pages > 1, 'paged');
      await firstReads('after the switch to pages');
    } finally {
      await store.close();
    }
  }
});
