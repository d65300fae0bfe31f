import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { open as openLmdb } from 'lmdb';
import { crc32c, maskCrc } from '../io/crc32c.js';
import { MemStore, MemstoreError } from '../src/index.js';
import { indexDir, indexFileName, indexFilePath, parseIndexFileName, statePath } from '../src/store/files.js';
import { indexRewrite } from '../src/store/checkpointer.js';
import { BLOCK_DELTA, BLOCK_SNAPSHOT, BlockWriter, FLAG_PAGE, FLAG_PLACE, INDEX_HEADER_SIZE, IndexFile } from '../src/store/index-file.js';
import { nodeFileLayer } from '../io/file-layer.js';
import { checkStore } from '../src/store/verify.js';
import { repairStore } from '../src/store/repair.js';
import { StateStore, stateWriteHooks } from '../src/store/state.js';
import { checkpointOf, clustered, rejectsWith, tempDir, writeStoreConfig } from './helpers.js';
import { cliResult } from './support/cli.js';

/**
 * The index file (src/store/INDEX.md), one named test per rule: what a reader does with bytes past
 * the committed length, a bad checksum inside it, a short file, an unknown block kind; how
 * checkpoints append deltas, start new generations and cut what a failed checkpoint left; and what
 * the index says of documents.
 */
const DIM = 16;
const N = 40;
const vecs = clustered(N, DIM, 11);
/** Even records have a text and metadata (a `docs` value); odd ones have neither. */
const rec = (i: number) => ({ id: `r${i}`, vector: vecs[i]!, ...(i % 2 === 0 ? { text: `text ${i}`, meta: { i } } : {}) });

/** A closed store: records 0..19 in the snapshot of its generation, 20..39 in a delta after it. */
async function storeWithDelta(): Promise<{ dir: string; snapshotEnd: number }> {
  const dir = tempDir('memstore-index-');
  const saved = indexRewrite.minDeltaBytes;
  indexRewrite.minDeltaBytes = 0;
  let store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false });
  try {
    // The first checkpoint's delta outweighs the empty snapshot: a new generation, one snapshot.
    await store.add(Array.from({ length: N / 2 }, (_, i) => rec(i)));
    await store.close();
  } finally {
    indexRewrite.minDeltaBytes = saved;
  }
  const snapshotEnd = checkpointOf(dir).indexBytes;
  store = await MemStore.open(dir, { cache: false });
  await store.add(Array.from({ length: N / 2 }, (_, i) => rec(N / 2 + i)));
  await store.close();
  assert.ok(checkpointOf(dir).indexBytes > snapshotEnd, 'the second checkpoint appended a delta');
  return { dir, snapshotEnd };
}

/**
 * repairIndex() on a store (from storeWithDelta) whose delta is lost: the delta's records with a
 * document are named in the report (their ids are in the state), the others are lost with the
 * block, and every other record is whole. Returns what repairIndex() does.
 */
async function repairLosingDelta(dir: string): Promise<Awaited<ReturnType<typeof repairIndex>>> {
  const repaired = await repairIndex(dir);
  const { records } = repaired;
  const lost = new Set(Array.from({ length: N / 2 }, (_, i) => `r${N / 2 + i}`));
  assert.deepEqual(records, [...lost].filter((id) => Number(id.slice(1)) % 2 === 0).sort());
  await expectAll(dir, lost);
  return repaired;
}

async function expectAll(dir: string, except: ReadonlySet<string> = new Set()): Promise<void> {
  const store = await MemStore.open(dir, { cache: false });
  try {
    assert.equal(store.stats().count, N - except.size);
    for (let i = 0; i < N; i++) {
      const got = await store.get(`r${i}`);
      if (except.has(`r${i}`)) {
        assert.equal(got, undefined);
        continue;
      }
      assert.deepEqual(got?.vector, vecs[i]);
      assert.equal(got?.text, i % 2 === 0 ? `text ${i}` : undefined);
      assert.deepEqual(got?.meta, i % 2 === 0 ? { i } : undefined);
    }
  } finally {
    await store.close();
  }
}

async function corruptionAtOpen(dir: string): Promise<MemstoreError> {
  const e = await MemStore.open(dir).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (err: unknown) => err,
  );
  assert.ok(e instanceof MemstoreError && e.code === 'CORRUPTION', `expected CORRUPTION at open, got ${String(e)}`);
  return e;
}

test('index: bytes past the committed length (a checkpoint that never committed, torn or whole) are cut at open, and are not damage', async () => {
  const { dir } = await storeWithDelta();
  const { indexGeneration, indexBytes } = checkpointOf(dir);
  const path = indexFilePath(dir, indexGeneration);
  const bytes = readFileSync(path);
  // A whole copy of the last block, then half of another: what a checkpoint killed before its commit leaves.
  appendFileSync(path, bytes.subarray(0, bytes.length));
  appendFileSync(path, bytes.subarray(0, INDEX_HEADER_SIZE + 7));
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 0, verify.stdout);
  await expectAll(dir);
  assert.equal(statSync(path).size, indexBytes, 'open cut the file back to its committed length');
});

test('index: a bad checksum inside the committed length is CORRUPTION at open (file and block offset); verify lists it; repair reports the block and leaves a clean store', async () => {
  const { dir, snapshotEnd } = await storeWithDelta();
  const { indexGeneration } = checkpointOf(dir);
  const path = indexFilePath(dir, indexGeneration);
  const bytes = readFileSync(path);
  // A byte inside the delta block's records (after the snapshot): the snapshot's records stay readable.
  bytes[snapshotEnd + INDEX_HEADER_SIZE + 5]! ^= 0x10;
  writeFileSync(path, bytes);
  const e = await corruptionAtOpen(dir);
  assert.equal(e.file, path);
  assert.equal(e.offset, snapshotEnd);
  assert.match(e.message, /checksum/);
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /index file damage/);

  const { index, indexBytes } = await repairLosingDelta(dir);
  assert.equal(index.length, 1);
  assert.equal(index[0]!.offset, snapshotEnd);
  assert.ok(indexBytes[0]! > INDEX_HEADER_SIZE, 'the damaged block is in the report');
});

