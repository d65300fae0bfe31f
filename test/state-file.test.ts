import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { open } from 'lmdb';
import { MemStore, MemstoreError } from '../src/index.js';
import { statePath } from '../src/store/files.js';
import { checkLmdbFile, checkLmdbStructure } from '../src/store/lmdb-file.js';
import { environmentKind } from '../src/store/state.js';
import { repairStore } from '../src/store/repair.js';
import { checkStore } from '../src/store/verify.js';
import { clustered, rejectsWith, tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

// What lmdb-file.ts reads of an LMDB data file: 16 KiB pages (the store's), a meta on each of the
// first two, and in each the free and main trees' roots at bytes 88 and 136, the last page in use
// at 144 and the commit's txnid at 152.
const PAGE = 16384;
const LAST_PAGE_AT = 144;
const TXNID_AT = 152;
const MAIN_ROOT_AT = 136;
const FREE_ROOT_AT = 88;
const DIM = 16;
const vecs = clustered(3000, DIM, 5);

let made: string | undefined;

/** A closed store of 3,000 records with texts and metadata (several pages of `docs`), made once; each test takes a copy. */
async function store(): Promise<string> {
  if (made === undefined) {
    made = tempDir('memstore-statefile-');
    const s = await MemStore.open(made, { dim: DIM, durability: 'none', cache: false });
    await s.add(vecs.map((vector, i) => ({ id: `r${i}`, vector, text: `text ${i}`, meta: { i, pad: 'x'.repeat(i % 200) } })));
    await s.close();
  }
  const copy = tempDir('memstore-statefile-');
  cpSync(made, copy, { recursive: true });
  return copy;
}

/** Rewrites the 64-bit field at `at` of both metas of `dir`'s state file with `f(old)`. */
function patchMetas(dir: string, at: number, f: (old: bigint) => bigint): void {
  const bytes = readFileSync(statePath(dir));
  for (const page of [0, PAGE]) bytes.writeBigUInt64LE(f(bytes.readBigUInt64LE(page + at)), page + at);
  writeFileSync(statePath(dir), bytes);
}

async function refusedEverywhere(dir: string): Promise<void> {
  const err = await MemStore.open(dir).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof MemstoreError, `open: ${String(err)}`);
  assert.equal(err.code, 'CORRUPTION');
  assert.equal(err.file, statePath(dir));
  await rejectsWith(() => checkStore(dir), 'CORRUPTION');
  await rejectsWith(() => repairStore(dir), 'CORRUPTION');
  assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('repair-')), [], 'repair refused before it made its report');
}

test('state file: a healthy state.mdb reads as whole, after adds, checkpoints and a compaction', async () => {
  const dir = await store();
  assert.equal(checkLmdbFile(statePath(dir)).kind, 'whole');
  const s = await MemStore.open(dir, { checkpointBytes: 1 << 16 });
  await s.delete(vecs.slice(0, 1000).map((_, i) => `r${i}`));
  await s.add(vecs.slice(0, 500).map((vector, i) => ({ id: `n${i}`, vector, meta: { n: i } })));
  await s.compact();
  await s.close();
  assert.equal(checkLmdbFile(statePath(dir)).kind, 'whole');
});

/**
 * The bytes of `dir`'s state file up to the end of the last page its newest commit reaches: the
 * file may end in pages that commit counted but freed (lmdb-file.ts), and cutting those loses nothing.
 */
function inUse(dir: string): number {
  const size = statSync(statePath(dir)).size;
  let pages = size / PAGE;
  for (;;) {
    const probe = tempDir('memstore-statefile-');
    cpSync(dir, probe, { recursive: true });
    truncateSync(statePath(probe), (pages - 1) * PAGE);
    const kind = checkLmdbFile(statePath(probe)).kind;
    rmSync(probe, { recursive: true });
    if (kind !== 'whole') return pages * PAGE;
    pages--;
  }
}

test('state file: a state.mdb cut short (half, a page short, a few bytes short, inside its second meta page) is CORRUPTION naming it at open, in verify and in repair; LMDB had killed the process with SIGBUS', async () => {
  const end = inUse(await store());
  for (const cut of [Math.floor(end / 2 / PAGE) * PAGE, end - PAGE, end - 10, PAGE + 100]) {
    const dir = await store();
    truncateSync(statePath(dir), cut);
    assert.equal(checkLmdbFile(statePath(dir)).kind, 'truncated', `cut to ${cut}`);
    await refusedEverywhere(dir);
    assert.equal(statSync(statePath(dir)).size, cut, 'nothing written to it');
  }
});

