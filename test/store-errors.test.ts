import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { nodeFileLayer, type FileLayer } from '../io/file-layer.js';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { open as openLmdb } from 'lmdb';
import { MemStore, MemstoreError } from '../src/index.js';
import { lockPath, statePath } from '../src/store/files.js';
import { clustered, rejectsWith, tempDir } from './helpers.js';

const DIM = 16;
const vecs = clustered(10, DIM, 3);
const rec = (i: number) => ({ id: `r${i}`, vector: vecs[i]!, text: `t${i}` });

async function fresh(options: Parameters<typeof MemStore.open>[1] = {}): Promise<{ dir: string; store: MemStore }> {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, durability: 'none', ...options });
  return { dir, store };
}

test('errors carry a stable code, a message and the cause', async () => {
  const e = new MemstoreError('IO', 'boom', { cause: new Error('inner') });
  assert.equal(e.code, 'IO');
  assert.equal(e.name, 'MemstoreError');
  assert.ok(e instanceof Error);
  assert.equal((e.cause as Error).message, 'inner');
});

test('instanceof MemstoreError holds for the errors of any copy of the class marked as memstore marks them (another copy of memstore in the process), and not for other errors, even with a code', () => {
  assert.ok(new MemstoreError('LOCKED', 'held') instanceof MemstoreError);
  class OtherCopy extends Error {}
  Object.defineProperty(OtherCopy.prototype, Symbol.for('memstore.MemstoreError'), { value: true });
  assert.ok(new OtherCopy('held') instanceof MemstoreError);
  assert.equal(Object.assign(new Error('held'), { code: 'LOCKED' }) instanceof MemstoreError, false);
  assert.equal((null as unknown as object) instanceof MemstoreError, false);
  assert.equal(({ code: 'LOCKED' } as unknown) instanceof MemstoreError, false);
  assert.ok(new MemstoreError('IO', 'x') instanceof Error, 'still an Error');
  // A user's subclass keeps the ordinary test: every memstore error had been an instance of it.
  class AppStoreError extends MemstoreError {}
  assert.equal(new MemstoreError('IO', 'x') instanceof AppStoreError, false);
  assert.ok(new AppStoreError('IO', 'x') instanceof AppStoreError);
  assert.ok(new AppStoreError('IO', 'x') instanceof MemstoreError);
});

test('under a virtual memory limit too small for WebAssembly memory (ulimit -v), open is UNSUPPORTED, and makes nothing (it was a bare RangeError)', { skip: process.platform === 'win32' ? 'ulimit' : false }, async () => {
  const dir = join(tempDir(), 'store');
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  const script = `const { MemStore } = await import(${JSON.stringify(index)}); try { await MemStore.open(${JSON.stringify(dir)}, { dim: 4 }); console.log('opened'); } catch (e) { console.log(e.code); }`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile('bash', ['-c', `ulimit -v 4000000 && exec "$0" --input-type=module -e "$1"`, process.execPath, script], (e, stdout) => (e === null ? resolve(stdout.trim()) : reject(e)));
  });
  assert.equal(out, 'UNSUPPORTED');
  assert.equal(existsSync(dir), false, 'nothing made');
});

test('a relative directory when the working directory is gone (deleted after the process moved into it) is IO, not Node\'s own ENOENT from uv_cwd', { skip: process.platform === 'win32' ? 'a working directory cannot be removed there' : false }, async () => {
  const gone = join(tempDir(), 'gone');
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  const script = `import { mkdirSync, rmdirSync } from 'node:fs'; const { MemStore } = await import(${JSON.stringify(index)}); mkdirSync(${JSON.stringify(gone)}); process.chdir(${JSON.stringify(gone)}); rmdirSync(${JSON.stringify(gone)}); try { await MemStore.open('rel', { dim: 4 }); console.log('opened'); } catch (e) { console.log(e.code); }`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], (e, stdout) => (e === null ? resolve(stdout.trim()) : reject(e)));
  });
  assert.equal(out, 'IO');
});

