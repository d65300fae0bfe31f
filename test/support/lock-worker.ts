import { parentPort, workerData } from 'node:worker_threads';

/**
 * A worker thread that opens the store in `workerData.dir`, adds `workerData.records` records,
 * reports 'open' (or the error code it met) and then waits: the test terminates it, as a worker
 * pool retires an idle worker, or sends 'close'. With `workerData.module`, memstore is that file
 * (another copy of it, as a nested node_modules brings).
 */
const { dir, records, module } = workerData as { dir: string; records: number; module?: string };
const { MemStore } = (module === undefined ? await import('../../src/index.js') : await import(module)) as typeof import('../../src/index.js');
try {
  const store = await MemStore.open(dir, { dim: 4 });
  if (records > 0) await store.add(Array.from({ length: records }, (_, i) => ({ id: `w${i}`, vector: Float32Array.of(1, i, 0, 1) })));
  parentPort!.postMessage('open');
  // Alive until terminated, or told to close: with nothing left to do, a worker's thread would end by itself.
  const alive = setInterval(() => undefined, 1 << 30);
  parentPort!.on('message', (m: string) => {
    if (m !== 'close') return;
    store.close().then(
      () => parentPort!.postMessage('closed'),
      (e: unknown) => parentPort!.postMessage(`close failed ${(e as { code?: string }).code ?? String(e)}`),
    );
    clearInterval(alive);
  });
} catch (e) {
  parentPort!.postMessage(`error ${(e as { code?: string }).code ?? String(e)}`);
}
