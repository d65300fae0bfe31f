/**
 * Generational collection (ARENA.md, "Collection"): live blobs move with their bytes intact,
 * garbage leaves the disk, the switch sends appends to the new generation, and in-flight reads of
 * the old generation finish before its files go.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobArena, type BlobRef } from '../src/arena/arena.js';
import { FRAME_HEADER_SIZE, frameSize } from '../src/arena/format.js';
import { MemstoreError } from '../src/errors.js';
import { arenaDir, arenaSegmentPath, parseArenaSegmentName } from '../src/store/files.js';
import type { FileHandle, FileLayer, OpenMode } from '../io/file-layer.js';
import { STORE, blob, freshDisk, rejectsWith } from './support/arena-fixture.js';

function generationsOnDisk(names: string[]): number[] {
  return [...new Set(names.map((n) => parseArenaSegmentName(n)?.generation).filter((g) => g !== undefined))].sort();
}

/** A FileLayer whose reads can be held at a gate, to have reads in flight at a chosen moment. */
class GatedFiles implements FileLayer {
  waiting = 0;
  private gate: Promise<void> | undefined;

  constructor(private readonly inner: FileLayer) {}

  hold(): () => void {
    let open!: () => void;
    this.gate = new Promise<void>((resolve) => (open = resolve));
    return () => {
      this.gate = undefined;
      open();
    };
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const handle = await this.inner.open(path, mode);
    return {
      read: async (buffer, position) => {
        const gate = this.gate;
        if (gate !== undefined) {
          this.waiting++;
          await gate;
          this.waiting--;
        }
        return handle.read(buffer, position);
      },
      write: (data, position) => handle.write(data, position),
      sync: () => handle.sync(),
      truncate: (length) => handle.truncate(length),
      size: () => handle.size(),
      close: () => handle.close(),
    };
  }
  readFile(path: string): Promise<Uint8Array> {
    return this.inner.readFile(path);
  }
  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  mkdir(dir: string): Promise<void> {
    return this.inner.mkdir(dir);
  }
  syncDir(dir: string): Promise<void> {
    return this.inner.syncDir(dir);
  }
  createSync(path: string, data: Uint8Array): void {
    this.inner.createSync(path, data);
  }
  linkSync(existing: string, path: string): void {
    this.inner.linkSync(existing, path);
  }
  readFileSync(path: string): Uint8Array {
    return this.inner.readFileSync(path);
  }
  removeSync(path: string): void {
    this.inner.removeSync(path);
  }
  mtimeSync(path: string): number {
    return this.inner.mtimeSync(path);
  }
  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }
}

