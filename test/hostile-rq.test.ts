import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { open as openLmdb } from 'lmdb';
import { checkStore, exportStore, importStore, isMemstoreError, MemStore, type MemoryRecord, type OpenOptions, type SearchHit, type SearchOptions } from '../src/index.js';
import type { CodecName, RqCodecName } from '../src/codec/codec.js';
import type { Metric } from '../src/options.js';
import { fitRotation, rotatedDim } from '../src/space/rotation.js';
import { statePath } from '../src/store/files.js';
import { dot, norm } from '../src/vector.js';
import { clustered, gaussian, modelMatrix, perturb, rejectsWith, rng, storeScore, tempDir } from './helpers.js';
import { openPair } from './support/cached-pair.js';
import { cliResult } from './support/cli.js';
import { runUntilKilled } from './support/killable.js';
import { RQ_CHILD_OPTIONS, rqChildBatch } from './support/rq-child-ops.js';
import { runSequence, type ModelConfig } from './support/model.js';
import { stepArb } from './support/model-arbitraries.js';

/**
 * Rotated-quantization stores (rq1, rq2, rq4) as a hostile new user meets them: odd dimensions,
 * PCA down to one dimension, training on one vector, extreme and degenerate vectors, writes across
 * the training boundary, reopening, damage, kill -9, export and import, the cache, compaction and
 * determinism. With few vectors every one is a candidate, so a rescored answer is the exact top k:
 * scores equal to what the store's exact kernels compute (src/vector.ts), bit for bit once trained;
 * before training the index holds float32 vectors and answers with its float32 kernel scores.
 */

const RQ: readonly RqCodecName[] = ['rq1', 'rq2', 'rq4'];
const METRICS: readonly Metric[] = ['cosine', 'dot', 'l2'];

function randomVector(dim: number, next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: dim }, () => gaussian(next) * scale);
}

/**
 * Asserts that `hits` is the exact top k of `vectors` under `q`: each hit scores its own vector,
 * and the scores are the best k. Trained stores rescore, so bit for bit; untrained ones answer from
 * float32 kernels, within their rounding.
 */
function assertExactTopK(hits: readonly SearchHit[], metric: Metric, vectors: ReadonlyMap<string, Float32Array>, q: Float32Array, k: number, trained: boolean, where: string): void {
  const best = [...vectors.values()].map((x) => storeScore(metric, q, x)).sort((a, b) => b - a).slice(0, k);
  assert.equal(hits.length, best.length, `${where}: ${hits.length} hits, ${best.length} expected`);
  const slack = (x: Float32Array) => 1e-5 * (1 + (norm(q) + 1) * (norm(x) + 1));
  hits.forEach((h, j) => {
    const x = vectors.get(h.id);
    assert.ok(x !== undefined, `${where}: hit ${h.id} is not stored`);
    const own = storeScore(metric, q, x);
    if (trained) {
      assert.equal(h.score, own, `${where}: hit ${j} (${h.id}) scores ${h.score}, its vector ${own}`);
      assert.equal(h.score, best[j], `${where}: hit ${j} (${h.id}) scores ${h.score}, the exact ${j}-th best is ${best[j]}`);
    } else {
      assert.ok(Math.abs(h.score - own) <= slack(x), `${where}: hit ${j} (${h.id}) scores ${h.score}, its vector ${own}`);
      assert.ok(Math.abs(h.score - best[j]!) <= slack(x), `${where}: hit ${j} (${h.id}) scores ${h.score}, the exact ${j}-th best is ${best[j]}`);
    }
  });
}

async function checkSearch(store: MemStore, metric: Metric, vectors: ReadonlyMap<string, Float32Array>, q: Float32Array, k: number, where: string, options: SearchOptions = {}): Promise<SearchHit[]> {
  const hits = await store.search(q, { ...options, k });
  assertExactTopK(hits, metric, vectors, q, k, store.stats().trained, where);
  return hits;
}

function pairs(hits: readonly SearchHit[]): [string, number][] {
  return hits.map((h) => [h.id, h.score]);
}

test('every dimension, metric and rq codec, with and without PCA (down to 1 dimension), trainSize 1, 2, 3 and more than the data: exact top k before, at and after training', async () => {
  const dims = [1, 2, 3, 100, 127, 128, 129, 300, 1000];
  let cell = 0;
  for (const [di, dim] of dims.entries()) {
    for (const [mi, metric] of METRICS.entries()) {
      cell++;
      const codec = RQ[(di + mi) % RQ.length]!;
      const pcas = dim === 1 ? [undefined] : [undefined, { dims: 1 }, { dims: Math.floor(dim / 2) }];
      // At 1,000-d one cell fits (a rotation of 1,024 × 1,000, and PCA there takes seconds): the others stay untrained.
      const pca = dim === 1000 ? undefined : pcas[(di + mi) % pcas.length];
      const trainSize = dim === 1000 ? [2, 30, 30][mi]! : [1, 2, 3, 30][cell % 4]!;
      const next = rng(1000 + cell);
      const store = await MemStore.open(tempDir(), { dim, metric, codec, pca, trainSize, durability: 'none', cache: false });
      const where = `${dim}-d ${metric} ${codec} pca ${pca?.dims ?? 'none'} trainSize ${trainSize}`;
      try {
        const vectors = new Map<string, Float32Array>();
        for (let i = 0; i < 12; i++) {
          const v = randomVector(dim, next);
          vectors.set(`v${i}`, v);
          await store.add([{ id: `v${i}`, vector: v }]);
          // PCA needs two vectors to fit: a store asked to train on one trains at the second add.
          const trained = i + 1 >= Math.max(trainSize, pca === undefined ? 1 : 2);
          assert.equal(store.stats().trained, trained, `${where}: trained after ${i + 1}`);
          if (trained) assert.equal(store.stats().storedDim, rotatedDim(pca?.dims ?? dim), where);
          for (const k of [1, 3, 40]) await checkSearch(store, metric, vectors, randomVector(dim, next), k, `${where} after ${i + 1}, k ${k}`);
        }
      } finally {
        await store.close();
      }
    }
  }
});