/** The real file system, but its first open of a log file fails as when the process is out of file descriptors. */
function logFailingOnce(): FileLayer {
  let failures = 1;
  return {
    ...nodeFileLayer,
    open: (path, mode) => {
      if (path.includes(`${sep}wal${sep}`) && failures-- > 0) return Promise.reject(Object.assign(new Error('too many open files'), { code: 'EMFILE' }));
      return nodeFileLayer.open(path, mode);
    },
  };
}

test('a creating open that fails after the configuration is written (out of file descriptors making the log) leaves no options behind: an open with other options creates the store with those; once an open succeeded, its options hold (DIM_MISMATCH)', async () => {
  const dir = tempDir();
  const files = logFailingOnce();
  await rejectsWith(() => MemStore.open(dir, { dim: 32, codec: 'rq2', files }), 'IO');
  const store = await MemStore.open(dir, { dim: 8, codec: 'int8', files });
  assert.equal(store.stats().dim, 8);
  assert.equal(store.stats().codec, 'int8');
  await store.add([{ id: 'a', vector: new Float32Array(8).fill(1) }]);
  await store.close();
  await rejectsWith(() => MemStore.open(dir, { dim: 16 }), 'DIM_MISMATCH');
  const again = await MemStore.open(dir, {});
  assert.equal(again.stats().count, 1);
  await again.close();
});

test('a creation that failed, reopened without a dim, keeps the options it was made with, and they hold from then on', async () => {
  const dir = tempDir();
  const files = logFailingOnce();
  await rejectsWith(() => MemStore.open(dir, { dim: 12, files }), 'IO');
  const store = await MemStore.open(dir, { files });
  assert.equal(store.stats().dim, 12);
  await store.close();
  await rejectsWith(() => MemStore.open(dir, { dim: 16 }), 'DIM_MISMATCH');
});

test('DIM_MISMATCH: reopening with another dim, and vectors of the wrong length', async () => {
  const { dir, store } = await fresh();
  await rejectsWith(() => store.add([{ id: 'a', vector: new Float32Array(DIM + 1) }]), 'DIM_MISMATCH');
  await rejectsWith(() => store.search(new Float32Array(DIM - 1)), 'DIM_MISMATCH');
  await store.close();
  await rejectsWith(() => MemStore.open(dir, { dim: DIM * 2 }), 'DIM_MISMATCH');
  const reopened = await MemStore.open(dir);
  assert.equal(reopened.stats().dim, DIM);
  await reopened.close();
});

test('INVALID_VECTOR: NaN, Infinity, float32 overflow, non-numbers, wrong container', async () => {
  const { store } = await fresh();
  const bad: unknown[] = [
    Float32Array.from({ length: DIM }, (_, i) => (i === 3 ? NaN : 1)),
    Array.from({ length: DIM }, (_, i) => (i === 0 ? Infinity : 1)),
    Array.from({ length: DIM }, (_, i) => (i === 0 ? 1e39 : 1)),
    Array.from({ length: DIM }, (_, i) => (i === 0 ? '1' : 1)),
    new Float64Array(DIM),
    'vector',
    undefined,
  ];
  for (const vector of bad) {
    await rejectsWith(() => store.add([{ id: 'x', vector: vector as Float32Array }]), 'INVALID_VECTOR');
    await rejectsWith(() => store.search(vector as Float32Array), 'INVALID_VECTOR');
  }
  assert.equal(store.stats().count, 0);
  await store.close();
});

test('INVALID_ID: empty or non-string ids in add, get and delete', async () => {
  const { store } = await fresh();
  for (const id of ['', 7, undefined, null, {}]) {
    await rejectsWith(() => store.add([{ id: id as string, vector: vecs[0]! }]), 'INVALID_ID');
    await rejectsWith(() => store.get(id as string), 'INVALID_ID');
    await rejectsWith(() => store.delete([id as string]), 'INVALID_ID');
  }
  await store.close();
});

