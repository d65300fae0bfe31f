import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import module from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import workerThreads from 'node:worker_threads';
import { MemStore, MemstoreError, type OpenOptions } from '../src/index.js';
import type { Projector } from '../src/pca/projector.js';
import { fitOffThread, fitThreads, startFit } from '../src/space/fit-job.js';
import { fitModel, VectorSpace, type Fitted } from '../src/space/vector-space.js';
import { clustered, tempDir } from './helpers.js';
import { runUntilKilled } from './support/killable.js';
import { issueBatch, oneProbeAnswers, PAGE_WRITES_BATCHES, PAGE_WRITES_DIM, pageWritesOptions, writeBatch } from './support/page-writes.js';

/**
 * Training off the write (src/space/training.ts): the write that reaches `trainSize` no longer fits
 * the model and re-encodes every buffered vector inside itself. A PCA is fitted in a worker thread
 * and the buffer re-encoded a step at a time with writes held back; searches answer from the buffer
 * meanwhile. The store ends as one that trained inside the write (the same codes in the same slots,
 * so the same answers), however the writes and the training interleave, after a close, an abandon,
 * a compaction or a kill -9 in the window.
 */
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'training-child.js');
const OFF = { minWork: 0, inlineMax: 64, stepMs: 8, reencodeStep: 64, maxBuffered: 4 };
const INSIDE = { minWork: Infinity, inlineMax: Infinity, stepMs: 8, reencodeStep: Infinity, maxBuffered: 4 };
const CONFIGS = ['cosine rq2', 'l2 int8 + PCA 12', 'cosine rq2, trained late', 'l2 int8 + PCA 12, trained late', 'cosine rq2 + PCA 16, trained late'];

/** Runs `body` with fitThreads set to `settings`, then puts the defaults back. */
async function withThreads<T>(settings: typeof OFF, body: () => Promise<T>): Promise<T> {
  const saved = { ...fitThreads };
  Object.assign(fitThreads, settings);
  try {
    return await body();
  } finally {
    Object.assign(fitThreads, saved);
  }
}

interface Outcome {
  count: number;
  trained: boolean;
  pages: number;
  answers: string[][];
}

async function outcomeOf(store: MemStore): Promise<Outcome> {
  const s = store.stats();
  return { count: s.count, trained: s.trained, pages: s.pages, answers: await oneProbeAnswers(store) };
}

/** The store that trains inside the write that reaches trainSize, each write awaited. */
async function straight(config: string, extra: OpenOptions = {}): Promise<Outcome> {
  return withThreads(INSIDE, async () => {
    const store = await MemStore.open(tempDir(), pageWritesOptions(config, extra));
    try {
      for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(store, b);
      assert.equal(store.stats().training, false);
      return await outcomeOf(store);
    } finally {
      await store.close();
    }
  });
}

async function reopened(dir: string, config: string, extra: OpenOptions = {}): Promise<Outcome> {
  const store = await MemStore.open(dir, pageWritesOptions(config, extra));
  try {
    return await outcomeOf(store);
  } finally {
    await store.close();
  }
}

