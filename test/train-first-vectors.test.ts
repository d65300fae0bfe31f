import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemStore, type OpenOptions } from '../src/index.js';
import { clustered, tempDir } from './helpers.js';

/**
 * The rq codes train, and PCA is fitted, on the first `trainSize` vectors (README): the same records
 * in the same order, added in one batch, in two ending exactly at `trainSize`, or in batches that
 * cross it elsewhere, make the same model and (on the exact index, well below `pages.from`) answer
 * the same, ids and scores. The fit once took every vector buffered when the batch that crossed
 * `trainSize` landed, so the model depended on where the batches split.
 */
const DIM = 16;
const TRAIN = 128;

const CONFIGS: Record<string, OpenOptions> = {
  rq2: { codec: 'rq2' },
  'int8 + PCA 8': { pca: { dims: 8 } },
};

async function answers(options: OpenOptions, splits: number[]): Promise<string[][]> {
  const data = clustered(200, DIM, 41);
  const queries = clustered(10, DIM, 42);
  const store = await MemStore.open(tempDir(), { dim: DIM, trainSize: TRAIN, cache: false, ...options });
  try {
    let at = 0;
    for (const n of splits) {
      await store.add(data.slice(at, at + n).map((vector, i) => ({ id: `v${String(at + i).padStart(3, '0')}`, vector })));
      at += n;
    }
    return await Promise.all(queries.map(async (q) => (await store.search(q, { k: 5, rescore: false })).map((h) => `${h.id}:${h.score}`)));
  } finally {
    await store.close();
  }
}

describe('the model is fitted on the first trainSize vectors, whatever the batches', () => {
  for (const [name, options] of Object.entries(CONFIGS)) {
    it(name, async () => {
      const oneBatch = await answers(options, [200]);
      assert.deepEqual(await answers(options, [TRAIN, 200 - TRAIN]), oneBatch, 'a batch ending at trainSize');
      assert.deepEqual(await answers(options, [100, 100]), oneBatch, 'a batch crossing it');
      assert.deepEqual(await answers(options, [50, 60, 90]), oneBatch, 'three batches');
    });
  }
});
