import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FilterColumns, MAX_VALUES, UNREADABLE, validDictionary, type MetaOf } from '../src/filter/columns.js';
import { matchesFilter } from '../src/filter/match.js';
import type { Filter } from '../src/options.js';
import { SlotTable } from '../src/scan/slot-table.js';

/** Columns over `metas` (slot i holds metas[i]), made by a first compile. */
function columnsOver(metas: readonly MetaOf[]): FilterColumns {
  const columns = new FilterColumns();
  metas.forEach((_, slot) => columns.added(slot));
  return columns;
}

const at = (metas: readonly MetaOf[]) => (slot: number) => metas[slot]!;

/** Applies a put (upsert) or a removal to `table` and to the model of its records' metadata, as the store does. */
function apply(table: SlotTable, model: Map<string, Record<string, unknown> | undefined>, o: { kind: 'put'; n: number; meta: Record<string, unknown> | undefined } | { kind: 'remove'; n: number }): void {
  if (o.kind === 'put') {
    const id = `id-${o.n}`;
    const { slot } = table.slotFor(id);
    model.set(id, o.meta);
    // A column exists only once a filter named its field.
    if (table.columns.fields > 0) table.columns.set(slot, o.meta);
    return;
  }
  if (table.size === 0) return;
  const slot = o.n % table.size;
  model.delete(table.idAt(slot));
  table.removeSwap(slot);
}

test('filter columns: equality is strict, as matchesFilter is: types apart, -0 equals 0, null only null, a missing field or an object value matches nothing', () => {
  const metas: MetaOf[] = [{ v: 1 }, { v: '1' }, { v: true }, { v: 'true' }, { v: null }, {}, undefined, { v: 0 }, { v: { x: 1 } }, { v: [1] }, { w: 1 }];
  const columns = columnsOver(metas);
  const cases: Filter[] = [{ v: 1 }, { v: '1' }, { v: true }, { v: 'true' }, { v: null }, { v: -0 }, { v: 0 }, { v: { $in: [1, null] } }, { v: { $in: [] } }, { v: false }, { w: 1 }, { v: 1, w: 1 }];
  for (const filter of cases) {
    const t = columns.compile(filter, at(metas));
    const want = metas.map((m) => (matchesFilter(m as Record<string, unknown> | undefined, filter) ? 1 : 0));
    assert.deepEqual(metas.map((_, slot) => t.test(slot)), want, JSON.stringify(filter));
    assert.equal(t.atMost, Math.min(...Object.keys(filter).map((f) => metas.filter((m) => matchesFilter(m as Record<string, unknown> | undefined, { [f]: filter[f]! })).length)), JSON.stringify(filter));
  }
});

test('filter columns: the empty filter narrows nothing, nor one every record surely meets; a record that may not meet it (absent, unreadable) makes it narrow', () => {
  const metas: MetaOf[] = [{ a: 1 }, undefined];
  const t = columnsOver(metas).compile({}, at(metas));
  assert.equal(t.everything, true);
  assert.equal(t.atMost, 2);
  const all: MetaOf[] = [{ a: 1 }, { a: 2 }, { a: 1, b: 0 }];
  const columns = columnsOver(all);
  assert.equal(columns.compile({ a: { $in: [1, 2] } }, at(all)).everything, true);
  assert.equal(columns.compile({ a: 1 }, at(all)).everything, false);
  assert.equal(columns.compile({ a: { $in: [1, 2] }, b: 0 }, at(all)).everything, false);
  const unsure: MetaOf[] = [{ a: 1 }, UNREADABLE];
  assert.equal(columnsOver(unsure).compile({ a: 1 }, at(unsure)).everything, false);
});

