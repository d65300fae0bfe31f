import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SlotTable, type VectorPlace } from '../src/scan/slot-table.js';

test('slot table: random adds, removals, places and document flags agree with a model; every removal is logged as the move it made', () => {
  const op = fc.record({ kind: fc.constantFrom('add', 'add', 'remove', 'place', 'flag'), n: fc.nat({ max: 60 }), g: fc.nat({ max: 9 }), far: fc.boolean() });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 1, max: 8 }), (ops, chunk) => {
      const table = new SlotTable(true, chunk);
      // The model: ids in slot order, and per id its place and flag.
      const order: string[] = [];
      const places = new Map<string, VectorPlace | undefined>();
      const flags = new Map<string, boolean>();
      const epoch = table.moveEpoch();
      const logged: [number, number][] = [];
      for (const { kind, n, g, far } of ops) {
        if (kind === 'add') {
          const id = `id-${n}`;
          const { slot, added } = table.slotFor(id);
          assert.equal(added, !places.has(id));
          if (added) {
            order.push(id);
            places.set(id, undefined);
            flags.set(id, false);
          }
          assert.equal(slot, order.indexOf(id));
        } else if (order.length === 0) {
          continue;
        } else if (kind === 'remove') {
          const hole = n % order.length;
          const last = order.length - 1;
          const id = order[hole]!;
          assert.equal(table.removeSwap(hole), last);
          logged.push([hole, last]);
          order[hole] = order[last]!;
          order.pop();
          places.delete(id);
          flags.delete(id);
        } else if (kind === 'place') {
          const slot = n % order.length;
          // Generations, segments and offsets at the ends of their range too.
          const place: VectorPlace | undefined = g === 0 ? undefined : far ? [2 ** 32 - g, 2 ** 32 - 1 - n, 2 ** 32 - 1 - g] : [g, g + 1 + (n % 3), g * 100];
          table.setPlaceAt(slot, place);
          places.set(order[slot]!, place);
        } else {
          const slot = n % order.length;
          table.setDocumentedAt(slot, g % 2 === 0);
          flags.set(order[slot]!, g % 2 === 0);
        }
        assert.equal(table.size, order.length);
        order.forEach((id, slot) => {
          assert.equal(table.idAt(slot), id);
          assert.equal(table.slotOf(id), slot);
          assert.deepEqual(table.placeAt(slot), places.get(id));
          const place = places.get(id);
          assert.deepEqual([0, 1, 2].map((part) => table.placePartAt(slot, part as 0 | 1 | 2)), place === undefined ? [0, 0, 0] : [...place]);
          assert.equal(table.documentedAt(slot), flags.get(id));
        });
      }
      const replayed: [number, number][] = [];
      assert.ok(table.movesSince(epoch, (hole, from) => replayed.push([hole, from])));
      assert.deepEqual(replayed, logged);
    }),
    { numRuns: 200, seed: 20261130 },
  );
});

test('slot table: without places it keeps none, refuses to set one, and costs no place bytes', () => {
  const table = new SlotTable(false, 4);
  const { slot } = table.slotFor('a');
  assert.equal(table.placeAt(slot), undefined);
  assert.equal(table.documentedAt(slot), false);
  assert.throws(() => table.setPlaceAt(slot, [1, 1, 1]), RangeError);
  assert.throws(() => table.setDocumentedAt(slot, true), RangeError);
  assert.throws(() => table.placeAt(1), RangeError);
  assert.throws(() => table.removeSwap(3), RangeError);
  assert.throws(() => new SlotTable(true, 0), RangeError);
  const withPlaces = new SlotTable(true, 4);
  withPlaces.slotFor('a');
  assert.equal(withPlaces.bytesPerVector - table.bytesPerVector, 5.125, 'an offset, a segment reference and a flag bit: 5 1/8 bytes per vector');
});

test('slot table: places in more than 255 and more than 65,535 segments stay where they were set, and a slot costs 6, then 8 bytes', () => {
  const table = new SlotTable(true, 1000);
  // The same ids without places: what the id table adds to a vector's bytes.
  const bare = new SlotTable(false, 1000);
  const placeBytes = () => table.bytesPerVector - bare.bytesPerVector;
  const n = 70_000;
  for (let slot = 0; slot < n; slot++) {
    table.slotFor(`v${slot}`);
    bare.slotFor(`v${slot}`);
    table.setPlaceAt(slot, [slot % 7, slot + 1, slot * 3]);
    table.setDocumentedAt(slot, slot % 3 === 0);
    if (slot === 254) assert.equal(placeBytes(), 5.125, '255 segments: a byte each');
    if (slot === 255) assert.equal(placeBytes(), 6.125, 'past 255 segments: two bytes each');
  }
  assert.equal(placeBytes(), 8.125, 'past 65,535 segments: four bytes each');
  for (const slot of [0, 1, 254, 255, 256, 65_534, 65_535, 65_536, n - 1]) {
    assert.deepEqual(table.placeAt(slot), [slot % 7, slot + 1, slot * 3], `slot ${slot}`);
    assert.equal(table.documentedAt(slot), slot % 3 === 0);
  }
  // Removing moves the last slot's place and flag into the hole.
  table.removeSwap(10);
  assert.deepEqual(table.placeAt(10), [(n - 1) % 7, n, (n - 1) * 3]);
  assert.equal(table.documentedAt(10), (n - 1) % 3 === 0);
});

test('slot table: segments no place uses any more are forgotten and their references handed out again, so rewriting every place into a new generation a thousand times costs nothing more', () => {
  const table = new SlotTable(true, 16);
  const n = 40;
  for (let slot = 0; slot < n; slot++) table.slotFor(`v${slot}`);
  const rewrite = (g: number) => {
    for (let slot = 0; slot < n; slot++) table.setPlaceAt(slot, [g, 1 + (slot % 3), 100 * slot]);
  };
  // Moving into a new generation holds both for a while: the second one's numbers are new, the rest reuse them.
  rewrite(0);
  rewrite(1);
  const bytes = table.bytes;
  const perVector = table.bytesPerVector;
  for (let g = 2; g <= 1000; g++) rewrite(g);
  assert.equal(table.bytes, bytes);
  assert.equal(table.bytesPerVector, perVector, 'references still a byte each');
  for (let slot = 0; slot < n; slot++) assert.deepEqual(table.placeAt(slot), [1000, 1 + (slot % 3), 100 * slot]);
  // Removals and places set to none let go of their segments too.
  for (let slot = n - 1; slot >= 20; slot--) table.removeSwap(slot);
  for (let slot = 0; slot < 20; slot++) table.setPlaceAt(slot, undefined);
  const fewer = table.bytesPerVector;
  for (let g = 0; g < 300; g++) table.setPlaceAt(g % 20, [5000 + g, 1, 0]);
  assert.equal(table.bytesPerVector, fewer, 'at most 20 segments in use at once: a byte a reference');
  for (let slot = 0; slot < 20; slot++) assert.deepEqual(table.placeAt(slot), [5000 + 280 + slot, 1, 0]);
});
