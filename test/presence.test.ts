import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Presence, idHash, slotHash } from '../src/cache/presence.js';
import { HotVectors } from '../src/cache/hot-vectors.js';

test('presence: a key added may be there; one removed as often as added is not, unless its bucket is shared', () => {
  const p = new Presence(1024);
  const h = idHash('doc-1');
  assert.equal(p.mayHave(h), false);
  p.add(h);
  p.add(h);
  assert.equal(p.mayHave(h), true);
  p.remove(h);
  assert.equal(p.mayHave(h), true, 'added twice, removed once');
  p.remove(h);
  assert.equal(p.mayHave(h), false);
  p.remove(h);
  assert.equal(p.mayHave(h), false, 'a remove past zero does not wrap the count');
  p.add(h);
  p.clear();
  assert.equal(p.mayHave(h), false);
});

test('presence: a bucket that saturates says "maybe" for good', () => {
  const p = new Presence(1);
  for (let i = 0; i < 0xffff; i++) p.add(i);
  for (let i = 0; i < 0xffff; i++) p.remove(i);
  assert.equal(p.mayHave(0), true);
});

test('presence: no buckets tells nothing (every key may be there) and holds no bytes', () => {
  const p = new Presence(0);
  assert.equal(p.bytes, 0);
  assert.equal(p.mayHave(slotHash(7)), true);
  p.add(slotHash(7));
  p.remove(slotHash(7));
  assert.equal(p.mayHave(slotHash(7)), true);
});

test('presence: buckets must be 0 or a power of two', () => {
  assert.throws(() => new Presence(3), RangeError);
  assert.throws(() => new Presence(-1), RangeError);
});

test('presence: random adds and removes of held keys never hide a key the model holds', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 6 }), fc.array(fc.record({ add: fc.boolean(), key: fc.integer({ min: 0, max: 40 }) }), { maxLength: 400 }), (log2, ops) => {
      const p = new Presence(2 ** log2);
      const held = new Map<number, number>();
      for (const { add, key } of ops) {
        const h = slotHash(key);
        const n = held.get(key) ?? 0;
        if (add) {
          p.add(h);
          held.set(key, n + 1);
        } else if (n > 0) {
          // Only keys held are removed, as the cache's Maps do.
          p.remove(h);
          if (n === 1) held.delete(key);
          else held.set(key, n - 1);
        }
        for (const k of held.keys()) assert.ok(p.mayHave(slotHash(k)), `key ${k} is held`);
      }
      if (held.size === 0) for (let k = 0; k <= 40; k++) assert.equal(p.mayHave(slotHash(k)), false);
    }),
  );
});

test('hot vectors: rows keep being found after removals move their slots (the presence of slots follows)', () => {
  const dim = 4;
  const hot = new HotVectors(dim, 64 * HotVectors.rowBytes(dim));
  const vec = (i: number) => Float32Array.from({ length: dim }, (_, j) => i * 10 + j);
  for (let i = 0; i < 8; i++) hot.put(i, vec(i), undefined);
  // Slot 2 removed, the last (7) moves into it; then slot 0 removed with nothing moving.
  hot.moved(2, 7);
  hot.moved(0, 0);
  assert.equal(hot.view(7), undefined, 'nothing is in slot 7 any more');
  assert.equal(hot.view(0), undefined);
  assert.deepEqual(hot.view(2)!.full, vec(7), 'the vector that moved is found at its new slot');
  for (const i of [1, 3, 4, 5, 6]) assert.deepEqual(hot.view(i)!.full, vec(i));
  assert.ok(hot.presenceBytes > 0);
});