test('index: a file shorter than its committed length is CORRUPTION at open; repair keeps the blocks before the cut', async () => {
  const { dir } = await storeWithDelta();
  const { indexGeneration, indexBytes } = checkpointOf(dir);
  const path = indexFilePath(dir, indexGeneration);
  truncateSync(path, indexBytes - 3);
  const e = await corruptionAtOpen(dir);
  assert.equal(e.file, path);
  assert.equal(e.offset, indexBytes - 3);
  assert.match(e.message, /shorter than its committed length/);
  assert.equal((await cliResult(['verify', dir])).code, 1);
  // Repair keeps the whole blocks before the cut: the snapshot.
  assert.ok((await repairLosingDelta(dir)).index.length > 0, 'the cut is reported as index damage');
});

test('index: a missing index file that the checkpoint gives a length is CORRUPTION at open', async () => {
  const { dir } = await storeWithDelta();
  const { indexGeneration } = checkpointOf(dir);
  rmSync(indexFilePath(dir, indexGeneration));
  const e = await corruptionAtOpen(dir);
  assert.equal(e.file, indexFilePath(dir, indexGeneration));
  assert.match(e.message, /index file missing/);
});

/** The digest a writer's checkpoint names the first `length` bytes of `path` by (indexDigest() of their blocks' headers). */
function digestOfFile(path: string, length: number): number {
  const bytes = readFileSync(path);
  let digest = 0;
  for (let at = 0; at < length; at += INDEX_HEADER_SIZE + bytes.readUInt32LE(at)) digest = crc32c(bytes, at, at + INDEX_HEADER_SIZE, digest);
  return digest;
}

/** Commits `checkpoint` with the digest of its index prefix as the file now holds it: as a writer that wrote those bytes would. */
async function commitAsWriter(dir: string, checkpoint: ReturnType<typeof checkpointOf>): Promise<void> {
  const state = StateStore.open(dir);
  await state.commitCheckpoint({ checkpoint: { ...checkpoint, indexDigest: digestOfFile(indexFilePath(dir, checkpoint.indexGeneration), checkpoint.indexBytes) }, docs: new Map() });
  await state.close();
}

/** A store whose delta block (after the snapshot, at `snapshotEnd`) was changed by `change` and sealed again, as a writer seals. */
async function resealedDelta(change: (bytes: Buffer, at: number) => void): Promise<{ dir: string; snapshotEnd: number }> {
  const { dir, snapshotEnd } = await storeWithDelta();
  const path = indexFilePath(dir, checkpointOf(dir).indexGeneration);
  const bytes = readFileSync(path);
  const length = bytes.readUInt32LE(snapshotEnd);
  assert.equal(bytes[snapshotEnd + 8], BLOCK_DELTA);
  change(bytes, snapshotEnd);
  bytes.writeUInt32LE(maskCrc(crc32c(bytes, snapshotEnd + 8, snapshotEnd + INDEX_HEADER_SIZE + length)), snapshotEnd + 4);
  writeFileSync(path, bytes);
  await commitAsWriter(dir, checkpointOf(dir));
  return { dir, snapshotEnd };
}

test('index: a block of an unknown kind, checksum intact, is CORRUPTION at open', async () => {
  const { dir, snapshotEnd } = await resealedDelta((bytes, at) => (bytes[at + 8] = 9));
  const e = await corruptionAtOpen(dir);
  assert.equal(e.offset, snapshotEnd);
  assert.match(e.message, /unknown block kind 9/);
});

test('index: a block whose header padding is not zero, checksum intact, is CORRUPTION at open (the grammar says 0x00 0x00 0x00)', async () => {
  const { dir, snapshotEnd } = await resealedDelta((bytes, at) => (bytes[at + 9] = 0x42));
  const e = await corruptionAtOpen(dir);
  assert.equal(e.offset, snapshotEnd);
});

test('index: a record whose code has a NaN, infinite or negative scale, block checksum intact, is CORRUPTION at open (no codec writes one; it had been taken)', async () => {
  for (const scale of [Number.NaN, Infinity, -Infinity, -1, -1e-30, -0]) {
    // The delta's first record: flags, id length, id, then its code's scale.
    const { dir, snapshotEnd } = await resealedDelta((bytes, at) => bytes.writeFloatLE(scale, at + INDEX_HEADER_SIZE + 3 + bytes.readUInt16LE(at + INDEX_HEADER_SIZE + 1)));
    const e = await corruptionAtOpen(dir);
    assert.equal(e.offset, snapshotEnd, String(scale));
  }
});

test('index: a SNAPSHOT block after a DELTA block, checksum intact, is CORRUPTION at open (INDEX.md: a generation is one snapshot, then deltas)', async () => {
  const { dir } = await storeWithDelta();
  const { indexBytes: deltaEnd, indexGeneration: generation } = checkpointOf(dir);
  // A third checkpoint appends a second delta (an upsert of one record), which becomes the SNAPSHOT.
  const store = await MemStore.open(dir, { cache: false });
  await store.add([rec(3)]);
  await store.close();
  const { indexGeneration, indexBytes } = checkpointOf(dir);
  assert.ok(indexGeneration === generation && indexBytes > deltaEnd, 'a second delta was appended to the same generation');
  const path = indexFilePath(dir, indexGeneration);
  const bytes = readFileSync(path);
  const length = bytes.readUInt32LE(deltaEnd);
  assert.equal(bytes[deltaEnd + 8], BLOCK_DELTA);
  bytes[deltaEnd + 8] = BLOCK_SNAPSHOT;
  bytes.writeUInt32LE(maskCrc(crc32c(bytes, deltaEnd + 8, deltaEnd + INDEX_HEADER_SIZE + length)), deltaEnd + 4);
  writeFileSync(path, bytes);
  await commitAsWriter(dir, checkpointOf(dir));
  const e = await corruptionAtOpen(dir);
  assert.equal(e.offset, deltaEnd);
});

test('index: a checkpoint whose state commit fails leaves its delta past the committed length; the next checkpoint writes over it', async () => {
  const { dir } = await storeWithDelta();
  const before = checkpointOf(dir);
  const store = await MemStore.open(dir, { cache: false });
  await store.add([{ id: 'late', vector: vecs[0]!, text: 'late' }]);
  stateWriteHooks.beforeWrite = () => {
    throw new Error('injected: the state refuses');
  };
  try {
    await rejectsWith(() => store.close(), 'IO');
  } finally {
    stateWriteHooks.beforeWrite = undefined;
  }
  const path = indexFilePath(dir, before.indexGeneration);
  assert.ok(statSync(path).size > before.indexBytes, 'the failed checkpoint appended its delta');
  assert.deepEqual(checkpointOf(dir), before);
  const again = await MemStore.open(dir, { cache: false });
  assert.equal((await again.get('late'))?.text, 'late', 'the log replays what the failed checkpoint held');
  await again.add([{ id: 'later', vector: vecs[1]! }]);
  await again.close();
  const after = checkpointOf(dir);
  assert.equal(statSync(path).size, after.indexBytes, 'no byte past the committed length');
  const reopened = await MemStore.open(dir, { cache: false });
  assert.equal((await reopened.get('late'))?.text, 'late');
  assert.ok((await reopened.get('later')) !== undefined);
  assert.equal(reopened.stats().count, N + 2);
  await reopened.close();
});

