/**
 * The C allocator's free memory goes back to the system after a quiet spell (src/idle-trim.ts,
 * `trimWhenIdle`): once per spell, never while calls keep coming, never from a trim that failed,
 * on a timer that does not keep the process alive, and only for stores that ask for it.
 */
import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { IdleTrimmer, idleTrimmer, tunedByUser } from '../src/idle-trim.js';
import { GLIBC_TRIM_THRESHOLD, heapTrim, trimThresholdFixer } from '../io/heap-trim.js';
import { MemStore } from '../src/index.js';
import { rejectsWith, tempDir } from './helpers.js';

/** A trimmer on mocked timers the test moves a millisecond at a time. */
function onClock(trim: () => boolean): { trimmer: IdleTrimmer; advance: (ms: number) => void } {
  mock.timers.enable({ apis: ['setTimeout'] });
  const trimmer = new IdleTrimmer({ quietMs: 1000, trim });
  return {
    trimmer,
    advance: (ms) => {
      for (let i = 0; i < ms; i++) mock.timers.tick(1);
    },
  };
}

describe('idle trim', () => {
  afterEach(() => mock.timers.reset());

  it('trims after the first quiet second (one to two seconds after the last call), not while calls come within each second, and not again until a call', () => {
    let trims = 0;
    const { trimmer, advance } = onClock(() => (trims++, true));
    trimmer.touch();
    advance(1000);
    assert.equal(trims, 1, 'a second after a lone call');
    trimmer.touch();
    advance(600);
    trimmer.touch();
    advance(600);
    assert.equal(trims, 1, 'the second call made that second not quiet');
    advance(799);
    assert.equal(trims, 1);
    advance(1);
    assert.equal(trims, 2, 'the next second was quiet');
    for (let i = 0; i < 5; i++) {
      trimmer.touch();
      advance(700);
    }
    assert.equal(trims, 2, 'calls every 0.7 s: no second is quiet');
    advance(2000);
    assert.equal(trims, 3);
    advance(5000);
    assert.equal(trims, 3, 'no call since: nothing more to give back');
    trimmer.touch();
    advance(1000);
    assert.equal(trims, 4);
    assert.deepEqual(trimmer.stats, { trims: 4, released: 4 });
  });

  it('counts trims that gave nothing back apart', () => {
    const { trimmer, advance } = onClock(() => false);
    trimmer.touch();
    advance(1000);
    assert.deepEqual(trimmer.stats, { trims: 1, released: 0 });
  });

  it('a trim that throws stops the trims, and nothing reaches the process', () => {
    let tries = 0;
    const { trimmer, advance } = onClock(() => {
      tries++;
      throw new Error('no allocator');
    });
    trimmer.touch();
    assert.doesNotThrow(() => advance(1000));
    trimmer.touch();
    advance(3000);
    assert.equal(tries, 1);
  });

  it('without a trim (no addon, or not glibc) a call schedules nothing', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const trimmer = new IdleTrimmer({ quietMs: 1000 });
    trimmer.touch();
    mock.timers.tick(5000);
    assert.deepEqual(trimmer.stats, { trims: 0, released: 0 });
  });

  it('keeps the trim threshold once, when made, and says whether it did; a fix that throws leaves the trimmer working', () => {
    let fixes = 0;
    const trimmer = new IdleTrimmer({ quietMs: 1000, trim: () => true, fixThreshold: () => (fixes++, true) });
    assert.equal(fixes, 1);
    assert.equal(trimmer.thresholdFixed, true);
    mock.timers.enable({ apis: ['setTimeout'] });
    trimmer.touch();
    mock.timers.tick(1000);
    assert.equal(fixes, 1, 'not again at a trim');
    assert.equal(new IdleTrimmer({ fixThreshold: () => false }).thresholdFixed, false, 'not glibc');
    const throwing = new IdleTrimmer({ quietMs: 1000, trim: () => true, fixThreshold: () => { throw new Error('no mallopt'); } });
    assert.equal(throwing.thresholdFixed, false);
    throwing.touch();
    mock.timers.tick(1000);
    assert.deepEqual(throwing.stats, { trims: 1, released: 1 });
    assert.equal(new IdleTrimmer().thresholdFixed, false, 'nothing to call');
  });

  it('a spell waiting to trim does not keep the process alive', () => {
    const module = fileURLToPath(new URL('../src/idle-trim.js', import.meta.url));
    const script = `import(${JSON.stringify(module)}).then((m) => { new m.IdleTrimmer({ quietMs: 600000, trim: () => true }).touch(); })`;
    const child = spawnSync(process.execPath, ['-e', script], { timeout: 60_000, encoding: 'utf8' });
    assert.equal(child.signal, null, 'the process ended by itself, before the timeout');
    assert.equal(child.status, 0, child.stderr);
  });
});

