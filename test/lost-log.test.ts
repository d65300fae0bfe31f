import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemStore, MemstoreError } from '../src/index.js';
import { open as openLmdb } from 'lmdb';
import { nodeFileLayer, type FileLayer } from '../io/file-layer.js';
import { statePath, walDir } from '../src/store/files.js';
import { StateStore, stateWriteHooks } from '../src/store/state.js';
import { parseSegmentName } from '../wal/format.js';
import { tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

const storeModule = fileURLToPath(new URL('../src/index.js', import.meta.url));
const vec = (i: number) => [Math.cos(i), Math.sin(i), 1, i % 3];

/** Adds r{from}..r{to-1} in a child process that then exits without closing: the writes are acknowledged and in the log only, as after kill -9. */
function addAndDie(dir: string, from: number, to: number): void {
  const script = `
    const { MemStore } = await import(${JSON.stringify(storeModule)});
    const s = await MemStore.open(${JSON.stringify(dir)}, { dim: 4 });
    for (let i = ${from}; i < ${to}; i++) await s.add([{ id: 'r' + i, vector: [Math.cos(i), Math.sin(i), 1, i % 3] }]);
    process.exit(0);`;
  execFileSync(process.execPath, ['--input-type=module', '-e', script]);
}

async function checkpointed(dir: string, n: number): Promise<void> {
  const s = await MemStore.open(dir, { dim: 4 });
  for (let i = 0; i < n; i++) await s.add([{ id: `r${i}`, vector: vec(i) }]);
  await s.close();
}

test('lost log: a store whose log directory is gone refuses to open (CORRUPTION naming it), and changes nothing', async () => {
  const dir = tempDir();
  await checkpointed(dir, 5);
  addAndDie(dir, 5, 9);
  rmSync(walDir(dir), { recursive: true });
  const e = await MemStore.open(dir).then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof MemstoreError, `expected a MemstoreError, got ${String(e)}`);
  assert.equal(e.code, 'CORRUPTION');
  assert.equal(e.file, walDir(dir));
  assert.equal(existsSync(walDir(dir)), false, 'the refused open made no new log');
  // Refused again, the same way: nothing was half-done.
  await assert.rejects(MemStore.open(dir), (err: unknown) => err instanceof MemstoreError && err.code === 'CORRUPTION');
});

test('lost log: verify names the missing log directory; repair reports the loss and opens the store as of its checkpoint', async () => {
  const dir = tempDir();
  await checkpointed(dir, 5);
  addAndDie(dir, 5, 9);
  rmSync(walDir(dir), { recursive: true });
  await repairedAsOfCheckpoint(dir, 'log-missing', walDir(dir));
});

/**
 * `dir` holds r0..r4 checkpointed and lost the part of its log that held r5..r8: verify names
 * `file`, repair reports it as a `kind` line whose loss is unknown, and afterwards the store is
 * sound, holds r0..r4 as they were written, and keeps the writes that follow.
 */
async function repairedAsOfCheckpoint(dir: string, kind: string, file: string): Promise<void> {
  const verified = await cliResult(['verify', dir]);
  assert.notEqual(verified.code, 0);
  assert.ok(verified.stdout.includes(file), verified.stdout);
  const report = join(tempDir('memstore-report-'), 'report.jsonl');
  const repaired = await cliResult(['repair', dir, '--report', report]);
  assert.equal(repaired.code, 0, repaired.stderr + repaired.stdout);
  const lines = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; file?: string; lostAfterCheckpoint?: unknown });
  const missing = lines.filter((l) => l.kind === kind);
  assert.equal(missing.length, 1);
  assert.equal(missing[0]!.file, file);
  assert.equal(missing[0]!.lostAfterCheckpoint, 'unknown');
  assert.equal((await cliResult(['verify', dir])).code, 0);
  const s = await MemStore.open(dir);
  try {
    // The checkpoint's records; the four acknowledged only in what was lost are gone, as reported.
    assert.equal(s.stats().count, 5);
    for (let i = 0; i < 5; i++) assert.deepEqual(Array.from((await s.get(`r${i}`))!.vector), Array.from(Float32Array.from(vec(i))));
    await s.add([{ id: 'after', vector: vec(20) }]);
  } finally {
    await s.close();
  }
  const again = await MemStore.open(dir);
  try {
    assert.equal(again.stats().count, 6, 'the log holds the writes after the repair');
  } finally {
    await again.close();
  }
}

