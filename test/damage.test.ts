import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { open as openLmdb } from 'lmdb';
import { MemStore, MemstoreError } from '../src/index.js';
import { repairLogDir, statePath, walDir } from '../src/store/files.js';
import { stateWriteHooks } from '../src/store/state.js';
import { encodeRecord, framedSize, parseSegmentName, segmentName, WAL_HEADER_SIZE } from '../wal/format.js';
import { crc32c, maskCrc } from '../io/crc32c.js';
import { Packr } from 'msgpackr';
import { repairStore } from '../src/store/repair.js';
import { clustered, corruptionOf, rejectsWith, rng, tempDir, within10s } from './helpers.js';
import { cliResult } from './support/cli.js';

/**
 * Damage to one record costs that record, not the store: it opens, the record reads as CORRUPTION
 * naming it, searches skip it, `memstore verify` names it and `memstore repair` moves it to a report
 * and leaves a clean store. Also: checkpoints are all-or-nothing, and a logged batch that cannot be
 * applied stops the store rather than letting memory drift from the log.
 */
const DIM = 16;
const N = 30;
const vecs = clustered(N, DIM, 5);
const text = (i: number) => `the text of record number ${i}, long enough to find in a file`;

async function checkpointedStore(): Promise<string> {
  const dir = tempDir('memstore-damage-');
  const store = await MemStore.open(dir, { dim: DIM, durability: 'none' });
  await store.add(vecs.map((vector, i) => ({ id: `r${i}`, vector, text: text(i), meta: { i, even: i % 2 === 0 } })));
  await store.close();
  return dir;
}

type Tables = Record<'config' | 'docs', ReturnType<ReturnType<typeof openLmdb>['openDB']>>;

/** Runs `fn` on the store's LMDB state with raw (binary) keys and values; the store must be closed. */
async function withState<T>(dir: string, fn: (t: Tables) => Promise<T> | T): Promise<T> {
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  try {
    const t = Object.fromEntries(
      (['config', 'docs'] as const).map((name) => [name, env.openDB({ name, encoding: 'binary', ...(name === 'config' ? {} : { keyEncoding: 'binary' }) })]),
    ) as Tables;
    return await fn(t);
  } finally {
    await env.close();
  }
}

/** The bytes of the store's index file (one generation after checkpointedStore()). */
function indexBytes(dir: string): Buffer {
  const [name] = readdirSync(join(dir, 'index'));
  return readFileSync(join(dir, 'index', name!));
}

/** Every key and value of every sub-database, as hex: "byte for byte" the state. */
function dump(dir: string): Promise<string[]> {
  return withState(dir, (t) => {
    const out: string[] = [];
    for (const [name, db] of Object.entries(t)) {
      for (const { key, value } of db.getRange()) out.push(`${name} ${Buffer.from(key as Uint8Array).toString('hex')} ${Buffer.from(value as Uint8Array).toString('hex')}`);
    }
    return out;
  });
}

async function flipValueByte(dir: string, table: 'docs', id: string, at: number): Promise<void> {
  await withState(dir, async (t) => {
    const raw = Buffer.from(t[table].getBinary(Buffer.from(id)) as Uint8Array);
    raw[at]! ^= 0x20;
    await t[table].put(Buffer.from(id), raw);
  });
}

interface ReportLine {
  kind: string;
  id?: string;
  key?: string;
  table?: string;
  raw?: Record<string, string | undefined>;
  salvaged?: { vector?: number[]; text?: string; meta?: unknown };
  lostLsns?: [number, number] | null;
  lsn?: number;
  bytes?: string;
}

function reportLines(path: string): ReportLine[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ReportLine);
}

/** Runs `memstore repair`, checks that verify is clean afterwards, and returns the report's lines. */
async function repairAndVerify(dir: string): Promise<ReportLine[]> {
  const report = join(tempDir('memstore-report-'), 'report.jsonl');
  const repaired = await cliResult(['repair', dir, '--report', report]);
  assert.equal(repaired.code, 0, repaired.stderr + repaired.stdout);
  const after = await cliResult(['verify', dir]);
  assert.equal(after.code, 0, after.stdout);
  return reportLines(report);
}

