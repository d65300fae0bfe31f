import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpareBuffers } from '../src/cache/spare-buffers.js';

test('spare buffers: a buffer given back is the one taken next for its length', () => {
  const spares = new SpareBuffers(2, 1 << 20);
  const a = spares.take(2048);
  assert.equal(a.byteLength, 2048);
  spares.give(a);
  assert.equal(spares.bytes, 2048);
  assert.notEqual(spares.take(1024), a, 'another length gets a buffer of its own');
  assert.equal(spares.take(2048), a);
  assert.equal(spares.bytes, 0);
  assert.notEqual(spares.take(2048), a, 'a buffer is handed out once');
});

test('spare buffers: at most perLength of one length and maxBytes in all are kept', () => {
  const spares = new SpareBuffers(2, 5000);
  for (let i = 0; i < 3; i++) spares.give(new ArrayBuffer(1000));
  assert.equal(spares.bytes, 2000, 'the third of one length is left to the collector');
  spares.give(new ArrayBuffer(2500));
  assert.equal(spares.bytes, 4500);
  spares.give(new ArrayBuffer(600));
  assert.equal(spares.bytes, 4500, 'a buffer past maxBytes is not kept');
  spares.clear();
  assert.equal(spares.bytes, 0);
  assert.equal(spares.take(1000).byteLength, 1000);
});
