import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { damageText, rejectsWith, tempDir } from './helpers.js';

const DIM = 4;

test('ids(): every stored id after adds, upserts and deletes, damaged records included; a snapshot; CLOSED after close', async () => {
  const dir = tempDir();
  let store = await MemStore.open(dir, { dim: DIM });
  await store.add(Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, vector: [i + 1, 1, 2, 3], text: `the text of record ${i}` })));
  await store.add([{ id: 'r3', vector: [9, 9, 9, 9] }, { id: 'é😀', vector: [1, 0, 0, 0] }]);
  await store.delete(['r5', 'r6', 'missing']);
  const want = [...Array.from({ length: 30 }, (_, i) => `r${i}`).filter((id) => id !== 'r5' && id !== 'r6'), 'é😀'].sort();
  const snapshot = store.ids();
  assert.deepEqual([...snapshot].sort(), want);
  await store.delete(['r7']);
  assert.equal(snapshot.length, want.length);
  assert.equal(store.ids().length, want.length - 1);
  await store.close();

  damageText(dir, 'record 11');
  store = await MemStore.open(dir);
  // Found damaged when first read: still listed, and get names it.
  await rejectsWith(() => store.get('r11'), 'CORRUPTION');
  assert.ok(store.ids().includes('r11'));
  assert.equal(store.ids().length, want.length - 1);
  await store.close();
  assert.throws(() => store.ids(), (e: unknown) => (e as { code?: string }).code === 'CLOSED');
});
