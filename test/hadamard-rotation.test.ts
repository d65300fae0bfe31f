import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MemStore } from '../src/index.js';
import { drawHadamardSigns, HADAMARD_ROUNDS, hadamardSignBytes, HadamardRotation } from '../src/space/hadamard-rotation.js';
import { ROTATION_SEED } from '../src/space/rotation.js';
import { clustered, gaussian, modelMatrix, readStateRecord, rejectsWith, rng, tempDir, writeStateRecord } from './helpers.js';
import { checkStore } from '../src/index.js';
import type { PcaModel } from '../src/pca/pca.js';
import type { OpenOptions } from '../src/options.js';
import { kernels, referenceHadamard } from '../src/kernels/index.js';

/**
 * The structured rotation of rq stores without PCA (src/space/hadamard-rotation.ts, CODECS.md "The
 * rotation"): orthogonal at every rotated dimension (powers of two and the multiples of 128 between
 * them), its transpose its inverse, seeded; persisted as its signs, in format version 6, with stores
 * of version 5 (a dense rotation) still read.
 */

const DIMS = [8, 128, 256, 384, 512, 640, 896, 1024];

test('kernels: hadamard_transform is referenceHadamard bit for bit (n 4 to 4096, scale 1 and 1/√n); multiply_signs and givens_halves are their float32 definitions', () => {
  const k = kernels();
  const next = rng(31);
  for (let n = 4; n <= 4096; n *= 2) {
    for (const scale of [1, Math.fround(1 / Math.sqrt(n))]) {
      const v = Float32Array.from({ length: n }, () => gaussian(next) * 3);
      const ptr = k.memory.alloc(4 * n);
      try {
        k.memory.f32().set(v, ptr >> 2);
        k.hadamardTransform(ptr, n, scale);
        const want = v.slice();
        referenceHadamard(want, scale);
        assert.deepEqual(k.memory.f32().slice(ptr >> 2, (ptr >> 2) + n), want, `n ${n}, scale ${scale}`);
      } finally {
        k.memory.free(ptr, 4 * n);
      }
    }
  }
  const n = 64;
  const x = Float32Array.from({ length: n }, () => gaussian(next));
  const signs = Float32Array.from({ length: n }, () => (next() < 0.5 ? -1 : 1));
  const ptr = k.memory.alloc(8 * n);
  try {
    const f32 = k.memory.f32();
    f32.set(x, ptr >> 2);
    f32.set(signs, (ptr >> 2) + n);
    k.multiplySigns(ptr, ptr + 4 * n, n);
    assert.deepEqual(k.memory.f32().slice(ptr >> 2, (ptr >> 2) + n), x.map((v, i) => v * signs[i]!));
    k.memory.f32().set(x, ptr >> 2);
    k.givensHalves(ptr, n / 2);
    const half = n / 2;
    const want = x.map((v, i) => (i < half ? Math.fround(v + x[i + half]!) : Math.fround(x[i - half]! - v)));
    assert.deepEqual(k.memory.f32().slice(ptr >> 2, (ptr >> 2) + n), want);
  } finally {
    k.memory.free(ptr, 8 * n);
  }
});

function dot64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

test('hadamard rotation: orthonormal columns (R e_i · R e_j = δ_ij within float32 rounding) at every dimension, powers of two or not', () => {
  for (const dim of DIMS) {
    const r = new HadamardRotation(dim, drawHadamardSigns(dim, 11));
    after(() => r.free());
    const columns = Array.from({ length: dim }, (_, i) => {
      const e = new Float64Array(dim);
      e[i] = 1;
      const out = new Float32Array(dim);
      r.apply(e, dim, out);
      return out;
    });
    // Every pair at small dimensions, a sample of them at large ones.
    const pick = rng(dim);
    const pairs = dim <= 128 ? dim * dim : 4000;
    for (let n = 0; n < pairs; n++) {
      const i = dim <= 128 ? Math.floor(n / dim) : Math.floor(pick() * dim);
      const j = dim <= 128 ? n % dim : Math.floor(pick() * dim);
      const d = dot64(columns[i]!, columns[j]!);
      assert.ok(Math.abs(d - (i === j ? 1 : 0)) < 1e-6, `dim ${dim}: column ${i} · column ${j} = ${d}`);
    }
  }
});

test('hadamard rotation: keeps norms and inner products, and its transpose undoes it (a zero-padded input comes back, padding zero)', () => {
  const next = rng(5);
  for (const dim of DIMS) {
    const r = new HadamardRotation(dim, drawHadamardSigns(dim, 3));
    const length = Math.max(1, dim - 100);
    const x = Float64Array.from({ length }, () => gaussian(next) * 10);
    const y = Float64Array.from({ length }, () => gaussian(next));
    const rx = new Float32Array(dim);
    const ry = new Float32Array(dim);
    r.apply(x, length, rx);
    r.apply(y, length, ry);
    const scale = Math.sqrt(dot64(x, x) * dot64(y, y));
    assert.ok(Math.abs(dot64(rx, ry) - dot64(x, y)) < 1e-5 * scale, `dim ${dim}: inner product ${dot64(rx, ry)} vs ${dot64(x, y)}`);
    assert.ok(Math.abs(Math.sqrt(dot64(rx, rx)) - Math.sqrt(dot64(x, x))) < 1e-5 * Math.sqrt(dot64(x, x)), `dim ${dim}: norm`);
    const back = new Float32Array(dim);
    r.transpose(rx, back);
    for (let i = 0; i < dim; i++) assert.ok(Math.abs(back[i]! - (i < length ? x[i]! : 0)) < 1e-4, `dim ${dim}: coordinate ${i} back as ${back[i]}`);
  }
});

