import { MemStore } from '../../src/index.js';
import type { MemstoreError } from '../../src/errors.js';

/**
 * Run under a file size limit that state.mdb soon reaches (test/state-full.test.ts): adds batches
 * of padded documents with small checkpoints until one is refused, then closes; reports each batch
 * acknowledged, each unhandled rejection, and how close() ended.
 */
const dir = process.argv[2]!;
const unhandled: string[] = [];
process.on('unhandledRejection', (e) => unhandled.push(String((e as Error)?.message ?? e)));
// Reported and ended by the parent's timeout if close() never settles.
const keep = setInterval(() => undefined, 1000);
const store = await MemStore.open(dir, { dim: 8, cache: false, durability: 'always', checkpointBytes: 65536 });
let refused: string | undefined;
for (let b = 0; b < 200 && refused === undefined; b++) {
  try {
    await store.add(Array.from({ length: 20 }, (_, j) => ({ id: `b${b}-${j}`, vector: Array.from({ length: 8 }, (_, k) => Math.sin(b * 31 + j * 7 + k)), meta: { pad: 'm'.repeat(2000), b } })));
    process.stdout.write(`ack ${b}\n`);
  } catch (e) {
    refused = (e as MemstoreError).code ?? String(e);
  }
}
let closed: string;
try {
  await store.close();
  closed = 'ok';
} catch (e) {
  closed = (e as MemstoreError).code ?? String(e);
}
// A turn for rejections lmdb-js makes after close to be reported.
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(`${JSON.stringify({ refused, closed, unhandled })}\n`);
clearInterval(keep);
