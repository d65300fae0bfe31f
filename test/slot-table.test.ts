import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SlotTable, type VectorPlace } from '../src/scan/slot-table.js';

test('slot table: random adds, removals, places and document flags agree with a model; every removal is logged as the move it made', () => {
  const op = fc.record({ kind: fc.constantFrom('add', 'add', 'remove', 'place', 'flag'), n: fc.nat({ max: 60 }), g: fc.nat({ max: 9 }) });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 1, max: 8 }), (ops, chunk) => {
      const table = new SlotTable(true, chunk);
      // The model: ids in slot order, and per id its place and flag.
      const order: string[] = [];
      const places = new Map<string, VectorPlace | undefined>();
      const flags = new Map<string, boolean>();
      const epoch = table.moveEpoch();
      const logged: [number, number][] = [];
      for (const { kind, n, g } of ops) {
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
          const place: VectorPlace | undefined = g === 0 ? undefined : [g, g + 1, g * 100];
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
  assert.equal(withPlaces.bytesPerVector - table.bytesPerVector, 13, 'a place and a flag: 13 bytes per vector');
});
