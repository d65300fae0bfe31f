import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { clustered, rng, tempDir } from './helpers.js';

test('many concurrent callers upserting and deleting overlapping ids end in the state of their call order', async () => {
  const dir = tempDir();
  const DIM = 16;
  const v = clustered(400, DIM, 8);
  const next = rng(5);
  const store = await MemStore.open(dir, { dim: DIM, cache: false, checkpointBytes: 16 * 1024 });
  type Op = { kind: 'add'; records: { id: string; vector: Float32Array; text: string }[] } | { kind: 'delete'; ids: string[] };
  const ops: Op[] = Array.from({ length: 300 }, (_, i): Op => {
    if (next() < 0.3) return { kind: 'delete', ids: Array.from({ length: 1 + Math.floor(next() * 4) }, () => `id-${Math.floor(next() * 40)}`) };
    return {
      kind: 'add',
      records: Array.from({ length: 1 + Math.floor(next() * 3) }, (_, j) => ({ id: `id-${Math.floor(next() * 40)}`, vector: v[(i * 3 + j) % 400]!, text: `op ${i} rec ${j}` })),
    };
  });
  // All issued in one tick, no awaits between: they share group commits and race for the same ids.
  const results = await Promise.all(ops.map((op) => (op.kind === 'add' ? store.add(op.records).then(() => -1) : store.delete(op.ids))));

  const model = new Map<string, { vector: Float32Array; text: string }>();
  ops.forEach((op, i) => {
    if (op.kind === 'add') {
      for (const r of op.records) model.set(r.id, { vector: r.vector, text: r.text });
    } else {
      const existed = new Set(op.ids.filter((id) => model.has(id))).size;
      assert.equal(results[i], existed, `delete ${i} reports what existed at its turn`);
      for (const id of op.ids) model.delete(id);
    }
  });
  const check = async (s: MemStore) => {
    assert.equal(s.stats().count, model.size);
    for (let k = 0; k < 40; k++) {
      const got = await s.get(`id-${k}`);
      const want = model.get(`id-${k}`);
      if (want === undefined) assert.equal(got, undefined);
      else {
        assert.deepEqual(Array.from(got!.vector), Array.from(want.vector));
        assert.equal(got!.text, want.text);
      }
    }
  };
  await check(store);
  await store.close();
  const again = await MemStore.open(dir, { cache: false });
  await check(again);
  await again.close();
});
