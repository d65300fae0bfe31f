import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { exportStore, MemStore } from '../src/index.js';
import { lmdbLockPath, lockPath, statePath } from '../src/store/files.js';
import { lmdbCause } from '../src/store/state.js';
import { rejectsWith, tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

// The file-system environment a store lives in, from a hostile pass: each of these crashed the
// process (SIGSEGV inside lmdb-js), hung it, or threw an error that was not a MemstoreError.

const run = promisify(execFile);
const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
const asRoot = process.getuid?.() === 0;

/**
 * Runs `body` (an ES module's text, `MemStore` and `MemstoreError` in scope) in a child process,
 * killed after 30 s; resolves with its exit code (null when killed or crashed), signal and stdout.
 */
async function child(body: string, o: { uid?: number; fdLimit?: number } = {}): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  const script = `const { MemStore, MemstoreError } = await import(${JSON.stringify(index)});\n${body}`;
  const node = [process.execPath, '--input-type=module', '-e', script];
  // A descriptor limit through the shell (Node cannot set one): filling a table of a million takes long.
  const [file, ...args] = o.fdLimit === undefined ? node : ['/bin/sh', '-c', `ulimit -n ${o.fdLimit} && exec "$@"`, 'sh', ...node];
  try {
    const { stdout } = await run(file!, args, { timeout: 30_000, killSignal: 'SIGKILL', ...(o.uid === undefined ? {} : { uid: o.uid, gid: o.uid }) });
    return { code: 0, signal: null, stdout };
  } catch (e) {
    const err = e as { code: number | string | null; signal: string | null; stdout: string };
    return { code: typeof err.code === 'number' ? err.code : null, signal: err.signal, stdout: err.stdout };
  }
}

/** A closed store of one record at a new directory. */
async function storeWithOne(): Promise<string> {
  const dir = tempDir();
  const s = await MemStore.open(dir, { dim: 4 });
  await s.add([{ id: 'a', vector: [1, 0, 0, 0] }]);
  await s.close();
  return dir;
}

/** The child's report of an open: 'opened', or 'MemstoreError CODE', or the class of anything else thrown. */
const openReport = (dir: string) => `
try { const s = await MemStore.open(${JSON.stringify(dir)}); console.log('opened'); await s.close(); }
catch (e) { console.log(e instanceof MemstoreError ? 'MemstoreError ' + e.code : 'other ' + e?.constructor?.name + ' ' + e?.code); }`;

test('filesystem: a LOCK that is a symbolic link to nothing is IO at open and in verify (both had spun for good: linking said it existed, reading said it did not)', async () => {
  const dir = await storeWithOne();
  symlinkSync(join(dir, 'nowhere'), lockPath(dir));
  const verify = await cliResult(['verify', dir], { timeoutMs: 30_000 });
  assert.notEqual(verify.code, null, 'verify finished');
  assert.notEqual(verify.code, 0);
  assert.match(verify.stderr, /\bIO\b/);
  const opened = await child(openReport(dir));
  assert.equal(opened.stdout.trim(), 'MemstoreError IO');
  await rejectsWith(() => MemStore.open(dir), 'IO');
  // Nothing was left beside it (the loop had made and removed a LOCK.<pid>.* file each turn).
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('LOCK.')), []);
  rmSync(lockPath(dir));
  const s = await MemStore.open(dir);
  assert.equal(s.stats().count, 1);
  await s.close();
});

/** A child's body that uses up its file descriptors on /dev/null, frees `free` of them, runs `then`, and gives them back. */
const withFreeDescriptors = (free: number, then: string) => `
import('node:fs').then(async ({ openSync, closeSync }) => {
  const fillers = [];
  try { for (;;) fillers.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
  for (let i = 0; i < ${free}; i++) closeSync(fillers.pop());
  ${then}
  for (const fd of fillers) closeSync(fd);
  console.log('survived');
});`;

