import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FaultFileLayer } from './support/fault-layer.js';
import { Wal, WalError, type Durability, type WalRecord } from '../wal/index.js';
import { rng } from '../src/random.js';

const DIR = '/db/wal';

/** Payload number `index`: its first bytes name it, the rest is derived from it, so any mix-up shows. */
function payload(index: number, size: number): Uint8Array {
  const out = new Uint8Array(Math.max(size, 4));
  new DataView(out.buffer).setUint32(0, index, true);
  for (let i = 4; i < out.length; i++) out[i] = (index * 31 + i * 7) & 0xff;
  return out;
}

/** Mostly small records, some spanning blocks. */
function randomSize(next: () => number): number {
  const r = next();
  if (r < 0.7) return Math.floor(next() * 3000);
  if (r < 0.95) return 3000 + Math.floor(next() * 20000);
  return 30000 + Math.floor(next() * 70000);
}

async function collect(wal: Wal, afterLsn = wal.firstLsn - 1): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const r of wal.replay(afterLsn)) out.push({ lsn: r.lsn, payload: new Uint8Array(r.payload) });
  return out;
}

function isIo(e: unknown, cause?: string): boolean {
  return e instanceof WalError && e.code === 'IO' && (cause === undefined || (e.cause as { code?: unknown } | undefined)?.code === cause);
}

/**
 * Appends bursts of random payloads (the bursts share a group) until the file layer dies, with an
 * occasional removeBefore; returns what the dead process saw.
 */
async function streamUntilDead(wal: Wal, fs: FaultFileLayer, next: () => number, withRemovals: boolean) {
  const calls: Uint8Array[] = [];
  const acked = new Map<number, number>();
  let removeAsked = 0;
  for (let round = 0; fs.alive; round++) {
    if (round === 400) fs.powerCut();
    const burst = next() < 0.5 ? 1 : 1 + Math.floor(next() * 12);
    const pending: Array<Promise<unknown>> = [];
    for (let b = 0; b < burst; b++) {
      const index = calls.length;
      calls.push(payload(index, randomSize(next)));
      pending.push(wal.append(calls[index]!).then((lsn) => acked.set(lsn, index), () => undefined));
    }
    if (withRemovals && acked.size > 0 && next() < 0.15) {
      const upTo = Math.max(...acked.keys());
      removeAsked = Math.max(removeAsked, upTo);
      pending.push(wal.removeBefore(upTo).catch(() => undefined));
    }
    await Promise.all(pending);
  }
  return { calls, acked, removeAsked };
}

test("faults: a power cut at 240 random points in 'always' mode loses no acknowledged append and invents nothing", async () => {
  let unackedSeen = 0;
  let tailsCut = 0;
  for (let i = 0; i < 240; i++) {
    const seed = 1000 + i;
    const next = rng(seed);
    const fs = new FaultFileLayer({ seed });
    const segmentBytes = 4096 + Math.floor(next() * 60000);
    const wal = await Wal.open({ dir: DIR, files: fs, durability: 'always', segmentBytes });
    fs.scheduleCut(Math.floor(next() * 90), { unsynced: i % 2 === 0 ? 'drop' : 'random' });
    const { calls, acked, removeAsked } = await streamUntilDead(wal, fs, next, true);

    const disk = fs.reboot();
    const reopened = await Wal.open({ dir: DIR, files: disk, segmentBytes });
    const got = await collect(reopened);
    const first = reopened.firstLsn;
    assert.ok(first <= Math.max(1, removeAsked), `seed ${seed}: the log starts at ${first}, only records before ${removeAsked} were released`);
    got.forEach((r, j) => {
      assert.equal(r.lsn, first + j, `seed ${seed}: consecutive LSNs`);
      // No failure before the cut, so LSN order is call order: record n must be call n - 1, byte for byte.
      assert.deepEqual(r.payload, calls[r.lsn - 1], `seed ${seed}: payload of LSN ${r.lsn}`);
    });
    const lastGot = got.length > 0 ? got[got.length - 1]!.lsn : first - 1;
    for (const [lsn, index] of acked) {
      assert.equal(index, lsn - 1);
      assert.ok(lsn <= lastGot || lsn < first, `seed ${seed}: acknowledged LSN ${lsn} lost (log ends at ${lastGot})`);
    }
    const maxAcked = Math.max(0, ...acked.keys());
    if (lastGot > maxAcked) unackedSeen++;
    if (reopened.recovered !== undefined) tailsCut++;
    assert.equal(await reopened.append(payload(0, 10)), lastGot + 1, `seed ${seed}: appends continue after the recovered log`);
    await reopened.close();
  }
  // The run must have exercised both outcomes the contract allows.
  assert.ok(unackedSeen > 0, 'some unacknowledged records survived whole');
  assert.ok(tailsCut > 0, 'some torn tails were cut');
});

