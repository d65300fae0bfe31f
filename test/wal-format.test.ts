import assert from 'node:assert/strict';
import { appendFileSync, closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { crc32c, maskCrc, unmaskCrc } from '../io/crc32c.js';
import { readU32, writeU32 } from '../io/little-endian.js';
import { FaultFileLayer } from './support/fault-layer.js';
import { WAL_BLOCK_SIZE, WAL_HEADER_SIZE, RecordType, framedSize, parseSegmentName, segmentName } from '../wal/format.js';
import { Wal, WalError, inspectWal, type WalRecord } from '../wal/index.js';
import { salvageLog } from '../wal/salvage.js';

const DIR = '/db/wal';
const SEG1 = `${DIR}/${segmentName(1)}`;

function payload(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function collect(wal: Wal, afterLsn = 0): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const r of wal.replay(afterLsn)) out.push({ lsn: r.lsn, payload: new Uint8Array(r.payload) });
  return out;
}

/** A closed log in a fresh in-memory disk holding one record per size (payload(size, i)); offsets[i] is where record i starts. */
async function makeLog(sizes: number[], segmentBytes?: number): Promise<{ fs: FaultFileLayer; offsets: number[]; payloads: Uint8Array[] }> {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs, ...(segmentBytes === undefined ? {} : { segmentBytes }) });
  const payloads = sizes.map((s, i) => payload(s, i + 1));
  // One append per group: a group is never split, so rotation happens between groups.
  for (const p of payloads) await wal.append(p);
  await wal.close();
  const offsets: number[] = [];
  let at = 0;
  for (const s of sizes) {
    offsets.push(at);
    at += framedSize(at, s);
  }
  offsets.push(at);
  return { fs, offsets, payloads };
}

/** Replaces a file's bytes, durably (the test plays the disk, not a writer). */
async function putFile(fs: FaultFileLayer, path: string, bytes: Uint8Array): Promise<void> {
  const h = await fs.open(path, 'create');
  await h.truncate(0);
  await h.write(bytes, 0);
  await h.sync();
  await h.close();
  await fs.syncDir(DIR);
}

