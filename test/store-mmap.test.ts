/**
 * A store reads its full-precision vectors and texts through memory maps (`mmap`, the default, where
 * the native addon is built) and gives the answers it gives with positioned reads (`mmap: false`):
 * the same ids, scores (bit for bit) and texts, for every metric, a scalar and a rotated codec, the
 * exact scan and the page index, through writes, a reopen and compact().
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemStore } from '../src/index.js';
import { canMapFiles } from '../io/mmap.js';
import { kernels } from '../src/kernels/index.js';
import { CountingFiles } from './support/counting-files.js';
import { clustered, rejectsWith, rng, tempDir } from './helpers.js';

const DIM = 32;

type Answers = string[];

async function answers(store: MemStore, queries: readonly Float32Array[]): Promise<Answers> {
  const out: Answers = [];
  for (const q of queries) out.push((await store.search(q, { k: 10 })).map((h) => `${h.id}=${h.score}:${h.text ?? ''}`).join(' '));
  return out;
}

describe('reads through memory maps give the answers of positioned reads', { skip: canMapFiles() ? false : 'the memory-map addon is not built here' }, () => {
  for (const metric of ['cosine', 'dot', 'l2'] as const) {
    for (const codec of ['int8', 'rq2'] as const) {
      it(`${metric}, ${codec}: the same answers before and after writes, a reopen and compact(); only the mapped store maps, and gathers each frame rescoring reads in batches`, async () => {
        const data = clustered(900, DIM, 11);
        const queries = clustered(25, DIM, 12);
        const next = rng(13);
        const options = { dim: DIM, metric, codec, trainSize: 128, pages: { from: 300, maxPage: 32 }, cache: false as const };
        const files = { mapped: new CountingFiles(), plain: new CountingFiles() };
        const dirs = { mapped: tempDir(), plain: tempDir() };
        const open = (which: 'mapped' | 'plain', o: object = {}) => MemStore.open(dirs[which], { ...o, files: files[which].layer, cache: false, ...(which === 'plain' ? { mmap: false } : {}) });
        let mapped = await open('mapped', options);
        let plain = await open('plain', options);
        const both = async (f: (s: MemStore) => Promise<unknown>) => {
          await f(mapped);
          await f(plain);
        };
        const same = async (when: string) => assert.deepEqual(await answers(mapped, queries), await answers(plain, queries), when);
        for (let at = 0; at < 600; at += 100) {
          const batch = data.slice(at, at + 100).map((vector, i) => ({ id: `v${at + i}`, vector, text: `t${at + i}` }));
          await both((s) => s.add(batch));
        }
        await same('after adds');
        await both((s) => s.close());
        mapped = await open('mapped');
        plain = await open('plain');
        await same('after a reopen');
        const upserts = Array.from({ length: 60 }, (_, i) => ({ id: `v${Math.floor(next() * 600)}`, vector: data[600 + i]!, text: `u${i}` }));
        const adds = data.slice(660).map((vector, i) => ({ id: `w${i}`, vector }));
        const deletes = Array.from({ length: 40 }, () => `v${Math.floor(next() * 600)}`);
        await both((s) => s.add(upserts));
        await both((s) => s.add(adds));
        await both((s) => s.delete(deletes));
        await same('after upserts, adds and deletes');
        await both((s) => s.compact());
        await same('after compact()');
        await both((s) => s.close());
        mapped = await open('mapped');
        plain = await open('plain');
        await same('after compact() and a reopen');
        // Both arenas hold segments now, and the searches above read vectors (and texts) out of them.
        assert.ok(mapped.stats().mappedFiles > 0, 'stats() counts the files the mapped store reads through maps');
        assert.equal(plain.stats().mappedFiles, 0, 'stats() shows mmap: false maps nothing');
        // Every frame rescoring reads was gathered, once, a batch per segment's map (ARENA.md, "Reads through a memory map").
        for (const q of queries.slice(0, 5)) {
          const before = mapped.stats().rescoring;
          files.mapped.gathers.length = 0;
          files.mapped.prefetches.length = 0;
          await mapped.search(q, { k: 10 });
          const after = mapped.stats().rescoring;
          const read = after.candidates - after.skipped - (before.candidates - before.skipped);
          assert.ok(read > 0);
          assert.equal(files.mapped.gathers.reduce((n, g) => n + g.offsets.length, 0), read, 'gathered each frame it read, once');
          assert.equal(new Set(files.mapped.gathers.flatMap((g) => g.offsets.map((o) => `${g.map}:${o}`))).size, read, 'no frame twice');
          assert.equal(files.mapped.prefetches.length, 0, 'nothing left to read a frame at a time');
        }
        assert.equal(files.plain.gathers.length + files.plain.prefetches.length, 0, 'mmap: false gathers nothing');
        await both((s) => s.close());
        assert.ok(files.mapped.maps.length > 0, 'the store with mmap mapped its vector segments');
        assert.equal(files.plain.maps.length, 0, 'the store with mmap: false mapped nothing');
        assert.ok(files.mapped.maps.every((m) => m.length === 0), 'closing unmapped every map');
      });
    }
  }

  it('int8 rescoring reads every candidate whose vector is in memory and bounds only those a read would wait for (with every page resident none is left unread; with none, or half, the bound leaves some unread), answering the same either way; rq2 bounds every candidate past the first k wherever it is, and reads the same ones', async () => {
    for (const codec of ['int8', 'rq2'] as const) {
      const dir = tempDir();
      const data = clustered(900, DIM, 21);
      const queries = clustered(20, DIM, 22);
      const options = { dim: DIM, codec, trainSize: 128, pages: false as const, cache: false as const };
      const store = await MemStore.open(dir, options);
      await store.add(data.map((vector, i) => ({ id: `v${i}`, vector })));
      await store.close();
      const run = async (residency: CountingFiles['residency']) => {
        const files = new CountingFiles();
        files.residency = residency;
        const s = await MemStore.open(dir, { files: files.layer, cache: false });
        try {
          // The first search maps the segment; its frames are sampled from then on.
          await s.search(queries[0]!, { k: 10 });
          const before = s.stats().rescoring;
          const got = await answers(s, queries);
          const after = s.stats().rescoring;
          return { got, candidates: after.candidates - before.candidates, skipped: after.skipped - before.skipped, sampled: files.residencyCalls };
        } finally {
          await s.close();
        }
      };
      const resident = await run('real');
      const none = await run('none');
      const half = await run((out) => {
        for (let i = 0; i < out.length; i++) out[i] = i % 2;
      });
      assert.ok(none.skipped > 0, `${codec}: no page resident, the bound leaves some unread (${JSON.stringify(none)})`);
      assert.ok(half.skipped > 0, `${codec}: half resident, the bound leaves some of the others unread (${JSON.stringify(half)})`);
      assert.deepEqual(none.got, resident.got, `${codec}: the bound leaves out only what could not be in the answer`);
      assert.deepEqual(half.got, resident.got, codec);
      if (codec === 'int8') {
        assert.ok(resident.sampled > 0, 'int8: residency was asked');
        assert.equal(resident.skipped, 0, 'int8: every page resident, every candidate read');
      } else {
        assert.equal(resident.sampled + none.sampled + half.sampled, 0, 'rq2: residency is never asked');
        assert.deepEqual([resident.skipped, half.skipped], [none.skipped, none.skipped], 'rq2: the same candidates left unread wherever they are');
      }
    }
  });

  it('a search of a large k over vectors in memory reads them a chunk at a time: the scorer\'s scratch in linear memory grows to k vectors, not to every candidate', async () => {
    const dim = 256;
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim, codec: 'int8', pages: false, cache: false, oversample: 40 });
    await store.add(clustered(5000, dim, 31).map((vector, i) => ({ id: `v${i}`, vector })));
    await store.close();
    const reopened = await MemStore.open(dir, { cache: false, oversample: 40 });
    try {
      const [warm, big] = clustered(2, dim, 32);
      await reopened.search(warm!, { k: 10 });
      const memory = kernels().memory;
      const before = memory.used;
      const counted = reopened.stats().rescoring;
      const k = 100;
      assert.equal((await reopened.search(big!, { k })).length, k);
      const after = reopened.stats().rescoring;
      assert.equal(after.candidates - counted.candidates, 40 * k);
      assert.equal(after.skipped - counted.skipped, 0, 'every candidate in memory, every one read');
      // One batch of all 3,900 past the first k would have taken about 3.9 MB more.
      assert.ok(memory.used - before < 1 << 20, `linear memory's high-water mark grew by ${memory.used - before} bytes`);
    } finally {
      await reopened.close();
    }
  });

  it('maps without gather() read a frame at a time, each prefetched first, and answer as maps with it do', async () => {
    const dir = tempDir();
    const data = clustered(700, DIM, 31);
    const queries = clustered(15, DIM, 32);
    const store = await MemStore.open(dir, { dim: DIM, codec: 'rq2', trainSize: 128, pages: { from: 300, maxPage: 32 }, cache: false });
    await store.add(data.map((vector, i) => ({ id: `v${i}`, vector, text: `t${i}` })));
    await store.close();
    const run = async (noGather: boolean) => {
      const files = new CountingFiles();
      files.noGather = noGather;
      const s = await MemStore.open(dir, { files: files.layer, cache: false });
      try {
        const got = await answers(s, queries);
        const r = s.stats().rescoring;
        return { got, read: r.candidates - r.skipped, gathered: files.gathers.reduce((n, g) => n + g.offsets.length, 0), prefetched: files.prefetches.reduce((n, p) => n + p.offsets.length, 0) };
      } finally {
        await s.close();
      }
    };
    const gathering = await run(false);
    const single = await run(true);
    assert.deepEqual(single.got, gathering.got);
    assert.ok(gathering.read > 0);
    assert.equal(gathering.gathered, gathering.read);
    assert.equal(gathering.prefetched, 0);
    assert.equal(single.gathered, 0);
    assert.equal(single.prefetched, single.read, 'each frame prefetched once before its read');
  });

  it('mmap must be a boolean', async () => {
    await rejectsWith(() => MemStore.open(tempDir(), { dim: 4, mmap: 'yes' as unknown as boolean }), 'INVALID_OPTION');
  });
});