test('filter columns: past MAX_VALUES distinct values a column hashes values into buckets, whose slots are left to their metadata (verdict 2)', () => {
  const extra = 3000;
  const metas: MetaOf[] = Array.from({ length: MAX_VALUES + extra }, (_, i) => ({ u: `value-${i}`, k: i % 2 === 0 }));
  const columns = columnsOver(metas);
  const listed = columns.compile({ u: 'value-5' }, at(metas));
  assert.equal(listed.test(5), 1);
  assert.equal(listed.test(6), 0);
  // A listed value is no bucket's: the slots past the dictionary do not hold it.
  assert.equal(listed.test(MAX_VALUES + 3), 0);
  assert.equal(listed.atMost, 1);
  const target = MAX_VALUES + 3;
  const unlisted = columns.compile({ u: `value-${target}` }, at(metas));
  assert.equal(unlisted.test(target), 2);
  assert.equal(unlisted.test(0), 0);
  // Its bucket holds it and the few values hashed with it: far fewer than every unlisted slot.
  const inBucket = metas.map((_, s) => unlisted.test(s)).filter((v) => v === 2).length;
  assert.equal(unlisted.atMost, inBucket);
  assert.ok(inBucket >= 1 && inBucket <= 3, `${inBucket}`);
  // A value no record has, once the dictionary is full, may be in a bucket: never a match (1).
  const none = columns.compile({ u: 'never' }, at(metas));
  assert.ok(metas.every((_, s) => none.test(s) !== 1));
  // A second field keeps its own dictionary.
  assert.equal(columns.compile({ k: true }, at(metas)).atMost, Math.ceil(metas.length / 2));
});

test('filter columns: an unreadable document is left to its metadata for every value', () => {
  const metas: MetaOf[] = [{ a: 1 }, UNREADABLE, { a: 2 }];
  const t = columnsOver(metas).compile({ a: 2 }, at(metas));
  assert.deepEqual([0, 1, 2].map((s) => t.test(s)), [0, 2, 1]);
  assert.deepEqual([...t.collect(new Int32Array(0)).slots.subarray(0, 2)], [1, 2]);
});

test('filter columns: a column is made once; its bytes count the codes, the counts and the dictionary', () => {
  const metas: MetaOf[] = Array.from({ length: 1000 }, (_, i) => ({ g: i % 7 }));
  const columns = columnsOver(metas);
  assert.equal(columns.bytes, 0);
  let asked = 0;
  const counting = (slot: number) => {
    asked++;
    return metas[slot]!;
  };
  columns.compile({ g: 3 }, counting);
  columns.compile({ g: { $in: [1, 2] } }, counting);
  assert.equal(asked, 1000);
  assert.equal(columns.fields, 1);
  assert.ok(columns.bytes >= 2000, `${columns.bytes}`);
});