type Shape = 'zeros' | 'negzero' | 'huge' | 'hugeAlone' | 'tiny' | 'subnormal' | 'mixed' | 'random' | 'same';

/** Vectors of each extreme shape a store of `metric` is asked to hold: its largest and smallest magnitudes, subnormals, zeros. */
function extreme(shape: Shape, dim: number, metric: Metric, next: () => number): Float32Array {
  const big = metric === 'cosine' ? 1e30 : 1e12;
  const small = metric === 'cosine' ? 1e-30 : 1e-12;
  switch (shape) {
    case 'zeros':
      return new Float32Array(dim);
    case 'negzero':
      return new Float32Array(dim).fill(-0);
    case 'huge': {
      const v = randomVector(dim, next);
      v[0] = big;
      return v;
    }
    case 'hugeAlone': {
      const v = new Float32Array(dim);
      v[dim - 1] = -big;
      return v;
    }
    case 'tiny': {
      const v = randomVector(dim, next, small);
      v[0] = small;
      return v;
    }
    case 'subnormal':
      // Cosine takes vectors of subnormals alone; dot and l2 need one component of 1e-12 (MIN_LARGEST_COMPONENT).
      return Float32Array.from({ length: dim }, (_, i) => (metric !== 'cosine' && i === 0 ? 1e-12 : (i % 2 === 0 ? 1 : -1) * 2 ** -149 * (1 + (i % 3))));
    case 'mixed':
      return Float32Array.from({ length: dim }, (_, i) => (i % 2 === 1 ? big * (1 + i / dim) : small));
    case 'same':
      return Float32Array.from({ length: dim }, (_, i) => (i % 5) - 2);
    case 'random':
      return randomVector(dim, next);
  }
}

const SHAPES: readonly Shape[] = ['zeros', 'negzero', 'huge', 'hugeAlone', 'tiny', 'subnormal', 'mixed', 'random', 'same'];

test('extreme vectors (zeros, -0, 1e30 or 1e12 components, 1e-30 or 1e-12, subnormals, identical ones) are refused or taken as int8 takes them, and searched exactly before and after training', async () => {
  for (const metric of METRICS) {
    for (const dim of [1, 3, 129]) {
      for (const [ci, codec] of RQ.entries()) {
        const trainSize = [1, 5, 9][ci]!;
        const next = rng(dim * 31 + ci);
        const rq = await MemStore.open(tempDir(), { dim, metric, codec, trainSize, durability: 'none', cache: false });
        const int8 = await MemStore.open(tempDir(), { dim, metric, codec: 'int8', durability: 'none', cache: false });
        const where = `${dim}-d ${metric} ${codec} trainSize ${trainSize}`;
        try {
          const vectors = new Map<string, Float32Array>();
          for (let i = 0; i < 2 * SHAPES.length; i++) {
            const shape = SHAPES[i % SHAPES.length]!;
            const v = extreme(shape, dim, metric, next);
            const record = { id: `${shape}${i}`, vector: v };
            const outcomes = await Promise.all([rq, int8].map((s) => s.add([record]).then(() => 'ok', (e: unknown) => (isMemstoreError(e) ? e.code : String(e)))));
            assert.equal(outcomes[0], outcomes[1], `${where}: adding ${shape}: rq ${outcomes[0]}, int8 ${outcomes[1]}`);
            if (outcomes[0] === 'ok') vectors.set(record.id, v);
            for (const qShape of SHAPES) {
              const q = extreme(qShape, dim, metric, next);
              const refused = await int8.search(q, { k: 1 }).then(
                () => undefined,
                (e: unknown) => {
                  if (isMemstoreError(e)) return e.code;
                  throw e;
                },
              );
              if (refused !== undefined) {
                await rejectsWith(() => rq.search(q, { k: 1 }), refused);
                continue;
              }
              for (const k of [1, 4, 40]) await checkSearch(rq, metric, vectors, q, k, `${where} after ${shape}, query ${qShape}, k ${k}`);
            }
          }
          assert.equal(rq.stats().trained, true, where);
          assert.equal(rq.stats().count, int8.stats().count, where);
        } finally {
          await rq.close();
          await int8.close();
        }
      }
    }
  }
});