/** A fragment with any type/LSN, checksummed as a writer would. */
function fragment(type: number, lsn: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(WAL_HEADER_SIZE + body.length);
  out[4] = body.length & 0xff;
  out[5] = body.length >>> 8;
  out[6] = type;
  writeU32(out, 7, lsn >>> 0);
  writeU32(out, 11, Math.floor(lsn / 2 ** 32));
  out.set(body, WAL_HEADER_SIZE);
  writeU32(out, 0, maskCrc(crc32c(out, 4)));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function freshDisk(): Promise<FaultFileLayer> {
  const fs = new FaultFileLayer();
  await fs.mkdir(DIR);
  await fs.syncDir('/');
  await fs.syncDir('/db');
  return fs;
}

async function assertCorruption(files: FaultFileLayer, file: string, offset: number, pattern?: RegExp): Promise<void> {
  await assert.rejects(Wal.open({ dir: DIR, files }), (e) => {
    assert.ok(e instanceof WalError, String(e));
    assert.equal(e.code, 'CORRUPTION');
    assert.equal(e.file, file);
    assert.equal(e.offset, offset);
    if (pattern !== undefined) assert.match(e.message, pattern);
    return true;
  });
}

function sameRecords(got: WalRecord[], payloads: Uint8Array[], count = payloads.length): void {
  assert.equal(got.length, count);
  got.forEach((r, i) => {
    assert.equal(r.lsn, i + 1);
    assert.deepEqual(r.payload, payloads[i]);
  });
}

// --- checksum -------------------------------------------------------------------------------

test('format: CRC-32C matches the standard check values, and masking is reversible and changes the value', () => {
  const ascii = new TextEncoder().encode('123456789');
  assert.equal(crc32c(ascii), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  const long = payload(1000, 3);
  assert.equal(crc32c(long, 300, 1000, crc32c(long, 0, 300)), crc32c(long), 'extends across pieces');
  for (const c of [0, 1, 0xe3069283, 0xffffffff]) {
    assert.notEqual(maskCrc(c), c);
    assert.equal(unmaskCrc(maskCrc(c)), c);
  }
});

// --- segment files --------------------------------------------------------------------------

test('format: a segment is named after the LSN of its first record, 20 digits, sorting like the number', () => {
  assert.equal(segmentName(1), 'wal-00000000000000000001.log');
  assert.equal(parseSegmentName(segmentName(2 ** 53 - 1)), 2 ** 53 - 1);
  assert.equal(parseSegmentName('wal-1.log'), undefined);
  assert.equal(parseSegmentName('wal-00000000000000000000.log'), undefined, 'LSNs start at 1');
  assert.equal(parseSegmentName('wal-99999999999999999999.log'), undefined, 'beyond 2^53');
  assert.ok(segmentName(999) < segmentName(1000));
});

test('format: files that are not segments are ignored', async () => {
  const fs = await freshDisk();
  await putFile(fs, `${DIR}/notes.txt`, payload(100, 1));
  const wal = await Wal.open({ dir: DIR, files: fs });
  await wal.append(payload(10, 1));
  await wal.close();
  assert.deepEqual((await fs.list(DIR)).sort(), ['notes.txt', segmentName(1)]);
});

// --- fragments and records ------------------------------------------------------------------

test('format: a record that fits is one FULL fragment: masked CRC, length, type, 8-byte LSN, payload', async () => {
  const { fs } = await makeLog([5, 3]);
  const b = fs.currentBytes(SEG1);
  assert.equal(b.length, 2 * WAL_HEADER_SIZE + 8);
  assert.equal(b[4]! | (b[5]! << 8), 5);
  assert.equal(b[6], RecordType.FULL);
  assert.equal(readU32(b, 7), 1);
  assert.equal(readU32(b, 11), 0);
  assert.deepEqual(b.subarray(15, 20), payload(5, 1));
  assert.equal(unmaskCrc(readU32(b, 0)), crc32c(b, 4, 20), 'the checksum covers length, type, LSN and payload');
  assert.equal(readU32(b, 20 + 7), 2, 'the next record has the next LSN');
});

test('format: an empty payload is a FULL fragment of length 0 and round-trips', async () => {
  const { fs } = await makeLog([0, 0, 7]);
  const wal = await Wal.open({ dir: DIR, files: fs });
  const got = await collect(wal);
  assert.deepEqual(
    got.map((r) => r.payload.length),
    [0, 0, 7],
  );
  await wal.close();
});

test('format: a record larger than a block is FIRST, MIDDLE..., LAST, every fragment with its LSN, and round-trips', async () => {
  const big = 3 * WAL_BLOCK_SIZE + 1234;
  const { fs, payloads } = await makeLog([100, big, 50]);
  const b = fs.currentBytes(SEG1);
  const types: number[] = [];
  for (let pos = 115; pos < 115 + framedSize(115, big); ) {
    const len = b[pos + 4]! | (b[pos + 5]! << 8);
    types.push(b[pos + 6]!);
    assert.equal(readU32(b, pos + 7), 2);
    assert.ok(pos % WAL_BLOCK_SIZE === 0 || types.length === 1, 'only the FIRST fragment starts mid-block');
    pos += WAL_HEADER_SIZE + len;
  }
  assert.deepEqual(types, [RecordType.FIRST, RecordType.MIDDLE, RecordType.MIDDLE, RecordType.LAST]);
  const wal = await Wal.open({ dir: DIR, files: fs });
  sameRecords(await collect(wal), payloads);
  await wal.close();
});

test('format: a record ending exactly at the block end leaves no trailer; the next starts the next block', async () => {
  const { fs, payloads } = await makeLog([WAL_BLOCK_SIZE - WAL_HEADER_SIZE, 10, WAL_BLOCK_SIZE - 2 * WAL_HEADER_SIZE - 10, 20]);
  const b = fs.currentBytes(SEG1);
  assert.equal(b[WAL_BLOCK_SIZE + 6], RecordType.FULL);
  assert.equal(readU32(b, WAL_BLOCK_SIZE + 7), 2);
  assert.equal(readU32(b, 2 * WAL_BLOCK_SIZE + 7), 4);
  assert.equal(b.length, 2 * WAL_BLOCK_SIZE + WAL_HEADER_SIZE + 20);
  const wal = await Wal.open({ dir: DIR, files: fs });
  sameRecords(await collect(wal), payloads);
  await wal.close();
});

test('format: with fewer than header-size bytes left in a block, they are zeros and the next fragment starts the next block', async () => {
  for (const left of [1, 7, WAL_HEADER_SIZE - 1]) {
    const first = WAL_BLOCK_SIZE - left - WAL_HEADER_SIZE;
    const { fs, payloads } = await makeLog([first, 40]);
    const b = fs.currentBytes(SEG1);
    assert.deepEqual(b.subarray(WAL_BLOCK_SIZE - left, WAL_BLOCK_SIZE), new Uint8Array(left), `trailer of ${left}`);
    assert.equal(b[WAL_BLOCK_SIZE + 6], RecordType.FULL);
    const wal = await Wal.open({ dir: DIR, files: fs });
    sameRecords(await collect(wal), payloads);
    assert.equal(wal.recovered, undefined);
    await wal.close();
  }
});

test('format: the content of a block trailer is ignored', async () => {
  const left = 9;
  const { fs, payloads } = await makeLog([WAL_BLOCK_SIZE - left - WAL_HEADER_SIZE, 40]);
  for (let i = 0; i < left; i++) fs.flipBit(SEG1, WAL_BLOCK_SIZE - left + i);
  const wal = await Wal.open({ dir: DIR, files: fs });
  sameRecords(await collect(wal), payloads);
  assert.equal(wal.recovered, undefined);
  await wal.close();
});

test('format: with exactly header-size bytes left, an empty FIRST fragment goes there', async () => {
  const { fs, payloads } = await makeLog([WAL_BLOCK_SIZE - 2 * WAL_HEADER_SIZE, 40]);
  const b = fs.currentBytes(SEG1);
  const at = WAL_BLOCK_SIZE - WAL_HEADER_SIZE;
  assert.equal(b[at + 6], RecordType.FIRST);
  assert.equal(b[at + 4], 0);
  assert.equal(b[WAL_BLOCK_SIZE + 6], RecordType.LAST);
  const wal = await Wal.open({ dir: DIR, files: fs });
  sameRecords(await collect(wal), payloads);
  await wal.close();
});

test('format: LSNs are consecutive from 1 across groups, segments and reopens', async () => {
  const fs = new FaultFileLayer();
  let wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 2000 });
  const lsns: number[] = [];
  for (let g = 0; g < 10; g++) lsns.push(...(await Promise.all(Array.from({ length: g + 1 }, (_, i) => wal.append(payload(300, g * 100 + i))))));
  await wal.close();
  assert.deepEqual(lsns, Array.from({ length: 55 }, (_, i) => i + 1));
  wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 2000 });
  assert.equal(wal.lastLsn, 55);
  assert.equal(await wal.append(payload(1, 1)), 56, 'reopen continues after the last LSN');
  assert.deepEqual(
    (await collect(wal)).map((r) => r.lsn),
    Array.from({ length: 56 }, (_, i) => i + 1),
  );
  await wal.close();
});