async function expectIntactExcept(dir: string, lost: ReadonlySet<string>): Promise<void> {
  const store = await MemStore.open(dir);
  try {
    assert.equal(store.stats().count, N - lost.size);
    assert.equal(store.stats().damaged, 0);
    for (let i = 0; i < N; i++) {
      const got = await store.get(`r${i}`);
      if (lost.has(`r${i}`)) {
        assert.equal(got, undefined);
        continue;
      }
      assert.deepEqual(got?.vector, vecs[i]);
      assert.equal(got?.text, text(i));
      assert.deepEqual(got?.meta, { i, even: i % 2 === 0 });
    }
    await store.compact();
  } finally {
    await store.close();
  }
}

test('defect 7: one damaged byte in a record\'s metadata costs that record, not the store; verify names it, repair moves it out', async () => {
  const dir = await checkpointedStore();
  await flipValueByte(dir, 'docs', 'r5', 12);
  const store = await MemStore.open(dir);
  // Opening reads no document: the damage is found when the record's document is first read.
  assert.equal(store.stats().count, N);
  assert.equal(store.stats().damaged, 0);
  const e = await corruptionOf(() => store.get('r5'));
  assert.equal(e.id, 'r5');
  assert.equal(e.file, statePath(dir));
  assert.equal(store.stats().count, N - 1);
  assert.equal(store.stats().damaged, 1);
  const all = await store.search(vecs[5]!, { k: N });
  assert.equal(all.length, N - 1);
  assert.ok(all.every((h) => h.id !== 'r5'));
  assert.ok((await store.search(vecs[5]!, { k: N, filter: { even: false } })).every((h) => h.id !== 'r5'));
  assert.equal((await store.get('r4'))?.text, text(4));
  await rejectsWith(() => store.compact(), 'CORRUPTION');
  await store.close();

  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /\(record "r5"\)/);
  const report = await repairAndVerify(dir);
  const value = report.find((l) => l.kind === 'value');
  assert.equal(value?.key, 'r5');
  assert.ok(value?.bytes !== undefined && Buffer.from(value.bytes, 'base64').length > 0, 'the damaged bytes are in the report');
  const record = report.find((l) => l.kind === 'record');
  assert.equal(record?.id, 'r5');
  assert.deepEqual(record?.salvaged?.vector, Array.from(vecs[5]!), 'what still reads is in the report too');
  await expectIntactExcept(dir, new Set(['r5']));
});

test('a damaged text costs its record: get throws, search skips it, compaction refuses until repair', async () => {
  const dir = await checkpointedStore();
  const [segment] = readdirSync(join(dir, 'arena'));
  const path = join(dir, 'arena', segment!);
  const bytes = readFileSync(path);
  const at = bytes.indexOf(Buffer.from(text(7)));
  assert.ok(at > 0);
  bytes[at + 3]! ^= 0x01;
  writeFileSync(path, bytes);
  const store = await MemStore.open(dir);
  const e = await corruptionOf(() => store.get('r7'));
  assert.equal(e.id, 'r7');
  const hits = await store.search(vecs[7]!, { k: N });
  assert.equal(hits.length, N - 1, 'the search found the damage, set the record aside and ranked again');
  assert.ok(hits.every((h) => h.id !== 'r7'));
  assert.equal(store.stats().damaged, 1);
  await rejectsWith(() => store.compact(), 'CORRUPTION');
  await store.close();
  const report = await repairAndVerify(dir);
  assert.deepEqual(report.filter((l) => l.kind === 'record').map((l) => l.id), ['r7']);
  await expectIntactExcept(dir, new Set(['r7']));
});

