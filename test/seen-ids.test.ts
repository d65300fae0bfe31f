import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeenIds } from '../src/cache/seen-ids.js';

test('seen ids: an id is seen again only after a first read, until another id takes its slot', () => {
  const seen = new SeenIds(1024);
  assert.equal(seen.again('doc-1'), false);
  assert.equal(seen.again('doc-1'), true);
  assert.equal(seen.again('doc-2'), false);
  assert.equal(seen.again('doc-1'), true, 'another id in another slot leaves it');
  assert.equal(seen.again(''), false, 'the empty id is an id like any other');
  assert.equal(seen.again(''), true);
  seen.clear();
  assert.equal(seen.again('doc-1'), false);
});

test('seen ids: a table of one slot remembers only the last id', () => {
  const seen = new SeenIds(1);
  assert.equal(seen.again('a'), false);
  assert.equal(seen.again('b'), false);
  assert.equal(seen.again('a'), false);
  assert.equal(seen.again('a'), true);
  assert.equal(seen.bytes, 4);
});

test('seen ids: slots must be 0 or a power of two; a table of none remembers nothing', () => {
  for (const bad of [3, 1000, -4, 1.5, NaN]) assert.throws(() => new SeenIds(bad), RangeError);
  const none = new SeenIds(0);
  assert.equal(none.again('a'), false);
  assert.equal(none.again('a'), false);
  assert.equal(none.bytes, 0);
});
