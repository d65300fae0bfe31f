import assert from 'node:assert/strict';
import { sep } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemStore, type OpenOptions } from '../src/index.js';
import { CODEC_NAMES, isRqCodec } from '../src/codec/codec.js';
import { FilterColumns, MAX_VALUES } from '../src/filter/columns.js';
import { matchesFilter } from '../src/filter/match.js';
import type { Filter, Metric } from '../src/options.js';
import { statePath } from '../src/store/files.js';
import { open as openLmdb } from 'lmdb';
import { cliResult } from './support/cli.js';
import { heldLog } from './support/held-log.js';
import { clustered, damageText, rejectsWith, rng, tempDir } from './helpers.js';

/**
 * Hostile tests of the filter columns (src/filter/): whatever the field names, the values, the
 * dictionary's overflow, the index being replaced (PCA, pages), concurrent writes, reopening,
 * compaction, the cache and damage, a filtered search answers as matchesFilter says. The oracle:
 * an exact filtered search without rescoring equals the unfiltered exact search of every record,
 * filtered by hand with matchesFilter and cut to k, ids and scores.
 */
const DIM = 16;

type Hit = { id: string; score: number };

async function byHand(store: MemStore, q: Float32Array, filter: Filter, k: number): Promise<Hit[]> {
  const all = await store.search(q, { k: Math.max(1, store.stats().count), exact: true, rescore: false });
  return all.filter((h) => matchesFilter(h.meta, filter)).slice(0, k).map(({ id, score }) => ({ id, score }));
}

/** The exact filtered search equals the oracle. */
async function expectExact(store: MemStore, q: Float32Array, filter: Filter, k: number, what = ''): Promise<Hit[]> {
  const got = (await store.search(q, { k, filter, exact: true, rescore: false })).map(({ id, score }) => ({ id, score }));
  const want = await byHand(store, q, filter, k);
  assert.deepEqual(got, want, `${what} ${JSON.stringify(filter)}`);
  return got;
}

/** Any search (paged, rescored): every hit matches, no id twice, best first. */
async function expectOnlyMatches(store: MemStore, q: Float32Array, filter: Filter, k: number, extra: { exact?: boolean; rescore?: boolean; nprobe?: number } = {}): Promise<void> {
  const hits = await store.search(q, { k, filter, ...extra });
  assert.ok(hits.length <= k);
  assert.equal(new Set(hits.map((h) => h.id)).size, hits.length, 'an id twice');
  for (const h of hits) assert.ok(matchesFilter(h.meta, filter), `${h.id} ${JSON.stringify(h.meta)} does not match ${JSON.stringify(filter)}`);
  for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score, 'not best first');
}

const CONFIGS: readonly { name: string; options: OpenOptions }[] = [
  { name: 'exact index, cache off', options: { dim: DIM, cache: false } },
  { name: 'exact index, cache on', options: { dim: DIM } },
  { name: 'pages, cache off', options: { dim: DIM, cache: false, pages: { from: 40, maxPage: 16 } } },
  { name: 'pages, cache on', options: { dim: DIM, pages: { from: 40, maxPage: 16 } } },
];

/** Field names that are also names of Object.prototype's members, or look like the columns' own keys. */
const ODD_FIELDS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '', '$in', 's', 'n0', 'z', 't', 'f', 'é', 'e\u0301', '😀', ' ', 'a.b', 'length'];

/** Values whose keys in a column must stay apart exactly when === does. */
const ODD_VALUES: readonly (string | number | boolean | null)[] = [
  0, -0, 1, -1, 1e308, -1e308, 5e-324, -5e-324, 2 ** 53, 2 ** 53 + 2, 0.1 + 0.2, 0.3, 1e21, 1e-7,
  '', '0', 'n0', 's', 'sfoo', 'foo', 'z', 't', 'f', 'true', 'false', 'null', 'n', 'e\u0301', 'é', '😀', '\u0000', 'x'.repeat(5000),
  true, false, null,
];