function issueAll(store: MemStore): Promise<unknown>[] {
  const all: Promise<unknown>[] = [];
  for (let b = 0; b < PAGE_WRITES_BATCHES; b++) all.push(...issueBatch(store, b));
  return all;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves once `store` trains off the write; fails if `writes` are all done first. */
async function trainingSeen(store: MemStore, writes: readonly Promise<unknown>[]): Promise<void> {
  let done = false;
  void Promise.allSettled(writes).then(() => (done = true));
  while (!store.stats().training) {
    assert.ok(!done, 'the store never trained off the write');
    await nextTurn();
  }
}

/** Polls `store` until `writes` are done: whether a write was applied (the count grew) while it trained, and whether it ever trained off the write. */
async function watch(store: MemStore, writes: readonly Promise<unknown>[]): Promise<{ seen: boolean; grew: boolean }> {
  let done = false;
  void Promise.allSettled(writes).then(() => (done = true));
  let seen = false;
  let grew = false;
  let first: number | undefined;
  while (!done) {
    const s = store.stats();
    if (s.training) {
      seen = true;
      first ??= s.count;
      if (s.count !== first) grew = true;
    }
    await nextTurn();
  }
  return { seen, grew };
}

test('fit job: a worker thread fits the model this thread fits (PCA, PCA with the rq rotation), and one that cannot is a rejection', async () => {
  const dim = 32;
  const rows = clustered(600, dim, 5);
  for (const shape of [
    { dim, pca: { dims: 8 }, codec: 'int8' as const },
    { dim, pca: { dims: 12 }, codec: 'rq2' as const },
  ]) {
    const here = fitModel(rows, shape);
    const flat = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => flat.set(r, i * dim));
    const model = await startFit({ shape, rows: flat, count: rows.length })!.done;
    assert.deepEqual(model, here, shape.codec);
  }
  assert.equal(fitOffThread({ dim, pca: null, codec: 'rq2' }, 10_000), false, 'a rotation alone is fitted here');
  const bad = new Float32Array(dim);
  await assert.rejects(startFit({ shape: { dim, pca: { dims: 8 }, codec: 'int8' }, rows: bad, count: 1 })!.done);
  const job = startFit({ shape: { dim, pca: { dims: 8 }, codec: 'int8' }, rows: new Float32Array(600 * dim), count: 600 })!;
  job.cancel();
  await assert.rejects(job.done);
  assert.throws(() => startFit({ shape: { dim, pca: { dims: 8 }, codec: 'int8' }, rows: new Float32Array(4 * dim).subarray(dim), count: 3 }), RangeError);
});

/** Without pages, the window lasts until the model is in: with them, a write that could reach pages.from ends it (Training.before). */
const NO_PAGES: OpenOptions = { pages: false };

for (const config of CONFIGS) {
  for (const extra of [NO_PAGES, {}]) {
    const named = `${config}${extra === NO_PAGES ? ', no pages' : ''}`;
    test(`training off the write (${named}): writes made meanwhile, all issued at once, end as in a store that trained inside the write, acknowledged in call order, none before the store is trained`, async () => {
      const expected = await straight(config, extra);
      const dir = tempDir();
      const watched = await withThreads(OFF, async () => {
        const store = await MemStore.open(dir, pageWritesOptions(config, extra));
        try {
          const all = issueAll(store);
          const order: number[] = [];
          const resolvedTraining: number[] = [];
          all.forEach(
            (w, i) =>
              void w.then(() => {
                order.push(i);
                if (store.stats().training) resolvedTraining.push(i);
              }),
          );
          const seen = await watch(store, all);
          await Promise.all(all);
          assert.deepEqual(order, all.map((_, i) => i), 'acknowledged in call order');
          assert.deepEqual(resolvedTraining, [], 'no write resolves while the store trains');
          assert.equal(store.stats().training, false);
          assert.deepEqual(await outcomeOf(store), expected);
          return seen;
        } finally {
          await store.close();
        }
      });
      if (extra === NO_PAGES) assert.ok(watched.seen, 'the store never trained off the write');
      assert.deepEqual(await reopened(dir, config, extra), expected);
    });
  }
}

test('training off the write: writes are applied while a worker fits PCA, and searches answer from the buffer meanwhile', async () => {
  const config = 'l2 int8 + PCA 12, trained late';
  const expected = await straight(config, NO_PAGES);
  await withThreads(OFF, async () => {
    const store = await MemStore.open(tempDir(), pageWritesOptions(config, NO_PAGES));
    try {
      // Batch by batch until one reaches trainSize (1,500): it resolves only once the store is trained.
      const crossing: Promise<unknown>[] = [];
      let b = 0;
      while (!store.stats().training) {
        assert.ok(b < PAGE_WRITES_BATCHES, 'the store never trained off the write');
        const writes = issueBatch(store, b++);
        crossing.push(...writes);
        let done = false;
        void Promise.all(writes).then(() => (done = true));
        while (!done && !store.stats().training) await nextTurn();
      }
      const before = store.stats().count;
      const rest: Promise<unknown>[] = [];
      for (; b < PAGE_WRITES_BATCHES; b++) rest.push(...issueBatch(store, b));
      let grew = false;
      let answered = false;
      while (store.stats().training) {
        if (store.stats().count > before) grew = true;
        const hits = await store.search(new Float32Array(24).fill(0.1), { k: 3 });
        assert.equal(hits.length, 3);
        if (store.stats().training) answered = true;
        await nextTurn();
      }
      await Promise.all([...crossing, ...rest]);
      assert.ok(grew, 'no write was applied while the worker fitted');
      assert.ok(answered, 'no search answered while the store trained');
      assert.deepEqual(await outcomeOf(store), expected);
    } finally {
      await store.close();
    }
  });
});

