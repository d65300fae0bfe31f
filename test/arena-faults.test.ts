/**
 * Crash safety through the fault layer (ARENA.md, "Collection" and "Writing"): a power cut at
 * every step of a collection, power cuts and crashes during ordinary appends, and ENOSPC/EIO on
 * writes and fsyncs. The caller's durable state is modeled as a variable assigned atomically at
 * the point where the store would commit its checkpoint.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BlobArena, type BlobRef } from '../src/arena/arena.js';
import { MemstoreError } from '../src/errors.js';
import { arenaDir, parseArenaSegmentName } from '../src/store/files.js';
import { FaultFileLayer, type UnsyncedFate } from './support/fault-layer.js';
import type { FileLayer } from '../io/file-layer.js';
import { STORE, blob, freshDisk } from './support/arena-fixture.js';
import { rng as prng } from '../src/random.js';

function isIo(e: unknown): boolean {
  return e instanceof MemstoreError && e.code === 'IO';
}

/** The caller's checkpoint: which generation and which references survive a crash. */
interface Durable {
  generation: number;
  refs: Map<string, BlobRef>;
}

const SEGMENT_BYTES = 512;
const BLOBS = 60;

/** An arena with BLOBS synced blobs of which the even ones are deleted in the caller's durable state. */
async function populated(seed: number): Promise<{ files: FaultFileLayer; arena: BlobArena; durable: Durable; bytes: Map<string, Uint8Array> }> {
  const files = await freshDisk(seed);
  const arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: SEGMENT_BYTES });
  const refs = new Map<string, BlobRef>();
  const bytes = new Map<string, Uint8Array>();
  for (let i = 0; i < BLOBS; i++) {
    const payload = blob((i * 37) % 150, i);
    const ref = arena.append(payload);
    if (i % 2 === 0) {
      arena.release(ref);
    } else {
      refs.set(`k${i}`, ref);
      bytes.set(`k${i}`, payload);
    }
  }
  await arena.sync();
  return { files, arena, durable: { generation: 1, refs }, bytes };
}

/** The whole protocol as the store runs it: collect, commit (atomic, not a file operation), finishCollect. */
async function collectAndCommit(arena: BlobArena, durable: Durable): Promise<Durable> {
  const { generation, refs } = await arena.collect(durable.refs);
  const committed = { generation, refs };
  Object.assign(durable, committed);
  await arena.finishCollect(generation);
  return committed;
}

/** Reopens as the next process would and checks every durable reference, the files and verify. */
async function checkRecovered(files: FileLayer, durable: Durable, bytes: Map<string, Uint8Array>, context: string): Promise<BlobArena> {
  const arena = await BlobArena.open({ dir: STORE, files, generation: durable.generation, segmentBytes: SEGMENT_BYTES });
  for (const [key, ref] of durable.refs) assert.deepEqual(await arena.read(ref), bytes.get(key), `${context}: ${key}`);
  for (const name of await files.list(arenaDir(STORE))) {
    assert.equal(parseArenaSegmentName(name)?.generation, durable.generation, `${context}: orphan ${name} left`);
  }
  assert.deepEqual((await arena.verify()).errors, [], context);
  return arena;
}