/** Metadata with an odd field holding an odd value, or an object, array, or nothing there. */
function oddMeta(i: number, next: () => number): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const field of ODD_FIELDS) {
    const r = next();
    let v: unknown;
    if (r < 0.25) continue;
    else if (r < 0.3) v = [ODD_VALUES[i % ODD_VALUES.length]];
    else if (r < 0.35) v = { v: ODD_VALUES[i % ODD_VALUES.length] };
    else v = ODD_VALUES[Math.floor(next() * ODD_VALUES.length)];
    Object.defineProperty(meta, field, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return meta;
}

function oddFilter(next: () => number): Filter {
  const out: Record<string, unknown> = {};
  const fields = 1 + Math.floor(next() * 2);
  for (let f = 0; f < fields; f++) {
    const field = ODD_FIELDS[Math.floor(next() * ODD_FIELDS.length)]!;
    const pick = () => ODD_VALUES[Math.floor(next() * ODD_VALUES.length)]!;
    const cond = next() < 0.5 ? pick() : { $in: Array.from({ length: Math.floor(next() * 4) }, pick) };
    Object.defineProperty(out, field, { value: cond, enumerable: true, writable: true, configurable: true });
  }
  return out as Filter;
}

for (const { name, options } of CONFIGS) {
  test(`hostile filters (${name}): fields named __proto__, constructor, toString, '', '$in', unicode; values -0, 1e308, 5e-324, 2^53+2, strings shaped like column keys, long strings; every exact filtered search equals the oracle`, async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, { ...options, durability: 'none' });
    try {
      const next = rng(11);
      const vectors = clustered(90, DIM, 5);
      await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: oddMeta(i, next) as never })));
      for (let s = 0; s < 60; s++) {
        const filter = oddFilter(next);
        const q = vectors[Math.floor(next() * vectors.length)]!;
        await expectExact(store, q, filter, 1 + Math.floor(next() * 20), `search ${s}`);
        await expectOnlyMatches(store, q, filter, 10);
      }
      // Every value of every field on its own, and as $in with its neighbours and duplicates.
      for (const field of ODD_FIELDS) {
        for (let v = 0; v < ODD_VALUES.length; v++) {
          const one = Object.defineProperty({}, field, { value: ODD_VALUES[v], enumerable: true }) as Filter;
          await expectExact(store, vectors[v]!, one, 90);
          const many = Object.defineProperty({}, field, { value: { $in: [ODD_VALUES[v], ODD_VALUES[v], ODD_VALUES[(v + 1) % ODD_VALUES.length]] }, enumerable: true }) as Filter;
          await expectExact(store, vectors[v]!, many, 7);
        }
      }
    } finally {
      await store.close();
    }
  });
}

test('hostile filters: -0 and 0 are one value in a filter and in metadata; 5e-324 and 0 are not; 2^53 and 2^53+1 are one (the same double)', async () => {
  const store = await MemStore.open(tempDir(), { dim: DIM, cache: false, durability: 'none' });
  try {
    const vectors = clustered(12, DIM, 2);
    const values = [0, -0, 5e-324, -5e-324, 2 ** 53, 2 ** 53 + 2, 1e308, 0, -0, 5e-324, 2 ** 53, 1e308];
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { v: values[i]! } })));
    const ids = async (filter: Filter) => (await expectExact(store, vectors[0]!, filter, 12)).map((h) => h.id).sort();
    assert.deepEqual(await ids({ v: -0 }), ['r0', 'r1', 'r7', 'r8']);
    assert.deepEqual(await ids({ v: 0 }), ['r0', 'r1', 'r7', 'r8']);
    assert.deepEqual(await ids({ v: 5e-324 }), ['r2', 'r9']);
    assert.deepEqual(await ids({ v: 2 ** 53 + 1 }), ['r10', 'r4']);
    assert.deepEqual(await ids({ v: { $in: [1e308, -5e-324] } }), ['r11', 'r3', 'r6']);
  } finally {
    await store.close();
  }
});

test('hostile filters: null matches only null, never a missing field, an object, an array, the string "null", 0 or false', async () => {
  for (const { options } of CONFIGS) {
    const store = await MemStore.open(tempDir(), { ...options, durability: 'none' });
    try {
      const vectors = clustered(50, DIM, 4);
      const shapes: Record<string, unknown>[] = [{ a: null }, {}, { a: {} }, { a: [] }, { a: [null] }, { a: { $in: [null] } }, { b: null }, { a: 'null' }, { a: 0 }, { a: false }];
      await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, ...(i % 11 === 10 ? {} : { meta: shapes[i % 10] as never }) })));
      const got = await expectExact(store, vectors[3]!, { a: null }, 50);
      assert.deepEqual(got.map((h) => h.id).sort(), ['r0', 'r20', 'r30', 'r40'].sort());
      await expectExact(store, vectors[3]!, { a: { $in: [null, false] } }, 50);
      await expectExact(store, vectors[3]!, { a: null, b: null }, 50);
      await expectExact(store, vectors[3]!, { b: null }, 50);
    } finally {
      await store.close();
    }
  }
});

