/**
 * The process test/hostile-fast-scan.test.ts kills: an rq store (codec from argv) whose codes cross
 * trainSize, then pages.from, split pages and fill blocks, in 'always' mode with small checkpoints,
 * deletes and compactions, printing `ack N` once batch N has resolved.
 *   node hostile-fs-child.js DIR SEED CODEC
 */
import { MemStore, type RqCodecName } from '../../src/index.js';
import { indexRewrite } from '../../src/store/checkpointer.js';
import { HOSTILE_FS_CHILD, hostileFsBatch, hostileFsDeletes } from './hostile-fs-ops.js';

// Checkpoints start new index generations often, so kills also land in a rewrite of the index file.
indexRewrite.minDeltaBytes = 4096;

const [dir, seedText, codec] = process.argv.slice(2);
const seed = Number(seedText);
const store = await MemStore.open(dir!, { ...HOSTILE_FS_CHILD, codec: codec as RqCodecName, durability: 'always', cache: false });
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  await store.add(hostileFsBatch(seed, i));
  const dead = hostileFsDeletes(seed, i);
  if (dead.length > 0) await store.delete(dead);
  if (i % 7 === 6) await store.compact();
  process.stdout.write(`ack ${i}\n`);
}