test('hadamard rotation: mixes every coordinate into every other (no input coordinate stays within a block), including across the halves of a dimension that is no power of two', () => {
  for (const dim of [384, 640]) {
    const r = new HadamardRotation(dim, drawHadamardSigns(dim, 9));
    for (const i of [0, dim >> 1, dim - 1]) {
      const e = new Float64Array(dim);
      e[i] = 1;
      const out = new Float32Array(dim);
      r.apply(e, dim, out);
      const zeros = out.filter((v) => Math.abs(v) < 1e-9).length;
      assert.ok(zeros < dim / 50, `dim ${dim}: e_${i} reaches all but ${zeros} coordinates`);
      // Spread like a random unit vector's coordinates: none carries much of it.
      assert.ok(Math.max(...out.map(Math.abs)) < 8 / Math.sqrt(dim), `dim ${dim}: e_${i}'s largest coordinate ${Math.max(...out.map(Math.abs))}`);
    }
  }
});

test('hadamard rotation: the same seed gives the same signs and rotation, another seed others; sizes it cannot take are RangeErrors', () => {
  assert.deepEqual(drawHadamardSigns(512, ROTATION_SEED), drawHadamardSigns(512, ROTATION_SEED));
  assert.notDeepEqual(drawHadamardSigns(512, ROTATION_SEED), drawHadamardSigns(512, ROTATION_SEED + 1));
  assert.equal(hadamardSignBytes(512), (HADAMARD_ROUNDS * 512) / 8);
  assert.throws(() => new HadamardRotation(100, new Uint8Array(hadamardSignBytes(104))), RangeError);
  assert.throws(() => new HadamardRotation(128, new Uint8Array(hadamardSignBytes(128) - 1)), RangeError);
  const r = new HadamardRotation(128, drawHadamardSigns(128, 1));
  assert.throws(() => r.apply(new Float64Array(129), 129, new Float32Array(128)), RangeError);
  assert.throws(() => r.apply(new Float64Array(128), 128, new Float32Array(127)), RangeError);
});

async function rqStore(dim: number): Promise<{ dir: string; vectors: Float32Array[] }> {
  const dir = tempDir();
  const vectors = clustered(120, dim, 4);
  const store = await MemStore.open(dir, { dim, codec: 'rq2', trainSize: 40, cache: false, durability: 'none' });
  await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector })));
  await store.close();
  return { dir, vectors };
}

async function answers(dir: string, queries: Float32Array[]): Promise<{ ids: string[][]; scores: number[][] }> {
  const store = await MemStore.open(dir, { cache: false });
  try {
    const ids: string[][] = [];
    const scores: number[][] = [];
    for (const q of queries) {
      const hits = await store.search(q, { k: 5 });
      ids.push(hits.map((h) => h.id));
      scores.push(hits.map((h) => h.score));
    }
    return { ids, scores };
  } finally {
    await store.close();
  }
}

test('an rq store without PCA persists its rotation as signs (format version 6): no matrix in the state file, the same answers after reopening', async () => {
  const { dir, vectors } = await rqStore(100);
  const config = await readStateRecord(dir, 'config');
  assert.equal(config.formatVersion, 6);
  const pca = await readStateRecord(dir, 'pca');
  assert.equal((pca.components as Uint8Array).byteLength, 0);
  assert.equal((pca.hadamard as Uint8Array).byteLength, hadamardSignBytes(128));
  assert.equal(pca.outDim, 128);
  const first = await answers(dir, vectors.slice(0, 10));
  assert.deepEqual(await answers(dir, vectors.slice(0, 10)), first);
});

test('a version-5 store whose rq model is the dense matrix (as stores made before the structured rotation hold) opens, and answers with the same ids as the rotation it stands for', async () => {
  const { dir, vectors } = await rqStore(100);
  const queries = vectors.slice(0, 12);
  const structured = await answers(dir, queries);
  const record = await readStateRecord(dir, 'pca');
  const model: PcaModel = {
    inDim: record.inDim as number,
    outDim: record.outDim as number,
    mean: new Float32Array(new Uint8Array(record.mean as Uint8Array).buffer),
    components: new Float32Array(0),
    explainedVariance: record.explainedVariance as number,
    hadamard: new Uint8Array(record.hadamard as Uint8Array),
  };
  const dense = modelMatrix(model);
  await writeStateRecord(dir, 'pca', { inDim: model.inDim, outDim: model.outDim, mean: record.mean, components: new Uint8Array(dense.buffer), explainedVariance: model.explainedVariance });
  await writeStateRecord(dir, 'config', { ...(await readStateRecord(dir, 'config')), formatVersion: 5 });
  const viaMatrix = await answers(dir, queries);
  assert.deepEqual(viaMatrix.ids, structured.ids);
  for (const [i, row] of viaMatrix.scores.entries()) for (const [j, s] of row.entries()) assert.ok(Math.abs(s - structured.scores[i]![j]!) < 1e-6, `query ${i}, hit ${j}: ${s} vs ${structured.scores[i]![j]}`);
  assert.equal((await readStateRecord(dir, 'config')).formatVersion, 5, 'reading leaves the version as it was');
});

