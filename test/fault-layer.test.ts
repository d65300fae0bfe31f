import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FaultFileLayer } from './support/fault-layer.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

/** A file whose directory entry is already durable, as a store's files are after creation. */
async function durableFile(fs: FaultFileLayer, path: string): Promise<void> {
  await fs.mkdir('/d');
  await fs.syncDir('/');
  const h = await fs.open(path, 'create');
  await h.close();
  await fs.syncDir('/d');
}

function codeOf(e: unknown): unknown {
  return (e as { code?: unknown }).code;
}

test('fault layer: a write changes current bytes; durable bytes change only at sync', async () => {
  const fs = new FaultFileLayer();
  await durableFile(fs, '/d/f');
  const h = await fs.open('/d/f', 'readwrite');
  await h.write(bytes(1, 2, 3), 0);
  assert.deepEqual(fs.currentBytes('/d/f'), bytes(1, 2, 3));
  assert.deepEqual(fs.durableBytes('/d/f'), bytes());
  await h.sync();
  assert.deepEqual(fs.durableBytes('/d/f'), bytes(1, 2, 3));
  await h.write(bytes(9), 1);
  await h.write(bytes(4), 3);
  assert.deepEqual(fs.currentBytes('/d/f'), bytes(1, 9, 3, 4));
  assert.deepEqual(fs.durableBytes('/d/f'), bytes(1, 2, 3), 'an overwrite in the middle is not durable either');
  const buf = new Uint8Array(8);
  assert.equal(await h.read(buf, 2), 2, 'reads are short only at the end of the file');
  assert.deepEqual(buf.subarray(0, 2), bytes(3, 4));
});

test('fault layer: a power cut drops every byte not fsynced and kills the old view', async () => {
  const fs = new FaultFileLayer();
  await durableFile(fs, '/d/f');
  const h = await fs.open('/d/f', 'readwrite');
  await h.write(bytes(1, 2), 0);
  await h.sync();
  await h.write(bytes(3, 4), 2);
  await h.truncate(1);
  const after = fs.powerCut();
  assert.equal(fs.alive, false);
  assert.deepEqual(await after.readFile('/d/f'), bytes(1, 2));
  await assert.rejects(h.write(bytes(5), 0), (e) => codeOf(e) === 'EIO');
  await assert.rejects(fs.readFile('/d/f'), (e) => codeOf(e) === 'EIO', 'the dead process cannot touch the disk');
  await assert.rejects(fs.open('/d/g', 'create'), (e) => codeOf(e) === 'EIO');
  assert.equal(await after.exists('/d/g'), false);
});

test('fault layer: creates, renames and removes are undone by a power cut unless their directory was synced', async () => {
  let fs = new FaultFileLayer();
  await durableFile(fs, '/d/keep');
  const created = await fs.open('/d/new', 'create');
  await created.write(bytes(7), 0);
  await created.sync();
  await fs.rename('/d/keep', '/d/renamed');
  fs = fs.powerCut();
  assert.deepEqual((await fs.list('/d')).sort(), ['keep'], 'a file fsynced but never dir-synced is gone');

  await fs.rename('/d/keep', '/d/renamed');
  const again = await fs.open('/d/new', 'create');
  await again.write(bytes(8), 0);
  await again.sync();
  await fs.syncDir('/d');
  await fs.remove('/d/renamed');
  fs = fs.powerCut();
  assert.deepEqual((await fs.list('/d')).sort(), ['new', 'renamed'], 'the remove was not dir-synced; the rest was');
  assert.deepEqual(await fs.readFile('/d/new'), bytes(8));

  await fs.mkdir('/e/f');
  fs = fs.powerCut();
  assert.equal(await fs.exists('/e'), false, 'mkdir needs a sync of the parent too');
});

test('fault layer: a crash (kill -9) keeps written bytes that were never fsynced', async () => {
  let fs = new FaultFileLayer();
  await durableFile(fs, '/d/f');
  const h = await fs.open('/d/f', 'readwrite');
  await h.write(bytes(1, 2, 3), 0);
  fs = fs.crash();
  assert.deepEqual(await fs.readFile('/d/f'), bytes(1, 2, 3));
  assert.deepEqual(fs.durableBytes('/d/f'), bytes(), 'still not durable: a later power cut drops them');
  fs = fs.powerCut();
  assert.deepEqual(await fs.readFile('/d/f'), bytes());
});

