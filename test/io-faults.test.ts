import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FaultFileLayer } from './support/fault-layer.js';
import { MemStore, isMemstoreError } from '../src/index.js';
import { clustered, tempDir } from './helpers.js';

const DIM = 16;
const v = clustered(20, DIM, 5);
const rec = (i: number) => ({ id: `r${i}`, vector: v[i]!, text: `text ${i}` });

for (const [what, inject] of [
  ['ENOSPC on a log write', (d: FaultFileLayer) => d.failNextWrites(1, 'ENOSPC')],
  ['EIO on a log fsync', (d: FaultFileLayer) => d.failNextSyncs(1, 'EIO')],
] as const) {
  test(`${what}: the add rejects with IO and its cause, the store stays usable, nothing half-applied`, async () => {
    const dir = tempDir();
    const disk = new FaultFileLayer({ seed: 3 });
    const first = await MemStore.open(dir, { dim: DIM, files: disk, cache: false });
    await first.add([{ id: 'r0', vector: v[0]! }]);
    // Closed and reopened: nothing is left for the arenas to write in the background, so the next write is the log's.
    await first.close();
    const store = await MemStore.open(dir, { files: disk, cache: false });
    inject(disk);
    let caught: unknown;
    await store.add([rec(1), rec(2)]).catch((e: unknown) => (caught = e));
    assert.ok(isMemstoreError(caught, 'IO'), `rejected with ${String(caught)}`);
    assert.ok(['ENOSPC', 'EIO'].includes(((caught as Error).cause as { cause?: { code?: string } })?.cause?.code ?? ''), 'the system error is kept as the cause');
    assert.equal(store.stats().count, 1);
    assert.equal(await store.get('r1'), undefined);

    await store.add([rec(3)]);
    assert.equal((await store.get('r3'))?.text, 'text 3');
    assert.equal((await store.search(v[3]!, { k: 1 }))[0]?.id, 'r3');
    await store.close();

    const again = await MemStore.open(dir, { files: disk, cache: false });
    assert.equal(again.stats().count, 2);
    assert.equal(await again.get('r1'), undefined);
    assert.equal(await again.get('r2'), undefined);
    assert.equal((await again.get('r3'))?.text, 'text 3');
    await again.close();
  });
}

test('a failing checkpoint keeps every write readable and is retried at close', async () => {
  const dir = tempDir();
  const disk = new FaultFileLayer({ seed: 4 });
  const store = await MemStore.open(dir, { dim: DIM, files: disk, cache: false, checkpointBytes: 1 });
  disk.failNextSyncs(3, 'EIO');
  const warnings: unknown[] = [];
  const onWarning = (w: unknown) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    for (let i = 0; i < 10; i++) await store.add([rec(i)]).catch(() => undefined);
    for (let i = 0; i < 10; i++) {
      const r = await store.get(`r${i}`);
      if (r !== undefined) assert.equal(r.text, `text ${i}`);
    }
    const count = store.stats().count;
    await store.close();
    const again = await MemStore.open(dir, { files: disk, cache: false });
    assert.equal(again.stats().count, count);
    await again.close();
  } finally {
    process.off('warning', onWarning);
  }
});

test('a file layer that reads only asynchronously: rescored answers equal the node layer\'s, cache on and off, with writes racing', async () => {
  const vectors = clustered(300, DIM, 9);
  const records = vectors.map((vector, i) => ({ id: `r${i}`, vector, text: `text ${i}` }));
  const answer = (hits: { id: string; score: number }[]) => hits.map((h) => [h.id, h.score]);
  for (const cache of [false, undefined] as const) {
    const disk = new FaultFileLayer({ seed: 5 });
    const options = { dim: DIM, trainSize: 64, ...(cache === false ? { cache } : {}) };
    const dir = tempDir();
    const first = await MemStore.open(dir, { ...options, files: disk });
    await first.add(records);
    // Reopened: the vectors are in files now, not in the arena's write buffer, so each read waits.
    await first.close();
    const a = await MemStore.open(dir, { ...options, files: disk });
    const b = await MemStore.open(tempDir(), { ...options, cache: false });
    try {
      await b.add(records);
      for (const [i, q] of vectors.slice(0, 40).entries()) {
        const before = answer(await b.search(q, { k: 5 }));
        await b.add([{ id: `moving${i}`, vector: q }]);
        const after = answer(await b.search(q, { k: 5 }));
        // The write lands while the search waits for its reads: it answers as the store was before or after, never a mix.
        const [raced] = await Promise.all([a.search(q, { k: 5 }), a.add([{ id: `moving${i}`, vector: q }])]);
        const got = answer(raced);
        assert.ok(JSON.stringify(got) === JSON.stringify(before) || JSON.stringify(got) === JSON.stringify(after), `query ${i}: ${JSON.stringify(got)}`);
        assert.deepEqual(answer(await a.search(q, { k: 5 })), after, `query ${i}, after the write`);
      }
    } finally {
      await a.close();
      await b.close();
    }
  }
});

test('compact() meeting ENOSPC at any of its writes rejects with a MemstoreError (IO), keeps every record, and the store goes on (a full disk had surfaced as Node\'s own ENOSPC from the index file)', async () => {
  const codes = new Set<string>();
  for (let skip = 0; skip < 12; skip++) {
    const dir = tempDir();
    const disk = new FaultFileLayer({ seed: 5 + skip });
    const store = await MemStore.open(dir, { dim: DIM, files: disk, cache: false, pages: { from: 8, maxPage: 16 } });
    for (let i = 0; i < 20; i++) await store.add([rec(i)]);
    await store.delete(['r0', 'r1']);
    // The skip-th write of the compaction fails (writes before it land).
    let failed: unknown;
    const original = disk.writeTo.bind(disk);
    let seen = 0;
    disk.writeTo = (...args: Parameters<FaultFileLayer['writeTo']>) => {
      if (seen++ === skip) disk.failNextWrites(1, 'ENOSPC');
      original(...args);
    };
    await store.compact().catch((e: unknown) => (failed = e));
    disk.writeTo = original;
    if (failed !== undefined) {
      assert.ok(isMemstoreError(failed), `skip ${skip}: rejected with ${String(failed)}`);
      codes.add((failed as { code: string }).code);
    }
    assert.equal(store.stats().count, 18, `skip ${skip}`);
    for (let i = 2; i < 20; i++) assert.equal((await store.get(`r${i}`))?.text, `text ${i}`, `skip ${skip}: r${i}`);
    await store.add([{ id: 'after', vector: v[0]! }]);
    await store.close();
    const again = await MemStore.open(dir, { files: disk, cache: false });
    assert.equal(again.stats().count, 19, `skip ${skip} reopened`);
    await again.close();
  }
  assert.ok(codes.has('IO'), `some compaction met the failure: ${[...codes].join(', ')}`);
});
