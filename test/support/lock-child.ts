/**
 * Opens the store in argv[2] when the clock reaches argv[3] (ms since the epoch), so that several
 * of these race; holds the store for argv[4] ms and prints `opened <from> <to>`, the times (ms since
 * the epoch) it surely held the lock (after open resolved, before close began), or the error code.
 */
import { MemStore, isMemstoreError } from '../../src/index.js';

const [dir, startText, holdText] = process.argv.slice(2);
const start = Number(startText);
while (Date.now() < start) {
  // Spin: a timer would add its own jitter to the race.
}
try {
  const store = await MemStore.open(dir!);
  const from = Date.now();
  await new Promise((resolve) => setTimeout(resolve, Number(holdText)));
  const to = Date.now();
  await store.close();
  process.stdout.write(`opened ${from} ${to}\n`);
} catch (e) {
  process.stdout.write(`${isMemstoreError(e) ? e.code : String(e)}\n`);
}
