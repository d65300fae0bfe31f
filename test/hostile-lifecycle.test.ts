import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { nodeFileLayer, type FileLayer } from '../io/file-layer.js';
import { MemstoreError, MemStore, type OpenOptions } from '../src/index.js';
import { MAX_PCA_DIM } from '../src/limits.js';
import { arenaDir, importMarkerPath, statePath } from '../src/store/files.js';
import { repairStore } from '../src/store/repair.js';
import { checkStore } from '../src/store/verify.js';
import { StateStore } from '../src/store/state.js';
import { clustered, rejectsWith, tempDir } from './helpers.js';

/**
 * Hostile tests of a store's configuration and lifecycle (2026-12-01): reopening with other
 * options, every method after close, close racing with reads, writes and compaction, directories
 * that are not stores or lost one of their files. The tests not marked "(held)" failed before their
 * fixes (a raw ENOTDIR, a state file made over another store's files, blobs written at the
 * addresses of lost ones, a queued write refused by close); the others held and stay as checks.
 */

const DIM = 16;
const vecs = clustered(300, DIM, 11);

/** A store whose last checkpoint holds r0..r199 and whose log alone holds q0..q99 (as a killed process leaves it). */
async function checkpointedThenLogged(): Promise<string> {
  const dir = tempDir('memstore-life-');
  const store = await MemStore.open(dir, { dim: DIM, durability: 'none' });
  await store.add(vecs.slice(0, 200).map((vector, i) => ({ id: `r${i}`, vector, text: `t${i}` })));
  await store.close();
  const again = await MemStore.open(dir, { durability: 'none' });
  await again.add(vecs.slice(200).map((vector, i) => ({ id: `q${i}`, vector, text: `u${i}` })));
  await again.abandon();
  return dir;
}

test('lifecycle: opening a path that is a file is INVALID_ARGUMENT naming dir, with dim or without (it was IO from the lock, a raw ENOTDIR before that), the file untouched; a path under a file is IO', async () => {
  const file = join(tempDir('memstore-life-'), 'a-file');
  writeFileSync(file, 'not a store');
  for (const options of [{ dim: DIM }, {}]) {
    const e = await MemStore.open(file, options).then(() => undefined, (err: unknown) => err);
    assert.ok(e instanceof MemstoreError && e.code === 'INVALID_ARGUMENT' && e.field === 'dir', String(e));
  }
  assert.equal(readFileSync(file, 'utf8'), 'not a store');
  await rejectsWith(() => MemStore.open(join(file, 'under'), { dim: DIM }), 'IO');
});

test('lifecycle: a store directory that lost its state file is CORRUPTION at open, with dim or without, in verify and in repair, and open creates nothing there', async () => {
  // Open without dim said INVALID_OPTION ("holds no store"); with dim it made a new state file over
  // the old store's log, index and arenas before failing, and verify said there was no store (exit 2).
  const dir = await checkpointedThenLogged();
  rmSync(statePath(dir));
  const before = readdirSync(dir).sort();
  await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
  await rejectsWith(() => MemStore.open(dir, { dim: DIM }), 'CORRUPTION');
  assert.deepEqual(readdirSync(dir).sort(), before, 'nothing created');
  assert.equal(existsSync(statePath(dir)), false);
  await rejectsWith(() => checkStore(dir), 'CORRUPTION');
  await rejectsWith(() => repairStore(dir), 'CORRUPTION');

  // A directory holding only files that are not a store's is still one to create a store in.
  const other = tempDir('memstore-life-');
  writeFileSync(join(other, 'notes.txt'), 'mine');
  const made = await MemStore.open(other, { dim: DIM, durability: 'none' });
  await made.close();
  await rejectsWith(() => checkStore(tempDir('memstore-life-')), 'INVALID_ARGUMENT');
});