// --- reading: torn tails --------------------------------------------------------------------

test('reader: a log torn at every byte position of its last record is cut at the last whole record', async () => {
  // The last record starts 200 bytes before a block end, so the cuts cover a FIRST header, its
  // payload, the block boundary, a LAST header and its payload.
  const lead = WAL_BLOCK_SIZE - 200 - WAL_HEADER_SIZE - (WAL_HEADER_SIZE + 30);
  const { fs, offsets, payloads } = await makeLog([30, lead, 400]);
  const full = fs.currentBytes(SEG1);
  const start = offsets[2]!;
  assert.equal(start, WAL_BLOCK_SIZE - 200);
  assert.equal(full.length, offsets[3]);
  for (let cut = start; cut < full.length; cut++) {
    const disk = await freshDisk();
    await putFile(disk, SEG1, full.subarray(0, cut));
    const wal = await Wal.open({ dir: DIR, files: disk });
    if (cut === start) assert.equal(wal.recovered, undefined);
    else {
      assert.equal(wal.recovered?.offset, start, `cut at ${cut}`);
      assert.equal(wal.recovered?.droppedBytes, cut - start);
    }
    assert.equal(disk.currentBytes(SEG1).length, start, 'the file is truncated at the last whole record');
    assert.equal(disk.durableBytes(SEG1)?.length, start, 'and the truncation is fsynced');
    sameRecords(await collect(wal), payloads, 2);
    if (cut % 37 === 0) {
      assert.equal(await wal.append(payloads[2]!), 3, 'the next append takes the lost LSN');
      await wal.close();
      const again = await Wal.open({ dir: DIR, files: disk });
      sameRecords(await collect(again), payloads);
      await again.close();
    } else {
      await wal.close();
    }
  }
});

