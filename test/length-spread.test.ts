import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LengthSpread, lengthBucket } from '../src/index/length-spread.js';
import { dot } from '../src/vector.js';
import { gaussian, rng } from './helpers.js';

test('length buckets: sixteen to an octave of the squared norm, zero apart, the extremes sharing the last', () => {
  assert.equal(lengthBucket(0), 0);
  const one = lengthBucket(1);
  // Twice the length is four times the squared norm: two octaves, 32 buckets.
  assert.equal(lengthBucket(4) - one, 32);
  assert.equal(lengthBucket(2) - one, 16);
  assert.equal(lengthBucket(0.25) - one, -32);
  // Within an octave, the edges are at 2^(j/16).
  assert.equal(lengthBucket(2 ** (1 / 16) * 0.9999999) - one, 0);
  assert.equal(lengthBucket(2 ** (1 / 16) * 1.0000001) - one, 1);
  assert.equal(lengthBucket(1.9999999) - one, 15);
  assert.equal(lengthBucket(0.99999994) - one, -1);
  // Subnormal squared norms share the shortest bucket, huge ones the longest; none is zero's.
  assert.equal(lengthBucket(Number.MIN_VALUE), 1);
  assert.equal(lengthBucket(1e-200), lengthBucket(1e-300));
  assert.ok(lengthBucket(1e-200) > 0);
  assert.equal(lengthBucket(1e200), lengthBucket(1e300));
  assert.ok(lengthBucket(1e50) > lengthBucket(1e30));
  assert.ok(lengthBucket(1e-50) < lengthBucket(1e-30));
});

test('length ratio: unit vectors rounded in float32 are of one length; lengths from 1 to 1.8, the 90th percentile over the 10th within 1/32 octave; a scale changes nothing', () => {
  const next = rng(3);
  const unit = new LengthSpread();
  for (let i = 0; i < 5000; i++) {
    const v = Float32Array.from({ length: 64 }, () => gaussian(next));
    const n = Math.sqrt(dot(v, v));
    for (let j = 0; j < v.length; j++) v[j] = v[j]! / n;
    unit.add(dot(v, v));
  }
  assert.ok(unit.ratio() <= 2 ** (1 / 32), `ratio ${unit.ratio()}`);
  for (const scale of [1, 0.95, 0.9, 0.8, 1e-6, 1e6]) {
    const wide = new LengthSpread();
    for (let i = 0; i < 5000; i++) {
      const length = scale * (1 + (0.8 * i) / 5000);
      wide.add(length * length);
    }
    // p10 1.08, p90 1.72: 1.59.
    const want = 1.72 / 1.08;
    assert.ok(Math.abs(Math.log2(wide.ratio() / want)) <= 1 / 16, `scale ${scale}: ratio ${wide.ratio()} against ${want}`);
  }
  assert.equal(new LengthSpread().ratio(), 1);
});

test('length ratio: zero vectors are counted, and left out of the ratio', () => {
  const s = new LengthSpread();
  for (let i = 0; i < 90; i++) s.add(1);
  for (let i = 0; i < 30; i++) s.add(0);
  assert.equal(s.count, 120);
  assert.equal(s.ratio(), 1);
  for (let i = 0; i < 30; i++) s.add(16);
  assert.ok(s.ratio() >= 4 * 2 ** (-1 / 32), `ratio ${s.ratio()}`);
  const zeros = new LengthSpread();
  zeros.add(0);
  assert.equal(zeros.ratio(), 1);
});

test('length ratio: it counts which lengths are there, not the order they came and went in', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.boolean()), { minLength: 1, maxLength: 200 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (items, seed) => {
        // Every length added; those marked removed taken back, interleaved in a shuffled order.
        const churned = new LengthSpread();
        const order = items.map((_, i) => i);
        const next = rng(seed);
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(next() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        for (const i of order) churned.add(items[i]![0]);
        for (const i of order) if (items[i]![1]) churned.remove(items[i]![0]);
        const kept = new LengthSpread();
        for (const [squared, removed] of items) if (!removed) kept.add(squared);
        assert.equal(churned.count, kept.count);
        assert.equal(churned.ratio(), kept.ratio());
      },
    ),
  );
});

test('length ratio: taking back a length never counted is a RangeError, and nothing changes', () => {
  const s = new LengthSpread();
  s.add(1);
  s.add(16);
  const before = s.ratio();
  assert.throws(() => s.remove(1e6), RangeError);
  assert.equal(s.count, 2);
  assert.equal(s.ratio(), before);
  s.remove(16);
  assert.equal(s.ratio(), 1);
  s.remove(1);
  assert.equal(s.count, 0);
});
