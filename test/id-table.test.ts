import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MAX_ID_BYTES } from '../src/limits.js';
import { IdTable } from '../src/scan/id-table.js';

/**
 * The table after `ops`, checked against a plain array + Map doing the same swap-removes. With
 * `recent` strings kept by idAt(), every op is followed by idAt() of a slot chosen by `probe`, so
 * strings made before a removal or an add are asked for after it.
 */
function replay(ops: readonly { add: boolean; id: string; probe?: number }[], recent = 0): void {
  const table = new IdTable(recent);
  const ids: string[] = [];
  const slots = new Map<string, number>();
  for (const op of ops) {
    if (op.add) {
      const { slot, added } = table.slotFor(op.id);
      assert.equal(added, !slots.has(op.id));
      if (added) {
        slots.set(op.id, ids.length);
        ids.push(op.id);
      }
      assert.equal(slot, slots.get(op.id));
    } else {
      const slot = slots.get(op.id);
      assert.equal(table.slotOf(op.id), slot);
      if (slot === undefined) continue;
      table.removeSwap(slot);
      const last = ids.pop()!;
      slots.delete(op.id);
      if (last !== op.id) {
        ids[slot] = last;
        slots.set(last, slot);
      }
    }
    if (recent > 0 && ids.length > 0) {
      const slot = (op.probe ?? 0) % ids.length;
      assert.equal(table.idAt(slot), ids[slot]);
    }
  }
  assert.equal(table.size, ids.length);
  ids.forEach((id, slot) => {
    assert.equal(table.idAt(slot), id);
    assert.equal(table.slotOf(id), slot);
  });
  for (const op of ops) if (!slots.has(op.id)) assert.equal(table.slotOf(op.id), undefined);
  assert.equal(table.idBytes, ids.reduce((sum, id) => sum + Buffer.byteLength(id), 0));
}

test('id table: random adds and swap-removes agree with an array and a Map', () => {
  // A small alphabet makes ids repeat, so removals of present ids and re-adds are common.
  const id = fc.oneof(fc.stringMatching(/^[ab\u00e9\u{1F600}]{1,3}$/u), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }));
  fc.assert(fc.property(fc.array(fc.record({ add: fc.boolean(), id }), { maxLength: 400 }), (ops) => replay(ops)), { numRuns: 300 });
});

test('id table: the strings idAt() keeps follow swap-removes, re-adds and clear(), and are counted in bytes', () => {
  const id = fc.stringMatching(/^[abc\u00e9]{1,3}$/u);
  const ops = fc.array(fc.record({ add: fc.boolean(), id, probe: fc.nat(50) }), { maxLength: 300 });
  // Four strings kept (the 64 ids added first let the table keep its four from the start): slots
  // collide often, and a slot removed and taken again by another id is common.
  const first = Array.from({ length: 64 }, (_, i) => ({ add: true, id: `first-${i}` }));
  fc.assert(fc.property(ops, (o) => replay([...first, ...o.map((op) => ({ ...op, probe: op.probe + 40 }))], 4)), { numRuns: 300 });
  // A slot number that comes back after a removal names its new id, not the string kept for it before.
  const moved = new IdTable(4);
  for (let i = 0; i < 64; i++) moved.slotFor(`m-${i}`);
  assert.equal(moved.idAt(63), 'm-63');
  moved.removeSwap(10);
  assert.equal(moved.idAt(10), 'm-63');
  assert.equal(moved.slotFor('taken-again').slot, 63);
  assert.equal(moved.idAt(63), 'taken-again');
  const table = new IdTable(8);
  for (let i = 0; i < 20; i++) table.slotFor(`id-${i}`);
  const before = table.bytes;
  for (let i = 0; i < 20; i++) assert.equal(table.idAt(i), `id-${i}`);
  assert.ok(table.bytes > before, 'the kept strings are counted');
  table.clear();
  table.slotFor('other');
  assert.equal(table.idAt(0), 'other');
  assert.throws(() => new IdTable(3), RangeError);
  // Strings replaced over and over are uncounted as they go: after any churn, the bytes are those
  // of the strings kept at the end, as a table that only ever kept those counts them.
  const churned = new IdTable(4);
  const fresh = new IdTable(4);
  for (let i = 0; i < 64; i++) {
    churned.slotFor(`c-${i}${'x'.repeat(i % 7)}`);
    fresh.slotFor(`c-${i}${'x'.repeat(i % 7)}`);
  }
  for (let round = 0; round < 10; round++) for (let slot = 0; slot < 64; slot++) churned.idAt((slot * 7 + round) % 64);
  for (const slot of [60, 61, 62, 63]) {
    churned.idAt(slot);
    fresh.idAt(slot);
  }
  assert.equal(churned.bytes, fresh.bytes);
});