test('state file: a state.mdb that is not LMDB data of this version (random bytes, a few bytes, another data version) is CORRUPTION at open and in verify; lmdb-js had crashed the process on it', async () => {
  const random = Buffer.alloc(5 * PAGE);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
  const cases: [string, (dir: string) => void][] = [
    ['random bytes', (dir) => writeFileSync(statePath(dir), random)],
    ['100 bytes', (dir) => truncateSync(statePath(dir), 100)],
    ['data version 1', (dir) => {
      const bytes = readFileSync(statePath(dir));
      bytes.writeUInt32LE(1, 28);
      bytes.writeUInt32LE(1, PAGE + 28);
      writeFileSync(statePath(dir), bytes);
    }],
  ];
  for (const [what, damage] of cases) {
    const dir = await store();
    damage(dir);
    assert.equal(checkLmdbFile(statePath(dir)).kind, 'invalid', what);
    await refusedEverywhere(dir);
  }
  const dir = await store();
  writeFileSync(statePath(dir), random);
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stderr, /CORRUPTION/);
});

test("state file: a meta naming a root past the end of the file or past its last page, a root on a meta page, or a last page past any map is CORRUPTION (LMDB had aborted or faulted)", async () => {
  const cases: [string, number, (old: bigint) => bigint][] = [
    ['main root past the end', MAIN_ROOT_AT, () => 1n << 40n],
    ['main root on meta page 1', MAIN_ROOT_AT, () => 1n],
    ['free root on meta page 0', FREE_ROOT_AT, () => 0n],
    ['last page 2^40', LAST_PAGE_AT, () => 1n << 40n],
  ];
  for (const [what, at, f] of cases) {
    const dir = await store();
    patchMetas(dir, at, f);
    assert.notEqual(checkLmdbFile(statePath(dir)).kind, 'whole', what);
    await refusedEverywhere(dir);
  }
});

test("state file: a damaged flag of a sub-database's entry in LMDB's main tree (lmdb-js: MDB_INCOMPATIBLE) is CORRUPTION naming the file at open and in verify, and the CLI exits 1, not with a usage error", async () => {
  const dir = await store();
  const bytes = readFileSync(statePath(dir));
  const newer = bytes.readBigUInt64LE(PAGE + TXNID_AT) > bytes.readBigUInt64LE(TXNID_AT) ? PAGE : 0;
  const root = Number(bytes.readBigUInt64LE(newer + MAIN_ROOT_AT));
  const page = bytes.subarray(root * PAGE, (root + 1) * PAGE);
  let cleared = 0;
  for (let i = 0; i < page.readUInt16LE(20) >> 1; i++) {
    const at = 24 + page.readUInt16LE(24 + 2 * i);
    const key = page.subarray(at + 8, at + 8 + page.readUInt16LE(at + 6)).toString('latin1');
    // The node's flags: F_SUBDATA says its value is a sub-database.
    if (key.startsWith('config')) {
      page.writeUInt16LE(0, at + 4);
      cleared++;
    }
  }
  assert.equal(cleared, 1, 'the config entry was found');
  writeFileSync(statePath(dir), bytes);
  await refusedEverywhere(dir);
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stderr, /CORRUPTION/);
});

test('state file: a state.mdb shorter than its last page in use, with only free pages past its end (pages freed by the commit that made them), opens whole and takes writes', async () => {
  const dir = await store();
  // Three more pages in use than the file holds, reached by no tree: what a commit whose last pages were freed before it wrote them leaves.
  patchMetas(dir, LAST_PAGE_AT, (last) => last + 3n);
  assert.equal(checkLmdbFile(statePath(dir)).kind, 'whole');
  const s = await MemStore.open(dir);
  assert.equal(s.stats().count, vecs.length);
  assert.equal((await s.get('r2999'))?.text, 'text 2999');
  await s.add([{ id: 'after', vector: vecs[0]!, meta: { after: true } }]);
  await s.compact();
  await s.close();
  const again = await MemStore.open(dir);
  assert.deepEqual((await again.get('after'))?.meta, { after: true });
  assert.equal(again.stats().count, vecs.length + 1);
  await again.close();
  assert.equal((await checkStore(dir)).problems.length, 0);
});

