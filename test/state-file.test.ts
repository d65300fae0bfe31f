import assert from 'node:assert/strict';
import { cpSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { MemStore, MemstoreError } from '../src/index.js';
import { statePath } from '../src/store/files.js';
import { checkLmdbFile } from '../src/store/lmdb-file.js';
import { repairStore } from '../src/store/repair.js';
import { checkStore } from '../src/store/verify.js';
import { clustered, rejectsWith, tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

// What lmdb-file.ts reads of an LMDB data file: 16 KiB pages (the store's), a meta on each of the
// first two, its last page in use at byte 144 and the main tree's root at byte 136 of each.
const PAGE = 16384;
const LAST_PAGE_AT = 144;
const MAIN_ROOT_AT = 136;
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

test('state file: a state.mdb cut short (half, a page short, a few bytes short, inside its second meta page) is CORRUPTION naming it at open, in verify and in repair; LMDB had killed the process with SIGBUS', async () => {
  const size = statSync(statePath(await store())).size;
  for (const cut of [Math.floor(size / 2 / PAGE) * PAGE, size - PAGE, size - 10, PAGE + 100]) {
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

test("state file: a main tree's root past the end of the file is CORRUPTION, whatever its last page says", async () => {
  const dir = await store();
  patchMetas(dir, MAIN_ROOT_AT, () => 1n << 40n);
  assert.equal(checkLmdbFile(statePath(dir)).kind, 'truncated');
  await refusedEverywhere(dir);
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
