/**
 * The process the page determinism test kills: opens a store in argv with a configuration of
 * page-writes.ts in 'always' mode, checkpointing every 32 KiB of log, writes its first batches,
 * prints `written`, and waits to be killed: the store reopens from its last checkpoint and the log
 * after it.
 *   node pages-child.js DIR CONFIG BATCHES
 */
import { MemStore } from '../../src/index.js';
import { pageWritesOptions, writeBatch } from './page-writes.js';

const [dir, config, batches] = process.argv.slice(2);
const store = await MemStore.open(dir!, pageWritesOptions(config!, { durability: 'always', checkpointBytes: 32 * 1024 }));
for (let b = 0; b < Number(batches); b++) await writeBatch(store, b);
process.stdout.write('written\n');
setInterval(() => undefined, 1000);