test('hostile filters: an empty $in matches nothing; a $in of 10,000 values (duplicates too) takes exactly the matches; 10,001 values is INVALID_ARGUMENT', async () => {
  for (const { options } of CONFIGS) {
    const store = await MemStore.open(tempDir(), { ...options, durability: 'none' });
    try {
      const vectors = clustered(80, DIM, 6);
      await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { v: i % 40, s: `s${i % 40}` } })));
      assert.deepEqual(await store.search(vectors[0]!, { k: 10, filter: { v: { $in: [] } } }), []);
      assert.deepEqual(await store.search(vectors[0]!, { k: 10, filter: { v: { $in: [] } }, exact: true }), []);
      const big = Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? 7 : i % 3 === 1 ? i + 1000 : `s${i % 20}`));
      await expectExact(store, vectors[1]!, { v: { $in: big } }, 80);
      await expectExact(store, vectors[1]!, { s: { $in: big } }, 80);
      await expectOnlyMatches(store, vectors[1]!, { s: { $in: big } }, 80);
      const dupes = Array.from({ length: 10_000 }, () => 3);
      const got = await expectExact(store, vectors[1]!, { v: { $in: dupes } }, 80);
      assert.deepEqual(got.map((h) => h.id).sort(), ['r3', 'r43']);
      await rejectsWith(() => store.search(vectors[1]!, { k: 3, filter: { v: { $in: Array.from({ length: 10_001 }, () => 1) } } }), 'INVALID_ARGUMENT');
    } finally {
      await store.close();
    }
  }
});

test('hostile filters: malformed filters are INVALID_ARGUMENT (NaN, Infinity, undefined, an object value, $in not alone, a hole in $in, a non-array $in) and leave no column behind', async () => {
  const store = await MemStore.open(tempDir(), { dim: DIM, cache: false, durability: 'none' });
  try {
    const vectors = clustered(20, DIM, 1);
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { v: i % 4 } })));
    const bad: unknown[] = [
      { v: NaN },
      { v: Infinity },
      { v: -Infinity },
      { v: undefined },
      { v: { a: 1 } },
      { v: { $in: [1], x: 2 } },
      { v: { $in: [1, , 2] } },
      { v: { $in: 1 } },
      { v: { $in: [NaN] } },
      { v: { $in: [[1]] } },
      { v: [1] },
      { v: 10n },
      [],
      'v',
      new Map([['v', 1]]),
    ];
    const before = store.stats().memoryBytes;
    for (const filter of bad) await rejectsWith(() => store.search(vectors[0]!, { k: 3, filter: filter as Filter }), 'INVALID_ARGUMENT');
    assert.equal(store.stats().memoryBytes, before);
    await expectExact(store, vectors[0]!, { v: 1 }, 20);
    assert.ok(store.stats().memoryBytes > before, 'a good filter makes its column');
  } finally {
    await store.close();
  }
});

test('hostile filters: the gather kernel of the matching scan scores as the block scan does, for every codec and metric, at dimensions off the kernel width, before and after PCA, in blocks and in pages', async () => {
  const metrics: Metric[] = ['cosine', 'dot', 'l2'];
  for (const codec of CODEC_NAMES) {
    for (const metric of metrics) {
      for (const [dim, pca, pages] of [[13, undefined, false], [33, undefined, false], [24, 5, false], [13, undefined, true], [24, 5, true]] as const) {
        const store = await MemStore.open(tempDir(), { dim, codec, metric, cache: false, durability: 'none', pages: pages ? { from: 40, maxPage: 16 } : false, ...(pca === undefined ? {} : { pca: { dims: pca } }), ...(pca === undefined && !isRqCodec(codec) ? {} : { trainSize: 60 }) });
        try {
          const vectors = clustered(120, dim, dim + 1);
          await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { one: i % 37 === 0, few: i % 9 } })));
          for (let q = 0; q < 2; q++) {
            // Selective enough for the matching scan (at most a third of the records), and not.
            await expectExact(store, vectors[q * 7]!, { one: true }, 5, `${codec} ${metric} ${dim}`);
            await expectExact(store, vectors[q * 7]!, { few: { $in: [1, 2] } }, 40, `${codec} ${metric} ${dim}`);
            await expectExact(store, vectors[q * 7]!, { few: { $in: [1, 2, 3, 4, 5, 6] } }, 40, `${codec} ${metric} ${dim}`);
          }
          if (pages) assert.ok(store.stats().pages > 1);
        } finally {
          await store.close();
        }
      }
    }
  }
});