test('one damaged byte in the last frame of a cleanly closed store\'s texts or vectors is that record\'s damage, left in place: open cuts nothing its checkpoint reached (it had cut the frame as a torn tail, and repair could no longer report its bytes)', async () => {
  for (const space of ['arena', 'vectors'] as const) {
    const dir = await checkpointedStore();
    const [segment] = readdirSync(join(dir, space));
    const path = join(dir, space, segment!);
    const bytes = readFileSync(path);
    // The record whose payload ends the segment: its frame is the last one.
    const payload = (i: number) => (space === 'arena' ? Buffer.from(text(i)) : Buffer.from(vecs[i]!.buffer, vecs[i]!.byteOffset, vecs[i]!.byteLength));
    const last = [...Array(N).keys()].find((i) => bytes.indexOf(payload(i)) + payload(i).length === bytes.length);
    assert.ok(last !== undefined, `${space}: a record's payload ends the segment`);
    bytes[bytes.length - 5]! ^= 0x01;
    writeFileSync(path, bytes);
    const store = await MemStore.open(dir);
    assert.equal(statSync(path).size, bytes.length, `${space}: nothing cut`);
    const e = await corruptionOf(() => store.get(`r${last}`));
    assert.equal(e.id, `r${last}`);
    assert.equal(e.file, path, `${space}: the damage is named where it is`);
    await store.close();
    assert.equal(statSync(path).size, bytes.length, `${space}: nothing cut at close either`);
    const report = await repairAndVerify(dir);
    assert.deepEqual(report.filter((l) => l.kind === 'record').map((l) => l.id), [`r${last}`]);
    await expectIntactExcept(dir, new Set([`r${last}`]));
  }
});

test('a damaged full-precision vector: rescoring skips the record, get names it', async () => {
  const dir = await checkpointedStore();
  const [segment] = readdirSync(join(dir, 'vectors'));
  const path = join(dir, 'vectors', segment!);
  const bytes = readFileSync(path);
  const at = bytes.indexOf(Buffer.from(vecs[3]!.buffer, vecs[3]!.byteOffset, vecs[3]!.byteLength));
  assert.ok(at > 0);
  bytes[at + 9]! ^= 0x20;
  writeFileSync(path, bytes);
  const store = await MemStore.open(dir);
  assert.equal(store.stats().damaged, 0, 'full vectors are only read when needed');
  const hits = await store.search(vecs[3]!, { k: 5 });
  assert.ok(hits.every((h) => h.id !== 'r3'));
  assert.equal(hits.length, 5);
  assert.equal(store.stats().damaged, 1);
  assert.equal((await corruptionOf(() => store.get('r3'))).id, 'r3');
  await store.close();
  const report = await repairAndVerify(dir);
  assert.deepEqual(report.filter((l) => l.kind === 'record').map((l) => l.id), ['r3']);
  await expectIntactExcept(dir, new Set(['r3']));
});

test('a damaged key: the value under the wrong key and the record that lost it are both damaged records', async () => {
  const dir = await checkpointedStore();
  await withState(dir, async (t) => {
    const raw = t.docs.getBinary(Buffer.from('r4')) as Uint8Array;
    await t.docs.remove(Buffer.from('r4'));
    await t.docs.put(Buffer.from('r4\u0001'), Buffer.from(raw));
    const doc = t.docs.getBinary(Buffer.from('r9')) as Uint8Array;
    await t.docs.put(Buffer.from([0x72, 0xff]), Buffer.from(doc));
  });
  const store = await MemStore.open(dir);
  assert.equal(store.stats().count, N);
  assert.equal((await corruptionOf(() => store.get('r4'))).id, 'r4', 'the index says r4 has a document, and the state has none');
  assert.equal(await store.get('r4\u0001'), undefined, 'a document alone is no record: the index file lists the records');
  assert.equal(store.stats().damaged, 1);
  await store.close();
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  const report = await repairAndVerify(dir);
  // The two values under damaged keys go to the report as values; the record that lost its document as a record.
  assert.deepEqual(report.filter((l) => l.kind === 'value').map((l) => `${l.table}/${l.key}`).sort(), ['docs/0x72ff', 'docs/r4\u0001']);
  assert.deepEqual(report.filter((l) => l.kind === 'record').map((l) => l.id), ['r4']);
  await expectIntactExcept(dir, new Set(['r4']));
});

