import { parentPort, workerData } from 'node:worker_threads';
import { MemStore } from '../../src/index.js';

/**
 * A worker thread that opens the store in `workerData.dir` again and again until `workerData.until`
 * (a time in ms), closing what it opens, and reports how many tries ended with each error code
 * ('OPENED' for one that opened): a thread of the process knocking at a directory another holds.
 */
const { dir, until } = workerData as { dir: string; until: number };
const outcomes: Record<string, number> = {};
while (Date.now() < until) {
  let outcome: string;
  try {
    const store = await MemStore.open(dir, { dim: 4 });
    await store.close();
    outcome = 'OPENED';
  } catch (e) {
    outcome = (e as { code?: string }).code ?? String(e);
  }
  outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
}
parentPort!.postMessage(outcomes);