test('index: deltas that outweigh the snapshot start a new generation; the old file goes, and open deletes files of generations the state does not name', async () => {
  const { dir } = await storeWithDelta();
  const first = checkpointOf(dir);
  const saved = indexRewrite.minDeltaBytes;
  indexRewrite.minDeltaBytes = 0;
  try {
    const store = await MemStore.open(dir, { cache: false });
    // More changed records than the snapshot holds: the deltas now outweigh it.
    await store.add(Array.from({ length: N }, (_, i) => ({ ...rec(i), vector: vecs[(i + 1) % N]! })));
    await store.close();
  } finally {
    indexRewrite.minDeltaBytes = saved;
  }
  const second = checkpointOf(dir);
  assert.equal(second.indexGeneration, first.indexGeneration + 1);
  assert.deepEqual(readdirSync(indexDir(dir)), [indexFileName(second.indexGeneration)]);
  writeFileSync(join(indexDir(dir), indexFileName(second.indexGeneration + 5)), 'a rewrite that never committed');
  const store = await MemStore.open(dir, { cache: false });
  assert.deepEqual(readdirSync(indexDir(dir)), [indexFileName(second.indexGeneration)]);
  assert.deepEqual((await store.get('r3'))?.vector, vecs[4]);
  await store.close();
});

test('index: compaction writes a new generation holding one snapshot', async () => {
  const { dir } = await storeWithDelta();
  const before = checkpointOf(dir);
  const store = await MemStore.open(dir, { cache: false });
  await store.delete(['r0', 'r1']);
  await store.compact();
  await store.close();
  const after = checkpointOf(dir);
  assert.equal(after.indexGeneration, before.indexGeneration + 1);
  assert.ok(after.indexBytes < before.indexBytes);
  await expectAll(dir, new Set(['r0', 'r1']));
});

test('index: a record whose index entry says it has a document, and the state has none, reads as CORRUPTION; a record without one has no docs value', async () => {
  const { dir } = await storeWithDelta();
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  const docs = env.openDB({ name: 'docs', encoding: 'binary', keyEncoding: 'binary' });
  assert.equal(docs.getBinary(Buffer.from('r3')), undefined, 'no text, no metadata: no docs value');
  assert.ok(docs.getBinary(Buffer.from('r4')) !== undefined);
  await docs.remove(Buffer.from('r4'));
  await env.close();
  const store = await MemStore.open(dir, { cache: false });
  const e = await store.get('r4').then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof MemstoreError && e.code === 'CORRUPTION' && e.id === 'r4', String(e));
  assert.ok((await store.search(vecs[4]!, { k: N, filter: { i: 4 } })).every((h) => h.id !== 'r4'));
  assert.deepEqual((await store.get('r3'))?.vector, vecs[3]);
  assert.equal(store.stats().damaged, 1);
  await store.close();
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /\(record "r4"\)/);
});

test('index: every checkpoint records sizing hints, the live records and their ids\' UTF-8 bytes', async () => {
  const { dir } = await storeWithDelta();
  const c = checkpointOf(dir);
  assert.equal(c.records, N);
  assert.equal(c.idBytes, Array.from({ length: N }, (_, i) => Buffer.byteLength(`r${i}`)).reduce((a, b) => a + b, 0));
  const store = await MemStore.open(dir, { cache: false });
  await store.delete(['r0', 'r1']);
  await store.close();
  assert.equal(checkpointOf(dir).records, N - 2);
});

test('index: sizing hints are only hints: absent, too small, or more than the file can hold, the store opens whole; malformed, the checkpoint is CORRUPTION', async () => {
  const { dir } = await storeWithDelta();
  const { records: _r, idBytes: _b, ...before } = checkpointOf(dir);
  for (const hints of [{}, { records: 0, idBytes: 0 }, { records: 1, idBytes: 3 }, { records: 2 ** 40, idBytes: 2 ** 40 }, { records: -5, idBytes: -1 }]) {
    const state = StateStore.open(dir);
    await state.commitCheckpoint({ checkpoint: { ...before, ...hints }, docs: new Map() });
    await state.close();
    await expectAll(dir);
  }
  const state = StateStore.open(dir);
  await state.commitCheckpoint({ checkpoint: { ...before, records: 1.5, idBytes: 3 }, docs: new Map() });
  await state.close();
  await corruptionAtOpen(dir);
});

test('index: ids that are not ASCII reopen as they were written; an id that is not UTF-8 inside a block whose checksum holds is CORRUPTION', async () => {
  const dir = tempDir('memstore-index-');
  const ids = ['\uFEFFlead', 'é', 'naïve-😀', '中文', 'plain'];
  let store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false });
  await store.add(ids.map((id, i) => ({ id, vector: vecs[i]! })));
  await store.close();
  store = await MemStore.open(dir, { cache: false });
  for (const [i, id] of ids.entries()) assert.deepEqual((await store.get(id))?.vector, vecs[i]);
  await store.close();

  const before = checkpointOf(dir);
  const delta = new BlockWriter(BLOCK_DELTA, DIM);
  delta.add({ id: 'zz', code: { code: new Uint8Array(DIM), scale: 1 }, place: [1, 1, 0], documented: false });
  const block = delta.finish()[0]!;
  const at = Buffer.from(block).indexOf('zz');
  block[at] = 0xc3;
  block[at + 1] = 0x28;
  new DataView(block.buffer, block.byteOffset).setUint32(4, maskCrc(crc32c(block, 8, block.length)), true);
  appendFileSync(indexFilePath(dir, before.indexGeneration), block);
  await commitAsWriter(dir, { ...before, indexBytes: before.indexBytes + block.length });
  await corruptionAtOpen(dir);
});

