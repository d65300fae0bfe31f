import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HotVectors } from '../src/cache/hot-vectors.js';

const DIM = 8;
const vec = (seed: number) => Float32Array.from({ length: DIM }, (_, i) => seed * 10 + i);
/** A budget of `n` rows. */
const rows = (n: number) => n * HotVectors.rowBytes(DIM);

test('hot vectors: view returns what was put, with its norm; drop and clear forget', () => {
  const hot = new HotVectors(DIM, rows(100));
  hot.put(1, vec(1), 2.5);
  hot.put(2, vec(2), undefined);
  const a = hot.view(1)!;
  assert.deepEqual(a.full, vec(1));
  assert.equal(a.norm, 2.5);
  assert.equal(hot.view(2)!.norm, undefined);
  hot.put(1, vec(3), 1);
  assert.deepEqual(hot.view(1)!.full, vec(3), 'a second put replaces');
  assert.equal(hot.drop(1), true);
  assert.equal(hot.drop(1), false);
  assert.equal(hot.view(1), undefined);
  assert.deepEqual(hot.view(2)!.full, vec(2), 'the other row is intact');
  hot.clear();
  assert.equal(hot.size, 0);
  assert.equal(hot.view(2), undefined);
});

test('hot vectors: a full slab evicts an unused row (clock) and never exceeds its capacity or its bytes', () => {
  const hot = new HotVectors(DIM, rows(10));
  assert.equal(hot.capacity, 10);
  for (let i = 0; i < 10; i++) hot.put(i, vec(i), i);
  for (let i = 0; i < 5; i++) hot.view(i);
  hot.put(99, vec(99), 0);
  assert.equal(hot.size, 10);
  assert.equal(hot.evictions, 1);
  assert.deepEqual(hot.view(99)!.full, vec(99));
  // The clock passes the used rows first (clearing their bits), so an unused one went.
  assert.ok([5, 6, 7, 8, 9].some((i) => hot.view(i) === undefined));
  assert.ok(new HotVectors(DIM, HotVectors.rowBytes(DIM) - 1).capacity === 0);
});

test('hot vectors: a row just put survives the next evictions (the clock gives it a pass, as it does to a row read)', () => {
  const hot = new HotVectors(DIM, rows(10));
  for (let i = 0; i < 10; i++) hot.put(i, vec(i), i);
  for (let i = 10; i < 15; i++) hot.put(i, vec(i), i);
  for (let i = 10; i < 15; i++) assert.ok(hot.view(i) !== undefined, `v${i}, put among the last five, is still there`);
  assert.equal(hot.evictions, 5);
});

test('hot vectors: random puts, gets and drops agree with a Map bounded by the capacity', () => {
  const op = fc.record({ kind: fc.constantFrom('put', 'get', 'drop'), id: fc.integer({ min: 0, max: 30 }) });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const hot = new HotVectors(DIM, rows(12));
      const model = new Map<number, number>();
      for (const { kind, id } of ops) {
        if (kind === 'put') {
          hot.put(id, vec(id), id);
          model.set(id, id);
        } else if (kind === 'drop') {
          hot.drop(id);
          model.delete(id);
        } else {
          const got = hot.view(id);
          // Evicted or present: present means exactly what was put.
          if (got !== undefined) {
            assert.ok(model.has(id));
            assert.deepEqual(got.full, vec(id));
            assert.equal(got.norm, id);
          }
        }
        assert.ok(hot.size <= hot.capacity);
      }
    }),
    { numRuns: 200 },
  );
});

test('hot vectors: the bytes held never pass the budget, whatever is put and dropped', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 200 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 200 }), (ops, n, spare) => {
      const budget = rows(n) + (spare % HotVectors.rowBytes(DIM));
      const hot = new HotVectors(DIM, budget);
      assert.equal(hot.capacity, n);
      for (const [put, slot] of ops) {
        if (put) hot.put(slot, vec(slot), slot);
        else hot.drop(slot);
        assert.ok(hot.bytes <= budget, `${hot.bytes} B held of ${budget}`);
      }
    }),
    { numRuns: 200 },
  );
});

test('hot vectors: slots follow the index through removals (the last vector moves into the hole) and writes drop by slot; a stale row never answers for a slot', () => {
  const dim = 4;
  const op = fc.record({ kind: fc.constantFrom('add', 'put', 'remove', 'rewrite', 'view'), n: fc.integer({ min: 0, max: 40 }) });
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10 }), fc.array(op, { maxLength: 200 }), (rowCount, ops) => {
      const hot = new HotVectors(dim, rowCount * HotVectors.rowBytes(dim));
      // The index: the id and its version in each slot, removals swapping the last one into the hole.
      const slots: { id: number; version: number }[] = [];
      const vectorOf = (r: { id: number; version: number }) => Float32Array.from({ length: dim }, (_, i) => r.id * 1000 + r.version * 10 + i);
      let next = 0;
      for (const { kind, n } of ops) {
        if (kind === 'add') {
          slots.push({ id: next++, version: 0 });
        } else if (kind === 'put' && slots.length > 0) {
          const slot = n % slots.length;
          hot.put(slot, vectorOf(slots[slot]!), slot);
        } else if (kind === 'remove' && slots.length > 0) {
          const hole = n % slots.length;
          const last = slots.length - 1;
          slots[hole] = slots[last]!;
          slots.pop();
          hot.moved(hole, last);
        } else if (kind === 'rewrite' && slots.length > 0) {
          // An upsert keeps the id's slot with a new vector: the write drops the slot's row.
          const slot = n % slots.length;
          slots[slot] = { id: slots[slot]!.id, version: slots[slot]!.version + 1 };
          hot.drop(slot);
        }
        for (let slot = 0; slot < 45; slot++) {
          const got = hot.view(slot);
          if (got === undefined) continue;
          assert.ok(slot < slots.length, `slot ${slot} is past the end`);
          assert.deepEqual(got.full, vectorOf(slots[slot]!), `slot ${slot} answers for its latest vector`);
        }
        assert.ok(hot.size <= hot.capacity);
      }
    }),
    { numRuns: 300, seed: 5 },
  );
});
