/**
 * Terminates workers that add and compact (compacting-worker.ts) at random moments, reopening the
 * store on this thread after each, as an application with a worker pool would:
 *   node terminate-child.js DIR FIRST_ROUND ROUNDS SEED
 * Prints `ack <id>` for each acknowledged record, `bad <what>` when a reopened store lacks one or
 * holds damage, and `round <n>` after each round. lmdb-js can abort the whole process when a worker
 * is terminated inside one of its calls (README, "Status and limits"): the test then starts another.
 */
import { Worker } from 'node:worker_threads';
import { MemStore } from '../../src/index.js';
import { rng } from '../helpers.js';

const [dir, first, rounds, seed] = process.argv.slice(2);
const WORKER = new URL('./compacting-worker.js', import.meta.url);
const next = rng(Number(seed));
const acked: string[] = [];
const say = (line: string) => process.stdout.write(`${line}\n`);
for (let round = Number(first); round < Number(first) + Number(rounds); round++) {
  const worker = new Worker(WORKER, { workerData: { dir, tag: `w${round}` } });
  // Every other round during a compaction (its first 80 ms), the others at any moment.
  const duringCompaction = round % 2 === 0;
  const delay = duringCompaction ? next() * 80 : 100 + next() * 400;
  const terminated = new Promise<void>((resolve) => {
    worker.on('message', (m: string[] | 'compacting') => {
      if (m === 'compacting') {
        if (duringCompaction) setTimeout(resolve, delay);
        return;
      }
      for (const id of m) say(`ack ${id}`);
      acked.push(...m);
    });
    if (!duringCompaction) setTimeout(resolve, delay);
  });
  worker.on('error', (e) => say(`bad the worker failed: ${String(e)}`));
  await terminated;
  await worker.terminate();
  const store = await MemStore.open(dir!, { dim: 8 });
  if (store.stats().damaged > 0) say(`bad ${store.stats().damaged} damaged records after round ${round}`);
  for (const id of acked) {
    const text = await store.get(id).then((r) => r?.text, (e: unknown) => `${(e as { code?: string }).code}`);
    if (text !== `${id} ${'x'.repeat(100)}`) say(`bad ${id} after round ${round}: ${text}`);
  }
  await store.close();
  say(`round ${round}`);
}
