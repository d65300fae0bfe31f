/**
 * One test per rule of src/arena/ARENA.md: the frame, naming, reading (checksums, bounds), the
 * torn tail of the active segment, corruption before it, and what verify reports.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { nodeFileLayer } from '../io/file-layer.js';
import { BlobArena, type BlobRef } from '../src/arena/arena.js';
import { FRAME_HEADER_SIZE, checkFrame, frame, frameSize } from '../src/arena/format.js';
import { MemstoreError, type MemstoreErrorCode } from '../src/errors.js';
import { arenaDir, arenaSegmentName, arenaSegmentPath, parseArenaSegmentName } from '../src/store/files.js';
import { FaultFileLayer } from './support/fault-layer.js';
import { STORE, blob, freshDisk, rejectsWith } from './support/arena-fixture.js';

function throwsWith(fn: () => unknown, code: MemstoreErrorCode): void {
  assert.throws(fn, (e: unknown) => e instanceof MemstoreError && e.code === code);
}

/** Writes `bytes` as a durable file on the simulated disk. */
async function putFile(files: FaultFileLayer, path: string, bytes: Uint8Array): Promise<void> {
  await files.mkdir(arenaDir(STORE));
  await files.syncDir(STORE);
  const handle = await files.open(path, 'create');
  await handle.write(bytes, 0);
  await handle.sync();
  await handle.close();
  await files.syncDir(arenaDir(STORE));
}

describe('arena format: frames', () => {
  const at = { generation: 1, segment: 1, offset: 0 };

  it('a frame is a masked CRC-32C, a uint32 little-endian length, then the payload', () => {
    const bytes = frame(at, Uint8Array.of(7, 8, 9));
    assert.equal(bytes.length, frameSize(3));
    assert.equal(FRAME_HEADER_SIZE, 8);
    assert.deepEqual([...bytes.subarray(4, 8)], [3, 0, 0, 0]);
    assert.deepEqual([...bytes.subarray(8)], [7, 8, 9]);
    assert.deepEqual(checkFrame(bytes, at), { ok: true, length: 3 });
  });

  it('every single-bit flip anywhere in a frame is detected', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), (payload, pick) => {
        const bytes = frame(at, payload);
        const bit = pick % (bytes.length * 8);
        bytes[bit >> 3]! ^= 1 << (bit & 7);
        assert.equal(checkFrame(bytes, at).ok, false);
      }),
    );
  });

  it('the checksum covers the address: a frame checks only at the generation, segment and offset it was written for', () => {
    const bytes = frame({ generation: 3, segment: 2, offset: 4096 }, blob(40, 1));
    assert.equal(checkFrame(bytes, { generation: 3, segment: 2, offset: 4096 }).ok, true);
    assert.deepEqual(checkFrame(bytes, { generation: 3, segment: 2, offset: 4097 }), { ok: false, damage: 'bad checksum' });
    assert.deepEqual(checkFrame(bytes, { generation: 3, segment: 1, offset: 4096 }), { ok: false, damage: 'bad checksum' });
    assert.deepEqual(checkFrame(bytes, { generation: 2, segment: 2, offset: 4096 }), { ok: false, damage: 'bad checksum' });
  });

  it('a zero-filled header is not a frame', () => {
    for (let offset = 0; offset < 4096; offset += 8) {
      assert.equal(checkFrame(new Uint8Array(64), { generation: 1, segment: 1, offset }).ok, false);
    }
  });

  it('fewer bytes than a header, or than the length says, are a truncated header or frame', () => {
    const bytes = frame(at, blob(10, 2));
    assert.deepEqual(checkFrame(bytes.subarray(0, 7), at), { ok: false, damage: 'truncated header' });
    assert.deepEqual(checkFrame(bytes.subarray(0, 17), at), { ok: false, damage: 'truncated frame' });
  });
});