test('hostile filters: past 4,094 distinct values seen by a column (upserts of 60 records, each with ever new values) new values hash into buckets; stale dictionary values match nothing; upserts and deletes after keep every answer exact', async () => {
  for (const { name, options } of CONFIGS) {
    const store = await MemStore.open(tempDir(), { ...options, durability: 'none' });
    try {
      const vectors = clustered(60, DIM, 8);
      const meta = new Map<string, number>();
      const put = async (ids: number[], round: number) => {
        await store.add(ids.map((i) => ({ id: `r${i}`, vector: vectors[i]!, meta: { u: round * 1000 + i, s: `v${(round * 1000 + i) % 5000}`, c: i % 3 } })));
        for (const i of ids) meta.set(`r${i}`, round * 1000 + i);
      };
      await put([...vectors.keys()], 0);
      // The columns of u and s exist from here on: every write sets their codes.
      await expectExact(store, vectors[0]!, { u: 5 }, 3, name);
      await expectExact(store, vectors[0]!, { s: 'v5' }, 3, name);
      for (let round = 1; round <= 90; round++) await put([...vectors.keys()], round);
      // 91 * 60 = 5,460 distinct values of u seen: the last ones live in buckets.
      const next = rng(3);
      for (let s = 0; s < 40; s++) {
        const q = vectors[Math.floor(next() * 60)]!;
        const live = [...meta.values()];
        const pick = () => (next() < 0.7 ? live[Math.floor(next() * live.length)]! : Math.floor(next() * 91_000));
        await expectExact(store, q, { u: pick() }, 5, name);
        await expectExact(store, q, { u: { $in: Array.from({ length: 1 + Math.floor(next() * 30) }, pick) } }, 12, name);
        await expectExact(store, q, { s: { $in: Array.from({ length: 5 }, () => `v${pick() % 5000}`) }, c: { $in: [0, 1] } }, 12, name);
        await expectOnlyMatches(store, q, { u: { $in: Array.from({ length: 40 }, pick) } }, 10);
        if (s % 5 === 4) {
          const gone = Array.from({ length: 3 }, () => Math.floor(next() * 60));
          await store.delete(gone.map((i) => `r${i}`));
          for (const i of gone) meta.delete(`r${i}`);
          await put(Array.from({ length: 4 }, () => Math.floor(next() * 60)), 91 + s);
        }
      }
      // Values only in the stale part of the dictionary (held by no record now) match nothing.
      assert.deepEqual(await store.search(vectors[0]!, { k: 10, filter: { u: 5 } }), []);
      assert.deepEqual(await store.search(vectors[0]!, { k: 10, filter: { u: { $in: [1, 2, 3, 1001, 2002] } }, exact: true }), []);
    } finally {
      await store.close();
    }
  }
});

test('hostile filters: a column made before PCA training and before the switch to pages is made again for the new index: answers stay exact across both', async () => {
  for (const cache of [false, undefined] as const) {
    const store = await MemStore.open(tempDir(), { dim: DIM, pca: { dims: 8 }, trainSize: 50, pages: { from: 70, maxPage: 16 }, durability: 'none', ...(cache === false ? { cache } : {}) });
    try {
      const vectors = clustered(160, DIM, 9);
      const metaOf = (i: number, round: number) => ({ g: (i + round) % 5, h: i % 2 === 0 ? 'even' : null, ...(i % 7 === 0 ? {} : { k: `k${i % 4}` }) });
      const filters: Filter[] = [{ g: 1 }, { g: { $in: [0, 4] } }, { h: null }, { h: 'even', g: 2 }, { k: 'k1' }, { k: { $in: ['k0', 'k3', 'k9'] } }, { g: 1, k: 'k2', h: null }];
      let stored = 0;
      const check = async (label: string) => {
        for (const [i, f] of filters.entries()) {
          await expectExact(store, vectors[i * 3]!, f, 1 + i * 4, label);
          await expectOnlyMatches(store, vectors[i * 3]!, f, 10);
          await expectOnlyMatches(store, vectors[i * 3]!, f, 10, { rescore: true });
        }
      };
      // 10 at a time: columns made at 10, 20, 30, 40; training at 50 replaces the index; pages at 70.
      for (; stored < 160; stored += 10) {
        await store.add(vectors.slice(stored, stored + 10).map((vector, j) => ({ id: `r${stored + j}`, vector, meta: metaOf(stored + j, 0) })));
        // An upsert of older records after each step (their codes change in the columns).
        await store.add([0, 3, 5].filter((i) => i < stored).map((i) => ({ id: `r${i}`, vector: vectors[i]!, meta: metaOf(i, stored) })));
        await check(`after ${stored + 10} records`);
      }
      assert.ok(store.stats().pages > 1, 'the store went to pages');
    } finally {
      await store.close();
    }
  }
});

