import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { open } from 'lmdb';
import { MemStore, MemstoreError } from '../src/index.js';
import { stateCopyPath, statePath } from '../src/store/files.js';
import { checkLmdbFile, checkLmdbStructure, salvageTables, type SkippedPart } from '../src/store/lmdb-file.js';
import { environmentKind } from '../src/store/state.js';
import { repairStore } from '../src/store/repair.js';
import { checkStore } from '../src/store/verify.js';
import { clustered, rejectsWith, rng, tempDir } from './helpers.js';
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

/** Opens a store and reads records in a process of its own (LMDB may abort on a damaged page). */
const readAllChild = fileURLToPath(new URL('./support/read-all-child.js', import.meta.url));

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

/** Flips, in `dir`'s state file, one bit of the value size of the leaf node whose key is `id`, so that the value runs past its page; returns that page. */
function flipValueSize(dir: string, id: string): number {
  const bytes = readFileSync(statePath(dir));
  // A record's id as a key of a leaf node: its node header is the 8 bytes before it, the value's size in the first 4.
  for (let at = bytes.indexOf(id); at !== -1; at = bytes.indexOf(id, at + 1)) {
    if (at < 8 || bytes.readUInt16LE(at - 2) !== id.length) continue;
    const copy = Buffer.from(bytes);
    copy[at - 6]! ^= 0x04;
    writeFileSync(statePath(dir), copy);
    const found = checkLmdbStructure(statePath(dir));
    if (found !== undefined) {
      assert.equal(found.page, Math.floor(at / PAGE));
      return found.page;
    }
  }
  throw new Error(`no leaf node of ${id} found`);
}

/** The root page of the sub-database `name` in `dir`'s state file, read from its newest meta's main tree (one leaf page in a store). */
function subRoot(dir: string, name: string): number {
  const bytes = readFileSync(statePath(dir));
  const main = mainTreePage(dir) * PAGE;
  for (let i = 0; i < bytes.readUInt16LE(main + 20) >> 1; i++) {
    const at = main + 24 + bytes.readUInt16LE(main + 24 + 2 * i);
    const key = bytes.toString('latin1', at + 8, at + 8 + bytes.readUInt16LE(at + 6)).replace(/\0$/, '');
    if (key === name) return Number(bytes.readBigUInt64LE(at + 8 + bytes.readUInt16LE(at + 6) + 40));
  }
  throw new Error(`no sub-database ${name}`);
}

/** The byte where the newest of the two metas of a state file's `bytes` starts (the one of the higher txnid). */
function newestMeta(bytes: Buffer): number {
  return bytes.readBigUInt64LE(TXNID_AT) > bytes.readBigUInt64LE(PAGE + TXNID_AT) ? 0 : PAGE;
}

/** The root page of LMDB's main tree in `dir`'s state file, as its newest meta names it. */
function mainTreePage(dir: string): number {
  const bytes = readFileSync(statePath(dir));
  return Number(bytes.readBigUInt64LE(newestMeta(bytes) + MAIN_ROOT_AT));
}

/** What a store holds, record by record (text and metadata), for comparing a repaired store with the one before the damage. */
async function contents(dir: string): Promise<Map<string, string>> {
  const s = await MemStore.open(dir, { cache: false });
  try {
    const out = new Map<string, string>();
    for (let i = 0; i < vecs.length; i++) {
      const r = await s.get(`r${i}`);
      if (r !== undefined) out.set(`r${i}`, JSON.stringify([Array.from(r.vector), r.text, r.meta]));
    }
    return out;
  } finally {
    await s.close();
  }
}

type ReportLine = { kind: string; table?: string; page?: number; offset?: number; node?: number | null; bytes?: string; id?: string };

function reportOf(path: string): ReportLine[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as ReportLine);
}