test('filesystem: opening a store with 0 to 6 file descriptors free opens it or is IO, and the process lives on: the first open of a process creating a store, and a reopen (lmdb-js crashed it with SIGSEGV at 1 or 2 free; reading the kernels threw a plain EMFILE Error at 4)', async () => {
  const dir = await storeWithOne();
  for (const mode of ['create', 'reopen'] as const) {
    for (let free = 0; free <= 6; free++) {
      const target = mode === 'create' ? join(tempDir(), 'new') : dir;
      const open = mode === 'create' ? `
try { const s = await MemStore.open(${JSON.stringify(target)}, { dim: 4 }); console.log('opened'); await s.close(); }
catch (e) { console.log(e instanceof MemstoreError ? 'MemstoreError ' + e.code : 'other ' + e?.constructor?.name + ' ' + e?.code); }` : openReport(target);
      // A reopen after a first open has loaded the kernels, so that it reaches LMDB with what is left.
      const first = mode === 'reopen' ? `const first = await MemStore.open(${JSON.stringify(dir)}); await first.close();` : '';
      const r = await child(`${first}\n${withFreeDescriptors(free, open)}`, { fdLimit: 256 });
      const what = `${mode}, ${free} free`;
      assert.equal(r.signal, null, `${what}: not killed (${r.signal})`);
      const [outcome, last] = r.stdout.trim().split('\n');
      assert.ok(outcome === 'opened' || outcome === 'MemstoreError IO', `${what}: ${outcome}`);
      assert.equal(last, 'survived', what);
    }
  }
  const s = await MemStore.open(dir);
  assert.equal(s.stats().count, 1);
  await s.close();
});

test("filesystem: a store whose LMDB lock file this user cannot write (one root left) is IO at open, not a crash (lmdb-js: SIGSEGV); readable by the tools' read-only look", { skip: asRoot ? false : 'needs root to open as another user' }, async () => {
  const dir = await storeWithOne();
  const nobody = 65534;
  const own = (path: string) => chownSync(path, nobody, nobody);
  own(dir);
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) own(join(dir, entry));
  chmodSync(lmdbLockPath(statePath(dir)), 0o444);
  const r = await child(openReport(dir), { uid: nobody });
  assert.equal(r.signal, null, `not killed (${r.signal})`);
  assert.equal(r.stdout.trim(), 'MemstoreError IO');
  chmodSync(lmdbLockPath(statePath(dir)), 0o644);
  const again = await child(openReport(dir), { uid: nobody });
  assert.equal(again.stdout.trim(), 'opened');
});

/** Two closed stores of 20 records each (texts, full vectors), A's ids `a<i>`, B's `b<i>`. */
async function twoStores(): Promise<{ a: string; b: string }> {
  const make = async (prefix: string) => {
    const dir = tempDir();
    const s = await MemStore.open(dir, { dim: 4 });
    await s.add(Array.from({ length: 20 }, (_, i) => ({ id: `${prefix}${i}`, vector: [1, i, prefix === 'a' ? 1 : -1, 0], text: `${prefix} text ${i}` })));
    await s.close();
    return dir;
  };
  return { a: await make('a'), b: await make('b') };
}

