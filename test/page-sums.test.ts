import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PageSums } from '../src/index/page-sums.js';
import { kernels } from '../src/kernels/index.js';
import { dot } from '../src/vector.js';

/**
 * Page sums are exact (page-sums.ts): a page's mean depends on its members alone, not on the order
 * they joined and left in, so a store that reopens (and sums each page afresh) has the centroids of
 * the store that never closed, bit for bit.
 */
const DIM = 5;
/** Small, so that pages of the property tests pass it and their grids change with their counts too. */
const ROOM = 8;

/** A page of members kept by the test, and its sums visiting them in insertion order or in reverse (keeping squared norms with `squares`). */
function page(reverse = false, squares = false): { members: Map<number, Float32Array>; sums: PageSums } {
  const members = new Map<number, Float32Array>();
  const sums = new PageSums(
    DIM,
    ROOM,
    {
      countOf: () => members.size,
      decodeInto: (_page, out) => {
        const all = [...members.values()];
        if (reverse) all.reverse();
        all.forEach((v, r) => out.set(v, r * DIM));
      },
    },
    squares,
  );
  sums.addPage();
  return { members, sums };
}

/** Runs `f` with `rows` back to back as float32 in linear memory, a row of 7s after them, and scratch room for the rows' count and DIM. */
function inMemory(rows: readonly Float32Array[], f: (members: number, scratch: number) => void): void {
  const mem = kernels().memory;
  const members = mem.alloc((rows.length + 1) * DIM * 4);
  const scratch = mem.alloc(4 * (rows.length + DIM));
  try {
    mem.f32().fill(7, members >> 2, (members >> 2) + (rows.length + 1) * DIM);
    rows.forEach((v, i) => mem.f32().set(v, (members >> 2) + i * DIM));
    f(members, scratch);
  } finally {
    mem.free(scratch, 4 * (rows.length + DIM));
    mem.free(members, (rows.length + 1) * DIM * 4);
  }
}

function meanOf(p: { members: Map<number, Float32Array>; sums: PageSums }): Float32Array {
  const out = new Float32Array(DIM);
  p.sums.mean(0, p.members.size, out);
  return out;
}

/** Magnitudes from 2^-149 to 3e38, zeros of both signs, and ordinary values. */
const value = fc.oneof(
  fc.float({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1, -1, 2 ** -149, 3e38, -3e38, 0.5, 0.49999997),
  fc.float({ min: -1, max: 1, noNaN: true }),
);
const vector = fc.array(value, { minLength: DIM, maxLength: DIM }).map((xs) => Float32Array.from(xs));
/** Joins (a vector) and leaves (an index into the members, taken modulo their count). */
const step = fc.oneof(vector.map((v) => ({ join: v })), fc.nat().map((n) => ({ leave: n })));

/** Applies one step to page 0 of `p`, its joining member keyed `next`; returns the next key. */
function apply(p: { members: Map<number, Float32Array>; sums: PageSums }, s: { join: Float32Array } | { leave: number }, next: number): number {
  if ('join' in s) {
    p.members.set(next, s.join);
    p.sums.joined(0, s.join, p.members.size, dot(s.join, s.join));
    return next + 1;
  }
  if (p.members.size > 0) {
    const key = [...p.members.keys()][s.leave % p.members.size]!;
    const v = p.members.get(key)!;
    p.members.delete(key);
    p.sums.left(0, v, p.members.size, dot(v, v));
  }
  return next;
}

test('page sums: after any joins and leaves, the mean is bit for bit the one summing the members afresh, in either order', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      const live = page();
      let next = 0;
      for (const s of steps) {
        next = apply(live, s, next);
        // Read after every change, as a page's centroid is: sums are then kept up by each change, not made afresh.
        meanOf(live);
      }
      const fresh = page(true);
      for (const [k, v] of live.members) fresh.members.set(k, v);
      fresh.sums.recompute(0);
      assert.deepEqual(meanOf(live), meanOf(fresh));
      // Opening sums each page by the kernels from a block of its decoded members in linear memory
      // (recomputeInMemory): the same grid and sums.
      const opened = page();
      inMemory([...live.members.values()], (members, scratch) => opened.sums.recomputeInMemory(0, members, live.members.size, scratch));
      for (const [k, v] of live.members) opened.members.set(k, v);
      assert.deepEqual(meanOf(opened), meanOf(live));
    }),
    { numRuns: 400 },
  );
});