describe('arena faults: power cut during a collection', () => {
  for (const fate of ['drop', 'random'] as UnsyncedFate[]) {
    it(`at every step (unsynced: ${fate}), the references the caller durably recorded read back exactly`, async () => {
      let completed = false;
      let cuts = 0;
      for (let step = 0; !completed; step++) {
        assert.ok(step < 500, 'the collection ends');
        const { files, arena, durable, bytes } = await populated(step + 1);
        files.scheduleCut(step, { unsynced: fate });
        try {
          await collectAndCommit(arena, durable);
        } catch (e) {
          assert.ok(isIo(e), `step ${step}: ${String(e)}`);
        }
        completed = files.alive;
        if (!completed) cuts++;
        const view = completed ? files.powerCut({ unsynced: fate }) : files.reboot();
        const reopened = await checkRecovered(view, durable, bytes, `${fate} cut at step ${step}`);
        // The store goes on: it can append and collect again.
        const extra = reopened.append(blob(33, 999));
        durable.refs.set('extra', extra);
        bytes.set('extra', blob(33, 999));
        await reopened.sync();
        await collectAndCommit(reopened, durable);
        await reopened.close();
        await (await checkRecovered(view.powerCut(), durable, bytes, `${fate} second collection after step ${step}`)).close();
      }
      assert.ok(cuts > 15, `${cuts} cut points`);
    });
  }

  it('after collect returned but before the caller commits: the old generation stays, the new one is an orphan', async () => {
    const { files, arena, durable, bytes } = await populated(1);
    await arena.collect(durable.refs);
    const view = files.powerCut();
    const reopened = await checkRecovered(view, durable, bytes, 'before commit');
    assert.equal(reopened.recovered.orphans.length > 0, true);
    await reopened.close();
  });

  it('after the commit but before finishCollect: the new generation holds every blob, the old one is an orphan', async () => {
    const { files, arena, durable, bytes } = await populated(1);
    const { generation, refs } = await arena.collect(durable.refs);
    durable.generation = generation;
    durable.refs = refs;
    const reopened = await checkRecovered(files.powerCut(), durable, bytes, 'after commit');
    assert.equal(reopened.recovered.orphans.length > 0, true);
    await reopened.close();
  });

  it('after finishCollect deleted some of the old files: the rest are deleted at open', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { files, arena, durable, bytes } = await populated(seed);
      const { generation, refs } = await arena.collect(durable.refs);
      durable.generation = generation;
      durable.refs = refs;
      // The cut hits as the third removal begins; 'random' keeps a seeded prefix of the two before it.
      files.scheduleCut(2, { unsynced: 'random' });
      await assert.rejects(arena.finishCollect(generation), isIo);
      const view = files.reboot();
      const before = (await view.list(arenaDir(STORE))).filter((n) => parseArenaSegmentName(n)?.generation === 1).length;
      assert.ok(before > 0);
      await (await checkRecovered(view, durable, bytes, `partial deletion, seed ${seed}`)).close();
    }
  });
});

describe('arena faults: appends', () => {
  it('a power cut or crash at 240 random points: every blob appended before a resolved sync() reads back exactly', async () => {
    for (let run = 0; run < 240; run++) {
      const random = prng(run + 1);
      const kind = run % 3 === 2 ? 'crash' : 'power';
      const unsynced: UnsyncedFate = run % 3 === 1 ? 'random' : 'drop';
      const files = await freshDisk(run + 1);
      const arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: 1024, maxUnsyncedBytes: 2048 });
      const acked = new Map<BlobRef, Uint8Array>();
      const unacked = new Map<BlobRef, Uint8Array>();
      files.scheduleCut(Math.floor(random() * 80), { kind, unsynced });
      try {
        for (let round = 0; round < 40; round++) {
          const batch = new Map<BlobRef, Uint8Array>();
          for (let i = Math.floor(random() * 8); i >= 0; i--) {
            const payload = blob(Math.floor(random() * 300), run * 1000 + round * 10 + i);
            batch.set(arena.append(payload), payload);
          }
          for (const [ref, payload] of batch) unacked.set(ref, payload);
          if (random() < 0.3) {
            // No sync: the background writer may write (and, past maxUnsyncedBytes, fsync) on its own.
            await new Promise<void>((resolve) => setImmediate(resolve));
            continue;
          }
          const covered = [...unacked];
          await arena.sync();
          for (const [ref, payload] of covered) {
            unacked.delete(ref);
            acked.set(ref, payload);
          }
        }
      } catch (e) {
        assert.ok(isIo(e), String(e));
      }
      const view = files.alive ? files.powerCut({ unsynced }) : files.reboot();
      const reopened = await BlobArena.open({ dir: STORE, files: view, generation: 1, segmentBytes: 1024 });
      const context = `run ${run} (${kind}, ${unsynced})`;
      for (const [ref, payload] of acked) assert.deepEqual(await reopened.read(ref), payload, `${context}: acknowledged ${ref.join(',')}`);
      // Unacknowledged blobs may or may not be there, but never as other bytes.
      for (const [ref, payload] of unacked) {
        try {
          assert.deepEqual(await reopened.read(ref), payload, `${context}: unacknowledged ${ref.join(',')}`);
        } catch (e) {
          if (!(e instanceof MemstoreError && e.code === 'CORRUPTION')) throw e;
        }
      }
      assert.deepEqual((await reopened.verify()).errors, [], context);
      const more = reopened.append(blob(12, run));
      await reopened.sync();
      assert.deepEqual(await reopened.read(more), blob(12, run));
      await reopened.close();
    }
  });

  it('a torn write that ends in a power cut: acknowledged blobs survive, the tail is cut', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const kept = arena.append(blob(80, 1));
    await arena.sync();
    arena.append(blob(200, 2));
    files.tearNextWrite({ at: 50, then: 'power' });
    await assert.rejects(arena.sync(), isIo);
    const reopened = await BlobArena.open({ dir: STORE, files: files.reboot(), generation: 1 });
    assert.deepEqual(await reopened.read(kept), blob(80, 1));
    await reopened.close();
  });
});

