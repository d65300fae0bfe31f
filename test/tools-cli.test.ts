import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isMemstoreError, MemStore } from '../src/index.js';
import { repairStore } from '../src/store/repair.js';
import { clustered, damageText, tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

const DIM = 16;
const v = clustered(40, DIM, 12);

async function makeStore(): Promise<string> {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, cache: false });
  for (let i = 0; i < 40; i++) await store.add([{ id: `r${i}`, vector: v[i]!, text: `the text of record ${i}`, meta: { i } }]);
  await store.close();
  return dir;
}

test('memstore verify exits 0 on a sound store and 1 naming file and offset on a damaged one', async () => {
  const dir = await makeStore();
  const ok = await cliResult(['verify', dir]);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /^ok$/m);

  const arena = damageText(dir, 'record 17');
  const bad = await cliResult(['verify', dir]);
  assert.equal(bad.code, 1);
  assert.ok(bad.stdout.includes(`CORRUPTION ${arena}`), bad.stdout);
  assert.match(bad.stdout, /CORRUPTION \S+ at \d+/);
  // inspect lists the same problem and exits 1 too (it had exited 0 beside it).
  const inspected = await cliResult(['inspect', dir]);
  assert.equal(inspected.code, 1);
  assert.ok((JSON.parse(inspected.stdout) as { problems: unknown[] }).problems.length > 0);
});

test('memstore verify and inspect leave a directory without a store untouched (exit 2)', async () => {
  const empty = tempDir();
  for (const cmd of ['verify', 'inspect']) assert.equal((await cliResult([cmd, empty])).code, 2, cmd);
  assert.deepEqual(readdirSync(empty), []);
});

test('memstore verify and inspect refuse a store another process has open (LOCKED, exit 2)', async () => {
  const dir = await makeStore();
  const store = await MemStore.open(dir);
  try {
    for (const cmd of ['verify', 'inspect']) {
      const r = await cliResult([cmd, dir]);
      assert.equal(r.code, 2, cmd);
    }
  } finally {
    await store.close();
  }
  const inspected = JSON.parse((await cliResult(['inspect', dir])).stdout) as { config: { dim: number }; checkpoint: { lsn: number }; problems: unknown[] };
  assert.equal(inspected.config.dim, DIM);
  assert.equal(inspected.checkpoint.lsn, 40);
  assert.deepEqual(inspected.problems, []);
});

test('compaction makes disk use track live data: half deleted and compacted is within 1.3x of a store of that half', async () => {
  const N = 2000;
  const DIMS = 64;
  const vecs = clustered(N, DIMS, 13);
  const text = (i: number) => `record ${i}: ${'lorem ipsum dolor sit amet '.repeat(16)}`;
  const diskBytes = (s: MemStore) => s.stats().diskBytesPerVector * s.stats().count;

  const full = tempDir();
  const a = await MemStore.open(full, { dim: DIMS, durability: 'none', cache: false });
  for (let at = 0; at < N; at += 200) await a.add(vecs.slice(at, at + 200).map((vector, j) => ({ id: `r${at + j}`, vector, text: text(at + j) })));
  await a.delete(Array.from({ length: N / 2 }, (_, i) => `r${2 * i}`));
  await a.close();
  const compacted = await cliResult(['compact', full]);
  assert.equal(compacted.code, 0);
  const after = await MemStore.open(full, { cache: false });
  const compactedBytes = diskBytes(after);
  assert.equal(after.stats().count, N / 2);
  assert.equal((await after.get('r3'))?.text, text(3));
  await after.close();

  const half = tempDir();
  const b = await MemStore.open(half, { dim: DIMS, durability: 'none', cache: false });
  for (let at = 1; at < N; at += 400) {
    await b.add(Array.from({ length: 200 }, (_, j) => at + 2 * j).filter((i) => i < N).map((i) => ({ id: `r${i}`, vector: vecs[i]!, text: text(i) })));
  }
  assert.equal(b.stats().count, N / 2);
  await b.close();
  const reopened = await MemStore.open(half, { cache: false });
  const halfBytes = diskBytes(reopened);
  await reopened.close();
  assert.ok(compactedBytes <= 1.3 * halfBytes, `compacted ${compactedBytes} B vs ${halfBytes} B for a store of the live half`);
});

test('memstore compact and export of a store with a damaged record end with CORRUPTION (exit 1) naming memstore repair as what mends it (they had said nothing of what to do), and run once it has', async () => {
  const dir = await makeStore();
  damageText(dir, 'record 17');
  const out = join(tempDir(), 'x.jsonl');
  for (const args of [['export', dir, '--out', out], ['compact', dir]]) {
    const r = await cliResult(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    const last = r.stderr.trim().split('\n').at(-1)!;
    assert.ok(last.startsWith('memstore: CORRUPTION: ') && last.includes(`memstore repair ${dir}`), `${args[0]}: ${r.stderr}`);
  }
  assert.equal(existsSync(out), false);
  assert.equal((await cliResult(['repair', dir, '--report', join(tempDir(), 'report.jsonl')])).code, 0);
  for (const args of [['export', dir, '--out', out], ['compact', dir]]) assert.equal((await cliResult(args)).code, 0, args[0]);
});

test('memstore repair --report with an empty name is INVALID_ARGUMENT (exit 2; it had been IO ENOENT), the store untouched', async () => {
  const dir = await makeStore();
  const r = await cliResult(['repair', dir, '--report', '']);
  assert.equal(r.code, 2);
  assert.ok(r.stderr.trim().split('\n').at(-1)!.startsWith('memstore: INVALID_ARGUMENT: '), r.stderr);
  await assert.rejects(repairStore(dir, { report: '' }), (e: unknown) => isMemstoreError(e, 'INVALID_ARGUMENT') && e.field === 'report');
  assert.equal((await cliResult(['verify', dir])).code, 0);
});
