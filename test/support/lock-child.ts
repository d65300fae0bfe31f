/**
 * Opens the store in argv[2] when the clock reaches argv[3] (ms since the epoch), so that several
 * of these race; prints `opened` and holds the store for argv[4] ms, or prints the error code.
 */
import { MemStore, isMemstoreError } from '../../src/index.js';

const [dir, startText, holdText] = process.argv.slice(2);
const start = Number(startText);
while (Date.now() < start) {
  // Spin: a timer would add its own jitter to the race.
}
try {
  const store = await MemStore.open(dir!);
  process.stdout.write('opened\n');
  await new Promise((resolve) => setTimeout(resolve, Number(holdText)));
  await store.close();
} catch (e) {
  process.stdout.write(`${isMemstoreError(e) ? e.code : String(e)}\n`);
}
