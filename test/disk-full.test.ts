import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemStore } from '../src/index.js';
import { lockPath } from '../src/store/files.js';
import { cliResult } from './support/cli.js';
import { onTmpfs } from './support/tmpfs.js';

/**
 * A real full disk: a small tmpfs, filled but for a few KiB. Mounting needs root; elsewhere these
 * tests are skipped (the rules behind them have tests of their own through the fault layer and
 * `refuseFullDisk`, state-file.test.ts). Each step that once crashed the process runs in a child.
 */

const index = fileURLToPath(new URL('../src/index.js', import.meta.url));

/** Fills the file system of `mnt` but for `freeKiB`, with one file; returns a function that frees it. */
function fill(mnt: string, freeKiB: number): () => void {
  const filler = join(mnt, 'filler');
  const avail = Number(execFileSync('df', ['-B1', '--output=avail', mnt]).toString().trim().split('\n').pop());
  execFileSync('fallocate', ['-l', String(Math.max(0, avail - freeKiB * 1024)), filler]);
  return () => rmSync(filler, { force: true });
}

/** Runs `source` (an ES module body with MemStore and isMemstoreError in scope) in a child; its stdout and how it ended. */
function child(source: string): { stdout: string; signal: NodeJS.Signals | null; status: number | null } {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', `import { MemStore, isMemstoreError } from ${JSON.stringify(index)};\n${source}`], { encoding: 'utf8', timeout: 60_000 });
  return { stdout: run.stdout, signal: run.signal, status: run.status };
}

test('disk full (tmpfs): creating a store with a few KiB free is IO, not a crash in LMDB, and opens once space is back', async (t) => {
  const mounted = await onTmpfs(2, async (mnt) => {
    for (const freeKiB of [0, 16, 48]) {
      const dir = join(mnt, `s${freeKiB}`);
      mkdirSync(dir);
      const free = fill(mnt, freeKiB);
      const r = child(`try { await MemStore.open(${JSON.stringify(dir)}, { dim: 4 }); console.log('opened'); } catch (e) { console.log(isMemstoreError(e) ? e.code : 'raw ' + e); }`);
      free();
      assert.equal(r.signal, null, `${freeKiB} KiB free: the process died`);
      assert.equal(r.stdout.trim(), 'IO', `${freeKiB} KiB free`);
      const store = await MemStore.open(dir, { dim: 4 });
      await store.add([{ id: 'a', vector: [1, 2, 3, 4] }]);
      await store.close();
    }
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});

test('disk full (tmpfs): compact() and repair with little room are IO, every record kept, verify ok once space is back', async (t) => {
  const mounted = await onTmpfs(4, async (mnt) => {
    const dir = join(mnt, 'store');
    const store = await MemStore.open(dir, { dim: 8 });
    await store.add(Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: 8 }, (_, d) => Math.cos(i + d)), text: `t${i}` })));
    await store.delete(['r0']);
    await store.close();
    const free = fill(mnt, 56);
    const r = child(`const s = await MemStore.open(${JSON.stringify(dir)}); try { await s.compact(); console.log('compacted'); } catch (e) { console.log(isMemstoreError(e) ? e.code : 'raw ' + e); } await s.close().catch(() => {});`);
    const repair = await cliResult(['repair', dir]);
    free();
    assert.equal(r.signal, null, 'compact: the process died');
    assert.match(r.stdout.trim(), /^(IO|compacted)$/);
    assert.notEqual(repair.code, null, 'repair: the process died');
    assert.equal((await cliResult(['verify', dir])).code, 0);
    const again = await MemStore.open(dir);
    assert.equal(again.stats().count, 49);
    assert.equal((await again.get('r7'))?.text, 't7');
    await again.close();
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});

test('disk full (tmpfs): import with no room is IO and leaves the directory empty; verify taking over a stale lock on a full disk is IO', async (t) => {
  const mounted = await onTmpfs(2, async (mnt) => {
    const file = join(mnt, 'in.jsonl');
    writeFileSync(file, `${JSON.stringify({ id: 'a', vector: [1, 0, 0, 0] })}\n`);
    const dir = join(mnt, 'imported');
    mkdirSync(dir);
    let free = fill(mnt, 0);
    const imported = await cliResult(['import', file, dir]);
    free();
    assert.equal(imported.code, 2);
    assert.match(imported.stderr, /IO/);
    assert.deepEqual(readdirSync(dir), []);
    // A store whose lock names a dead process: verify takes it over, which writes a file.
    const store = await MemStore.open(join(mnt, 'locked'), { dim: 4 });
    await store.add([{ id: 'a', vector: [1, 0, 0, 0] }]);
    await store.close();
    writeFileSync(lockPath(join(mnt, 'locked')), '999999999\nstale\n');
    free = fill(mnt, 0);
    const verify = await cliResult(['verify', join(mnt, 'locked')]);
    free();
    assert.match(verify.stderr, /IO/, verify.stderr);
    assert.equal((await cliResult(['verify', join(mnt, 'locked')])).code, 0);
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});