test('hostile filters: filtered searches racing adds, upserts that change the filtered field and deletes (nothing awaited between them) return only records that match, and exact answers once the writes are in', async () => {
  for (const { name, options } of CONFIGS) {
    const store = await MemStore.open(tempDir(), { ...options, durability: 'none' });
    try {
      const vectors = clustered(100, DIM, 12);
      await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: i % 4 }, text: `text ${i}` })));
      const next = rng(5);
      for (let round = 0; round < 25; round++) {
        const jobs: Promise<unknown>[] = [];
        for (let j = 0; j < 12; j++) {
          const r = next();
          const i = Math.floor(next() * 100);
          if (r < 0.5) {
            const f: Filter = next() < 0.5 ? { g: Math.floor(next() * 4) } : { g: { $in: [0, Math.floor(next() * 4)] } };
            const rescore = next() < 0.5;
            const exact = next() < 0.5;
            jobs.push(
              store.search(vectors[i]!, { k: 1 + Math.floor(next() * 15), filter: f, rescore, exact }).then((hits) => {
                for (const h of hits) assert.ok(matchesFilter(h.meta, f), `${name}: ${h.id} ${JSON.stringify(h.meta)} against ${JSON.stringify(f)}`);
              }),
            );
          } else if (r < 0.8) {
            jobs.push(store.add([{ id: `r${i}`, vector: vectors[Math.floor(next() * 100)]!, meta: { g: Math.floor(next() * 4) }, text: `text ${i} again` }]));
          } else if (r < 0.9) {
            jobs.push(store.delete([`r${i}`]));
          } else {
            jobs.push(store.add([{ id: `r${i}`, vector: vectors[i]! }]));
          }
        }
        await Promise.all(jobs);
        const q = vectors[Math.floor(next() * 100)]!;
        await expectExact(store, q, { g: round % 4 }, 10, name);
        await expectExact(store, q, { g: { $in: [1, 3] } }, 30, name);
      }
    } finally {
      await store.close();
    }
  }
});

test('hostile filters: deleting every record, then adding again; k larger than the matches; a filter naming only missing fields', async () => {
  for (const { name, options } of CONFIGS) {
    const store = await MemStore.open(tempDir(), { ...options, durability: 'none' });
    try {
      const vectors = clustered(60, DIM, 13);
      await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: i % 3 } })));
      const got = await expectExact(store, vectors[0]!, { g: 2 }, 1000, name);
      assert.equal(got.length, 20);
      assert.equal((await store.search(vectors[0]!, { k: 1000, filter: { g: 2 } })).length, 20, 'a paged search finds every match when k exceeds them');
      assert.deepEqual(await store.search(vectors[0]!, { k: 5, filter: { nope: 1 } }), []);
      await store.delete(vectors.map((_, i) => `r${i}`));
      assert.deepEqual(await store.search(vectors[0]!, { k: 5, filter: { g: 2 } }), []);
      assert.deepEqual(await store.search(vectors[0]!, { k: 5, filter: { g: 2 }, exact: true, rescore: false }), []);
      await store.add(vectors.slice(0, 30).map((vector, i) => ({ id: `n${i}`, vector, meta: { g: (i + 1) % 3 } })));
      const again = await expectExact(store, vectors[1]!, { g: 2 }, 1000, name);
      assert.equal(again.length, 10);
      assert.ok(again.every((h) => h.id.startsWith('n')));
      await store.delete(['n0', 'n1', 'n2']);
      await store.compact();
      await expectExact(store, vectors[1]!, { g: { $in: [2, 0] } }, 1000, name);
    } finally {
      await store.close();
    }
  }
});

/** Flips a byte of the stored document of `id` in the store's state (the store must be closed). */
async function damageDoc(dir: string, id: string, at = 12): Promise<void> {
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  try {
    const docs = env.openDB({ name: 'docs', encoding: 'binary', keyEncoding: 'binary' });
    const raw = Buffer.from(docs.getBinary(Buffer.from(id)) as Uint8Array);
    raw[at]! ^= 0x20;
    await docs.put(Buffer.from(id), raw);
  } finally {
    await env.close();
  }
}

for (const { name, options } of CONFIGS) {
  test(`hostile filters (${name}): documents damaged on disk are UNKNOWN in a column made after reopening; filtered searches skip them, set them aside, and equal the oracle over the rest; after repair too`, async () => {
    const dir = tempDir();
    const vectors = clustered(80, DIM, 14);
    const text = (i: number) => `the text of record ${i}, long enough to find it in the arena`;
    let store = await MemStore.open(dir, { ...options, durability: 'none' });
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, text: text(i), meta: { g: i % 4, one: i === 6 || i === 9 } })));
    await store.close();
    // r6 and r9 are the only records { one: true } takes; r4's text is damaged, r8's document.
    await damageDoc(dir, 'r6');
    await damageDoc(dir, 'r8');
    damageText(dir, text(4));
    store = await MemStore.open(dir, { ...options, durability: 'none' });
    try {
      const hits = await store.search(vectors[6]!, { k: 5, filter: { one: true }, exact: true, rescore: false });
      assert.deepEqual(hits.map((h) => h.id), ['r9']);
      assert.ok(store.stats().damaged >= 1);
      for (let q = 0; q < 8; q++) {
        await expectExact(store, vectors[q]!, { g: q % 4 }, 30, name);
        await expectExact(store, vectors[q]!, { g: { $in: [0, 2] } }, 80, name);
        await expectOnlyMatches(store, vectors[q]!, { g: q % 4 }, 30);
      }
      const all = await store.search(vectors[0]!, { k: 80, exact: true, rescore: false });
      for (const id of ['r4', 'r6', 'r8']) assert.ok(all.every((h) => h.id !== id), `${id} is set aside`);
      assert.equal(store.stats().damaged, 3);
      // An upsert of a damaged record brings it back into the columns with its new metadata.
      await store.add([{ id: 'r8', vector: vectors[8]!, meta: { g: 1, one: true } }]);
      assert.deepEqual((await expectExact(store, vectors[8]!, { one: true }, 5)).map((h) => h.id).sort(), ['r8', 'r9']);
    } finally {
      await store.close();
    }
    const repaired = await cliResult(['repair', dir, '--report', `${tempDir()}/report.jsonl`]);
    assert.equal(repaired.code, 0, repaired.stderr + repaired.stdout);
    store = await MemStore.open(dir, { ...options, durability: 'none' });
    try {
      assert.equal(store.stats().damaged, 0);
      for (let q = 0; q < 4; q++) await expectExact(store, vectors[q]!, { g: { $in: [q, 3] } }, 40, name);
      assert.deepEqual((await expectExact(store, vectors[8]!, { one: true }, 5)).map((h) => h.id).sort(), ['r8', 'r9']);
    } finally {
      await store.close();
    }
  });
}