test('state file: salvageTables() reads, without LMDB, exactly the keys and values lmdb-js reads of every table of a sound state, in key order', async () => {
  const dir = await store();
  const skipped: SkippedPart[] = [];
  const read = [...salvageTables(statePath(dir), ['config', 'docs'], skipped)];
  assert.deepEqual(skipped, []);
  const env = open({ path: statePath(dir), readOnly: true, maxDbs: 8 });
  try {
    for (const table of ['config', 'docs']) {
      const db = env.openDB<Buffer, Buffer>({ name: table, encoding: 'binary', keyEncoding: 'binary' });
      const want = [...db.getRange()].map(({ key, value }) => [Buffer.from(key).toString('hex'), Buffer.from(value).toString('hex')]);
      const got = read.filter((e) => e.table === table).map((e) => [e.key.toString('hex'), e.value.toString('hex')]);
      assert.ok(want.length > 0, `${table} holds entries`);
      assert.deepEqual(got, want, table);
    }
  } finally {
    await env.close();
  }
});

test('state file: a leaf node whose value size runs past its page (one flipped bit; it had ended the process with SIGSEGV at its first read) is CORRUPTION at open, before LMDB maps the file, with the lock given back, and in verify; repair rebuilds the state from every other part, reporting the page, and the other 2,999 records read as written', async () => {
  const dir = await store();
  assert.equal(checkLmdbStructure(statePath(dir)), undefined, 'a sound state');
  const before = await contents(dir);
  const page = flipValueSize(dir, 'r1234');
  const damaged = readFileSync(statePath(dir));
  for (let attempt = 0; attempt < 2; attempt++) {
    // The second open meets the same damage, not a lock the first one left.
    const e = await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
    assert.equal(e.file, statePath(dir));
    assert.equal(e.offset, page * PAGE);
  }
  const e = await rejectsWith(() => checkStore(dir), 'CORRUPTION');
  assert.equal(e.offset, page * PAGE);
  assert.equal((await cliResult(['verify', dir])).code, 1);
  assert.deepEqual(readFileSync(statePath(dir)), damaged, 'open and verify wrote nothing');
  const result = await repairStore(dir);
  assert.deepEqual(result.removedRecords, ['r1234']);
  assert.equal(result.count, vecs.length - 1);
  const lines = reportOf(result.report);
  assert.deepEqual(lines.filter((l) => l.kind === 'state-damage').map((l) => l.offset), [page * PAGE], 'what the walk found');
  const parts = lines.filter((l) => l.kind === 'state-page');
  assert.equal(parts.length, 1);
  assert.equal(parts[0]!.table, 'docs');
  assert.equal(parts[0]!.page, page);
  assert.equal(parts[0]!.offset, page * PAGE);
  assert.equal(typeof parts[0]!.node, 'number');
  assert.deepEqual(Buffer.from(parts[0]!.bytes!, 'base64'), damaged.subarray(page * PAGE, (page + 1) * PAGE), 'the damaged page, as it was');
  assert.deepEqual(lines.filter((l) => l.kind === 'record').map((l) => l.id), ['r1234']);
  assert.equal(checkLmdbStructure(statePath(dir)), undefined);
  assert.equal((await checkStore(dir)).problems.length, 0);
  const after = await contents(dir);
  before.delete('r1234');
  assert.deepEqual(after, before);
  assert.equal((await cliResult(['verify', dir])).code, 0);
});

test('state file: a leaf page of the documents whose header names another page loses to repair the records on that page and only them; the writes the log holds after the checkpoint are applied again; a copy a killed repair left beside the state is replaced', async () => {
  const dir = await store();
  // Read before the writes below: contents() closes the store, which would checkpoint them.
  const before = await contents(dir);
  // Writes after the checkpoint: in the log only (abandon() leaves them there, as a killed process does).
  const s = await MemStore.open(dir, { cache: false });
  await s.add([0, 1, 2].map((i) => ({ id: `w${i}`, vector: vecs[i]!, text: `late ${i}` })));
  await s.abandon();
  const bytes = readFileSync(statePath(dir));
  const page = livePageHolding(dir, 'r2000');
  const original = Buffer.from(bytes.subarray(page * PAGE, (page + 1) * PAGE));
  bytes.writeBigUInt64LE(BigInt(page + 1000), page * PAGE);
  writeFileSync(statePath(dir), bytes);
  writeFileSync(stateCopyPath(statePath(dir)), 'what a repair killed while it copied the state left');
  await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
  const result = await repairStore(dir);
  const lost = result.removedRecords;
  assert.ok(lost.includes('r2000'), 'r2000 was on the page');
  for (const id of lost) assert.ok(original.includes(Buffer.from(id)), `${id} was on the damaged page`);
  assert.equal(result.count, vecs.length + 3 - lost.length);
  assert.equal((await checkStore(dir)).problems.length, 0);
  const after = await contents(dir);
  for (const id of lost) before.delete(id);
  assert.deepEqual(after, before);
  const reopened = await MemStore.open(dir, { cache: false });
  assert.deepEqual((await Promise.all([0, 1, 2].map((i) => reopened.get(`w${i}`)))).map((r) => r?.text), ['late 0', 'late 1', 'late 2']);
  await reopened.close();
  assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('state.mdb.')), []);
});