test('vectors equal to the training mean (a residual of exactly zero) and stores of one repeated vector search exactly', async () => {
  for (const metric of METRICS) {
    for (const codec of RQ) {
      for (const dim of [1, 4, 130]) {
        const where = `${dim}-d ${metric} ${codec}`;
        // Small integers: the mean of a, b and (a + b) / 2 is (a + b) / 2 exactly, in any summation order.
        const a = Float32Array.from({ length: dim }, (_, i) => (i % 7) - 3);
        const b = Float32Array.from({ length: dim }, (_, i) => ((i * 3) % 5) + 1);
        const mid = a.map((x, i) => (x + b[i]!) / 2);
        const store = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 3, durability: 'none', cache: false });
        const same = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 2, durability: 'none', cache: false });
        try {
          const vectors = new Map([['a', a], ['b', b], ['mid', mid]]);
          await store.add([...vectors].map(([id, vector]) => ({ id, vector })));
          assert.equal(store.stats().trained, true);
          const copies = new Map<string, Float32Array>();
          for (let i = 0; i < 5; i++) copies.set(`c${i}`, Float32Array.from(b));
          await same.add([...copies].map(([id, vector]) => ({ id, vector })));
          const next = rng(dim);
          for (const q of [a, b, mid, new Float32Array(dim), randomVector(dim, next), Float32Array.from(mid, (x) => -x)]) {
            for (const k of [1, 2, 3, 10]) {
              await checkSearch(store, metric, vectors, q, k, `${where} around the mean, k ${k}`);
              const hits = await checkSearch(same, metric, copies, q, k, `${where} copies, k ${k}`);
              assert.equal(new Set(hits.map((h) => h.id)).size, hits.length, where);
            }
          }
          const got = await store.get('mid');
          assert.deepEqual(got?.vector, mid, `${where}: get returns the vector, not its (empty) code`);
        } finally {
          await store.close();
          await same.close();
        }
      }
    }
  }
});

test('deletes and upserts around the training boundary: a vector deleted before training, upserted in the add that crosses trainSize, and every record deleted after', async () => {
  for (const metric of METRICS) {
    for (const codec of RQ) {
      const dim = 33;
      const where = `${metric} ${codec}`;
      const next = rng(codec.length + metric.length);
      const store = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 6, durability: 'none', cache: false });
      try {
        const vectors = new Map<string, Float32Array>();
        const put = async (records: MemoryRecord[]) => {
          await store.add(records);
          for (const r of records) vectors.set(r.id, r.vector as Float32Array);
        };
        await put(['a', 'b', 'c', 'd'].map((id) => ({ id, vector: randomVector(dim, next) })));
        assert.equal(await store.delete(['b']), 1);
        vectors.delete('b');
        await checkSearch(store, metric, vectors, randomVector(dim, next), 10, `${where} before training`);
        // Four records in, one of them twice and one an upsert: five distinct records once applied.
        const crossing = [
          { id: 'a', vector: randomVector(dim, next) },
          { id: 'e', vector: randomVector(dim, next) },
          { id: 'f', vector: randomVector(dim, next) },
          { id: 'e', vector: randomVector(dim, next) },
        ];
        await store.add(crossing);
        for (const r of crossing) vectors.set(r.id, r.vector);
        assert.equal(store.stats().count, 5);
        assert.equal(store.stats().trained, false, `${where}: 5 records are fewer than trainSize`);
        await put([{ id: 'b', vector: randomVector(dim, next) }]);
        assert.equal(store.stats().trained, true, where);
        for (const [id, v] of vectors) assert.deepEqual((await store.get(id))?.vector, v, `${where}: ${id}`);
        for (const k of [1, 3, 10]) await checkSearch(store, metric, vectors, randomVector(dim, next), k, `${where} after training, k ${k}`);
        await store.delete([...vectors.keys()]);
        vectors.clear();
        assert.equal(store.stats().count, 0);
        assert.deepEqual(await store.search(randomVector(dim, next), { k: 5 }), [], `${where}: an emptied trained store`);
        await put([{ id: 'z', vector: randomVector(dim, next) }]);
        await checkSearch(store, metric, vectors, randomVector(dim, next), 5, `${where} refilled`);
      } finally {
        await store.close();
      }
    }
  }
});