test("filesystem: a store whose log, text arena, vector arena or index directory, or one file in them, is a link into another store's is CORRUPTION at open and in verify and export; the other store is left whole (its log segment had been deleted, its arena rewritten, its vectors collected)", async () => {
  for (const entry of ['wal', 'arena', 'vectors', 'index', 'segment', 'state.mdb'] as const) {
    const { a, b } = await twoStores();
    if (entry === 'state.mdb') {
      // The state file alone linked to the other's, beside a log and arenas of its own (it passed for
      // this store's own, and a repair rewrote the other store's state: a hostile pass).
      rmSync(join(a, 'state.mdb'));
      symlinkSync(join(b, 'state.mdb'), join(a, 'state.mdb'));
    } else if (entry === 'segment') {
      const segment = readdirSync(join(a, 'wal')).find((f) => f.endsWith('.log'))!;
      const theirs = readdirSync(join(b, 'wal')).find((f) => f.endsWith('.log'))!;
      rmSync(join(a, 'wal', segment));
      symlinkSync(join(b, 'wal', theirs), join(a, 'wal', segment));
    } else {
      rmSync(join(a, entry), { recursive: true });
      symlinkSync(join(b, entry), join(a, entry));
    }
    await rejectsWith(() => MemStore.open(a), 'CORRUPTION');
    const verify = await cliResult(['verify', a]);
    assert.notEqual(verify.code, 0, entry);
    assert.match(verify.stderr, /\bCORRUPTION\b/, entry);
    const exported = await cliResult(['export', a, '--out', join(tempDir(), 'out.jsonl')]);
    assert.notEqual(exported.code, 0, entry);
    const repaired = await cliResult(['repair', a, '--report', join(tempDir(), 'report.jsonl')]);
    assert.notEqual(repaired.code, 0, `${entry}: repair refuses`);
    assert.equal((await cliResult(['verify', b])).code, 0, `${entry}: the other store verifies`);
    const other = await MemStore.open(b);
    assert.equal(other.stats().count, 20, entry);
    assert.equal((await other.get('b7'))?.text, 'b text 7', entry);
    await other.close();
  }
});

test('filesystem: a store whose vector arena is a link to a directory elsewhere (another disk, no store there) opens, searches, compacts and verifies as before', async () => {
  const { a } = await twoStores();
  const elsewhere = join(tempDir(), 'vectors-elsewhere');
  renameSync(join(a, 'vectors'), elsewhere);
  symlinkSync(elsewhere, join(a, 'vectors'));
  const s = await MemStore.open(a);
  assert.equal(s.stats().count, 20);
  assert.equal((await s.search([1, 7, 1, 0], { k: 1, exact: true }))[0]?.id, 'a7');
  await s.add([{ id: 'a-new', vector: [0, 0, 1, 1] }]);
  await s.compact();
  await s.close();
  assert.equal((await cliResult(['verify', a])).code, 0);
});

/** A path under a new temporary directory, `bytes` long, of components of at most 200 bytes (NAME_MAX is 255). */
function pathOfLength(bytes: number): string {
  let path = tempDir();
  while (path.length < bytes) path = join(path, 'd'.repeat(Math.min(200, bytes - path.length - 1)));
  assert.equal(path.length, bytes);
  return path;
}

test('filesystem: a directory path so long that the store\'s file names under it would pass PATH_MAX is INVALID_ARGUMENT at open and nothing is made (its checkpoints, compact() and close() had failed with ENAMETOOLONG for good); 3,900 bytes work', { skip: process.platform === 'linux' ? false : 'Linux PATH_MAX' }, async () => {
  const long = pathOfLength(4000);
  await rejectsWith(() => MemStore.open(long, { dim: 4 }), 'INVALID_ARGUMENT');
  assert.equal(existsSync(long), false);
  const fits = pathOfLength(3900);
  const s = await MemStore.open(fits, { dim: 4 });
  await s.add(Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, vector: [1, i, 0, 1], text: `t${i}` })));
  await s.compact();
  await s.close();
  const again = await MemStore.open(fits);
  assert.equal(again.stats().count, 50);
  await again.close();
});

test("filesystem: an LMDB open that fails gives IO whose cause is an Error with the errno's code (lmdb-js throws the bare number: a cause of 13)", () => {
  const cause = lmdbCause(13) as NodeJS.ErrnoException;
  assert.ok(cause instanceof Error);
  assert.equal(cause.code, 'EACCES');
  assert.equal(cause.errno, 13);
  const other = new Error('x');
  assert.equal(lmdbCause(other), other);
});

