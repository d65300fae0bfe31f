import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { checkStore } from '../src/store/verify.js';
import { clustered, tempDir } from './helpers.js';

/**
 * Hostile tests of extreme sizes and values and of the durability modes under kill -9
 * (2026-12-02). The tests not marked "(held)" failed before their fixes; the others held and stay
 * as checks.
 */

const DIM = 8;
const vecs = clustered(64, DIM, 31);

/** Settles with what `p` gives, or 'timeout' after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('extremes: compact() called while a background checkpoint is about to collect the text arena finishes (the two waited for each other forever)', async () => {
  const dir = tempDir('memstore-ext-');
  const first = await MemStore.open(dir, { dim: DIM, cache: false });
  await first.add([0, 1, 2].map((i) => ({ id: `big${i}`, vector: vecs[i]!, text: String(i).repeat(7 << 20) })));
  await first.close();
  // The replacing batch passes checkpointBytes but not twice it: the checkpoint it starts runs in
  // the background without holding writes back, so compact() takes the gate at once; the garbage
  // (21 MiB of replaced texts) then makes that checkpoint collect the text arena.
  const store = await MemStore.open(dir, { cache: false, checkpointBytes: 12 << 10 });
  const small = (i: number) => `small ${i} ${'x'.repeat(5000)}`;
  await store.add([0, 1, 2].map((i) => ({ id: `big${i}`, vector: vecs[i]!, text: small(i) })));
  assert.equal(await within(store.compact().then(() => 'done'), 20_000), 'done');
  for (const i of [0, 1, 2]) assert.equal((await store.get(`big${i}`))?.text, small(i));
  assert.ok(store.stats().arenaBytes < 1 << 20, `arena holds ${store.stats().arenaBytes} B after compact`);
  await store.close();
  assert.deepEqual((await checkStore(dir)).problems, []);
  const again = await MemStore.open(dir, { cache: false });
  for (const i of [0, 1, 2]) assert.equal((await again.get(`big${i}`))?.text, small(i));
  await again.close();
});