test('hostile filters: a document damaged on disk but never met by a search stays UNKNOWN in its column; an upsert that drops its field takes it out of every filter', async () => {
  const dir = tempDir();
  const vectors = clustered(30, DIM, 15);
  let store = await MemStore.open(dir, { dim: DIM, cache: false, durability: 'none' });
  await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: i % 3 } })));
  await store.close();
  await damageDoc(dir, 'r29');
  store = await MemStore.open(dir, { dim: DIM, cache: false, durability: 'none' });
  try {
    // The column of g is made here: r29's document cannot be read, and r29 (the last slot, another
    // cluster) never scores high enough for the search to ask its metadata.
    const hits = await store.search(vectors[0]!, { k: 1, filter: { g: { $in: [0, 1, 2] } }, exact: true, rescore: false });
    assert.deepEqual(hits.map((h) => h.id), ['r0']);
    assert.equal(store.stats().damaged, 0, 'r29 was not met');
    await store.add([{ id: 'r29', vector: vectors[1]!, meta: { other: 1 } }]);
    for (const g of [0, 1, 2]) assert.ok((await expectExact(store, vectors[1]!, { g }, 30)).every((h) => h.id !== 'r29'));
    assert.deepEqual((await expectExact(store, vectors[1]!, { other: 1 }, 30)).map((h) => h.id), ['r29']);
    assert.equal(store.stats().damaged, 0);
  } finally {
    await store.close();
  }
});

const MODEL_CONFIGS: readonly { name: string; options: OpenOptions }[] = [
  ...CONFIGS,
  { name: 'PCA then pages, cache on', options: { dim: DIM, pca: { dims: 8 }, trainSize: 30, pages: { from: 45, maxPage: 16 } } },
  { name: 'PCA then pages, cache off, no full vectors', options: { dim: DIM, pca: { dims: 8 }, trainSize: 30, pages: { from: 45, maxPage: 16 }, cache: false, rescore: false } },
];

for (const { name, options } of MODEL_CONFIGS) {
  test(`hostile filters (${name}): random odd metadata, upserts, deletes, bursts of concurrent writes and searches, near repeats, reopens and compactions; exact filtered searches equal the oracle, all others return only matches`, async () => {
    const vectors = clustered(100, DIM, 21);
    const value = fc.constantFrom<unknown>(...ODD_VALUES.filter((v) => typeof v !== 'string' || v.length < 100), [0], { a: 1 });
    const field = fc.constantFrom('g', '__proto__', 'constructor', '', 's');
    const meta = fc.option(fc.dictionary(field, value, { maxKeys: 3 }), { nil: undefined });
    const scalar = fc.constantFrom(...ODD_VALUES.filter((v) => typeof v !== 'string' || v.length < 100));
    const filter = fc.dictionary(field, fc.oneof(scalar, fc.record({ $in: fc.array(scalar, { maxLength: 4 }) })), { minKeys: 1, maxKeys: 2 });
    const put = fc.record({ kind: fc.constant('put' as const), ids: fc.array(fc.record({ n: fc.nat(69), v: fc.nat(99), meta }), { minLength: 1, maxLength: 15 }) });
    const del = fc.record({ kind: fc.constant('delete' as const), ids: fc.array(fc.nat(69), { maxLength: 8 }) });
    const search = fc.record({ kind: fc.constant('search' as const), q: fc.nat(99), k: fc.integer({ min: 1, max: 80 }), filter, near: fc.boolean() });
    const op = fc.oneof(
      { weight: 5, arbitrary: put },
      { weight: 2, arbitrary: del },
      { weight: 5, arbitrary: search },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('burst' as const), ops: fc.array(fc.oneof(put, del, search), { minLength: 2, maxLength: 8 }) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
    );
    type Op = typeof put extends fc.Arbitrary<infer P> ? P : never;
    type Del = typeof del extends fc.Arbitrary<infer D> ? D : never;
    const records = (o: Op) => o.ids.map((r) => ({ id: `r${r.n}`, vector: vectors[r.v]!, ...(r.meta === undefined ? {} : { meta: r.meta as never }) }));
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
        const dir = tempDir();
        const open = () => MemStore.open(dir, { ...options, durability: 'none' });
        let store = await open();
        const next = rng(ops.length);
        try {
          for (const o of ops) {
            if (o.kind === 'put') await store.add(records(o));
            else if (o.kind === 'delete') await store.delete((o as Del).ids.map((n) => `r${n}`));
            else if (o.kind === 'reopen') {
              await store.close();
              store = await open();
            } else if (o.kind === 'compact') await store.compact();
            else if (o.kind === 'burst') {
              await Promise.all(
                o.ops.map((b) => {
                  if (b.kind === 'put') return store.add(records(b as Op));
                  if (b.kind === 'delete') return store.delete((b as Del).ids.map((n) => `r${n}`));
                  const f = b.filter as Filter;
                  return store.search(vectors[b.q]!, { k: b.k, filter: f }).then((hits) => {
                    for (const h of hits) assert.ok(matchesFilter(h.meta, f), `${h.id} ${JSON.stringify(h.meta)} against ${JSON.stringify(f)}`);
                  });
                }),
              );
            } else {
              const f = o.filter as Filter;
              const q = o.near ? vectors[o.q]!.map((x) => x + 0.01 * (next() - 0.5)) : vectors[o.q]!;
              await expectExact(store, q, f, o.k, name);
              await expectExact(store, q, f, o.k, `${name}, again`);
              await expectOnlyMatches(store, q, f, o.k);
              await expectOnlyMatches(store, q, f, o.k, { nprobe: 1 });
            }
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 12 },
    );
  });
}