for (const space of ['texts', 'vectors'] as const) {
  test(`lifecycle: a lost ${space} arena segment costs the records it held (CORRUPTION), and never hands them the ${space === 'texts' ? 'text' : 'vector'} of a record replayed after it`, async () => {
    // The replay of the log wrote q0..q99 into a new segment 1 at the very addresses r0..r99 had
    // had, so their references checked and returned the q records' texts and vectors; repair then
    // kept them so. Now appends start past the segment the checkpoint reached.
    const dir = await checkpointedThenLogged();
    rmSync(arenaDir(dir, space), { recursive: true });
    const store = await MemStore.open(dir);
    try {
      for (const i of [0, 1, 99, 150]) await rejectsWith(() => store.get(`r${i}`), 'CORRUPTION');
      for (const i of [0, 99]) {
        const q = await store.get(`q${i}`);
        assert.equal(q?.text, `u${i}`);
        assert.deepEqual(q?.vector, vecs[200 + i]);
      }
      const hits = await store.search(vecs[0]!, { k: 5, exact: true });
      assert.ok(hits.every((h) => !h.id.startsWith('r')), 'no r record returned with another record\'s bytes');
    } finally {
      await store.close();
    }
    const report = await checkStore(dir);
    assert.ok(report.problems.some((p) => p.id === 'r0'), 'verify names r0');
    const repaired = await repairStore(dir);
    assert.equal(repaired.removedRecords.length, 200);
    assert.equal((await checkStore(dir)).problems.length, 0);
    const after = await MemStore.open(dir);
    assert.equal(after.stats().count, 100);
    assert.equal((await after.get('q7'))?.text, 'u7');
    await after.close();
  });
}

test('lifecycle: an active arena segment emptied (cut at a frame boundary, so no torn tail shows) does not have its offsets written again', async () => {
  const dir = await checkpointedThenLogged();
  const texts = arenaDir(dir, 'texts');
  truncateSync(join(texts, readdirSync(texts)[0]!), 0);
  const store = await MemStore.open(dir);
  try {
    for (const i of [0, 9, 150]) await rejectsWith(() => store.get(`r${i}`), 'CORRUPTION');
    assert.equal((await store.get('q0'))?.text, 'u0');
  } finally {
    await store.close();
  }
});

test('lifecycle (held): reopening with each option again, changed, mistyped or out of range is honoured or refused with its code, and never changes the store', async () => {
  const dir = tempDir('memstore-life-');
  const store = await MemStore.open(dir, { dim: DIM, codec: 'int8', durability: 'none' });
  await store.add(vecs.slice(0, 50).map((vector, i) => ({ id: `r${i}`, vector, text: `t${i}`, meta: { g: i % 3 } })));
  const answer = JSON.stringify(await store.search(vecs[3]!, { k: 5 }));
  await store.close();
  const cases: [unknown, string | undefined][] = [
    [{}, undefined],
    [{ dim: DIM, metric: 'cosine', codec: 'int8', trainSize: 4096, rescore: true }, undefined],
    [{ dim: DIM + 1 }, 'DIM_MISMATCH'],
    [{ dim: String(DIM) }, 'INVALID_OPTION'],
    [{ dims: DIM }, 'INVALID_OPTION'],
    [{ metrc: 'dot' }, 'INVALID_OPTION'],
    [{ metric: 'dot' }, 'OPTION_MISMATCH'],
    [{ codec: 'f16' }, 'OPTION_MISMATCH'],
    [{ pca: { dims: 4 } }, 'OPTION_MISMATCH'],
    [{ pca: null }, 'INVALID_OPTION'],
    [{ trainSize: 5 }, 'OPTION_MISMATCH'],
    [{ oversample: 0 }, 'INVALID_OPTION'],
    [{ oversample: 3 }, undefined],
    [{ pages: { maxPage: 8 } }, 'INVALID_OPTION'],
    [{ pages: true }, 'INVALID_OPTION'],
    [{ durability: 'batch' }, undefined],
    [{ durability: null }, 'INVALID_OPTION'],
    [{ cache: true }, 'INVALID_OPTION'],
    [{ cache: { entries: 0 } }, 'INVALID_OPTION'],
    [{ cache: false }, undefined],
    [{ mmap: 'no' }, 'INVALID_OPTION'],
    [{ mmap: false }, undefined],
    [{ checkpointBytes: 0 }, 'INVALID_OPTION'],
    [{ embed: 3 }, 'INVALID_OPTION'],
    [{ dedupe: Number.NaN }, 'INVALID_OPTION'],
    [{ metric: 'dot', pages: { maxPage: 32 } }, 'OPTION_MISMATCH'],
    [3, 'INVALID_OPTION'],
    [[], 'INVALID_OPTION'],
  ];
  for (const [options, code] of cases) {
    if (code !== undefined) {
      await rejectsWith(() => MemStore.open(dir, options as OpenOptions), code as never);
      continue;
    }
    const again = await MemStore.open(dir, options as OpenOptions);
    assert.equal(again.stats().count, 50);
    await again.close();
  }
  const last = await MemStore.open(dir, { cache: false });
  assert.equal(JSON.stringify(await last.search(vecs[3]!, { k: 5 })), answer);
  await last.close();
});