test('fault layer: a torn write lands a prefix, then rejects, crashes or cuts the power', async () => {
  let fs = new FaultFileLayer({ seed: 7 });
  await durableFile(fs, '/d/f');
  let h = await fs.open('/d/f', 'readwrite');
  fs.tearNextWrite({ at: 3, code: 'ENOSPC' });
  await assert.rejects(h.write(bytes(1, 2, 3, 4, 5), 0), (e) => codeOf(e) === 'ENOSPC');
  assert.deepEqual(fs.currentBytes('/d/f'), bytes(1, 2, 3));
  assert.ok(fs.alive);

  fs.tearNextWrite({ at: 2, then: 'crash' });
  await assert.rejects(h.write(bytes(6, 7, 8), 3));
  assert.equal(fs.alive, false);
  fs = fs.reboot();
  assert.deepEqual(await fs.readFile('/d/f'), bytes(1, 2, 3, 6, 7));

  h = await fs.open('/d/f', 'readwrite');
  await h.sync();
  fs.tearNextWrite({ then: 'power' });
  await assert.rejects(h.write(new Uint8Array(100).fill(9), 5));
  fs = fs.reboot();
  assert.deepEqual(await fs.readFile('/d/f'), bytes(1, 2, 3, 6, 7), 'the torn bytes were never synced');

  const sizes = new Set<number>();
  for (let i = 0; i < 20; i++) {
    h = await fs.open('/d/f', 'readwrite');
    await h.truncate(0);
    fs.tearNextWrite();
    await assert.rejects(h.write(new Uint8Array(1000).fill(1), 0));
    sizes.add(fs.currentBytes('/d/f').length);
  }
  assert.ok(sizes.size > 10 && Math.max(...sizes) < 1000, 'a random tear lands a seeded prefix shorter than the write');
});

test('fault layer: injected ENOSPC/EIO fail the next N writes or syncs and change nothing', async () => {
  const fs = new FaultFileLayer();
  await durableFile(fs, '/d/f');
  const h = await fs.open('/d/f', 'readwrite');
  fs.failNextWrites(2, 'ENOSPC');
  await assert.rejects(h.write(bytes(1), 0), (e) => codeOf(e) === 'ENOSPC');
  await assert.rejects(h.write(bytes(1), 0), (e) => codeOf(e) === 'ENOSPC');
  assert.deepEqual(fs.currentBytes('/d/f'), bytes());
  await h.write(bytes(1), 0);
  fs.failNextSyncs(1, 'EIO');
  await assert.rejects(h.sync(), (e) => codeOf(e) === 'EIO');
  assert.deepEqual(fs.durableBytes('/d/f'), bytes());
  await h.sync();
  assert.deepEqual(fs.durableBytes('/d/f'), bytes(1));
  fs.failNextSyncs(1, 'EIO');
  await fs.open('/d/g', 'create');
  await assert.rejects(fs.syncDir('/d'), (e) => codeOf(e) === 'EIO', 'directory syncs fail too');
  assert.equal(fs.durableBytes('/d/g'), undefined);
  assert.equal(fs.counts.writes, 3);
  assert.equal(fs.counts.syncs, 2);
});

test('fault layer: a flipped bit is in both the current and the durable bytes', async () => {
  const fs = new FaultFileLayer();
  await durableFile(fs, '/d/f');
  const h = await fs.open('/d/f', 'readwrite');
  await h.write(bytes(0, 0, 0), 0);
  await h.sync();
  fs.flipBit('/d/f', 1, 3);
  assert.deepEqual(fs.currentBytes('/d/f'), bytes(0, 8, 0));
  assert.deepEqual(fs.powerCut().currentBytes('/d/f'), bytes(0, 8, 0));
});

test('fault layer: a scheduled cut fires as the n-th mutating operation begins and counts are kept', async () => {
  const fs = new FaultFileLayer();
  await durableFile(fs, '/d/f');
  const h = await fs.open('/d/f', 'readwrite');
  await h.write(bytes(1), 0);
  await h.sync();
  const ops = fs.counts.ops;
  fs.scheduleCut(2);
  await h.write(bytes(2), 1);
  await h.write(bytes(3), 2);
  await assert.rejects(h.sync());
  assert.equal(fs.counts.ops, ops + 3);
  assert.equal(fs.alive, false);
  assert.deepEqual(await fs.reboot().readFile('/d/f'), bytes(1));
});

test('fault layer: a random power cut keeps the synced bytes, then at most a prefix of new bytes or zeros, reproducibly', async () => {
  const outcomes = new Set<string>();
  for (let seed = 1; seed <= 60; seed++) {
    const results: string[] = [];
    for (let run = 0; run < 2; run++) {
      let fs = new FaultFileLayer({ seed });
      await durableFile(fs, '/d/f');
      const h = await fs.open('/d/f', 'readwrite');
      await h.write(bytes(1, 2, 3), 0);
      await h.sync();
      await h.write(bytes(4, 5, 6, 7), 3);
      fs = fs.powerCut({ unsynced: 'random' });
      const after = await fs.readFile('/d/f');
      assert.deepEqual(after.subarray(0, 3), bytes(1, 2, 3));
      const extra = [...after.subarray(3)];
      const prefix = [4, 5, 6, 7].slice(0, extra.length);
      assert.ok(extra.every((b) => b === 0) || extra.join() === prefix.join(), `seed ${seed}: ${extra.join()}`);
      results.push(after.join());
    }
    assert.equal(results[0], results[1], 'same seed, same outcome');
    outcomes.add(results[0]!);
  }
  assert.ok(outcomes.size >= 5, 'the outcomes vary with the seed');
});

test('fault layer: a rename inside a directory survives a random power cut whole or not at all', async () => {
  for (let seed = 1; seed <= 30; seed++) {
    let fs = new FaultFileLayer({ seed });
    await durableFile(fs, '/d/a');
    await fs.rename('/d/a', '/d/b');
    fs = fs.powerCut({ unsynced: 'random' });
    const names = (await fs.list('/d')).sort().join();
    assert.ok(names === 'a' || names === 'b', names);
  }
});