test('reader: a bad checksum in the last record is a torn tail and is cut', async () => {
  const { fs, offsets, payloads } = await makeLog([100, 200, 300]);
  fs.flipBit(SEG1, offsets[2]! + WAL_HEADER_SIZE + 150);
  const wal = await Wal.open({ dir: DIR, files: fs });
  assert.equal(wal.recovered?.reason, 'checksum mismatch');
  assert.equal(wal.recovered?.offset, offsets[2]);
  sameRecords(await collect(wal), payloads, 2);
  await wal.close();
});

test('reader: a zero-filled tail (preallocated or unwritten extents) is cut, also when shorter than a header', async () => {
  for (const zeros of [4096, WAL_HEADER_SIZE, 7, WAL_BLOCK_SIZE * 2]) {
    const { fs, offsets, payloads } = await makeLog([100, 200]);
    await putFile(fs, SEG1, concat(fs.currentBytes(SEG1), new Uint8Array(zeros)));
    const wal = await Wal.open({ dir: DIR, files: fs });
    assert.match(wal.recovered?.reason ?? '', /zero-filled/);
    assert.equal(fs.currentBytes(SEG1).length, offsets[2]);
    sameRecords(await collect(wal), payloads);
    await wal.close();
  }
});

test('reader: a truncated header at the end of the last segment is cut', async () => {
  const { fs, offsets, payloads } = await makeLog([100, 200]);
  await putFile(fs, SEG1, concat(fs.currentBytes(SEG1), fragment(RecordType.FULL, 3, payload(10, 9)).subarray(0, 9)));
  const wal = await Wal.open({ dir: DIR, files: fs });
  assert.equal(wal.recovered?.reason, 'truncated header');
  assert.equal(wal.recovered?.offset, offsets[2]);
  sameRecords(await collect(wal), payloads);
  await wal.close();
});

test('reader: block padding with no fragment after it is cut', async () => {
  const first = WAL_BLOCK_SIZE - 5 - WAL_HEADER_SIZE;
  const { fs, payloads } = await makeLog([first]);
  await putFile(fs, SEG1, concat(fs.currentBytes(SEG1), new Uint8Array(5)));
  const wal = await Wal.open({ dir: DIR, files: fs });
  assert.equal(wal.recovered?.offset, WAL_BLOCK_SIZE - 5);
  sameRecords(await collect(wal), payloads);
  assert.equal(await wal.append(payload(10, 2)), 2);
  await wal.close();
});

test('reader: a FIRST fragment whose LAST never came is part of the torn tail', async () => {
  const big = WAL_BLOCK_SIZE * 2;
  const { fs, offsets, payloads } = await makeLog([100, big]);
  await putFile(fs, SEG1, fs.currentBytes(SEG1).subarray(0, 2 * WAL_BLOCK_SIZE));
  const wal = await Wal.open({ dir: DIR, files: fs });
  assert.equal(wal.recovered?.offset, offsets[1]);
  assert.match(wal.recovered?.reason ?? '', /LAST/);
  sameRecords(await collect(wal), payloads, 1);
  await wal.close();
});

// --- reading: corruption --------------------------------------------------------------------

test('reader: a bad checksum before the tail is CORRUPTION with file and offset, and nothing is cut', async () => {
  const { fs, offsets } = await makeLog([100, 200, 300, 400]);
  fs.flipBit(SEG1, offsets[1]! + WAL_HEADER_SIZE + 10);
  const before = fs.currentBytes(SEG1);
  await assertCorruption(fs, SEG1, offsets[1]!, /checksum mismatch.*valid fragment follows/);
  assert.deepEqual(fs.currentBytes(SEG1), before);
});

