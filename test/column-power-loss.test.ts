import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { CRASH_DIM, crashOp, runCrashOp } from './support/crash-ops.js';
import { COLUMN_CRASH_FILTERS, columnsDisagree } from './support/column-oracle.js';
import { FaultFileLayer } from './support/fault-layer.js';
import { rng, tempDir } from './helpers.js';

/**
 * Power loss while checkpoints write filter columns: the store's files (the columns file included)
 * go through a FaultFileLayer that, at a cut, keeps only what was fsynced. The crash workload runs
 * with filtered searches between its operations and a checkpoint every 8 KiB of log; after the cut
 * the store reopens on what the disk kept, and every filter must answer as its metadata says.
 */
const CUTS = Number(process.env['COLUMN_POWER_CUTS'] ?? 40);

test(`columns: power loss at ${CUTS} random points: the reopened store's filters agree with its metadata`, async () => {
  const next = rng(99);
  for (let cut = 0; cut < CUTS; cut++) {
    const dir = tempDir('memstore-column-power-');
    const disk = new FaultFileLayer({ seed: cut + 7 });
    const store = await MemStore.open(dir, { dim: CRASH_DIM, durability: 'always', checkpointBytes: 8 * 1024, cache: false, files: disk, pages: false });
    disk.scheduleCut(20 + Math.floor(next() * 600));
    const universe = new Set<string>();
    const query = Array.from({ length: CRASH_DIM }, (_, i) => (i % 3) - 1);
    for (let i = 0; disk.alive && i < 300; i++) {
      const op = crashOp(500 + cut, i);
      if (op.kind === 'add') for (const r of op.records) universe.add(r.id);
      try {
        await runCrashOp(store, op);
        await store.search(query, { k: 5, filter: COLUMN_CRASH_FILTERS[i % COLUMN_CRASH_FILTERS.length]! });
      } catch {
        break;
      }
    }
    await store.abandon();
    const reopened = await MemStore.open(dir, { cache: false, files: disk.reboot(), pages: false });
    try {
      assert.equal(await columnsDisagree(reopened, universe, COLUMN_CRASH_FILTERS, query), undefined, `cut ${cut}`);
    } finally {
      await reopened.close();
    }
  }
});