test('checkpoint: a docs value goes exactly when its record is deleted or rewritten without one; records that never had one cost the state nothing', async () => {
  const dir = tempDir('memstore-index-');
  let store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false });
  // r0..r3 with a document, r4..r7 without.
  await store.add(Array.from({ length: 8 }, (_, i) => ({ id: `r${i}`, vector: vecs[i]!, ...(i < 4 ? { text: `text ${i}`, meta: { i } } : {}) })));
  await store.close();
  store = await MemStore.open(dir, { cache: false });
  await store.delete(['r0', 'r4']);
  await store.add([{ id: 'r1', vector: vecs[9]! }, { id: 'r5', vector: vecs[10]!, meta: { now: 'documented' } }]);
  // Written with a document and rewritten without one before any checkpoint.
  await store.add([{ id: 'r8', vector: vecs[8]!, text: 'short-lived' }]);
  await store.add([{ id: 'r8', vector: vecs[8]! }]);
  await store.close();
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  const docs = env.openDB({ name: 'docs', encoding: 'binary', keyEncoding: 'binary' });
  const has = (id: string) => docs.getBinary(Buffer.from(id)) !== undefined;
  assert.deepEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8'].filter(has), ['r2', 'r3', 'r5']);
  await env.close();
  store = await MemStore.open(dir, { cache: false });
  assert.equal(await store.get('r0'), undefined);
  const r1 = await store.get('r1');
  assert.ok(r1 !== undefined && r1.text === undefined && r1.meta === undefined);
  assert.deepEqual((await store.get('r5'))?.meta, { now: 'documented' });
  const r8 = await store.get('r8');
  assert.ok(r8 !== undefined && r8.text === undefined);
  assert.equal((await store.get('r2'))?.text, 'text 2');
  await store.close();
});

test('index: a store of format version 4 is refused with CORRUPTION at open, and repair refuses it with INVALID_ARGUMENT before touching a byte (it had rebuilt the state without the tables of that format, dropping every code and vector, with an empty report)', async () => {
  const { dir } = await storeWithDelta();
  await writeStoreConfig(dir, { formatVersion: 4, dim: DIM, metric: 'cosine', codec: 'int8', pca: null, keepFull: true, trainSize: 4096 });
  const e = await corruptionAtOpen(dir);
  assert.match(e.message, /format version 4, this memstore reads 5 and 6/);
  assert.ok(existsSync(statePath(dir)));
  const state = readFileSync(statePath(dir));
  const files = readdirSync(dir).sort();
  await rejectsWith(() => repairStore(dir), 'INVALID_ARGUMENT');
  assert.ok(readFileSync(statePath(dir)).equals(state), 'the state file byte for byte');
  assert.deepEqual(readdirSync(dir).sort(), files, 'no report, nothing moved');
});

test('index: once trained, a record without a code, or without the full-precision vector the store keeps, is set aside at open; verify names it', async () => {
  const { dir } = await storeWithDelta();
  const before = checkpointOf(dir);
  const path = indexFilePath(dir, before.indexGeneration);
  // A delta as a buggy writer could leave it: r3 without a code, r5 with a code but no place.
  const delta = new BlockWriter(BLOCK_DELTA, DIM);
  delta.add({ id: 'r3', code: undefined, place: [1, 1, 0], documented: false });
  delta.add({ id: 'r5', code: { code: new Uint8Array(DIM), scale: 1 }, place: undefined, documented: false });
  const [block] = delta.finish();
  appendFileSync(path, block!);
  await commitAsWriter(dir, { ...before, indexBytes: before.indexBytes + block!.length });

  const store = await MemStore.open(dir, { cache: false });
  assert.equal(store.stats().count, N - 2);
  assert.equal(store.stats().damaged, 2);
  for (const [id, what] of [['r3', /no code/], ['r5', /no full-precision vector/]] as const) {
    const e = await store.get(id).then(() => undefined, (err: unknown) => err);
    assert.ok(e instanceof MemstoreError && e.code === 'CORRUPTION' && e.id === id, String(e));
    assert.equal(e.file, path);
    assert.match(e.message, what);
  }
  assert.ok((await store.search(vecs[3]!, { k: N })).every((h) => h.id !== 'r3' && h.id !== 'r5'));
  await store.close();
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /\(record "r3"\)/);
  assert.match(verify.stdout, /\(record "r5"\)/);
});

test('index: while a record is set aside as damaged, checkpoints append deltas instead of a new generation, so the damage is not forgotten', async () => {
  const { dir } = await storeWithDelta();
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  await env.openDB({ name: 'docs', encoding: 'binary', keyEncoding: 'binary' }).remove(Buffer.from('r4'));
  await env.close();
  const before = checkpointOf(dir);
  const saved = indexRewrite.minDeltaBytes;
  indexRewrite.minDeltaBytes = 0;
  try {
    const store = await MemStore.open(dir, { cache: false });
    await store.get('r4').then(() => assert.fail('r4 should be damaged'), () => undefined);
    assert.equal(store.stats().damaged, 1);
    // Enough changes that the deltas outweigh the snapshot: a store without damage would start a new generation here.
    await store.add(Array.from({ length: N }, (_, i) => ({ id: `more${i}`, vector: vecs[i]! })));
    await store.close();
  } finally {
    indexRewrite.minDeltaBytes = saved;
  }
  const after = checkpointOf(dir);
  assert.equal(after.indexGeneration, before.indexGeneration);
  assert.ok(after.indexBytes > before.indexBytes);
  const store = await MemStore.open(dir, { cache: false });
  const e = await store.get('r4').then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof MemstoreError && e.code === 'CORRUPTION' && e.id === 'r4', 'still damaged after reopening');
  assert.equal(store.stats().count, N - 1 + N);
  await store.close();
});

test('index: training writes a new generation holding every record with its code', async () => {
  const dir = tempDir('memstore-index-');
  const store = await MemStore.open(dir, { dim: DIM, pca: { dims: 8 }, trainSize: 24, cache: false });
  for (let i = 0; i < N; i += 8) await store.add(Array.from({ length: 8 }, (_, j) => rec(i + j)));
  assert.equal(store.stats().trained, true);
  await store.close();
  const { indexGeneration } = checkpointOf(dir);
  assert.equal(indexGeneration, 2, 'the checkpoint after training started generation 2');
  assert.deepEqual(readdirSync(indexDir(dir)), [indexFileName(2)]);
  await expectAll(dir);
});

/**
 * Runs `memstore repair` with a report, then verify (clean); returns the report's index-damage
 * lines, how many bytes of the file each carries, and the ids of the records it names.
 */
