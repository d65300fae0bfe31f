/**
 * Reads through a memory map (ARENA.md, "Reads through a memory map"; io/mmap.ts): the native
 * addon's maps hold the file's bytes and nothing after unmapping, and a vector arena opened with
 * `mapped` reads every durable frame from its segment's map, checked as a positioned read is, maps a
 * growing segment again only once it grew by REMAP_BYTES, and unmaps whatever it closes. Skipped
 * where the addon is not built (no C compiler): the store then reads with positioned reads, which
 * every other test covers.
 */
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobArena, REMAP_BYTES, RESIDENCY_SAMPLE_MS, type BlobRef } from '../src/arena/arena.js';
import { FRAME_HEADER_SIZE, frameSize } from '../src/arena/format.js';
import { crc32c } from '../io/crc32c.js';
import { MemstoreError } from '../src/errors.js';
import { arenaSegmentPath } from '../src/store/files.js';
import { nodeFileLayer } from '../io/file-layer.js';
import { canMapFiles, mapFile, type MappedFile } from '../io/mmap.js';
import { CountingFiles } from './support/counting-files.js';
import { blob } from './support/arena-fixture.js';

const skip = canMapFiles() ? false : 'the memory-map addon is not built here';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'memstore-mmap-'));
}

/** Everything a map holds, copied out. */
function bytesOf(m: MappedFile): Uint8Array {
  const out = new Uint8Array(m.length);
  m.copy(0, out);
  return out;
}

const codeOf = (e: unknown): unknown => (e as { code?: unknown }).code;

/** A file of `bytes` named `name` in `dir`, mapped read-only (its descriptor closed: the map outlives it). */
function mappedBytes(dir: string, name: string, bytes: Uint8Array): MappedFile {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const fd = openSync(path, 'r');
  try {
    return mapFile(fd)!;
  } finally {
    closeSync(fd);
  }
}

const into = (arena: BlobArena, ref: BlobRef, scratch = new Uint8Array(frameSize(ref[3]))): Uint8Array | undefined =>
  arena.readFrameInto(ref[0], ref[1], ref[2], ref[3], scratch) ? scratch.subarray(FRAME_HEADER_SIZE) : undefined;

/**
 * Damages four frames of the closed vector arena in `dir` (2,048-byte blobs, `blob(2048, i)` at
 * refs[i]), one of each kind a read must find: a payload byte, the checksum, the length field, and
 * a whole frame copied over another place. Returns each kind with the frame it damaged.
 */
function damageFrames(dir: string, refs: readonly BlobRef[]): Array<[string, BlobRef]> {
  const damage: Array<[string, (fd: number) => void, BlobRef]> = [
    ['payload', (fd) => writeSync(fd, Uint8Array.of(0xff ^ blob(2048, 3)[100]!), 0, 1, refs[3]![2] + FRAME_HEADER_SIZE + 100), refs[3]!],
    ['checksum', (fd) => writeSync(fd, Uint8Array.of(0x5a), 0, 1, refs[5]![2] + 1), refs[5]!],
    ['length', (fd) => writeSync(fd, Uint8Array.of(0x01), 0, 1, refs[7]![2] + 5), refs[7]!],
    [
      // Frame 8's bytes over frame 9's: whole and well formed, but summed for another place.
      'moved',
      (fd) => {
        const bytes = new Uint8Array(frameSize(2048));
        const from = openSync(arenaSegmentPath(dir, 1, refs[8]![1], 'vectors'), 'r');
        readSync(from, bytes, 0, bytes.length, refs[8]![2]);
        closeSync(from);
        writeSync(fd, bytes, 0, bytes.length, refs[9]![2]);
      },
      refs[9]!,
    ],
  ];
  for (const [, hurt, ref] of damage) {
    const fd = openSync(arenaSegmentPath(dir, 1, ref[1], 'vectors'), 'r+');
    hurt(fd);
    closeSync(fd);
  }
  return damage.map(([what, , ref]) => [what, ref]);
}