/** Flips one bit of `id`'s key bytes in state.mdb (its key in `docs`, the one record table). */
function flipKeyByte(dir: string, id: string, at: number, mask: number): void {
  const bytes = readFileSync(statePath(dir));
  const hits: number[] = [];
  // As a key of an LMDB leaf node, whose header ends with the key's length (u16 LE); a free page
  // can hold an older copy of the id (a commit's redo record, STATE.md), which is no key.
  for (let i = -1; (i = bytes.indexOf(Buffer.from(id), i + 1)) >= 0; ) if (i >= 2 && bytes.readUInt16LE(i - 2) === Buffer.byteLength(id)) hits.push(i);
  assert.equal(hits.length, 1, `${id} appears once, as a key of docs`);
  bytes[hits[0]! + at]! ^= mask;
  writeFileSync(statePath(dir), bytes);
}

test('a key flipped out of LMDB\'s order: one record is damaged, its neighbours are not, and one repair leaves a clean store', async () => {
  for (const mask of [0x40, 0x80]) {
    const dir = await checkpointedStore();
    // r17 -> r1w ('w' sorts after every other id; 0x80 makes the key invalid UTF-8).
    flipKeyByte(dir, 'r17', 2, mask);
    const store = await MemStore.open(dir);
    assert.equal((await corruptionOf(() => store.get('r17'))).id, 'r17', `mask ${mask}: the record that lost its key`);
    for (const id of ['r16', 'r18', 'r19', 'r2']) assert.equal((await store.get(id))?.text, text(Number(id.slice(1))), `mask ${mask}: ${id} is intact`);
    await rejectsWith(() => store.compact(), 'CORRUPTION');
    await store.close();
    assert.equal((await cliResult(['verify', dir])).code, 1);
    const report = await repairAndVerify(dir);
    assert.deepEqual(report.filter((l) => l.kind === 'record').map((l) => l.id), ['r17'], `mask ${mask}`);
    await expectIntactExcept(dir, new Set(['r17']));
  }
});

test('a key flipped onto another record\'s id: the record that lost it is damaged, the other one is not', async () => {
  const dir = await checkpointedStore();
  // The docs key r17 -> r16: two docs values under r16, one of them failing its seal.
  flipKeyByte(dir, 'r17', 2, 0x01);
  const store = await MemStore.open(dir);
  assert.equal((await corruptionOf(() => store.get('r17'))).id, 'r17');
  assert.equal((await store.get('r16'))?.text, text(16));
  assert.ok((await store.search(vecs[17]!, { k: N })).every((h) => h.id !== 'r17'));
  await store.close();
  const report = await repairAndVerify(dir);
  assert.deepEqual(report.filter((l) => l.kind === 'record').map((l) => l.id), ['r17']);
  await expectIntactExcept(dir, new Set(['r17']));
});

/** Ids 0..N-1 checkpointed, then `logged` more single-record batches left in the log by a "crash". */
async function storeWithLog(logged: number): Promise<string> {
  const dir = await checkpointedStore();
  const store = await MemStore.open(dir);
  for (let i = 0; i < logged; i++) await store.add([{ id: `log${i}`, vector: vecs[i % N]!, text: `logged ${i} `.repeat(40) }]);
  await store.abandon();
  return dir;
}

