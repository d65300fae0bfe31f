import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { shippedDataset } from '../src/cli/datasets.js';
import { useLite, USE_LITE_DIM } from '../src/embedders/index.js';
import { MemStore } from '../src/index.js';
import { exactScore } from './helpers.js';
import { rejectsWith, tempDir } from './helpers.js';

const cosine = (a: Float32Array, b: Float32Array) => exactScore('cosine', a, b);

/** The shipped set's texts, in the order of its vectors. */
function shippedTexts(): string[] {
  const lines = readFileSync(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url), 'utf8').trim().split('\n');
  return lines.map((l) => (JSON.parse(l) as { text: string }).text);
}

const embed = await useLite();

test('USE-lite: 512 finite dimensions per text, the same vector for the same text, in order for a batch larger than one call', async () => {
  const texts = Array.from({ length: 70 }, (_, i) => `sentence ${i} about the weather`);
  const vectors = await embed(texts);
  assert.equal(vectors.length, 70);
  for (const v of vectors) {
    assert.equal(v.length, USE_LITE_DIM);
    assert.ok(Array.from(v).every(Number.isFinite));
  }
  const [again] = await embed([texts[65]!]);
  assert.ok(cosine(again!, vectors[65]!) > 0.9999);
});

test('USE-lite reproduces the shipped data set, which was embedded with the same packages (cosine above 0.999 for each of 20 texts)', async () => {
  const texts = shippedTexts().slice(0, 20);
  const shipped = shippedDataset().docs.slice(0, 20);
  const mine = await embed(texts);
  mine.forEach((v, i) => assert.ok(cosine(v, shipped[i]!) > 0.999, `${texts[i]}: ${cosine(v, shipped[i]!)}`));
});

test('USE-lite in the memory API: a paraphrased question recalls the fact it asks about', async () => {
  const store = await MemStore.open(tempDir(), { dim: USE_LITE_DIM, embed });
  try {
    await store.remember(['Alice lives in Lyon', 'Bob is allergic to peanuts', 'The meeting is at 3pm on Friday', 'My flight leaves on Monday'], { namespace: 'facts' });
    const [best] = await store.recall('what is Bob allergic to?', { namespace: 'facts' });
    assert.equal(best!.text, 'Bob is allergic to peanuts');
    const [when] = await store.recall('when does the meeting start', { namespace: 'facts' });
    assert.equal(when!.text, 'The meeting is at 3pm on Friday');
  } finally {
    await store.close();
  }
});

test('USE-lite: a batch size that is not a positive integer, a misspelt option (bacth) or options that are not an object are INVALID_OPTION', async () => {
  await rejectsWith(() => useLite({ batch: 0 }), 'INVALID_OPTION');
  await rejectsWith(() => useLite({ batch: 1.5 }), 'INVALID_OPTION');
  await rejectsWith(() => useLite({ bacth: 64 } as never), 'INVALID_OPTION');
  await rejectsWith(() => useLite(64 as never), 'INVALID_OPTION');
});
