import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as lancedb from '@lancedb/lancedb';
import { tableFromIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { shippedDataset } from '../src/cli/datasets.js';
import { exportStore, MemStore } from '../src/index.js';
import { tempDir } from './helpers.js';

test('export to LanceDB: the Parquet file, loaded into a LanceDB table (@lancedb/lancedb 0.31.0), returns the same top 10 as memstore with exact: true for 100 queries', async () => {
  const data = shippedDataset();
  const dir = tempDir();
  // float32 codes and rescoring: memstore's exact: true is the float32 answer, as LanceDB's flat search is.
  const store = await MemStore.open(dir, { dim: data.dim, codec: 'f32' });
  await store.add(data.docs.map((vector, i) => ({ id: `d${i}`, vector, text: `doc ${i}`, meta: { i } })));
  const file = join(tempDir(), 'docs.parquet');
  await store.close();
  await exportStore(dir, file);

  // The Parquet file as LanceDB takes it: its rows through Arrow (LanceDB builds its own Arrow table from them).
  const table = tableFromIPC(parquet.readParquet(readFileSync(file)).intoIPCStream());
  const rows = table.toArray().map((r: { id: string; vector: { toArray(): Float32Array }; text: string; meta: string }) => ({ id: r.id, vector: Array.from(r.vector.toArray()), text: r.text, meta: r.meta }));
  const db = await lancedb.connect(tempDir());
  const lance = await db.createTable('memories', rows);
  assert.equal(await lance.countRows(), data.docs.length);
  assert.match(String((await lance.schema()).fields.find((f) => f.name === 'vector')?.type), /FixedSizeList\[512\]<Float32>/);

  const mine = await MemStore.open(dir);
  try {
    let same = 0;
    for (const q of data.queries.slice(0, 100)) {
      const theirs = (await lance.vectorSearch(Array.from(q)).distanceType('cosine').limit(10).toArray()).map((r: { id: string }) => r.id);
      const ours = (await mine.search(q, { k: 10, exact: true })).map((h) => h.id);
      if (theirs.join() === ours.join()) same++;
      else assert.deepEqual(new Set(ours), new Set(theirs), 'the same ten, in another order only where scores tie within float32');
    }
    assert.ok(same >= 95, `${same} of 100 in the same order`);
  } finally {
    await mine.close();
  }
});