test('page sums: members joined one at a time in JavaScript, the largest first (no change of grid), sum to the multiples the kernels make afresh', () => {
  fc.assert(
    fc.property(fc.array(vector, { minLength: 1, maxLength: 15 }), (vectors) => {
      const largest = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const sorted = [...vectors].sort((a, b) => largest(b) - largest(a));
      const joined = page();
      // The first member sets the grid (an empty page has none): summed afresh, then the rest join.
      joined.members.set(0, sorted[0]!);
      joined.sums.joined(0, sorted[0]!, 1, dot(sorted[0]!, sorted[0]!));
      meanOf(joined);
      const fresh = page();
      fresh.members.set(0, sorted[0]!);
      for (let i = 1; i < sorted.length; i++) {
        joined.members.set(i, sorted[i]!);
        joined.sums.joined(0, sorted[i]!, i + 1, dot(sorted[i]!, sorted[i]!));
        fresh.members.set(i, sorted[i]!);
      }
      fresh.sums.recompute(0);
      assert.deepEqual(meanOf(joined), meanOf(fresh));
    }),
    { numRuns: 400 },
  );
});

test('page sums: a page whose sums were released gives them back and takes them again: after any joins and leaves, released at any point, the mean and the mean squared norm are bit for bit those of a page that kept its sums', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ step, release: fc.boolean() }), { maxLength: 60 }), (steps) => {
      const kept = page(false, true);
      const released = page(false, true);
      let next = 0;
      for (const { step: s, release } of steps) {
        apply(kept, s, next);
        next = apply(released, s, next);
        if (release) {
          released.sums.release(0);
          assert.equal(released.sums.bytes, 40, 'a released page holds no sums');
        }
        assert.deepEqual(meanOf(released), meanOf(kept));
        assert.equal(released.sums.meanSquaredNorm(0, released.members.size), kept.sums.meanSquaredNorm(0, kept.members.size));
        assert.equal(released.sums.bytes, 40 + 4 * DIM, 'read again, the page holds its sums');
      }
    }),
    { numRuns: 300 },
  );
});

test('page sums: with squares kept, the mean squared norm after any joins and leaves is the same number whatever order the members came in (summed afresh, opened, or joined in reverse), within 2^-40 of the largest squared norm of the float64 mean; 0 when empty or not kept', () => {
  const ordinary = fc.array(fc.float({ min: -1000, max: 1000, noNaN: true }), { minLength: DIM, maxLength: DIM }).map((xs) => Float32Array.from(xs));
  const steps = fc.array(fc.oneof(ordinary.map((v) => ({ join: v })), fc.nat().map((n) => ({ leave: n }))), { maxLength: 60 });
  fc.assert(
    fc.property(steps, (list) => {
      const live = page(false, true);
      let next = 0;
      for (const s of list) {
        next = apply(live, s, next);
        const squares = [...live.members.values()].map((v) => dot(v, v));
        const got = live.sums.meanSquaredNorm(0, live.members.size);
        if (squares.length === 0) assert.equal(got, 0);
        else assert.ok(Math.abs(got - squares.reduce((a, b) => a + b, 0) / squares.length) <= Math.max(...squares) * 2 ** -40, `${got} against ${squares}`);
      }
      const n = live.members.size;
      const reversed = page(false, true);
      [...live.members.values()].reverse().forEach((v, i) => {
        reversed.members.set(i, v);
        reversed.sums.joined(0, v, i + 1, dot(v, v));
      });
      assert.equal(reversed.sums.meanSquaredNorm(0, n), live.sums.meanSquaredNorm(0, n));
      const afresh = page(true, true);
      for (const [key, v] of live.members) afresh.members.set(key, v);
      afresh.sums.recompute(0);
      assert.equal(afresh.sums.meanSquaredNorm(0, n), live.sums.meanSquaredNorm(0, n));
      const opened = page(false, true);
      inMemory([...live.members.values()], (members, scratch) => opened.sums.recomputeInMemory(0, members, n, scratch));
      assert.equal(opened.sums.meanSquaredNorm(0, n), live.sums.meanSquaredNorm(0, n));
      // Given the members' squared norms (as opening computes them once for the lengths too): the same.
      const given = page(false, true);
      const norms = Float64Array.from(live.members.values(), (v) => dot(v, v));
      inMemory([...live.members.values()], (members, scratch) => given.sums.recomputeInMemory(0, members, n, scratch, norms));
      assert.equal(given.sums.meanSquaredNorm(0, n), live.sums.meanSquaredNorm(0, n));
    }),
    { numRuns: 300 },
  );
  const plain = page();
  plain.members.set(0, Float32Array.of(3, 4, 0, 0, 0));
  const first = plain.members.get(0)!;
  plain.sums.joined(0, first, 1, dot(first, first));
  assert.equal(plain.sums.meanSquaredNorm(0, 1), 0, 'not kept');
});