test('lost log: the mark is made at the first open, so a store that never opened with a log is not refused for lacking one', async () => {
  const dir = tempDir();
  await checkpointed(dir, 1);
  const state = StateStore.open(dir);
  try {
    assert.equal(state.readLogMade(), true);
  } finally {
    await state.close();
  }
  // A store whose state has no mark (made before it existed, or killed between making its state
  // and its log) opens without its log directory, and is marked from then on.
  const legacy = tempDir();
  await checkpointed(legacy, 2);
  const env = openLmdb({ path: statePath(legacy), maxDbs: 8 });
  try {
    assert.equal(await env.openDB({ name: 'config', encoding: 'binary' }).remove('logMade'), true);
  } finally {
    await env.close();
  }
  rmSync(walDir(legacy), { recursive: true });
  const s = await MemStore.open(legacy);
  try {
    assert.equal(s.stats().count, 2);
  } finally {
    await s.close();
  }
  assert.ok(existsSync(walDir(legacy)));
  rmSync(walDir(legacy), { recursive: true });
  await assert.rejects(MemStore.open(legacy), (err: unknown) => err instanceof MemstoreError && err.code === 'CORRUPTION');
});

test('lost log: a file layer that cannot tell whether the log directory is there fails the open with IO (its cause kept), and it is not taken for a lost log', async () => {
  const dir = tempDir();
  await checkpointed(dir, 2);
  const failure = Object.assign(new Error('EIO: i/o error, stat'), { code: 'EIO' });
  const files: FileLayer = { ...nodeFileLayer, exists: (path: string) => (path === walDir(dir) ? Promise.reject(failure) : nodeFileLayer.exists(path)) };
  const e = await MemStore.open(dir, { files }).then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof MemstoreError, `expected a MemstoreError, got ${String(e)}`);
  assert.equal(e.code, 'IO');
  assert.equal(e.cause, failure);
  const s = await MemStore.open(dir);
  try {
    assert.equal(s.stats().count, 2);
  } finally {
    await s.close();
  }
});

test('lost log: an open that fails between making the log directory and marking it leaves a store that opens, and is marked then', async () => {
  const dir = tempDir();
  // The first write to the state once the log directory exists is the mark.
  stateWriteHooks.beforeWrite = () => {
    if (existsSync(walDir(dir))) throw new Error('injected failure of the mark');
  };
  try {
    const e = await MemStore.open(dir, { dim: 4 }).then(() => undefined, (err: unknown) => err);
    assert.ok(e instanceof MemstoreError && e.code === 'IO', `expected IO, got ${String(e)}`);
  } finally {
    stateWriteHooks.beforeWrite = undefined;
  }
  assert.ok(existsSync(walDir(dir)), 'the log directory was made');
  const before = StateStore.open(dir);
  try {
    assert.equal(before.readLogMade(), false, 'the failure came at the mark');
  } finally {
    await before.close();
  }
  const s = await MemStore.open(dir, { dim: 4 });
  try {
    await s.add([{ id: 'a', vector: vec(1) }]);
  } finally {
    await s.close();
  }
  const after = StateStore.open(dir);
  try {
    assert.equal(after.readLogMade(), true);
  } finally {
    await after.close();
  }
});

/** The segment files of `dir`'s log, by name. */
function segmentsOf(dir: string): string[] {
  return readdirSync(walDir(dir)).filter((name) => parseSegmentName(name) !== undefined).sort();
}