test('reader: after damage in the last segment, a valid fragment whose LSN is outside the search window (below the damaged record\'s, or past it by more than bytes left / 15) is not a later record: the tail is cut there', async () => {
  const { fs, offsets, payloads } = await makeLog([100, 200]);
  const whole = fs.currentBytes(SEG1);
  const damaged = whole.slice(0, offsets[2]!);
  damaged[offsets[1]! + WAL_HEADER_SIZE + 20]! ^= 0x10;
  const body = payload(40, 99);
  // The window (FORMAT.md): LSNs 2 (the damaged record's) to 2 + ⌈bytes after the damaged offset / 15⌉ + 1.
  const after = offsets[2]! + WAL_HEADER_SIZE + body.length - (offsets[1]! + 1);
  const last = 2 + Math.ceil(after / WAL_HEADER_SIZE) + 1;
  for (const lsn of [1, last + 1, 1000]) {
    const disk = await freshDisk();
    await putFile(disk, SEG1, concat(damaged, fragment(RecordType.FULL, lsn, body)));
    const wal = await Wal.open({ dir: DIR, files: disk });
    assert.equal(wal.recovered?.offset, offsets[1], String(lsn));
    sameRecords(await collect(wal), payloads, 1);
    await wal.close();
  }
  // Inside the window, at either end, the same fragment is a later record: CORRUPTION, nothing cut.
  for (const lsn of [2, last]) {
    const disk = await freshDisk();
    await putFile(disk, SEG1, concat(damaged, fragment(RecordType.FULL, lsn, body)));
    await assertCorruption(disk, SEG1, offsets[1]!);
  }
});

test('salvage: stretches that touch are one stretch (a record whose FIRST fragment is damaged: its MIDDLE and LAST, checksums intact, resume and fail again), which loses that record alone', async () => {
  const { fs, offsets, payloads } = await makeLog([100, 2 * WAL_BLOCK_SIZE, 100]);
  fs.flipBit(SEG1, offsets[1]! + WAL_HEADER_SIZE + 5);
  const salvaged = await salvageLog(fs, DIR);
  assert.deepEqual(
    salvaged.damage.map((d) => ({ offset: d.offset, end: d.end, lostLsns: d.lostLsns, bytes: d.bytes.length })),
    [{ offset: offsets[1], end: offsets[2], lostLsns: [2, 2], bytes: offsets[2]! - offsets[1]! }],
  );
  assert.deepEqual(salvaged.records.map((r) => r.lsn), [1, 3]);
  assert.deepEqual(salvaged.records[1]?.payload, payloads[2]);
  assert.equal(salvaged.tail, undefined);
});

test('reader: a damaged length field before the tail is CORRUPTION (the search does not trust the length)', async () => {
  const { fs, offsets } = await makeLog([100, 200, 300, 400]);
  for (const bit of [0, 3, 7]) {
    const disk = await freshDisk();
    await putFile(disk, SEG1, fs.currentBytes(SEG1));
    disk.flipBit(SEG1, offsets[1]! + 4, bit);
    await assertCorruption(disk, SEG1, offsets[1]!);
  }
});

test('reader: zeros followed by a valid record (a hole) are CORRUPTION', async () => {
  const { fs, offsets } = await makeLog([100, 200, 300]);
  const b = fs.currentBytes(SEG1);
  b.fill(0, offsets[1]!, offsets[2]!);
  await putFile(fs, SEG1, b);
  await assertCorruption(fs, SEG1, offsets[1]!, /zero-filled/);
});

test('reader: any damage in a segment that is not the last is CORRUPTION, also at its end', async () => {
  const { fs, offsets } = await makeLog([600, 600, 600, 600], 1500);
  const names = (await fs.list(DIR)).sort();
  assert.equal(names.length, 2);
  const older = `${DIR}/${names[0]}`;
  const b = fs.currentBytes(older);
  assert.equal(b.length, offsets[2]);
  fs.flipBit(older, b.length - 1);
  await assertCorruption(fs, older, offsets[1]!, /checksum/);
  await putFile(fs, older, concat(b, new Uint8Array(3)));
  await assertCorruption(fs, older, b.length, /zero-filled tail/);
  await putFile(fs, older, b.subarray(0, b.length - 1));
  await assertCorruption(fs, older, offsets[1]!, /truncated fragment/);
});