test('a version-5 rq store that trains here takes the structured rotation and moves to version 6 in the same transaction', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 64, codec: 'rq1', trainSize: 30, cache: false, durability: 'none' });
  await store.add(clustered(10, 64, 2).map((vector, i) => ({ id: `a${i}`, vector })));
  await store.close();
  await writeStateRecord(dir, 'config', { ...(await readStateRecord(dir, 'config')), formatVersion: 5 });
  const reopened = await MemStore.open(dir, { cache: false });
  await reopened.add(clustered(40, 64, 3).map((vector, i) => ({ id: `b${i}`, vector })));
  assert.equal(reopened.stats().trained, true);
  await reopened.close();
  assert.equal((await readStateRecord(dir, 'config')).formatVersion, 6);
  assert.ok((await readStateRecord(dir, 'pca')).hadamard instanceof Uint8Array);
  const again = await MemStore.open(dir, { cache: false });
  assert.equal(again.stats().count, 50);
  await again.close();
});

test('a structured model of the wrong shape is CORRUPTION at open (signs too short or too long, a matrix beside them, a rotated dimension below the input or off the 128 grid), each under a valid checksum', async () => {
  const { dir } = await rqStore(100);
  const good = await readStateRecord(dir, 'pca');
  const signs = good.hadamard as Uint8Array;
  const bad: Record<string, unknown>[] = [
    { ...good, hadamard: signs.subarray(1) },
    { ...good, hadamard: new Uint8Array(signs.length + 16) },
    { ...good, components: new Uint8Array(4) },
    { ...good, outDim: 64, hadamard: new Uint8Array(hadamardSignBytes(64)) },
    { ...good, outDim: 136, hadamard: new Uint8Array(hadamardSignBytes(136)) },
    { ...good, hadamard: 'signs' },
  ];
  for (const record of bad) {
    await writeStateRecord(dir, 'pca', record);
    await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
  }
  await writeStateRecord(dir, 'pca', good);
  const store = await MemStore.open(dir);
  assert.equal(store.stats().count, 120);
  await store.close();
});

test('a store of format version 7 (a later memstore) is CORRUPTION at open, never guessed at', async () => {
  const { dir } = await rqStore(16);
  await writeStateRecord(dir, 'config', { ...(await readStateRecord(dir, 'config')), formatVersion: 7 });
  await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
});

test('a structured model where the store would never write one is CORRUPTION at open and in checkStore, under a valid checksum: in an rq store with PCA, an int8 store, a store of version 5, or for another input dimension', async () => {
  // Found by a hostile test: an rq store with PCA whose record was rewritten as a structured
  // rotation opened, answered with the wrong vectors, and checkStore found nothing.
  const signs = (outDim: number) => drawHadamardSigns(outDim, 1);
  const cases: { options: OpenOptions & { codec: string }; record: (good: Record<string, unknown>) => Record<string, unknown>; config?: (c: Record<string, unknown>) => Record<string, unknown> }[] = [
    { options: { dim: 48, codec: 'rq2', pca: { dims: 16 }, trainSize: 40 }, record: (g) => ({ ...g, components: new Uint8Array(0), hadamard: signs(g.outDim as number) }) },
    { options: { dim: 48, codec: 'int8' }, record: () => ({ inDim: 48, outDim: 128, mean: new Uint8Array(48 * 4), components: new Uint8Array(0), explainedVariance: 1, hadamard: signs(128) }) },
    { options: { dim: 48, codec: 'rq1', trainSize: 40 }, record: (g) => g, config: (c) => ({ ...c, formatVersion: 5 }) },
    { options: { dim: 48, codec: 'rq1', trainSize: 40 }, record: (g) => ({ ...g, inDim: 40, mean: new Uint8Array(40 * 4) }) },
  ];
  for (const { options, record, config } of cases) {
    const dir = tempDir();
    const store = await MemStore.open(dir, { ...options, cache: false, durability: 'none' });
    await store.add(clustered(60, 48, 5).map((vector, i) => ({ id: `r${i}`, vector })));
    await store.close();
    const good = options.codec === 'int8' ? {} : await readStateRecord(dir, 'pca');
    await writeStateRecord(dir, 'pca', record(good));
    if (config !== undefined) await writeStateRecord(dir, 'config', config(await readStateRecord(dir, 'config')));
    await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
    await rejectsWith(() => checkStore(dir), 'CORRUPTION');
  }
});
