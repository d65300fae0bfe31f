import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';
import { Worker } from 'node:worker_threads';
import { threadClaims } from '../io/thread-claims.js';
import { MemStore, MemstoreError } from '../src/index.js';
import { nodeFileLayer, type FileLayer } from '../io/file-layer.js';
import { checkStore } from '../src/store/verify.js';
import { rejectsWith, tempDir } from './helpers.js';

/**
 * A lock file names a process. The threads of this process that hold a directory are known to the
 * native claims addon (io/thread-claims.ts): a store left open in a worker that is terminated does
 * not keep its directory locked for the rest of the process, and one open in a live worker does.
 */
const WORKER = new URL('./support/lock-worker.js', import.meta.url);

function startWorker(dir: string, records: number, module?: string): Promise<{ worker: Worker; said: string }> {
  const worker = new Worker(WORKER, { workerData: { dir, records, ...(module === undefined ? {} : { module }) } });
  return new Promise((resolve, reject) => {
    worker.once('message', (said: string) => resolve({ worker, said }));
    worker.once('error', reject);
  });
}

it("a lock removes its file only if the file holds what it wrote: another holder's lock that took the same inode number (deleted, made again) stays", async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 4 });
  const lock = join(dir, 'LOCK');
  assert.equal(Number.parseInt(readFileSync(lock, 'utf8'), 10), process.pid, 'the pid first, as readers parse it');
  // Written in place: the same inode, as a file system hands a deleted file's inode number to the next file made.
  writeFileSync(lock, `${process.pid}\nanother-holder\n`);
  await store.close();
  assert.ok(existsSync(lock), 'the other holder keeps its lock file');
  rmSync(lock);
  const again = await MemStore.open(dir, { dim: 4 });
  await again.close();
  assert.equal(existsSync(lock), false, 'its own file it removes');
});

/**
 * A second copy of memstore, as a nested node_modules brings one: this build's modules and native
 * addons copied elsewhere (its own module state, its own addon's memory), beside the same
 * dependencies. Returns the file to import.
 */
function secondCopy(): string {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const copy = tempDir();
  for (const part of ['dist/src', 'dist/io', 'dist/wal', 'native/build/Release']) cpSync(join(root, part), join(copy, part), { recursive: true });
  writeFileSync(join(copy, 'package.json'), JSON.stringify({ type: 'module' }));
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  return join(copy, 'dist', 'src', 'index.js');
}

it('an open removes the private lock files of dead processes (killed between writing a lock and linking it), and leaves those of live ones and every other name', async () => {
  const dir = tempDir();
  await (await MemStore.open(dir, { dim: 4 })).close();
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const names = [`LOCK.${dead}.abc123`, `LOCK.takeover.${dead}.zz9`, `LOCK.${process.ppid}.keep1`, `LOCKX.${dead}.abc`, `LOCK.${dead}.ABC`, `LOCK.${dead}`];
  for (const name of names) writeFileSync(join(dir, name), `${dead}\n`);
  const store = await MemStore.open(dir, { dim: 4 });
  await store.close();
  assert.deepEqual(names.filter((name) => existsSync(join(dir, name))), names.slice(2));
});

/** A worker holding a store of `records` records in a directory that is then deleted and made again under its name. */
async function workerInRemadeDirectory(records: number): Promise<{ dir: string; worker: Worker }> {
  const dir = tempDir();
  const { worker, said } = await startWorker(dir, records);
  assert.equal(said, 'open');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  return { dir, worker };
}

