import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const benchDir = fileURLToPath(new URL('../bench/', import.meta.url));
const sourceDir = fileURLToPath(new URL('../../bench/', import.meta.url));

/** The benchmark scripts that take options (every one through benchArgs()). */
const scripts = readdirSync(sourceDir)
  .filter((f) => f.endsWith('.ts') && f !== 'args.ts' && readFileSync(sourceDir + f, 'utf8').includes('benchArgs('))
  .map((f) => f.replace(/\.ts$/, '.js'));

function runScript(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [benchDir + script, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

test('every benchmark script that takes options parses them through benchArgs()', () => {
  // The scripts with options in the README commands, at least.
  for (const name of ['cache.js', 'index.js', 'memory.js', 'builds.js', 'grow.js', 'router.js', 'arena-vs-lmdb.js']) assert.ok(scripts.includes(name), name);
  for (const f of readdirSync(sourceDir).filter((f) => f.endsWith('.ts') && f !== 'args.ts')) {
    assert.ok(!readFileSync(sourceDir + f, 'utf8').includes('parseArgs('), `${f} parses its options itself`);
  }
});

test('a benchmark script given an unknown option, or an option without its value, says so with its usage and exits with 2 (no stack trace); --help prints the usage and exits with 0', async () => {
  const runs = await Promise.all(
    scripts.flatMap((script) => [
      runScript(script, ['--no-such-option']).then((r) => ({ script, kind: 'unknown', ...r })),
      runScript(script, ['--help']).then((r) => ({ script, kind: 'help', ...r })),
    ]),
  );
  for (const r of runs) {
    if (r.kind === 'unknown') {
      assert.equal(r.code, 2, `${r.script}: ${r.stderr}`);
      assert.match(r.stderr, /--no-such-option/, r.script);
      assert.match(r.stderr, /usage: node dist\/bench\//, r.script);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${r.script}: no stack trace`);
    } else {
      assert.equal(r.code, 0, `${r.script}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`usage: node dist/bench/${r.script.replace('.', '\\.')} \\[options\\]`), r.script);
      assert.match(r.stdout, /--help/, r.script);
    }
  }
  const missing = await runScript('router.js', ['--nprobe']);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /--nprobe/);
});

test('the cache bench refuses an --off-at, --mmap or --rescore it does not know with exit code 2 and the choices, not a stack trace', async () => {
  const cases: string[][] = [['--off-at', 'sometimes'], ['--mmap', 'maybe'], ['--mmap', 'TRUE'], ['--rescore', 'no']];
  const runs = await Promise.all(cases.map((args) => runScript('cache.js', args).then((r) => ({ args, ...r }))));
  for (const r of runs) {
    assert.equal(r.code, 2, `${r.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${r.args[0]} takes`), r.args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${r.args.join(' ')}: no stack trace`);
  }
});

test('a benchmark script refuses a number option that is not a number, or a list of numbers with a gap, with exit code 2 (Number() had made NaN of it)', async () => {
  const cases: [string, string[]][] = [
    ['index.js', ['--nprobe', '16,abc']],
    ['index.js', ['--nprobe', '16,']],
    ['cache.js', ['--dim', 'x']],
    ['cache.js', ['--stream', '']],
    ['arena-vs-lmdb.js', ['--n', '1e3x']],
    ['router.js', ['--n', 'NaN']],
  ];
  const runs = await Promise.all(cases.map(([script, args]) => runScript(script, args).then((r) => ({ script, args, ...r }))));
  for (const r of runs) {
    assert.equal(r.code, 2, `${r.script} ${r.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`--${r.args[0]!.slice(2)} takes a number`), r.script);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${r.script}: no stack trace`);
  }
});
