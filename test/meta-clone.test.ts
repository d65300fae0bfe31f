import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cloneMeta, parseMeta } from '../src/meta.js';
import type { JsonValue } from '../src/meta.js';

/** cloneMeta (src/meta.ts): the copy of stored metadata every hit and get() hands out. */

test('cloneMeta: an object of scalars is a new object with the same keys in the same order, an own "__proto__" key kept as a key', () => {
  const stored = parseMeta('{"b":1,"a":"x","__proto__":{"polluted":true},"n":null,"t":true,"2":2.5}');
  assert.ok(stored !== undefined);
  // parseMeta keeps "__proto__" as an own key whose value is an object: not scalars only, so the slow path.
  const copy = cloneMeta(stored as JsonValue) as Record<string, JsonValue>;
  assert.deepEqual(Object.keys(copy), Object.keys(stored));
  assert.equal(Object.getPrototypeOf(copy), Object.prototype);
  assert.ok(Object.prototype.hasOwnProperty.call(copy, '__proto__'));

  const flat = parseMeta('{"b":1,"a":"x","__proto__":"p","n":null,"t":true,"2":2.5}')!;
  const flatCopy = cloneMeta(flat as JsonValue) as Record<string, JsonValue>;
  assert.notEqual(flatCopy, flat);
  assert.deepEqual(Object.keys(flatCopy), ['2', 'b', 'a', '__proto__', 'n', 't']);
  assert.equal(Object.getPrototypeOf(flatCopy), Object.prototype, 'the spread set no prototype');
  assert.equal(Object.getOwnPropertyDescriptor(flatCopy, '__proto__')?.value, 'p');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  flatCopy['b'] = 99;
  assert.equal(flat['b'], 1, 'the copy is its own');
});

test('cloneMeta: nested objects and arrays are copied all the way down', () => {
  const stored = parseMeta('{"a":{"b":[1,{"c":2}]},"d":[3]}')!;
  const copy = cloneMeta(stored as JsonValue) as { a: { b: [number, { c: number }] }; d: number[] };
  assert.deepEqual(copy, stored);
  copy.a.b[1].c = -1;
  copy.d.push(4);
  assert.deepEqual(stored, { a: { b: [1, { c: 2 }] }, d: [3] });
});
