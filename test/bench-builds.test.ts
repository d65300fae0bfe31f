import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { canMapFiles } from '../io/mmap.js';

/** bench/builds.ts, run as a command: this build against itself on the shipped set. */

const script = fileURLToPath(new URL('../bench/builds.js', import.meta.url));
const dist = fileURLToPath(new URL('..', import.meta.url));

test('the builds bench, a build against itself: both rows measured, the same recall and reads, and no answer differs', () => {
  // Where the native addon did not build, neither build can map files: both read with positioned reads.
  const run = spawnSync(process.execPath, [script, '--a', dist, '--queries-used', '20', '--rounds', '1', ...(canMapFiles() ? [] : ['--mmap', 'false'])], { encoding: 'utf8' });
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

/**
 * A build whose native addon is missing reads full vectors with positioned reads: beside one that
 * maps them, the bench would time that. A dist whose io/mmap.js says it cannot map files (its src
 * is this build's) is refused, unless both compare with --mmap false.
 */
test('the builds bench refuses a build that cannot map files, unless --mmap false', { skip: canMapFiles() ? false : 'the native addon is not built here' }, () => {
  const fake = mkdtempSync(join(tmpdir(), 'memstore-nomap-'));
  try {
    symlinkSync(join(dist, 'src'), join(fake, 'src'));
    mkdirSync(join(fake, 'io'));
    for (const f of readdirSync(join(dist, 'io'))) if (f !== 'mmap.js') symlinkSync(join(dist, 'io', f), join(fake, 'io', f));
    writeFileSync(join(fake, 'io', 'mmap.js'), 'export function canMapFiles() { return false; }\nexport function mapFile() { return undefined; }\n');
    const args = [script, '--a', fake, '--queries-used', '5', '--rounds', '1'];
    const refused = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.notEqual(refused.status, 0, 'a build without maps beside one with them');
    assert.doesNotMatch(refused.stdout, /^\| A \|/m, 'refused before measuring');
    const both = spawnSync(process.execPath, [...args, '--mmap', 'false'], { encoding: 'utf8' });
    assert.equal(both.status, 0, both.stderr);
    assert.match(both.stdout, /searches whose ids differ between A and B: 0 of 5/);
  } finally {
    rmSync(fake, { recursive: true, force: true });
  }
});
