import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { isWellFormed } from '../src/text.js';
import { MemStore, type OpenOptions } from '../src/index.js';
import type { Filter } from '../src/options.js';
import { clustered, perturb, rng, tempDir } from './helpers.js';

const DIM = 16;

/** The configurations a filter meets: the exact index with and without the cache's pools, and pages. */
const CONFIGS: readonly { name: string; options: OpenOptions }[] = [
  { name: 'exact index, cache off', options: { dim: DIM, cache: false } },
  { name: 'exact index, cache on', options: { dim: DIM } },
  { name: 'pages', options: { dim: DIM, cache: false, pages: { from: 40, maxPage: 16 } } },
];

function matches(meta: Record<string, unknown> | undefined, filter: Filter): boolean {
  return Object.entries(filter).every(([f, c]) => meta !== undefined && Object.prototype.hasOwnProperty.call(meta, f) && (c !== null && typeof c === 'object' ? c.$in.includes(meta[f] as never) : meta[f] === c));
}

/**
 * The oracle: an unfiltered exact search for every record (codes' scores, no rescoring), filtered
 * afterwards. A filtered exact search must give the same ids and scores: the filter columns only
 * decide which records are scored, never the scores or their order.
 */
async function filteredByHand(store: MemStore, q: Float32Array, filter: Filter, k: number): Promise<{ id: string; score: number }[]> {
  const all = await store.search(q, { k: Math.max(1, store.stats().count), exact: true, rescore: false });
  return all.filter((h) => matches(h.meta, filter)).slice(0, k).map(({ id, score }) => ({ id, score }));
}

for (const { name, options } of CONFIGS) {
  test(`store filters (${name}): random puts, upserts that change or drop fields, deletes, reopens and compactions; every exact filtered search equals the unfiltered one filtered by hand`, async () => {
    const vectors = clustered(120, DIM, 7);
    const value = fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.constant(null), fc.constant([1]));
    const meta = fc.option(fc.record({ g: value, h: value }, { requiredKeys: [] }), { nil: undefined });
    const scalar = fc.oneof(fc.constantFrom('a', 'b', 'c', 'none'), fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.constant(null));
    const filter = fc.dictionary(fc.constantFrom('g', 'h', 'missing'), fc.oneof(scalar, fc.record({ $in: fc.array(scalar, { maxLength: 3 }) })), { minKeys: 1, maxKeys: 2 });
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), ids: fc.array(fc.record({ n: fc.nat(79), v: fc.nat(119), meta }), { minLength: 1, maxLength: 12 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), ids: fc.array(fc.nat(79), { maxLength: 6 }) }) },
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('search' as const), q: fc.nat(119), k: fc.integer({ min: 1, max: 12 }), filter }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
        const dir = tempDir();
        let store = await MemStore.open(dir, { ...options, durability: 'none' });
        try {
          for (const o of ops) {
            if (o.kind === 'put') {
              await store.add(o.ids.map((r) => ({ id: `r${r.n}`, vector: vectors[r.v]!, ...(r.meta === undefined ? {} : { meta: r.meta }) })));
            } else if (o.kind === 'delete') {
              await store.delete(o.ids.map((n) => `r${n}`));
            } else if (o.kind === 'reopen') {
              await store.close();
              store = await MemStore.open(dir, { ...options, durability: 'none' });
            } else if (o.kind === 'compact') {
              await store.compact();
            } else {
              const f = o.filter as Filter;
              const q = vectors[o.q]!;
              const got = (await store.search(q, { k: o.k, filter: f, exact: true, rescore: false })).map(({ id, score }) => ({ id, score }));
              assert.deepEqual(got, await filteredByHand(store, q, f, o.k), JSON.stringify(f));
            }
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 25 },
    );
  });
}

test('store filters: an upsert that changes a field moves the record between filters; one that drops it, out of all; a delete, out', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, cache: false });
  try {
    const vectors = clustered(50, DIM, 3);
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: i % 5 } })));
    const q = vectors[0]!;
    const ids = async (filter: Filter) => (await store.search(q, { k: 50, filter })).map((h) => h.id).sort();
    assert.equal((await ids({ g: 1 })).length, 10);
    await store.add([{ id: 'r1', vector: vectors[1]!, meta: { g: 2 } }]);
    assert.ok(!(await ids({ g: 1 })).includes('r1'));
    assert.ok((await ids({ g: 2 })).includes('r1'));
    await store.add([{ id: 'r1', vector: vectors[1]!, meta: { other: 2 } }]);
    assert.ok(!(await ids({ g: { $in: [0, 1, 2, 3, 4] } })).includes('r1'));
    assert.equal((await ids({ other: 2 })).join(), 'r1');
    await store.delete(['r6', 'r11']);
    assert.deepEqual(await ids({ g: 1 }), ['r16', 'r21', 'r26', 'r31', 'r36', 'r41', 'r46']);
  } finally {
    await store.close();
  }
});