test('filesystem: with its directory removed while it is open, a durable write is IO, not acknowledged (they had been fsynced into a log nothing can find); renamed away, or reached through a link pointed elsewhere, its files are still its own: writes are acknowledged and found at the new name', async () => {
  const removed = tempDir();
  const s = await MemStore.open(removed, { dim: 4 });
  await s.add([{ id: 'before', vector: [1, 0, 0, 0] }]);
  rmSync(removed, { recursive: true });
  await rejectsWith(() => s.add([{ id: 'after', vector: [0, 1, 0, 0] }]), 'IO');
  await rejectsWith(() => s.close(), 'IO');

  const dir = tempDir();
  const moved = join(tempDir(), 'moved');
  const t = await MemStore.open(dir, { dim: 4 });
  await t.add(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, vector: [1, i, 0, 0] })));
  renameSync(dir, moved);
  await t.add([{ id: 'after-rename', vector: [0, 1, 0, 0] }]);
  // Files made by name under the old path would be another directory's: refused, as before.
  await rejectsWith(() => t.close(), 'IO');
  const reopened = await MemStore.open(moved);
  assert.equal(reopened.stats().count, 11);
  assert.notEqual(await reopened.get('after-rename'), undefined);
  await reopened.close();

  // A deploy's "current" link pointed from one release to the next (found by a review).
  const root = tempDir();
  const release1 = join(root, 'rel1');
  const release2 = join(root, 'rel2');
  const u = await MemStore.open(join(release1, 'store'), { dim: 4 });
  await u.close();
  symlinkSync(release1, join(root, 'current'));
  const v = await MemStore.open(join(root, 'current', 'store'));
  renameSync(release1, release2);
  rmSync(join(root, 'current'));
  symlinkSync(release2, join(root, 'current'));
  await v.add([{ id: 'after-switch', vector: [0, 0, 1, 0] }]);
  await v.close().catch(() => undefined);
  const w = await MemStore.open(join(release2, 'store'));
  assert.notEqual(await w.get('after-switch'), undefined);
  await w.close();
});

test("filesystem: a store whose entries are all links into one directory elsewhere, state file included (data on another disk, the lock kept here), opens, writes and reopens (the check for links into another store had refused it: that directory's state is this store's)", async () => {
  const disk = join(tempDir(), 'B');
  const s = await MemStore.open(disk, { dim: 4 });
  await s.add([{ id: 'a', vector: [1, 0, 0, 0] }]);
  await s.close();
  rmSync(lmdbLockPath(statePath(disk)));
  const farm = join(tempDir(), 'B');
  mkdirSync(farm);
  for (const entry of ['state.mdb', 'wal', 'arena', 'vectors', 'index']) symlinkSync(join(disk, entry), join(farm, entry));
  const t = await MemStore.open(farm);
  await t.add([{ id: 'b', vector: [0, 1, 0, 0] }]);
  await t.compact();
  await t.close();
  const u = await MemStore.open(farm);
  assert.deepEqual(u.ids().sort(), ['a', 'b']);
  await u.close();
});

test('filesystem: a hard-linked copy of a store (cp -al, a backup made with links) is CORRUPTION at open, the copy and the original alike, naming the shared file (the copy\'s writes had changed the original, which then opened as CORRUPTION); a real copy opens', async () => {
  const { a } = await twoStores();
  const copy = join(tempDir(), 'copy');
  const linkTree = (from: string, to: string) => {
    mkdirSync(to);
    for (const entry of readdirSync(from, { withFileTypes: true })) {
      if (entry.name === 'LOCK') continue;
      if (entry.isDirectory()) linkTree(join(from, entry.name), join(to, entry.name));
      else linkSync(join(from, entry.name), join(to, entry.name));
    }
  };
  linkTree(a, copy);
  await rejectsWith(() => MemStore.open(copy), 'CORRUPTION');
  await rejectsWith(() => MemStore.open(a), 'CORRUPTION');
  rmSync(copy, { recursive: true });
  const real = join(tempDir(), 'real');
  cpSync(a, real, { recursive: true });
  for (const dir of [a, real]) {
    const s = await MemStore.open(dir);
    assert.equal(s.stats().count, 20);
    await s.add([{ id: 'new', vector: [0, 0, 0, 1] }]);
    await s.close();
  }
});