test('a reopened rq store answers identically, before and after training; reopening with another codec or with PCA is OPTION_MISMATCH, and an int8 store refuses rq codecs', async () => {
  for (const [ci, codec] of RQ.entries()) {
    const metric = METRICS[ci]!;
    const dim = 40;
    const dir = tempDir();
    const next = rng(77 + ci);
    const docs = clustered(60, dim, 5 + ci);
    const queries = Array.from({ length: 5 }, () => randomVector(dim, next));
    let store = await MemStore.open(dir, { dim, metric, codec, trainSize: 40, cache: false });
    await store.add(docs.slice(0, 30).map((vector, i) => ({ id: `d${i}`, vector, text: `doc ${i}` })));
    const before = await Promise.all(queries.map((q) => store.search(q, { k: 7 })));
    await store.close();
    store = await MemStore.open(dir, { cache: false });
    assert.equal(store.stats().trained, false);
    assert.deepEqual(await Promise.all(queries.map((q) => store.search(q, { k: 7 }))), before, `${codec}: untrained, reopened`);
    await store.add(docs.slice(30).map((vector, i) => ({ id: `d${30 + i}`, vector })));
    assert.equal(store.stats().trained, true);
    const after = await Promise.all(queries.map((q) => store.search(q, { k: 7 })));
    const unrescored = await Promise.all(queries.map((q) => store.search(q, { k: 7, rescore: false })));
    await store.close();
    store = await MemStore.open(dir, { cache: false });
    try {
      assert.equal(store.stats().trained, true);
      assert.deepEqual(await Promise.all(queries.map((q) => store.search(q, { k: 7 }))), after, `${codec}: trained, reopened`);
      assert.deepEqual(await Promise.all(queries.map((q) => store.search(q, { k: 7, rescore: false }))), unrescored, `${codec}: the codes themselves, reopened`);
    } finally {
      await store.close();
    }
    const others: CodecName[] = ['int8', 'f32', ...RQ.filter((c) => c !== codec)];
    for (const other of others) await rejectsWith(() => MemStore.open(dir, { codec: other }), 'OPTION_MISMATCH');
    await rejectsWith(() => MemStore.open(dir, { pca: { dims: 4 } }), 'OPTION_MISMATCH');
  }
  const int8 = tempDir();
  await (await MemStore.open(int8, { dim: 3 })).close();
  for (const codec of RQ) await rejectsWith(() => MemStore.open(int8, { codec }), 'OPTION_MISMATCH');
});

test('an rq store marked trained whose rotation model is gone: open is CORRUPTION and checkStore reports it', async () => {
  for (const codec of RQ) {
    // 20 dimensions rotate to 128, whose codes have the length codes at 20 would: no record looks amiss.
    for (const pca of [undefined, { dims: 5 }]) {
      const dir = tempDir();
      const store = await MemStore.open(dir, { dim: 20, codec, pca, trainSize: 4 });
      await store.add(clustered(10, 20, 3).map((vector, i) => ({ id: `r${i}`, vector })));
      await store.close();
      assert.deepEqual((await checkStore(dir)).problems, [], `${codec}: healthy`);
      const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
      try {
        await env.openDB({ name: 'config', encoding: 'binary' }).remove('pca');
      } finally {
        await env.close();
      }
      await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
      const report = await checkStore(dir);
      assert.ok(report.problems.some((p) => p.offset === 'pca'), `${codec} pca ${pca?.dims ?? 'none'}: ${JSON.stringify(report.problems)}`);
      assert.equal((await cliResult(['verify', dir])).code, 1, `${codec}: memstore verify exits 1`);
    }
  }
});

test('a bit flipped in the persisted rotation of an rq store: open is CORRUPTION, and so is checkStore (the model is sealed with a checksum)', async () => {
  for (const codec of RQ) {
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim: 20, codec, trainSize: 4 });
    await store.add(clustered(10, 20, 4).map((vector, i) => ({ id: `r${i}`, vector })));
    await store.close();
    const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
    try {
      const config = env.openDB({ name: 'config', encoding: 'binary' });
      const raw = Buffer.from(config.getBinary('pca')!);
      // A byte in the middle of the components: one float of the rotation changes.
      raw[raw.length >> 1]! ^= 0x10;
      await config.put('pca', raw);
    } finally {
      await env.close();
    }
    await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
    await rejectsWith(() => checkStore(dir), 'CORRUPTION');
  }
});

test('checkStore finds nothing wrong with healthy rq stores, trained or not, paged or not', async () => {
  for (const codec of RQ) {
    for (const n of [5, 60]) {
      const dir = tempDir();
      const store = await MemStore.open(dir, { dim: 16, metric: 'l2', codec, trainSize: 20, pages: { from: 30, maxPage: 16 } });
      await store.add(clustered(n, 16, n).map((vector, i) => ({ id: `r${i}`, vector, text: `t${i}`, meta: { i } })));
      await store.delete(['r1']);
      await store.close();
      const report = await checkStore(dir);
      assert.deepEqual(report.problems, [], `${codec} with ${n}`);
      assert.equal(report.trained, n >= 20);
    }
  }
});

const rqChild = fileURLToPath(new URL('./support/rq-child.js', import.meta.url));