async function repairIndex(dir: string): Promise<{ index: { offset: number; end: number }[]; indexBytes: number[]; records: string[] }> {
  const report = join(tempDir('memstore-report-'), 'report.jsonl');
  const repaired = await cliResult(['repair', dir, '--report', report]);
  assert.equal(repaired.code, 0, repaired.stderr + repaired.stdout);
  const lines = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; id?: string; offset?: number; end?: number; bytes?: string });
  assert.equal((await cliResult(['verify', dir])).code, 0);
  return {
    index: lines.filter((l) => l.kind === 'index').map((l) => ({ offset: l.offset!, end: l.end! })),
    indexBytes: lines.filter((l) => l.kind === 'index').map((l) => Buffer.from(l.bytes!, 'base64').length),
    records: lines.filter((l) => l.kind === 'record').map((l) => l.id!).sort(),
  };
}

const snapshotIds = Array.from({ length: N / 2 }, (_, i) => `r${i}`);

test('index: a flipped bit in a block\'s length costs that block, not the blocks after it: repair goes on from the next block that checks', async () => {
  // A length 4 bytes off (the checksum then covers the wrong bytes), and one 32 KiB off (past the committed length).
  for (const [at, bit] of [[0, 0x04], [1, 0x80]] as const) {
    const { dir, snapshotEnd } = await storeWithDelta();
    const path = indexFilePath(dir, checkpointOf(dir).indexGeneration);
    const bytes = readFileSync(path);
    bytes[at]! ^= bit;
    writeFileSync(path, bytes);
    assert.equal((await corruptionAtOpen(dir)).offset, 0);
    const { index, records } = await repairIndex(dir);
    assert.deepEqual(index, [{ offset: 0, end: snapshotEnd }]);
    assert.deepEqual(records, snapshotIds.filter((id) => Number(id.slice(1)) % 2 === 0).sort());
    await expectAll(dir, new Set(snapshotIds));
  }
});

test('index: a zeroed stretch inside the committed length is one damaged stretch, and the blocks after it are kept', async () => {
  const { dir, snapshotEnd } = await storeWithDelta();
  const path = indexFilePath(dir, checkpointOf(dir).indexGeneration);
  const bytes = readFileSync(path);
  bytes.fill(0, 0, snapshotEnd);
  writeFileSync(path, bytes);
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.equal(verify.stdout.match(/index file damage/g)?.length, 1, verify.stdout);
  const { index } = await repairIndex(dir);
  assert.deepEqual(index, [{ offset: 0, end: snapshotEnd }]);
  await expectAll(dir, new Set(snapshotIds));
});

test('index: a directory where an index file should be is IO at open, never a bare system error', async () => {
  for (const current of [false, true]) {
    const { dir } = await storeWithDelta();
    const generation = checkpointOf(dir).indexGeneration;
    if (current) rmSync(indexFilePath(dir, generation));
    mkdirSync(indexFilePath(dir, current ? generation : generation + 1));
    await rejectsWith(() => MemStore.open(dir), 'IO');
  }
});

/** Makes the next checkpoint commit and then report a failed flush: the state names what it wrote, and the caller sees IO. */
function failNextFlush(): void {
  stateWriteHooks.afterCommit = () => {
    stateWriteHooks.afterCommit = undefined;
    throw new Error('injected: the flush after the commit fails');
  };
}

test('index: a new generation whose commit lands and whose flush then fails is kept, not deleted under the state that names it', async () => {
  const { dir } = await storeWithDelta();
  const saved = indexRewrite.minDeltaBytes;
  indexRewrite.minDeltaBytes = 0;
  try {
    const store = await MemStore.open(dir, { cache: false });
    await store.add([{ id: 'late', vector: vecs[0]!, text: 'late' }]);
    failNextFlush();
    await rejectsWith(() => store.close(), 'IO');
  } finally {
    stateWriteHooks.afterCommit = undefined;
    indexRewrite.minDeltaBytes = saved;
  }
  const named = checkpointOf(dir);
  assert.ok(existsSync(indexFilePath(dir, named.indexGeneration)), 'the file the state names is there');
  const store = await MemStore.open(dir, { cache: false });
  assert.equal(store.stats().count, N + 1);
  assert.equal((await store.get('late'))?.text, 'late');
  assert.equal((await store.get('r4'))?.text, 'text 4');
  await store.close();
});

test('index: a delta whose commit lands and whose flush then fails counts as committed: the next append does not cut what the state names', async () => {
  const { dir } = await storeWithDelta();
  // Every write starts a background checkpoint; a failed one is a warning.
  const store = await MemStore.open(dir, { cache: false, checkpointBytes: 1 });
  const warned = () => new Promise<void>((resolve) => process.once('warning', () => resolve()));
  try {
    let warning = warned();
    failNextFlush();
    await store.add([{ id: 'a1', vector: vecs[0]!, text: 'one' }]);
    await warning;
    // The next checkpoint appends its delta and fails before its commit: the state still names the first delta.
    stateWriteHooks.beforeWrite = () => {
      throw new Error('injected: the state refuses');
    };
    warning = warned();
    await store.add([{ id: 'a2', vector: vecs[1]! }]);
    await warning;
  } finally {
    stateWriteHooks.afterCommit = undefined;
    stateWriteHooks.beforeWrite = undefined;
  }
  await store.abandon();
  const again = await MemStore.open(dir, { cache: false });
  assert.equal(again.stats().count, N + 2);
  assert.equal((await again.get('a1'))?.text, 'one');
  assert.ok((await again.get('a2')) !== undefined);
  assert.equal((await again.get('r4'))?.text, 'text 4');
  await again.close();
});

test('index: an open refused with CORRUPTION deletes nothing: another generation\'s file beside a damaged one is still there', async () => {
  const { dir } = await storeWithDelta();
  const { indexGeneration } = checkpointOf(dir);
  const path = indexFilePath(dir, indexGeneration);
  const other = indexFilePath(dir, indexGeneration - 1);
  const bytes = readFileSync(path);
  writeFileSync(other, bytes);
  bytes[INDEX_HEADER_SIZE + 3]! ^= 0x01;
  writeFileSync(path, bytes);
  appendFileSync(path, 'uncommitted');
  await corruptionAtOpen(dir);
  assert.deepEqual(readdirSync(indexDir(dir)).sort(), [indexFileName(indexGeneration - 1), indexFileName(indexGeneration)]);
  assert.equal(statSync(path).size, bytes.length + 'uncommitted'.length, 'nothing was cut either');
  // Once repaired, the generation the state names is the only one left.
  await repairIndex(dir);
  // The repair's compaction may persist filter columns beside it: only index generations are counted.
  assert.deepEqual(readdirSync(indexDir(dir)).filter((n) => parseIndexFileName(n) !== undefined), [indexFileName(checkpointOf(dir).indexGeneration)]);
});