test('damage in the middle of the log: open is CORRUPTION, verify lists it, repair re-applies every readable record and reports the lost one', async () => {
  const dir = await storeWithLog(12);
  const [segment] = readdirSync(walDir(dir)).filter((n) => n.endsWith('.log'));
  const path = join(walDir(dir), segment!);
  const bytes = readFileSync(path);
  const at = bytes.indexOf(Buffer.from('logged 5 '));
  assert.ok(at > 0);
  bytes[at + 2]! ^= 0x10;
  writeFileSync(path, bytes);
  await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /WAL damage/);

  const report = await repairAndVerify(dir);
  const log = report.filter((l) => l.kind === 'log');
  assert.equal(log.length, 1);
  assert.ok(log[0]!.bytes !== undefined && Buffer.from(log[0]!.bytes, 'base64').length > 0);
  assert.deepEqual(log[0]!.lostLsns, [2 + 5, 2 + 5], 'the record after the checkpoint LSN (1) plus 5 + 1');
  const store = await MemStore.open(dir);
  for (let i = 0; i < 12; i++) {
    const got = await store.get(`log${i}`);
    if (i === 5) assert.equal(got, undefined);
    else assert.equal(got?.text, `logged ${i} `.repeat(40));
  }
  assert.equal(store.stats().count, N + 11);
  await store.close();
  assert.equal(existsSync(repairLogDir(dir)), false);
});

test('an interrupted repair is refused by open and resumed by the next repair', async () => {
  const dir = await storeWithLog(6);
  // What a repair leaves when it is killed right after moving the damaged log aside.
  const from = await withState(dir, () => 1);
  writeFileSync(join(walDir(dir), 'REPAIR-FROM-LSN'), String(from));
  renameSync(walDir(dir), repairLogDir(dir));
  mkdirSync(walDir(dir));
  await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
  assert.equal((await cliResult(['verify', dir])).code, 1);
  await repairAndVerify(dir);
  const store = await MemStore.open(dir);
  for (let i = 0; i < 6; i++) assert.equal((await store.get(`log${i}`))?.text, `logged ${i} `.repeat(40));
  assert.equal(store.stats().count, N + 6);
  await store.close();
});

test('checkpoints are all-or-nothing: a failure at any write of a checkpoint leaves the previous checkpoint byte for byte', async () => {
  const next = rng(7);
  for (let round = 0; round < 8; round++) {
    const dir = await checkpointedStore();
    const before = await dump(dir);
    const indexBefore = indexBytes(dir);
    const store = await MemStore.open(dir, { durability: 'none' });
    const changes = vecs.map((v, i) => ({ id: i % 3 === 0 ? `new${i}` : `r${i}`, vector: v.map((x) => -x), text: `changed ${i}`, meta: { round } }));
    await store.add(changes);
    await store.delete(['r1', 'r2', 'r29']);
    // Writes of this checkpoint: one per changed record's document (all 30 ids), then the checkpoint; fail one at random.
    const failAt = Math.floor(next() * (changes.length + 1));
    let writes = 0;
    stateWriteHooks.beforeWrite = (n) => {
      writes = n + 1;
      if (n === failAt) throw new Error(`injected failure at write ${n}`);
    };
    try {
      await rejectsWith(() => store.close(), 'IO');
    } finally {
      stateWriteHooks.beforeWrite = undefined;
    }
    assert.ok(writes > failAt, `round ${round}: the failure was injected`);
    assert.deepEqual(await dump(dir), before, `round ${round}: the state is the previous checkpoint`);
    // The index file holds the failed checkpoint's delta past the committed length, which open cuts.
    assert.deepEqual(indexBytes(dir).subarray(0, indexBefore.length), indexBefore, `round ${round}: the committed index is untouched`);
    const reopened = await MemStore.open(dir);
    assert.equal((await reopened.get('r4'))?.text, 'changed 4', 'the log still holds what the failed checkpoint did not write');
    assert.equal(await reopened.get('r2'), undefined);
    await reopened.close();
  }
});

test('a logged batch that cannot be applied stops the store instead of letting memory drift from the log', async () => {
  const dir = await checkpointedStore();
  const store = await MemStore.open(dir);
  const arena = (store as unknown as { arena: { append: (b: Uint8Array) => unknown } }).arena;
  const append = arena.append.bind(arena);
  arena.append = () => {
    throw new Error('injected: the arena refuses');
  };
  await rejectsWith(() => store.add([{ id: 'x', vector: vecs[0]!, text: 'x' }]), 'IO');
  arena.append = append;
  await rejectsWith(() => store.search(vecs[0]!), 'IO');
  await rejectsWith(() => store.add([{ id: 'y', vector: vecs[0]! }]), 'IO');
  await store.close();
  const reopened = await MemStore.open(dir);
  assert.equal((await reopened.get('x'))?.text, 'x', 'the log replays the batch that memory could not take');
  assert.equal(await reopened.get('y'), undefined);
  await reopened.close();
});