test('page sums: the mean is the float64 mean within 2^-24 of the largest magnitude, and zero for an empty page', () => {
  fc.assert(
    fc.property(fc.array(vector, { minLength: 1, maxLength: 40 }), (vs) => {
      const p = page();
      vs.forEach((v, i) => {
        p.members.set(i, v);
        p.sums.joined(0, v, p.members.size, dot(v, v));
      });
      const largest = Math.max(...vs.flatMap((v) => Array.from(v, Math.abs)));
      const mean = meanOf(p);
      for (let d = 0; d < DIM; d++) {
        const exact = vs.reduce((s, v) => s + v[d]!, 0) / vs.length;
        // The grid's rounding (at most half a step per member: 2^-25 of the page's top power of two
        // with counts below 2^6), then float32's own rounding of the mean.
        assert.ok(Math.abs(mean[d]! - exact) <= largest * 2 ** -24 + Math.abs(exact) * 2 ** -23, `dim ${d}: ${mean[d]} vs ${exact}`);
      }
      for (const [k, v] of [...p.members]) {
        p.members.delete(k);
        p.sums.left(0, v, p.members.size, dot(v, v));
      }
      assert.deepEqual(meanOf(p), new Float32Array(DIM));
    }),
    { numRuns: 300 },
  );
});

test('page sums: pages dropped swap in the last, as page stores number them', () => {
  const members: Float32Array[][] = [[Float32Array.of(1, 2, 3, 4, 5)], [], [Float32Array.of(-8, 0, 0, 0, 0.25)]];
  const sums = new PageSums(DIM, ROOM, { countOf: (p) => members[p]!.length, decodeInto: (p, out) => members[p]!.forEach((v, r) => out.set(v, r * DIM)) });
  for (let p = 0; p < 3; p++) {
    sums.addPage();
    members[p]!.forEach((v, i) => sums.joined(p, v, i + 1, dot(v, v)));
  }
  sums.removeSwap(1);
  members[1] = members.pop()!;
  assert.equal(sums.pageCount, 2);
  const out = new Float32Array(DIM);
  sums.mean(1, 1, out);
  assert.deepEqual(out, Float32Array.of(-8, 0, 0, 0, 0.25));
  sums.mean(0, 1, out);
  assert.deepEqual(out, Float32Array.of(1, 2, 3, 4, 5));
});

test('page sums: a value halfway between two steps of its page grid leaves as it joined, however often (rounded before its sign)', () => {
  // The page's top is 2^0 and its counts take 4 bits (ROOM), so its grid is 2^(1 - 27) and 2^-27
  // lies halfway between two of its steps.
  const p = page();
  const big = Float32Array.of(1, 1, 1, 1, 1);
  const half = Float32Array.of(2 ** -27, -(2 ** -27), 3 * 2 ** -27, 0, 0);
  p.members.set(0, big);
  p.sums.joined(0, big, 1, dot(big, big));
  const before = meanOf(p);
  // Joining and leaving 64 times: an error of one step each time would show in the float32 mean of 1.
  for (let i = 0; i < 64; i++) {
    p.members.set(1, half);
    p.sums.joined(0, half, 2, dot(half, half));
    p.members.delete(1);
    p.sums.left(0, half, 1, dot(half, half));
  }
  assert.deepEqual(meanOf(p), before);
});

test('page sums: a page past roomFor members gives its count more bits: sums of many values near its top never leave int32', () => {
  const p = page();
  const v = Float32Array.of(1.5, -1.5, 1.9921875, 0, 1);
  for (let i = 0; i < 100; i++) {
    p.members.set(i, v);
    p.sums.joined(0, v, p.members.size, dot(v, v));
    // Read after every change, as a page's centroid is: a change of grid waits for the next read.
    assert.deepEqual(meanOf(p), v);
  }
});

test('page sums: a page that shrinks back gets the finer grid of its smaller count, as a page summed afresh has', () => {
  const p = page();
  const filler = Float32Array.of(0.5, 0.5, 0.5, 0.5, 0.5);
  for (let i = 0; i < 100; i++) {
    p.members.set(i, filler);
    p.sums.joined(0, filler, p.members.size, dot(filler, filler));
  }
  // 2^-25 is a multiple of the grid of 3 members (2^(1 - 27)) but below half a step of the grid of 100 (2^(1 - 24)).
  const kept = [Float32Array.of(1, 0, 0, 0, 0), Float32Array.of(-1, 0, 0, 0, 0), Float32Array.of(2 ** -25, 0, 0, 0, 0)];
  kept.forEach((k, i) => {
    p.members.set(1000 + i, k);
    p.sums.joined(0, k, p.members.size, dot(k, k));
  });
  for (let i = 0; i < 100; i++) {
    p.members.delete(i);
    p.sums.left(0, filler, p.members.size, dot(filler, filler));
    meanOf(p);
  }
  const fresh = page();
  kept.forEach((k, i) => fresh.members.set(i, k));
  fresh.sums.recompute(0);
  assert.deepEqual(meanOf(p), meanOf(fresh));
  assert.equal(meanOf(p)[0], Math.fround(2 ** -25 / 3));
});
