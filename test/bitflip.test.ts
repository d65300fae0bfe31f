import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemStore, isMemstoreError } from '../src/index.js';
import { clustered, rng, tempDir } from './helpers.js';

/**
 * Bit flips in every file kind (write-ahead log segment, text and vector arena segments, index file, LMDB state): the store
 * either reports CORRUPTION (at open or when the damaged record is read) or, for damage in the
 * log's last record, cuts it off cleanly; it never returns a record different from what was written.
 */
const DIM = 16;
const vectors = clustered(60, DIM, 9);
const written = new Map(vectors.map((v, i) => [`r${i}`, { vector: Array.from(v), text: `text number ${i} `.repeat(1 + (i % 7)), meta: { i } }]));
const ids = [...written.keys()];
const probe = fileURLToPath(new URL('./support/read-all-child.js', import.meta.url));

/** A store whose first half is checkpointed into the state and whose second half lives only in the log. */
async function pristine(): Promise<string> {
  const dir = tempDir('memstore-flip-');
  const first = await MemStore.open(dir, { dim: DIM, cache: false });
  for (const id of ids.slice(0, 30)) await first.add([{ id, ...written.get(id)! }]);
  await first.close();
  const second = await MemStore.open(dir, { cache: false });
  for (const id of ids.slice(30)) await second.add([{ id, ...written.get(id)! }]);
  await second.abandon();
  return dir;
}

/** Where the metadata (JSON text) of a checkpointed record sits in the state file. */
function metaOffset(file: string, id: string): number {
  const needle = Buffer.from(JSON.stringify(written.get(id)!.meta));
  const at = readFileSync(file).indexOf(needle);
  assert.ok(at >= 0, `metadata of ${id} not found in ${file}`);
  return at;
}

function flip(file: string, offset: number, bit: number): void {
  const bytes = readFileSync(file);
  bytes[offset]! ^= 1 << bit;
  writeFileSync(file, bytes);
}

type Outcome = { openError: string } | { records: Record<string, null | { error: string } | { vector: number[]; text?: string; meta?: unknown }> };

function judge(outcome: Outcome, where: string): 'corruption' | 'clean' {
  if ('openError' in outcome) {
    assert.equal(outcome.openError, 'CORRUPTION', `${where}: open failed with ${outcome.openError}`);
    return 'corruption';
  }
  let sawError = false;
  let missing = 0;
  for (const id of ids) {
    const got: null | undefined | { error: string } | { vector: number[]; text?: string; meta?: unknown } = outcome.records[id];
    const want = written.get(id)!;
    if (got === null || got === undefined) {
      missing++;
      continue;
    }
    if ('error' in got) {
      assert.equal(got.error, 'CORRUPTION', `${where}: reading ${id} failed with ${got.error}`);
      sawError = true;
      continue;
    }
    assert.deepEqual(got.vector, want.vector, `${where}: ${id} has a different vector`);
    assert.equal(got.text, want.text, `${where}: ${id} has a different text`);
    assert.deepEqual(got.meta, want.meta, `${where}: ${id} has different metadata`);
  }
  // A clean cut loses only the log's last record (the last id written), never one in the middle.
  if (missing > 0) assert.deepEqual(ids.filter((id) => outcome.records[id] == null), ids.slice(ids.length - missing), `${where}: records missing from the middle`);
  assert.ok(missing <= 1, `${where}: ${missing} records lost to one flipped bit`);
  return sawError ? 'corruption' : 'clean';
}

function filesOf(dir: string): { kind: string; path: string }[] {
  const out = [{ kind: 'state', path: join(dir, 'state.mdb') }];
  for (const name of readdirSync(join(dir, 'wal'))) out.push({ kind: 'wal', path: join(dir, 'wal', name) });
  for (const name of readdirSync(join(dir, 'arena'))) out.push({ kind: 'arena', path: join(dir, 'arena', name) });
  for (const name of readdirSync(join(dir, 'vectors'))) out.push({ kind: 'vectors', path: join(dir, 'vectors', name) });
  for (const name of readdirSync(join(dir, 'index'))) out.push({ kind: 'index', path: join(dir, 'index', name) });
  return out;
}

test('a flipped bit anywhere in the log, the arena or the state is reported or cut, never returned as data', async () => {
  const source = await pristine();
  const next = rng(4242);
  const tally: Record<string, Record<string, number>> = {};
  for (const { kind, path } of filesOf(source)) {
    const size = statSync(path).size;
    for (let n = 0; n < (kind === 'state' ? 18 : 30); n++) {
      const copy = tempDir('memstore-flipped-');
      cpSync(source, copy, { recursive: true });
      const target = join(copy, path.slice(source.length));
      // The state file is mostly free pages: aim half its flips into stored metadata, the rest anywhere.
      const offset = kind === 'state' && n % 2 === 0 ? metaOffset(target, ids[n % 30]!) + Math.floor(next() * 6) : Math.floor(next() * size);
      flip(target, offset, Math.floor(next() * 8));
      let outcome: Outcome;
      if (kind === 'state') {
        // LMDB trusts its pages and may abort on a damaged one: probe in a child process.
        try {
          outcome = JSON.parse(execFileSync(process.execPath, [probe, copy, ids.join(',')], { encoding: 'utf8' }).trim()) as Outcome;
        } catch {
          (tally[kind] ??= {})['process aborted (no data returned)'] = ((tally[kind] ??= {})['process aborted (no data returned)'] ?? 0) + 1;
          continue;
        }
      } else {
        outcome = await readInProcess(copy);
      }
      const verdict = judge(outcome, `${kind} ${path.slice(source.length)} byte ${offset}`);
      (tally[kind] ??= {})[verdict] = ((tally[kind] ??= {})[verdict] ?? 0) + 1;
    }
  }
  process.stdout.write(`# bit flips: ${JSON.stringify(tally)}\n`);
});

async function readInProcess(dir: string): Promise<Outcome> {
  let store: MemStore;
  try {
    store = await MemStore.open(dir, { cache: false });
  } catch (e) {
    return { openError: isMemstoreError(e) ? e.code : String(e) };
  }
  const records: Record<string, null | { error: string } | { vector: number[]; text?: string; meta?: unknown }> = {};
  for (const id of ids) {
    try {
      const r = await store.get(id);
      records[id] = r === undefined ? null : { vector: Array.from(r.vector), ...(r.text === undefined ? {} : { text: r.text }), ...(r.meta === undefined ? {} : { meta: r.meta }) };
    } catch (e) {
      records[id] = { error: isMemstoreError(e) ? e.code : String(e) };
    }
  }
  await store.abandon();
  return { records };
}