describe('memory maps (io/mmap.ts)', { skip }, () => {
  it("a map holds the file's bytes as they were; unmapped (twice is fine), it holds none and copies nothing", () => {
    const dir = tempDir();
    const path = join(dir, 'f');
    writeFileSync(path, blob(10_000, 1));
    const fd = openSync(path, 'r+');
    try {
      const m = mapFile(fd)!;
      assert.deepEqual(bytesOf(m), blob(10_000, 1));
      const part = new Uint8Array(100);
      m.copy(9_900, part);
      assert.deepEqual(part, blob(10_000, 1).subarray(9_900));
      writeSync(fd, blob(100, 2), 0, 100, 10_000);
      assert.equal(m.length, 10_000, 'bytes appended later are not in the map');
      writeSync(fd, Uint8Array.of(7), 0, 1, 5);
      assert.equal(bytesOf(m)[5], 7, 'the map is shared: a write to mapped bytes shows');
      const again = mapFile(fd)!;
      assert.equal(again.length, 10_100);
      m.unmap();
      m.unmap();
      assert.equal(m.length, 0);
      assert.throws(() => m.copy(0, part), (e: unknown) => codeOf(e) === 'ECLOSED');
      assert.deepEqual(bytesOf(again).subarray(10_000), blob(100, 2), 'unmapping one map leaves the other');
      again.unmap();
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a copy past the end of the map, from a negative or fractional offset, or into anything but a Uint8Array is refused, and copies nothing', () => {
    const dir = tempDir();
    const m = mappedBytes(dir, 'g', blob(4096, 5));
    const part = new Uint8Array(16).fill(9);
    for (const offset of [4081, 4096, 1e20, -1, Number.NaN]) assert.throws(() => m.copy(offset, part), (e: unknown) => codeOf(e) === 'ERANGE', String(offset));
    assert.deepEqual(part, new Uint8Array(16).fill(9));
    m.copy(4080, part);
    assert.deepEqual(part, blob(4096, 5).subarray(4080));
    assert.throws(() => m.copy(0, new Float32Array(4) as unknown as Uint8Array), (e: unknown) => codeOf(e) === 'EINVAL');
    // Truncated, 0.5 would copy from 0: a fractional offset is refused instead.
    for (const offset of [0.5, 4079.999]) assert.throws(() => m.copy(offset, part), (e: unknown) => codeOf(e) === 'EINVAL', String(offset));
    assert.deepEqual(part, blob(4096, 5).subarray(4080), 'a refused copy wrote nothing');
    m.copy(0, new Uint8Array(0));
    m.unmap();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copyChecksummed() copies what copy() copies and returns the CRC-32C of the copy from `from` on, continuing `seed`: the number crc32c() gives, and the addon\'s table path gives', () => {
    const dir = tempDir();
    const addon = createRequire(import.meta.url)('../../native/build/Release/memstore_mmap.node') as Record<string, (...args: unknown[]) => unknown>;
    try {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 1, maxLength: 5000 }),
          fc.nat(),
          fc.nat(),
          fc.nat(),
          fc.integer({ min: 0, max: 0xffff_ffff }),
          (bytes, a, b, c, seed) => {
            const m = mappedBytes(dir, 'p', bytes);
            try {
              const offset = a % bytes.length;
              const length = b % (bytes.length - offset + 1);
              const from = c % (length + 1);
              const got = new Uint8Array(length);
              const crc = m.copyChecksummed!(offset, got, from, seed);
              assert.deepEqual(got, bytes.subarray(offset, offset + length));
              const want = crc32c(bytes, offset + from, offset + length, seed);
              assert.equal(crc, want);
              assert.equal(addon['crcTable']!(got, from, seed), want);
            } finally {
              m.unmap();
            }
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('copyChecksummed() sums three lanes of 256 bytes side by side and joins them: at every length around a join (767 to 769, 1,535 to 1,537, a 512-d frame of 2,052 bytes, 4,104) and every start, the CRC-32C crc32c() gives', () => {
    const dir = tempDir();
    const addon = createRequire(import.meta.url)('../../native/build/Release/memstore_mmap.node') as Record<string, (...args: unknown[]) => unknown>;
    const bytes = blob(4200, 9);
    const m = mappedBytes(dir, 'lanes', bytes);
    try {
      for (const length of [767, 768, 769, 1535, 1536, 1537, 2052, 2304, 4104]) {
        for (const [offset, from, seed] of [[0, 0, 0], [3, 4, 0x1234_5678], [96, 1, 0xffff_ffff]] as const) {
          const got = new Uint8Array(length);
          const want = crc32c(bytes, offset + from, offset + length, seed);
          assert.equal(m.copyChecksummed!(offset, got, from, seed), want, `length ${length} at ${offset} from ${from}`);
          assert.equal(addon['crcTable']!(got, from, seed), want, `the table path, length ${length}`);
        }
      }
    } finally {
      m.unmap();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('copyChecksummed() refuses what copy() refuses, a `from` past the target (ERANGE) and a seed that is not a uint32 (EINVAL), and copies nothing then', () => {
    const dir = tempDir();
    const m = mappedBytes(dir, 'c', blob(4096, 8));
    const part = new Uint8Array(16).fill(9);
    const fails = (code: string, f: () => unknown, what: string) => assert.throws(f, (e: unknown) => codeOf(e) === code, what);
    for (const offset of [4081, -1, Number.NaN]) fails('ERANGE', () => m.copyChecksummed!(offset, part, 0, 0), `offset ${offset}`);
    fails('EINVAL', () => m.copyChecksummed!(0.5, part, 0, 0), 'a fractional offset');
    for (const from of [17, -1, 1.5]) fails('ERANGE', () => m.copyChecksummed!(0, part, from, 0), `from ${from}`);
    for (const seed of [-1, 2 ** 32, 0.5]) fails('EINVAL', () => m.copyChecksummed!(0, part, 0, seed), `seed ${seed}`);
    fails('EINVAL', () => m.copyChecksummed!(0, new Float32Array(4) as unknown as Uint8Array, 0, 0), 'a Float32Array');
    assert.deepEqual(part, new Uint8Array(16).fill(9), 'a refused call copied nothing');
    assert.equal(m.copyChecksummed!(0, new Uint8Array(0), 0, 77), 77, 'nothing summed: the seed itself');
    m.unmap();
    fails('ECLOSED', () => m.copyChecksummed!(0, part, 0, 0), 'after unmap');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a descriptor that cannot be mapped for reading (write-only) is the platform\'s EACCES, not a generic code', () => {
    const dir = tempDir();
    const path = join(dir, 'w');
    writeFileSync(path, blob(64, 7));
    const fd = openSync(path, 'w');
    writeSync(fd, blob(64, 7));
    assert.throws(() => mapFile(fd), (e: unknown) => codeOf(e) === 'EACCES');
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it("an empty file has no map; a closed descriptor is the platform's error, with its code", () => {
    const dir = tempDir();
    const path = join(dir, 'empty');
    writeFileSync(path, new Uint8Array(0));
    const fd = openSync(path, 'r');
    assert.equal(mapFile(fd), undefined);
    closeSync(fd);
    assert.throws(() => mapFile(fd), (e: unknown) => e instanceof Error && (e as { code?: unknown }).code === 'EBADF');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the addon itself refuses calls io/mmap.ts never makes: a missing argument, a region not from map(), a negative fd, an offset, a from or a seed not a number, prefetch offsets not a Float64Array, residency into anything but a Uint8Array (EINVAL), a from past the bytes, a count past the offsets, residency into fewer bytes than pages (ERANGE); residency of an unmapped region is ECLOSED', () => {
    const addon = createRequire(import.meta.url)('../../native/build/Release/memstore_mmap.node') as Record<string, (...args: unknown[]) => unknown>;
    const dir = tempDir();
    const path = join(dir, 'h');
    writeFileSync(path, blob(64, 6));
    const fd = openSync(path, 'r');
    const region = addon['map']!(fd);
    const einval = (e: unknown) => codeOf(e) === 'EINVAL';
    assert.throws(() => addon['map']!(-1), einval);
    // Not truncated to the descriptor below it (1.5 would map stdout).
    assert.throws(() => addon['map']!(fd + 0.5), einval);
    assert.throws(() => addon['size']!(), einval);
    assert.throws(() => addon['size']!({}), einval);
    assert.throws(() => addon['unmap']!(fd), einval);
    assert.throws(() => addon['copy']!(region, 0), einval);
    assert.throws(() => addon['copy']!(region, '0', new Uint8Array(4)), einval);
    assert.throws(() => addon['copy']!(region, 0, [0, 0]), einval);
    const erange = (e: unknown) => codeOf(e) === 'ERANGE';
    assert.throws(() => addon['copyCrc']!(region, 0, new Uint8Array(4), '0', 0), einval, 'from not a number');
    assert.throws(() => addon['copyCrc']!(region, 0, new Uint8Array(4), 0, '0'), einval, 'seed not a number');
    assert.throws(() => addon['copyCrc']!(region, 0, new Uint8Array(4), 0), einval, 'no seed');
    assert.throws(() => addon['crcTable']!(), einval, 'no arguments');
    assert.throws(() => addon['crcTable']!([1, 2], 0, 0), einval, 'not a typed array');
    assert.throws(() => addon['crcTable']!(new Float32Array(2), 0, 0), einval, 'not a Uint8Array');
    assert.throws(() => addon['crcTable']!(new Uint8Array(2), 3, 0), erange, 'from past the bytes');
    assert.throws(() => addon['crcTable']!(new Uint8Array(2), 0.5, 0), erange, 'a fractional from');
    assert.throws(() => addon['crcTable']!(new Uint8Array(2), 0, 2 ** 32), einval, 'a seed past uint32');
    assert.throws(() => addon['crcTable']!(new Uint8Array(2), 0, '1'), einval, 'a seed not a number');
    assert.equal(addon['crcTable']!(new Uint8Array(2), 2, 99), 99, 'nothing summed: the seed itself');
    const offsets = Float64Array.of(0, 8);
    assert.throws(() => addon['prefetch']!(region, offsets, 2), einval, 'prefetch without bytes');
    assert.throws(() => addon['prefetch']!(region, [0, 8], 2, 8), einval, 'offsets not a typed array');
    assert.throws(() => addon['prefetch']!(region, Int32Array.of(0, 8), 2, 8), einval, 'offsets not a Float64Array');
    assert.throws(() => addon['prefetch']!(region, offsets, 3, 8), erange, 'a count past the offsets');
    assert.throws(() => addon['prefetch']!(region, offsets, 1.5, 8), erange, 'a fractional count');
    assert.throws(() => addon['prefetch']!(region, offsets, 2, -8), einval, 'negative bytes');
    assert.throws(() => addon['prefetch']!({}, offsets, 2, 8), einval, 'a region not from map()');
    // Only a hint: places outside the map (past its end, negative, fractional, NaN, a range running past it) are skipped, not refused.
    assert.equal(addon['prefetch']!(region, Float64Array.of(64, -1, 0.5, NaN, 60, 2 ** 60, 0), 7, 8), undefined);
    const page = addon['pageSize']!() as number;
    assert.ok(page >= 4096 && (page & (page - 1)) === 0, 'a page is a power of two, 4 KiB or more');
    assert.throws(() => addon['residency']!(region), einval, 'residency without out');
    assert.throws(() => addon['residency']!(region, new Int8Array(1)), einval, 'out not a Uint8Array');
    assert.throws(() => addon['residency']!(region, new Uint8Array(0)), erange, 'out shorter than the pages');
    const out = new Uint8Array(2).fill(7);
    assert.equal(addon['residency']!(region, out), 1, 'a 64-byte file is one page');
    assert.equal(out[0], 1, 'just written: in the page cache');
    assert.equal(out[1], 7, 'nothing written past the pages');
    assert.equal(addon['size']!(region), 64, 'the region still works after the refused calls');
    addon['unmap']!(region);
    assert.throws(() => addon['residency']!(region, out), (e: unknown) => codeOf(e) === 'ECLOSED', 'residency of an unmapped region');
    assert.equal(addon['prefetch']!(region, offsets, 2, 8), undefined, 'an unmapped region prefetches nothing, and does not throw');
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('gather() copies each frame\'s head to its row of `heads`, the rest to its row of `target` with zeros up to the stride, and sums it from `from` on, continuing the CRC of its offset (8 bytes, little-endian) continuing `prefix`: what copy() and crc32c() give', () => {
    const dir = tempDir();
    try {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 16, maxLength: 3000 }),
          fc.integer({ min: 0, max: 0xffff_ffff }),
          fc.nat(),
          fc.nat(),
          fc.nat(),
          fc.nat({ max: 40 }),
          fc.array(fc.nat(), { minLength: 0, maxLength: 8 }),
          (bytes, prefix, f, h, fr, pad, picks) => {
            const m = mappedBytes(dir, 'g', bytes);
            try {
              const frame = f % (bytes.length + 1);
              const head = h % (frame + 1);
              const from = fr % (frame + 1);
              const stride = frame - head + pad;
              const rows = picks.length;
              // Rows in reverse order of the offsets: a row is where the caller wants it, not the call's order.
              const offsets = picks.map((p) => p % (bytes.length - frame + 1));
              const spec = Float64Array.from([prefix, frame, head, from, stride, ...offsets.flatMap((o, i) => [o, rows - 1 - i])]);
              const target = new Uint8Array(rows * stride).fill(0xee);
              const heads = new Uint8Array(rows * head).fill(0xee);
              const sums = new Uint32Array(rows);
              m.gather!(spec, rows, target, heads, sums);
              for (const [i, o] of offsets.entries()) {
                const row = rows - 1 - i;
                assert.deepEqual(heads.subarray(row * head, (row + 1) * head), bytes.subarray(o, o + head));
                assert.deepEqual(target.subarray(row * stride, row * stride + frame - head), bytes.subarray(o + head, o + frame));
                assert.ok(target.subarray(row * stride + frame - head, (row + 1) * stride).every((b) => b === 0), 'zeros up to the stride');
                const place = new Uint8Array(8);
                new DataView(place.buffer).setUint32(0, o % 2 ** 32, true);
                new DataView(place.buffer).setUint32(4, Math.floor(o / 2 ** 32), true);
                assert.equal(sums[row], crc32c(bytes, o + from, o + frame, crc32c(place, 0, 8, prefix)));
              }
            } finally {
              m.unmap();
            }
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gather() refuses, before copying anything, a spec that is not a Float64Array, target or heads not a Uint8Array, sums not a Uint32Array, a prefix not a uint32, head or from past the frame, a stride short of the frame\'s rest (EINVAL); a count past the spec, a frame past the map, a row past target, heads or sums (ERANGE); an unmapped region (ECLOSED)', () => {
    const addon = createRequire(import.meta.url)('../../native/build/Release/memstore_mmap.node') as Record<string, (...args: unknown[]) => unknown>;
    const dir = tempDir();
    const path = join(dir, 'g');
    writeFileSync(path, blob(64, 8));
    const fd = openSync(path, 'r');
    const region = addon['map']!(fd);
    const einval = (e: unknown) => codeOf(e) === 'EINVAL';
    const erange = (e: unknown) => codeOf(e) === 'ERANGE';
    // Two frames of 16 bytes, heads of 4, summed from 2, rows of 12: the second at offset 48, row 1, the first at 0, row 0.
    const good = () => Float64Array.of(7, 16, 4, 2, 12, 48, 1, 0, 0);
    const target = new Uint8Array(24).fill(0xee);
    const heads = new Uint8Array(8).fill(0xee);
    const sums = new Uint32Array(2);
    const call = (spec: unknown, count: unknown = 2, t: unknown = target, h: unknown = heads, s: unknown = sums) => addon['gather']!(region, spec, count, t, h, s);
    const edited = (at: number, value: number) => {
      const spec = good();
      spec[at] = value;
      return spec;
    };
    const refused: Array<[string, () => unknown, (e: unknown) => boolean]> = [
      ['no arguments past the region', () => addon['gather']!(region), einval],
      ['a region not from map()', () => addon['gather']!({}, good(), 2, target, heads, sums), einval],
      ['spec not a typed array', () => call([...good()]), einval],
      ['spec not a Float64Array', () => call(Float32Array.from(good())), einval],
      ['target not a Uint8Array', () => call(good(), 2, new Int8Array(24)), einval],
      ['heads not a Uint8Array', () => call(good(), 2, target, [0]), einval],
      ['sums not a Uint32Array', () => call(good(), 2, target, heads, new Int32Array(2)), einval],
      ['a count not a number', () => call(good(), '2'), einval],
      ['a prefix past uint32', () => call(edited(0, 2 ** 32)), einval],
      ['a fractional prefix', () => call(edited(0, 1.5)), einval],
      ['a head past the frame', () => call(edited(2, 17)), einval],
      ['a from past the frame', () => call(edited(3, 17)), einval],
      ['a stride short of the rest', () => call(edited(4, 11)), einval],
      ['a fractional frame', () => call(edited(1, 15.5)), einval],
      ['a count past the spec', () => call(good(), 3), erange],
      ['a fractional count', () => call(good(), 1.5), erange],
      ['a spec shorter than its five numbers', () => call(Float64Array.of(7, 16, 4, 2), 0), erange],
      ['a frame past the map', () => call(edited(5, 49)), erange],
      ['a negative offset', () => call(edited(5, -1)), erange],
      ['a fractional offset', () => call(edited(5, 0.5)), erange],
      ['a row past the target', () => call(good(), 2, new Uint8Array(23)), erange],
      ['a row past the heads', () => call(good(), 2, target, new Uint8Array(7)), erange],
      ['a row past the sums', () => call(good(), 2, target, heads, new Uint32Array(1)), erange],
      ['a fractional row', () => call(edited(6, 0.5)), erange],
      ['a negative row', () => call(edited(8, -1)), erange],
    ];
    for (const [what, f, code] of refused) {
      assert.throws(f, code, what);
      assert.ok(target.every((b) => b === 0xee) && heads.every((b) => b === 0xee) && sums.every((x) => x === 0), `${what}: nothing copied`);
    }
    assert.equal(call(good(), 0), undefined, 'no frames: nothing to do');
    assert.equal(call(good()), undefined);
    assert.deepEqual(heads, Uint8Array.of(...blob(64, 8).subarray(0, 4), ...blob(64, 8).subarray(48, 52)));
    addon['unmap']!(region);
    assert.throws(() => call(good()), (e: unknown) => codeOf(e) === 'ECLOSED', 'an unmapped region');
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the node file layer offers map() exactly where the addon is built', async () => {
    const dir = tempDir();
    const handle = await nodeFileLayer.open(join(dir, 'x'), 'create');
    await handle.write(blob(64, 3), 0);
    const m = handle.map!()!;
    assert.deepEqual(bytesOf(m), blob(64, 3));
    m.unmap();
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a vector arena read through maps (BlobArena mapped)', { skip }, () => {
  async function filled(files: CountingFiles, segmentBytes = 64 << 10): Promise<{ dir: string; arena: BlobArena; refs: BlobRef[] }> {
    const dir = tempDir();
    const arena = await BlobArena.open({ dir, space: 'vectors', files: files.layer, generation: 1, segmentBytes, mapped: true });
    const refs: BlobRef[] = [];
    for (let i = 0; i < 100; i++) refs.push(arena.append(blob(2048, i)));
    await arena.sync();
    return { dir, arena, refs };
  }

  it('every durable frame reads through its segment\'s map, once mapped, with no system call, as a positioned read gets it', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    const segments = new Set(refs.map((r) => r[1]));
    assert.ok(segments.size >= 3, 'the frames span several segments');
    for (const [i, ref] of refs.entries()) assert.deepEqual(into(arena, ref), blob(2048, i));
    assert.equal(files.readSyncs, 0);
    assert.equal(files.maps.length, segments.size, 'one map per segment');
    const plain = await BlobArena.open({ dir, space: 'vectors', files: nodeFileLayer, generation: 1 });
    for (const ref of refs) assert.deepEqual(into(plain, ref), into(arena, ref));
    await plain.close();
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`a segment still growing is read with system calls past its map, and mapped again once it grew by ${REMAP_BYTES >> 20} MiB`, async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files, 64 << 20);
    assert.deepEqual(into(arena, refs[0]!), blob(2048, 0));
    assert.equal(files.maps.length, 1);
    const next = arena.append(blob(2048, 500));
    await arena.sync();
    assert.deepEqual(into(arena, next), blob(2048, 500));
    assert.equal(files.readSyncs, 1, 'past the map, under REMAP_BYTES more: a positioned read');
    assert.equal(files.maps.length, 1);
    const more: BlobRef[] = [];
    for (let i = 0; i * 2048 < REMAP_BYTES; i++) more.push(arena.append(blob(2048, 1000 + i)));
    await arena.sync();
    assert.deepEqual(into(arena, more.at(-1)!), blob(2048, 1000 + more.length - 1));
    assert.equal(files.maps.length, 2, 'mapped again');
    assert.equal(files.maps[0]!.length, 0, 'the old map is gone');
    assert.deepEqual(into(arena, next), blob(2048, 500));
    assert.equal(files.readSyncs, 1);
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('readNow() reads through the map too (a text arena\'s reads, and vectors past the shared frame)', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    for (const [i, ref] of refs.entries()) assert.deepEqual(arena.readNow(ref), blob(2048, i));
    assert.equal(files.readSyncs, 0);
    assert.ok(files.maps.length > 0);
    const pending = arena.append(blob(100, 9));
    assert.deepEqual(arena.readNow(pending), blob(100, 9), 'not fsynced yet: copied from memory');
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('damage in a mapped frame is CORRUPTION with the file and offset, as a positioned read reports it', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    const ref = refs[1]!;
    assert.deepEqual(into(arena, ref), blob(2048, 1));
    const path = arenaSegmentPath(dir, 1, ref[1], 'vectors');
    const fd = openSync(path, 'r+');
    writeSync(fd, Uint8Array.of(0xff ^ blob(2048, 1)[9]!), 0, 1, ref[2] + FRAME_HEADER_SIZE + 9);
    closeSync(fd);
    for (const attempt of [() => into(arena, ref), () => arena.readNow(ref)]) {
      assert.throws(attempt, (e: unknown) => e instanceof MemstoreError && e.code === 'CORRUPTION' && e.file === path && e.offset === ref[2]);
    }
    assert.deepEqual(into(arena, refs[0]!), blob(2048, 0), 'the frames around it still read');
    assert.equal(files.readSyncs, 0);
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const copyOnly of [false, true]) {
    it(`every kind of damage a positioned read finds, a read through the map finds at the same offset: a payload byte, the checksum, the length field, a whole frame copied to another place${copyOnly ? ' (maps that offer copy() alone, checked after the copy)' : ''}`, async () => {
      const files = new CountingFiles();
      const { dir, arena, refs } = await filled(files);
      await arena.close();
      const damage = damageFrames(dir, refs);
      const mappedFiles = new CountingFiles();
      mappedFiles.copyOnly = copyOnly;
      const mapped = await BlobArena.open({ dir, space: 'vectors', files: mappedFiles.layer, generation: 1, segmentBytes: 64 << 10, mapped: true });
      const plain = await BlobArena.open({ dir, space: 'vectors', files: nodeFileLayer, generation: 1, segmentBytes: 64 << 10 });
      // Opening scans the active segment with positioned reads; the reads below are counted from here.
      const opened = mappedFiles.readSyncs;
      const failure = (f: () => unknown): { code: unknown; offset: unknown; file: unknown } | undefined => {
        try {
          f();
          return undefined;
        } catch (e) {
          return { code: codeOf(e), offset: (e as MemstoreError).offset, file: (e as MemstoreError).file };
        }
      };
      for (const [what, ref] of damage) {
        const viaMap = failure(() => into(mapped, ref));
        assert.equal(viaMap?.code, 'CORRUPTION', what);
        assert.equal(viaMap?.offset, ref[2], what);
        assert.deepEqual(viaMap, failure(() => into(plain, ref)), `${what}: as a positioned read reports it`);
      }
      for (const i of [0, 4, 6, 10, 99]) assert.deepEqual(into(mapped, refs[i]!), blob(2048, i), `frame ${i} is untouched`);
      assert.equal(mappedFiles.readSyncs, opened, 'every read went through a map');
      assert.ok(mappedFiles.maps.length > 0);
      await mapped.close();
      await plain.close();
      rmSync(dir, { recursive: true, force: true });
    });
  }

  it('a segment the platform refuses to map is read with positioned reads, the same bytes, and counted as refused; the others map', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    const first = refs[0]!;
    const other = refs.find((r) => r[1] !== first[1])!;
    files.mapFailure = Object.assign(new Error('Cannot allocate memory'), { code: 'ENOMEM' });
    assert.deepEqual(into(arena, first), blob(2048, 0));
    assert.deepEqual(arena.readNow(first), blob(2048, 0));
    assert.equal(files.readSyncs, 2, 'read with positioned reads');
    assert.deepEqual(arena.stats().mapsRefused, 1);
    files.mapFailure = undefined;
    assert.deepEqual(into(arena, first), blob(2048, 0));
    assert.equal(files.readSyncs, 3, 'a refused segment is not mapped again');
    assert.deepEqual(into(arena, other), blob(2048, refs.indexOf(other)));
    assert.equal(files.readSyncs, 3, 'another segment maps');
    assert.equal(arena.stats().mappedSegments, 1, 'stats() counts the segment mapped now');
    await arena.close();
    assert.equal(arena.stats().mappedSegments, 0, 'closed: nothing mapped');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a segment no longer appended to is mapped again at the first read past its map, however little it grew', async () => {
    const files = new CountingFiles();
    const dir = tempDir();
    const arena = await BlobArena.open({ dir, space: 'vectors', files: files.layer, generation: 1, segmentBytes: 64 << 10, mapped: true });
    const early = arena.append(blob(2048, 0));
    await arena.sync();
    assert.deepEqual(into(arena, early), blob(2048, 0));
    assert.equal(files.maps.length, 1);
    // Filled to its end (well under REMAP_BYTES more), then appends move on to the next segment.
    const later: BlobRef[] = [];
    for (let i = 1; later.length === 0 || later.at(-1)![1] === early[1]; i++) later.push(arena.append(blob(2048, i)));
    await arena.sync();
    const tail = later.at(-2)!;
    assert.equal(tail[1], early[1], 'the last frame of the first segment');
    for (let round = 0; round < 3; round++) assert.deepEqual(into(arena, tail), blob(2048, later.length - 1));
    assert.equal(files.readSyncs, 0, 'no positioned read: the sealed segment was mapped again, once');
    assert.equal(files.maps.length, 2);
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('closing, and finishing a collection, unmap the segments they close; the new generation is mapped when read', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    for (const ref of refs) into(arena, ref);
    const before = files.maps.length;
    const { generation, refs: moved } = await arena.collect(refs.slice(0, 10).map((r, i) => [String(i), r] as const));
    await arena.finishCollect(generation);
    assert.ok(files.maps.slice(0, before).every((m) => m.length === 0), 'the old generation\'s maps are gone with it');
    for (let i = 0; i < 10; i++) assert.deepEqual(into(arena, moved.get(String(i))!), blob(2048, i));
    assert.ok(files.maps.length > before);
    await arena.close();
    assert.ok(files.maps.every((m) => m.length === 0), 'close unmaps every segment');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prefetchFrames() asks each mapped segment once for the offsets of its frames among the places, in their order, a frame\'s bytes each; skips places it does not know; reads after it get the same bytes', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    for (const ref of refs) into(arena, ref);
    const segments = [...new Set(refs.map((r) => r[1]))];
    assert.ok(segments.length >= 3, 'the frames span several segments');
    // Interleaved across segments, with a generation and a segment the arena does not hold.
    const picked = [refs[90]!, refs[1]!, refs[50]!, refs[2]!, refs[91]!, refs[51]!];
    const places: [number, number, number][] = [...picked.map((r): [number, number, number] => [r[0], r[1], r[2]]), [7, picked[0]![1], 0], [1, 999, 0]];
    files.prefetches.length = 0;
    arena.prefetchFrames(places, places.length, 2048);
    const bySegment = new Map<number, number[]>();
    for (const r of picked) bySegment.set(r[1], [...(bySegment.get(r[1]) ?? []), r[2]]);
    assert.deepEqual(
      files.prefetches.map((p) => p.offsets),
      [...bySegment.values()],
      'one call per segment, its offsets in the places\' order',
    );
    assert.ok(files.prefetches.every((p) => p.bytes === frameSize(2048)));
    assert.equal(new Set(files.prefetches.map((p) => p.map)).size, bySegment.size, 'each to its own segment\'s map');
    // Only the first `count` places are taken.
    files.prefetches.length = 0;
    arena.prefetchFrames(places, 1, 2048);
    assert.deepEqual(files.prefetches.map((p) => p.offsets), [[picked[0]![2]]]);
    files.prefetches.length = 0;
    arena.prefetchFrames(places, 0, 2048);
    assert.equal(files.prefetches.length, 0);
    for (const [i, ref] of refs.entries()) assert.deepEqual(into(arena, ref), blob(2048, i));
    await arena.close();
    arena.prefetchFrames(places, places.length, 2048);
    assert.equal(files.prefetches.length, 0, 'a closed arena asks nothing');
    rmSync(dir, { recursive: true, force: true });
  });

  it('gatherFrames() puts each frame\'s payload in its row of the target (the place\'s index), zeros after it up to the stride, through one gather() per segment, mapping a segment as a read would; what readFrameInto() reads', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    const segments = new Set(refs.map((r) => r[1]));
    assert.ok(segments.size >= 3, 'the frames span several segments');
    const picked = [refs[90]!, refs[1]!, refs[50]!, refs[2]!, refs[91]!, refs[51]!, refs[99]!];
    const places = picked.map((r): [number, number, number] => [r[0], r[1], r[2]]);
    const stride = 2048 + 12;
    const target = new Uint8Array(picked.length * stride).fill(0xee);
    assert.equal(arena.gatherFrames(places, places.length, 2048, target, stride), true);
    for (const [row, ref] of picked.entries()) {
      assert.deepEqual(target.subarray(row * stride, row * stride + 2048), blob(2048, refs.indexOf(ref)), `row ${row}`);
      assert.ok(target.subarray(row * stride + 2048, (row + 1) * stride).every((b) => b === 0), `row ${row}: zeros after it`);
    }
    const bySegment = new Map<number, { offsets: number[]; rows: number[] }>();
    for (const [row, r] of picked.entries()) {
      const entry = bySegment.get(r[1]) ?? { offsets: [], rows: [] };
      entry.offsets.push(r[2]);
      entry.rows.push(row);
      bySegment.set(r[1], entry);
    }
    assert.deepEqual(files.gathers.map((g) => ({ offsets: g.offsets, rows: g.rows })), [...bySegment.values()], 'one call per segment, its frames in the places\' order');
    assert.equal(files.maps.length, bySegment.size, 'each segment mapped at its first gather');
    assert.equal(files.readSyncs, 0);
    // Only the first `count` places; none at all is nothing to do.
    files.gathers.length = 0;
    assert.equal(arena.gatherFrames(places, 1, 2048, target, stride), true);
    assert.deepEqual(files.gathers.map((g) => g.offsets), [[picked[0]![2]]]);
    files.gathers.length = 0;
    assert.equal(arena.gatherFrames(places, 0, 2048, new Uint8Array(0), stride), true);
    assert.equal(files.gathers.length, 0);
    assert.throws(() => arena.gatherFrames(places, 2, 2048, target, 2047), (e: unknown) => codeOf(e) === 'INVALID_ARGUMENT', 'a stride short of a payload');
    assert.throws(() => arena.gatherFrames(places, 2, 2048, new Uint8Array(stride), stride), (e: unknown) => codeOf(e) === 'INVALID_ARGUMENT', 'a target short of its rows');
    await arena.close();
    assert.throws(() => arena.gatherFrames(places, 1, 2048, target, stride), (e: unknown) => codeOf(e) === 'CLOSED');
    rmSync(dir, { recursive: true, force: true });
  });

  it('gatherFrames() says false when any one frame cannot be gathered (a place the arena does not know, past its segment, still in memory; maps without gather(); no `mapped`) or fails its check (a payload byte, the checksum, the length field, a frame copied to another place): readFrameInto() then reads it, or reports its damage, as always', async () => {
    const stride = 2048;
    const target = new Uint8Array(4 * stride);
    const placeOf = (r: BlobRef): [number, number, number] => [r[0], r[1], r[2]];
    {
      const files = new CountingFiles();
      const { dir, arena, refs } = await filled(files);
      const good = placeOf(refs[3]!);
      for (const [what, odd] of [
        ['another generation', [7, good[1], good[2]]],
        ['no such segment', [1, 999, 0]],
        ['past the end of its segment', [1, good[1], 1 << 20]],
      ] as const) {
        assert.equal(arena.gatherFrames([good, [...odd]], 2, 2048, target, stride), false, what);
      }
      // Appended, not synced: still in memory, where readFrameInto() does not read it either.
      const fresh = arena.append(blob(2048, 500));
      assert.equal(arena.gatherFrames([good, placeOf(fresh)], 2, 2048, target, stride), false, 'a frame still in memory');
      assert.equal(into(arena, fresh), undefined);
      await arena.sync();
      assert.equal(arena.gatherFrames([good, placeOf(fresh)], 2, 2048, target, stride), true, 'synced, it is gathered');
      assert.deepEqual(target.subarray(stride, 2 * stride), blob(2048, 500));
      await arena.close();
      for (const noGather of [true, false]) {
        const other = new CountingFiles();
        other.noGather = noGather;
        other.copyOnly = !noGather;
        const again = await BlobArena.open({ dir, space: 'vectors', files: other.layer, generation: 1, segmentBytes: 64 << 10, mapped: true });
        assert.equal(again.gatherFrames([good], 1, 2048, target, stride), false, noGather ? 'maps without gather()' : 'maps offering copy() alone');
        assert.deepEqual(into(again, refs[3]!), blob(2048, 3));
        await again.close();
      }
      const plain = await BlobArena.open({ dir, space: 'vectors', files: nodeFileLayer, generation: 1, segmentBytes: 64 << 10 });
      assert.equal(plain.gatherFrames([good], 1, 2048, target, stride), false, 'not opened `mapped`');
      await plain.close();
      rmSync(dir, { recursive: true, force: true });
    }
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    await arena.close();
    const damage = damageFrames(dir, refs);
    const mapped = await BlobArena.open({ dir, space: 'vectors', files: files.layer, generation: 1, segmentBytes: 64 << 10, mapped: true });
    const whole = [0, 4, 6, 10].map((i) => placeOf(refs[i]!));
    assert.equal(mapped.gatherFrames(whole, whole.length, 2048, target, stride), true, 'the frames around the damage gather');
    for (const [what, ref] of damage) {
      assert.equal(mapped.gatherFrames([whole[0]!, placeOf(ref), whole[1]!], 3, 2048, target, stride), false, what);
      assert.throws(() => into(mapped, ref), (e: unknown) => codeOf(e) === 'CORRUPTION' && (e as MemstoreError).offset === ref[2], `${what}: readFrameInto() reports it`);
    }
    await mapped.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('frameResident() says whether a frame would be copied out of memory: true once its segment is mapped and the kernel holds its pages; false before the first read maps it, past a map, for a place it does not know, with maps that cannot say or say no, and without `mapped`', async () => {
    const files = new CountingFiles();
    const { dir, arena, refs } = await filled(files);
    const [g, s, offset] = refs[0]!;
    assert.equal(arena.frameResident(g, s, offset, 2048), false, 'not mapped before its first read');
    into(arena, refs[0]!);
    assert.equal(arena.frameResident(g, s, offset, 2048), true, 'mapped, and just written: in the page cache');
    assert.equal(arena.frameResident(g + 1, s, offset, 2048), false, 'another generation');
    assert.equal(arena.frameResident(g, 999, 0, 2048), false, 'no such segment');
    assert.equal(arena.frameResident(g, s, 64 << 10, 2048), false, 'past the map');
    assert.equal(arena.frameResident(g, s, -8, 2048), false, 'a negative offset');
    await arena.close();
    assert.equal(arena.frameResident(g, s, offset, 2048), false, 'closed');
    const none = new CountingFiles();
    none.residency = 'none';
    const denied = await BlobArena.open({ dir, space: 'vectors', files: none.layer, generation: 1, mapped: true });
    into(denied, refs[0]!);
    assert.equal(denied.frameResident(g, s, offset, 2048), false, 'the map says its pages are not resident');
    await denied.close();
    const copyOnly = new CountingFiles();
    copyOnly.copyOnly = true;
    const silent = await BlobArena.open({ dir, space: 'vectors', files: copyOnly.layer, generation: 1, mapped: true });
    into(silent, refs[0]!);
    assert.equal(silent.frameResident(g, s, offset, 2048), false, 'a map that cannot say');
    await silent.close();
    const plain = await BlobArena.open({ dir, space: 'vectors', files: nodeFileLayer, generation: 1 });
    into(plain, refs[0]!);
    assert.equal(plain.frameResident(g, s, offset, 2048), false, 'not opened mapped');
    await plain.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`frameResident() asks each segment's map at most once every ${RESIDENCY_SAMPLE_MS} ms, and answers every frame from that sample, page by page`, async () => {
    const files = new CountingFiles();
    let resident = (page: number): boolean => page % 2 === 0;
    files.residency = (out) => {
      for (let i = 0; i < out.length; i++) out[i] = resident(i) ? 1 : 0;
    };
    const { dir, arena, refs } = await filled(files);
    into(arena, refs[0]!);
    const pageBytes = files.maps[0]!.pageBytes!;
    const inSegment = refs.filter((r) => r[1] === refs[0]![1]);
    const wholeIn = (r: BlobRef, ok: (page: number) => boolean) => {
      for (let p = Math.floor(r[2] / pageBytes); p <= Math.floor((r[2] + frameSize(r[3]) - 1) / pageBytes); p++) if (!ok(p)) return false;
      return true;
    };
    const calls = files.residencyCalls;
    for (const r of inSegment) assert.equal(arena.frameResident(r[0], r[1], r[2], r[3]), wholeIn(r, resident), `frame at ${r[2]}`);
    assert.ok(inSegment.some((r) => wholeIn(r, resident)) && inSegment.some((r) => !wholeIn(r, resident)), 'some frames on resident pages, some not');
    assert.equal(files.residencyCalls, calls + 1, 'one sample for every frame of the segment');
    resident = () => true;
    for (const r of inSegment) assert.equal(arena.frameResident(r[0], r[1], r[2], r[3]), wholeIn(r, (p) => p % 2 === 0), 'the sample stands');
    await new Promise((done) => setTimeout(done, RESIDENCY_SAMPLE_MS + 50));
    for (const r of inSegment) assert.equal(arena.frameResident(r[0], r[1], r[2], r[3]), true, 'sampled again');
    assert.equal(files.residencyCalls, calls + 2);
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without `mapped` (the default) nothing is mapped: every read is a positioned read', async () => {
    const files = new CountingFiles();
    const dir = tempDir();
    const arena = await BlobArena.open({ dir, space: 'vectors', files: files.layer, generation: 1 });
    const ref = arena.append(blob(2048, 7));
    await arena.sync();
    assert.deepEqual(into(arena, ref), blob(2048, 7));
    assert.equal(files.maps.length, 0);
    assert.equal(files.readSyncs, 1);
    await arena.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