test('reader: an LSN going backwards or skipping is CORRUPTION, also in the last record', async () => {
  const p = payload(20, 1);
  const cases: Array<[number[], number, RegExp]> = [
    [[1, 2, 2], 2, /went backwards/],
    [[1, 2, 4], 2, /gap/],
    [[2], 0, /gap/],
    [[1, 3, 4, 5], 1, /gap/],
  ];
  for (const [lsns, bad, pattern] of cases) {
    const fs = await freshDisk();
    await putFile(fs, SEG1, concat(...lsns.map((lsn) => fragment(RecordType.FULL, lsn, p))));
    await assertCorruption(fs, SEG1, bad * (WAL_HEADER_SIZE + 20), pattern);
  }
});

test('reader: a fragment sequence that breaks FIRST MIDDLE* LAST, or an unknown type, is CORRUPTION when its checksum holds', async () => {
  const p = payload(20, 1);
  const f = (type: number, lsn: number): Uint8Array => fragment(type, lsn, p);
  const size = WAL_HEADER_SIZE + 20;
  const cases: Array<[Uint8Array[], number, RegExp]> = [
    [[f(RecordType.FULL, 1), f(RecordType.LAST, 2)], size, /LAST fragment without FIRST/],
    [[f(RecordType.MIDDLE, 1)], 0, /MIDDLE fragment without FIRST/],
    [[f(RecordType.FIRST, 1), f(RecordType.FULL, 2)], 0, /without its LAST/],
    [[f(RecordType.FIRST, 1), f(RecordType.LAST, 2)], size, /inside record 1/],
    [[f(RecordType.FULL, 1), f(9, 2)], size, /unknown fragment type 9/],
    [[f(RecordType.FULL, 1), fragment(RecordType.FULL, 2 ** 60, p)], size, /2\^53/],
  ];
  for (const [parts, offset, pattern] of cases) {
    const fs = await freshDisk();
    await putFile(fs, SEG1, concat(...parts));
    await assertCorruption(fs, SEG1, offset, pattern);
  }
});

test('reader: a missing middle segment is CORRUPTION at offset 0 of the segment after the gap', async () => {
  const { fs } = await makeLog(Array.from({ length: 8 }, () => 600), 1500);
  const names = (await fs.list(DIR)).sort();
  assert.ok(names.length >= 3);
  await fs.remove(`${DIR}/${names[1]}`);
  await assertCorruption(fs, `${DIR}/${names[2]}`, 0, /gap \(missing segment\?\)/);
});

test('reader: replay of records that were already removed is CORRUPTION', async () => {
  const { fs } = await makeLog(Array.from({ length: 8 }, () => 600), 1500);
  const wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 1500 });
  assert.equal(await wal.removeBefore(5), 2);
  assert.equal(wal.firstLsn, 5);
  assert.deepEqual(
    (await collect(wal, 4)).map((r) => r.lsn),
    [5, 6, 7, 8],
  );
  await assert.rejects(collect(wal, 3), (e) => e instanceof WalError && e.code === 'CORRUPTION');
  await wal.close();
});

test('reader: inspectWal validates every checksum and reports a torn tail without cutting it', async () => {
  const { fs, offsets } = await makeLog([100, 200, 300]);
  await putFile(fs, SEG1, fs.currentBytes(SEG1).subarray(0, offsets[3]! - 1));
  const scan = await inspectWal({ dir: DIR, files: fs });
  assert.equal(scan.tail?.offset, offsets[2]);
  assert.equal(scan.segments[0]?.lastLsn, 2);
  assert.equal(fs.currentBytes(SEG1).length, offsets[3]! - 1, 'unchanged');
  fs.flipBit(SEG1, 20);
  await assert.rejects(inspectWal({ dir: DIR, files: fs }), (e) => e instanceof WalError && e.code === 'CORRUPTION' && e.offset === 0);
});

