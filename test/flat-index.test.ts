import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getCodec } from '../src/codec/index.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { INDEX_BLOCK_VECTORS, type ScanQuery } from '../src/scan/code-blocks.js';
import { TopK } from '../src/scan/topk.js';
import { rng } from '../src/random.js';

const DIM = 24;

function filled(n: number): { index: FlatIndex; vectors: Float32Array[] } {
  const random = rng(7);
  const index = new FlatIndex(getCodec('int8'), DIM, true);
  const vectors: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const v = Float32Array.from({ length: DIM }, () => random() * 2 - 1);
    vectors.push(v);
    index.put(`v${i}`, v);
    index.setPlace(`v${i}`, [1, 1 + (i % 3), i * 8]);
  }
  return { index, vectors };
}

function best(index: FlatIndex, query: ScanQuery, k: number, options: Parameters<FlatIndex['search']>[2]): string[] {
  const top = new TopK(k);
  index.search(query, top, options);
  return top.sorted().map(({ slot }) => index.idAt(slot));
}

test('FlatIndex: its pages are blocks of INDEX_BLOCK_VECTORS codes, and it probes them all', () => {
  const n = INDEX_BLOCK_VECTORS * 2 + 5;
  const { index, vectors } = filled(n);
  try {
    assert.equal(index.size, n);
    assert.equal(index.pages, 3);
    assert.equal(index.defaultProbes, 3);
    const query: ScanQuery = { vector: vectors[n - 1]!, metric: 'dot', int8Query: false };
    const everything = best(index, query, 10, {});
    // The query is a stored vector in the last page: a probe of one page that missed it would show.
    assert.equal(everything[0], `v${n - 1}`);
    assert.deepEqual(best(index, query, 10, { nprobe: 1 }), everything);
    assert.deepEqual(best(index, query, 10, { exact: true }), everything);
  } finally {
    index.free();
  }
});

test('FlatIndex: accept is asked only for slots that would enter the heap, and rejected ones stay out', () => {
  const { index, vectors } = filled(300);
  try {
    const query: ScanQuery = { vector: vectors[0]!, metric: 'dot', int8Query: true };
    const asked: number[] = [];
    const ids = best(index, query, 5, { accept: (slot) => (asked.push(slot), slot % 2 === 1) });
    assert.equal(ids.length, 5);
    for (const id of ids) assert.equal(index.slotOf(id)! % 2, 1);
    assert.ok(asked.length < 300, 'a filter is not asked about every vector');
  } finally {
    index.free();
  }
});

test('FlatIndex: removal keeps places with their ids', () => {
  const { index } = filled(50);
  try {
    assert.equal(index.remove('v3'), true);
    assert.equal(index.remove('v3'), false);
    assert.equal(index.has('v3'), false);
    assert.deepEqual(index.placeOf('v49'), [1, 1 + (49 % 3), 49 * 8]);
    assert.equal(index.placeOf('v3'), undefined);
    // By slot: the same place as by id, for every id, the moved one included; a slot past the end is refused.
    for (let i = 0; i < 50; i++) if (i !== 3) assert.deepEqual(index.placeAt(index.slotOf(`v${i}`)!), index.placeOf(`v${i}`));
    assert.throws(() => index.placeAt(index.size), RangeError);
    assert.throws(() => index.placeAt(-1), RangeError);
  } finally {
    index.free();
  }
});