test('training off the write: close() in the window waits for the model; abandon() does not, and the next open trains as the write would have', async () => {
  const config = 'cosine rq2 + PCA 16, trained late';
  const expected = await straight(config, NO_PAGES);
  for (const end of ['close', 'abandon'] as const) {
    const dir = tempDir();
    await withThreads(OFF, async () => {
      const store = await MemStore.open(dir, pageWritesOptions(config, NO_PAGES));
      const all = issueAll(store);
      await trainingSeen(store, all);
      await (end === 'close' ? store.close() : store.abandon());
      await Promise.allSettled(all);
    });
    assert.deepEqual(await reopened(dir, config, NO_PAGES), expected, end);
  }
});

test('training off the write: compact() called in the window takes the model in itself, and ends as after a store that trained inside the write', async () => {
  const config = 'l2 int8 + PCA 12, trained late';
  const expectedDir = tempDir();
  await withThreads(INSIDE, async () => {
    const waited = await MemStore.open(expectedDir, pageWritesOptions(config, NO_PAGES));
    try {
      for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(waited, b);
      await waited.compact();
    } finally {
      await waited.close();
    }
  });
  const expected = await reopened(expectedDir, config, NO_PAGES);
  const dir = tempDir();
  await withThreads(OFF, async () => {
    const store = await MemStore.open(dir, pageWritesOptions(config, NO_PAGES));
    try {
      const all = issueAll(store);
      await trainingSeen(store, all);
      const compacting = store.compact();
      await Promise.all(all);
      await compacting;
      assert.equal(store.stats().training, false);
      assert.deepEqual(await outcomeOf(store), expected);
    } finally {
      await store.close();
    }
  });
  assert.deepEqual(await reopened(dir, config, NO_PAGES), expected);
});

test('training off the write: where no worker thread can start, the store fits in its own thread and ends the same', async () => {
  const config = 'l2 int8 + PCA 12, trained late';
  const expected = await straight(config);
  const OriginalWorker = workerThreads.Worker;
  workerThreads.Worker = class {
    constructor() {
      throw new Error('no threads here');
    }
  } as unknown as typeof workerThreads.Worker;
  module.syncBuiltinESMExports();
  try {
    await withThreads(OFF, async () => {
      const store = await MemStore.open(tempDir(), pageWritesOptions(config));
      try {
        const all = issueAll(store);
        await Promise.all(all);
        assert.deepEqual(await outcomeOf(store), expected);
      } finally {
        await store.close();
      }
    });
  } finally {
    workerThreads.Worker = OriginalWorker;
    module.syncBuiltinESMExports();
  }
});

test('training off the write: a write applied without waiting for the model (Training.before, which no store write reaches today) ends the training in its thread from the sample taken again, and the store ends as one that trained inside the write', async () => {
  for (const config of ['cosine rq2', 'l2 int8 + PCA 12']) {
    const expected = await straight(config);
    await withThreads(OFF, async () => {
      const store = await MemStore.open(tempDir(), pageWritesOptions(config));
      try {
        const all = issueAll(store);
        await trainingSeen(store, all);
        const training = (store as unknown as { training: { before(count: number): void } }).training;
        training.before(Number.MAX_SAFE_INTEGER);
        assert.equal(store.stats().training, false, `${config}: the training ended in the call`);
        assert.equal(store.stats().trained, true, config);
        await Promise.all(all);
        assert.deepEqual(await outcomeOf(store), expected, config);
      } finally {
        await store.close();
      }
    });
  }
});

test('training off the write: kill -9 while the store trains loses no acknowledged write, and the reopened store trains as the write would have', async () => {
  for (const config of ['cosine rq2 + PCA 16, trained late', 'cosine rq2, trained late']) {
    const expected = await straight(config, NO_PAGES);
    const dir = tempDir();
    let line = '';
    await runUntilKilled(child, [dir, config], (printed, kill) => {
      line = printed;
      kill();
    });
    assert.equal(line, 'window', `${config}: the child never saw the store training`);
    assert.deepEqual(await reopened(dir, config, NO_PAGES), expected, config);
  }
});