async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('arena collection', () => {
  it('live blobs survive with identical bytes under new references; garbage leaves the disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memstore-arena-gc-'));
    try {
      const segmentBytes = 64 << 10;
      const arena = await BlobArena.open({ dir, generation: 1, segmentBytes });
      const sizes: number[] = [];
      const refs = new Map<string, BlobRef>();
      let seed = 7;
      for (let i = 0; i < 3000; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const n = seed % 600;
        sizes.push(n);
        refs.set(`k${i}`, arena.append(blob(n, i)));
      }
      await arena.sync();
      const live = new Map<string, BlobRef>();
      let liveBytes = 0;
      for (const [i, n] of sizes.entries()) {
        const ref = refs.get(`k${i}`)!;
        if (i % 3 === 0) {
          live.set(`k${i}`, ref);
          liveBytes += frameSize(n);
        } else {
          arena.release(ref);
        }
      }
      const before = arena.stats();
      assert.equal(before.liveBytes, liveBytes);
      assert.equal(before.garbageBytes, before.totalBytes - liveBytes);

      const { generation, refs: moved } = await arena.collect(live);
      assert.equal(generation, 2);
      assert.deepEqual([...moved.keys()].sort(), [...live.keys()].sort());
      // Until the switch both generations read: the caller has not committed yet.
      for (const [key, ref] of live) {
        const i = Number(key.slice(1));
        const next = moved.get(key)!;
        assert.equal(next[0], 2);
        assert.equal(next[3], sizes[i]);
        assert.deepEqual(await arena.read(next), blob(sizes[i]!, i));
        assert.deepEqual(await arena.read(ref), blob(sizes[i]!, i));
      }
      assert.deepEqual(generationsOnDisk(readdirSync(arenaDir(dir))), [1, 2]);

      await arena.finishCollect(generation);
      assert.deepEqual(generationsOnDisk(readdirSync(arenaDir(dir))), [2]);
      const onDisk = readdirSync(arenaDir(dir)).reduce((sum, name) => sum + statSync(join(arenaDir(dir), name)).size, 0);
      assert.equal(onDisk, liveBytes);
      assert.deepEqual(arena.stats(), { liveBytes, garbageBytes: 0, totalBytes: liveBytes, segments: Math.ceil(liveBytes / segmentBytes), mappedSegments: 0, mapsRefused: 0, generation: 2, bufferBytes: 0 });
      for (const [key, ref] of moved) {
        const i = Number(key.slice(1));
        assert.deepEqual(await arena.read(ref), blob(sizes[i]!, i));
      }
      await rejectsWith(arena.read(live.get('k0')!), 'CORRUPTION');
      await arena.close();

      const reopened = await BlobArena.open({ dir, generation: 2, segmentBytes });
      for (const [key, ref] of moved) {
        const i = Number(key.slice(1));
        assert.deepEqual(await reopened.read(ref), blob(sizes[i]!, i));
      }
      assert.deepEqual((await reopened.verify()).errors, []);
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('appends after finishCollect go to the new generation, after its copied blobs', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 5 });
    const a = arena.append(blob(10, 1));
    arena.append(blob(20, 2));
    const { generation, refs } = await arena.collect([['a', a]]);
    assert.deepEqual(refs.get('a'), [6, 1, 0, 10]);
    await arena.finishCollect(generation);
    const b = arena.append(blob(30, 3));
    assert.deepEqual(b, [6, 1, frameSize(10), 30]);
    await arena.close();
    const reopened = await BlobArena.open({ dir: STORE, files: files.powerCut(), generation: 6 });
    assert.deepEqual(await reopened.read(refs.get('a')!), blob(10, 1));
    assert.deepEqual(await reopened.read(b), blob(30, 3));
    await reopened.close();
  });

  it('reads of old references that started before finishCollect complete; the old files go after them', async () => {
    const disk = await freshDisk();
    const files = new GatedFiles(disk);
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const old = [arena.append(blob(100, 1)), arena.append(blob(200, 2))];
    await arena.sync();
    const { generation } = await arena.collect([['x', old[0]!], ['y', old[1]!]]);
    const release = files.hold();
    const reading = arena.read(old[1]!);
    for (let i = 0; files.waiting === 0; i++) {
      assert.ok(i < 1000, 'the read reaches the file');
      await ticks(1);
    }
    let finished = false;
    const finishing = arena.finishCollect(generation).then(() => (finished = true));
    await ticks(20);
    assert.equal(finished, false, 'finishCollect waits for the read in flight');
    assert.ok(await disk.exists(arenaSegmentPath(STORE, 1, 1)), 'the old segment is still there');
    // A read that starts after the switch is refused: its reference is stale.
    await rejectsWith(arena.read(old[0]!), 'CORRUPTION');
    release();
    assert.deepEqual(await reading, blob(200, 2));
    await finishing;
    assert.equal(await disk.exists(arenaSegmentPath(STORE, 1, 1)), false);
    await arena.close();
  });

  it('the same reference under two keys is copied once', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const ref = arena.append(blob(50, 1));
    const { generation, refs } = await arena.collect([['a', ref], ['b', ref]]);
    assert.deepEqual(refs.get('a'), refs.get('b'));
    await arena.finishCollect(generation);
    assert.equal(arena.stats().totalBytes, frameSize(50));
    await arena.close();
  });

  it('collecting nothing leaves an empty generation that takes appends', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    arena.append(blob(50, 1));
    const { generation, refs } = await arena.collect([]);
    assert.equal(refs.size, 0);
    await arena.finishCollect(generation);
    assert.deepEqual(await files.list(arenaDir(STORE)), []);
    assert.equal(arena.stats().totalBytes, 0);
    const ref = arena.append(blob(5, 5));
    assert.deepEqual(ref, [2, 1, 0, 5]);
    await arena.close();
    const reopened = await BlobArena.open({ dir: STORE, files: files.powerCut(), generation: 2 });
    assert.deepEqual(await reopened.read(ref), blob(5, 5));
    await reopened.close();
  });

  it('appends are refused between collect and finishCollect or abortCollect; abortCollect deletes the new generation', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const ref = arena.append(blob(40, 1));
    const collecting = arena.collect([['a', ref]]);
    assert.throws(() => arena.append(blob(1, 1)), (e: unknown) => e instanceof MemstoreError && e.code === 'INVALID_ARGUMENT');
    await rejectsWith(arena.collect([]), 'INVALID_ARGUMENT');
    const { generation } = await collecting;
    assert.throws(() => arena.append(blob(1, 1)), (e: unknown) => e instanceof MemstoreError && e.code === 'INVALID_ARGUMENT');
    await rejectsWith(arena.finishCollect(generation + 1), 'INVALID_ARGUMENT');
    await arena.abortCollect();
    assert.deepEqual(generationsOnDisk(await files.list(arenaDir(STORE))), [1]);
    assert.deepEqual(await arena.read(ref), blob(40, 1));
    const after = arena.append(blob(8, 8));
    assert.equal(after[0], 1);
    const again = await arena.collect([['a', ref], ['b', after]]);
    assert.equal(again.generation, 2);
    await arena.finishCollect(2);
    assert.deepEqual(await arena.read(again.refs.get('b')!), blob(8, 8));
    await rejectsWith(arena.finishCollect(2), 'INVALID_ARGUMENT');
    await rejectsWith(arena.abortCollect(), 'INVALID_ARGUMENT');
    await arena.close();
  });

  it('a live blob that fails its checksum stops the collection with CORRUPTION and leaves no new files', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: 256 });
    const refs = Array.from({ length: 12 }, (_, i) => arena.append(blob(60, i)));
    await arena.sync();
    const bad = refs[7]!;
    files.flipBit(arenaSegmentPath(STORE, 1, bad[1]), bad[2] + FRAME_HEADER_SIZE + 1);
    await assert.rejects(arena.collect(refs.map((r, i) => [`k${i}`, r])), (e: unknown) => {
      assert.ok(e instanceof MemstoreError);
      assert.equal(e.code, 'CORRUPTION');
      assert.equal(e.file, arenaSegmentPath(STORE, 1, bad[1]));
      assert.equal(e.offset, bad[2]);
      return true;
    });
    assert.deepEqual(generationsOnDisk(await files.list(arenaDir(STORE))), [1]);
    const more = arena.append(blob(9, 9));
    await arena.sync();
    assert.deepEqual(await arena.read(more), blob(9, 9));
    assert.deepEqual(await arena.read(refs[0]!), blob(60, 0));
    await arena.close();
  });

  it('a reference of another generation, or past the end, stops the collection with CORRUPTION', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 3 });
    const ref = arena.append(blob(10, 1));
    await rejectsWith(arena.collect([['a', [2, 1, 0, 10]]]), 'CORRUPTION');
    await rejectsWith(arena.collect([['a', [3, 1, ref[2] + 1, 10]]]), 'CORRUPTION');
    assert.deepEqual(generationsOnDisk(await files.list(arenaDir(STORE))), [3]);
    await arena.close();
  });

  it('stats: appended bytes are live until released; after reopen the caller marks its references live', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const a = arena.append(blob(100, 1));
    const b = arena.append(blob(50, 2));
    // The chunk appends are filling: 1 MiB held for them.
    assert.deepEqual(arena.stats(), { liveBytes: frameSize(100) + frameSize(50), garbageBytes: 0, totalBytes: frameSize(100) + frameSize(50), segments: 1, mappedSegments: 0, mapsRefused: 0, generation: 1, bufferBytes: 1 << 20 });
    arena.release(a);
    assert.equal(arena.stats().garbageBytes, frameSize(100));
    await arena.close();
    const reopened = await BlobArena.open({ dir: STORE, files, generation: 1 });
    assert.deepEqual(reopened.stats(), { liveBytes: 0, garbageBytes: frameSize(100) + frameSize(50), totalBytes: frameSize(100) + frameSize(50), segments: 1, mappedSegments: 0, mapsRefused: 0, generation: 1, bufferBytes: 0 });
    reopened.markLive(b);
    assert.equal(reopened.stats().liveBytes, frameSize(50));
    assert.equal(reopened.stats().garbageBytes, frameSize(100));
    await reopened.close();
  });

  it('close waits for a collection in progress; its files are orphans the next open deletes', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const ref = arena.append(blob(10, 1));
    const collecting = arena.collect([['a', ref]]);
    await arena.close();
    await collecting;
    assert.deepEqual(generationsOnDisk(await files.list(arenaDir(STORE))), [1, 2]);
    const reopened = await BlobArena.open({ dir: STORE, files, generation: 1 });
    assert.deepEqual(reopened.recovered.orphans, [arenaSegmentPath(STORE, 2, 1)]);
    assert.deepEqual(await reopened.read(ref), blob(10, 1));
    await reopened.close();
  });
});