describe('the trim threshold (native/heap.c)', { skip: trimThresholdFixer() === undefined ? 'the heap addon is not built here' : false }, () => {
  it('is set for a byte count and refused with EINVAL for anything else', () => {
    const fix = trimThresholdFixer()!;
    assert.equal(fix(GLIBC_TRIM_THRESHOLD), isGlibc());
    for (const bad of [-1, 2 ** 31, 1.5, Number.NaN, Infinity, '131072', undefined]) {
      assert.throws(() => (fix as (b: unknown) => boolean)(bad), (e: Error & { code?: string }) => e.code === 'EINVAL', String(bad));
    }
  });

  it('is kept at glibc\'s default by the first store opened with trimWhenIdle on, and left alone by one opened with it off', () => {
    const stores = fileURLToPath(new URL('../src/index.js', import.meta.url));
    const trims = fileURLToPath(new URL('../src/idle-trim.js', import.meta.url));
    const opening = (option: string) =>
      `const { MemStore } = await import(${JSON.stringify(stores)}); const t = await import(${JSON.stringify(trims)});` +
      `const s = await MemStore.open(${JSON.stringify(tempDir())}, { dim: 4${option} }); await s.close();` +
      `const made = t.madeIdleTrimmer(); const said = JSON.stringify({ made: made !== undefined, fixed: made?.thresholdFixed ?? false });`;
    const script = (option: string, prelude = '') => `${prelude}${opening(option)} console.log(said);`;
    // The same, in a worker started with an environment of its own (env: {}).
    const inWorker = (option: string) =>
      `const { Worker } = await import('node:worker_threads');` +
      `const w = new Worker(${JSON.stringify(`${opening(option)} (await import('node:worker_threads')).parentPort.postMessage(said);`)}, { eval: true, env: {} });` +
      `w.once('message', (m) => { console.log(m); void w.terminate(); });`;
    const run = (code: string, env: Record<string, string> = {}) => {
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { timeout: 60_000, encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(child.status, 0, child.stderr);
      return JSON.parse(child.stdout) as { made: boolean; fixed: boolean };
    };
    assert.deepEqual(run(script(', trimWhenIdle: false')), { made: false, fixed: false });
    assert.deepEqual(run(script('')), { made: true, fixed: isGlibc() });
    const userSet = { MALLOC_TRIM_THRESHOLD_: '1048576' };
    assert.deepEqual(run(script(''), userSet), { made: true, fixed: false }, 'a threshold the user set is theirs');
    // What glibc read is the environment the process started with (a hostile pass: both had overridden it).
    assert.deepEqual(run(script('', 'delete process.env.MALLOC_TRIM_THRESHOLD_;'), userSet), { made: true, fixed: false }, 'the variable deleted since');
    assert.deepEqual(run(inWorker(''), userSet), { made: true, fixed: false }, 'a worker started with env: {}');
    assert.deepEqual(run(inWorker('')), { made: true, fixed: isGlibc() }, 'a worker, nothing set');
  });

  it('is left to a user who set glibc\'s malloc thresholds (its variables, or their GLIBC_TUNABLES)', () => {
    assert.equal(tunedByUser({}), false);
    for (const name of ['MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_MMAP_MAX_']) assert.equal(tunedByUser({ [name]: '0' }), true, name);
    assert.equal(tunedByUser({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=65536' }), true);
    assert.equal(tunedByUser({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=1048576' }), true);
    assert.equal(tunedByUser({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0:glibc.malloc.arena_max=2' }), false, 'a malloc tunable that sets no threshold');
    assert.equal(tunedByUser({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0' }), false, 'a tunable of something else');
    assert.equal(tunedByUser({ MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD: '1' }), false, 'MALLOC_ARENA_MAX sets no threshold; without the trailing _ glibc reads nothing');
  });
});

/** Whether this process runs on glibc (the one C library whose trim threshold is set). */
function isGlibc(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime !== undefined;
}

describe('trimWhenIdle', () => {
  it('must be a boolean', async () => {
    const e = await rejectsWith(() => MemStore.open(tempDir(), { dim: 4, trimWhenIdle: 1 as unknown as boolean }), 'INVALID_OPTION');
    assert.equal(e.field, 'trimWhenIdle');
  });

  it('a store trims the process one to two seconds after its last call (the default), and one opened with false does not', { skip: heapTrim() === undefined ? 'the heap addon is not built here' : false }, async () => {
    const quiet = () => new Promise((resolve) => setTimeout(resolve, 2300));
    const off = await MemStore.open(tempDir(), { dim: 4, trimWhenIdle: false });
    await quiet();
    const before = idleTrimmer().stats.trims;
    await off.add([{ id: 'a', vector: [1, 0, 0, 0] }]);
    await off.search([1, 0, 0, 0]);
    await quiet();
    assert.equal(idleTrimmer().stats.trims, before, 'trimWhenIdle: false');
    await off.close();
    await quiet();

    const on = await MemStore.open(tempDir(), { dim: 4 });
    await quiet();
    const opened = idleTrimmer().stats.trims;
    assert.ok(opened > before, 'the open itself starts a quiet spell');
    await on.search([1, 0, 0, 0]);
    assert.equal(idleTrimmer().stats.trims, opened, 'not while the second runs');
    await quiet();
    assert.equal(idleTrimmer().stats.trims, opened + 1);
    await on.close();
  });
});