/** A failure a test puts in training's way: thrown once, where `arm` puts it; `disarm` puts things back. */
interface Fault {
  readonly name: string;
  readonly options: OpenOptions;
  readonly threads: typeof OFF;
  arm(injected: Error): void;
  disarm(): void;
}

/** VectorSpace.prototype.fit replaced until disarmed; `instead` decides what its first call does. */
function fitFault(name: string, options: OpenOptions, threads: typeof OFF, instead: (original: VectorSpace['fit'], space: VectorSpace, rows: readonly Float32Array[], injected: Error) => Fitted): Fault {
  const original = VectorSpace.prototype.fit;
  return {
    name,
    options,
    threads,
    arm(injected) {
      let calls = 0;
      VectorSpace.prototype.fit = function (this: VectorSpace, rows: readonly Float32Array[]): Fitted {
        return calls++ === 0 ? instead(original, this, rows, injected) : original.call(this, rows);
      };
    },
    disarm() {
      VectorSpace.prototype.fit = original;
    },
  };
}

/** The first worker thread started replies with an error instead of a model; later ones are real. */
function workerFault(name: string, options: OpenOptions, threads: typeof OFF): Fault {
  const OriginalWorker = workerThreads.Worker;
  return {
    name,
    options,
    threads,
    arm(injected) {
      let made = 0;
      class FailingWorker extends EventEmitter {
        constructor(...args: ConstructorParameters<typeof workerThreads.Worker>) {
          super();
          // A constructor that returns an object makes `new` return it: the later threads are real.
          if (made++ > 0) return new OriginalWorker(...args) as unknown as FailingWorker;
        }
        postMessage(): void {
          setImmediate(() => this.emit('message', { error: injected }));
        }
        terminate(): Promise<number> {
          return Promise.resolve(0);
        }
      }
      workerThreads.Worker = FailingWorker as unknown as typeof workerThreads.Worker;
      module.syncBuiltinESMExports();
    },
    disarm() {
      workerThreads.Worker = OriginalWorker;
      module.syncBuiltinESMExports();
    },
  };
}