/** The mark of the newest segment the store's log made, read from its state. */
async function markOf(dir: string): Promise<number | undefined> {
  const state = StateStore.open(dir);
  try {
    return state.readLogSegment();
  } finally {
    await state.close();
  }
}

test('lost segment: a store whose newest log segment is gone refuses to open (CORRUPTION naming the segment), and changes nothing', async () => {
  const dir = tempDir();
  await checkpointed(dir, 5);
  addAndDie(dir, 5, 9);
  const [newest] = segmentsOf(dir).slice(-1);
  assert.ok(newest !== undefined);
  assert.equal(await markOf(dir), parseSegmentName(newest), 'the mark names the segment the writes went to');
  rmSync(join(walDir(dir), newest));
  const e = await MemStore.open(dir).then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof MemstoreError, `expected a MemstoreError, got ${String(e)}`);
  assert.equal(e.code, 'CORRUPTION');
  assert.equal(e.file, join(walDir(dir), newest));
  assert.deepEqual(segmentsOf(dir), [], 'the refused open started no new log');
  await assert.rejects(MemStore.open(dir), (err: unknown) => err instanceof MemstoreError && err.code === 'CORRUPTION');
});

test('lost segment: verify names the missing segment; repair reports the loss and opens the store as of what the log still holds', async () => {
  const dir = tempDir();
  await checkpointed(dir, 5);
  addAndDie(dir, 5, 9);
  const [newest] = segmentsOf(dir).slice(-1);
  rmSync(join(walDir(dir), newest!));
  await repairedAsOfCheckpoint(dir, 'log-segment-missing', join(walDir(dir), newest!));
});

test('lost segment: the mark follows every segment the log starts (at open, at rotation by a checkpoint), and an open re-marks a store whose mark is behind', async () => {
  const dir = tempDir();
  const s = await MemStore.open(dir, { dim: 4 });
  try {
    assert.equal(await markOf(dir), 1, 'the first segment of a new store');
    for (let i = 0; i < 3; i++) await s.add([{ id: `r${i}`, vector: vec(i) }]);
  } finally {
    await s.close();
  }
  // close() checkpoints, which starts a segment after the last record.
  const [active] = segmentsOf(dir).slice(-1);
  assert.equal(await markOf(dir), parseSegmentName(active!));
  // A mark behind the newest segment (a kill between making a segment and marking it): no loss,
  // and the open marks the segment it writes to.
  const state = StateStore.open(dir);
  try {
    await state.markLogSegment(1);
  } finally {
    await state.close();
  }
  const reopened = await MemStore.open(dir);
  try {
    assert.equal(reopened.stats().count, 3);
  } finally {
    await reopened.close();
  }
  assert.equal(await markOf(dir), parseSegmentName(segmentsOf(dir).slice(-1)[0]!));
});

test('lost segment: a log emptied of segments whose mark is not past the checkpoint (a kill in the middle of a restart) opens on a new log, as before', async () => {
  const dir = tempDir();
  await checkpointed(dir, 3);
  const state = StateStore.open(dir);
  let checkpointLsn: number;
  try {
    checkpointLsn = state.readCheckpoint().lsn;
    await state.markLogSegment(checkpointLsn);
  } finally {
    await state.close();
  }
  for (const name of segmentsOf(dir)) rmSync(join(walDir(dir), name));
  const s = await MemStore.open(dir);
  try {
    assert.equal(s.stats().count, 3);
  } finally {
    await s.close();
  }
  assert.ok((await markOf(dir))! > checkpointLsn);
});

test('lost segment: a mark that is not a positive integer is CORRUPTION at open and in verify', async () => {
  const dir = tempDir();
  await checkpointed(dir, 1);
  const state = StateStore.open(dir);
  try {
    await state.markLogSegment(0.5);
  } finally {
    await state.close();
  }
  await assert.rejects(MemStore.open(dir), (err: unknown) => err instanceof MemstoreError && err.code === 'CORRUPTION' && err.file === statePath(dir));
  const verified = await cliResult(['verify', dir]);
  assert.notEqual(verified.code, 0);
});