test('INVALID_ARGUMENT: malformed records, texts, metadata and filters', async () => {
  const { store } = await fresh();
  await rejectsWith(() => store.add('nope' as never), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.add([null as never]), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.add([{ ...rec(0), text: 5 as never }]), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.add([{ ...rec(0), meta: ['a'] as never }]), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.add([{ ...rec(0), meta: new Date() as never }]), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.delete('r0' as never), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.search(vecs[0]!, { filter: { a: { $gt: 1 } } as never }), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.search(vecs[0]!, { filter: { a: [1] } as never }), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.search(vecs[0]!, { filter: 'a' as never }), 'INVALID_ARGUMENT');
  await rejectsWith(() => MemStore.open('', { dim: DIM }), 'INVALID_ARGUMENT');
  await store.close();
});

test('a batch with one bad record applies none of it', async () => {
  const { store } = await fresh();
  await store.add([rec(0)]);
  const batch = [rec(1), rec(2), { id: 'bad', vector: new Float32Array(DIM).fill(NaN) }, rec(3)];
  await rejectsWith(() => store.add(batch), 'INVALID_VECTOR');
  await rejectsWith(() => store.add([rec(4), { id: '', vector: vecs[5]! }]), 'INVALID_ID');
  assert.equal(store.stats().count, 1);
  for (const id of ['r1', 'r2', 'r3', 'r4']) assert.equal(await store.get(id), undefined);
  await store.close();
});

test('INVALID_OPTION: bad values, unknown keys, missing dim, impossible PCA', async () => {
  const dir = tempDir();
  const bad: unknown[] = [
    {},
    { dim: 0 },
    { dim: 1.5 },
    { dim: DIM, codec: 'int4' },
    { dim: DIM, metric: 'hamming' },
    { dim: DIM, pca: { dims: DIM + 1 } },
    { dim: DIM, pca: { variance: 1.5 } },
    { dim: DIM, pca: { dims: 4, variance: 0.9 } },
    { dim: DIM, durability: 'sometimes' },
    { dim: DIM, cache: { threshold: 2 } },
    { dim: DIM, trainSize: -1 },
    { dim: DIM, rescore: 'yes' },
    { dim: DIM, colour: 'blue' },
  ];
  for (const options of bad) await rejectsWith(() => MemStore.open(dir, options as never), 'INVALID_OPTION');

  const { store } = await fresh();
  await rejectsWith(() => store.search(vecs[0]!, { k: 0 }), 'INVALID_OPTION');
  await rejectsWith(() => store.search(vecs[0]!, { nprobe: -2 }), 'INVALID_OPTION');
  await rejectsWith(() => store.search(vecs[0]!, { exact: 1 } as never), 'INVALID_OPTION');
  await rejectsWith(() => store.search(vecs[0]!, { kk: 1 } as never), 'INVALID_OPTION');
  await store.close();

  const { store: lean } = await fresh({ rescore: false });
  await lean.add([rec(0)]);
  await rejectsWith(() => lean.search(vecs[0]!, { rescore: true }), 'INVALID_OPTION');
  await lean.close();
});

test('OPTION_MISMATCH: reopening with a contradicting stored form', async () => {
  const { dir, store } = await fresh({ codec: 'fp8-e4m3', metric: 'dot', pca: { dims: 8 }, rescore: false, trainSize: 5 });
  await store.close();
  const contradictions: unknown[] = [
    { codec: 'int8' },
    { metric: 'cosine' },
    { pca: { dims: 4 } },
    { pca: { variance: 0.9 } },
    { rescore: true },
    { trainSize: 6 },
  ];
  for (const options of contradictions) await rejectsWith(() => MemStore.open(dir, options as never), 'OPTION_MISMATCH');
  const same = await MemStore.open(dir, { dim: DIM, codec: 'fp8-e4m3', metric: 'dot', pca: { dims: 8 }, rescore: false });
  assert.equal(same.stats().codec, 'fp8-e4m3');
  await same.close();
});

test('CLOSED: every operation after close, and close is idempotent', async () => {
  const { store } = await fresh();
  await store.add([rec(0)]);
  await store.close();
  await store.close();
  await rejectsWith(() => store.add([rec(1)]), 'CLOSED');
  await rejectsWith(() => store.search(vecs[0]!), 'CLOSED');
  await rejectsWith(() => store.get('r0'), 'CLOSED');
  await rejectsWith(() => store.delete(['r0']), 'CLOSED');
  await rejectsWith(() => store.stats(), 'CLOSED');
});

