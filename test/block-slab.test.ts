import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BlockSlab } from '../src/cache/block-slab.js';

type View = Float32Array | Int32Array | Int8Array;

function takeOf(slab: BlockSlab, kind: 'float32' | 'int32' | 'int8', length: number): View {
  return kind === 'float32' ? slab.float32(length) : kind === 'int32' ? slab.int32(length) : slab.int8(length);
}

/** Fills `view`'s bytes with a pattern of `tag`, so that a block handed out twice shows. */
function stamp(view: View, tag: number): void {
  new Uint8Array(view.buffer, view.byteOffset, view.byteLength).fill(tag & 0xff);
}

function stamped(view: View, tag: number): boolean {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).every((b) => b === (tag & 0xff));
}

test('block slab: blocks are powers of two from 16 bytes, aligned, and counted as such', () => {
  const slab = new BlockSlab(4096);
  const a = slab.float32(5);
  assert.equal(a.length, 5);
  assert.equal(slab.blockBytes(a), 32, '20 bytes take a block of 32');
  const b = slab.int8(1);
  assert.equal(slab.blockBytes(b), 16, 'the least block is 16 bytes');
  const c = slab.int32(512);
  assert.equal(slab.blockBytes(c), 2048);
  for (const v of [a, b, c]) assert.equal(v.byteOffset % 16, 0);
  assert.equal(slab.chunksHeld, 1);
  assert.equal(slab.spareBytes, 4096 + 4096 / 16 - 32 - 16 - 2048, 'free blocks and the marks, a byte per 16');
});

test('block slab: a block given back joins its buddy, and a chunk whose blocks are all back is whole again', () => {
  const slab = new BlockSlab(1024);
  const halves = [slab.int8(512), slab.int8(512)];
  assert.equal(slab.chunksHeld, 1);
  const quarter = slab.int8(256);
  assert.equal(slab.chunksHeld, 2, 'a full chunk sends the next block to a new one');
  slab.give(halves[0]!);
  slab.give(halves[1]!);
  // The first chunk is whole and free, the second holds `quarter`: both kept (one spare).
  assert.equal(slab.chunksHeld, 2);
  assert.equal(slab.spareBytes, 2 * (1024 + 64) - 256);
  const whole = slab.int8(1024);
  assert.equal(slab.blockBytes(whole), 1024, 'the two halves were joined into a block of the whole chunk');
  assert.equal(slab.chunksHeld, 2);
  slab.give(quarter);
  slab.give(whole);
  assert.equal(slab.chunksHeld, 2, 'whole free chunks are kept until the owner needs the room');
  assert.equal(slab.spareBytes, 2 * (1024 + 64));
  assert.equal(slab.dropSpare(), true);
  assert.equal(slab.chunksHeld, 0);
});

test('block slab: a request larger than a chunk gets a buffer of its own, counted at its length', () => {
  const slab = new BlockSlab(256);
  const big = slab.float32(100);
  assert.equal(big.byteOffset, 0);
  assert.equal(big.buffer.byteLength, 400);
  assert.equal(slab.blockBytes(big), 400);
  assert.equal(slab.chunksHeld, 0);
  slab.give(big);
  assert.equal(slab.spareBytes, 0, 'it is left to the collector, not kept');
});

test('block slab: chunk sizes must be powers of two from 16', () => {
  for (const bad of [0, 8, 1000, -16, 1.5, NaN, 2 ** 31]) assert.throws(() => new BlockSlab(bad), RangeError);
});

test('block slab: clear() forgets every chunk', () => {
  const slab = new BlockSlab(1024);
  slab.float32(10);
  slab.clear();
  assert.equal(slab.chunksHeld, 0);
  assert.equal(slab.spareBytes, 0);
  assert.equal(slab.blockBytes(slab.int8(3)), 16);
});