test('hostile filters: searches naming ever new fields (held by no record) do not grow the memory the store holds without bound', async () => {
  const store = await MemStore.open(tempDir(), { dim: DIM, cache: false, durability: 'none' });
  try {
    const vectors = clustered(300, DIM, 16);
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { g: i % 3 } })));
    const fields = async (from: number, to: number) => {
      for (let i = from; i < to; i++) assert.deepEqual(await store.search(vectors[i % 300]!, { k: 3, filter: { [`field-${i}`]: 1 } }), []);
    };
    await fields(0, 200);
    const after200 = store.stats().memoryBytes;
    await fields(200, 3000);
    const after3000 = store.stats().memoryBytes;
    assert.ok(after3000 <= after200 * 1.1, `${after200} bytes after 200 fields named, ${after3000} after 3,000`);
    // A filter naming as many fields as are kept is answered exactly; one more is refused (INVALID_ARGUMENT).
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`field-${i}`, 1]));
    assert.deepEqual(await store.search(vectors[0]!, { k: 3, filter: many(64) }), []);
    await assert.rejects(store.search(vectors[0]!, { k: 3, filter: many(65) }), (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT');
    await expectExact(store, vectors[1]!, { g: 1 }, 20);
  } finally {
    await store.close();
  }
});

test('hostile filters: a field of long distinct values (50 KB each) keeps a dictionary of 256 KiB and its last key at most, hashing the rest, and stays exact across a checkpoint and reopen (its dictionary had held every value: 100 MB for 1,000 records)', async () => {
  const dir = tempDir();
  const N = 200;
  const vectors = clustered(N, DIM, 21);
  const long = (i: number) => `${i}:${'x'.repeat(50_000)}`;
  let store = await MemStore.open(dir, { dim: DIM, cache: false, durability: 'none' });
  try {
    await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: { summary: long(i), g: i % 2 } })));
    const before = store.stats().memoryBytes;
    for (const i of [0, 3, N - 1]) await expectExact(store, vectors[i]!, { summary: long(i) }, 5, 'as made');
    const grown = store.stats().memoryBytes - before;
    assert.ok(grown < 256 * 1024 + 2 * long(0).length + 64 * 1024 + 20 * N, `the column took ${grown} bytes`);
    await expectExact(store, vectors[5]!, { summary: { $in: [long(5), long(150), 'none'] }, g: 1 }, 5, 'with another field');
  } finally {
    await store.close();
  }
  store = await MemStore.open(dir, { cache: false });
  try {
    for (const i of [1, 100, N - 2]) await expectExact(store, vectors[i]!, { summary: long(i) }, 5, 'reopened');
  } finally {
    await store.close();
  }
});