test('store filters: a field that takes a few records out of a paged store returns all of them, from every page, at any nprobe', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, cache: false, pages: { from: 40, maxPage: 16 } });
  try {
    const vectors = clustered(400, DIM, 5);
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: i % 97 === 0 ? { rare: 'yes' } : { rare: 'no' } })));
    assert.ok(store.stats().pages > 10);
    for (const nprobe of [1, 2, undefined]) {
      const hits = await store.search(vectors[200]!, { k: 10, filter: { rare: 'yes' }, ...(nprobe === undefined ? {} : { nprobe }) });
      assert.deepEqual(hits.map((h) => h.id).sort(), ['r0', 'r194', 'r291', 'r388', 'r97']);
    }
  } finally {
    await store.close();
  }
});

test('store filters: the columns a filter makes are counted in memoryBytes and bytesPerVector', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, cache: false });
  try {
    const next = rng(4);
    const vectors = clustered(300, DIM, 9);
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: Math.floor(next() * 4) } })));
    const before = store.stats();
    await store.search(vectors[0]!, { filter: { g: 1 } });
    const after = store.stats();
    assert.ok(after.memoryBytes >= before.memoryBytes + 2 * 300, `${before.memoryBytes} -> ${after.memoryBytes}`);
    assert.ok(after.bytesPerVector > before.bytesPerVector);
    // A second filter on the same field makes no second column (the id table's recent ids may vary by a few bytes).
    await store.search(vectors[1]!, { filter: { g: { $in: [2, 3] } } });
    assert.ok(store.stats().memoryBytes - after.memoryBytes < 2 * 300, `${after.memoryBytes} -> ${store.stats().memoryBytes}`);
  } finally {
    await store.close();
  }
});

test('store filters: a selective filter scored by its matching slots fills the cache\'s pools; with writes between, every cached answer equals the uncached store\'s, and near repeats are served', async () => {
  const next = rng(21);
  const vectors = clustered(600, DIM, 13);
  const cached = await MemStore.open(tempDir(), { dim: DIM, durability: 'none' });
  const plain = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', cache: false });
  try {
    const records = vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: i % 20 } }));
    for (const s of [cached, plain]) await s.add(records);
    const bases = vectors.slice(0, 12);
    for (let step = 0; step < 300; step++) {
      if (step % 25 === 24) {
        const i = Math.floor(next() * 600);
        const write = [{ id: `r${i}`, vector: perturb(vectors[i]!, 0.99, next), meta: { g: Math.floor(next() * 20) } }];
        for (const s of [cached, plain]) await s.add(write);
      }
      const base = bases[Math.floor(next() * bases.length)]!;
      const q = next() < 0.5 ? base : perturb(base, 0.9995, next);
      const options = { k: 5, filter: { g: { $in: [3, 7] } } };
      const a = await cached.search(q, options);
      const b = await plain.search(q, options);
      assert.deepEqual(a.map((h) => [h.id, h.score]), b.map((h) => [h.id, h.score]), `step ${step}`);
    }
    const stats = cached.stats().cache;
    assert.ok(stats !== undefined && stats.exactHits > 0 && stats.nearHits > 0, JSON.stringify(stats));
  } finally {
    await cached.close();
    await plain.close();
  }
});

test('store filters: a filter with symbol or non-enumerable keys (at the top or in a condition), or naming more than 64 fields, is INVALID_ARGUMENT for search, ids and forget (such keys had been dropped unseen: the filter matched everything, and forget deleted the whole namespace)', async () => {
  const dim = 8;
  const vectors = clustered(6, dim, 3);
  const embed = async (texts: string[]) => texts.map((_, i) => vectors[i % vectors.length]!);
  const store = await MemStore.open(tempDir(), { dim, durability: 'none', embed });
  try {
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: i % 2 } })));
    await store.remember(['one', 'two'], { namespace: 'n' });
    const hidden = Object.defineProperty({}, 'g', { value: 1, enumerable: false });
    const filters: unknown[] = [{ [Symbol.for('g')]: 1 }, hidden, { g: Object.assign({ $in: [1] }, { [Symbol('x')]: 2 }) }, Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`f${i}`, 1]))];
    for (const filter of filters) {
      await assert.rejects(store.search(vectors[0]!, { filter: filter as Filter }), (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT');
      assert.throws(() => store.ids(filter as Filter), (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT');
      await assert.rejects(store.forget({ namespace: 'n', filter: filter as Filter }), (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT');
    }
    assert.equal((await store.recall('one', { namespace: 'n' })).length, 2, 'forget deleted nothing');
    // 64 fields, every one a field no record has: allowed, and nothing matches.
    assert.deepEqual(store.ids(Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`f${i}`, 1]))), []);
    assert.deepEqual(store.ids({ g: 1 }).sort(), ['r1', 'r3', 'r5']);
  } finally {
    await store.close();
  }
});

