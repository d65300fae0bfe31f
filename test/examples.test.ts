import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `examples/<name>.ts` as built, as its header says; its stdout. */
async function example(name: string, args: string[] = []): Promise<string> {
  const file = fileURLToPath(new URL(`../examples/${name}.js`, import.meta.url));
  const { stdout } = await run(process.execPath, [file, ...args], { timeout: 120_000, maxBuffer: 16 << 20 });
  return stdout;
}

test('examples/rag-memory: remembers the shipped glosses and recalls for each question', async () => {
  const out = await example('rag-memory');
  assert.match(out, /^remembered 1000 glosses/m);
});

test('examples/agent-memory: a moved-house fact supersedes the old one, recall finds the allergy for a snack, and namespaces keep conversations apart', async () => {
  const out = await example('agent-memory');
  assert.match(out, /\[updated chat-42:home-city\]/);
  assert.match(out, /Can you suggest a snack for me\?\n {2}remembers \([\d.]+, turn 2\): I am allergic to peanuts/);
  assert.match(out, /chat-42 recalls Berlin: false/);
  assert.match(out, /home city now: Good news: I just moved to Paris\./);
});

test('examples/rag-documents: indexes license texts from an npm package and answers the patent question from the patent clauses, with sources', async () => {
  const out = await example('rag-documents');
  assert.match(out, /^indexed \d+ chunks of 8 licenses/m);
  const patent = out.split('\nQ: ').find((block) => block.startsWith('What happens to my patent license'))!;
  assert.match(patent, /\[Apache-2\.0 #\d+, [\d.]+\] If You institute patent litigation/);
});

test('examples/budget: picks a configuration from bench results that fits the budget, or says none fits', async () => {
  assert.match(await example('budget'), /^MemStore\.open\(dir, \{ dim, \.\.\.\{"codec":"[^"]+"/m);
  assert.match(await example('budget', [fileURLToPath(new URL('../../bench/results/default/results.json', import.meta.url)), '1000', '1000000']), /no configuration the bench measured fits/);
});

test('examples/budget: takes sizes and counts as memstore bench does (2GB, 5M: it had printed "budget NaN MiB"), and a wrong one or a missing results file exits 2 saying so', async () => {
  const results = fileURLToPath(new URL('../../bench/results/default/results.json', import.meta.url));
  assert.match(await example('budget', [results, '2GB', '5M']), /^budget 1907 MiB for 5,000,000 vectors/m);
  for (const args of [[results, '2XB', '5'], [results, '2GB', 'many'], ['no-such-results.json', '2GB', '5M']]) {
    await assert.rejects(example('budget', args), (e: unknown) => (e as { code?: unknown }).code === 2, args.join(' '));
  }
});