describe('arena format: file names', () => {
  it('segments are arena-<generation>-<segment>.blob, six digits each, and parse back', () => {
    assert.equal(arenaSegmentName(1, 3), 'arena-000001-000003.blob');
    assert.equal(arenaSegmentName(1234567, 12), 'arena-1234567-000012.blob');
    assert.deepEqual(parseArenaSegmentName('arena-000001-000003.blob'), { generation: 1, segment: 3 });
    assert.deepEqual(parseArenaSegmentName('arena-1234567-000012.blob'), { generation: 1234567, segment: 12 });
    for (const other of ['arena-1-3.blob', 'arena-0000001-000003.blob', 'arena-000001-000000.blob', 'arena-000001-000003.blob.tmp', 'wal-00000000000000000001.log']) {
      assert.equal(parseArenaSegmentName(other), undefined, other);
    }
  });

  it('files that are not segments are left alone at open', async () => {
    const files = await freshDisk();
    await putFile(files, join(arenaDir(STORE), 'notes.txt'), Uint8Array.of(1, 2, 3));
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    await arena.close();
    assert.ok((await files.list(arenaDir(STORE))).includes('notes.txt'));
  });
});

describe('arena format: appending and reading', () => {
  it('round-trips blobs of many sizes, 0 and past half a segment included, from memory, from disk and after reopening', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memstore-arena-'));
    try {
      const segmentBytes = 64 << 10;
      const sizes = [0, 1, 7, 8, 9, 100, 255, 4095, 4096, 20_000, (segmentBytes >> 1) + 1, 40_000, segmentBytes + 5, 0, 3];
      let arena = await BlobArena.open({ dir, generation: 1, segmentBytes });
      const refs = sizes.map((n, i) => arena.append(blob(n, i)));
      for (const [i, ref] of refs.entries()) assert.deepEqual(await arena.read(ref), blob(sizes[i]!, i), `from memory, blob ${i}`);
      await arena.sync();
      for (const [i, ref] of refs.entries()) assert.deepEqual(await arena.read(ref), blob(sizes[i]!, i), `from disk, blob ${i}`);
      await arena.close();
      arena = await BlobArena.open({ dir, generation: 1, segmentBytes });
      assert.equal(arena.recovered.cut, undefined);
      for (const [i, ref] of refs.entries()) assert.deepEqual(await arena.read(ref), blob(sizes[i]!, i), `after reopen, blob ${i}`);
      const report = await arena.verify();
      assert.deepEqual(report.errors, []);
      assert.equal(report.blobs, sizes.length);
      const onDisk = readdirSync(arenaDir(dir)).reduce((sum, name) => sum + statSync(join(arenaDir(dir), name)).size, 0);
      assert.equal(report.bytes, onDisk);
      assert.equal(onDisk, sizes.reduce((sum, n) => sum + frameSize(n), 0));
      await arena.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('round-trips any sequence of blobs at any segment size (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat({ max: 700 }), { maxLength: 40 }), fc.integer({ min: 1, max: 2048 }), async (sizes, segmentBytes) => {
        const files = await freshDisk();
        const arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes });
        const refs = sizes.map((n, i) => arena.append(blob(n, i)));
        await arena.close();
        const after = await BlobArena.open({ dir: STORE, files: files.powerCut(), generation: 1, segmentBytes });
        for (const [i, ref] of refs.entries()) assert.deepEqual(await after.read(ref), blob(sizes[i]!, i));
        assert.deepEqual((await after.verify()).errors, []);
        await after.close();
      }),
      { numRuns: 40 },
    );
  });

  it('a reference is [generation, segment, offset, length]; a segment is sealed when the next frame would pass segmentBytes, a larger blob gets its own', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 4, segmentBytes: 100 });
    const refs = [40, 40, 10, 300, 5].map((n, i) => arena.append(blob(n, i)));
    assert.deepEqual(refs, [
      [4, 1, 0, 40],
      [4, 1, 48, 40],
      [4, 2, 0, 10],
      [4, 3, 0, 300],
      [4, 4, 0, 5],
    ]);
    await arena.close();
    assert.deepEqual((await files.list(arenaDir(STORE))).sort(), [1, 2, 3, 4].map((s) => arenaSegmentName(4, s)));
  });

  it('the payload is copied at append: changing the caller\'s buffer afterwards changes nothing', async () => {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const payload = blob(50, 1);
    const ref = arena.append(payload);
    payload.fill(0);
    assert.deepEqual(await arena.read(ref), blob(50, 1));
    await arena.sync();
    assert.deepEqual(await arena.read(ref), blob(50, 1));
    await arena.close();
  });
});