test('repairs in a row with the default report each write their own (a second in the same second had refused the name it chose)', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4 });
  await store.add([{ id: 'a', vector: [1, 2, 3, 4] }]);
  await store.close();
  const reports = new Set<string>();
  for (let i = 0; i < 4; i++) reports.add((await repairStore(dir)).report);
  assert.equal(reports.size, 4, [...reports].join(', '));
  for (const r of reports) assert.ok(existsSync(r), r);
});

test('a log record whose checksum holds but whose batch add or delete would have refused (NaN, another dimension, an id empty or too long, add and delete at once) is CORRUPTION at its LSN; verify names it; repair reports it and leaves a store that opens', async () => {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
  const f32 = (a: number[]) => new Uint8Array(new Float32Array(a).buffer);
  const dim = vecs[0]!.length;
  const ok = Array.from({ length: dim }, (_, i) => i + 1);
  const cases: Record<string, unknown> = {
    nan: { a: [{ i: 'x', v: f32([Number.NaN, ...ok.slice(1)]) }] },
    dimension: { a: [{ i: 'x', v: f32([...ok, 1]) }] },
    emptyId: { a: [{ i: '', v: f32(ok) }] },
    longId: { a: [{ i: 'x'.repeat(5000), v: f32(ok) }] },
    both: { a: [{ i: 'x', v: f32(ok) }], d: ['log1'] },
    deleteEmptyId: { d: [''] },
  };
  for (const [name, wire] of Object.entries(cases)) {
    const dir = await storeWithLog(3);
    const [segment] = readdirSync(walDir(dir)).filter((n) => n.endsWith('.log'));
    const path = join(walDir(dir), segment!);
    const bytes = readFileSync(path);
    const payload = packr.pack(wire);
    const out = new Uint8Array(framedSize(bytes.length, payload.length));
    // The checkpoint is LSN 1 and the three batches 2..4: this record is the next one, sealed as the writer seals.
    encodeRecord(out, 0, bytes.length, 5, payload);
    writeFileSync(path, Buffer.concat([bytes, out]));
    let caught: unknown;
    try {
      await (await MemStore.open(dir)).close();
    } catch (e) {
      caught = e;
    }
    assert.equal((caught as MemstoreError | undefined)?.code, 'CORRUPTION', `${name}: open`);
    assert.equal((caught as MemstoreError).offset, 'lsn 5', `${name}: at its LSN`);
    assert.equal((await cliResult(['verify', dir])).code, 1, `${name}: verify names it`);
    const report = await repairAndVerify(dir);
    assert.deepEqual(report.filter((l) => l.kind === 'log-record').map((l) => l.lsn), [5], `${name}: reported`);
    const store = await MemStore.open(dir);
    try {
      assert.equal(store.stats().count, N + 3, `${name}: the store without it`);
      for (let i = 0; i < 3; i++) assert.equal((await store.get(`log${i}`))?.text, `logged ${i} `.repeat(40));
    } finally {
      await store.close();
    }
  }
});

/** The offsets of the fragments of a segment that holds only FULL fragments in its first block (storeWithLog's). */
function fragmentsOf(bytes: Uint8Array): number[] {
  const at: number[] = [];
  for (let pos = 0; pos + WAL_HEADER_SIZE <= bytes.length; ) {
    at.push(pos);
    pos += WAL_HEADER_SIZE + (bytes[pos + 4]! | (bytes[pos + 5]! << 8));
  }
  return at;
}

/** Seals the fragment at `at` again, as a writer would, after its header or payload was changed. */
function reseal(bytes: Buffer, at: number): void {
  const length = bytes[at + 4]! | (bytes[at + 5]! << 8);
  bytes.writeUInt32LE(maskCrc(crc32c(bytes, at + 4, at + WAL_HEADER_SIZE + length)), at);
}