test('store filters: a lone surrogate in a filter key, a value or a $in value is INVALID_ARGUMENT naming it, for search and ids, as metadata refuses one (it had been searched for, and matched nothing)', async () => {
  const dim = 4;
  const store = await MemStore.open(tempDir(), { dim, durability: 'none' });
  try {
    await store.add([{ id: 'a', vector: [1, 0, 0, 0], meta: { f: 'x' } }]);
    const cases: [Filter, string][] = [
      [{ f: '\ud800' }, 'filter.f'],
      [{ ['\udc00']: 'x' }, 'filter["\\udc00"]'],
      [{ f: { $in: ['x', 'y\ud800'] } }, 'filter.f.$in[1]'],
    ];
    for (const [filter, field] of cases) {
      await assert.rejects(store.search([1, 0, 0, 0], { filter }), (e: unknown) => (e as { code?: string; field?: string }).code === 'INVALID_ARGUMENT' && (e as { field?: string }).field === field);
      assert.throws(() => store.ids(filter), (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT');
    }
    assert.deepEqual(store.ids({ f: { $in: ['x', '\u{1F600}'] } }), ['a']);
    // null options read as none, for compact as for search (compact(null) had been INVALID_OPTION).
    await store.compact(null as unknown as undefined);
    assert.equal((await store.search([1, 0, 0, 0], null as unknown as undefined)).length, 1);
  } finally {
    await store.close();
  }
});

test('store filters: an error about a filter key that is not an identifier names it bracket-quoted, as metadata paths do, and its field is valid Unicode (filter.a.b read as a nested path, filter. named nothing, and a lone surrogate went into the field raw: a hostile pass)', async () => {
  const store = await MemStore.open(tempDir(), { dim: 4, durability: 'none' });
  try {
    await store.add([{ id: 'a', vector: [1, 0, 0, 0], meta: { 'a.b': 1 } }]);
    const cases: [Filter, string][] = [
      [{ 'a.b': { $in: 'x' } } as unknown as Filter, 'filter["a.b"]'],
      [{ '': [1] } as unknown as Filter, 'filter[""]'],
      [{ 'x y': { $in: [{}] } } as unknown as Filter, 'filter["x y"].$in[0]'],
      [{ ['\ud800']: 'x' }, 'filter["\\ud800"]'],
      [{ ok_1: { $in: 2 } } as unknown as Filter, 'filter.ok_1'],
    ];
    for (const [filter, field] of cases) {
      await assert.rejects(store.search([1, 0, 0, 0], { filter }), (e: unknown) => {
        const got = e as { code?: string; field?: string };
        return got.code === 'INVALID_ARGUMENT' && got.field === field && isWellFormed(got.field);
      });
      assert.throws(() => store.ids(filter), (e: unknown) => (e as { field?: string }).field === field);
    }
    // The metadata path of the same key, for comparison: the two name it alike.
    await assert.rejects(store.add([{ id: 'b', vector: [1, 0, 0, 0], meta: { 'a.b': undefined as unknown as number } }]), (e: unknown) => (e as { field?: string }).field === 'records[0].meta["a.b"]');
    assert.deepEqual(store.ids({ 'a.b': 1 }), ['a']);
  } finally {
    await store.close();
  }
});

test('store filters: stats().diskBytes counts the filter columns\' file with every other file of the store but its two locks (it had been left out)', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4, durability: 'none' });
  try {
    await store.add(Array.from({ length: 300 }, (_, i) => ({ id: `r${i}`, vector: [Math.sin(i), Math.cos(i), i % 7, 1], text: `t${i}`, meta: { g: i % 5 } })));
    await store.search([1, 0, 0, 1], { filter: { g: 2 } });
    await store.compact();
    const walk = (d: string): [string, number][] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [[e.name, statSync(join(d, e.name)).size] as [string, number]]));
    const files = walk(dir);
    assert.ok(files.some(([name, size]) => name.endsWith('.col') && size > 0), 'a columns file');
    const counted = files.filter(([name]) => name !== 'LOCK' && name !== 'state.mdb-lock').reduce((sum, [, size]) => sum + size, 0);
    assert.equal(store.stats().diskBytes, counted);
  } finally {
    await store.close();
  }
});