describe('arena format: what a reader does with damage', () => {
  async function threeBlobs(): Promise<{ files: FaultFileLayer; arena: BlobArena; refs: BlobRef[]; path: string }> {
    const files = await freshDisk();
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const refs = [30, 50, 20].map((n, i) => arena.append(blob(n, i)));
    await arena.sync();
    return { files, arena, refs, path: arenaSegmentPath(STORE, 1, 1) };
  }

  it('a bad checksum is CORRUPTION naming the file and the frame offset, and the bytes are never returned', async () => {
    const { files, arena, refs, path } = await threeBlobs();
    const bad = refs[1]!;
    files.flipBit(path, bad[2] + FRAME_HEADER_SIZE + 10);
    await rejectsWith(arena.read(bad), 'CORRUPTION', { file: path, offset: bad[2] });
    assert.deepEqual(await arena.read(refs[0]!), blob(30, 0));
    assert.deepEqual(await arena.read(refs[2]!), blob(20, 2));
    await arena.close();
  });

  it('a damaged length field is CORRUPTION at the frame', async () => {
    const { files, arena, refs, path } = await threeBlobs();
    files.flipBit(path, refs[1]![2] + 4, 0);
    await rejectsWith(arena.read(refs[1]!), 'CORRUPTION', { file: path, offset: refs[1]![2] });
    await arena.close();
  });

  it('a reference past the end of its segment, to a missing segment or generation, or with the wrong length is CORRUPTION', async () => {
    const { arena, refs, path } = await threeBlobs();
    const last = refs[2]!;
    await rejectsWith(arena.read([1, 1, last[2] + 1, last[3]]), 'CORRUPTION', { file: path, offset: last[2] + 1 });
    await rejectsWith(arena.read([1, 1, last[2], last[3] + 1]), 'CORRUPTION', { file: path });
    await rejectsWith(arena.read([1, 1, 1_000_000, 0]), 'CORRUPTION', { file: path, offset: 1_000_000 });
    await rejectsWith(arena.read([1, 2, 0, 0]), 'CORRUPTION', { file: arenaSegmentPath(STORE, 1, 2), offset: 0 });
    await rejectsWith(arena.read([2, 1, 0, 30]), 'CORRUPTION', { file: arenaSegmentPath(STORE, 2, 1), offset: 0 });
    await rejectsWith(arena.read([1, 1, 0, 29]), 'CORRUPTION', { file: path, offset: 0 });
    await rejectsWith(arena.read([1, 1, 1, 29]), 'CORRUPTION', { file: path, offset: 1 });
    await arena.close();
  });

  it('a reference that is not four non-negative integers is INVALID_ARGUMENT', async () => {
    const { arena } = await threeBlobs();
    for (const bad of [[1, 1, 0], [1, 1, -1, 3], [1, 1, 0.5, 3], ['1', 1, 0, 3], null]) {
      await rejectsWith(arena.read(bad as unknown as BlobRef), 'INVALID_ARGUMENT');
    }
    await arena.close();
  });

  it('a torn tail of the active segment, at every byte of the last frame, is cut at open; earlier blobs still read', async () => {
    const { files, arena, refs, path } = await threeBlobs();
    await arena.close();
    const whole = files.currentBytes(path);
    const last = refs[2]!;
    const start = last[2];
    assert.equal(whole.length, start + frameSize(last[3]));
    for (let length = start; length < whole.length; length++) {
      const disk = await freshDisk();
      await putFile(disk, path, whole.subarray(0, length));
      const reopened = await BlobArena.open({ dir: STORE, files: disk, generation: 1 });
      if (length === start) assert.equal(reopened.recovered.cut, undefined);
      else assert.deepEqual(reopened.recovered.cut && { offset: reopened.recovered.cut.offset, bytes: reopened.recovered.cut.bytes }, { offset: start, bytes: length - start });
      assert.deepEqual(reopened.recovered.damage, []);
      assert.equal(disk.durableBytes(path)?.length, start, `cut is durable (torn at ${length})`);
      assert.deepEqual(await reopened.read(refs[0]!), blob(30, 0));
      assert.deepEqual(await reopened.read(refs[1]!), blob(50, 1));
      await rejectsWith(reopened.read(last), 'CORRUPTION', { file: path, offset: start });
      assert.deepEqual((await reopened.verify()).errors, []);
      await reopened.close();
    }
  });

  it('a zero-filled or garbage tail is cut at open as well', async () => {
    const { files, arena, refs, path } = await threeBlobs();
    await arena.close();
    const whole = files.currentBytes(path);
    const end = whole.length;
    const tails = [new Uint8Array(100), blob(37, 99), Uint8Array.of(...whole.subarray(refs[1]![2], refs[1]![2] + 20))];
    for (const tail of tails) {
      const disk = await freshDisk();
      const bytes = new Uint8Array(end + tail.length);
      bytes.set(whole);
      bytes.set(tail, end);
      await putFile(disk, path, bytes);
      const reopened = await BlobArena.open({ dir: STORE, files: disk, generation: 1 });
      assert.equal(reopened.recovered.cut?.offset, end);
      assert.equal(reopened.recovered.cut?.bytes, tail.length);
      for (const [i, n] of [30, 50, 20].entries()) assert.deepEqual(await reopened.read(refs[i]!), blob(n, i));
      await reopened.close();
    }
  });

  it('after a cut the next append starts a new segment, so a reference into the cut bytes never reads another blob', async () => {
    const { files, arena, refs, path } = await threeBlobs();
    await arena.close();
    // Media damage in the last frame looks exactly like a torn write, so it is cut ...
    files.flipBit(path, refs[2]![2] + FRAME_HEADER_SIZE + 3);
    const reopened = await BlobArena.open({ dir: STORE, files, generation: 1 });
    assert.equal(reopened.recovered.cut?.offset, refs[2]![2]);
    // ... and a blob of the same length appended now must not take its place.
    const fresh = reopened.append(blob(20, 77));
    assert.deepEqual(fresh, [1, 2, 0, 20]);
    await reopened.sync();
    await rejectsWith(reopened.read(refs[2]!), 'CORRUPTION', { file: path });
    assert.deepEqual(await reopened.read(fresh), blob(20, 77));
    await reopened.close();
  });

  it('a bad last frame below the end the caller\'s durable state reaches is damage, left in place; only bytes past that end are cut', async () => {
    // Reached as a checkpoint takes it: the end after a sync, all three frames durable.
    const { files, arena, refs, path } = await threeBlobs();
    const reached = arena.end();
    await arena.close();
    const size = files.currentBytes(path).length;
    files.flipBit(path, refs[2]![2] + FRAME_HEADER_SIZE + 3);
    let reopened = await BlobArena.open({ dir: STORE, files, generation: 1, reached });
    assert.equal(reopened.recovered.cut, undefined);
    assert.deepEqual(reopened.recovered.damage, [{ file: path, offset: refs[2]![2], what: 'bad checksum' }]);
    assert.equal(files.currentBytes(path).length, size, 'nothing cut');
    await rejectsWith(reopened.read(refs[2]!), 'CORRUPTION', { file: path, offset: refs[2]![2] });
    for (const i of [0, 1]) assert.deepEqual(await reopened.read(refs[i]!), blob([30, 50][i]!, i));
    // Appends go after the damage, never onto its offsets.
    const fresh = reopened.append(blob(20, 77));
    assert.deepEqual(fresh, [1, 1, size, 20]);
    await reopened.sync();
    assert.deepEqual((await reopened.verify()).errors, [{ file: path, offset: refs[2]![2], what: 'bad checksum' }]);
    await reopened.close();
    reopened = await BlobArena.open({ dir: STORE, files, generation: 1, reached });
    assert.deepEqual(await reopened.read(fresh), blob(20, 77));
    await rejectsWith(reopened.read(refs[2]!), 'CORRUPTION', { file: path, offset: refs[2]![2] });
    await reopened.close();
  });

  it('with damage below the durable end and torn bytes past it, the damage stays and the bytes past the end are cut; a durable end in a later segment vouches for all of this one', async () => {
    const { files, arena, refs, path } = await threeBlobs();
    const reached = arena.end();
    await arena.close();
    const whole = files.currentBytes(path);
    // A frame appended after the checkpoint, torn halfway.
    const torn = new Uint8Array(whole.length + 20);
    torn.set(whole);
    torn.set(blob(20, 5).subarray(0, 20), whole.length);
    torn[refs[2]![2] + FRAME_HEADER_SIZE + 3]! ^= 1;
    const disk = await freshDisk();
    await putFile(disk, path, torn);
    const reopened = await BlobArena.open({ dir: STORE, files: disk, generation: 1, reached });
    assert.deepEqual(reopened.recovered.damage, [{ file: path, offset: refs[2]![2], what: 'bad checksum' }]);
    assert.deepEqual(reopened.recovered.cut && { offset: reopened.recovered.cut.offset, bytes: reopened.recovered.cut.bytes }, { offset: whole.length, bytes: 20 });
    assert.equal(disk.durableBytes(path)?.length, whole.length, 'the cut is durable, at the durable end');
    await reopened.close();
    // The checkpoint reached a later segment (lost): this one was sealed and fsynced whole.
    const later = await freshDisk();
    const damaged = Uint8Array.from(whole);
    damaged[refs[2]![2] + FRAME_HEADER_SIZE + 3]! ^= 1;
    await putFile(later, path, damaged);
    const sealed = await BlobArena.open({ dir: STORE, files: later, generation: 1, reached: [1, 2, 40] });
    assert.equal(sealed.recovered.cut, undefined);
    assert.deepEqual(sealed.recovered.damage, [{ file: path, offset: refs[2]![2], what: 'bad checksum' }]);
    assert.ok(sealed.recovered.short !== undefined, 'the lost segment is still reported short');
    await sealed.close();
    // Reached from before the last frame was written: it may be a crash's torn write, and is cut as one.
    const before = await freshDisk();
    await putFile(before, path, damaged);
    const early = await BlobArena.open({ dir: STORE, files: before, generation: 1, reached: [1, 1, refs[2]![2]] });
    assert.equal(early.recovered.cut?.offset, refs[2]![2]);
    assert.deepEqual(early.recovered.damage, []);
    await early.close();
  });

  it('a bad frame in the middle of the active segment is not cut at open, and verify reports it instead of skipping it', async () => {
    for (const [where, what] of [
      [FRAME_HEADER_SIZE + 5, 'bad checksum'],
      [4, 'bad checksum'],
      [6, 'truncated frame'],
    ] as const) {
      const files = await freshDisk();
      let arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
      const sizes = [30, 50, 20, 60, 10];
      const refs = sizes.map((n, i) => arena.append(blob(n, i)));
      await arena.close();
      const path = arenaSegmentPath(STORE, 1, 1);
      const bad = refs[1]!;
      // Byte 4 holds the low byte of the length, byte 6 a high one: the scan must find its feet again by checksum.
      files.flipBit(path, bad[2] + where, where === 6 ? 7 : 0);
      arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
      assert.equal(arena.recovered.cut, undefined);
      assert.deepEqual(arena.recovered.damage, [{ file: path, offset: bad[2], what }]);
      for (const [i, ref] of refs.entries()) {
        if (i === 1) await rejectsWith(arena.read(ref), 'CORRUPTION', { file: path, offset: bad[2] });
        else assert.deepEqual(await arena.read(ref), blob(sizes[i]!, i));
      }
      const next = arena.append(blob(5, 9));
      assert.equal(next[2], refs[4]![2] + frameSize(10), 'appends continue after the last valid frame');
      const report = await arena.verify();
      assert.deepEqual(report.errors, [{ file: path, offset: bad[2], what }]);
      assert.equal(report.blobs, sizes.length);
      await arena.close();
    }
  });

  it('damage at the end of a sealed segment is corruption for verify, never cut', async () => {
    const files = await freshDisk();
    let arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: 100 });
    const refs = [40, 40, 40, 40].map((n, i) => arena.append(blob(n, i)));
    await arena.close();
    const sealed = arenaSegmentPath(STORE, 1, 1);
    files.flipBit(sealed, refs[1]![2] + FRAME_HEADER_SIZE);
    arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: 100 });
    assert.equal(arena.recovered.cut, undefined);
    assert.equal(files.currentBytes(sealed).length, 2 * frameSize(40));
    const report = await arena.verify();
    assert.deepEqual(report.errors, [{ file: sealed, offset: refs[1]![2], what: 'bad checksum' }]);
    assert.equal(report.blobs, 3);
    await arena.close();
  });

  it('a missing segment in the middle of a generation is reported by verify', async () => {
    const files = await freshDisk();
    let arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: 50 });
    for (let i = 0; i < 3; i++) arena.append(blob(40, i));
    await arena.close();
    await files.remove(arenaSegmentPath(STORE, 1, 2));
    arena = await BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: 50 });
    assert.deepEqual((await arena.verify()).errors, [{ file: arenaSegmentPath(STORE, 1, 2), offset: 0, what: 'missing segment' }]);
    await arena.close();
  });
});