test("state file: damage inside the configuration's tree, or in LMDB's main tree (a node offset moved onto bytes that read as another node: it had passed the walk, and lmdb-js opened no table), is beyond repair: open, verify and repair refuse with CORRUPTION naming the page, and repair replaces nothing and leaves no report", async () => {
  const damages: [string, (bytes: Buffer, dir: string) => number][] = [
    ["the configuration's root names another page", (bytes, dir) => {
      const page = subRoot(dir, 'config');
      bytes.writeBigUInt64LE(BigInt(page + 1000), page * PAGE);
      return page;
    }],
    ["the main tree's second node offset moved by 256 bytes", (bytes, dir) => {
      const page = mainTreePage(dir);
      bytes[page * PAGE + 27]! ^= 0x01;
      return page;
    }],
  ];
  for (const [what, damage] of damages) {
    const dir = await store();
    const bytes = readFileSync(statePath(dir));
    const page = damage(bytes, dir);
    writeFileSync(statePath(dir), bytes);
    assert.equal(checkLmdbStructure(statePath(dir))?.page, page, what);
    assert.equal((await rejectsWith(() => MemStore.open(dir), 'CORRUPTION')).offset, page * PAGE, what);
    await rejectsWith(() => checkStore(dir), 'CORRUPTION');
    const e = await rejectsWith(() => repairStore(dir), 'CORRUPTION');
    assert.equal(e.file, statePath(dir), what);
    assert.equal(e.offset, page * PAGE, what);
    assert.deepEqual(readFileSync(statePath(dir)), bytes, `${what}: nothing replaced`);
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('repair-') || name.startsWith('state.mdb.')), [], what);
  }
});