/** One sealed DELTA block holding `records` (already encoded) as `count` records with codes of `codeBytes` bytes. */
function rawDelta(records: Uint8Array, count: number, codeBytes: number): Uint8Array {
  const block = new Uint8Array(INDEX_HEADER_SIZE + records.length);
  const v = new DataView(block.buffer);
  v.setUint32(0, records.length, true);
  block[8] = BLOCK_DELTA;
  v.setUint32(12, count, true);
  v.setUint32(16, codeBytes, true);
  block.set(records, INDEX_HEADER_SIZE);
  v.setUint32(4, maskCrc(crc32c(block, 8, block.length)), true);
  return block;
}

/** Appends `block` to the store's index file and commits the longer length, as a checkpoint would. */
async function appendCommitted(dir: string, block: Uint8Array): Promise<void> {
  const before = checkpointOf(dir);
  appendFileSync(indexFilePath(dir, before.indexGeneration), block);
  await commitAsWriter(dir, { ...before, indexBytes: before.indexBytes + block.length });
}

test('index: a record of a page-clustered store carries its page (PAGE), and a PAGE without a code, checksum intact, is CORRUPTION at open', async () => {
  const { dir } = await storeWithDelta();
  // flags PLACE | PAGE, id "r1", place (1, 1, 0), page 0: a page with no code to place.
  const id = Buffer.from('r1');
  const rec = new Uint8Array(3 + id.length + 12 + 4);
  const v = new DataView(rec.buffer);
  rec[0] = FLAG_PLACE | FLAG_PAGE;
  v.setUint16(1, id.length, true);
  rec.set(id, 3);
  v.setUint32(3 + id.length, 1, true);
  v.setUint32(3 + id.length + 4, 1, true);
  await appendCommitted(dir, rawDelta(rec, 1, DIM));
  await corruptionAtOpen(dir);
  // The writer refuses to make one.
  assert.throws(() => new BlockWriter(BLOCK_DELTA, DIM).addRaw(id, FLAG_PLACE | FLAG_PAGE, undefined, 0, 1, 1, 0, 0), RangeError);
});

test('index: a record whose page runs past its block\'s end, checksum intact, is CORRUPTION at open', async () => {
  const { dir } = await storeWithDelta();
  const writer = new BlockWriter(BLOCK_DELTA, DIM);
  writer.add({ id: 'r2', code: { code: new Uint8Array(DIM), scale: 1 }, place: [1, 1, 0], documented: false, page: 3 });
  const whole = writer.finish()[0]!;
  // The same record less the last two bytes of its page.
  const records = whole.subarray(INDEX_HEADER_SIZE, whole.length - 2);
  assert.equal(records[0]! & FLAG_PAGE, FLAG_PAGE);
  await appendCommitted(dir, rawDelta(records, 1, DIM));
  await corruptionAtOpen(dir);
});

/** The last record of `id` in the store's index file, as it was written: its code, scale, place and page. */
async function recordOf(dir: string, id: string): Promise<{ code: Uint8Array; scale: number; place: [number, number, number]; page: number; documented: boolean }> {
  const { indexGeneration, indexBytes } = checkpointOf(dir);
  let found: Awaited<ReturnType<typeof recordOf>> | undefined;
  const { file } = await IndexFile.open(
    { files: nodeFileLayer, dir, generation: indexGeneration, committed: indexBytes, readOnly: true },
    {
      upsert(r) {
        if (r.id() === id) found = { code: r.block.slice(r.codeAt, r.codeAt + r.codeBytes), scale: r.scale, place: [r.generation, r.segment, r.offset], page: r.page, documented: r.documented };
      },
      remove() {},
    },
  );
  await file.close();
  assert.ok(found !== undefined, `no record of ${id}`);
  return found;
}

test("index: another store's index file put in a store's place (same generation, ids, sizes and length, every checksum intact) is CORRUPTION at open and a problem for verify, by the digest the checkpoint names (it had been read as this store's); a checkpoint without a digest (older) opens, and the next one names it", async () => {
  const make = async (seed: number) => {
    const dir = tempDir('memstore-index-');
    const vectors = clustered(N, DIM, seed);
    const store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false });
    await store.add(Array.from({ length: N }, (_, i) => ({ id: `r${i}`, vector: vectors[i]! })));
    await store.close();
    return dir;
  };
  const mine = await make(1);
  const theirs = await make(2);
  const { indexGeneration, indexBytes, indexDigest } = checkpointOf(mine);
  assert.equal(checkpointOf(theirs).indexGeneration, indexGeneration);
  assert.equal(checkpointOf(theirs).indexBytes, indexBytes);
  assert.equal(typeof indexDigest, 'number');
  const saved = readFileSync(indexFilePath(mine, indexGeneration));
  writeFileSync(indexFilePath(mine, indexGeneration), readFileSync(indexFilePath(theirs, indexGeneration)));
  const e = await corruptionAtOpen(mine);
  assert.equal(e.file, indexFilePath(mine, indexGeneration));
  assert.equal(e.offset, 0);
  const report = await checkStore(mine);
  assert.ok(report.problems.some((p) => p.file === indexFilePath(mine, indexGeneration)), JSON.stringify(report.problems));
  // Repair reads none of its records: the whole prefix goes to the report, and a clean store is left.
  const other = await make(3);
  writeFileSync(indexFilePath(other, indexGeneration), readFileSync(indexFilePath(theirs, indexGeneration)));
  const repaired = await repairIndex(other);
  assert.ok(repaired.index.some((d) => d.offset === 0 && d.end === indexBytes), JSON.stringify(repaired.index));
  assert.deepEqual((await checkStore(other)).problems, []);
  // repairStore says how much of the index went, and how many records the checkpoint held against those read.
  const fourth = await make(4);
  writeFileSync(indexFilePath(fourth, indexGeneration), readFileSync(indexFilePath(theirs, indexGeneration)));
  const result = await repairStore(fourth, { report: join(tempDir('memstore-report-'), 'r.jsonl') });
  assert.deepEqual([result.indexDamage, result.indexDamageBytes, result.checkpointRecords, result.recordsLoaded, result.count], [1, indexBytes, N, 0, 0]);
  // The store's own file back, and its checkpoint without a digest, as one written before digests: it opens.
  writeFileSync(indexFilePath(mine, indexGeneration), saved);
  const { indexDigest: _d, ...older } = checkpointOf(mine);
  const state = StateStore.open(mine);
  await state.commitCheckpoint({ checkpoint: older, docs: new Map() });
  await state.close();
  assert.equal(checkpointOf(mine).indexDigest, undefined);
  const store = await MemStore.open(mine, { cache: false });
  await store.add([{ id: 'later', vector: vecs[0]! }]);
  await store.close();
  assert.equal(typeof checkpointOf(mine).indexDigest, 'number', 'the next checkpoint names one');
  const again = await MemStore.open(mine, { cache: false });
  try {
    assert.equal(again.stats().count, N + 1);
  } finally {
    await again.close();
  }
});