test('training that fails (the fit inside the write, the fit in its worker, the re-encode midway) warns with code IO and its cause, leaves the store untrained and whole, and the next add trains it as the write would have', async () => {
  const dim = 24;
  const trainSize = 1500;
  const vectors = clustered(2000, dim, 31, 30);
  const queries = clustered(30, dim, 32, 30);
  const faults: Fault[] = [
    fitFault('the fit inside the write', { codec: 'rq2' }, INSIDE, (_original, _space, _rows, injected) => {
      throw injected;
    }),
    workerFault('the fit in its worker', { metric: 'l2', pca: { dims: 12 } }, OFF),
    fitFault('the re-encode midway, off the write', { codec: 'rq2' }, OFF, (original, space, rows, injected) => {
      const fitted = original.call(space, rows);
      const projector = fitted.projector;
      let carried = 0;
      const centered = projector.centered.bind(projector);
      return {
        model: fitted.model,
        projector: Object.assign(Object.create(projector) as Projector, {
          centered(x: Float32Array): Float32Array {
            if (++carried === 700) throw injected;
            return centered(x);
          },
        }),
      };
    }),
  ];
  const answersOf = (store: MemStore) => Promise.all(queries.map(async (q) => (await store.search(q, { k: 10, exact: true, rescore: false })).map((h) => `${h.id}:${h.score}`)));
  const addUpTo = async (store: MemStore, from: number, to: number) => {
    for (let at = from; at < to; at += 100) await store.add(vectors.slice(at, at + 100).map((vector, j) => ({ id: `v${at + j}`, vector })));
  };
  const settled = async (store: MemStore) => {
    while (store.stats().training) await nextTurn();
  };
  for (const fault of faults) {
    const options: OpenOptions = { dim, durability: 'none', cache: false, pages: false, trainSize, ...fault.options };
    const expected = await withThreads(INSIDE, async () => {
      const store = await MemStore.open(tempDir(), options);
      try {
        await addUpTo(store, 0, vectors.length);
        return await answersOf(store);
      } finally {
        await store.close();
      }
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const injected = new Error(`injected: ${fault.name}`);
    try {
      await withThreads(fault.threads, async () => {
        const store = await MemStore.open(tempDir(), options);
        try {
          await addUpTo(store, 0, trainSize - 100);
          fault.arm(injected);
          try {
            await store.add(vectors.slice(trainSize - 100, trainSize).map((vector, j) => ({ id: `v${trainSize - 100 + j}`, vector })));
            await settled(store);
            await nextTurn();
          } finally {
            fault.disarm();
          }
          const failures = warnings.filter((w) => w instanceof MemstoreError);
          assert.equal(failures.length, 1, fault.name);
          assert.equal((failures[0] as MemstoreError).code, 'IO', fault.name);
          assert.equal(failures[0]!.cause, injected, fault.name);
          const s = store.stats();
          assert.deepEqual([s.trained, s.training, s.count], [false, false, trainSize], fault.name);
          for (const i of [0, 777, trainSize - 1]) assert.deepEqual((await store.get(`v${i}`))?.vector, vectors[i], `${fault.name}: v${i}`);
          const hits = await store.search(vectors[5]!, { k: 3 });
          assert.equal(hits[0]?.id, 'v5', fault.name);

          await addUpTo(store, trainSize, vectors.length);
          await settled(store);
          assert.equal(store.stats().trained, true, `${fault.name}: the next add trains`);
          assert.deepEqual(await answersOf(store), expected, fault.name);
        } finally {
          await store.close();
        }
      });
    } finally {
      process.off('warning', onWarning);
    }
  }
});

/**
 * Worker threads heard from 300 ms late (every event alike, so that they keep their order: the worker
 * exits once it has posted its model), so that writes issued after the one that starts a training
 * come while it is under way. Returns what puts the real Worker back.
 */
function slowWorkers(): () => void {
  const OriginalWorker = workerThreads.Worker;
  class SlowWorker {
    constructor(...args: ConstructorParameters<typeof OriginalWorker>) {
      const worker = new OriginalWorker(...args);
      type Once = (event: string, listener: (...values: unknown[]) => void) => unknown;
      const once = worker.once.bind(worker) as Once;
      const slow: Once = (event, listener) => once(event, (...values) => setTimeout(() => listener(...values), 300));
      (worker as unknown as { once: Once }).once = slow;
      // A constructor that returns an object makes `new` return it.
      return worker as unknown as SlowWorker;
    }
  }
  workerThreads.Worker = SlowWorker as unknown as typeof workerThreads.Worker;
  module.syncBuiltinESMExports();
  return () => {
    workerThreads.Worker = OriginalWorker;
    module.syncBuiltinESMExports();
  };
}

/**
 * Counts the models fitted in this thread (VectorSpace.prototype.fit, which a worker's model does
 * not go through) while worker threads are slowed (slowWorkers()); restore() puts both back.
 */
function fitsHere(): { count(): number; reset(): void; restore(): void } {
  const original = VectorSpace.prototype.fit;
  let fitted = 0;
  VectorSpace.prototype.fit = function (this: VectorSpace, rows: readonly Float32Array[]): Fitted {
    fitted++;
    return original.call(this, rows);
  };
  const restoreWorkers = slowWorkers();
  return {
    count: () => fitted,
    reset: () => void (fitted = 0),
    restore() {
      VectorSpace.prototype.fit = original;
      restoreWorkers();
    },
  };
}

test('a write that could bring the store to pages.from while a worker fits PCA waits for the model, issued together with the write that starts the training, issued meanwhile or replayed at open: the model is never fitted in the store\'s own thread (it had been, inside that write), and the store ends as one that trained inside the write', async () => {
  const config = 'l2 int8 + PCA 12, trained late';
  const expected = await straight(config);
  const fits = fitsHere();
  try {
    await withThreads(OFF, async () => {
      // Every write issued at once, as Promise.all over a loader's batches does: the one that could
      // reach pages.from waits for the writes before it, which start the training, then for the model.
      const together = await MemStore.open(tempDir(), pageWritesOptions(config));
      try {
        const all = issueAll(together);
        await trainingSeen(together, all);
        await Promise.all(all);
        assert.equal(fits.count(), 0, 'fitted in the thread of writes issued together');
        assert.deepEqual(await outcomeOf(together), expected, 'issued together');
      } finally {
        await together.close();
      }

      const store = await MemStore.open(tempDir(), pageWritesOptions(config));
      try {
        // The batch that reaches trainSize issued alone, and the rest once the store trains.
        let b = 0;
        while (store.stats().count + 100 < 1500) await writeBatch(store, b++);
        const crossing = issueBatch(store, b++);
        await trainingSeen(store, crossing);
        const rest: Promise<unknown>[] = [];
        for (; b < PAGE_WRITES_BATCHES; b++) rest.push(...issueBatch(store, b));
        await Promise.all([...crossing, ...rest]);
        assert.equal(fits.count(), 0, 'fitted in the writes\' thread');
        assert.deepEqual(await outcomeOf(store), expected);
      } finally {
        await store.close();
      }

      // The same writes left in the log alone (no checkpoint), replayed at the next open.
      const dir = tempDir();
      const unsaved = await MemStore.open(dir, pageWritesOptions(config, { checkpointBytes: 2 ** 30 }));
      for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(unsaved, b);
      await unsaved.abandon();
      fits.reset();
      assert.deepEqual(await reopened(dir, config), expected, 'replayed');
      assert.equal(fits.count(), 0, 'fitted in the replay\'s thread');
    });
  } finally {
    fits.restore();
  }
});

test('writes are acknowledged in call order, those that waited before they were logged (for a model being fitted, behind the re-encode\'s write gate) and empty ones included: they had resolved after writes issued later that went straight to the log (a hostile pass)', async () => {
  const dim = 32;
  const vectors = clustered(1200, dim, 41, 20);
  const records = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `v${from + i}`, vector: vectors[from + i]! }));
  for (const pages of [{ from: 600, maxPage: 24 }, false] as const) {
    await withThreads(OFF, async () => {
      const store = await MemStore.open(tempDir(), { dim, durability: 'none', cache: false, metric: 'l2', pca: { dims: 12 }, trainSize: 300, pages });
      try {
        await store.add(records(0, 250));
        const acknowledged: string[] = [];
        const all: Promise<unknown>[] = [];
        const issue = (name: string, write: Promise<unknown>) => all.push(write.then(() => acknowledged.push(name)));
        issue('A', store.add(records(250, 60)));
        while (!store.stats().training) await nextTurn();
        issue('B', store.add(records(310, 300)));
        issue('C', store.delete(['v1']));
        issue('D', store.add([]));
        while (store.stats().training) await nextTurn();
        issue('E', store.add(records(700, 10)));
        issue('F', store.delete([]));
        issue('G', store.add(records(800, 10)));
        await Promise.all(all);
        assert.deepEqual(acknowledged, ['A', 'B', 'C', 'D', 'E', 'F', 'G'], `pages ${JSON.stringify(pages)}`);
        assert.equal(store.stats().count, 629);
      } finally {
        await store.close();
      }
    });
  }
});

