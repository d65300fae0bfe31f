/**
 * The process the crash tests kill: it opens the store given in argv, runs the deterministic
 * workload for its seed in 'always' mode (or the mode given); prints `opening` right before it opens the
 * store, `ready` once it is open, and `ack N` once operation N has resolved.
 *   node crash-child.js DIR SEED [pages|exact] [always|batch|none]
 * With `pages`, the store clusters its codes into pages (CRASH_PAGES); without, it opens with
 * `pages: false`, turning a paged store back into the exact index.
 */
import { MemStore } from '../../src/index.js';
import { indexRewrite } from '../../src/store/checkpointer.js';
import { CRASH_DIM, CRASH_PAGES, crashOp, runCrashOp } from './crash-ops.js';

// Checkpoints start new index generations often, so kills also land in a rewrite of the index file.
indexRewrite.minDeltaBytes = 4096;

const [dir, seedText, pagesArg, durabilityArg] = process.argv.slice(2);
const seed = Number(seedText);
const durability = durabilityArg === 'batch' || durabilityArg === 'none' ? durabilityArg : 'always';
// The store is opened (made, in a new directory) from here: a test that kills the first open waits for this line.
process.stdout.write('opening\n');
const store = await MemStore.open(dir!, { dim: CRASH_DIM, durability, checkpointBytes: 32 * 1024, cache: false, pages: pagesArg === 'pages' ? CRASH_PAGES : false });
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  await runCrashOp(store, crashOp(seed, i));
  process.stdout.write(`ack ${i}\n`);
}