test('filter columns: random adds, removals and metadata changes through the slot table agree with matchesFilter on a model; atMost bounds the matches and collect lists exactly the slots that may match', () => {
  const value = fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.constant(null), fc.constant({ o: 1 }));
  const meta = fc.option(fc.dictionary(fc.constantFrom('x', 'y', '__proto__'), value, { maxKeys: 3 }), { nil: undefined });
  const scalar = fc.oneof(fc.constantFrom('a', 'b', 'c', 'zzz'), fc.integer({ min: 0, max: 4 }), fc.boolean(), fc.constant(null));
  const filter = fc.dictionary(fc.constantFrom('x', 'y', '__proto__', 'nope'), fc.oneof(scalar, fc.record({ $in: fc.array(scalar, { maxLength: 3 }) })), { minKeys: 1, maxKeys: 2 });
  const op = fc.oneof(
    fc.record({ kind: fc.constant('put' as const), n: fc.nat(40), meta }),
    fc.record({ kind: fc.constant('remove' as const), n: fc.nat(40) }),
    fc.record({ kind: fc.constant('filter' as const), filter }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const table = new SlotTable(true, 4);
      const model = new Map<string, Record<string, unknown> | undefined>();
      const metaAt = (slot: number): MetaOf => model.get(table.idAt(slot));
      for (const o of ops) {
        if (o.kind !== 'filter') {
          apply(table, model, o);
        } else {
          const f = o.filter as Filter;
          const t = table.columns.compile(f, metaAt);
          const want: number[] = [];
          for (let slot = 0; slot < table.size; slot++) {
            const m = matchesFilter(metaAt(slot) as Record<string, unknown> | undefined, f);
            assert.equal(t.test(slot), m ? 1 : 0, `slot ${slot} ${JSON.stringify(f)}`);
            if (m) want.push(slot);
          }
          assert.ok(t.atMost >= want.length);
          const { slots, count } = t.collect(new Int32Array(1));
          assert.deepEqual([...slots.subarray(0, count)], want);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('filter columns with a dictionary of 3 values: random puts and removals hash the rest into buckets; 1 only for matches, 0 only for non-matches, 2 only for slots past the dictionary', () => {
  const value = fc.oneof(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), fc.integer({ min: 0, max: 5 }), fc.constant(null));
  const meta = fc.option(fc.record({ x: value }, { requiredKeys: [] }), { nil: undefined });
  const op = fc.oneof(
    fc.record({ kind: fc.constant('put' as const), n: fc.nat(30), meta }),
    fc.record({ kind: fc.constant('remove' as const), n: fc.nat(30) }),
    fc.record({ kind: fc.constant('filter' as const), values: fc.array(value, { minLength: 1, maxLength: 3 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const columns = new FilterColumns(3);
      // Slot i holds metas[i]; a removal moves the last slot into the hole, as the slot table does.
      const metas: (Record<string, unknown> | undefined)[] = [];
      for (const o of ops) {
        if (o.kind === 'put') {
          const slot = o.n % (metas.length + 1);
          if (slot === metas.length) {
            columns.added(slot);
            metas.push(undefined);
          }
          metas[slot] = o.meta;
          if (columns.fields > 0) columns.set(slot, o.meta);
        } else if (o.kind === 'remove') {
          if (metas.length === 0) continue;
          const slot = o.n % metas.length;
          const last = metas.length - 1;
          columns.removeSwap(slot, last);
          metas[slot] = metas[last];
          metas.pop();
        } else {
          const filter: Filter = { x: { $in: o.values } };
          const t = columns.compile(filter, (slot) => metas[slot]);
          let maybe = 0;
          for (let slot = 0; slot < metas.length; slot++) {
            const m = matchesFilter(metas[slot], filter);
            const v = t.test(slot);
            assert.ok(v === 2 || v === (m ? 1 : 0), `slot ${slot}: ${v}, match ${m}`);
            if (v === 2) {
              // A bucket holds the values past the dictionary (the first 3 distinct seen); these few never share one.
              assert.ok(m, 'a bucket named by the filter holds another value');
              maybe++;
            }
          }
          assert.ok(t.atMost >= metas.filter((m) => matchesFilter(m, filter)).length);
          assert.ok(maybe <= t.atMost);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('filter columns, selective filters (100 values, filters taking a few slots, read from the values\' slot lists): random puts, upserts and removals agree with matchesFilter; collect lists the matching slots in order', () => {
  const op = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), n: fc.nat(200), v: fc.nat(99), w: fc.nat(3) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), n: fc.nat(200) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('filter' as const), values: fc.array(fc.nat(99), { minLength: 1, maxLength: 2 }), w: fc.option(fc.nat(3), { nil: undefined }) }) },
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 150, maxLength: 600 }), (ops) => {
      const table = new SlotTable(true, 8);
      const model = new Map<string, Record<string, unknown> | undefined>();
      const metaAt = (slot: number): MetaOf => model.get(table.idAt(slot));
      for (const o of ops) {
        if (o.kind === 'put') {
          apply(table, model, { kind: 'put', n: o.n, meta: { v: o.v, w: o.w } });
        } else if (o.kind === 'remove') {
          apply(table, model, o);
        } else {
          const f: Filter = o.w === undefined ? { v: { $in: o.values } } : { v: { $in: o.values }, w: o.w };
          const t = table.columns.compile(f, metaAt);
          const want: number[] = [];
          for (let slot = 0; slot < table.size; slot++) if (matchesFilter(metaAt(slot) as Record<string, unknown>, f)) want.push(slot);
          const { slots, count } = t.collect(new Int32Array(0));
          assert.deepEqual([...slots.subarray(0, count)], want, JSON.stringify(f));
        }
      }
    }),
    { numRuns: 200 },
  );
});

test('filter columns: a dictionary past 256 KiB (keys added after the byte bound) is not one this writer makes, but verify takes it as an earlier writer made it (it stopped at 4,094 keys alone): such a columns file is made again at open, not damage', () => {
  const keys = Array.from({ length: 200 }, (_, i) => `s${String(i).padStart(4, '0')}${'x'.repeat(3000)}`);
  assert.equal(validDictionary(keys.slice(0, 40), MAX_VALUES), true);
  assert.equal(validDictionary(keys, MAX_VALUES), false);
  assert.equal(validDictionary(keys, MAX_VALUES, true), true);
  assert.equal(validDictionary([...keys, keys[0]!], MAX_VALUES, true), false, 'a repeated key is damage either way');
  assert.equal(validDictionary(Array.from({ length: MAX_VALUES + 1 }, (_, i) => `n${i}`), MAX_VALUES, true), false);
});
