import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { MemStore, MemstoreError, isMemstoreError, type OpenOptions } from '../src/index.js';
import { MAX_ID_BYTES, MAX_META_BYTES, MAX_META_DEPTH, MAX_TEXT_BYTES } from '../src/limits.js';
import { describe as describeValue } from '../src/options.js';
import { nodeFileLayer, type FileLayer } from '../io/file-layer.js';
import { clustered, exactScore, gaussian, rejectsWith, rng, tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

/**
 * One named regression test per defect found by trying memstore as a hostile user would (the
 * "hostile input" issue); each failed on the code before its fix.
 */
const DIM = 8;
const vecs = clustered(40, DIM, 71);

async function fresh(options: OpenOptions = {}): Promise<{ dir: string; store: MemStore }> {
  const dir = tempDir('memstore-hostile-');
  const store = await MemStore.open(dir, { dim: DIM, durability: 'none', ...options });
  return { dir, store };
}

async function caught(fn: () => unknown): Promise<MemstoreError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof MemstoreError, `expected a MemstoreError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a MemstoreError, nothing was thrown');
}

test('defect 1: an over-long id is INVALID_ID before anything is logged, and the store still opens after a crash', async () => {
  const { dir, store } = await fresh();
  await store.add([{ id: 'a', vector: vecs[0]! }]);
  const walBefore = store.stats().walBytes;
  const e = await caught(() => store.add([{ id: 'x'.repeat(1 << 20), vector: vecs[1]! }]));
  assert.equal(e.code, 'INVALID_ID');
  assert.equal(e.field, 'records[0].id');
  assert.equal(store.stats().count, 1);
  assert.equal(store.stats().walBytes, walBefore, 'nothing was logged');
  assert.equal((await store.search(vecs[1]!, { k: 5 })).length, 1);
  await store.abandon();
  const again = await MemStore.open(dir);
  assert.equal(again.stats().count, 1);
  assert.deepEqual((await again.get('a'))?.vector, vecs[0]);
  await again.close();
});

test('defect 2: ids are limited to MAX_ID_BYTES of UTF-8, and the longest accepted id survives checkpoints, compaction and reopen', async () => {
  const { dir, store } = await fresh();
  const emoji = '\u{1F600}';
  const longest = emoji.repeat(MAX_ID_BYTES / 4);
  assert.equal(Buffer.byteLength(longest), MAX_ID_BYTES);
  await rejectsWith(() => store.add([{ id: longest + 'x', vector: vecs[0]! }]), 'INVALID_ID');
  await rejectsWith(() => store.add([{ id: emoji.repeat(1010), vector: vecs[0]! }]), 'INVALID_ID');
  await rejectsWith(() => store.get(longest + 'x'), 'INVALID_ID');
  await rejectsWith(() => store.delete([longest + 'x']), 'INVALID_ID');
  await store.add([{ id: longest, vector: vecs[0]!, text: 'long', meta: { n: 1 } }]);
  await store.compact();
  await store.close();
  const again = await MemStore.open(dir);
  assert.equal((await again.get(longest))?.text, 'long');
  assert.equal(again.stats().walBytes, 0, 'the checkpoint at close succeeded and dropped the log');
  await again.close();
});

test('defect 3: a batch with one bad record applies none of it, whatever the record', async () => {
  const { store } = await fresh();
  const walBefore = store.stats().walBytes;
  const bad: unknown[] = [
    { id: 'y'.repeat(8000), vector: vecs[1]! },
    { id: 'z', vector: vecs[1]!, meta: { when: new Date() } },
    { id: 'z', vector: vecs[1]!, text: 'a\uD800b' },
    { id: 'z', vector: vecs[1]!, metadata: { typo: true } },
  ];
  for (const record of bad) {
    await assert.rejects(store.add([{ id: 'good', vector: vecs[0]! }, record as never]), MemstoreError);
    assert.equal(await store.get('good'), undefined);
  }
  assert.equal(store.stats().count, 0);
  assert.equal(store.stats().walBytes, walBefore);
  await store.close();
});

test('defect 4: meta is copied on the way in and on the way out', async () => {
  const { dir, store } = await fresh();
  const meta = { tag: 'a', nested: { list: [1, 2] } };
  await store.add([{ id: 'r', vector: vecs[0]!, meta }]);
  meta.tag = 'changed';
  meta.nested.list.push(3);
  const got = await store.get('r');
  assert.deepEqual(got?.meta, { tag: 'a', nested: { list: [1, 2] } });
  (got!.meta as { tag: string }).tag = 'mutated through get';
  const [hit] = await store.search(vecs[0]!, { k: 1, filter: { tag: 'a' } });
  assert.equal(hit?.id, 'r');
  (hit!.meta as { tag: string }).tag = 'mutated through search';
  assert.equal((await store.search(vecs[0]!, { k: 1, filter: { tag: 'a' } })).length, 1, 'filters see the stored value');
  assert.deepEqual((await store.get('r'))?.meta, { tag: 'a', nested: { list: [1, 2] } });
  // The same value whether the process closes or is killed.
  await store.abandon();
  const killed = await MemStore.open(dir);
  assert.deepEqual((await killed.get('r'))?.meta, { tag: 'a', nested: { list: [1, 2] } });
  await killed.close();
  const closed = await MemStore.open(dir);
  assert.deepEqual((await closed.get('r'))?.meta, { tag: 'a', nested: { list: [1, 2] } });
  await closed.close();
});

test('defect 5: meta round-trips exactly through close, crash and replay, or is refused naming the field', async () => {
  const { dir, store } = await fresh();
  const odd = JSON.parse('{"__proto__": {"x": 1}, "constructor": "c", "": "", "toString": 1}') as Record<string, unknown>;
  const metas: Record<string, unknown>[] = [
    odd,
    { big: Number.MAX_SAFE_INTEGER, small: Number.MIN_VALUE, neg: -1.5e300, frac: 0.1 + 0.2 },
    { text: 'emoji \u{1F600} nul \u0000 rtl \u202E', arr: [[], [[]], {}, null, true, false] },
    { deep: JSON.parse('['.repeat(MAX_META_DEPTH - 1) + ']'.repeat(MAX_META_DEPTH - 1)) as unknown },
  ];
  await store.add(metas.map((meta, i) => ({ id: `m${i}`, vector: vecs[i]!, meta })));
  const check = async (s: MemStore, when: string) => {
    for (const [i, meta] of metas.entries()) {
      const got = (await s.get(`m${i}`))?.meta;
      assert.deepStrictEqual(got, meta, `${when}: m${i}`);
      if (i === 0) assert.ok(Object.prototype.hasOwnProperty.call(got, '__proto__'), `${when}: __proto__ is an own key`);
    }
  };
  await check(store, 'live');
  await store.abandon();
  const replayed = await MemStore.open(dir);
  await check(replayed, 'after kill and replay');
  await replayed.close();
  const reopened = await MemStore.open(dir);
  await check(reopened, 'after close and reopen');

  const cycle: Record<string, unknown> = { a: 1 };
  cycle['self'] = { back: cycle };
  const sparse = [1, , 3];
  class Point {
    x = 1;
  }
  const refused: [unknown, string][] = [
    [{ m: new Map([[1, 2]]) }, 'meta.m'],
    [{ s: new Set([1]) }, 'meta.s'],
    [{ d: new Date(0) }, 'meta.d'],
    [{ f: new Float32Array(2) }, 'meta.f'],
    [{ fn: () => 1 }, 'meta.fn'],
    [{ u: undefined }, 'meta.u'],
    [{ b: 10n ** 30n }, 'meta.b'],
    [{ n: NaN }, 'meta.n'],
    [{ i: [1, Infinity] }, 'meta.i[1]'],
    [cycle, 'meta.self.back'],
    [{ sparse }, 'meta.sparse'],
    [{ p: new Point() }, 'meta.p'],
    [{ [Symbol('s')]: 1 }, 'meta'],
    [{ s: 'lone \uDC00' }, 'meta.s'],
    [{ ['k\uD800']: 1 }, 'meta["k\\ud800"]'],
    [{ deep: JSON.parse('['.repeat(MAX_META_DEPTH) + ']'.repeat(MAX_META_DEPTH)) as unknown }, `meta.deep${'[0]'.repeat(MAX_META_DEPTH - 1)}`],
    [{ big: 'x'.repeat(MAX_META_BYTES) }, 'meta'],
    [[1, 2], 'meta'],
    [new Map(), 'meta'],
  ];
  for (const [meta, field] of refused) {
    const e = await caught(() => reopened.add([{ id: 'bad', vector: vecs[0]!, meta: meta as never }]));
    assert.equal(e.code, 'INVALID_ARGUMENT', field);
    assert.equal(e.field, `records[0].${field}`);
  }
  const getterThrows = { get boom(): number {
    throw new Error('from a getter');
  } };
  const e = await caught(() => reopened.add([{ id: 'bad', vector: vecs[0]!, meta: getterThrows }]));
  assert.equal(e.code, 'INVALID_ARGUMENT');
  assert.ok(e.cause instanceof Error, 'the cause is kept');
  assert.equal(await reopened.get('bad'), undefined);

  const zero = { z: -0 };
  await reopened.add([{ id: 'zero', vector: vecs[0]!, meta: zero }]);
  assert.ok(Object.is((await reopened.get('zero'))?.meta?.['z'], 0), '-0 is stored as 0, as JSON does');
  await reopened.close();
});

test('defect 6: the lookaside cache never answers one query with another\'s answer (near queries, and [10, 0] after [1, 0] on l2 and dot)', async () => {
  const next = rng(6);
  const { store } = await fresh();
  const { store: plain } = await fresh({ cache: false });
  const items = vecs.map((vector, i) => ({ id: `v${i}`, vector }));
  await store.add(items);
  await plain.add(items);
  for (let i = 0; i < 20; i++) {
    const q = vecs[i % vecs.length]!;
    // A query at cosine about 0.96 to one already asked: the old cache gave it q's hits and scores.
    const near = q.map((x) => x + 0.08 * gaussian(next) * Math.hypot(...q) / Math.sqrt(DIM));
    await store.search(q, { k: 5 });
    assert.deepEqual(await store.search(near, { k: 5 }), await plain.search(near, { k: 5 }));
  }
  await store.close();
  await plain.close();

  for (const metric of ['l2', 'dot'] as const) {
    const { store: s } = await fresh({ metric });
    const unit = (axis: number, scale: number) => Float32Array.from({ length: DIM }, (_, i) => (i === axis ? scale : 0));
    await s.add([
      { id: 'near-origin', vector: unit(0, 1) },
      { id: 'far-out', vector: unit(0, 10) },
    ]);
    const [small] = await s.search(unit(0, 1), { k: 1 });
    const [large] = await s.search(unit(0, 10), { k: 1 });
    if (metric === 'l2') {
      assert.equal(small?.id, 'near-origin');
      assert.equal(large?.id, 'far-out');
    } else {
      assert.equal(large?.score, 100, 'the score of [10, 0, ...], not of the remembered [1, 0, ...]');
    }
    assert.deepEqual(await s.search(unit(0, 10), { k: 1 }), [large]);
    // Two vectors fit any pool whole, so the bound holds for every query: served, and right.
    assert.ok(s.stats().cache.hits >= 1, 'a cached answer was served');
    await s.close();
  }
});

test('defect 8: mistakes leave no debris: a missing dim, a refused create and a mistyped path create nothing', async () => {
  const base = tempDir('memstore-debris-');
  const missing = join(base, 'not-here');
  await rejectsWith(() => MemStore.open(missing), 'INVALID_OPTION');
  await rejectsWith(() => MemStore.open(missing, { dim: 4, pca: { dims: 8 } }), 'INVALID_OPTION');
  await rejectsWith(() => MemStore.open(missing, { dim: 4, cache: { size: 8 } } as never), 'INVALID_OPTION');
  assert.equal(existsSync(missing), false);
  const empty = join(base, 'empty');
  (await import('node:fs')).mkdirSync(empty);
  await rejectsWith(() => MemStore.open(empty), 'INVALID_OPTION');
  assert.deepEqual(readdirSync(empty), []);
  for (const cmd of ['compact', 'verify', 'inspect', 'repair']) {
    const r = await cliResult([cmd, join(base, `typo-${cmd}`)]);
    assert.equal(r.code, 2, cmd);
    assert.equal(existsSync(join(base, `typo-${cmd}`)), false, cmd);
    assert.equal((await cliResult([cmd, empty])).code, 2, cmd);
    assert.deepEqual(readdirSync(empty), [], cmd);
  }
});

test('defect 9: unknown keys inside nested options are refused', async () => {
  const dir = tempDir();
  for (const options of [
    { dim: DIM, cache: { size: 8, treshold: 0.99 } },
    { dim: DIM, cache: { entries: 8, threshold: 0.9, extra: 1 } },
    { dim: DIM, pca: { dims: 4, whiten: true } },
  ]) {
    await rejectsWith(() => MemStore.open(dir, options as never), 'INVALID_OPTION');
  }
  assert.deepEqual(readdirSync(dir), []);
  const { store } = await fresh();
  await rejectsWith(() => store.search(vecs[0]!, { k: 2, filters: { a: 1 } } as never), 'INVALID_OPTION');
  await store.close();
});

test('defect 10: on dot and l2 stores, magnitudes float32 cannot carry are refused, and what is accepted ranks right', async () => {
  const next = rng(10);
  for (const metric of ['dot', 'l2'] as const) {
    for (const codec of ['f32', 'int8', 'fp8-e4m3'] as const) {
      const { store } = await fresh({ metric, codec });
      const huge = Float32Array.from({ length: DIM }, (_, i) => (i === 0 ? 1e20 : 1));
      await rejectsWith(() => store.add([{ id: 'h', vector: huge }]), 'INVALID_VECTOR');
      await rejectsWith(() => store.search(huge), 'INVALID_VECTOR');
      await rejectsWith(() => store.add([{ id: 't', vector: new Float32Array(DIM).fill(1e-13) }]), 'INVALID_VECTOR');
      // The limits themselves are inside the range, given as numbers or as float32.
      const edge = Array.from({ length: DIM }, (_, i) => (i === 0 ? 1e-12 : 0));
      await store.add([{ id: 'least', vector: edge }, { id: 'least32', vector: Float32Array.from(edge) }]);
      await store.search(edge, { k: 1 });
      await store.delete(['least', 'least32']);
      await store.add([{ id: 'zero', vector: new Float32Array(DIM) }]);
      // At the edge of the range, codes-only and rescored top-1 still equal exact search.
      const items = Array.from({ length: 30 }, (_, i) => ({ id: `e${i}`, vector: Float32Array.from({ length: DIM }, () => gaussian(next) * 1e11) }));
      await store.add(items);
      for (let q = 0; q < 5; q++) {
        const query = Float32Array.from({ length: DIM }, () => gaussian(next) * 1e11);
        const truth = [...items, { id: 'zero', vector: new Float32Array(DIM) }].sort((a, b) => exactScore(metric, query, b.vector) - exactScore(metric, query, a.vector))[0]!.id;
        const [rescored] = await store.search(query, { k: 1 });
        assert.equal(rescored?.id, truth, `${metric}/${codec} rescored`);
        assert.ok(Number.isFinite(rescored!.score));
        const codes = await store.search(query, { k: 5, rescore: false });
        assert.ok(codes.every((h) => Number.isFinite(h.score)), `${metric}/${codec}: codes-only scores are finite`);
        assert.ok(codes.some((h) => h.id === truth), `${metric}/${codec}: the true top-1 is among the codes-only top-5`);
      }
      await store.close();
    }
  }
  // f16 carries 65,504 at most (and, after PCA, that over 2·√dim).
  const { store: f16 } = await fresh({ metric: 'dot', codec: 'f16' });
  await rejectsWith(() => f16.add([{ id: 'a', vector: new Float32Array(DIM).fill(70000) }]), 'INVALID_VECTOR');
  await f16.add([{ id: 'a', vector: new Float32Array(DIM).fill(60000) }]);
  await f16.close();
  const { store: f16pca } = await fresh({ metric: 'l2', codec: 'f16', pca: { dims: 4 } });
  await rejectsWith(() => f16pca.add([{ id: 'a', vector: new Float32Array(DIM).fill(60000) }]), 'INVALID_VECTOR');
  await f16pca.add([{ id: 'a', vector: new Float32Array(DIM).fill(0.999 * 65504 / (2 * Math.sqrt(DIM))) }]);
  await f16pca.close();
  // Cosine stores normalize first: any finite float32 vector is fine.
  const { store: cosine } = await fresh();
  await cosine.add([{ id: 'big', vector: new Float32Array(DIM).fill(1e30) }, { id: 'tiny', vector: new Float32Array(DIM).fill(1e-30) }]);
  assert.equal((await cosine.search(new Float32Array(DIM).fill(1), { k: 2 })).length, 2);
  await cosine.close();
});

test('defect 11: creating a store makes every new directory entry durable, through the file layer that creates it', async () => {
  const synced: string[] = [];
  const recording: FileLayer = { ...nodeFileLayer, syncDir: async (d) => {
    synced.push(d);
    await nodeFileLayer.syncDir(d);
  } };
  const base = tempDir();
  const dir = join(base, 'new', 'store');
  const store = await MemStore.open(dir, { dim: DIM, files: recording });
  await store.close();
  assert.ok(synced.includes(base), 'the entry of base/new is durable');
  assert.ok(synced.includes(dirname(dir)), 'the entry of base/new/store is durable');
});

test('defect 12: smaller items: values in messages keep their type, error codes match errors.ts, verify counts records, --version', async () => {
  assert.equal(describeValue('3'), '"3"');
  assert.equal(describeValue(3), '3');
  const { dir, store } = await fresh();
  // Search options are options (INVALID_OPTION); a filter is data (INVALID_ARGUMENT), as errors.ts documents.
  await rejectsWith(() => store.search(vecs[0]!, { k: '3' } as never), 'INVALID_OPTION');
  await rejectsWith(() => store.search(vecs[0]!, { rescore: 'yes' } as never), 'INVALID_OPTION');
  await rejectsWith(() => store.search(vecs[0]!, { filter: { a: { $gt: 1 } } } as never), 'INVALID_ARGUMENT');
  // A lone surrogate has no UTF-8 form: refused in ids, texts and metadata alike.
  await rejectsWith(() => store.add([{ id: 'a\uD800', vector: vecs[0]! }]), 'INVALID_ID');
  await rejectsWith(() => store.add([{ id: 'a', vector: vecs[0]!, text: 'x\uDFFF' }]), 'INVALID_ARGUMENT');
  await rejectsWith(() => store.add([{ id: 'a', vector: vecs[0]!, text: 'x'.repeat(MAX_TEXT_BYTES + 1) }]), 'INVALID_ARGUMENT');
  await store.add(Array.from({ length: 52 }, (_, i) => ({ id: `r${i}`, vector: vecs[i % vecs.length]!, text: `t${i}`, meta: { i } })));
  await store.close();
  const verify = await cliResult(['verify', dir]);
  assert.equal(verify.code, 0);
  assert.match(verify.stdout, /^state: 52 records checked/m);
  const version = await cliResult(['--version']);
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(version.stdout.trim(), pkg.version);
});

test('found by the hostile user: a leading U+FEFF (byte order mark) in an id, a text or metadata survives close, crash and replay', async () => {
  const { dir, store } = await fresh();
  const records = [
    { id: '\uFEFFa', vector: vecs[0]!, text: '\uFEFFhello', meta: { k: '\uFEFFv', ['\uFEFFkey']: 1 } },
    { id: 'a', vector: vecs[1]!, text: 'plain' },
  ];
  await store.add(records);
  const check = async (s: MemStore, when: string) => {
    assert.equal(s.stats().count, 2, when);
    const bom = await s.get('\uFEFFa');
    assert.equal(bom?.text, '\uFEFFhello', when);
    assert.deepEqual(bom?.meta, { k: '\uFEFFv', ['\uFEFFkey']: 1 }, when);
    assert.equal((await s.get('a'))?.text, 'plain', when);
  };
  await check(store, 'live');
  await store.abandon();
  const replayed = await MemStore.open(dir);
  await check(replayed, 'after a crash and replay');
  await replayed.close();
  const reopened = await MemStore.open(dir);
  await check(reopened, 'after close (checkpoint) and reopen');
  await reopened.close();
  assert.equal((await cliResult(['verify', dir])).code, 0);
});

test('found by the hostile user: input that throws when read (getters, revoked proxies) is a MemstoreError with its cause, and nothing is applied', async () => {
  const { dir, store } = await fresh();
  const boom = () => {
    throw new TypeError('boom');
  };
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const throwingVector = new Proxy(Array.from({ length: DIM }, () => 1), { get: (t, p) => (p === '3' ? boom() : Reflect.get(t, p)) });
  const cases: [() => Promise<unknown>, string][] = [
    [() => store.add([Object.defineProperty({ vector: vecs[0]! }, 'id', { get: boom, enumerable: true }) as never]), 'INVALID_ARGUMENT'],
    [() => store.add([{ id: 'v', vector: throwingVector }]), 'INVALID_VECTOR'],
    [() => store.add([revoked.proxy as never]), 'INVALID_ARGUMENT'],
    [() => store.add([{ id: 'm', vector: vecs[0]!, meta: revoked.proxy as never }]), 'INVALID_ARGUMENT'],
    [() => store.add(revoked.proxy as never), 'INVALID_ARGUMENT'],
    [() => store.delete(revoked.proxy as never), 'INVALID_ARGUMENT'],
    [() => store.search(vecs[0]!, Object.defineProperty({}, 'k', { get: boom, enumerable: true })), 'INVALID_OPTION'],
    [() => store.search(vecs[0]!, { filter: Object.defineProperty({}, 'a', { get: boom, enumerable: true }) }), 'INVALID_ARGUMENT'],
    [() => store.search(throwingVector), 'INVALID_VECTOR'],
    [() => MemStore.open(join(dir, 'other'), Object.defineProperty({}, 'dim', { get: boom, enumerable: true })), 'INVALID_OPTION'],
  ];
  for (const [call, code] of cases) {
    const e = await caught(call);
    assert.equal(e.code, code, String(call));
    assert.ok(e.cause !== undefined, `${String(call)}: the cause is kept`);
  }
  const sparse: unknown[] = [];
  sparse.length = 2 ** 32 - 1;
  const e = await caught(() => store.search(vecs[0]!, { filter: { a: { $in: sparse as never } } }));
  assert.equal(e.code, 'INVALID_ARGUMENT');
  assert.equal(e.field, 'filter.a.$in');
  const holes = [1, , 2];
  assert.equal((await caught(() => store.search(vecs[0]!, { filter: { a: { $in: holes as never } } }))).field, 'filter.a.$in[1]');
  assert.equal((await caught(() => store.search(vecs[0]!, { filter: { a: { $in: [1], $nin: [2] } } as never }))).field, 'filter.a');
  assert.equal(store.stats().count, 0);
  await store.close();
});

test('found by the hostile environment: a store opened by a relative path keeps working in its own directory after process.chdir()', async () => {
  const base = tempDir('memstore-hostile-cwd-');
  const elsewhere = tempDir('memstore-hostile-cwd-');
  const cwd = process.cwd();
  process.chdir(base);
  try {
    const store = await MemStore.open('store', { dim: DIM, durability: 'none' });
    await store.add(vecs.slice(0, 10).map((vector, i) => ({ id: `a${i}`, vector, text: `t${i}` })));
    process.chdir(elsewhere);
    // Everything that opens a file by name after open: the state file's rewrite, new arena generations, the next index generation, the lock's release.
    await store.delete(['a0']);
    await store.compact();
    await store.add([{ id: 'late', vector: vecs[11]! }]);
    await store.close();
    assert.deepEqual(readdirSync(elsewhere), [], 'nothing was written where the process went');
    assert.ok(!existsSync(join(base, 'store', 'LOCK')), 'the lock was released');
    const again = await MemStore.open(join(base, 'store'));
    assert.equal(again.stats().count, 10);
    assert.equal((await again.get('a3'))?.text, 't3');
    assert.ok((await again.get('late')) !== undefined);
    await again.close();
  } finally {
    process.chdir(cwd);
  }
});

test('repair: an existing report file is never overwritten (INVALID_ARGUMENT), a report in a missing folder is IO; the store is left as it was, unlocked', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM });
  await store.add([{ id: 'a', vector: clustered(1, DIM, 5)[0]! }]);
  await store.close();
  const existing = join(tempDir(), 'report.jsonl');
  (await import('node:fs')).writeFileSync(existing, 'evidence\n');
  const { repairStore } = await import('../src/store/repair.js');
  await rejectsWith(() => repairStore(dir, { report: existing }), 'INVALID_ARGUMENT');
  assert.equal(readFileSync(existing, 'utf8'), 'evidence\n');
  await rejectsWith(() => repairStore(dir, { report: join(tempDir(), 'no', 'such', 'report.jsonl') }), 'IO');
  const cli = await cliResult(['repair', dir, '--report', existing]);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /INVALID_ARGUMENT/);
  const again = await MemStore.open(dir);
  assert.equal(again.stats().count, 1);
  await again.close();
});

test('the limits of the Limits table are inside the range they close: an f16 dot or l2 store takes a largest component of 1e-4 and of 65,504', async () => {
  for (const metric of ['dot', 'l2'] as const) {
    const { store } = await fresh({ metric, codec: 'f16' });
    const at = (x: number) => Array.from({ length: DIM }, (_, i) => (i === 0 ? x : 0));
    await store.add([{ id: 'least', vector: at(1e-4) }, { id: 'most', vector: at(65504) }]);
    await rejectsWith(() => store.add([{ id: 'under', vector: at(9e-5) }]), 'INVALID_VECTOR');
    assert.equal(store.stats().count, 2);
    await store.close();
  }
});

test('found by the hostile user: a symbol key or a non-enumerable unknown key in the options of open() or search() is refused, as in a filter (both had been passed over)', async () => {
  const withKeys = <T extends object>(base: T, extra: PropertyKey, value: unknown, enumerable: boolean): T => Object.defineProperty({ ...base }, extra, { value, enumerable, configurable: true });
  const dir = tempDir();
  for (const options of [
    withKeys({ dim: 4 }, Symbol('codec'), 'f32', true),
    withKeys({ dim: 4 }, 'metrc', 'l2', false),
    { dim: 4, cache: withKeys({ entries: 8 }, Symbol('bytes'), 1024, true) },
    { dim: 4, pages: withKeys({ maxPage: 32 }, 'fromm', 100, false) },
  ]) {
    await rejectsWith(() => MemStore.open(dir, options as never), 'INVALID_OPTION');
  }
  // Refused before anything is made.
  assert.deepEqual(readdirSync(dir), []);
  // A non-enumerable key the options know is read as any other.
  const known = await MemStore.open(tempDir(), withKeys({ dim: 4 }, 'metric', 'l2', false) as never);
  try {
    assert.equal(known.stats().metric, 'l2');
  } finally {
    await known.close();
  }
  const { store } = await fresh();
  try {
    await store.add([{ id: 'a', vector: vecs[0]! }]);
    await rejectsWith(() => store.search(vecs[0]!, withKeys({ k: 1 }, Symbol('exact'), true, true) as never), 'INVALID_OPTION');
    await rejectsWith(() => store.search(vecs[0]!, withKeys({ k: 1 }, 'exat', true, false) as never), 'INVALID_OPTION');
    assert.equal((await store.search(vecs[0]!, withKeys({ k: 1 }, 'exact', true, false) as never)).length, 1);
  } finally {
    await store.close();
  }
});

test('a bad option names itself in the error\'s field, by its path (pages.maxPage, cache.bytes, pca.variance, an unknown key), at open and at search', async () => {
  const fieldOf = async (fn: () => Promise<unknown>): Promise<string | undefined> => {
    try {
      await fn();
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'INVALID_OPTION');
      return (e as { field?: string }).field;
    }
    assert.fail('no error');
  };
  const dir = tempDir();
  assert.equal(await fieldOf(() => MemStore.open(dir, { dim: 4, pages: { maxPage: 3 } })), 'pages.maxPage');
  assert.equal(await fieldOf(() => MemStore.open(dir, { dim: 4, cache: { bytes: -1 } })), 'cache.bytes');
  assert.equal(await fieldOf(() => MemStore.open(dir, { dim: 4, pca: { variance: 2 } })), 'pca.variance');
  assert.equal(await fieldOf(() => MemStore.open(dir, { dim: 4, cache: { size: 8 } } as never)), 'cache.size');
  assert.equal(await fieldOf(() => MemStore.open(dir, { dim: 4, codec: 'int9' } as never)), 'codec');
  const { store } = await fresh({});
  try {
    assert.equal(await fieldOf(() => store.search(new Float32Array(DIM), { k: 0 })), 'k');
    assert.equal(await fieldOf(() => store.search(new Float32Array(DIM), { nprobe: 1.5 })), 'nprobe');
    assert.equal(await fieldOf(() => store.search(new Float32Array(DIM), { exact: 'yes' } as never)), 'exact');
    // Options that are no plain object (one inheriting from another, a string) name the options (they had named nothing).
    assert.equal(await fieldOf(() => store.search(new Float32Array(DIM), Object.create({ k: 1 }) as never)), 'options');
    assert.equal(await fieldOf(() => store.search(new Float32Array(DIM), 'k' as never)), 'options');
  } finally {
    await store.close();
  }
  assert.equal(await fieldOf(() => MemStore.open(tempDir(), Object.assign(Object.create({ durability: 'none' }) as object, { dim: 4 }) as never)), 'options');
});

test('a batch past 256 MiB encoded is INVALID_ARGUMENT naming records as its field, and nothing of it is logged', async () => {
  const store = await MemStore.open(tempDir(), { dim: 2, durability: 'none' });
  try {
    const text = 'a'.repeat(16 << 20);
    let caught: unknown;
    try {
      await store.add(Array.from({ length: 17 }, (_, i) => ({ id: `b${i}`, vector: [1, 0], text })));
    } catch (e) {
      caught = e;
    }
    assert.ok(isMemstoreError(caught, 'INVALID_ARGUMENT'));
    assert.equal(caught.field, 'records');
    assert.equal(store.stats().count, 0);
    assert.equal(store.stats().walBytes, 0);
  } finally {
    await store.close();
  }
});

test('a vector given as an array whose length reads differently each time (a Proxy) is read at the length first read: every element as read, none zero-filled (it had been searched and stored as [0.5, 0.5, 0.5, 0])', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4, metric: 'dot', codec: 'f32', durability: 'none' });
  try {
    const shifty = () => {
      let reads = 0;
      return new Proxy([0.5, 0.5, 0.5, 0.5], { get: (t, p) => (p === 'length' ? (++reads === 1 ? 4 : 3) : Reflect.get(t, p)) });
    };
    await store.add([{ id: 'a', vector: [0, 0, 0, 1] }, { id: 'b', vector: shifty() as never }]);
    const hits = await store.search(shifty() as never, { k: 2, exact: true });
    assert.deepEqual(hits.map((h) => [h.id, h.score]), [['b', 1], ['a', 0.5]]);
    assert.deepEqual(Array.from((await store.get('b'))!.vector), [0.5, 0.5, 0.5, 0.5]);
  } finally {
    await store.close();
  }
});

test('found by a hostile pass of the docs: add of something not an array (an object, a string, null) is INVALID_ARGUMENT naming records, as every input error names its field (it had named none)', async () => {
  const store = await MemStore.open(tempDir(), { dim: 2, durability: 'none' });
  try {
    for (const records of [{ id: 'a', vector: [1, 0] }, 'a', null]) {
      const e = await rejectsWith(() => store.add(records as unknown as []), 'INVALID_ARGUMENT');
      assert.equal(e.field, 'records');
    }
  } finally {
    await store.close();
  }
});