test('kill -9 while adding across the training boundary: every acknowledged record is there after reopening, and searches are exact', async () => {
  const cycles = 8;
  for (let cycle = 0; cycle < cycles; cycle++) {
    const dir = tempDir('memstore-rq-kill-');
    // Batches of 3 reach trainSize 20 at the 7th: kills land before, at and after it.
    const killAt = [4, 6, 7, 12, 5, 6, 6, 9][cycle]!;
    let acked = -1;
    await runUntilKilled(rqChild, [dir, String(cycle)], (line, kill) => {
      if (!line.startsWith('ack ')) return;
      acked = Number(line.slice(4));
      if (acked === killAt) kill(cycle % 3);
    });
    const expected = new Map<string, Float32Array>();
    for (let i = 0; i <= acked; i++) for (const r of rqChildBatch(cycle, i)) expected.set(r.id, r.vector as Float32Array);
    const store = await MemStore.open(dir);
    try {
      // The batch in flight at the kill may have been applied too.
      const inFlight = rqChildBatch(cycle, acked + 1);
      const applied = inFlight.every((r) => store.ids().includes(r.id)) && inFlight.some((r) => !expected.has(r.id));
      if (applied) for (const r of inFlight) expected.set(r.id, r.vector as Float32Array);
      assert.equal(store.stats().count, expected.size, `cycle ${cycle}: killed after ack ${acked}`);
      for (const [id, v] of expected) assert.deepEqual((await store.get(id))?.vector, v, `cycle ${cycle}: ${id}`);
      assert.equal(store.stats().trained, expected.size >= RQ_CHILD_OPTIONS.trainSize, `cycle ${cycle}`);
      const next = rng(cycle);
      for (const k of [1, 5]) await checkSearch(store, RQ_CHILD_OPTIONS.metric, expected, randomVector(RQ_CHILD_OPTIONS.dim, next), k, `cycle ${cycle}, k ${k}`);
    } finally {
      await store.close();
    }
    assert.deepEqual((await checkStore(dir)).problems, [], `cycle ${cycle}: verify after a clean close`);
  }
});

test('export, then import into a new rq store with the same options: the same records and the same answers', async () => {
  for (const [ci, codec] of RQ.entries()) {
    const metric = METRICS[(ci + 1) % 3]!;
    const dim = 24;
    const options = { metric, codec, trainSize: 25 } as const;
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim, ...options, cache: false });
    const docs = clustered(80, dim, 40 + ci);
    await store.add(docs.map((vector, i) => ({ id: `d${i}`, vector, text: `doc ${i}`, ...(i % 3 === 0 ? { meta: { i } } : {}) })));
    await store.delete(['d3', 'd50']);
    const next = rng(ci);
    const queries = Array.from({ length: 6 }, () => randomVector(dim, next));
    const before = await Promise.all(queries.map((q) => store.search(q, { k: 4 })));
    await store.close();
    const file = join(tempDir(), 'out.jsonl');
    await exportStore(dir, file);
    const into = tempDir();
    // JSON lines carry no metric: the import is told it, as it is told the codec.
    await importStore(file, into, options);
    const back = await MemStore.open(into, { cache: false });
    try {
      assert.equal(back.stats().codec, codec);
      assert.equal(back.stats().trained, true);
      assert.equal(back.stats().count, 78);
      const vectors = new Map(docs.map((v, i) => [`d${i}`, v] as const).filter(([id]) => id !== 'd3' && id !== 'd50'));
      for (const [qi, q] of queries.entries()) {
        const hits = await checkSearch(back, metric, vectors, q, 4, `${codec} imported, query ${qi}`);
        assert.deepEqual(hits, before[qi], `${codec} query ${qi}`);
      }
    } finally {
      await back.close();
    }
  }
});

test('the cache on rq stores: exact repeats, near repeats and interleaved writes answer as an uncached store does, for every metric, across training', async () => {
  for (const metric of METRICS) {
    for (const [ci, codec] of RQ.entries()) {
      const dim = [7, 64, 130][ci]!;
      const next = rng(ci * 3 + metric.length);
      const pair = await openPair({ dim, metric, codec, trainSize: 30 });
      const where = `${metric} ${codec} ${dim}-d`;
      try {
        const docs = clustered(90, dim, ci + 11);
        const queries = Array.from({ length: 4 }, () => randomVector(dim, next));
        for (let round = 0; round < 9; round++) {
          await pair.add(docs.slice(round * 10, round * 10 + 10).map((vector, i) => ({ id: `d${round * 10 + i}`, vector })));
          if (round % 3 === 2) await pair.del([`d${round * 10 - 5}`, `d${round}`]);
          for (const [qi, q] of queries.entries()) {
            for (const k of [1, 5]) {
              await pair.check(q, { k }, `${where} round ${round} query ${qi} k ${k}`);
              await pair.check(q, { k }, `${where} round ${round} query ${qi} k ${k} again`);
              for (const cos of [0.9999, 0.999, 0.99]) await pair.check(perturb(q, cos, next), { k }, `${where} round ${round} query ${qi} near ${cos}`);
              await pair.check(q, { k, rescore: false }, `${where} round ${round} query ${qi} codes only`);
              for (const cos of [0.99999, 0.999]) await pair.check(perturb(q, cos, next), { k, rescore: false }, `${where} round ${round} query ${qi} codes only, near ${cos}`);
            }
          }
        }
        assert.equal(pair.cached.stats().trained, true);
        const stats = pair.cached.stats().cache;
        assert.ok(stats.exactHits > 0 && stats.nearHits > 0, `${where}: ${JSON.stringify(stats)}`);
      } finally {
        await pair.close();
      }
    }
  }
});

