import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { clustered, tempDir } from './helpers.js';

test('overwritten texts are collected by checkpoints once garbage dominates, and every live text still reads', async () => {
  const dir = tempDir();
  const DIM = 16;
  const v = clustered(2000, DIM, 21);
  const store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false, checkpointBytes: 1 << 20 });
  const text = (round: number, i: number) => `round ${round} record ${i} `.repeat(90);
  let peak = 0;
  let collections = 0;
  let last = 0;
  const rounds = 12;
  for (let round = 0; round < rounds; round++) {
    for (let at = 0; at < 2000; at += 250) {
      await store.add(Array.from({ length: 250 }, (_, j) => ({ id: `r${at + j}`, vector: v[at + j]!, text: text(round, at + j) })));
      const now = store.stats().arenaBytes;
      if (now < last) collections++;
      last = now;
      peak = Math.max(peak, now);
    }
  }
  const live = 2000 * Buffer.byteLength(text(rounds - 1, 1000));
  const written = rounds * live;
  // Collection starts once garbage exceeds both the live bytes and 16 MiB, checked at each
  // background checkpoint (every 1 MiB of log here, while writes go on): the arena never holds much more.
  assert.ok(peak < live + (16 << 20) + (12 << 20), `arena peaked at ${peak} B for ${live} B of live text`);
  assert.ok(collections >= 1, 'the arena shrank at least once');
  assert.ok(peak < 0.7 * written, `arena peaked at ${peak} B after ${written} B written`);
  for (const i of [0, 999, 1999]) assert.equal((await store.get(`r${i}`))?.text, text(rounds - 1, i));
  await store.close();
  const again = await MemStore.open(dir, { cache: false });
  for (const i of [1, 1000, 1998]) assert.equal((await again.get(`r${i}`))?.text, text(rounds - 1, i));
  await again.close();
});

test('compact() reclaims the arena without waiting on itself', async () => {
  const dir = tempDir();
  const DIM = 16;
  const v = clustered(600, DIM, 22);
  const store = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false });
  for (let round = 0; round < 3; round++) {
    await store.add(v.map((vector, i) => ({ id: `r${i}`, vector, text: `round ${round} `.repeat(2000) })));
  }
  const before = store.stats().arenaBytes;
  await store.compact();
  const after = store.stats().arenaBytes;
  assert.ok(after < before / 2, `arena ${before} B before compact, ${after} B after`);
  assert.equal((await store.get('r5'))?.text, 'round 2 '.repeat(2000));
  await store.close();
});