/** The bytes of LMDB's first write (both metas, txnid 0), as lmdb-js makes a new environment with the store's options. */
async function firstWrite(): Promise<Buffer> {
  const dir = tempDir('memstore-statefile-');
  await open({ path: statePath(dir), maxDbs: 8, compression: false, pageSize: PAGE }).close();
  return readFileSync(statePath(dir));
}

test("state file: a creation stopped during LMDB's first write (a prefix of it, either meta page zeros, zeros only, no byte) holds no commit: open makes the store again there, verify and repair call it CORRUPTION without writing, and beside a store's log it is CORRUPTION everywhere", async () => {
  const first = await firstWrite();
  assert.equal(first.length, 2 * PAGE);
  assert.equal(first.readBigUInt64LE(TXNID_AT), 0n);
  const zeroPage = (page: number): Buffer => {
    const copy = Buffer.from(first);
    copy.fill(0, page * PAGE, (page + 1) * PAGE);
    return copy;
  };
  const cases: [string, Buffer][] = [
    ['no byte', Buffer.alloc(0)],
    ['10 bytes', first.subarray(0, 10)],
    ['100 bytes', first.subarray(0, 100)],
    ['page 0 only', first.subarray(0, PAGE)],
    ['page 0 and 100 bytes of page 1', first.subarray(0, PAGE + 100)],
    ['one byte short', first.subarray(0, 2 * PAGE - 1)],
    ['page 1 zeros', zeroPage(1)],
    ['page 0 zeros', zeroPage(0)],
    ['4 KiB of zeros', Buffer.alloc(4096)],
    ['two pages of zeros', Buffer.alloc(2 * PAGE)],
  ];
  for (const [what, bytes] of cases) {
    const dir = tempDir('memstore-statefile-');
    writeFileSync(statePath(dir), bytes);
    assert.equal(checkLmdbFile(statePath(dir)).kind, 'unfinished', what);
    await rejectsWith(() => checkStore(dir), 'CORRUPTION');
    await rejectsWith(() => repairStore(dir), 'CORRUPTION');
    assert.deepEqual(readFileSync(statePath(dir)), bytes, `${what}: the tools wrote nothing`);
    // Without the options a new store needs, the open fails before it changes anything.
    await rejectsWith(() => MemStore.open(dir), 'INVALID_OPTION');
    assert.deepEqual(readFileSync(statePath(dir)), bytes, `${what}: a failed open wrote nothing`);
    const s = await MemStore.open(dir, { dim: DIM });
    await s.add([{ id: 'a', vector: vecs[0]!, text: what }]);
    await s.close();
    const again = await MemStore.open(dir);
    assert.equal((await again.get('a'))?.text, what);
    await again.close();
    assert.equal(checkLmdbFile(statePath(dir)).kind, 'whole', what);
    assert.equal((await checkStore(dir)).problems.length, 0, what);
  }
  // Beside a store's files the same bytes are a store that lost its state: nothing is made over it.
  const lost = await store();
  writeFileSync(statePath(lost), first.subarray(0, PAGE + 100));
  await refusedEverywhere(lost);
  assert.deepEqual(readFileSync(statePath(lost)), first.subarray(0, PAGE + 100));
});

test('state file: what only looks like a first write is judged as before: both metas whole is an environment, a first write with a commit in it (a txnid, a tree, a last page) is judged by its metas, one with a wrong page number, or zeros past two pages, is invalid', async () => {
  const first = await firstWrite();
  const dir = tempDir('memstore-statefile-');
  writeFileSync(statePath(dir), first);
  assert.equal(checkLmdbFile(statePath(dir)).kind, 'whole');
  const s = await MemStore.open(dir, { dim: DIM });
  await s.close();
  const patched = (at: number, value: bigint, size = PAGE + 200): Buffer => {
    const copy = Buffer.from(first.subarray(0, size));
    copy.writeBigUInt64LE(value, at);
    return copy;
  };
  const rootPastEnd = (): Buffer => {
    const copy = patched(LAST_PAGE_AT, 5n);
    copy.writeBigUInt64LE(3n, MAIN_ROOT_AT);
    return copy;
  };
  const cases: [string, Buffer, 'whole' | 'truncated' | 'invalid'][] = [
    ['meta 0 of txnid 1', patched(TXNID_AT, 1n), 'whole'],
    ['a main tree with a root past the end', rootPastEnd(), 'truncated'],
    ['meta 1 of txnid 1', patched(PAGE + TXNID_AT, 1n), 'whole'],
    ['a main tree with a root past its last page', patched(MAIN_ROOT_AT, 2n), 'invalid'],
    ['a last page of 5', patched(LAST_PAGE_AT, 5n), 'whole'],
    ['page 0 numbered 1', patched(0, 1n, 100), 'invalid'],
    ['three pages of zeros', Buffer.alloc(3 * PAGE), 'invalid'],
    ['random bytes', Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 2654435761) >>> 24)), 'invalid'],
  ];
  for (const [what, bytes, kind] of cases) {
    const bad = tempDir('memstore-statefile-');
    writeFileSync(statePath(bad), bytes);
    assert.equal(checkLmdbFile(statePath(bad)).kind, kind, what);
    if (kind === 'whole') continue;
    await rejectsWith(() => MemStore.open(bad, { dim: DIM }), 'CORRUPTION');
    assert.deepEqual(readFileSync(statePath(bad)), bytes, `${what}: open wrote nothing`);
  }
});