test('faults: a crash (kill -9) at random points loses no acknowledged append in any durability mode', async () => {
  const modes: Durability[] = ['always', 'batch', 'none'];
  for (let i = 0; i < 90; i++) {
    const seed = 5000 + i;
    const next = rng(seed);
    const fs = new FaultFileLayer({ seed });
    const durability = modes[i % 3]!;
    const wal = await Wal.open({ dir: DIR, files: fs, durability, segmentBytes: 20000, batchDelayMs: 0 });
    fs.scheduleCut(Math.floor(next() * 60), { kind: 'crash' });
    const { calls, acked } = await streamUntilDead(wal, fs, next, false);
    const reopened = await Wal.open({ dir: DIR, files: fs.reboot() });
    const got = await collect(reopened);
    got.forEach((r, j) => {
      assert.equal(r.lsn, j + 1);
      assert.deepEqual(r.payload, calls[j], `seed ${seed} ${durability}: LSN ${r.lsn}`);
    });
    assert.ok(got.length >= Math.max(0, ...acked.keys()), `seed ${seed} ${durability}: acknowledged records lost`);
    await reopened.close();
  }
});

test('faults: ENOSPC on write rejects the whole group with IO and its cause; later appends take its LSNs; reopen is clean', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs });
  assert.equal(await wal.append(payload(0, 100)), 1);
  fs.failNextWrites(1, 'ENOSPC');
  const failed = await Promise.allSettled([wal.append(payload(1, 100)), wal.append(payload(2, 100))]);
  for (const r of failed) assert.ok(r.status === 'rejected' && isIo(r.reason, 'ENOSPC'), String(r.status === 'rejected' && r.reason));
  assert.equal(await wal.append(payload(3, 100)), 2);
  assert.equal(wal.lastLsn, 2);
  await wal.close();
  const reopened = await Wal.open({ dir: DIR, files: fs.powerCut() });
  assert.deepEqual(
    (await collect(reopened)).map((r) => r.payload),
    [payload(0, 100), payload(3, 100)],
  );
  assert.equal(reopened.recovered, undefined);
  await reopened.close();
});

test("faults: EIO on fsync in 'always' mode rejects the group, cuts its bytes back, and the log goes on", async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs });
  await wal.append(payload(0, 100));
  fs.failNextSyncs(1, 'EIO');
  await assert.rejects(wal.append(payload(1, 5000)), (e) => isIo(e, 'EIO'));
  assert.equal(fs.currentBytes(`${DIR}/wal-00000000000000000001.log`).length, 115, 'the failed group is truncated away');
  assert.equal(await wal.append(payload(2, 100)), 2);
  // Crash without close: what the process wrote is all there is.
  const reopened = await Wal.open({ dir: DIR, files: fs.crash() });
  assert.deepEqual(
    (await collect(reopened)).map((r) => r.payload),
    [payload(0, 100), payload(2, 100)],
  );
  await reopened.close();
});

test('faults: a torn write that rejects leaves no half-record: the bytes are cut back before the next append', async () => {
  for (let seed = 1; seed <= 25; seed++) {
    const fs = new FaultFileLayer({ seed });
    const wal = await Wal.open({ dir: DIR, files: fs });
    await wal.append(payload(0, 700));
    fs.tearNextWrite({ code: seed % 2 === 0 ? 'ENOSPC' : 'EIO' });
    const group = await Promise.allSettled([0, 1, 2].map((i) => wal.append(payload(10 + i, 20000))));
    assert.ok(group.every((r) => r.status === 'rejected' && isIo(r.reason)));
    assert.equal(await wal.append(payload(1, 300)), 2);
    const reopened = await Wal.open({ dir: DIR, files: fs.crash() });
    assert.equal(reopened.recovered, undefined, `seed ${seed}: nothing to cut`);
    assert.deepEqual(
      (await collect(reopened)).map((r) => r.payload),
      [payload(0, 700), payload(1, 300)],
    );
    await reopened.close();
  }
});

test('faults: a write torn by the death of the process leaves a torn tail that reopen cuts', async () => {
  let cut = 0;
  for (let seed = 1; seed <= 25; seed++) {
    const fs = new FaultFileLayer({ seed });
    const wal = await Wal.open({ dir: DIR, files: fs });
    await wal.append(payload(0, 700));
    fs.tearNextWrite({ then: 'crash' });
    const group = [1, 2, 3].map((i) => payload(i, 15000));
    await Promise.allSettled(group.map((p) => wal.append(p)));
    const reopened = await Wal.open({ dir: DIR, files: fs.reboot() });
    const got = (await collect(reopened)).map((r) => r.payload);
    assert.deepEqual(got, [payload(0, 700), ...group].slice(0, got.length), `seed ${seed}: a prefix`);
    if (reopened.recovered !== undefined) cut++;
    await reopened.close();
  }
  assert.ok(cut > 20);
});

