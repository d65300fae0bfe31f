/**
 * The process the clustering test kills while a worker thread clusters its codes into pages: opens a
 * store in argv with a configuration of page-writes.ts, durability 'always', issues every batch at
 * once, and prints `window` once the store holds COUNT records (every write applied) while the
 * worker still clusters (`late` once every write is done if it never did), then waits to be killed.
 *   node paging-child.js DIR CONFIG COUNT [CHECKPOINT_BYTES]
 */
import { MemStore } from '../../src/index.js';
import { planThreads } from '../../src/index/page-plan-job.js';
import { issueAllUntil, pageWritesOptions } from './page-writes.js';

const [dir, config, count, checkpointBytes] = process.argv.slice(2);
// A small store: its plan goes to a worker all the same, as every plan from the default pages.from does.
planThreads.minWork = 0;
const store = await MemStore.open(dir!, pageWritesOptions(config!, checkpointBytes === undefined ? { durability: 'always' } : { durability: 'always', checkpointBytes: Number(checkpointBytes) }));
const line = await issueAllUntil(store, (s) => {
  const now = s.stats();
  return now.clustering && now.count === Number(count);
});
process.stdout.write(`${line}\n`);
setInterval(() => undefined, 1000);