test('writes issued before close are completed by close', async () => {
  const { dir, store } = await fresh();
  const pending = store.add([rec(0), rec(1)]);
  const closing = store.close();
  await pending;
  await closing;
  const again = await MemStore.open(dir);
  assert.equal(again.stats().count, 2);
  await again.close();
});

test('LOCKED: a second open in this process, and in another live process', async () => {
  const { dir, store } = await fresh();
  await rejectsWith(() => MemStore.open(dir), 'LOCKED');
  await store.close();

  const holder = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(lockPath(dir))}, process.pid + '\\n'); setTimeout(() => {}, 60000); console.log('ready')`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    await rejectsWith(() => MemStore.open(dir), 'LOCKED');
  } finally {
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
  }
  // The holder died without releasing: its lock is stale and is taken over.
  const again = await MemStore.open(dir);
  assert.equal(again.stats().count, 0);
  await again.close();
});

test('LOCKED under a race: of several processes opening at once, over a stale lock or none, never two hold the store at once', async () => {
  const { dir, store } = await fresh();
  await store.close();
  const child = fileURLToPath(new URL('./support/lock-child.js', import.meta.url));
  for (let trial = 0; trial < 6; trial++) {
    if (trial % 2 === 0) writeFileSync(lockPath(dir), '999999999\n');
    const start = Date.now() + 700;
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () => new Promise<string>((resolve) => {
        execFile(process.execPath, [child, dir, String(start), '300'], (_e, stdout) => resolve(stdout.trim()));
      })),
    );
    assert.ok(outcomes.every((o) => o.startsWith('opened ') || o === 'LOCKED'), outcomes.join(', '));
    // Each holder's interval lies inside the time it really held the lock, so two that overlap were two writers at once.
    // (On a loaded machine a child may start after the first one closed and open the store in turn: that is no race.)
    const held = outcomes.filter((o) => o.startsWith('opened ')).map((o) => o.split(' ').slice(1).map(Number) as [number, number]).sort((a, b) => a[0] - b[0]);
    assert.ok(held.length >= 1, `trial ${trial}: nobody opened the store: ${outcomes.join(', ')}`);
    for (let i = 1; i < held.length; i++) assert.ok(held[i]![0] > held[i - 1]![1], `trial ${trial}: two holders at once: ${outcomes.join(', ')}`);
  }
});

test('a lock file left by a dead process does not brick the store', async () => {
  const dir = tempDir();
  writeFileSync(lockPath(dir), '999999999\n');
  const store = await MemStore.open(dir, { dim: DIM });
  await store.add([rec(0)]);
  await store.close();
});

test('CORRUPTION: a malformed document costs its record, an unreadable configuration the store', async () => {
  const { dir, store } = await fresh();
  await store.add([rec(0), rec(1)]);
  await store.close();

  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  const docs = env.openDB({ name: 'docs', encoding: 'binary', keyEncoding: 'binary' });
  await docs.put(Buffer.from('r1'), Buffer.from([1, 2, 3]));
  await env.close();
  const damaged = await MemStore.open(dir);
  const caught = await damaged.get('r1').then(() => undefined, (e: unknown) => e);
  assert.ok(caught instanceof MemstoreError);
  assert.equal(caught.code, 'CORRUPTION');
  assert.equal(caught.id, 'r1');
  assert.equal(caught.file, statePath(dir));
  assert.equal(caught.offset, 'docs/r1');
  assert.equal(damaged.stats().count, 1);
  assert.equal(damaged.stats().damaged, 1);
  assert.equal((await damaged.get('r0'))?.text, 't0');
  assert.ok((await damaged.search(vecs[1]!, { k: 10 })).every((h) => h.id !== 'r1'), 'searches skip the damaged record');
  await damaged.close();

  const env2 = openLmdb({ path: statePath(dir), maxDbs: 8 });
  const config = env2.openDB({ name: 'config', encoding: 'msgpack' });
  await config.put('config', 'garbage');
  await env2.close();
  await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
});

test('IO: a directory that cannot be created', async () => {
  const dir = tempDir();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  await rejectsWith(() => MemStore.open(join(file, 'store'), { dim: DIM }), 'IO');
});
