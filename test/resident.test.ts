import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { ResidentSampler, RESIDENT_SAMPLE_MS, residentMappedBytes } from '../src/store/resident.js';
import { tempDir } from './helpers.js';

test('resident bytes of a store\'s mapped files: some while open, none once closed; sampled at most once per window', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4 });
  await store.add([{ id: 'a', vector: [1, 2, 3, 4] }]);
  const sampler = new ResidentSampler(dir);
  const open = sampler.bytes(0);
  assert.ok(open !== undefined && open > 0, `resident ${open}`);
  await store.close();
  assert.equal(residentMappedBytes(dir), 0, 'nothing of the directory is mapped after close');
  assert.equal(sampler.bytes(RESIDENT_SAMPLE_MS - 1), open, 'within the window the last reading is reused');
  assert.equal(sampler.bytes(RESIDENT_SAMPLE_MS), 0, 'after it, read again');
});

test('resident bytes of a store opened through a symlink: counted under the real path the kernel names the mapping by', async () => {
  const real = tempDir();
  const link = join(tempDir(), 'link');
  symlinkSync(real, link);
  const store = await MemStore.open(link, { dim: 4 });
  try {
    await store.add([{ id: 'a', vector: [1, 2, 3, 4] }]);
    const mapped = store.stats().mappedBytes;
    assert.ok(mapped !== undefined && mapped > 0, `mapped ${mapped}`);
    assert.equal(residentMappedBytes(link), residentMappedBytes(real));
  } finally {
    await store.close();
  }
  assert.equal(residentMappedBytes(link), 0);
});