test('one add that brings the store from below trainSize past pages.from trains off the write, and the writes after it, deletes too, wait for its pages: nothing is fitted in the store\'s thread (that add had trained inside itself), and the store ends as one that trained and planned its pages inside that add', async () => {
  const config = 'l2 int8 + PCA 12, trained late';
  const vectors = clustered(2200, PAGE_WRITES_DIM, 51, 30);
  const records = (from: number, to: number) => vectors.slice(from, to).map((vector, i) => ({ id: `w${from + i}`, vector }));
  const issue = (store: MemStore) => [store.add(records(0, 2000)), store.delete(['w3', 'w1999', 'w700']), store.add(records(2000, 2200)), store.delete(['w2100'])];
  const expected = await withThreads(INSIDE, async () => {
    const store = await MemStore.open(tempDir(), pageWritesOptions(config));
    try {
      for (const write of issue(store)) await write;
      return await outcomeOf(store);
    } finally {
      await store.close();
    }
  });
  assert.ok(expected.trained && expected.pages > 1, 'the reference trained and made pages');
  const fits = fitsHere();
  try {
    await withThreads(OFF, async () => {
      for (const together of [true, false]) {
        const dir = tempDir();
        const store = await MemStore.open(dir, pageWritesOptions(config));
        try {
          if (together) {
            const all = issue(store);
            await trainingSeen(store, all);
            await Promise.all(all);
          } else {
            for (const write of issue(store)) await write;
          }
          assert.equal(fits.count(), 0, `fitted in the writes' thread (issued ${together ? 'together' : 'one by one'})`);
          assert.deepEqual(await outcomeOf(store), expected, together ? 'together' : 'one by one');
        } finally {
          await store.close();
        }
        assert.deepEqual(await reopened(dir, config), expected, 'reopened');
      }
    });
  } finally {
    fits.restore();
  }
});