describe('arena format: open', () => {
  it('deletes the segment files of every other generation, durably', async () => {
    const files = await freshDisk();
    const first = await BlobArena.open({ dir: STORE, files, generation: 2 });
    const ref = first.append(blob(10, 2));
    await first.close();
    // What an interrupted collection leaves: the generation before (after the switch) or after (before it).
    const orphans = [arenaSegmentPath(STORE, 1, 1), arenaSegmentPath(STORE, 3, 1), arenaSegmentPath(STORE, 3, 2)];
    for (const path of orphans) {
      const parsed = parseArenaSegmentName(path.slice(arenaDir(STORE).length + 1))!;
      await putFile(files, path, frame({ generation: parsed.generation, segment: parsed.segment, offset: 0 }, blob(7, 7)));
    }
    const arena = await BlobArena.open({ dir: STORE, files, generation: 2 });
    assert.deepEqual([...arena.recovered.orphans].sort(), orphans);
    assert.deepEqual(await arena.read(ref), blob(10, 2));
    await arena.close();
    const after = files.powerCut();
    assert.deepEqual(await after.list(arenaDir(STORE)), [arenaSegmentName(2, 1)]);
  });

  it('read-only: nothing is deleted or cut, both are reported, and writing is refused', async () => {
    const files = await freshDisk();
    const writer = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const ref = writer.append(blob(30, 1));
    writer.append(blob(30, 2));
    await writer.close();
    await putFile(files, arenaSegmentPath(STORE, 2, 1), frame({ generation: 2, segment: 1, offset: 0 }, blob(5, 5)));
    const path = arenaSegmentPath(STORE, 1, 1);
    const handle = await files.open(path, 'readwrite');
    await handle.truncate(frameSize(30) + 11);
    await handle.sync();
    await handle.close();

    const reader = await BlobArena.open({ dir: STORE, files, generation: 1, readOnly: true });
    assert.deepEqual(reader.recovered.orphans, [arenaSegmentPath(STORE, 2, 1)]);
    assert.equal(reader.recovered.cut?.offset, frameSize(30));
    assert.deepEqual(await reader.read(ref), blob(30, 1));
    throwsWith(() => reader.append(blob(1, 1)), 'INVALID_ARGUMENT');
    const report = await reader.verify();
    assert.deepEqual(report.errors, []);
    assert.equal(report.tornTail?.offset, frameSize(30));
    assert.deepEqual(report.orphans, [arenaSegmentPath(STORE, 2, 1)]);
    await reader.close();
    assert.equal(files.currentBytes(path).length, frameSize(30) + 11);
    assert.equal((await files.list(arenaDir(STORE))).length, 2);
  });

  it('a read-only open of a store without an arena directory is an empty arena', async () => {
    const files = await freshDisk();
    const reader = await BlobArena.open({ dir: STORE, files, generation: 1, readOnly: true });
    assert.deepEqual(reader.stats(), { liveBytes: 0, garbageBytes: 0, totalBytes: 0, segments: 0, mappedSegments: 0, mapsRefused: 0, generation: 1, bufferBytes: 0 });
    assert.equal(await files.exists(arenaDir(STORE)), false);
    await reader.close();
  });

  it('bad options are INVALID_OPTION; calls after close are CLOSED', async () => {
    const files = await freshDisk();
    await rejectsWith(BlobArena.open({ dir: STORE, files, generation: -1 }), 'INVALID_OPTION');
    await rejectsWith(BlobArena.open({ dir: STORE, files, generation: 1.5 }), 'INVALID_OPTION');
    await rejectsWith(BlobArena.open({ dir: STORE, files, generation: 1, segmentBytes: 0 }), 'INVALID_OPTION');
    await rejectsWith(BlobArena.open({ dir: STORE, files, generation: 1, space: 'vector' as never }), 'INVALID_OPTION');
    const arena = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const ref = arena.append(blob(3, 3));
    await arena.close();
    throwsWith(() => arena.append(blob(3, 3)), 'CLOSED');
    await rejectsWith(arena.read(ref), 'CLOSED');
    throwsWith(() => arena.readNow(ref), 'CLOSED');
    await rejectsWith(arena.sync(), 'CLOSED');
  });
});