test('block slab: any sequence of takes and gives, of single arrays and of pairs, hands out disjoint blocks, keeps their contents and counts its bytes', () => {
  const op = fc.oneof(
    fc.record({ take: fc.constantFrom('float32' as const, 'int32' as const, 'int8' as const, 'pair' as const), length: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 700 })) }),
    fc.record({ give: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.constantFrom(256, 512, 2048), fc.array(op, { maxLength: 300 }), (chunk, ops) => {
      const slab = new BlockSlab(chunk);
      // A pair is stamped and checked as its two arrays; given back by its first.
      const live: { views: View[]; tag: number; bytes: number; give: () => void }[] = [];
      let tags = 0;
      for (const o of ops) {
        if ('take' in o) {
          const tag = ++tags;
          let views: View[];
          let bytes: number;
          let give: () => void;
          if (o.take === 'pair') {
            const { ints, floats } = slab.pair(o.length);
            assert.equal(ints.length, o.length);
            assert.equal(floats.length, o.length);
            assert.equal(floats.byteOffset, ints.byteOffset + 4 * o.length);
            views = [ints, floats];
            bytes = slab.pairBytes(o.length);
            give = () => slab.givePair(ints);
          } else {
            const view = takeOf(slab, o.take, o.length);
            assert.equal(view.length, o.length);
            views = [view];
            bytes = slab.blockBytes(view);
            give = () => slab.give(view);
          }
          assert.equal(views[0]!.byteOffset % 16, 0);
          for (const v of views) stamp(v, tag);
          live.push({ views, tag, bytes: views[0]!.buffer.byteLength === chunk ? bytes : 0, give });
        } else if (live.length > 0) {
          const [gone] = live.splice(o.give % live.length, 1);
          assert.ok(gone!.views.every((v) => stamped(v, gone!.tag)), 'a live block was written by another');
          gone!.give();
        }
        let inSlab = 0;
        for (const { views, tag, bytes } of live) {
          assert.ok(views.every((v) => stamped(v, tag)), 'a live block was written by another');
          inSlab += bytes;
        }
        assert.equal(slab.spareBytes, slab.chunksHeld * (chunk + chunk / 16) - inSlab);
        assert.ok(slab.spareBytes >= 0);
      }
      const held = slab.chunksHeld;
      for (const { give } of live) give();
      assert.equal(slab.chunksHeld, held, 'giving back lets no chunk go');
      assert.equal(slab.spareBytes, held * (chunk + chunk / 16));
      assert.equal(slab.dropSpare(), held > 0);
      assert.equal(slab.chunksHeld, 0, 'once everything is back, every chunk is whole and free');
    }),
    { numRuns: 200 },
  );
});

test('block slab: dropSpare() lets whole free chunks go, and only those', () => {
  const slab = new BlockSlab(64);
  const a = slab.int8(64);
  assert.equal(slab.dropSpare(), false, 'no chunk is free');
  slab.give(a);
  assert.equal(slab.chunksHeld, 1);
  const b = slab.int8(16);
  const kept = slab.int8(16);
  slab.give(b);
  assert.equal(slab.dropSpare(), false, 'a chunk with a live block stays');
  slab.give(kept);
  assert.equal(slab.dropSpare(), true);
  assert.equal(slab.chunksHeld, 0);
  assert.equal(slab.spareBytes, 0);
  assert.equal(slab.dropSpare(), false);
  const c = slab.int8(16);
  assert.equal(slab.chunksHeld, 1, 'a new chunk for the next block');
  assert.equal(slab.blockBytes(c), 16);
});

test('block slab: the upper half of a pair that joined is not handed out on its own while the joined block is taken', () => {
  const slab = new BlockSlab(256);
  const r = slab.int8(32);
  const x = slab.int8(32);
  const a = slab.int8(32);
  const b = slab.int8(32);
  const c = slab.int8(64);
  slab.give(r);
  slab.give(b);
  // `a` joins `b`, its upper half: the pair is one free block of 64 now, and `b` alone is not free.
  slab.give(a);
  const d = slab.int8(64);
  stamp(d, 0xd);
  const next = slab.int8(32);
  stamp(next, 0xe);
  assert.ok(stamped(d, 0xd), 'a block of 32 was handed out inside the block of 64 just taken');
  assert.ok(stamped(next, 0xe));
  for (const v of [x, c, d, next]) slab.give(v);
  assert.equal(slab.dropSpare(), true);
  assert.equal(slab.chunksHeld, 0);
});

test('block slab: a pair is one block of two arrays side by side, given back whole by its first', () => {
  const slab = new BlockSlab(1024);
  const { ints, floats } = slab.pair(24);
  assert.equal(ints.length, 24);
  assert.equal(floats.length, 24);
  assert.equal(ints.buffer, floats.buffer, 'one block');
  assert.equal(floats.byteOffset, ints.byteOffset + 96, 'the floats follow the ints');
  assert.equal(slab.pairBytes(24), 256, '192 bytes take a block of 256');
  assert.equal(slab.spareBytes, 1024 + 64 - 256);
  stamp(ints, 1);
  stamp(floats, 2);
  const other = slab.int8(256);
  stamp(other, 3);
  assert.ok(stamped(ints, 1) && stamped(floats, 2), 'no other block overlaps the pair');
  slab.givePair(ints);
  slab.give(other);
  assert.equal(slab.spareBytes, 1024 + 64, 'both halves of the pair came back: the chunk is whole');
  const whole = slab.int8(1024);
  assert.equal(slab.blockBytes(whole), 1024);
  assert.equal(slab.chunksHeld, 1);
  // Past a chunk, a pair has a buffer of its own, counted at its length; giving it back is a no-op for the slab.
  const big = slab.pair(200);
  assert.equal(big.ints.byteOffset, 0);
  assert.equal(big.floats.byteOffset, 800);
  assert.equal(slab.pairBytes(200), 1600);
  slab.givePair(big.ints);
  assert.equal(slab.chunksHeld, 1);
});