test('id table: many ids grow and compact the table and keep every slot findable', () => {
  const ops: { add: boolean; id: string }[] = [];
  for (let i = 0; i < 20000; i++) ops.push({ add: true, id: `doc-${i}` });
  for (let i = 0; i < 20000; i += 3) ops.push({ add: false, id: `doc-${i}` });
  for (let i = 0; i < 5000; i++) ops.push({ add: true, id: `again-${i}` });
  replay(ops);
});

test('id table: removing every id leaves it empty and reusable; an id costs well under a string in a Map', () => {
  const table = new IdTable();
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 5000; i++) table.slotFor(`r${round}-${i}`);
    while (table.size > 0) table.removeSwap(table.size - 1);
    assert.equal(table.slotOf(`r${round}-0`), undefined);
  }
  for (let i = 0; i < 100000; i++) table.slotFor(`doc-${i}`);
  // ~9.9 bytes of UTF-8 per id; the rest (offsets, lengths, buckets, growth slack) stays under 30.
  assert.ok(table.bytes / table.size < 40, `${table.bytes / table.size} bytes per id`);
});

test('id table: a leading U+FEFF, a U+FFFD and ids of MAX_ID_BYTES are distinct ids; ill-formed or longer strings are never found', () => {
  const table = new IdTable();
  const long = 'x'.repeat(MAX_ID_BYTES);
  for (const id of ['\uFEFFa', 'a', '\uFFFD', long]) table.slotFor(id);
  assert.equal(table.size, 4);
  assert.equal(table.idAt(0), '\uFEFFa');
  assert.equal(table.idAt(3), long);
  assert.equal(table.slotOf('\uD800'), undefined);
  assert.equal(table.slotOf(`${long}x`), undefined);
  assert.throws(() => table.slotFor('\uDC00'), RangeError);
  assert.throws(() => table.idAt(4), RangeError);
  assert.throws(() => table.removeSwap(-1), RangeError);
});

test('id table: reserve() allocates once for the ids to come, and slotForBytes finds or adds an id read in place from a larger buffer', () => {
  const table = new IdTable();
  const ids = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? `é-${i}` : `doc-${i}`));
  const utf8 = ids.map((id) => Buffer.from(id));
  table.reserve(ids.length, utf8.reduce((sum, b) => sum + b.length, 0));
  const reserved = table.bytes;
  // The ids as an index file holds them: one buffer, each id at an offset, other bytes around it.
  const block = Buffer.concat(utf8.flatMap((b) => [Buffer.from([0xff, 0xfe]), b]));
  let at = 0;
  for (const [i, b] of utf8.entries()) {
    at += 2;
    assert.equal(table.slotForBytes(block, at, b.length), i);
    at += b.length;
  }
  assert.equal(table.bytes, reserved, 'nothing grew past what was reserved');
  assert.equal(table.size, ids.length);
  assert.equal(table.slotForBytes(block, 2, utf8[0]!.length), 0, 'a known id is found, not added');
  assert.equal(table.size, ids.length);
  ids.forEach((id, slot) => assert.equal(table.slotOf(id), slot));
  assert.throws(() => table.slotForBytes(block, block.length - 1, 2), RangeError);
  assert.throws(() => table.slotForBytes(block, 0, 0), RangeError);
});

test('id table: a table reserved for n ids holds buckets for n at 61–70% full, not the power of two past n / 0.7 (131,072 buckets for 50,000 ids)', () => {
  for (const n of [50_000, 70_000, 91_000, 331_479]) {
    const table = new IdTable();
    const empty = table.bytes;
    table.reserve(n, 0);
    // Per slot a 32-bit offset and a 16-bit length; the rest is buckets of 4 bytes.
    const buckets = (table.bytes - empty - 6 * n + 4 * 32) / 4;
    assert.ok(buckets >= n / 0.7 && buckets <= n / 0.61, `${buckets} buckets for ${n} ids`);
    for (let i = 0; i < n; i++) table.slotFor(`doc-${i}`);
    for (let i = 0; i < n; i += 2) table.removeSwap(table.slotOf(`doc-${i}`)!);
    for (let i = 0; i < n; i++) assert.equal(table.slotOf(`doc-${i}`) === undefined, i % 2 === 0);
  }
});