test('state file: a state.mdb or state.mdb-lock that is not a regular file (a device, a FIFO, a directory as the lock, links to them) is IO at open and in verify, never a crash or a wait; nothing is written', { timeout: 60_000 }, async () => {
  const cases: [string, (dir: string) => void][] = [
    ['state.mdb a link to /dev/null', (dir) => symlinkSync('/dev/null', statePath(dir))],
    ['state.mdb a link to /dev/zero', (dir) => symlinkSync('/dev/zero', statePath(dir))],
    ['state.mdb a FIFO', (dir) => execFileSync('mkfifo', [statePath(dir)])],
    ['state.mdb-lock a directory beside a healthy store', (dir) => {
      rmSync(`${statePath(dir)}-lock`, { force: true });
      mkdirSync(`${statePath(dir)}-lock`);
    }],
    ['state.mdb-lock a link to /dev/null beside a healthy store', (dir) => {
      rmSync(`${statePath(dir)}-lock`, { force: true });
      symlinkSync('/dev/null', `${statePath(dir)}-lock`);
    }],
  ];
  for (const [what, make] of cases) {
    const dir = what.includes('healthy') ? await store() : tempDir('memstore-statefile-');
    make(dir);
    const before = readdirSync(dir).sort();
    await rejectsWith(() => MemStore.open(dir, { dim: DIM }), 'IO');
    await rejectsWith(() => checkStore(dir), 'IO');
    assert.deepEqual(readdirSync(dir).sort(), before, `${what}: nothing made or removed`);
  }
});

test("store files: a log segment, an arena or vector segment or the index file that is not a regular file (a FIFO, a link to /dev/zero, a directory) is IO at open and a problem verify names, never a wait or an endless read", { timeout: 120_000 }, async () => {
  const base = tempDir('memstore-statefile-');
  const s = await MemStore.open(base, { dim: DIM });
  await s.add(vecs.slice(0, 20).map((vector, i) => ({ id: `r${i}`, vector, text: `text ${i}` })));
  await s.close();
  const fileIn = (dir: string, sub: string) => join(dir, sub, readdirSync(join(dir, sub)).sort()[0]!);
  const kinds: [string, (path: string) => void][] = [
    ['a FIFO', (path) => execFileSync('mkfifo', [path])],
    ['a link to /dev/zero', (path) => symlinkSync('/dev/zero', path)],
    ['a directory', (path) => mkdirSync(path)],
  ];
  for (const sub of ['wal', 'arena', 'vectors', 'index']) {
    for (const [kind, make] of kinds) {
      const dir = tempDir('memstore-statefile-');
      cpSync(base, dir, { recursive: true });
      const path = fileIn(dir, sub);
      rmSync(path);
      make(path);
      await rejectsWith(() => MemStore.open(dir), 'IO');
      const report = await checkStore(dir);
      assert.ok(report.problems.length > 0, `${sub} ${kind}: verify finds it`);
    }
  }
});

