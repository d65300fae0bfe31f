/**
 * What `npm pack` puts in the package is what an install needs: the install script builds the
 * native addons from the sources native/build.mjs names, and a source left out of package.json's
 * `files` (heap.c) had failed every install of the tarball at that script (a hostile pass).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { missing, optionalPackage } from '../bench/optional.js';
import { tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('the package holds every native source the install script builds from, and what the package.json exports and bin name', () => {
  const build = readFileSync(join(root, 'native', 'build.mjs'), 'utf8');
  const listed = /const sourceFiles = \[([^\]]*)\]/.exec(build);
  assert.ok(listed, 'sourceFiles in native/build.mjs');
  const sources = [...listed[1]!.matchAll(/'([^']+)'/g)].map((m) => `native/${m[1]!}`);
  assert.ok(sources.length >= 5, sources.join(', '));
  // --ignore-scripts: `npm pack` would run `prepare` (a build) under the other tests.
  const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { files: { path: string }[] }[];
  const files = new Set(packed[0]!.files.map((f) => f.path));
  for (const f of [...sources, 'native/build.mjs']) assert.ok(files.has(f), `${f} is not in the package`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string> | string>; bin: Record<string, string> };
  const targets = Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e))).concat(Object.values(pkg.bin));
  for (const t of targets) assert.ok(files.has(t.replace(/^\.\//, '')), `${t} is not in the package`);
});

test('the bench goes on without an optional package that is installed but does not load (hnswlib-node without its addon had ended every run), and says why', async () => {
  const broken = join(tempDir(), 'broken.mjs');
  writeFileSync(broken, "throw new Error('Could not locate the bindings file');\n");
  const name = pathToFileURL(broken).href;
  assert.equal(await optionalPackage(name), undefined);
  assert.match(missing(name, 'the baseline'), /did not load/);
  assert.equal(await optionalPackage('memstore-no-such-package'), undefined);
  assert.match(missing('memstore-no-such-package', 'the baseline'), /not installed/);
});

test('require() of the package and of memstore/embedders works on a Node that loads ES modules from CommonJS (20.19 and later; it had been ERR_PACKAGE_PATH_NOT_EXPORTED, which reads as a broken package); memstore/langchain, which awaits its optional peer as it loads, says to use import()', { skip: typeof (process as { features?: { require_module?: boolean } }).features?.require_module === 'boolean' && !(process as { features: { require_module: boolean } }).features.require_module ? 'this Node cannot require ES modules' : false }, () => {
  const script = [
    "const m = require('memstore');",
    "const e = require('memstore/embedders');",
    "let l; try { require('memstore/langchain'); l = 'required'; } catch (err) { l = err.code; }",
    'console.log([typeof m.MemStore, typeof m.MemstoreError, typeof e.useLite, l].join(","));',
  ].join(' ');
  const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  assert.equal(out, 'function,function,function,ERR_REQUIRE_ASYNC_MODULE');
});