describe('the directory lock and worker threads', { skip: threadClaims === undefined ? 'the native claims addon is not built' : false }, () => {
  it('a store open in a live worker is LOCKED to the main thread; once the worker is terminated without close(), the directory opens, with what the worker wrote', async () => {
    const dir = tempDir();
    const { worker, said } = await startWorker(dir, 5);
    assert.equal(said, 'open');
    await rejectsWith(() => MemStore.open(dir, { dim: 4 }), 'LOCKED');
    await worker.terminate();
    const store = await MemStore.open(dir, { dim: 4 });
    try {
      assert.equal(store.stats().count, 5, 'the acknowledged writes of the worker are there');
    } finally {
      await store.close();
    }
  });

  it('a directory the main thread holds is LOCKED to a worker; after close() the worker opens it', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim: 4 });
    const first = await startWorker(dir, 0);
    assert.equal(first.said, 'error LOCKED');
    await first.worker.terminate();
    await store.close();
    const second = await startWorker(dir, 0);
    assert.equal(second.said, 'open');
    await second.worker.terminate();
  });

  it('two spellings of one directory (a symlink, a relative path) are one: LOCKED through either while a worker or this thread holds it', async () => {
    const dir = tempDir();
    const link = join(tempDir(), 'link');
    symlinkSync(dir, link);
    const { worker, said } = await startWorker(dir, 1);
    assert.equal(said, 'open');
    // Taken over as a lock no live thread claims under that name, it would make two writers.
    await rejectsWith(() => MemStore.open(link, { dim: 4 }), 'LOCKED');
    await rejectsWith(() => MemStore.open(relative(process.cwd(), dir), { dim: 4 }), 'LOCKED');
    await worker.terminate();
    const store = await MemStore.open(link, { dim: 4 });
    try {
      await rejectsWith(() => MemStore.open(dir, { dim: 4 }), 'LOCKED');
      assert.equal(store.stats().count, 1);
    } finally {
      await store.close();
    }
    const again = await MemStore.open(dir, { dim: 4 });
    await again.close();
  });

  it("a holder whose directory was deleted and made again does not remove the new holder's lock when it closes", async () => {
    const { dir, worker } = await workerInRemadeDirectory(1);
    // Another directory now, by its inode: nothing holds it.
    const store = await MemStore.open(dir, { dim: 4 });
    try {
      worker.postMessage('close');
      await new Promise((resolve) => worker.once('message', resolve));
      const lock = join(dir, 'LOCK');
      assert.ok(existsSync(lock), 'the new holder keeps its lock file');
      assert.equal(Number.parseInt(readFileSync(lock, 'utf8'), 10), process.pid);
    } finally {
      await store.close();
      await worker.terminate();
    }
    assert.equal(existsSync(join(dir, 'LOCK')), false, 'and removes it when it closes');
  });

  it('a store whose directory was deleted and made again under its name leaves the new store there alone: its close fails (IO) instead of writing over it', async () => {
    const { dir, worker } = await workerInRemadeDirectory(300);
    const mine = Array.from({ length: 50 }, (_, i) => ({ id: `b${i}`, vector: Float32Array.of(i + 1, -i, 0.5, 2) }));
    const store = await MemStore.open(dir, { dim: 4 });
    await store.add(mine);
    worker.postMessage('close');
    const closed = await new Promise<string>((resolve) => worker.once('message', resolve));
    await worker.terminate();
    // Its checkpoint, log rotation and arena segments would have been made by path, in this directory.
    assert.equal(closed, 'close failed IO');
    await store.add([{ id: 'after', vector: Float32Array.of(9, 9, 9, 9) }]);
    await store.close();
    const again = await MemStore.open(dir);
    try {
      assert.equal(again.stats().count, 51);
      for (const r of mine) assert.deepEqual((await again.get(r.id))?.vector, r.vector, r.id);
      assert.equal(await again.get('w0'), undefined);
    } finally {
      await again.close();
    }
    assert.deepEqual((await checkStore(dir)).problems, []);
  });

  it('a worker opening a directory the main thread holds, again and again while the main thread writes and compacts, is LOCKED every time and leaves the main store whole (found by a hostile pass: its look into state.mdb went through the LMDB environment the holder shares, and the holder\'s compactions failed with IO, then SIGSEGV)', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim: 4 });
    const until = Date.now() + 1500;
    const worker = new Worker(new URL('./support/open-loop-worker.js', import.meta.url), { workerData: { dir, until } });
    const outcomes = new Promise<Record<string, number>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    let rounds = 0;
    try {
      for (; Date.now() < until; rounds++) {
        await store.add([{ id: `r${rounds % 20}`, vector: Float32Array.of(1, 2, 3, (rounds % 5) + 1), text: `t${rounds}` }]);
        await store.compact();
        assert.equal((await store.get(`r${rounds % 20}`))?.text, `t${rounds}`);
      }
    } finally {
      await store.close();
    }
    const tried = await outcomes;
    assert.deepEqual(Object.keys(tried), ['LOCKED'], JSON.stringify(tried));
    assert.ok(tried['LOCKED']! > 10 && rounds > 5, `${JSON.stringify(tried)}, ${rounds} rounds`);
    assert.equal((await checkStore(dir)).problems.length, 0);
  });

  it('a second copy of memstore in the process (its own modules and addon, as a nested node_modules brings) is LOCKED out of a directory the first holds, in this thread and in a worker, and opens it once the first closed (it had taken the lock over, and an acknowledged write was lost)', async () => {
    const other = secondCopy();
    const second = (await import(other)) as typeof import('../src/index.js');
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim: 4 });
    await store.add([{ id: 'first', vector: [1, 0, 0, 0] }]);
    await rejectsWith(() => second.MemStore.open(dir, { dim: 4 }), 'LOCKED');
    const inWorker = await startWorker(dir, 1, other);
    assert.equal(inWorker.said, 'error LOCKED');
    await inWorker.worker.terminate();
    await store.add([{ id: 'acknowledged', vector: [0, 1, 0, 0] }]);
    await store.close();
    const reopened = await second.MemStore.open(dir, { dim: 4 });
    assert.deepEqual(reopened.ids().sort(), ['acknowledged', 'first']);
    await reopened.close();
    assert.deepEqual((await checkStore(dir)).problems, []);
  });

  it('a worker terminated with its store open leaves a lock another process takes over, with what the worker wrote (other processes had found it LOCKED until this process exited)', async () => {
    const dir = tempDir();
    const { worker, said } = await startWorker(dir, 3);
    assert.equal(said, 'open');
    const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
    const inOther = (): string =>
      execFileSync(process.execPath, ['--input-type=module', '-e', `const { MemStore } = await import(${JSON.stringify(index)}); try { const s = await MemStore.open(${JSON.stringify(dir)}, { dim: 4 }); console.log(s.stats().count); await s.close(); } catch (e) { console.log(e.code); }`], { encoding: 'utf8' }).trim();
    assert.equal(inOther(), 'LOCKED', 'while the worker lives');
    await worker.terminate();
    assert.equal(inOther(), '3');
  });

  it('a lock file whose holder says it holds it open locked is stale once no one holds that lock, whatever process it names; one that does not say so is judged by its pid', async () => {
    const dir = tempDir();
    await (await MemStore.open(dir, { dim: 4 })).close();
    const lock = join(dir, 'LOCK');
    // The parent of this process: alive, and not this process.
    writeFileSync(lock, `${process.ppid}\nleft-behind\nheld\n`);
    const store = await MemStore.open(dir, { dim: 4 });
    assert.deepEqual(readFileSync(lock, 'utf8').split('\n').slice(2), ['held', ''], 'this lock says it is held so too');
    await store.close();
    writeFileSync(lock, `${process.ppid}\nleft-behind\n`);
    await rejectsWith(() => MemStore.open(dir, { dim: 4 }), 'LOCKED');
  });

  it('a lock whose holder closes while an opener takes it over is judged afresh: a third opener that made its own meanwhile keeps it, and the taker is LOCKED (the taker had removed it: two processes held the store, an acknowledged write lost)', async () => {
    const base = tempDir();
    const dir = join(base, 'store');
    await (await MemStore.open(dir, { dim: 4 })).close();
    const lockFile = join(dir, 'LOCK');
    const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
    const flag = (name: string) => join(base, name);
    const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    const waitFor = (name: string) => {
      const until = Date.now() + 30_000;
      while (!existsSync(flag(name))) {
        if (Date.now() > until) throw new Error(`waited for ${name}`);
        sleep(5);
      }
    };
    // A process that opens the store (once `start` is there), says so, and closes it when told.
    const holder = (name: string, start?: string) =>
      spawn(process.execPath, ['--input-type=module', '-e', [
        "import { existsSync, writeFileSync } from 'node:fs';",
        `const { MemStore } = await import(${JSON.stringify(index)});`,
        'const sleep = (ms) => new Promise((r) => setTimeout(r, ms));',
        start === undefined ? '' : `while (!existsSync(${JSON.stringify(flag(start))})) await sleep(5);`,
        `const s = await MemStore.open(${JSON.stringify(dir)}, { dim: 4 });`,
        `await s.add([{ id: ${JSON.stringify(name)}, vector: [1, 2, 3, 4] }]);`,
        `writeFileSync(${JSON.stringify(flag(`${name}-open`))}, '');`,
        `while (!existsSync(${JSON.stringify(flag(`close-${name}`))})) await sleep(5);`,
        'await s.close();',
        `writeFileSync(${JSON.stringify(flag(`${name}-closed`))}, '');`,
      ].join('\n')], { stdio: 'ignore' });
    const h = holder('H');
    waitFor('H-open');
    let reads = 0;
    // The taker's own file layer, which only waits: its first look at LOCK lets H close; its next
    // step at LOCK (a removal, or its own lock linked into place) lets Y open first.
    const yNow = () => {
      if (existsSync(flag('H-closed')) && !existsSync(flag('go-Y'))) {
        writeFileSync(flag('go-Y'), '');
        waitFor('Y-open');
      }
    };
    const files: FileLayer = {
      ...nodeFileLayer,
      readFileSync: (path) => {
        const bytes = nodeFileLayer.readFileSync(path);
        if (path === lockFile && ++reads === 1) {
          writeFileSync(flag('close-H'), '');
          waitFor('H-closed');
        }
        return bytes;
      },
      removeSync: (path) => {
        if (path === lockFile) yNow();
        nodeFileLayer.removeSync(path);
      },
      linkSync: (existing, path) => {
        if (path === lockFile) yNow();
        nodeFileLayer.linkSync(existing, path);
      },
    };
    const y = holder('Y', 'go-Y');
    let taker: unknown;
    let yOpen = false;
    try {
      taker = await MemStore.open(dir, { dim: 4, files }).catch((e: unknown) => e);
      yOpen = existsSync(flag('Y-open'));
      if (taker instanceof MemStore) await taker.close();
    } finally {
      // Whatever happened, both holders are told to close, and ended if they do not.
      for (const name of ['close-H', 'close-Y', 'go-Y']) writeFileSync(flag(name), '');
      await Promise.all([h, y].map((child) => new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
        const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => resolve(clearTimeout(kill)));
      })));
    }
    assert.ok(yOpen, 'the third opener opened in the window');
    assert.ok(taker instanceof MemstoreError && taker.code === 'LOCKED', `the taker: ${String(taker)}`);
    assert.deepEqual((await checkStore(dir)).problems, []);
  });

  it('two workers: the second is LOCKED while the first lives, and opens once it is terminated', async () => {
    const dir = tempDir();
    const a = await startWorker(dir, 1);
    assert.equal(a.said, 'open');
    const b = await startWorker(dir, 0);
    assert.equal(b.said, 'error LOCKED');
    await b.worker.terminate();
    await a.worker.terminate();
    const c = await startWorker(dir, 0);
    assert.equal(c.said, 'open');
    await c.worker.terminate();
  });
});