// --- writing ------------------------------------------------------------------------------

test('writer: segments rotate before a group would pass segmentBytes; the old one is fsynced and the new entry dir-synced first', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 1000, durability: 'none' });
  for (let i = 0; i < 6; i++) await wal.append(payload(400, i));
  const names = (await fs.list(DIR)).sort();
  assert.deepEqual(names, [segmentName(1), segmentName(3), segmentName(5)]);
  for (const name of names.slice(0, 2)) {
    assert.equal(fs.durableBytes(`${DIR}/${name}`)?.length, 2 * (WAL_HEADER_SIZE + 400), `${name} fsynced at rotation even in 'none' mode`);
  }
  assert.deepEqual(fs.durableBytes(`${DIR}/${names[2]}`), new Uint8Array(0), 'the new segment entry is durable, its bytes are not yet');
  assert.equal(wal.bytes, 6 * (WAL_HEADER_SIZE + 400));
  await wal.append(payload(5000, 9));
  assert.equal((await fs.list(DIR)).length, 4, 'a record larger than segmentBytes goes whole into a new segment');
  await wal.close();
});

test('writer: removeBefore deletes whole segments all of whose records precede the LSN, oldest first, never the active one', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 1000 });
  for (let i = 0; i < 7; i++) await wal.append(payload(400, i));
  const all = (await fs.list(DIR)).sort();
  assert.deepEqual(all, [segmentName(1), segmentName(3), segmentName(5), segmentName(7)]);
  const bytes = wal.bytes;
  assert.equal(await wal.removeBefore(4), 1, 'segment 3..4 still holds LSN 4');
  assert.deepEqual((await fs.list(DIR)).sort(), all.slice(1));
  assert.equal(wal.bytes, bytes - 2 * (WAL_HEADER_SIZE + 400));
  assert.equal(await wal.removeBefore(1000), 2);
  assert.deepEqual(await fs.list(DIR), [segmentName(7)], 'the active segment stays');
  assert.equal(fs.powerCut().durableBytes(`${DIR}/${segmentName(5)}`), undefined, 'removals are dir-synced');
});

test('writer: an empty active segment keeps the next LSN across reopen', async () => {
  const fs = new FaultFileLayer();
  let wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 100 });
  await wal.append(payload(200, 1));
  await wal.append(payload(200, 2));
  await wal.removeBefore(100);
  await wal.close();
  assert.deepEqual(await fs.list(DIR), [segmentName(2)]);
  const h = await fs.open(`${DIR}/${segmentName(2)}`, 'readwrite');
  await h.truncate(0);
  await h.close();
  wal = await Wal.open({ dir: DIR, files: fs });
  assert.equal(wal.firstLsn, 2);
  assert.equal(wal.lastLsn, 1);
  assert.equal(await wal.append(payload(1, 1)), 2);
  await wal.close();
});

test('writer: startLsn restarts a log that ends before it, so LSNs never go backwards', async () => {
  const fs = new FaultFileLayer();
  let wal = await Wal.open({ dir: DIR, files: fs, startLsn: 500 });
  assert.equal(await wal.append(payload(10, 1)), 500, 'a new log starts at startLsn');
  await wal.close();
  assert.deepEqual(await fs.list(DIR), [segmentName(500)]);
  wal = await Wal.open({ dir: DIR, files: fs, startLsn: 200 });
  assert.equal(await wal.append(payload(10, 2)), 501, 'a log ahead of startLsn is untouched');
  await wal.close();
  wal = await Wal.open({ dir: DIR, files: fs, startLsn: 900 });
  assert.deepEqual(await fs.list(DIR), [segmentName(900)], 'a log behind it is replaced');
  assert.equal(wal.lastLsn, 899);
  assert.deepEqual(await collect(wal, 899), []);
  assert.equal(await wal.append(payload(10, 3)), 900);
  await wal.close();
});

test('writer: appends of one tick share one write and one fsync; later appends form the next group', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs });
  const { writes, syncs } = fs.counts;
  const first = Array.from({ length: 50 }, (_, i) => wal.append(payload(100, i)));
  const late = Promise.resolve().then(() => wal.append(payload(100, 99)));
  await Promise.all([...first, late]);
  assert.equal(fs.counts.writes - writes, 1, 'a promise chain of the same tick joins the group');
  assert.equal(fs.counts.syncs - syncs, 1);
  await wal.close();
});

