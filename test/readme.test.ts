import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

test('the README quick start runs as written and prints what it promises', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'README has a ts block under Quick start');
  const entry = fileURLToPath(new URL('../src/index.js', import.meta.url));
  // The block is plain JavaScript apart from its import of the package, which resolves to this build.
  const code = match[1]!.replace("from 'memstore'", `from ${JSON.stringify(entry)}`);
  const cwd = tempDir();
  const file = join(cwd, 'quickstart.mjs');
  writeFileSync(file, code);
  const out = execFileSync(process.execPath, [file], { cwd, encoding: 'utf8' });
  const lines = out.trim().split('\n');
  assert.match(lines[0]!, /'a 0\.9\d\d the cat sat on the mat'/);
  assert.match(lines[0]!, /'c 0\.9\d\d a kitten naps'/);
  assert.doesNotMatch(lines[0]!, /stock/);
  assert.equal(lines[1], 'stock prices fell 3');
});

test('the README documents every open() option in its options table, and every error code', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const options = readFileSync(new URL('../../src/options.ts', import.meta.url), 'utf8');
  const keys = /const OPEN_KEYS = \[([^\]]*)\]/.exec(options);
  assert.ok(keys, 'OPEN_KEYS in src/options.ts');
  const names = [...keys[1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
  assert.ok(names.length >= 15, `${names.length} open options`);
  for (const name of names) assert.ok(readme.includes(`\n| \`${name}\` |`), `open option ${name} has a row in the README's options table`);
  const errors = readFileSync(new URL('../../src/errors.ts', import.meta.url), 'utf8');
  const union = /export type MemstoreErrorCode =([\s\S]*?)\n(?:export|\n)/.exec(errors);
  assert.ok(union, 'MemstoreErrorCode in src/errors.ts');
  const codes = [...union[1]!.matchAll(/\| '([A-Z_]+)'/g)].map((m) => m[1]!);
  assert.ok(codes.length >= 11, `${codes.length} error codes`);
  for (const code of codes) assert.ok(readme.includes(`\`${code}\``), `error code ${code} is in the README`);
});
