import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { mapFile, type MappedFile } from '../io/mmap.js';
import { nodeFileLayer } from '../io/file-layer.js';
import { BlobArena, type BlobRef } from '../src/arena/arena.js';
import { frameDamageAt, frameLength, frameSize } from '../src/arena/format.js';
import { rng } from '../src/random.js';
import { arenaSegmentPath } from '../src/store/files.js';

/**
 * Micro-benchmark of reading a rescoring candidate's full vector (a 2 KiB frame: 512 float32) out
 * of the vector arena, ns per frame, for frames picked at random among 50,000 (100 MB, more than
 * the CPU's caches hold, as in a search of a 50k store): through the segment's memory map with the
 * copy and the checksum in one native call (BlobArena.readFrameInto, what a search does), through
 * the map with the copy and then the checksum summed in JavaScript's call to the CRC
 * (io/crc32c.ts: what readFrameInto did before the addon summed as it copied), and with positioned
 * reads (no addon, or `mmap: false`); and one frame read again and again, which stays in the CPU's
 * caches (what the read itself costs beside fetching the frame from memory).
 *
 *   node dist/bench/frame-reads.bench.js
 */

const FRAMES = 50_000;
const PAYLOAD = 2048;
const PER_CALL = 16;

export async function runFrameReadsBench(write: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'memstore-frame-reads-'));
  try {
    const writer = await BlobArena.open({ dir, space: 'vectors', files: nodeFileLayer, generation: 1 });
    const next = rng(11);
    const payload = new Uint8Array(PAYLOAD);
    const refs: BlobRef[] = [];
    for (let i = 0; i < FRAMES; i++) {
      for (let j = 0; j < PAYLOAD; j += 4) payload[j] = Math.floor(next() * 256);
      refs.push(writer.append(payload));
      if (i % 1000 === 999) await writer.sync();
    }
    await writer.sync();
    await writer.close();
    const mapped = await BlobArena.open({ dir, space: 'vectors', files: nodeFileLayer, generation: 1, mapped: true });
    const positioned = await BlobArena.open({ dir, space: 'vectors', files: nodeFileLayer, generation: 1 });
    // The two calls of the path before: the segments mapped by hand, the frame checked by format.ts.
    const maps = new Map<number, MappedFile>();
    const fds: number[] = [];
    for (const s of new Set(refs.map((r) => r[1]))) {
      const fd = openSync(arenaSegmentPath(dir, 1, s, 'vectors'), 'r');
      fds.push(fd);
      maps.set(s, mapFile(fd)!);
    }
    const scratch = new Uint8Array(frameSize(PAYLOAD));
    const pick = rng(5);
    const picks = Int32Array.from({ length: 1 << 16 }, () => Math.floor(pick() * FRAMES));
    let at = 0;
    const nextRef = (): BlobRef => refs[picks[at++ & 0xffff]!]!;
    const bench = new Bench({ time: 800, warmupTime: 200 });
    bench.add('map, copy and checksum in one native call (readFrameInto)', () => {
      for (let i = 0; i < PER_CALL; i++) {
        const r = nextRef();
        if (!mapped.readFrameInto(r[0], r[1], r[2], PAYLOAD, scratch)) throw new Error('not read through the map');
      }
    });
    bench.add('map, copy, then the checksum through io/crc32c.ts', () => {
      for (let i = 0; i < PER_CALL; i++) {
        const r = nextRef();
        maps.get(r[1])!.copy(r[2], scratch);
        if (frameLength(scratch) !== PAYLOAD || frameDamageAt(scratch, 0, scratch.length, PAYLOAD, r[0], r[1], r[2]) !== undefined) throw new Error('damaged');
      }
    });
    const offsets = new Float64Array(PER_CALL);
    const batch: BlobRef[] = [];
    bench.add('the same, after one native call prefetching the 16 frames', () => {
      batch.length = 0;
      for (let i = 0; i < PER_CALL; i++) batch.push(nextRef());
      for (const m of maps) {
        let n = 0;
        for (const r of batch) if (r[1] === m[0]) offsets[n++] = r[2];
        m[1].prefetch!(offsets, n, frameSize(PAYLOAD));
      }
      for (const r of batch) {
        if (!mapped.readFrameInto(r[0], r[1], r[2], PAYLOAD, scratch)) throw new Error('not read through the map');
      }
    });
    const hot = refs[0]!;
    bench.add('map, one native call, the same frame again and again (in the CPU caches)', () => {
      for (let i = 0; i < PER_CALL; i++) {
        if (!mapped.readFrameInto(hot[0], hot[1], hot[2], PAYLOAD, scratch)) throw new Error('not read through the map');
      }
    });
    bench.add('positioned read (readFrameInto without maps)', () => {
      for (let i = 0; i < PER_CALL; i++) {
        const r = nextRef();
        if (!positioned.readFrameInto(r[0], r[1], r[2], PAYLOAD, scratch)) throw new Error('not read synchronously');
      }
    });
    await bench.run();
    write(`${FRAMES} frames of ${PAYLOAD} bytes, ${PER_CALL} picked at random per call`);
    write('| read | ns per frame (p50) |');
    write('|---|---:|');
    for (const task of bench.tasks) {
      const result = task.result;
      if (result === undefined || !('latency' in result)) throw new Error(`benchmark task ${task.name} did not complete`);
      write(`| ${task.name} | ${((result.latency.p50 * 1e6) / PER_CALL).toFixed(0)} |`);
    }
    for (const m of maps.values()) m.unmap();
    for (const fd of fds) closeSync(fd);
    await mapped.close();
    await positioned.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await runFrameReadsBench((line) => process.stdout.write(`${line}\n`));
