import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemStore } from '../src/index.js';
import { cliResult } from './support/cli.js';
import { onTmpfs, remountReadOnly } from './support/tmpfs.js';

/**
 * A store on read-only media (a snapshot, a read-only volume): `memstore verify` and `inspect` look
 * at it without the directory lock, whose file cannot be made there (they failed with IO EROFS),
 * and with LMDB opened read-only. Mounting needs root; elsewhere these tests are skipped.
 */

async function storeOf(dir: string): Promise<void> {
  const store = await MemStore.open(dir, { dim: 8 });
  await store.add(Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: 8 }, (_, j) => Math.sin(i + j * 0.7)), text: `text of record ${i}`, meta: { i } })));
  await store.close();
}

test('read-only media: verify finds nothing wrong and inspect reports the records, where both failed with IO (EROFS) taking the lock', async (t) => {
  const mounted = await onTmpfs(16, async (mnt) => {
    const dir = join(mnt, 'store');
    await storeOf(dir);
    const before = readdirSync(dir).sort();
    remountReadOnly(mnt);
    const verify = await cliResult(['verify', dir]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /^ok$/m);
    const inspect = await cliResult(['inspect', dir]);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal((JSON.parse(inspect.stdout) as { state: { records: number } }).state.records, 40);
    assert.deepEqual(readdirSync(dir).sort(), before);
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});

test('read-only media: verify names a damaged text (exit 1), as on a writable disk', async (t) => {
  const mounted = await onTmpfs(16, async (mnt) => {
    const dir = join(mnt, 'store');
    await storeOf(dir);
    const [segment] = readdirSync(join(dir, 'arena'));
    const path = join(dir, 'arena', segment!);
    const bytes = readFileSync(path);
    const at = bytes.indexOf(Buffer.from('text of record 7'));
    bytes[at + 3]! ^= 0x01;
    writeFileSync(path, bytes);
    remountReadOnly(mnt);
    const verify = await cliResult(['verify', dir]);
    assert.equal(verify.code, 1, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /CORRUPTION .*\(record "r7"\)/);
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});

test('read-only media: a store whose compact() was cut mid-commit (a redo record pending) reads as that commit decided', async (t) => {
  const child = fileURLToPath(new URL('./support/cut-commit-child.js', import.meta.url));
  const mounted = await onTmpfs(16, async (mnt) => {
    const dir = join(mnt, 'store');
    const run = spawnSync(process.execPath, [child, dir, '5', '0.5'], { encoding: 'utf8' });
    assert.equal(run.signal, 'SIGKILL', run.stderr);
    remountReadOnly(mnt);
    const verify = await cliResult(['verify', dir]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^ok$/m);
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});
