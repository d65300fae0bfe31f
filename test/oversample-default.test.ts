/**
 * The oversample a store takes when its options name none (options.ts, defaultOversample): its
 * codec's, rq2 and rq4 scaled by √(128 / dim) above 128 dimensions (rounded up, at least 2), rq1 and
 * the scalar codecs as they stand, and at least PCA_OVERSAMPLE with PCA, which scales nothing. What a
 * search takes is counted by stats().rescoring.candidates.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore, type OpenOptions } from '../src/index.js';
import { DEFAULT_OVERSAMPLE, PCA_OVERSAMPLE, RQ_OVERSAMPLE_DIM, defaultOversample } from '../src/options.js';
import { CODEC_NAMES } from '../src/codec/codec.js';
import { clustered, tempDir } from './helpers.js';

test('defaultOversample: rq2 and rq4 take their codec\'s up to 128 dimensions and that times √(128 / dim) above, rounded up and at least 2; rq1 and the scalar codecs theirs at every dimension; PCA keeps the codec\'s, at least 4', () => {
  assert.equal(RQ_OVERSAMPLE_DIM, 128);
  for (const dim of [1, 100, 128]) {
    for (const codec of CODEC_NAMES) assert.equal(defaultOversample(codec, false, dim), DEFAULT_OVERSAMPLE[codec], `${codec} at ${dim}`);
  }
  const expected: [number, number, number][] = [
    // dim, rq2, rq4
    [129, 12, 10],
    [256, 9, 8],
    [384, 7, 6],
    [512, 6, 5],
    [768, 5, 5],
    [1536, 4, 3],
    [4096, 3, 2],
    [65536, 2, 2],
  ];
  for (const [dim, rq2, rq4] of expected) {
    assert.equal(defaultOversample('rq2', false, dim), rq2, `rq2 at ${dim}`);
    assert.equal(defaultOversample('rq4', false, dim), rq4, `rq4 at ${dim}`);
    for (const codec of CODEC_NAMES.filter((c) => c !== 'rq2' && c !== 'rq4')) assert.equal(defaultOversample(codec, false, dim), DEFAULT_OVERSAMPLE[codec], `${codec} at ${dim}`);
    for (const codec of CODEC_NAMES) assert.equal(defaultOversample(codec, true, dim), Math.max(PCA_OVERSAMPLE, DEFAULT_OVERSAMPLE[codec]), `${codec} with PCA at ${dim}`);
  }
});

test('a store takes k times its default oversample as candidates: rq2 6 and rq4 5 at 512-d, rq2 12 at 128-d, rq1 24 and int8 2 at 512-d, rq2 with PCA 12; the oversample option overrides it; a reopen takes the same', async () => {
  const cases: { label: string; options: OpenOptions; perResult: number }[] = [
    { label: 'rq2, 512-d', options: { dim: 512, codec: 'rq2' }, perResult: 6 },
    { label: 'rq4, 512-d', options: { dim: 512, codec: 'rq4' }, perResult: 5 },
    { label: 'rq1, 512-d', options: { dim: 512, codec: 'rq1' }, perResult: 24 },
    { label: 'int8, 512-d', options: { dim: 512, codec: 'int8' }, perResult: 2 },
    { label: 'rq2, 128-d', options: { dim: 128, codec: 'rq2' }, perResult: 12 },
    { label: 'rq2, 512-d, PCA to 32', options: { dim: 512, codec: 'rq2', pca: { dims: 32 } }, perResult: 12 },
    { label: 'rq2, 512-d, oversample 9', options: { dim: 512, codec: 'rq2', oversample: 9 }, perResult: 9 },
  ];
  const k = 3;
  for (const { label, options, perResult } of cases) {
    const dir = tempDir('memstore-oversample-');
    const dim = options.dim!;
    const open = (o: OpenOptions) => MemStore.open(dir, { ...o, cache: false, durability: 'none', trainSize: 64 });
    let store = await open(options);
    const queries = clustered(2, dim, 5);
    try {
      await store.add(clustered(400, dim, 4).map((vector, i) => ({ id: `v${i}`, vector })));
      await store.search(queries[0]!, { k });
      assert.equal(store.stats().rescoring.candidates, k * perResult, label);
      await store.close();
      store = await open(options.oversample === undefined ? {} : { oversample: options.oversample });
      await store.search(queries[1]!, { k });
      assert.equal(store.stats().rescoring.candidates, k * perResult, `${label}, reopened`);
    } finally {
      await store.close();
    }
  }
});