describe('arena faults: ENOSPC and EIO', () => {
  /** Reopens after a power cut and reads every reference. */
  async function survivesPowerCut(files: FaultFileLayer, expected: Map<BlobRef, Uint8Array>): Promise<void> {
    const reopened = await BlobArena.open({ dir: STORE, files: files.powerCut(), generation: 1 });
    for (const [ref, payload] of expected) assert.deepEqual(await reopened.read(ref), payload);
    assert.deepEqual((await reopened.verify()).errors, []);
    await reopened.close();
  }

  for (const code of ['ENOSPC', 'EIO'] as const) {
    it(`${code} on a write: sync() rejects with IO, and the arena stays usable`, async () => {
      const files = await freshDisk();
      const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
      const expected = new Map<BlobRef, Uint8Array>();
      const a = arena.append(blob(100, 1));
      expected.set(a, blob(100, 1));
      files.failNextWrites(1, code);
      await assert.rejects(arena.sync(), (e: unknown) => isIo(e) && (e as MemstoreError).cause instanceof Error && ((e as MemstoreError).cause as { code?: string }).code === code);
      assert.deepEqual(await arena.read(a), blob(100, 1), 'still readable from memory');
      const b = arena.append(blob(50, 2));
      expected.set(b, blob(50, 2));
      await arena.sync();
      assert.deepEqual(await arena.read(a), blob(100, 1));
      assert.deepEqual(await arena.read(b), blob(50, 2));
      await arena.close();
      await survivesPowerCut(files, expected);
    });

    it(`${code} on an fsync: sync() rejects with IO, the bytes are written again, and the next sync() makes them durable`, async () => {
      const files = await freshDisk();
      const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
      const a = arena.append(blob(100, 1));
      await arena.sync();
      const b = arena.append(blob(70, 2));
      files.failNextSyncs(1, code);
      await assert.rejects(arena.sync(), isIo);
      const writes = files.counts.writes;
      await arena.sync();
      assert.ok(files.counts.writes > writes, 'bytes whose fsync failed are written again before the next fsync');
      await arena.close();
      await survivesPowerCut(files, new Map([[a, blob(100, 1)], [b, blob(70, 2)]]));
    });
  }

  it('a torn write that rejects: sync() rejects with IO; the retry rewrites the whole frame', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const a = arena.append(blob(300, 1));
    files.tearNextWrite({ at: 100, then: 'reject', code: 'ENOSPC' });
    await assert.rejects(arena.sync(), isIo);
    await arena.sync();
    assert.deepEqual(await arena.read(a), blob(300, 1));
    await arena.close();
    await survivesPowerCut(files, new Map([[a, blob(300, 1)]]));
  });

  it('a failed directory fsync after creating a segment: sync() rejects with IO and the next one makes the segment durable', async () => {
    const disk = await freshDisk();
    let failDirSyncs = 0;
    const files: FileLayer = {
      open: (p, m) => disk.open(p, m),
      readFile: (p) => disk.readFile(p),
      list: (d) => disk.list(d),
      remove: (p) => disk.remove(p),
      rename: (f, t) => disk.rename(f, t),
      mkdir: (d) => disk.mkdir(d),
      exists: (p) => disk.exists(p),
      createSync: (p, d) => disk.createSync(p, d),
      linkSync: (e, p) => disk.linkSync(e, p),
      readFileSync: (p) => disk.readFileSync(p),
      removeSync: (p) => disk.removeSync(p),
      mtimeSync: (p) => disk.mtimeSync(p),
      syncDir: async (d) => {
        if (failDirSyncs > 0) {
          failDirSyncs--;
          throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        }
        return disk.syncDir(d);
      },
    };
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const a = arena.append(blob(10, 1));
    failDirSyncs = 1;
    await assert.rejects(arena.sync(), isIo);
    await arena.sync();
    await arena.close();
    await survivesPowerCut(disk, new Map([[a, blob(10, 1)]]));
  });

  it('ENOSPC during a collection: collect rejects with IO, the new generation is removed, and the arena goes on', async () => {
    const { files, arena, durable, bytes } = await populated(3);
    files.failNextWrites(1, 'ENOSPC');
    await assert.rejects(arena.collect(durable.refs), isIo);
    assert.deepEqual([...new Set((await files.list(arenaDir(STORE))).map((n) => parseArenaSegmentName(n)?.generation))], [1]);
    const extra = arena.append(blob(20, 20));
    durable.refs.set('extra', extra);
    bytes.set('extra', blob(20, 20));
    await arena.sync();
    await collectAndCommit(arena, durable);
    await arena.close();
    await (await checkRecovered(files.powerCut(), durable, bytes, 'after ENOSPC in collect')).close();
  });
});