test('compact() on paged rq stores after deletes: exact searches answer the same before and after, and after reopening', async () => {
  for (const metric of METRICS) {
    for (const [ci, codec] of RQ.entries()) {
      const dim = 20;
      const dir = tempDir();
      const where = `${metric} ${codec}`;
      const store = await MemStore.open(dir, { dim, metric, codec, trainSize: 15, pages: { from: 40, maxPage: 16 }, cache: false });
      const docs = clustered(120, dim, 90 + ci);
      await store.add(docs.map((vector, i) => ({ id: `d${i}`, vector, text: `t${i}` })));
      const gone = docs.map((_, i) => `d${i}`).filter((_, i) => i % 3 === 1);
      await store.delete(gone);
      const vectors = new Map(docs.map((v, i) => [`d${i}`, v] as const).filter(([id]) => !gone.includes(id)));
      assert.ok(store.stats().pages > 1, `${where}: paged`);
      const next = rng(ci + 5);
      const queries = Array.from({ length: 6 }, () => randomVector(dim, next));
      const ask = (s: MemStore) => Promise.all(queries.flatMap((q) => [s.search(q, { k: 5, exact: true }), s.search(q, { k: 1, exact: true }), s.search(q, { k: 200, exact: true })]));
      const before = await ask(store);
      for (const [qi, q] of queries.entries()) assertExactTopK(before[qi * 3 + 2]!, metric, vectors, q, 200, true, `${where} query ${qi}, every record`);
      await store.compact();
      assert.deepEqual(await ask(store), before, `${where}: after compact`);
      await store.close();
      const again = await MemStore.open(dir, { cache: false });
      try {
        assert.deepEqual(await ask(again), before, `${where}: reopened after compact`);
      } finally {
        await again.close();
      }
    }
  }
});

test('two rq stores built from the same inputs in the same order answer identically (ids and scores, rescored or not)', async () => {
  for (const [ci, codec] of RQ.entries()) {
    for (const pca of [undefined, { dims: 9 }]) {
      const metric = METRICS[ci]!;
      const dim = 30;
      const docs = clustered(150, dim, 600 + ci);
      const build = async () => {
        const s = await MemStore.open(tempDir(), { dim, metric, codec, pca, trainSize: 50, pages: { from: 100, maxPage: 16 }, durability: 'none' });
        for (let i = 0; i < docs.length; i += 25) await s.add(docs.slice(i, i + 25).map((vector, j) => ({ id: `d${i + j}`, vector })));
        await s.delete(['d7', 'd70']);
        return s;
      };
      const [a, b] = [await build(), await build()];
      try {
        const next = rng(ci);
        for (let t = 0; t < 8; t++) {
          const q = randomVector(dim, next);
          for (const options of [{ k: 10 }, { k: 10, rescore: false }, { k: 3, nprobe: 1 }]) {
            assert.deepEqual(pairs(await a.search(q, options)), pairs(await b.search(q, options)), `${codec} pca ${pca?.dims ?? 'none'} ${JSON.stringify(options)}`);
          }
        }
        assert.equal(a.stats().pages, b.stats().pages);
      } finally {
        await a.close();
        await b.close();
      }
    }
  }
});

/**
 * A query and a vector crafted against the seeded rotation (a store trained on one zero vector), so
 * that the vector's rq estimate falls far below its exact score: the high-probability bound misses it.
 */
function designLimit(dim: number): { q: Float32Array; crafted: Float32Array } {
  // The rotation a store fits on a sample whose mean is zero: x = Cᵀ r puts any chosen r in the rotated space.
  const c = modelMatrix(fitRotation([new Float32Array(dim)], dim, undefined));
  const unrotate = (r: Float32Array) => Float32Array.from({ length: dim }, (_, i) => r.reduce((s, ro, o) => s + c[o * dim + i]! * ro, 0));
  // One large coordinate among small ones: every 1-bit level is +½, and the code's error e is nearly as long as r.
  const r = Float32Array.from({ length: dim }, (_, i) => (i === 0 ? 1 : 0.01));
  const normSq = r.reduce((s, x) => s + x * x, 0);
  const f = normSq / r.reduce((s, x) => s + x / 2, 0);
  const e = r.map((x) => x - f / 2);
  const eNorm = norm(e);
  // A query along e: the estimate falls ‖e‖ below the exact score, far more than 3 / √127 of ‖e‖.
  return { q: unrotate(e.map((x, i) => x / eNorm + (0.1 * r[i]!) / Math.sqrt(normSq))), crafted: unrotate(r) };
}