test("state file: one bit flipped in LMDB's own bytes (the header or the nodes of a tree page in use, 20 seeded flips) never aborts a process: open is CORRUPTION, or every record reads as written or as CORRUPTION; each refused state is mended by repair (verify then finds nothing, and every record kept reads as written) or, for damage to the main tree or the configuration's, refused by it with nothing replaced", async () => {
  const source = await store();
  const before = await contents(source);
  const original = readFileSync(statePath(source));
  // The pages of the newest trees: each names itself and is a branch or a leaf (stale copies of older trees are free pages, which LMDB never reads).
  const treePages: number[] = [];
  for (let p = 2; p < original.length / PAGE; p++) {
    const copy = Buffer.from(original);
    copy.writeBigUInt64LE(BigInt(p + 100_000), p * PAGE);
    writeFileSync(statePath(source), copy);
    if (checkLmdbStructure(statePath(source))?.page === p) treePages.push(p);
  }
  writeFileSync(statePath(source), original);
  assert.ok(treePages.length > 3, `${treePages.length} tree pages`);
  const next = rng(20261207);
  const ids = vecs.map((_, i) => `r${i}`);
  const tally: Record<string, number> = {};
  for (let n = 0; n < 20; n++) {
    const dir = tempDir('memstore-statefile-');
    cpSync(source, dir, { recursive: true });
    const bytes = Buffer.from(original);
    const page = treePages[Math.floor(next() * treePages.length)]!;
    // Half into the page header and the first node offsets, half anywhere in the page (node headers, keys, values).
    const offset = page * PAGE + Math.floor(next() * (n % 2 === 0 ? 64 : PAGE));
    bytes[offset]! ^= 1 << Math.floor(next() * 8);
    writeFileSync(statePath(dir), bytes);
    const where = `bit flipped at byte ${offset} (page ${page})`;
    // LMDB would abort the process on what it reads past: the probe runs in one of its own.
    const outcome = JSON.parse(execFileSync(process.execPath, [readAllChild, dir, ids.join(',')], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim()) as { openError?: string; records?: Record<string, null | { error: string } | { text?: string }> };
    if (outcome.openError === undefined) {
      for (const id of ids) {
        const got = outcome.records![id];
        if (got !== null && got !== undefined && 'error' in got) assert.equal(got.error, 'CORRUPTION', `${where}: ${id}`);
        else if (got !== null && got !== undefined) assert.equal(got.text, `text ${id.slice(1)}`, `${where}: ${id}`);
      }
      tally['opened'] = (tally['opened'] ?? 0) + 1;
      continue;
    }
    assert.equal(outcome.openError, 'CORRUPTION', where);
    const repaired = await repairStore(dir).then(
      () => true,
      (e: unknown) => {
        // Beyond repair only where the configuration or the table roots were: LMDB's main tree, the configuration's tree; the file is left as it was.
        assert.ok(e instanceof MemstoreError && e.code === 'CORRUPTION', `${where}: repair failed: ${String(e)}`);
        assert.ok(page === subRoot(source, 'config') || e.offset === mainTreePage(source) * PAGE, `${where}: refused for ${e.message}`);
        assert.deepEqual(readFileSync(statePath(dir)), bytes, `${where}: nothing replaced`);
        return false;
      },
    );
    if (!repaired) {
      tally['refused, beyond repair'] = (tally['refused, beyond repair'] ?? 0) + 1;
      continue;
    }
    assert.equal((await checkStore(dir)).problems.length, 0, where);
    const after = await contents(dir);
    for (const [id, record] of after) assert.equal(record, before.get(id), `${where}: ${id} after repair`);
    tally['refused, repaired'] = (tally['refused, repaired'] ?? 0) + 1;
  }
  process.stdout.write(`# flips in LMDB's own bytes: ${JSON.stringify(tally)}\n`);
  assert.ok((tally['refused, repaired'] ?? 0) > 0, 'some flips damaged the structure');
});

test('state file: the copy of the state a compaction or a repair killed before its rename left beside it (and its LMDB lock file) is removed by the next open, with the lock held; it had stayed, up to the state\'s size, until the next compaction (a hostile pass)', async () => {
  const dir = await store();
  const copy = stateCopyPath(statePath(dir));
  writeFileSync(copy, Buffer.alloc(3 * PAGE, 7));
  writeFileSync(`${copy}-lock`, 'lock');
  const s = await MemStore.open(dir, { cache: false });
  try {
    assert.equal(existsSync(copy), false);
    assert.equal(existsSync(`${copy}-lock`), false);
    assert.equal(s.stats().count, vecs.length);
  } finally {
    await s.close();
  }
});

test("state file: a record the log deletes after the checkpoint, whose document the state no longer holds (a repair killed after it dropped the record's damaged document and logged its delete), is what the log says: verify finds nothing (it had called it damage and advised the repair that then removed nothing)", async () => {
  const dir = await store();
  const s = await MemStore.open(dir, { cache: false });
  await s.delete(['r1234']);
  await s.abandon();
  const env = open({ path: statePath(dir), maxDbs: 8 });
  try {
    const docs = env.openDB<Buffer, Buffer>({ name: 'docs', encoding: 'binary', keyEncoding: 'binary' });
    assert.equal(await docs.remove(Buffer.from('r1234')), true, 'the document was there');
  } finally {
    await env.close();
  }
  assert.deepEqual((await checkStore(dir)).problems, []);
  const reopened = await MemStore.open(dir, { cache: false });
  try {
    assert.equal(await reopened.get('r1234'), undefined);
    assert.equal(reopened.stats().count, vecs.length - 1);
  } finally {
    await reopened.close();
  }
});

/** The page of the newest trees that holds `needle` (older copies in free pages hold it too): the one whose damage the walk finds. */
function livePageHolding(dir: string, needle: string): number {
  const bytes = readFileSync(statePath(dir));
  try {
    for (let at = bytes.indexOf(needle); at !== -1; at = bytes.indexOf(needle, at + 1)) {
      const p = Math.floor(at / PAGE);
      const copy = Buffer.from(bytes);
      copy.writeBigUInt64LE(BigInt(p + 100_000), p * PAGE);
      writeFileSync(statePath(dir), copy);
      if (checkLmdbStructure(statePath(dir))?.page === p) return p;
    }
  } finally {
    writeFileSync(statePath(dir), bytes);
  }
  throw new Error(`no live page holds ${needle}`);
}

test("state file: what LMDB trusts when it writes, each found passing a walk of bounds alone and then ending a checkpoint or a repair (a hostile pass), is CORRUPTION at open naming the page: a leaf's flags with another bit, its free space past the page, a page newer than the commit, a child naming its own branch, a table's record with flags, the free list naming a live page; repair mends each, every record it keeps as written", async () => {
  const FREE_ROOT = FREE_ROOT_AT;
  const cases: { what: string; damage: (bytes: Buffer, dir: string) => number }[] = [
    { what: 'a docs leaf with the LEAF2 bit too', damage: (bytes, dir) => { const p = livePageHolding(dir, 'r2000'); bytes[p * PAGE + 18]! |= 0x20; return p; } },
    { what: "a docs leaf's upper past the page", damage: (bytes, dir) => { const p = livePageHolding(dir, 'r2000'); bytes.writeUInt16LE(PAGE, p * PAGE + 22); return p; } },
    { what: 'a docs leaf newer than the commit', damage: (bytes, dir) => { const p = livePageHolding(dir, 'r2000'); bytes.writeBigUInt64LE(1n << 40n, p * PAGE + 8); return p; } },
    {
      what: "the docs root's first child naming the root",
      damage: (bytes, dir) => {
        const root = subRoot(dir, 'docs');
        assert.equal(bytes.readUInt16LE(root * PAGE + 18), 0x01, 'the docs root is a branch');
        const node = root * PAGE + 24 + bytes.readUInt16LE(root * PAGE + 24);
        bytes.writeUInt16LE(root & 0xffff, node);
        bytes.writeUInt16LE(root >>> 16, node + 2);
        return root;
      },
    },
    {
      what: "the docs table's record with the DUPSORT flag",
      damage: (bytes, dir) => {
        const main = mainTreePage(dir);
        for (let i = 0; i < bytes.readUInt16LE(main * PAGE + 20) >> 1; i++) {
          const at = main * PAGE + 24 + bytes.readUInt16LE(main * PAGE + 24 + 2 * i);
          if (bytes.toString('latin1', at + 8, at + 12) === 'docs') bytes[at + 8 + bytes.readUInt16LE(at + 6) + 4]! |= 0x04;
        }
        return main;
      },
      // The salvage copies the table's entries into a table of its own making, without the flag.
    },
    {
      what: 'the free list naming a live docs leaf',
      damage: (bytes, dir) => {
        const free = Number(bytes.readBigUInt64LE(newestMeta(bytes) + FREE_ROOT)) * PAGE;
        assert.equal(bytes.readUInt16LE(free + 18), 0x02, 'the free tree is one leaf');
        const node = free + 24 + bytes.readUInt16LE(free + 24);
        const list = node + 8 + bytes.readUInt16LE(node + 6);
        assert.ok(bytes.readBigUInt64LE(list) >= 1n, 'the list names a page');
        const p = livePageHolding(dir, 'r2000');
        bytes.writeBigUInt64LE(BigInt(p), list + 8);
        return p;
      },
    },
  ];
  for (const { what, damage } of cases) {
    const dir = await store();
    // A write after the first checkpoint frees pages: the free list then names some.
    const s = await MemStore.open(dir, { cache: false });
    await s.delete(['r5']);
    await s.close();
    const before = await contents(dir);
    const bytes = readFileSync(statePath(dir));
    const page = damage(bytes, dir);
    writeFileSync(statePath(dir), bytes);
    assert.equal(checkLmdbStructure(statePath(dir))?.page, page, what);
    assert.equal((await rejectsWith(() => MemStore.open(dir), 'CORRUPTION')).offset, page * PAGE, what);
    const result = await repairStore(dir);
    assert.deepEqual(reportOf(result.report).filter((l) => l.kind === 'state-damage').map((l) => l.page), [page], `${what}: the report says why the state was rewritten`);
    assert.equal((await checkStore(dir)).problems.length, 0, what);
    const after = await contents(dir);
    assert.equal(after.size, result.count, what);
    for (const id of result.removedRecords) before.delete(id);
    assert.deepEqual(after, before, `${what}: every record kept reads as written`);
  }
});