test('index: a block altered and sealed again, its checksum intact, without the checkpoint\'s digest written to match, is CORRUPTION at offset 0 before a record is read (a record pointed at another record\'s vector frame had returned that vector)', async () => {
  const { dir, snapshotEnd } = await storeWithDelta();
  const path = indexFilePath(dir, checkpointOf(dir).indexGeneration);
  const bytes = readFileSync(path);
  const length = bytes.readUInt32LE(snapshotEnd);
  // The delta's first record: flags, id length, id, scale, code, then its place (generation, segment, offset): the offset moved.
  const at = snapshotEnd + INDEX_HEADER_SIZE + 3 + bytes.readUInt16LE(snapshotEnd + INDEX_HEADER_SIZE + 1) + 4 + DIM + 8;
  bytes.writeUInt32LE(bytes.readUInt32LE(at) + 1, at);
  bytes.writeUInt32LE(maskCrc(crc32c(bytes, snapshotEnd + 8, snapshotEnd + INDEX_HEADER_SIZE + length)), snapshotEnd + 4);
  writeFileSync(path, bytes);
  const e = await corruptionAtOpen(dir);
  assert.equal(e.offset, 0);
});

test('index: a record naming a page at or past the checkpoint\'s record count (up to 2^32 - 1), checksum intact, is routed to its nearest page once loading ends: no page is made for it, and it is found', async () => {
  for (const page of [2 ** 32 - 1, N]) {
    const dir = tempDir('memstore-index-');
    let store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false, pages: { from: 20, maxPage: 16 } });
    await store.add(Array.from({ length: N }, (_, i) => rec(i)));
    const pages = store.stats().pages;
    await store.close();
    assert.ok(pages > 1);
    const r7 = await recordOf(dir, 'r7');
    assert.ok(r7.page >= 0 && r7.page < pages);
    const writer = new BlockWriter(BLOCK_DELTA, DIM);
    writer.add({ id: 'r7', code: { code: r7.code, scale: r7.scale }, place: r7.place, documented: r7.documented, page });
    await appendCommitted(dir, writer.finish()[0]!);
    store = await MemStore.open(dir, { cache: false, pages: { from: 20, maxPage: 16 } });
    try {
      assert.equal(store.stats().pages, pages, String(page));
      assert.equal(store.stats().count, N);
      assert.deepEqual((await store.get('r7'))?.vector, vecs[7]);
      assert.equal((await store.search(vecs[7]!, { k: 1 }))[0]?.id, 'r7', 'the default search finds it in the page it was routed to');
    } finally {
      await store.close();
    }
  }
});

test("index: once trained, a record in a block whose codeBytes is not the store's, checksum intact, is set aside as damaged (get: CORRUPTION with its id, searches skip it, verify names it); the rest opens", async () => {
  const { dir } = await storeWithDelta();
  const r3 = await recordOf(dir, 'r3');
  const writer = new BlockWriter(BLOCK_DELTA, DIM + 16);
  writer.add({ id: 'r3', code: { code: new Uint8Array(DIM + 16), scale: 1 }, place: r3.place, documented: r3.documented });
  await appendCommitted(dir, writer.finish()[0]!);
  const store = await MemStore.open(dir, { cache: false });
  try {
    const e = await store.get('r3').then(() => undefined, (err: unknown) => err);
    assert.ok(e instanceof MemstoreError && e.code === 'CORRUPTION', String(e));
    assert.equal(e.id, 'r3');
    assert.ok(!(await store.search(vecs[3]!, { k: N, exact: true })).some((h) => h.id === 'r3'));
    for (let i = 0; i < N; i++) if (i !== 3) assert.deepEqual((await store.get(`r${i}`))?.vector, vecs[i]);
  } finally {
    await store.close();
  }
  const report = await checkStore(dir);
  assert.ok(report.problems.some((p) => p.id === 'r3'), JSON.stringify(report.problems));
});

test('index: a store whose checkpoint says paged opens its records into their pages; with pages: false the same file opens into the exact index', async () => {
  const dir = tempDir('memstore-index-');
  let store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false, pages: { from: 20, maxPage: 16 } });
  await store.add(Array.from({ length: N }, (_, i) => rec(i)));
  const pages = store.stats().pages;
  await store.close();
  assert.equal(checkpointOf(dir).paged, true);
  store = await MemStore.open(dir, { cache: false, pages: { from: 20, maxPage: 16 } });
  assert.equal(store.stats().pages, pages);
  await store.close();
  store = await MemStore.open(dir, { cache: false, pages: false });
  try {
    for (let i = 0; i < N; i++) assert.deepEqual((await store.get(`r${i}`))?.vector, vecs[i]);
    assert.equal((await store.search(vecs[7]!, { k: 1 }))[0]?.id, 'r7');
  } finally {
    await store.close();
  }
});

test('index: blocks close past 16 KiB, so one flipped byte costs the records of one block: 30 or so of 512 dimensions, where a block of 256 KiB had held every record of a store of 50 and repair lost them all (a hostile pass); blocks lie back to back, each checked alone', async () => {
  const dir = tempDir();
  const dim = 512;
  const count = 120;
  const vectors = clustered(count, dim, 5);
  const store = await MemStore.open(dir, { dim, cache: false, trainSize: 64 });
  await store.add(vectors.map((vector, i) => ({ id: `w${i}`, vector, text: `text ${i}` })));
  await store.close();
  const path = indexFilePath(dir, checkpointOf(dir).indexGeneration);
  const bytes = readFileSync(path);
  // Walk the headers: every block ends where the next begins, and holds at most 16 KiB plus one record.
  const ends: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    assert.ok(length <= (16 << 10) + 3 + 4 + 4 + dim + 12 + 4 + 8, `a block of ${length} bytes at ${at}`);
    at += INDEX_HEADER_SIZE + length;
    ends.push(at);
  }
  assert.ok(ends.length >= 4, `${ends.length} blocks`);
  bytes[ends[0]! + INDEX_HEADER_SIZE + 10]! ^= 0x20;
  writeFileSync(path, bytes);
  const { index, records } = await repairIndex(dir);
  assert.deepEqual(index, [{ offset: ends[0]!, end: ends[1]! }]);
  const reopened = await MemStore.open(dir);
  try {
    const kept = reopened.stats().count;
    assert.equal(kept + records.length, count, 'every record kept or named in the report');
    assert.ok(records.length > 0 && records.length <= 40, `${records.length} records lost`);
    for (const id of reopened.ids()) assert.deepEqual((await reopened.get(id))!.vector, vectors[Number(id.slice(1))]);
  } finally {
    await reopened.close();
  }
});