test('lifecycle: refusals of options at creation and on reopen carry the field they are about (DIM_MISMATCH, OPTION_MISMATCH, a missing dim, pca past dim, an unknown codec, rescore on a store without full vectors)', async () => {
  const fieldOf = async (call: () => Promise<unknown>): Promise<[string | undefined, string | undefined]> => {
    try {
      await call();
    } catch (e) {
      assert.ok(e instanceof MemstoreError, String(e));
      return [e.code, e.field];
    }
    assert.fail('nothing was thrown');
  };
  const fresh = tempDir('memstore-life-');
  assert.deepEqual(await fieldOf(() => MemStore.open(fresh, {})), ['INVALID_OPTION', 'dim']);
  assert.deepEqual(await fieldOf(() => MemStore.open(fresh, { dim: 4, pca: { dims: 8 } })), ['INVALID_OPTION', 'pca.dims']);
  assert.deepEqual(await fieldOf(() => MemStore.open(fresh, { dim: MAX_PCA_DIM + 1, pca: { dims: 8 } })), ['INVALID_OPTION', 'dim']);
  assert.deepEqual(await fieldOf(() => MemStore.open(fresh, { dim: 4, codec: 'int4' as never })), ['INVALID_OPTION', 'codec']);
  const dir = tempDir('memstore-life-');
  const store = await MemStore.open(dir, { dim: DIM, rescore: false, durability: 'none' });
  await store.add([{ id: 'a', vector: vecs[0]! }]);
  assert.deepEqual(await fieldOf(() => store.search(vecs[0]!, { rescore: true })), ['INVALID_OPTION', 'rescore']);
  await store.close();
  for (const [options, expected] of [
    [{ dim: DIM + 1 }, ['DIM_MISMATCH', 'dim']],
    [{ metric: 'dot' }, ['OPTION_MISMATCH', 'metric']],
    [{ codec: 'f16' }, ['OPTION_MISMATCH', 'codec']],
    [{ pca: { dims: 4 } }, ['OPTION_MISMATCH', 'pca']],
    [{ rescore: true }, ['OPTION_MISMATCH', 'rescore']],
    [{ trainSize: 5 }, ['OPTION_MISMATCH', 'trainSize']],
  ] as const) {
    assert.deepEqual(await fieldOf(() => MemStore.open(dir, options as OpenOptions)), expected, JSON.stringify(options));
  }
});

test('lifecycle: new MemStore() from plain JavaScript is INVALID_ARGUMENT (a TypeError reading its configuration)', async () => {
  const Ctor = MemStore as unknown as new (dir: string, options: unknown) => unknown;
  assert.throws(() => new Ctor(tempDir('memstore-life-'), { dim: 4 }), (err: unknown) => err instanceof MemstoreError && err.code === 'INVALID_ARGUMENT');
});

test('lifecycle (held): every public method after close is CLOSED, bad arguments included, and close is idempotent', async () => {
  const store = await MemStore.open(tempDir('memstore-life-'), { dim: DIM, durability: 'none', embed: async (t) => t.map(() => vecs[0]!) });
  await store.add([{ id: 'a', vector: vecs[0]! }]);
  await store.close();
  await store.close();
  const calls: (() => unknown)[] = [
    () => store.ids(), () => store.ids({ g: 1 }), () => store.compact(), () => store.remember('x'), () => store.recall('x'),
    () => store.forget(['a']), () => store.namespaces(), () => store.search([1]), () => store.get(3 as never), () => store.add([]),
    () => store.delete([]), () => store.add('x' as never),
  ];
  for (const call of calls) await rejectsWith(call, 'CLOSED');
});