test('filesystem: a store opens where /dev has no null device (a sandbox, a bare chroot: the descriptor count before LMDB opened /dev/null)', { skip: asRoot ? false : 'needs root for a mount namespace' }, async (t) => {
  const dir = await storeWithOne();
  const script = `const { MemStore } = await import(${JSON.stringify(index)}); const s = await MemStore.open(${JSON.stringify(dir)}); await s.add([{ id: 'b', vector: [0, 1, 0, 0] }]); console.log(s.stats().count); await s.close();`;
  let out: string;
  try {
    ({ stdout: out } = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /dev && exec "$@"', 'sh', process.execPath, '--input-type=module', '-e', script], { timeout: 30_000 }));
  } catch (e) {
    const err = e as { code?: unknown; stderr?: string };
    // No unshare(1), or no mount namespaces in this container: nothing to show here.
    if (err.code === 'ENOENT' || /unshare failed|Operation not permitted|cannot/.test(err.stderr ?? '')) {
      t.skip(`no mount namespace here: ${err.stderr ?? String(err.code)}`);
      return;
    }
    throw e;
  }
  assert.equal(out.trim(), '2');
});

test('runtime: without WebAssembly (node --jitless) open is UNSUPPORTED and makes nothing (the first store threw a plain ReferenceError, its files made)', async () => {
  const dir = join(tempDir(), 'never');
  const script = `const { MemStore, MemstoreError } = await import(${JSON.stringify(index)});
try { await MemStore.open(${JSON.stringify(dir)}, { dim: 4 }); console.log('opened'); } catch (e) { console.log(e instanceof MemstoreError ? 'MemstoreError ' + e.code : 'other ' + e?.constructor?.name); }`;
  const { stdout } = await run(process.execPath, ['--jitless', '--input-type=module', '-e', script], { timeout: 30_000 });
  assert.equal(stdout.trim(), 'MemstoreError UNSUPPORTED');
  assert.equal(existsSync(dir), false);
});

test("filesystem: a repair report or an export named through a link and then `..` lands where the kernel takes it (the link's target's parent), and is refused there inside another store's entries; a report named as a state rebuild's copy (state.mdb.compact) is refused (it was deleted by the rebuild, with the evidence it held)", async () => {
  const { a, b } = await twoStores();
  const parent = tempDir();
  const deep = join(parent, 'deep');
  mkdirSync(deep);
  // b moved under deep/, a link beside deep/ leading into it: link/../b is deep/b to the kernel.
  renameSync(b, join(deep, 'b'));
  mkdirSync(join(deep, 'a0'));
  symlinkSync(join(deep, 'a0'), join(parent, 'link'));
  // Spelt out, not join()ed: join() would take the `..` by name, as the check had.
  const sneaky = `${parent}/link/../b/wal/wal-00000000000000000999.log`;
  const repaired = await cliResult(['repair', a, '--report', sneaky]);
  assert.equal(repaired.code, 2, repaired.stderr);
  assert.match(repaired.stderr, /INVALID_ARGUMENT/);
  await rejectsWith(() => exportStore(a, `${parent}/link/../b/wal/x.jsonl`), 'INVALID_ARGUMENT');
  assert.deepEqual(readdirSync(join(deep, 'b', 'wal')).filter((f) => f.includes('999') || f.startsWith('x.')), [], 'nothing written into the other store');
  const copyNamed = await cliResult(['repair', a, '--report', join(a, 'state.mdb.compact')]);
  assert.equal(copyNamed.code, 2, copyNamed.stderr);
  assert.equal((await cliResult(['verify', join(deep, 'b')])).code, 0, 'the other store verifies');
  assert.equal((await cliResult(['verify', a])).code, 0);
});
