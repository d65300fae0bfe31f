/**
 * The process the rq kill -9 test kills: it opens (or creates) an rq store in argv and adds the
 * records of rqChildBatch(seed, i) one batch at a time in 'always' mode (compacting after every
 * fourth), printing `ack N` once batch N has resolved, so kills land before, during and after the
 * add that crosses trainSize.
 *   node rq-child.js DIR SEED
 */
import { MemStore } from '../../src/index.js';
import { RQ_CHILD_OPTIONS, rqChildBatch } from './rq-child-ops.js';

const [dir, seedText] = process.argv.slice(2);
const seed = Number(seedText);
const store = await MemStore.open(dir!, { ...RQ_CHILD_OPTIONS, durability: 'always', cache: false });
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  await store.add(rqChildBatch(seed, i));
  // Compactions rewrite the index and collect the arenas: kills land in them too, before and after training.
  if (i % 4 === 3) await store.compact();
  process.stdout.write(`ack ${i}\n`);
}