test("writer: 'batch' resolves after the write and fsyncs within batchDelayMs; 'none' fsyncs only at close", async () => {
  for (const durability of ['batch', 'none'] as const) {
    const fs = new FaultFileLayer();
    const wal = await Wal.open({ dir: DIR, files: fs, durability, batchDelayMs: 20 });
    const syncs = fs.counts.syncs;
    await Promise.all([wal.append(payload(100, 1)), wal.append(payload(100, 2))]);
    assert.equal(fs.counts.syncs, syncs, `${durability}: resolved before any fsync`);
    assert.equal(fs.durableBytes(SEG1)?.length, 0);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(fs.counts.syncs - syncs, durability === 'batch' ? 1 : 0);
    await wal.append(payload(100, 3));
    await wal.close();
    assert.equal(fs.durableBytes(SEG1)?.length, 3 * (WAL_HEADER_SIZE + 100), 'close makes everything durable');
  }
});

test("writer: sync() makes earlier appends durable in every mode", async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs, durability: 'none' });
  void wal.append(payload(100, 1));
  await wal.sync();
  assert.equal(fs.durableBytes(SEG1)?.length, WAL_HEADER_SIZE + 100);
  await wal.close();
});

test('writer: close is idempotent and later calls reject with CLOSED', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs });
  const pending = wal.append(payload(10, 1));
  await Promise.all([wal.close(), wal.close()]);
  assert.equal(await pending, 1, 'an append issued before close is written');
  await assert.rejects(wal.append(payload(1, 1)), (e) => e instanceof WalError && e.code === 'CLOSED');
  await assert.rejects(wal.sync(), (e) => e instanceof WalError && e.code === 'CLOSED');
  await assert.rejects(wal.removeBefore(1), (e) => e instanceof WalError && e.code === 'CLOSED');
});

// --- the real file system --------------------------------------------------------------------

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function realDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'memstore-wal-'));
  tempDirs.push(d);
  return join(d, 'wal');
}

test('real fs: records round-trip across rotation, reopen, removeBefore and a torn tail', async () => {
  const dir = realDir();
  let wal = await Wal.open({ dir, segmentBytes: 64 << 10 });
  const payloads = Array.from({ length: 60 }, (_, i) => payload((i * 3571) % 9000, i));
  for (let i = 0; i < payloads.length; i += 6) await Promise.all(payloads.slice(i, i + 6).map((p) => wal.append(p)));
  await wal.close();
  const names = readdirSync(dir).sort();
  assert.ok(names.length >= 4, names.join());
  const last = join(dir, names[names.length - 1]!);
  const size = statSync(last).size;
  appendFileSync(last, payload(10, 1));
  wal = await Wal.open({ dir });
  assert.equal(wal.recovered?.offset, size);
  assert.equal(statSync(last).size, size);
  sameRecords(await collect(wal), payloads);
  await wal.removeBefore(wal.lastLsn);
  assert.equal(readdirSync(dir).length, 1);
  truncateSync(last, size - 1);
  await wal.close();
  wal = await Wal.open({ dir });
  const got = await collect(wal, wal.firstLsn - 1);
  assert.ok(got.length > 0);
  assert.equal(got[got.length - 1]!.lsn, 59, 'the torn last record is cut');
  assert.deepEqual(got[0]!.payload, payloads[got[0]!.lsn - 1]);
  await wal.close();
});

test('real fs: damage before the tail is CORRUPTION naming the file and offset', async () => {
  const dir = realDir();
  const wal = await Wal.open({ dir });
  for (let i = 0; i < 5; i++) await wal.append(payload(100, i));
  await wal.close();
  const file = join(dir, segmentName(1));
  const fd = openSync(file, 'r+');
  writeSync(fd, Uint8Array.of(0xaa), 0, 1, 115 + 40);
  closeSync(fd);
  await assert.rejects(Wal.open({ dir }), (e) => e instanceof WalError && e.code === 'CORRUPTION' && e.file === file && e.offset === 115);
});
