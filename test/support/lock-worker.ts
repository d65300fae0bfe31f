import { parentPort, workerData } from 'node:worker_threads';
import { MemStore } from '../../src/index.js';

/**
 * A worker thread that opens the store in `workerData.dir`, adds `workerData.records` records,
 * reports 'open' (or the error code it met) and then waits, never closing the store: the test
 * terminates it, as a worker pool retires an idle worker.
 */
const { dir, records } = workerData as { dir: string; records: number };
try {
  const store = await MemStore.open(dir, { dim: 4 });
  if (records > 0) await store.add(Array.from({ length: records }, (_, i) => ({ id: `w${i}`, vector: Float32Array.of(1, i, 0, 1) })));
  parentPort!.postMessage('open');
  // Alive until terminated: with nothing left to do, a worker's thread would end by itself.
  setInterval(() => undefined, 1 << 30);
} catch (e) {
  parentPort!.postMessage(`error ${(e as { code?: string }).code ?? String(e)}`);
}
