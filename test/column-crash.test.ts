import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemStore } from '../src/index.js';
import { rng, tempDir } from './helpers.js';
import { runUntilKilled } from './support/killable.js';
import { crashOp, CRASH_DIM } from './support/crash-ops.js';
import { COLUMN_CRASH_FILTERS, columnsDisagree, spyOnDocReads } from './support/column-oracle.js';

/**
 * kill -9 while checkpoints write filter columns: a child runs the crash workload with a filtered
 * search after every other operation and a checkpoint every 8 KiB of log (so kills land inside the
 * columns file's write, before and after its commit); the parent SIGKILLs it at a random instant,
 * reopens, and every filter's answer must be what the reopened store's metadata says. COLUMN_CRASHES
 * runs more cycles.
 */
const CYCLES = Number(process.env['COLUMN_CRASHES'] ?? 16);
const child = fileURLToPath(new URL('./support/column-crash-child.js', import.meta.url));

test(`columns: kill -9 mid-checkpoint, ${CYCLES} cycles: the reopened store's filters agree with its metadata`, async () => {
  const dir = tempDir('memstore-column-crash-');
  const next = rng(4242);
  const universe = new Set<string>();
  let restored = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    let acked = -1;
    await runUntilKilled(child, [dir, String(cycle + 1)], (line, kill) => {
      if (line === 'ready') kill(30 + Math.floor(next() * 250));
      else if (line.startsWith('ack ')) acked = Number(line.slice(4));
    });
    for (let i = 0; i <= acked + 1; i++) {
      const op = crashOp(cycle + 1, i);
      if (op.kind === 'add') for (const r of op.records) universe.add(r.id);
    }
    const store = await MemStore.open(dir, { cache: false, pages: false });
    try {
      const spy = spyOnDocReads(store);
      const hits = await store.search(Array.from({ length: CRASH_DIM }, () => 0.5), { k: 3, filter: COLUMN_CRASH_FILTERS[0]! });
      if (spy.ids.every((id) => hits.some((h) => h.id === id))) restored++;
      const wrong = await columnsDisagree(store, universe, COLUMN_CRASH_FILTERS, Array.from({ length: CRASH_DIM }, (_, i) => i / CRASH_DIM));
      assert.equal(wrong, undefined, `cycle ${cycle}`);
    } finally {
      await store.abandon();
    }
  }
  process.stdout.write(`# columns crash: ${CYCLES} kills, columns restored without reading metadata after ${restored}\n`);
  assert.ok(restored > 0, 'some kill left a columns file the next open used');
});