test('log damage a crash cannot explain, at the end of the log or across segments (records out of order, a MIDDLE fragment alone, an LSN past 2^53, overlapping segments, a lost first segment): open is CORRUPTION, verify names it, and repair leaves a store that opens (it had called some a torn tail, and repaired none)', async () => {
  const cases: Record<string, (walPath: string, segment: string) => void> = {
    'records out of order': (w, name) => {
      const b = readFileSync(join(w, name));
      const f = fragmentsOf(b);
      const [a, z] = [f[f.length - 2]!, f[f.length - 1]!];
      writeFileSync(join(w, name), Buffer.concat([b.subarray(0, a), b.subarray(z), b.subarray(a, z)]));
    },
    'a MIDDLE fragment alone at the end': (w, name) => {
      const b = readFileSync(join(w, name));
      const last = fragmentsOf(b).at(-1)!;
      b[last + 6] = 3;
      reseal(b, last);
      writeFileSync(join(w, name), b);
    },
    'an LSN past 2^53 at the end': (w, name) => {
      const b = readFileSync(join(w, name));
      const last = fragmentsOf(b).at(-1)!;
      b.writeUInt32LE(0x00400000, last + 11);
      reseal(b, last);
      writeFileSync(join(w, name), b);
    },
    'an overlapping segment': (w, name) => {
      writeFileSync(join(w, segmentName(parseSegmentName(name)! + 1)), Buffer.alloc(0));
    },
    'a lost first segment': (w, name) => {
      const b = readFileSync(join(w, name));
      const last = fragmentsOf(b).at(-1)!;
      const lsn = b.readUInt32LE(last + 7);
      writeFileSync(join(w, segmentName(lsn)), b.subarray(last));
      rmSync(join(w, name));
    },
  };
  for (const [what, damage] of Object.entries(cases)) {
    const dir = await storeWithLog(4);
    const [segment] = readdirSync(walDir(dir)).filter((n) => n.endsWith('.log')).sort();
    damage(walDir(dir), segment!);
    await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
    assert.equal((await cliResult(['verify', dir])).code, 1, `${what}: verify names it`);
    await repairAndVerify(dir);
    const store = await MemStore.open(dir);
    try {
      assert.ok(store.stats().count >= N, `${what}: the store opens with what the log still holds`);
    } finally {
      await store.close();
    }
  }
});

test('repair where its own marker or log is not what it makes: a FIFO as the marker of an interrupted repair is CORRUPTION at once (reading it had waited for a writer for ever), so is a missing marker (it had been IO, Node\'s ENOENT), a wal.repair that is a file and a log that is a file are IO (Node\'s ENOTDIR and the log\'s own error had come out)', { skip: process.platform === 'win32' ? 'no FIFOs' : false }, async () => {
  const fifoMarker = await storeWithLog(6);
  renameSync(walDir(fifoMarker), repairLogDir(fifoMarker));
  mkdirSync(walDir(fifoMarker));
  execFileSync('mkfifo', [join(repairLogDir(fifoMarker), 'REPAIR-FROM-LSN')]);
  await rejectsWith(() => within10s(repairStore(fifoMarker)), 'CORRUPTION');
  // Moved where a repair moves the log, without the marker a repair writes first: not an interrupted repair's.
  const noMarker = await storeWithLog(6);
  renameSync(walDir(noMarker), repairLogDir(noMarker));
  mkdirSync(walDir(noMarker));
  assert.equal((await rejectsWith(() => within10s(repairStore(noMarker)), 'CORRUPTION')).file, join(repairLogDir(noMarker), 'REPAIR-FROM-LSN'));
  const movedFile = await storeWithLog(6);
  writeFileSync(repairLogDir(movedFile), 'not a directory');
  await rejectsWith(() => within10s(repairStore(movedFile)), 'IO');
  const logFile = await storeWithLog(6);
  rmSync(walDir(logFile), { recursive: true });
  writeFileSync(walDir(logFile), 'not a directory');
  await rejectsWith(() => within10s(repairStore(logFile)), 'IO');
});