describe('arena format: reading a frame into the caller\'s buffer (readFrameInto, the search path)', () => {
  async function durable(): Promise<{ dir: string; arena: BlobArena; refs: BlobRef[] }> {
    const dir = mkdtempSync(join(tmpdir(), 'memstore-arena-into-'));
    const arena = await BlobArena.open({ dir, files: nodeFileLayer, generation: 1 });
    const refs = [arena.append(blob(64, 1)), arena.append(blob(64, 2)), arena.append(blob(64, 3))];
    await arena.sync();
    return { dir, arena, refs };
  }
  const into = (arena: BlobArena, ref: BlobRef, scratch = new Uint8Array(frameSize(ref[3]))) => arena.readFrameInto(ref[0], ref[1], ref[2], ref[3], scratch);

  it('a durable frame is read and checked in place; one still in memory, or a file layer without synchronous reads, is left to readNow() and read()', async () => {
    const { dir, arena, refs } = await durable();
    const scratch = new Uint8Array(frameSize(64));
    assert.equal(into(arena, refs[1]!, scratch), true);
    assert.deepEqual(scratch.subarray(FRAME_HEADER_SIZE), blob(64, 2));
    const pending = arena.append(blob(64, 4));
    assert.equal(into(arena, pending), false, 'not fsynced yet: served from memory by readNow()');
    assert.deepEqual(arena.readNow(pending), blob(64, 4));
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
    const files = await freshDisk();
    const simulated = await BlobArena.open({ dir: STORE, files, generation: 1 });
    const ref = simulated.append(blob(64, 5));
    await simulated.sync();
    assert.equal(into(simulated, ref), false, 'the simulated disk reads only asynchronously');
    await simulated.close();
  });

  it('damage read in place is CORRUPTION with the file and offset, as read() reports it', async () => {
    const { dir, arena, refs } = await durable();
    const path = arenaSegmentPath(dir, 1, 1);
    const fd = openSync(path, 'r+');
    writeSync(fd, Uint8Array.of(0xff), 0, 1, refs[1]![2] + FRAME_HEADER_SIZE + 5);
    closeSync(fd);
    for (const attempt of [() => into(arena, refs[1]!), () => arena.readNow(refs[1]!)]) {
      assert.throws(attempt, (e: unknown) => e instanceof MemstoreError && e.code === 'CORRUPTION' && e.file === path && e.offset === refs[1]![2]);
    }
    // A reference whose length is not its frame's, and one running past the segment.
    const [g, s, offset] = refs[0]!;
    assert.throws(() => into(arena, [g, s, offset, 32]), (e: unknown) => e instanceof MemstoreError && e.code === 'CORRUPTION');
    assert.throws(() => into(arena, [g, s, refs[2]![2], 4096]), (e: unknown) => e instanceof MemstoreError && e.code === 'CORRUPTION');
    assert.equal(into(arena, refs[2]!), true, 'the frames around the damage still read');
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a buffer that is not exactly the frame is INVALID_ARGUMENT; after close, CLOSED', async () => {
    const { dir, arena, refs } = await durable();
    throwsWith(() => into(arena, refs[0]!, new Uint8Array(frameSize(64) + 1)), 'INVALID_ARGUMENT');
    await arena.close();
    throwsWith(() => into(arena, refs[0]!), 'CLOSED');
    rmSync(dir, { recursive: true, force: true });
  });
});