test('lifecycle: a write issued while compact() holds writes back, before close(), is completed by close, not refused with CLOSED', async () => {
  const dir = tempDir('memstore-life-');
  const store = await MemStore.open(dir, { dim: DIM, durability: 'none' });
  await store.add(vecs.slice(0, 250).map((vector, i) => ({ id: `r${i}`, vector, text: `t${i}` })));
  await store.delete(['r1', 'r2']);
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) inFlight.push(store.search(vecs[i]!, { k: 50 }).then((h) => assert.equal(h.length, 50)));
  for (let i = 3; i < 13; i++) inFlight.push(store.get(`r${i}`).then((r) => assert.equal(r?.text, `t${i}`)));
  inFlight.push(store.compact());
  inFlight.push(store.add([{ id: 'late', vector: vecs[299]!, text: 'late' }]));
  await store.close();
  await Promise.all(inFlight);
  const again = await MemStore.open(dir);
  assert.equal(again.stats().count, 249);
  assert.equal((await again.get('late'))?.text, 'late');
  await again.close();
  assert.equal((await checkStore(dir)).problems.length, 0);
});

test('lifecycle: new page settings given to an open that then fails are not kept; given to one that succeeds, they are', async () => {
  const dir = tempDir();
  const v = clustered(60, 8, 3);
  const store = await MemStore.open(dir, { dim: 8 });
  await store.add(v.map((vector, i) => ({ id: `r${i}`, vector })));
  await store.close();
  const pagesFrom = async (): Promise<number | undefined> => {
    const state = StateStore.open(dir);
    try {
      const pages = state.readConfig()?.pages;
      return pages === false ? undefined : pages?.from;
    } finally {
      await state.close();
    }
  };
  const before = await pagesFrom();
  assert.notEqual(before, 40);
  // The index file out of the way: the open fails after it has read and settled the options.
  renameSync(join(dir, 'index'), join(dir, 'index.aside'));
  await rejectsWith(() => MemStore.open(dir, { pages: { from: 40 } }), 'CORRUPTION');
  renameSync(join(dir, 'index.aside'), join(dir, 'index'));
  assert.equal(await pagesFrom(), before, 'the failed open changed nothing');
  const again = await MemStore.open(dir, { pages: { from: 40 } });
  await again.close();
  assert.equal(await pagesFrom(), 40);
});

test('lifecycle: a repair refused before it opens the store (an unfinished import) lets go of the directory lock', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 8 });
  await store.add([{ id: 'a', vector: clustered(1, 8, 1)[0]! }]);
  await store.close();
  writeFileSync(importMarkerPath(dir), '');
  await assert.rejects(repairStore(dir), (e: unknown) => (e as { code?: string }).code === 'CORRUPTION');
  assert.equal(existsSync(join(dir, 'LOCK')), false, 'no lock file left behind');
  rmSync(importMarkerPath(dir));
  // In this process too: the directory is not taken for one still open here.
  const again = await MemStore.open(dir);
  assert.equal(again.stats().count, 1);
  await again.close();
});

test('lifecycle: verify of a store killed after a collection of its arenas and before its next checkpoint reports no damage for the records the log rewrites (they open whole)', async () => {
  const dir = tempDir();
  const v = clustered(20, 8, 2);
  let store = await MemStore.open(dir, { dim: 8 });
  await store.add(v.map((vector, i) => ({ id: `r${i}`, vector, text: `first ${i}` })));
  await store.close();
  store = await MemStore.open(dir);
  const changed = Float32Array.from(v[1]!, (x) => -x);
  await store.add([{ id: 'r0', vector: changed, text: 'second 0' }]);
  // Both arenas collected now, as a background checkpoint's collection may do between checkpoints:
  // the state moves the texts and places of the records unchanged since the checkpoint only.
  const internals = store as unknown as { pipeline: { exclusive(run: () => Promise<void>): Promise<void> }; checkpoints: { collectTexts(): Promise<void>; collectVectors(): Promise<void> } };
  await internals.pipeline.exclusive(() => internals.checkpoints.collectTexts());
  await internals.pipeline.exclusive(() => internals.checkpoints.collectVectors());
  await store.abandon();
  assert.deepEqual((await checkStore(dir)).problems, []);
  store = await MemStore.open(dir);
  try {
    const r0 = await store.get('r0');
    assert.equal(r0?.text, 'second 0');
    assert.deepEqual(r0?.vector, changed);
    assert.equal((await store.get('r1'))?.text, 'first 1');
  } finally {
    await store.close();
  }
});