test('a state.mdb repair cannot read (truncated): memstore compact and export stop with CORRUPTION and do not advise the repair, which refuses it too (they had advised it); stateBeyondRepair() says so, and not of a sound state', async () => {
  const { stateBeyondRepair } = await import('../src/store/state.js');
  const dir = tempDir();
  const s = await MemStore.open(dir, { dim: 4 });
  await s.add([{ id: 'a', vector: [1, 2, 3, 4], text: 'x', meta: { m: 1 } }]);
  await s.close();
  assert.equal(stateBeyondRepair(dir), false, 'a sound state');
  execFileSync('truncate', ['-s', '40000', statePath(dir)]);
  assert.equal(stateBeyondRepair(dir), true, 'a truncated state');
  for (const args of [['compact', dir], ['export', dir, '--out', join(tempDir(), 'out.jsonl')]]) {
    const r = await cliResult(args);
    assert.equal(r.code, 1, args[0]);
    assert.ok(r.stderr.includes('CORRUPTION'), `${args[0]}: ${r.stderr}`);
    assert.ok(!r.stderr.includes('moves the damaged records'), `${args[0]} advised a repair: ${r.stderr}`);
  }
  await rejectsWith(() => repairStore(dir), 'CORRUPTION');
});

/** A closed store of one record with `text`, and the name of its one text segment. */
async function oneTextStore(text: string): Promise<{ dir: string; segment: string }> {
  const dir = tempDir();
  const s = await MemStore.open(dir, { dim: 4 });
  await s.add([{ id: 'a', vector: [1, 2, 3, 4], text }]);
  await s.close();
  const [segment] = readdirSync(join(dir, 'arena'));
  return { dir, segment: segment! };
}

test('a text segment that is a FIFO: verify lists it as IO naming the FIFO (not the arena directory), its advice is to make it readable or move it, not the repair that cannot read it either; moved away, the store verifies clean', { skip: process.platform === 'win32' ? 'no FIFOs' : false }, async () => {
  const { checkStore } = await import('../src/store/verify.js');
  const { dir, segment } = await oneTextStore('x');
  const generation = segment.split('-')[1]!;
  const fifo = join(dir, 'arena', `arena-${generation}-000002.blob`);
  execFileSync('mkfifo', [fifo]);
  const report = await checkStore(dir);
  assert.deepEqual(report.problems.map((p) => ({ code: p.code, file: p.file })), [{ code: 'IO', file: fifo }]);
  const r = await cliResult(['verify', dir]);
  assert.equal(r.code, 1);
  assert.ok(r.stdout.split('\n').some((line) => line.startsWith(`IO ${fifo}`)), r.stdout);
  assert.ok(!r.stdout.includes('moves the damaged records'), `verify advised a repair: ${r.stdout}`);
  await rejectsWith(() => repairStore(dir), 'IO');
  rmSync(fifo);
  assert.deepEqual((await checkStore(dir)).problems, []);
});

test('problems verify finds in bytes are CORRUPTION, and the CLI advises the repair that mends them', async () => {
  const { checkStore } = await import('../src/store/verify.js');
  const { dir, segment } = await oneTextStore('a text long enough to find');
  const path = join(dir, 'arena', segment);
  const bytes = readFileSync(path);
  const at = bytes.indexOf('long enough');
  bytes[at] = bytes[at]! ^ 0x20;
  writeFileSync(path, bytes);
  const report = await checkStore(dir);
  assert.ok(report.problems.length > 0);
  assert.ok(report.problems.every((p) => p.code === 'CORRUPTION'), JSON.stringify(report.problems));
  const r = await cliResult(['verify', dir]);
  assert.equal(r.code, 1);
  assert.ok(r.stdout.includes('moves the damaged records'), r.stdout);
  await repairStore(dir);
  assert.deepEqual((await checkStore(dir)).problems, []);
});
