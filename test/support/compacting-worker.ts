import { parentPort, workerData } from 'node:worker_threads';
import { MemStore } from '../../src/index.js';

/**
 * A worker thread that adds batches of 20 records to the store in `workerData.dir` and compacts it
 * after every fifth, posting the ids of each batch once add() resolved and 'compacting' before each
 * compact(); the test terminates it then or at a random moment, as a worker pool retires a worker,
 * then reopens the store and reads them all.
 */
const { dir, tag } = workerData as { dir: string; tag: string };
const store = await MemStore.open(dir, { dim: 8, trainSize: 100, checkpointBytes: 50_000 });
for (let b = 0; ; b++) {
  const ids = Array.from({ length: 20 }, (_, i) => `${tag}-${b}-${i}`);
  await store.add(ids.map((id, i) => ({ id, vector: Array.from({ length: 8 }, (_, j) => Math.cos(b * 7 + i + j)), text: `${id} ${'x'.repeat(100)}` })));
  parentPort!.postMessage(ids);
  if (b % 5 === 4) {
    parentPort!.postMessage('compacting');
    await store.compact();
  }
}