/** The real file layer, but for reads of a LOCK file while `failing`, which fail with EIO. */
function unreadableLock(): { files: FileLayer; failing: boolean } {
  const lock = {
    failing: false,
    files: {
      ...nodeFileLayer,
      readFileSync(path: string): Uint8Array {
        if (lock.failing && basename(path) === 'LOCK') throw Object.assign(new Error('injected read failure'), { code: 'EIO' });
        return nodeFileLayer.readFileSync(path);
      },
    } as FileLayer,
  };
  return lock;
}

test('lifecycle: a LOCK that cannot be read at close is IO from close() with its cause, stays in place, and this process opens the directory again', async () => {
  const dir = tempDir('memstore-life-');
  const lock = unreadableLock();
  const files = lock.files;
  const store = await MemStore.open(dir, { dim: DIM, files, durability: 'none' });
  await store.add([{ id: 'a', vector: vecs[0]!, text: 'kept' }]);
  lock.failing = true;
  let caught: unknown;
  await store.close().catch((e: unknown) => (caught = e));
  assert.ok(caught instanceof MemstoreError && caught.code === 'IO' && caught.cause !== undefined, `close: ${String(caught)}`);
  lock.failing = false;
  assert.ok(existsSync(join(dir, 'LOCK')), 'a lock it could not read is not removed');
  // Its thread let go of the directory all the same: the lock naming this process is taken over.
  const again = await MemStore.open(dir, { files });
  try {
    assert.equal((await again.get('a'))?.text, 'kept', 'everything before the failed release was closed durably');
  } finally {
    await again.close();
  }
  assert.ok(!existsSync(join(dir, 'LOCK')));
});

test('lifecycle: an open refused after it took the lock keeps its own error when LOCK cannot be read as it lets go, and this process opens the directory after', async () => {
  const dir = tempDir('memstore-life-');
  const lock = unreadableLock();
  const files = lock.files;
  const store = await MemStore.open(dir, { dim: DIM, files, durability: 'none' });
  await store.add([{ id: 'a', vector: vecs[0]!, text: 'kept' }]);
  await store.close();
  lock.failing = true;
  // Another dim is refused once the store's configuration is read, with the lock held.
  await rejectsWith(() => MemStore.open(dir, { dim: DIM + 1, files }), 'DIM_MISMATCH');
  lock.failing = false;
  const again = await MemStore.open(dir, { files });
  try {
    assert.equal((await again.get('a'))?.text, 'kept');
  } finally {
    await again.close();
  }
});


/** Another program's LMDB environment where a store keeps its state: one key, `hello`. */
async function foreignEnvironment(dir: string): Promise<void> {
  const { open } = await import('lmdb');
  const foreign = open({ path: statePath(dir), encoding: 'binary' });
  await foreign.put('hello', Buffer.from('world'));
  await foreign.close();
}

test("repair of another program's LMDB environment named state.mdb is INVALID_ARGUMENT and leaves its data (the rebuild had dropped every key of it)", async () => {
  const { open } = await import('lmdb');
  const dir = tempDir();
  await foreignEnvironment(dir);
  await rejectsWith(() => repairStore(dir), 'INVALID_ARGUMENT');
  const again = open({ path: statePath(dir), encoding: 'binary', readOnly: true });
  try {
    assert.deepEqual(again.get('hello'), Buffer.from('world'));
  } finally {
    await again.close();
  }
  assert.ok(!readdirSync(dir).some((name) => name.startsWith('repair-')), 'no report left in it');
  assert.ok(!existsSync(join(dir, 'LOCK')), 'the lock given back');
});

test("repair with its report inside the store's own entries (wal/, arena/, ...) is INVALID_ARGUMENT before anything is touched (a report in wal/ was deleted with the log it describes)", async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4, durability: 'none' });
  await store.add([{ id: 'a', vector: [1, 2, 3, 4], text: 'kept' }]);
  await store.close();
  for (const inside of ['wal', 'arena', 'vectors', 'index', 'wal.repair']) {
    await rejectsWith(() => repairStore(dir, { report: join(dir, inside, 'report.jsonl') }), 'INVALID_ARGUMENT');
    assert.ok(!existsSync(join(dir, inside, 'report.jsonl')), inside);
  }
  // Through links: the store named by a link to it, and a report named through a link into wal/
  // (the check compared names alone, and such a report was written, then deleted with the log).
  const links = tempDir();
  symlinkSync(dir, join(links, 'store'));
  symlinkSync(join(dir, 'wal'), join(links, 'log'));
  await rejectsWith(() => repairStore(join(links, 'store'), { report: join(dir, 'wal', 'report.jsonl') }), 'INVALID_ARGUMENT');
  await rejectsWith(() => repairStore(dir, { report: join(links, 'log', 'report.jsonl') }), 'INVALID_ARGUMENT');
  await rejectsWith(() => repairStore(dir, { report: join(links, 'store', 'wal', 'new', 'report.jsonl') }), 'INVALID_ARGUMENT');
  assert.ok(!existsSync(join(dir, 'wal', 'report.jsonl')));
  // Beside them, in the directory itself, is where a report goes by default: allowed.
  const done = await repairStore(dir, { report: join(dir, 'mine.jsonl') });
  assert.equal(done.count, 1);
  assert.ok(existsSync(join(dir, 'mine.jsonl')));
});

