/**
 * The C allocator's free memory goes back to the system after a quiet spell (src/idle-trim.ts,
 * `trimWhenIdle`): once per spell, never while calls keep coming, never from a trim that failed,
 * on a timer that does not keep the process alive, and only for stores that ask for it.
 */
import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { IdleTrimmer, idleTrimmer } from '../src/idle-trim.js';
import { heapTrim } from '../io/heap-trim.js';
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

  it('a spell waiting to trim does not keep the process alive', () => {
    const module = fileURLToPath(new URL('../src/idle-trim.js', import.meta.url));
    const script = `import(${JSON.stringify(module)}).then((m) => { new m.IdleTrimmer({ quietMs: 600000, trim: () => true }).touch(); })`;
    const child = spawnSync(process.execPath, ['-e', script], { timeout: 60_000, encoding: 'utf8' });
    assert.equal(child.signal, null, 'the process ended by itself, before the timeout');
    assert.equal(child.status, 0, child.stderr);
  });
});

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