test('faults: a rotation whose directory fsync fails is retried by the next group and never leaves a gap', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 1000 });
  await wal.append(payload(0, 600));
  fs.failNextSyncs(1, 'EIO');
  await assert.rejects(wal.append(payload(1, 600)), (e) => isIo(e, 'EIO'));
  await wal.append(payload(2, 100));
  await wal.append(payload(3, 600));
  const names = (await fs.list(DIR)).sort();
  assert.deepEqual(names, ['wal-00000000000000000001.log', 'wal-00000000000000000002.log']);
  assert.equal(fs.currentBytes(`${DIR}/${names[0]}`).length, 615, 'the small append went to the new segment, not back to the old one');
  const reopened = await Wal.open({ dir: DIR, files: fs.powerCut() });
  assert.deepEqual(
    (await collect(reopened)).map((r) => r.payload),
    [payload(0, 600), payload(2, 100), payload(3, 600)],
  );
  await reopened.close();
});

test('faults: onSegment is told each rotated segment before a record goes into it; when it rejects, the group rejects with IO and the next group rotates again and tells it again', async () => {
  const fs = new FaultFileLayer();
  const told: { lsn: number; files: string[]; bytes: number }[] = [];
  let failNext = false;
  const wal = await Wal.open({
    dir: DIR,
    files: fs,
    segmentBytes: 1000,
    onSegment: async (lsn) => {
      told.push({ lsn, files: (await fs.list(DIR)).sort(), bytes: fs.currentBytes(`${DIR}/wal-${String(lsn).padStart(20, '0')}.log`).length });
      if (failNext) {
        failNext = false;
        throw new Error('state write failed');
      }
    },
  });
  assert.equal(wal.activeFirstLsn, 1);
  await wal.append(payload(0, 600));
  failNext = true;
  await assert.rejects(wal.append(payload(1, 600)), (e) => e instanceof WalError && e.code === 'IO' && (e.cause as Error).message === 'state write failed');
  await wal.append(payload(2, 600));
  assert.deepEqual(told.map((t) => t.lsn), [2, 2], 'told again for the same segment');
  // Told once the file is there, and before any byte of a record is in it.
  for (const t of told) {
    assert.ok(t.files.includes(`wal-${String(t.lsn).padStart(20, '0')}.log`));
    assert.equal(t.bytes, 0);
  }
  assert.equal(wal.activeFirstLsn, 2);
  await wal.rotate();
  assert.deepEqual(told.map((t) => t.lsn), [2, 2, 3]);
  await wal.close();
  const reopened = await Wal.open({ dir: DIR, files: fs.powerCut() });
  assert.deepEqual((await collect(reopened)).map((r) => r.payload), [payload(0, 600), payload(2, 600)]);
  assert.equal(reopened.activeFirstLsn, 3);
  await reopened.close();
});

test("faults: in 'batch' mode a failed background fsync is reported by the next sync()", async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs, durability: 'batch', batchDelayMs: 1 });
  fs.failNextSyncs(1, 'EIO');
  await wal.append(payload(0, 100));
  await new Promise((r) => setTimeout(r, 30));
  await assert.rejects(wal.sync(), (e) => isIo(e, 'EIO'));
  await wal.sync();
  await wal.close();
});

test("faults: random ENOSPC/EIO on writes and fsyncs in 'always' mode: after a power cut the log is exactly the acknowledged appends", async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const next = rng(seed);
    let fs = new FaultFileLayer({ seed });
    const wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 30000 });
    const acked = new Map<number, Uint8Array>();
    let failures = 0;
    for (let round = 0; round < 40; round++) {
      const r = next();
      const code = next() < 0.5 ? 'ENOSPC' : 'EIO';
      if (r < 0.15) fs.failNextWrites(1, code);
      else if (r < 0.3) fs.failNextSyncs(1 + Math.floor(next() * 2), code);
      else if (r < 0.4) fs.tearNextWrite({ code });
      const burst = 1 + Math.floor(next() * 6);
      await Promise.all(
        Array.from({ length: burst }, (_, b) => {
          const p = payload(round * 100 + b, randomSize(next));
          return wal.append(p).then(
            (lsn) => {
              assert.ok(!acked.has(lsn), 'an LSN is acknowledged once');
              acked.set(lsn, p);
            },
            (e: unknown) => {
              assert.ok(isIo(e), String(e));
              failures++;
            },
          );
        }),
      );
      fs.failNextWrites(0);
      fs.failNextSyncs(0);
    }
    fs = fs.powerCut();
    const reopened = await Wal.open({ dir: DIR, files: fs });
    const got = await collect(reopened);
    assert.deepEqual(
      got.map((r) => r.lsn),
      [...acked.keys()].sort((a, b) => a - b),
      `seed ${seed}: exactly the acknowledged LSNs, consecutive from 1`,
    );
    for (const r of got) assert.deepEqual(r.payload, acked.get(r.lsn));
    assert.ok(failures > 0);
    await reopened.close();
  }
});

