import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { open as openLmdb, type Database } from 'lmdb';
import { MemStore } from '../src/index.js';
import { statePath } from '../src/store/files.js';
import { FORMAT_VERSION, READABLE_FORMAT_VERSIONS, StateStore } from '../src/store/state.js';
import { INTENT_CHUNK_BYTES, intentChunks, opsOfChunks, valueOf, type StateOp } from '../src/store/state-intent.js';
import { repairStore } from '../src/store/repair.js';
import { checkStore } from '../src/store/verify.js';
import { cliResult } from './support/cli.js';
import { corruptionOf, readStateRecord, tempDir, writeStateBytes, writeStateRecord } from './helpers.js';
import { CUT_DIM, cutCommitExpected, cutCommitRemoved } from './support/cut-commit-records.js';

/**
 * lmdb-js commits what a transaction's callback had written when the thread running it is
 * terminated (a worker retired by its pool mid-compact() had hundreds of records left CORRUPTION:
 * texts moved to a new arena generation under a checkpoint naming the old one). The state's commits
 * therefore write their writes first as one redo record (src/store/state-intent.ts, STATE.md "A
 * commit cut short"); these tests cut compact()'s transactions at chosen writes and kill the process
 * there, and terminate real workers mid-compact().
 */
const CHILD = fileURLToPath(new URL('./support/cut-commit-child.js', import.meta.url));
const TERMINATE_CHILD = fileURLToPath(new URL('./support/terminate-child.js', import.meta.url));
const TERMINATIONS = Number(process.env['TERMINATIONS'] ?? 9);

/** Runs `node script ...args` to its end; resolves with its output and the signal that ended it (null: it exited 0). */
function run(script: string, args: readonly string[]): Promise<{ out: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`child failed (code ${code}): ${err}`));
      else resolve({ out, signal });
    });
  });
}

/** Runs the cut child; resolves with what it printed and whether it died by SIGKILL (its own, after the cut). */
async function runChild(dir: string, transaction: number, fraction: number): Promise<{ out: string; killed: boolean }> {
  const { out, signal } = await run(CHILD, [dir, String(transaction), String(fraction)]);
  return { out, killed: signal === 'SIGKILL' };
}

const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function assertHoldsEverything(dir: string, what: string): Promise<void> {
  const expected = cutCommitExpected();
  const store = await MemStore.open(dir, { dim: CUT_DIM });
  try {
    assert.equal(store.stats().count, expected.size, `${what}: count`);
    assert.equal(store.stats().damaged, 0, `${what}: damaged records`);
    for (const [id, r] of expected) {
      const got = await store.get(id);
      assert.equal(got?.text, r.text, `${what}: text of ${id}`);
      assert.deepEqual(got?.meta, r.meta, `${what}: metadata of ${id}`);
    }
    for (const id of cutCommitRemoved()) assert.equal(await store.get(id), undefined, `${what}: ${id} was deleted`);
    const [first] = expected.values();
    const hits = await store.search(first!.vector, { k: 1, exact: true });
    assert.equal(hits[0]?.id, first!.id, `${what}: a search finds the record itself`);
  } finally {
    await store.close();
  }
  const state = StateStore.open(dir);
  try {
    assert.equal(state.hasPending, false, `${what}: the open applied what the cut commit decided`);
  } finally {
    await state.close();
  }
}

