import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Progress } from '../src/cli/progress.js';
import { exportStore, importStore, MemStore } from '../src/index.js';
import { rejectsWith, tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

/** A stream that is not a terminal and keeps what is written. */
function pipe(): NodeJS.WriteStream & { lines: string[] } {
  const lines: string[] = [];
  return { isTTY: false, lines, write: (s: string) => lines.push(...s.split('\n').filter((l) => l !== '')) } as unknown as NodeJS.WriteStream & { lines: string[] };
}

test('progress off a terminal: a plain line at each tenth of the way (not at every report), and a last line', () => {
  const out = pipe();
  const p = new Progress('doing', out);
  for (let i = 0; i <= 1000; i += 10) p.report(i, 1000);
  p.done();
  assert.equal(out.lines.length, 12);
  assert.equal(out.lines[0], 'doing 0/1000 (0%)');
  assert.equal(out.lines[5], 'doing 500/1000 (50%)');
  assert.equal(out.lines[11], 'doing 1000/1000 (100%) (done)');
});

test('progress off a terminal with no total: counts only', () => {
  const out = pipe();
  const p = new Progress('rows', out);
  p.report(4096, undefined);
  p.done();
  assert.deepEqual(out.lines, ['rows 4096', 'rows 4096 (done)']);
});

test('export, import and compact tell their progress: counts rising to the whole', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4 });
  await store.add(Array.from({ length: 5000 }, (_, i) => ({ id: `r${i}`, vector: [i + 1, 1, 2, 3] })));
  const steps: number[] = [];
  await store.compact({ onProgress: (done, total) => steps.push(done / total) });
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7].map((s) => s / 7));
  await store.close();
  const exported: [number, number][] = [];
  const file = join(tempDir(), 'out.jsonl');
  await exportStore(dir, file, { onProgress: (done, total) => exported.push([done, total]) });
  assert.deepEqual(exported, [
    [4096, 5000],
    [5000, 5000],
  ]);
  // JSONL: the total estimated from the bytes read, exact once all are read; Parquet: exact from its metadata.
  const imported: [number, number | undefined][] = [];
  await importStore(file, tempDir(), { onProgress: (rows, total) => imported.push([rows, total]) });
  assert.deepEqual(imported.map(([rows]) => rows), [4096, 5000]);
  assert.equal(imported[1]![1], 5000);
  assert.ok(imported[0]![1]! >= 4096);
  const parquetFile = join(tempDir(), 'out.parquet');
  await exportStore(dir, parquetFile);
  const fromParquet: [number, number | undefined][] = [];
  await importStore(parquetFile, tempDir(), { onProgress: (rows, total) => fromParquet.push([rows, total]) });
  assert.deepEqual(fromParquet, [
    [4096, 5000],
    [5000, 5000],
  ]);
});

test('memstore export, import, compact and repair print their progress on stderr', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4 });
  await store.add([{ id: 'a', vector: [1, 2, 3, 4] }]);
  await store.close();
  const file = join(tempDir(), 'out.jsonl');
  const ex = await cliResult(['export', dir, '--out', file]);
  assert.match(ex.stderr, /exporting records 1\/1 \(100%\) \(done\)/);
  const into = join(tempDir(), 'store');
  mkdirSync(into);
  assert.match((await cliResult(['import', file, into])).stderr, /importing rows 1\/1 \(100%\) \(done\)/);
  assert.match((await cliResult(['compact', into])).stderr, /compacting, steps 7\/7 \(100%\) \(done\)/);
  assert.match((await cliResult(['repair', into, '--report', join(tempDir(), 'report.jsonl')])).stderr, /repairing, steps 7\/7 \(100%\) \(done\)/);
});

test('progress on a terminal: a task that fails ends the bar (its redraw timer and hidden cursor), and the error comes through', async () => {
  const written: string[] = [];
  const tty = { isTTY: true, columns: 80, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  const p = new Progress('importing rows', tty);
  const failure = new Error('row 5000');
  await assert.rejects(
    p.during(async (report) => {
      report(4096, 10_000);
      throw failure;
    }),
    (e) => e === failure,
  );
  const bar = (p as unknown as { bar?: { isActive: boolean } }).bar;
  assert.ok(bar !== undefined, 'the bar was drawn');
  assert.equal(bar.isActive, false, 'and stopped');
  assert.ok(written.some((s) => s.includes('\x1B[?25h')), 'the cursor is shown again');
});

test('on a terminal, an import that fails after its bar has started exits with its error instead of hanging', async () => {
  const dir = tempDir();
  const file = join(dir, 'late.jsonl');
  const rows = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ id: `r${i}`, vector: [i + 1, 1, 2, 3] }));
  rows.push(JSON.stringify({ id: 'bad', vector: [1] }));
  writeFileSync(file, `${rows.join('\n')}\n`);
  const into = join(dir, 'store');
  mkdirSync(into);
  const { code, stderr } = await cliResult(['import', file, into, '--metric', 'dot'], { asTerminal: true, timeoutMs: 30_000 });
  assert.notEqual(code, null, 'the command ended');
  assert.equal(code, 2);
  assert.match(stderr, /DIM_MISMATCH/);
  assert.deepEqual(readdirSync(into), [], 'the directory is left empty');
});

test('compact() checks its options as every call does (INVALID_OPTION for a typo, a string, an onProgress that is no function, a Map; null reads as none, as for search), and what its onProgress throws comes out as it is, the store whole (it had come out as IO)', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4, durability: 'none' });
  try {
    await store.add(Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, vector: [i, 1, 2, 3], text: `t${i}` })));
    await store.delete(['r1', 'r2']);
    for (const bad of [{ onProgres: () => undefined }, 'fast', { onProgress: 5 }, new Map()]) {
      await rejectsWith(() => store.compact(bad as never), 'INVALID_OPTION');
    }
    for (const at of [1, 4, 7]) {
      const thrown = new RangeError(`stop at ${at}`);
      const e = await store.compact({ onProgress: (done) => { if (done === at) throw thrown; } }).then(() => undefined, (err: unknown) => err);
      assert.equal(e, thrown, `step ${at}`);
      assert.equal(store.stats().count, 18);
      assert.equal((await store.get('r19'))?.text, 't19');
    }
  } finally {
    await store.close();
  }
  const again = await MemStore.open(dir, {});
  try {
    assert.equal(again.stats().count, 18);
  } finally {
    await again.close();
  }
});

test('what an export\'s or an import\'s onProgress throws comes out as it is (an export had made it IO), and nothing is left: no export file, an empty directory', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4, durability: 'none' });
  await store.add(Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, vector: [i, 1, 2, 3] })));
  await store.close();
  const parent = tempDir();
  const thrown = new RangeError('stop');
  const stop = () => {
    throw thrown;
  };
  const out = join(parent, 'x.jsonl');
  assert.equal(await exportStore(dir, out, { onProgress: stop }).then(() => undefined, (e: unknown) => e), thrown);
  assert.deepEqual(readdirSync(parent), []);
  await exportStore(dir, out);
  const into = tempDir();
  assert.equal(await importStore(out, into, { onProgress: stop }).then(() => undefined, (e: unknown) => e), thrown);
  assert.deepEqual(readdirSync(into), []);
});
