/**
 * A store whose compact() has one of its LMDB transactions cut short, as lmdb-js commits what a
 * transaction's callback had written when its worker thread is terminated (src/store/state-intent.ts);
 * the process then kills itself, so nothing after the cut runs.
 *   node cut-commit-child.js DIR TRANSACTION FRACTION
 * TRANSACTION: which transaction of compact() is cut (1: the first); FRACTION: the share of its
 * writes made. Prints `cut <writes made> of <writes>` before dying, or `done` when compact() made
 * fewer transactions. The records are cutCommitRecords(); every write before compact() is awaited.
 */
import { MemStore } from '../../src/index.js';
import { stateWriteHooks } from '../../src/store/state.js';
import { CUT_DIM, cutCommitRecords, cutCommitRemoved, cutCommitReplaced } from './cut-commit-records.js';

const [dir, transaction, fraction] = process.argv.slice(2);
const store = await MemStore.open(dir!, { dim: CUT_DIM, trainSize: 64, checkpointBytes: 1 << 30 });
const records = cutCommitRecords();
for (let i = 0; i < records.length; i += 40) await store.add(records.slice(i, i + 40));
await store.close();
const again = await MemStore.open(dir!, { dim: CUT_DIM, checkpointBytes: 1 << 30 });
await again.delete(cutCommitRemoved());
await again.add(cutCommitReplaced());
let seen = 0;
let cutting = false;
stateWriteHooks.cut = (writes) => {
  if (++seen !== Number(transaction)) return undefined;
  const made = Math.floor(writes * Number(fraction));
  process.stdout.write(`cut ${made} of ${writes}\n`);
  cutting = true;
  return made;
};
stateWriteHooks.afterCut = () => {
  if (cutting) process.kill(process.pid, 'SIGKILL');
};
await again.compact();
process.stdout.write('done\n');
await again.close();
