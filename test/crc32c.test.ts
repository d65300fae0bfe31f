import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from '../io/crc32c.js';
import { rng } from './helpers.js';

/** CRC-32C one bit at a time: slow, obviously right. */
function bitwise(data: Uint8Array): number {
  let c = ~0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('crc32c: the check value, every length across the switch to the hardware CRC, and continuation', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  const next = rng(32);
  const data = Uint8Array.from({ length: 3000 }, () => Math.floor(next() * 256));
  for (const n of [0, 1, 7, 8, 15, 16, 255, 256, 257, 1000, 2056, 3000]) {
    const piece = data.subarray(0, n);
    assert.equal(crc32c(piece), bitwise(piece), `length ${n}`);
    // In two pieces, each side of the 256-byte switch.
    for (const cut of [0, 1, 100, 255, 256, n]) {
      if (cut > n) continue;
      assert.equal(crc32c(data, cut, n, crc32c(data, 0, cut)), bitwise(piece), `length ${n} cut at ${cut}`);
    }
  }
});