test('faults: a bit flipped anywhere gives CORRUPTION or a clean prefix on reopen, never a wrong payload', async () => {
  let corrupt = 0;
  let prefix = 0;
  for (let trial = 0; trial < 200; trial++) {
    const next = rng(9000 + trial);
    const fs = new FaultFileLayer({ seed: trial });
    const wal = await Wal.open({ dir: DIR, files: fs, segmentBytes: 40000 });
    const payloads = Array.from({ length: 12 }, (_, i) => payload(i, randomSize(next)));
    for (const p of payloads) await wal.append(p);
    await wal.close();
    const names = await fs.list(DIR);
    const file = `${DIR}/${names[Math.floor(next() * names.length)]}`;
    const size = fs.currentBytes(file).length;
    if (size === 0) continue;
    fs.flipBit(file, Math.floor(next() * size));
    let reopened: Wal;
    try {
      reopened = await Wal.open({ dir: DIR, files: fs });
    } catch (e) {
      assert.ok(e instanceof WalError && e.code === 'CORRUPTION' && e.file !== undefined && e.offset !== undefined, String(e));
      corrupt++;
      continue;
    }
    const got = await collect(reopened);
    got.forEach((r, j) => {
      assert.equal(r.lsn, j + 1);
      assert.deepEqual(r.payload, payloads[j]);
    });
    if (got.length < payloads.length) assert.ok(reopened.recovered !== undefined, 'a shorter log says it was cut');
    prefix++;
    await reopened.close();
  }
  assert.ok(corrupt > 50 && prefix > 10, `corrupt ${corrupt}, prefix ${prefix}`);
});

test('group commit: 100 appends in one tick cost one write and one fsync', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs });
  const { writes, syncs } = fs.counts;
  const lsns = await Promise.all(Array.from({ length: 100 }, (_, i) => wal.append(payload(i, 2500))));
  assert.deepEqual(lsns, Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal(fs.counts.syncs - syncs, 1);
  assert.equal(fs.counts.writes - writes, 1);
  await wal.close();
});

test('group commit: 100 concurrent callers appending in a loop share fsyncs: appends arriving during one form the next group', async () => {
  const fs = new FaultFileLayer();
  const wal = await Wal.open({ dir: DIR, files: fs });
  const syncs = fs.counts.syncs;
  await Promise.all(
    Array.from({ length: 100 }, async (_, c) => {
      for (let k = 0; k < 5; k++) await wal.append(payload(c * 10 + k, 200));
    }),
  );
  assert.equal(wal.lastLsn, 500);
  assert.ok(fs.counts.syncs - syncs <= 6, `${fs.counts.syncs - syncs} fsyncs for 500 appends`);
  await wal.close();
});

test('property: random payload sizes, groupings, segment sizes and modes round-trip through close and reopen', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          sizes: fc.array(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 70000 })), { minLength: 1, maxLength: 6 }),
        }),
        { maxLength: 12 },
      ),
      fc.integer({ min: 500, max: 200000 }),
      fc.constantFrom<Durability>('always', 'batch', 'none'),
      async (groups, segmentBytes, durability) => {
        const fs = new FaultFileLayer();
        const wal = await Wal.open({ dir: DIR, files: fs, segmentBytes, durability, batchDelayMs: 0 });
        const written: Uint8Array[] = [];
        for (const { sizes } of groups) {
          const ps = sizes.map((s) => payload(written.length + sizes.indexOf(s), s));
          written.push(...ps);
          await Promise.all(ps.map((p) => wal.append(p)));
        }
        await wal.close();
        const reopened = await Wal.open({ dir: DIR, files: fs.powerCut() });
        const got = await collect(reopened);
        assert.equal(got.length, written.length);
        got.forEach((r, i) => {
          assert.equal(r.lsn, i + 1);
          assert.deepEqual(r.payload, written[i]);
        });
        assert.equal(reopened.lastLsn, written.length);
        await reopened.close();
      },
    ),
    { numRuns: 60, seed: 42 },
  );
});