test('state file: an LMDB environment is created only with CREATE_ROOM free (IO before LMDB is asked; lmdb-js had crashed the process tidying up a failed creation on a nearly full disk); an existing one opens whatever is free', async () => {
  const { CREATE_ROOM, refuseFullDisk } = await import('../src/store/state.js');
  const dir = tempDir();
  const path = statePath(dir);
  const asked: string[] = [];
  const free = (bytes: number | undefined) => (d: string) => {
    asked.push(d);
    return bytes;
  };
  // No data file yet: refused below the room, taken at it, and left to LMDB where statfs cannot tell.
  assert.throws(() => refuseFullDisk(path, free(64 * 1024)), (e: unknown) => e instanceof MemstoreError && e.code === 'IO' && e.file === path);
  assert.throws(() => refuseFullDisk(path, free(CREATE_ROOM - 1)), (e: unknown) => e instanceof MemstoreError && e.code === 'IO');
  refuseFullDisk(path, free(CREATE_ROOM));
  refuseFullDisk(path, free(undefined));
  assert.deepEqual(asked, [dir, dir, dir, dir]);
  // A store's environment (data file and lock file there): nothing to create, free space not asked.
  const store = await MemStore.open(dir, { dim: 4, durability: 'none' });
  await store.close();
  asked.length = 0;
  refuseFullDisk(path, free(0));
  assert.deepEqual(asked, []);
  // Its lock file gone, or its data file emptied: LMDB would create them, so the room is asked.
  rmSync(`${path}-lock`);
  assert.throws(() => refuseFullDisk(path, free(0)), (e: unknown) => e instanceof MemstoreError && e.code === 'IO');
});

test('state file: a creation stopped after the state\'s tables were made and before its configuration was committed (a SIGKILL in the first open, found by a hostile pass): open makes the store again there, verify and repair call it CORRUPTION without writing (verify had said the directory holds no memstore, exit 2; repair made the tables it lacked first), and beside a store\'s files it is CORRUPTION everywhere', async () => {
  /** A state.mdb holding the configuration's table, empty: what the first open's first commit leaves. */
  const tablesOnly = async (dir: string): Promise<void> => {
    const env = open({ path: statePath(dir), maxDbs: 8 });
    const config = env.openDB<Buffer, string>({ name: 'config', encoding: 'binary' });
    await config.put('made', Buffer.from('x'));
    await config.remove('made');
    await env.close();
  };
  const dir = tempDir('memstore-statefile-');
  await tablesOnly(dir);
  assert.equal(environmentKind(statePath(dir)), 'store');
  const bytes = readFileSync(statePath(dir));
  const verify = await rejectsWith(() => checkStore(dir), 'CORRUPTION');
  assert.equal(verify.file, statePath(dir));
  await rejectsWith(() => repairStore(dir), 'CORRUPTION');
  assert.deepEqual(readFileSync(statePath(dir)), bytes, 'the tools wrote nothing');
  const cli = await cliResult(['verify', dir]);
  assert.equal(cli.code, 1);
  const s = await MemStore.open(dir, { dim: DIM });
  await s.add([{ id: 'a', vector: vecs[0]!, text: 'made again' }]);
  await s.close();
  assert.equal((await checkStore(dir)).problems.length, 0);
  // The same state beside a store's files: that store lost its configuration, and nothing is made over it.
  const lost = await store();
  rmSync(statePath(lost));
  rmSync(`${statePath(lost)}-lock`, { force: true });
  await tablesOnly(lost);
  await refusedEverywhere(lost);
});

test('state file: a leaf node whose value size runs past its page (one flipped bit) is CORRUPTION naming the file and page in verify and repair, which had ended with SIGSEGV reporting nothing (a hostile pass); the sound state passes the walk, as every state verify reads in this suite does', async () => {
  const dir = await store();
  assert.equal(checkLmdbStructure(statePath(dir)), undefined, 'a sound state');
  const bytes = readFileSync(statePath(dir));
  // A record's id as a key of a leaf node: its node header is the 8 bytes before it, the value's size in the first 4.
  let flipped: number | undefined;
  for (let at = bytes.indexOf('r1234'); at !== -1 && flipped === undefined; at = bytes.indexOf('r1234', at + 1)) {
    if (at < 8 || bytes.readUInt16LE(at - 2) !== 5) continue;
    const copy = Buffer.from(bytes);
    copy[at - 6]! ^= 0x04;
    writeFileSync(statePath(dir), copy);
    if (checkLmdbStructure(statePath(dir)) !== undefined) flipped = at;
  }
  assert.ok(flipped !== undefined, 'a leaf node of r1234 found and flipped');
  const page = Math.floor(flipped / PAGE);
  assert.deepEqual(checkLmdbStructure(statePath(dir))?.page, page);
  for (const args of [['verify', dir], ['repair', dir]]) {
    const r = await cliResult(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /CORRUPTION/);
  }
  const e = await rejectsWith(() => checkStore(dir), 'CORRUPTION');
  assert.equal(e.file, statePath(dir));
  assert.equal(e.offset, page * PAGE);
});