test('index: repair of a store whose last delta block is damaged names, as possibly-stale in its report, every record it kept from the blocks before it, so an upsert or a delete the damaged delta held never comes back unnamed (a hostile pass: deleted records had come back, and upserted ones with their older vector under their newer text, with nothing in the report); records the log wrote again after the checkpoint are not named', async () => {
  const DIM = 16;
  const dir = tempDir();
  const vectors = clustered(130, DIM, 21);
  let store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false });
  const plain = Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, vector: vectors[i]! }));
  const documented = Array.from({ length: 50 }, (_, i) => ({ id: `d${i}`, vector: vectors[50 + i]!, text: `v1 of d${i}`, meta: { v: 1 } }));
  await store.add([...plain, ...documented]);
  await store.close();
  // The second checkpoint appends a delta: ten deletions and ten upserts with new vectors.
  store = await MemStore.open(dir, {});
  const deleted = plain.slice(0, 10).map((r) => r.id);
  await store.delete(deleted);
  const upserted = documented.slice(0, 10).map((r, i) => ({ id: r.id, vector: vectors[100 + i]!, text: `v2 of ${r.id}`, meta: { v: 2 } }));
  await store.add(upserted);
  await store.close();
  // Written after the last checkpoint, so the log holds it: repair leaves it current, and unnamed.
  store = await MemStore.open(dir, { durability: 'always' });
  await store.add([{ id: 'd20', vector: vectors[120]!, text: 'v2 of d20', meta: { v: 2 } }]);
  await store.abandon();
  const { indexGeneration, indexBytes } = checkpointOf(dir);
  const path = indexFilePath(dir, indexGeneration);
  const bytes = readFileSync(path);
  assert.equal(bytes.length, indexBytes);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x40;
  writeFileSync(path, bytes);
  const report = join(tempDir('memstore-report-'), 'r.jsonl');
  const result = await repairStore(dir, { report });
  assert.equal(result.indexDamage, 1);
  const lines = readFileSync(report, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { kind: string; id?: string });
  const named = new Set(lines.filter((l) => l.kind === 'possibly-stale').map((l) => l.id!));
  assert.equal(result.possiblyStale, named.size);
  store = await MemStore.open(dir, {});
  try {
    // Whatever the store holds of a record the damaged delta changed is named.
    for (const id of [...deleted, ...upserted.map((r) => r.id)]) {
      if ((await store.get(id)) !== undefined) assert.ok(named.has(id), `${id} is back from the older block and named`);
    }
    assert.ok(named.has('p0') && named.has('d0'), 'the damaged delta\'s records are named');
    assert.ok(!named.has('d20'), 'a record the log wrote after the checkpoint is current');
    assert.deepEqual((await store.get('d20'))?.meta, { v: 2 });
    // Every named record is in the store; none in it is named that the damage could not have touched.
    for (const id of named) assert.notEqual(await store.get(id), undefined, id);
  } finally {
    await store.close();
  }
  assert.deepEqual((await checkStore(dir)).problems, []);
  // A repair with no damage in the index names nothing.
  const clean = tempDir();
  const s = await MemStore.open(clean, { dim: DIM, durability: 'none' });
  await s.add(plain);
  await s.close();
  assert.equal((await repairStore(clean, { report: join(tempDir('memstore-report-'), 'r.jsonl') })).possiblyStale, 0);
});

test('index: repair of a damaged block whose records the log wrote again after the checkpoint (an upsert without a document, a deletion) leaves no document of theirs behind, so verify finds the store clean (the documents had stayed: verify called them CORRUPTION until a second repair); recordsLoaded counts what the index file gave before the log was replayed (it had counted the log\'s records too, hiding records lost without a name)', async () => {
  const DIM = 4;
  for (const write of ['upsert', 'delete'] as const) {
    const dir = tempDir();
    let store = await MemStore.open(dir, { dim: DIM, codec: 'int8', durability: 'always', cache: false });
    await store.add(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, vector: [1, i, 2, 3], text: `old text ${i}`, meta: { i } })));
    await store.close();
    store = await MemStore.open(dir, {});
    if (write === 'upsert') await store.add([{ id: 'r0', vector: [5, 5, 5, 5] }]);
    else await store.delete(['r0']);
    // Records written only to the log, in blocks of no index: read by the replay, not from the file.
    await store.add([{ id: 'c0', vector: [0, 1, 0, 1] }, { id: 'c1', vector: [1, 0, 1, 0] }]);
    await store.abandon();
    const { indexGeneration, indexBytes } = checkpointOf(dir);
    const path = indexFilePath(dir, indexGeneration);
    const bytes = readFileSync(path);
    assert.ok(bytes.length === indexBytes && bytes.length > 40);
    bytes[30] = bytes[30]! ^ 0x40;
    writeFileSync(path, bytes);
    const result = await repairStore(dir, { report: join(tempDir('memstore-report-'), 'r.jsonl') });
    assert.equal(result.indexDamage, 1, write);
    assert.equal(result.checkpointRecords, 10, write);
    assert.equal(result.recordsLoaded, 0, `${write}: the one block held every record of the checkpoint; the log's three are not counted`);
    assert.deepEqual((await checkStore(dir)).problems, [], `${write}: verify after one repair`);
    store = await MemStore.open(dir, {});
    try {
      const r0 = await store.get('r0');
      if (write === 'upsert') assert.deepEqual([r0?.text, r0?.meta, Array.from(r0!.vector)], [undefined, undefined, [5, 5, 5, 5]]);
      else assert.equal(r0, undefined);
      assert.deepEqual(store.ids().sort(), write === 'upsert' ? ['c0', 'c1', 'r0'] : ['c0', 'c1']);
    } finally {
      await store.close();
    }
  }
});
