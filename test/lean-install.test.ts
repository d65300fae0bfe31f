import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './helpers.js';

const run = promisify(execFile);
const hide = fileURLToPath(new URL('../../test/support/without-optional.mjs', import.meta.url));
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const library = new URL('../src/index.js', import.meta.url).href;

/** Runs node with the bench's optional packages unresolvable; exit code and output. */
async function withoutOptional(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', hide, ...args], { timeout: 120_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

test('lean install: the hiding hook works (a bench script that needs hnswlib-node cannot load it)', async () => {
  const r = await withoutOptional(['--input-type=module', '-e', "await import('hnswlib-node')"]);
  assert.notEqual(r.code, 0);
});

test('lean install: without hnswlib-node, vega, vega-lite and tinybench the library stores and searches, and memstore verify runs', async () => {
  const dir = tempDir();
  const script = `const { MemStore } = await import(${JSON.stringify(library)});
const s = await MemStore.open(${JSON.stringify(dir)}, { dim: 4 });
await s.add([{ id: 'a', vector: [1, 0, 0, 0], text: 'x' }, { id: 'b', vector: [0, 1, 0, 0] }]);
const hits = await s.search([1, 0.1, 0, 0], { k: 1 });
await s.close();
console.log('hit ' + hits[0].id);`;
  const lib = await withoutOptional(['--input-type=module', '-e', script]);
  assert.equal(lib.code, 0, lib.stderr);
  assert.match(lib.stdout, /^hit a$/m);
  const verify = await withoutOptional([cli, 'verify', dir]);
  assert.equal(verify.code, 0, verify.stderr);
});

test('lean install: memstore bench without its optional packages runs, leaves out the HNSW baseline and the charts, and says how to get them', async () => {
  const out = tempDir();
  const r = await withoutOptional([cli, 'bench', '--quick', '--no-index', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /npm install hnswlib-node/);
  assert.match(r.stderr, /npm install vega/);
  assert.ok(!r.stdout.includes('hnswlib-node HNSW'), 'no HNSW row');
  assert.deepEqual(readdirSync(out).sort(), ['results.json', 'results.md']);
});

test('lean install: memstore bench --kernels without tinybench fails (exit 2) and says how to get it, since it runs nothing else', async () => {
  const kernels = await withoutOptional([cli, 'bench', '--kernels']);
  assert.equal(kernels.code, 2, kernels.stderr);
  assert.match(kernels.stderr, /npm install tinybench/);
  assert.equal(kernels.stdout, '');
});

test('lean install: the library entry point loads none of the bench packages', async () => {
  const script = `await import(${JSON.stringify(library)}); await import(${JSON.stringify(new URL('../src/embedders/index.js', import.meta.url).href)}); console.log('loaded');`;
  const r = await withoutOptional(['--input-type=module', '-e', script]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'loaded');
});