describe('a commit cut short (lmdb-js commits a terminated callback\'s writes)', () => {
  // compact() of the child's store: a commit of more than one write is two transactions, its redo
  // record (chunks, header, the configuration marked) and its writes (then the record's removal):
  // 1, 2 the checkpoint (over a hundred writes), 3 a log segment's mark (one write), 4, 5 the
  // texts' collection (every text moved), 6 the vectors' collection, 7 the index rewrite.
  const cases: [transaction: number, fraction: number][] = [
    // Before any write, after the chunk, after the header (configuration not marked), whole.
    ...[0, 0.34, 0.67, 1].flatMap((f): [number, number][] => [[1, f], [4, f]]),
    // Before any write, after the first, midway, before the chunk goes, whole.
    ...[0, 0.01, 0.5, 0.99, 1].flatMap((f): [number, number][] => [[2, f], [5, f]]),
    [3, 0], [6, 0], [7, 0],
  ];
  for (const [transaction, fraction] of cases) {
    it(`compact()'s transaction ${transaction} cut after ${fraction * 100}% of its writes, then kill -9: every record reads as written, verify finds nothing and changes no byte before the open`, async () => {
      const dir = tempDir('memstore-cut-');
      const { out, killed } = await runChild(dir, transaction, fraction);
      assert.ok(killed && out.startsWith('cut '), `the child cut transaction ${transaction}: ${out}`);
      const before = digest(statePath(dir));
      const report = await checkStore(dir);
      assert.deepEqual(report.problems, [], 'verify reads the state the cut commit decided');
      assert.equal(digest(statePath(dir)), before, 'verify wrote nothing');
      await assertHoldsEverything(dir, `transaction ${transaction} cut at ${fraction}`);
    });
  }

  it('workers terminated at random moments while they add and compact: every acknowledged record reads back after each, and verify finds nothing', async () => {
    const dir = tempDir('memstore-cut-worker-');
    const acked = new Set<string>();
    const bad: string[] = [];
    let round = 0;
    let aborts = 0;
    // A child per run: lmdb-js can abort a process whose worker it was called from when terminated.
    for (let child = 0; round < TERMINATIONS && child < TERMINATIONS; child++) {
      const { out, signal } = await run(TERMINATE_CHILD, [dir, String(round), String(TERMINATIONS - round), String(child + 1)]);
      for (const line of out.split('\n')) {
        if (line.startsWith('ack ')) acked.add(line.slice(4));
        else if (line.startsWith('bad ')) bad.push(line.slice(4));
        else if (line.startsWith('round ')) round = Number(line.slice(6)) + 1;
      }
      if (signal !== null) {
        aborts++;
        round++;
      }
    }
    assert.deepEqual(bad, [], 'no reopened store lacked an acknowledged record');
    assert.ok(acked.size > 0, 'the workers acknowledged writes');
    const store = await MemStore.open(dir, { dim: 8 });
    try {
      assert.equal(store.stats().damaged, 0);
      for (const id of acked) assert.equal((await store.get(id))?.text, `${id} ${'x'.repeat(100)}`, id);
    } finally {
      await store.close();
    }
    assert.deepEqual((await checkStore(dir)).problems, []);
    process.stdout.write(`# terminated workers: ${TERMINATIONS} rounds, ${acked.size} acknowledged records, ${aborts} processes aborted by lmdb-js\n`);
  });
});

/** The config sub-database of a store's state, opened as plain LMDB: what damage a test makes. */
async function withConfig<T>(dir: string, fn: (config: Database<Buffer, string>) => Promise<T>): Promise<T> {
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  try {
    return await fn(env.openDB<Buffer, string>({ name: 'config', encoding: 'binary' }));
  } finally {
    await env.close();
  }
}

/** A store whose compact() had its texts' collection cut midway (header written, half its writes made). */
async function cutStore(): Promise<string> {
  const dir = tempDir('memstore-cut-');
  const { killed } = await runChild(dir, 5, 0.5);
  assert.ok(killed);
  return dir;
}

