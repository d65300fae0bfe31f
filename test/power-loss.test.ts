import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FaultFileLayer } from './support/fault-layer.js';
import { MemStore } from '../src/index.js';
import { applyToModel, CRASH_DIM, CRASH_PAGES, crashOp, runCrashOp, type CrashOp, type ModelRecord } from './support/crash-ops.js';
import { rng, tempDir } from './helpers.js';
import { indexRewrite } from '../src/store/checkpointer.js';

/**
 * Simulated power loss: the write-ahead log, both arenas and the index file go through a FaultFileLayer that, at
 * a cut, drops every byte and directory entry not fsynced. The LMDB checkpoint file stays on the
 * real disk: LMDB commits are synchronous and atomic, and a checkpoint only lets the log go once
 * its commit is flushed, so an older checkpoint is always covered by the log that remains.
 *
 * At 200 random cut points (scheduled after a random number of file operations, so cuts land in
 * appends, fsyncs, checkpoints and compactions), every write acknowledged in 'always' mode must
 * survive, and the store must hold the acknowledged writes plus, at most, a prefix (in log order)
 * of the writes still in flight.
 */
const CUTS = Number(process.env['POWER_CUTS'] ?? 128);
// Index generations turn over often, so cuts also land in a rewrite of the index file (INDEX.md).
indexRewrite.minDeltaBytes = 4096;

async function matchesModel(store: MemStore, model: Map<string, ModelRecord>, universe: Iterable<string>): Promise<boolean> {
  if (store.stats().count !== model.size) return false;
  for (const id of universe) {
    const got = await store.get(id);
    const want = model.get(id);
    if (want === undefined) {
      if (got !== undefined) return false;
      continue;
    }
    if (got === undefined || got.text !== want.text || got.vector.some((x, i) => x !== want.vector[i])) return false;
    try {
      assert.deepEqual(got.meta, want.meta);
    } catch {
      return false;
    }
  }
  return true;
}

test(`power loss at ${CUTS} random points: every fsync-acknowledged write survives and the store opens`, async () => {
  const next = rng(77);
  let inFlightSeen = 0;
  for (let cut = 0; cut < CUTS; cut++) {
    const dir = tempDir('memstore-power-');
    const disk = new FaultFileLayer({ seed: cut + 1 });
    // Every other cut with the page index (pages written by checkpoints, recovered at open).
    const pages = cut % 2 === 1 ? CRASH_PAGES : false;
    const store = await MemStore.open(dir, { dim: CRASH_DIM, durability: 'always', checkpointBytes: 8 * 1024, cache: false, files: disk, pages });
    disk.scheduleCut(5 + Math.floor(next() * 400));

    const issued: CrashOp[] = [];
    const acked = new Set<number>();
    // Ops go out in small concurrent waves, so cuts also fall inside group commits.
    let i = 0;
    while (disk.alive && i < 400) {
      const wave = 1 + Math.floor(next() * 3);
      const promises: Promise<unknown>[] = [];
      for (let w = 0; w < wave; w++, i++) {
        const op = crashOp(1000 + cut, i);
        const index = issued.length;
        issued.push(op);
        promises.push(runCrashOp(store, op).then(() => acked.add(index), () => undefined));
      }
      await Promise.all(promises);
    }
    await store.abandon();

    const reopened = await MemStore.open(dir, { cache: false, files: disk.reboot(), pages });
    try {
      const universe = new Set<string>();
      for (const op of issued) if (op.kind === 'add') for (const r of op.records) universe.add(r.id);
      const firstUnacked = issued.findIndex((_, k) => !acked.has(k));
      const settled = firstUnacked < 0 ? issued.length : firstUnacked;
      for (let k = settled; k < issued.length; k++) assert.ok(!acked.has(k), `cut ${cut}: op ${k} was acknowledged after an unacknowledged one`);
      // The store must equal the acknowledged prefix plus some prefix of the rest.
      const model = new Map<string, ModelRecord>();
      for (let k = 0; k < settled; k++) applyToModel(model, issued[k]!);
      let found = await matchesModel(reopened, model, universe);
      for (let k = settled; !found && k < issued.length; k++) {
        applyToModel(model, issued[k]!);
        found = await matchesModel(reopened, model, universe);
        if (found) inFlightSeen++;
      }
      assert.ok(found, `cut ${cut}: the reopened store is not the acknowledged writes plus a prefix of those in flight`);
    } finally {
      await reopened.close();
    }
  }
  process.stdout.write(`# power loss: ${CUTS} cuts, unacknowledged writes found durable ${inFlightSeen} times\n`);
});