test('design limit: the rotation is seeded, so vectors crafted against it defeat the high-probability bound, and a rescored dot search misses the best vector the scan found (RESCORING.md, "rq codes": not a proof)', async () => {
  const dim = 128;
  const { q, crafted } = designLimit(dim);
  for (const codec of RQ) {
    const store = await MemStore.open(tempDir(), { dim, metric: 'dot', codec, trainSize: 1, durability: 'none', cache: false });
    try {
      await store.add([{ id: 'zero', vector: new Float32Array(dim) }]);
      await store.add([{ id: 'crafted', vector: crafted }]);
      const candidates = await store.search(q, { k: 2, rescore: false });
      assert.deepEqual(candidates.map((h) => h.id), ['zero', 'crafted'], `${codec}: both are candidates, the crafted one ranked below`);
      assert.ok(dot(q, crafted) > 0.09, 'the crafted vector is the exact best');
      const [hit] = await store.search(q, { k: 1 });
      assert.deepEqual([hit?.id, hit?.score], ['zero', 0], `${codec}: its bound let the crafted vector go unread`);
    } finally {
      await store.close();
    }
  }
});

test('where a vector is does not change an rq answer: the design-limit query gets the same answer read through maps with every page resident, by positioned reads, and with the crafted vector hot in the cache (RESCORING.md, "Where a vector is does not change the answer")', async () => {
  const dim = 128;
  const { q, crafted } = designLimit(dim);
  const ways: readonly { name: string; options: OpenOptions }[] = [
    { name: 'maps', options: { cache: false, mmap: true } },
    { name: 'positioned reads', options: { cache: false, mmap: false } },
    // The cache keeps hot only what it read without a map (CACHE.md, "Hot records").
    { name: 'the cache', options: { cache: {}, mmap: false } },
  ];
  for (const codec of RQ) {
    for (const way of ways) {
      const where = `${codec} through ${way.name}`;
      const dir = tempDir();
      const writer = await MemStore.open(dir, { dim, metric: 'dot', codec, trainSize: 1, durability: 'none', cache: false });
      await writer.add([{ id: 'zero', vector: new Float32Array(dim) }]);
      await writer.add([{ id: 'crafted', vector: crafted }]);
      await writer.close();
      // Reopened, the vectors are read from the arena's files: through maps, the first read maps the
      // segment, whose pages the write left resident, so every candidate is in memory.
      const store = await MemStore.open(dir, way.options);
      try {
        if (way.options.cache !== false) {
          // Searches for the crafted vector itself read it among their first k (another k each, so
          // that none is a repeat the cache answers); from the second read on, the cache keeps it hot.
          for (const k of [1, 2, 3]) assert.equal((await store.search(crafted, { k }))[0]?.id, 'crafted', where);
          assert.ok(store.stats().cache.fullReadsSaved > 0, `${where}: the crafted vector is hot`);
        }
        const before = store.stats().rescoring.skipped;
        const hits = await store.search(q, { k: 1 });
        assert.deepEqual(hits.map((h) => h.id), ['zero'], `${where}: the bound lets the crafted vector go wherever it is`);
        assert.equal(store.stats().rescoring.skipped, before + 1, `${where}: skipped by its bound`);
      } finally {
        await store.close();
      }
    }
  }
});

test('concurrent adds, deletes, searches and a compaction across training and paging never fail, and leave the exact answers', async () => {
  for (const metric of METRICS) {
    for (const codec of RQ) {
      for (const cache of [false, {}] as const) {
        const dim = 16;
        const next = rng(metric.length * 10 + codec.length);
        const store = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 10, durability: 'batch', cache, pages: { from: 30, maxPage: 16 } });
        const where = `${metric} ${codec} cache ${cache !== false}`;
        try {
          const docs = Array.from({ length: 60 }, () => randomVector(dim, next));
          const queries = Array.from({ length: 5 }, () => randomVector(dim, next));
          const live = new Map(docs.map((v, i) => [`v${i}`, v] as const));
          const ops: Promise<unknown>[] = [];
          for (let i = 0; i < docs.length; i++) {
            ops.push(store.add([{ id: `v${i}`, vector: docs[i]! }]));
            if (i % 7 === 3) {
              ops.push(store.delete([`v${i - 3}`]));
              live.delete(`v${i - 3}`);
            }
            ops.push(store.search(queries[i % queries.length]!, { k: 3 }));
            if (i === 40) ops.push(store.compact());
          }
          await Promise.all(ops);
          assert.equal(store.stats().count, live.size, where);
          assert.ok(store.stats().trained && store.stats().pages > 1, where);
          for (const q of queries) await checkSearch(store, metric, live, q, 3, where, { exact: true });
        } finally {
          await store.close();
        }
      }
    }
  }
});

test('PCA options on rq stores are checked as on int8 ones: dims up to dim (the rotation rounds them up to 128), never past it', async () => {
  for (const codec of [...RQ, 'int8'] as const) {
    for (const dims of [5, 200]) await rejectsWith(() => MemStore.open(tempDir(), { dim: 4, codec, pca: { dims } }), 'INVALID_OPTION');
    const store = await MemStore.open(tempDir(), { dim: 4, codec, pca: { dims: 4 }, trainSize: 2, durability: 'none' });
    try {
      const vectors = new Map([['a', Float32Array.of(1, 2, 3, 4)], ['b', Float32Array.of(4, 3, 2, 1)], ['c', Float32Array.of(1, 0, 0, 1)]]);
      await store.add([...vectors].map(([id, vector]) => ({ id, vector })));
      assert.equal(store.stats().storedDim, codec === 'int8' ? 4 : 128);
      await checkSearch(store, 'cosine', vectors, Float32Array.of(1, 2, 3, 4), 3, codec);
    } finally {
      await store.close();
    }
  }
});