test('hostile filters: filters over a hundred fields in rotation, with upserts between them, stay exact (columns dropped and made again)', async () => {
  for (const { name, options } of CONFIGS) {
    const store = await MemStore.open(tempDir(), { ...options, durability: 'none' });
    try {
      const vectors = clustered(60, DIM, 17);
      const metaOf = (i: number, round: number) => Object.fromEntries(Array.from({ length: 100 }, (_, f) => [`f${f}`, (i + f + round) % 4]).filter((_, f) => (i + f) % 5 !== 0));
      await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector, meta: metaOf(i, 0) })));
      const next = rng(9);
      for (let s = 0; s < 300; s++) {
        const f = Math.floor(next() * 100);
        const filter: Filter = next() < 0.5 ? { [`f${f}`]: s % 4 } : { [`f${f}`]: { $in: [0, s % 4] }, [`f${(f * 7) % 100}`]: { $in: [1, 2, 3] } };
        await expectExact(store, vectors[s % 60]!, filter, 1 + (s % 25), name);
        if (s % 10 === 9) {
          const ids = Array.from({ length: 5 }, () => Math.floor(next() * 60));
          await store.add(ids.map((i) => ({ id: `r${i}`, vector: vectors[(i + s) % 60]!, meta: metaOf(i, s) })));
          await store.delete([`r${Math.floor(next() * 60)}`]);
        }
      }
    } finally {
      await store.close();
    }
  }
});

test('filter columns: past maxColumns the column named least lately is dropped and made again on its next use; a filter naming more fields has them all', () => {
  const metas: Record<string, unknown>[] = [{ a: 1, b: 2, c: 3 }, { a: 2, b: 2 }, { c: 3 }];
  const columns = new FilterColumns(MAX_VALUES, 2);
  let reads = 0;
  const metaAt = (slot: number) => {
    reads++;
    return metas[slot];
  };
  for (let slot = 0; slot < metas.length; slot++) columns.added(slot);
  const taken = (filter: Filter) => {
    const t = columns.compile(filter, metaAt);
    return [0, 1, 2].filter((slot) => t.test(slot) !== 0);
  };
  assert.deepEqual(taken({ a: 1 }), [0]);
  assert.deepEqual(taken({ b: 2 }), [0, 1]);
  assert.equal(reads, 6);
  assert.deepEqual(taken({ a: { $in: [1, 2] } }), [0, 1]);
  assert.equal(reads, 6, 'a and b are kept');
  assert.deepEqual(taken({ c: 3 }), [0, 2]);
  assert.equal(columns.fields, 2);
  assert.equal(reads, 9);
  // b was named least lately: it went, and is made again.
  assert.deepEqual(taken({ b: 2 }), [0, 1]);
  assert.equal(reads, 12);
  // Writes keep the kept columns; a dropped one is made from the new metadata.
  metas[2] = { a: 1, b: 2, c: 4 };
  columns.set(2, metas[2]);
  assert.deepEqual(taken({ a: 1, b: 2, c: { $in: [3, 4] } }), [0, 2]);
  assert.equal(columns.fields, 3);
  assert.deepEqual(taken({ c: 4 }), [2]);
  assert.equal(columns.fields, 2);
});

test('hostile filters: writes landing while every try of a filtered search waits for its reads (upserts that take its candidates out of the filter, deletes of them): its last try holds writes back, so every hit matches the filter and none is deleted (the last try had taken the documents of the moment for the candidates its scan had picked)', async () => {
  const dim = 16;
  const rows = clustered(120, dim, 9, 3);
  const q = rows[0]!;
  let onRead: (() => Promise<void>) | undefined;
  const files = heldLog({
    syncReads: false,
    beforeRead: async (path) => {
      if (onRead !== undefined && path.includes(`${sep}vectors${sep}`)) await onRead();
    },
  });
  const dir = tempDir();
  const seed = await MemStore.open(dir, { dim, durability: 'none', files });
  await seed.add(rows.map((vector, i) => ({ id: `r${i}`, vector, meta: { m: 'yes' } })));
  await seed.close();
  const store = await MemStore.open(dir, { durability: 'none', cache: false, files });
  try {
    const filter = { m: 'yes' };
    const victims = (await store.search(q, { k: 40, filter, rescore: false })).map((h) => h.id);
    const landing: Promise<unknown>[] = [];
    let issued = 0;
    // Not awaited here: while the search holds writes back they wait for it.
    onRead = async () => {
      if (issued >= victims.length) return;
      const victim = victims[issued]!;
      landing.push(issued++ % 2 === 0 ? store.add([{ id: victim, vector: rows[Number(victim.slice(1))]!, meta: { m: 'no' } }]) : store.delete([victim]));
      await new Promise((resolve) => setImmediate(resolve));
    };
    const hits = await store.search(q, { k: 10, filter });
    onRead = undefined;
    await Promise.all(landing);
    assert.ok(issued > 3, `${issued} writes issued during the search's reads`);
    assert.equal(hits.length, 10);
    for (const h of hits) assert.deepEqual(h.meta, { m: 'yes' }, `${h.id} as the search returned it`);
  } finally {
    await store.close();
  }
});