test("an export or a repair report named inside another store's entries (wal/, index/, IMPORTING, ...) is INVALID_ARGUMENT, and that store opens with every record (a file written into its wal/ broke its log)", async () => {
  const { exportStore } = await import('../src/index.js');
  const source = tempDir();
  const store = await MemStore.open(source, { dim: 4, durability: 'none' });
  await store.add([{ id: 'a', vector: [1, 2, 3, 4], text: 'kept' }]);
  await store.close();
  const other = tempDir();
  const victim = await MemStore.open(other, { dim: 4 });
  await victim.add([{ id: 'v', vector: [4, 3, 2, 1], text: 'theirs' }]);
  await victim.abandon();
  const links = tempDir();
  symlinkSync(join(other, 'wal'), join(links, 'log'));
  const targets = [join(other, 'wal', 'wal-00000000000000000009.log'), join(other, 'wal', 'new', 'x.jsonl'), join(other, 'index', 'x.jsonl'), join(other, 'IMPORTING'), join(links, 'log', 'x.jsonl')];
  for (const out of targets) {
    await rejectsWith(() => exportStore(source, out, { format: 'jsonl' }), 'INVALID_ARGUMENT');
    await rejectsWith(() => repairStore(source, { report: out }), 'INVALID_ARGUMENT');
    assert.ok(!existsSync(out), out);
  }
  const reopened = await MemStore.open(other);
  try {
    assert.deepEqual(reopened.ids(), ['v']);
    assert.equal((await reopened.get('v'))?.text, 'theirs');
  } finally {
    await reopened.close();
  }
  // Beside another store's entries, in its directory, is the user's to choose: allowed.
  assert.equal((await exportStore(source, join(other, 'beside.jsonl'))).records, 1);
});

test("inspect, verify, compact, export and repair leave another program's LMDB environment named state.mdb byte for byte (opening it as a store had added sub-databases), INVALID_ARGUMENT; an empty state.mdb is CORRUPTION and stays empty", async () => {
  const { exportStore } = await import('../src/index.js');
  const dir = tempDir();
  await foreignEnvironment(dir);
  const before = readFileSync(statePath(dir));
  await rejectsWith(() => checkStore(dir), 'INVALID_ARGUMENT');
  await rejectsWith(() => exportStore(dir, join(tempDir(), 'x.jsonl')), 'INVALID_ARGUMENT');
  await rejectsWith(() => repairStore(dir), 'INVALID_ARGUMENT');
  assert.ok(readFileSync(statePath(dir)).equals(before), 'not a byte changed');
  const empty = tempDir();
  writeFileSync(statePath(empty), '');
  await rejectsWith(() => checkStore(empty), 'CORRUPTION');
  await rejectsWith(() => repairStore(empty), 'CORRUPTION');
  assert.equal(readFileSync(statePath(empty)).length, 0);
});