const rqConfigArb: fc.Arbitrary<ModelConfig> = fc.record({
  metric: fc.constantFrom<Metric>(...METRICS),
  codec: fc.constantFrom<CodecName>(...RQ),
  pca: fc.boolean(),
  rescore: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

test('model-based: random sequences with hostile input on rq stores match an in-memory model after every step', async () => {
  const seed = Number(process.env['MODEL_SEED'] ?? 20261130);
  await fc.assert(
    fc.asyncProperty(rqConfigArb, fc.array(stepArb, { minLength: 5, maxLength: 50 }), (config, steps) => runSequence(config, steps)),
    { numRuns: Number(process.env['RQ_MODEL_SEQUENCES'] ?? 80), seed },
  );
});

test('searches with a filter on rq stores: exact top k among the records it takes, before and after training', async () => {
  for (const metric of METRICS) {
    for (const codec of RQ) {
      const dim = 12;
      const store = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 20, durability: 'none' });
      const next = rng(codec.length * 13 + metric.length);
      try {
        const all = new Map<string, { v: Float32Array; tag: string }>();
        for (let round = 0; round < 4; round++) {
          const batch = Array.from({ length: 10 }, (_, i) => ({ id: `r${round}-${i}`, vector: randomVector(dim, next), meta: { tag: ['red', 'green', 'blue'][(round + i) % 3]! } }));
          await store.add(batch);
          for (const r of batch) all.set(r.id, { v: r.vector, tag: r.meta.tag });
          for (const tag of ['red', 'blue', 'none']) {
            const taken = new Map([...all].filter(([, r]) => r.tag === tag).map(([id, r]) => [id, r.v] as const));
            for (const k of [1, 4, 50]) await checkSearch(store, metric, taken, randomVector(dim, next), k, `${metric} ${codec} round ${round} tag ${tag} k ${k}`, { filter: { tag } });
          }
        }
      } finally {
        await store.close();
      }
    }
  }
});

test('rq options: an unknown rq codec and trainSize 0 are INVALID_OPTION; with oversample 1 every hit still carries its exact score', async () => {
  const dir = tempDir();
  await rejectsWith(() => MemStore.open(dir, { dim: 8, codec: 'rq3' as CodecName }), 'INVALID_OPTION');
  await rejectsWith(() => MemStore.open(dir, { dim: 8, codec: 'rq1', trainSize: 0 }), 'INVALID_OPTION');
  const store = await MemStore.open(dir, { dim: 8, codec: 'rq1', oversample: 1, trainSize: 2 } satisfies OpenOptions);
  try {
    const next = rng(9);
    const vectors = new Map<string, Float32Array>();
    for (let i = 0; i < 6; i++) vectors.set(`v${i}`, randomVector(8, next));
    await store.add([...vectors].map(([id, vector]) => ({ id, vector })));
    // oversample 1 takes k candidates from the codes: each hit is still scored exactly.
    const q = randomVector(8, next);
    for (const h of await store.search(q, { k: 3 })) assert.equal(h.score, storeScore('cosine', q, vectors.get(h.id)!));
  } finally {
    await store.close();
  }
});

test('l2 codes-only search of rq codes: an estimate of the squared distance below zero scores 0 (never -0), and equal scores come in id order', async () => {
  let zeros = 0;
  for (const [codec, dim] of [['rq1', 5], ['rq1', 100], ['rq2', 5], ['rq4', 5]] as const) {
    const store = await MemStore.open(tempDir(), { dim, metric: 'l2', codec, trainSize: 40, rescore: false, durability: 'none' });
    try {
      const next = rng(7);
      const centres = Array.from({ length: 6 }, () => Float32Array.from({ length: dim }, () => 2 * gaussian(next)));
      await store.add(Array.from({ length: 300 }, (_, i) => ({ id: `id${String(299 - i).padStart(3, '0')}`, vector: Float32Array.from(centres[i % 6]!, (x) => x + 0.3 * gaussian(next)) })));
      for (let t = 0; t < 50; t++) {
        const hits = await store.search(Float32Array.from(centres[t % 6]!, (x) => x + 0.3 * gaussian(next)), { k: 10 });
        for (const [i, h] of hits.entries()) {
          assert.ok(!Object.is(h.score, -0), `${codec} ${dim}-d: no -0 score`);
          assert.ok(h.score <= 0, `${codec} ${dim}-d: an l2 score is a negated distance`);
          if (h.score === 0) zeros++;
          const before = hits[i - 1];
          if (before !== undefined) assert.ok(before.score > h.score || (before.score === h.score && before.id < h.id), `${codec} ${dim}-d query ${t}: ${before.id} ${before.score} before ${h.id} ${h.score}`);
        }
      }
    } finally {
      await store.close();
    }
  }
  assert.ok(zeros > 0, 'some estimates fell below zero (the case under test happened)');
});
