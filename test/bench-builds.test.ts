import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** bench/builds.ts, run as a command: this build against itself on the shipped set. */

const script = fileURLToPath(new URL('../bench/builds.js', import.meta.url));
const dist = fileURLToPath(new URL('..', import.meta.url));

test('the builds bench, a build against itself: both rows measured, the same recall and reads, and no answer differs', () => {
  const run = spawnSync(process.execPath, [script, '--a', dist, '--queries-used', '20', '--rounds', '1'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const rows = run.stdout
    .split('\n')
    .filter((l) => /^\| [AB] \|/.test(l))
    .map((l) => l.split('|').map((c) => c.trim()));
  assert.equal(rows.length, 2, run.stdout);
  const [a, b] = rows as [string[], string[]];
  assert.equal(a[7], '1.000', 'A against itself');
  // Same build, same store: recall and reads are the same numbers; only the times may differ.
  assert.equal(a[3], b[3]);
  assert.equal(a[4], b[4]);
  assert.ok(Number(a[3]) > 0.9, `recall ${a[3]}`);
  assert.match(run.stdout, /searches whose ids differ between A and B: 0 of 20/);
});

test('the builds bench without --a refuses to run', () => {
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.notEqual(run.status, 0);
});