test("MemStore.open on a directory whose state.mdb is another program's LMDB environment is INVALID_ARGUMENT, not a byte changed (it made a store inside that file); an environment with no key at all (a creation stopped before its first commit) is created again", async () => {
  const { open } = await import('lmdb');
  const dir = tempDir();
  await foreignEnvironment(dir);
  const before = readFileSync(statePath(dir));
  await rejectsWith(() => MemStore.open(dir, { dim: 4 }), 'INVALID_ARGUMENT');
  assert.ok(readFileSync(statePath(dir)).equals(before), 'not a byte changed');
  // One whose main tree spans more pages than the look reads (it reads the file, not through LMDB,
  // and stops after 64 pages: a store's is one): another program's all the same.
  const big = tempDir();
  const env = open({ path: statePath(big), encoding: 'binary' });
  await env.transaction(() => {
    for (let i = 0; i < 20_000; i++) void env.put(`key ${String(i).padStart(6, '0')} ${'x'.repeat(40)}`, Buffer.from('v'));
  });
  await env.close();
  const bigBefore = readFileSync(statePath(big));
  assert.ok(bigBefore.length > 100 * 4096, 'a main tree of many pages');
  await rejectsWith(() => MemStore.open(big, { dim: 4 }), 'INVALID_ARGUMENT');
  await rejectsWith(() => checkStore(big), 'INVALID_ARGUMENT');
  assert.ok(readFileSync(statePath(big)).equals(bigBefore), 'not a byte changed');
  const unborn = tempDir();
  await open({ path: statePath(unborn), encoding: 'binary' }).close();
  const store = await MemStore.open(unborn, { dim: 4 });
  try {
    await store.add([{ id: 'a', vector: [1, 2, 3, 4] }]);
    assert.equal(store.stats().count, 1);
  } finally {
    await store.close();
  }
});

/** Every file under `dir` but the locks, with its size: what an open that fails must leave alone. */
function filesWithSizes(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, name.name);
      if (name.isDirectory()) walk(path);
      else if (!name.name.includes('lock') && name.name !== 'LOCK') out.push(`${path.slice(dir.length)} ${statSync(path).size}`);
    }
  };
  walk(dir);
  return out.sort();
}

test('lifecycle: a state.mdb of no bytes, or an LMDB environment with no key, beside a store\'s files is CORRUPTION at open, and the open deletes none of them (it made a new store there and deleted its arenas and index as leftovers)', async () => {
  for (const blank of ['no bytes', 'no key'] as const) {
    const dir = await checkpointedThenLogged();
    rmSync(statePath(dir));
    if (blank === 'no bytes') writeFileSync(statePath(dir), '');
    else await (await import('lmdb')).open({ path: statePath(dir), maxDbs: 8 }).close();
    const before = filesWithSizes(dir).filter((f) => !f.startsWith('/state.mdb'));
    await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
    await rejectsWith(() => checkStore(dir), 'CORRUPTION');
    await rejectsWith(() => repairStore(dir), 'CORRUPTION');
    assert.deepEqual(filesWithSizes(dir).filter((f) => !f.startsWith('/state.mdb')), before, blank);
  }
  // With none of a store's files beside it, it is a creation stopped before its first commit: created again.
  const fresh = tempDir();
  writeFileSync(statePath(fresh), '');
  const store = await MemStore.open(fresh, { dim: DIM });
  await store.add([{ id: 'a', vector: vecs[0]! }]);
  await store.close();
});

test('lifecycle: a state.mdb older than the store\'s files (a backup put back after a compaction) fails the open with CORRUPTION and deletes none of the current arena, vector, index and columns files', async () => {
  const dir = tempDir();
  let store = await MemStore.open(dir, { dim: DIM, durability: 'none' });
  await store.add(vecs.slice(0, 50).map((vector, i) => ({ id: `r${i}`, vector, text: `t${i}`, meta: { i } })));
  await store.close();
  const backup = readFileSync(statePath(dir));
  store = await MemStore.open(dir, { durability: 'none' });
  await store.add(vecs.slice(50, 100).map((vector, i) => ({ id: `s${i}`, vector, text: `u${i}`, meta: { i } })));
  assert.equal((await store.search(vecs[0]!, { k: 1, filter: { i: 0 } })).length, 1);
  await store.compact();
  await store.close();
  const before = filesWithSizes(dir).filter((f) => !f.startsWith('/state.mdb'));
  writeFileSync(statePath(dir), backup);
  await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
  assert.deepEqual(filesWithSizes(dir).filter((f) => !f.startsWith('/state.mdb')), before);
});

test('close() called twice: the second settles only once the store is closed, so a reopen right after it succeeds', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4 });
  await store.add(Array.from({ length: 500 }, (_, i) => ({ id: `r${i}`, vector: [i + 1, 1, 2, 3], text: 'x'.repeat(100) })));
  const first = store.close();
  await store.close();
  const again = await MemStore.open(dir);
  try {
    assert.equal(again.stats().count, 500);
  } finally {
    await again.close();
  }
  await first;
});
