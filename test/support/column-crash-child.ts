/**
 * The process the columns crash test kills: the crash workload (crash-ops.ts) in 'always' mode with
 * checkpoints every 8 KiB of log, a filtered search after every other operation (so that columns
 * exist, change and are written by nearly every checkpoint), printing `ack N` as operation N resolves.
 *   node column-crash-child.js DIR SEED
 */
import { MemStore } from '../../src/index.js';
import { CRASH_DIM, crashOp, runCrashOp } from './crash-ops.js';
import { COLUMN_CRASH_FILTERS } from './column-oracle.js';

const [dir, seedText] = process.argv.slice(2);
const seed = Number(seedText);
const store = await MemStore.open(dir!, { dim: CRASH_DIM, durability: 'always', checkpointBytes: 8 * 1024, cache: false, pages: false });
process.stdout.write('ready\n');
const query = Array.from({ length: CRASH_DIM }, (_, i) => (i % 3) - 1);
for (let i = 0; ; i++) {
  await runCrashOp(store, crashOp(seed, i));
  process.stdout.write(`ack ${i}\n`);
  if (i % 2 === 0) await store.search(query, { k: 5, filter: COLUMN_CRASH_FILTERS[i % COLUMN_CRASH_FILTERS.length]! });
}