describe('the redo record (STATE.md, "A commit cut short")', () => {
  it('writes go through chunks and come back in order, each value and removal as it was', () => {
    const big = Buffer.alloc(INTENT_CHUNK_BYTES + 10, 7);
    const ops: StateOp[] = [
      { table: 'config', key: 'checkpoint', value: Buffer.from([1, 2, 3]) },
      { table: 'docs', key: Buffer.from('r1'), value: null },
      { table: 'docs', key: Buffer.from([0xff, 0]), value: big },
      { table: 'docs', key: Buffer.from('\u{1F600}'), value: Buffer.alloc(0) },
      { table: 'docs', key: Buffer.from('made'), value: () => Buffer.from('when written') },
    ];
    const chunks = intentChunks(ops);
    assert.equal(chunks.length, 2, 'a chunk ends once it holds INTENT_CHUNK_BYTES');
    const back = opsOfChunks(chunks);
    assert.deepEqual(back.map((o) => [o.table, Buffer.from(o.key).toString('hex'), valueOf(o)?.toString('hex') ?? null]),
      ops.map((o) => [o.table, Buffer.from(o.key).toString('hex'), valueOf(o)?.toString('hex') ?? null]));
  });

  it('a chunk cut short, or naming a table that is not there, does not decode', () => {
    const [chunk] = intentChunks([{ table: 'docs', key: Buffer.from('abc'), value: Buffer.from('value') }]);
    assert.throws(() => opsOfChunks([chunk!.subarray(0, chunk!.length - 1)]));
    assert.throws(() => opsOfChunks([chunk!.subarray(0, 3)]));
    const other = Buffer.from(chunk!);
    other[0] = 2;
    assert.throws(() => opsOfChunks([other]));
  });

  it('a header naming a chunk that is missing: open is CORRUPTION at config/intent.0; verify lists it (and the records the cut left half written) and changes no byte', async () => {
    const dir = await cutStore();
    await withConfig(dir, (config) => config.remove('intent.0'));
    const before = digest(statePath(dir));
    const e = await corruptionOf(() => MemStore.open(dir, { dim: CUT_DIM }));
    assert.equal(e.offset, 'config/intent.0');
    const report = await checkStore(dir);
    assert.deepEqual(report.problems.filter((p) => p.id === undefined).map((p) => p.offset), ['config/intent.0']);
    assert.ok(report.damagedRecords.length > 0, 'the texts the cut moved name a generation the state does not');
    const cli = await cliResult(['verify', dir]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.equal(digest(statePath(dir)), before);
  });

  it('repair sets a damaged record aside (a redo line in its report) and reports the records the cut left half written; the store is then clean', async () => {
    const dir = await cutStore();
    await withConfig(dir, (config) => config.remove('intent.0'));
    const { report } = await repairStore(dir);
    const lines = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; id?: string; offset?: string });
    assert.deepEqual(lines.filter((l) => l.kind === 'redo').map((l) => l.offset), ['config/intent.0']);
    const lost = new Set(lines.filter((l) => l.kind === 'record').map((l) => l.id));
    assert.ok(lost.size > 0, 'the texts the cut moved are lost with the record that moved them');
    assert.deepEqual((await checkStore(dir)).problems, []);
    const expected = cutCommitExpected();
    const store = await MemStore.open(dir, { dim: CUT_DIM });
    try {
      assert.equal(store.stats().count, expected.size - lost.size);
      for (const [id, r] of expected) {
        if (!lost.has(id)) assert.equal((await store.get(id))?.text, r.text, id);
      }
    } finally {
      await store.close();
    }
  });

  it('while a redo record may be half applied, the configuration names a format version no earlier memstore reads (one had read the half and deleted the texts it took for leftovers); the open puts it back', async () => {
    for (const [transaction, fraction, marked] of [[5, 0.5, true], [4, 0.67, false], [4, 1, true]] as const) {
      const dir = tempDir('memstore-cut-');
      assert.ok((await runChild(dir, transaction, fraction)).killed);
      const version = (await readStateRecord(dir, 'config'))['formatVersion'];
      if (marked) assert.ok(typeof version === 'number' && !READABLE_FORMAT_VERSIONS.includes(version) && version > FORMAT_VERSION, `transaction ${transaction} at ${fraction}: ${String(version)}`);
      // Cut before the mark: nothing of the commit's writes is in the tables, which any memstore reads as they are.
      else assert.equal(version, FORMAT_VERSION);
      await assertHoldsEverything(dir, `transaction ${transaction} at ${fraction}`);
      assert.equal((await readStateRecord(dir, 'config'))['formatVersion'], FORMAT_VERSION);
    }
  });

  it('a configuration marked for a redo record that is not there: open is CORRUPTION at config/config', async () => {
    const dir = tempDir('memstore-cut-');
    assert.ok((await runChild(dir, 4, 1)).killed, 'the texts\' redo record written whole, mark included');
    await withConfig(dir, (config) => config.remove('intent'));
    assert.equal((await corruptionOf(() => MemStore.open(dir, { dim: CUT_DIM }))).offset, 'config/config');
  });

  it('a chunk whose seal fails: open is CORRUPTION at that chunk', async () => {
    const dir = await cutStore();
    await withConfig(dir, async (config) => {
      const raw = Buffer.from(config.getBinary('intent.0')!);
      raw[raw.length - 1]! ^= 1;
      await config.put('intent.0', raw);
    });
    assert.equal((await corruptionOf(() => MemStore.open(dir, { dim: CUT_DIM }))).offset, 'config/intent.0');
  });

  it('a header that is not { chunks: n > 0 }: open is CORRUPTION at config/intent', async () => {
    const dir = await cutStore();
    await writeStateRecord(dir, 'intent', { chunks: 0 });
    assert.equal((await corruptionOf(() => MemStore.open(dir, { dim: CUT_DIM }))).offset, 'config/intent');
  });

  it('chunks without a header (a commit cut while writing them): the state is the one before, and the next open removes them', async () => {
    const dir = tempDir('memstore-cut-');
    const { killed, out } = await runChild(dir, 4, 0.001);
    assert.ok(killed && out.startsWith('cut 0 '), out);
    await withConfig(dir, async (config) => {
      assert.equal(config.getBinary('intent.0'), undefined, 'a cut before any write leaves nothing');
    });
    await writeStateBytes(dir, 'intent.0', intentChunks([{ table: 'docs', key: Buffer.from('r1'), value: null }])[0]!);
    await assertHoldsEverything(dir, 'a chunk without its header');
    await withConfig(dir, async (config) => assert.equal(config.getBinary('intent.0'), undefined, 'the open removed the chunk'));
  });
});
