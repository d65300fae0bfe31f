import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCacheBench } from '../bench/cache.js';
import { datasetFrom } from '../bench/data.js';

/** The figure after `label` in the bench's output, or undefined. */
function figure(lines: readonly string[], label: string): number | undefined {
  const line = lines.find((l) => l.startsWith(label));
  return line === undefined ? undefined : Number(line.slice(label.length).trim().split(/\s/)[0]);
}

for (const separate of [false, true]) {
  test(`the cache bench replays both stores ${separate ? 'in a process each' : 'in one process, query by query'}: every answer compared, none differs`, async () => {
    const lines: string[] = [];
    await runCacheBench(datasetFrom({}), [], { n: 300, stream: 60, rounds: 1, separate }, (line) => lines.push(line));
    assert.equal(figure(lines, 'answers that differed between the two stores:'), 0);
    const rows = lines.filter((l) => /^\| (repeat|near|fresh) \|/.test(l));
    assert.equal(rows.reduce((n, l) => n + Number(l.split('|')[2]), 0), 60);
    // Repeats of a query remembered with nothing written since are exact hits, whichever store ran first.
    const repeat = rows.find((l) => l.startsWith('| repeat |'))!.split('|').map((c) => c.trim());
    assert.ok(Number(repeat[3]) > 0);
    assert.ok(lines.some((l) => l.includes(separate ? 'each configuration in a fresh process' : 'query by query')));
  });
}

test('the cache bench with --off-at misses: the store without the cache searches exactly the queries the one with it missed, foreseen by the replay ahead', async () => {
  const lines: string[] = [];
  await runCacheBench(datasetFrom({}), [], { n: 300, stream: 60, rounds: 1, offAt: 'misses' }, (line) => lines.push(line));
  assert.equal(figure(lines, 'answers that differed between the two stores:'), 0);
  const samples = (label: string) => Number(lines.find((l) => l.startsWith(`| ${label} |`))!.split('|')[2]);
  const misses = samples('miss');
  assert.ok(misses > 0 && misses < 60, `${misses} misses of 60`);
  assert.equal(samples('the same misses, cache off'), misses, 'searched without the cache at the misses only');
  // The kinds are taken as foreseen (no counters read between searches), and the counters agree with them.
  assert.ok(lines.some((l) => l.includes('as the untimed replay ahead foresaw it') && l.includes('by 0 exact and 0 near')));
  assert.ok(!lines.some((l) => l.startsWith('queries/s over the stream')), 'no queries/s compared when one store skipped the hits');
});

test('the cache bench refuses --off-at misses with --separate, and an --off-at it does not know, before it replays anything', async () => {
  for (const options of [{ separate: true, offAt: 'misses' as const }, { offAt: 'sometimes' as 'misses' }]) {
    const lines: string[] = [];
    await assert.rejects(runCacheBench(datasetFrom({}), [], { n: 50, stream: 10, rounds: 1, ...options }, (line) => lines.push(line)));
    assert.deepEqual(lines, [], JSON.stringify(options));
  }
  const lines: string[] = [];
  await runCacheBench(datasetFrom({}), [], { n: 50, stream: 10, rounds: 1, separate: true, offAt: 'every' }, (line) => lines.push(line));
  assert.equal(figure(lines, 'answers that differed between the two stores:'), 0, 'every query searched is what --separate does');
});

test('the cache bench gives each round its own ratios, the copy opened first alternating, and their geometric mean over the rounds', async () => {
  const lines: string[] = [];
  await runCacheBench(datasetFrom({}), [], { n: 300, stream: 60, rounds: 2 }, (line) => lines.push(line));
  const byRound = lines.find((l) => l.startsWith('by round'));
  assert.ok(byRound !== undefined);
  assert.ok(byRound.includes('round 1 (cache on opened first)') && byRound.includes('round 2 (cache off opened first)'), byRound);
  const misses = [...byRound.matchAll(/miss (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(misses.length, 2, byRound);
  const mean = lines.find((l) => l.startsWith('geometric mean over the 2 rounds'));
  assert.ok(mean !== undefined && !mean.includes('odd number'));
  const meanMiss = Number(/miss (\d+\.\d+)/.exec(mean)?.[1]);
  // Each figure is rounded to three places: the mean of the rounded ones is within a rounding of the printed mean.
  assert.ok(Math.abs(meanMiss - Math.sqrt(misses[0]! * misses[1]!)) <= 0.0015, `${mean} against ${misses.join(', ')}`);
  const odd: string[] = [];
  await runCacheBench(datasetFrom({}), [], { n: 300, stream: 60, rounds: 1 }, (line) => odd.push(line));
  assert.ok(odd.some((l) => l.startsWith('geometric mean over the 1 round:') && l.includes('odd number')));
});

test('the cache bench with mmap false: both stores read with positioned reads, none of the answers differs, and hot vectors save reads there', async () => {
  const lines: string[] = [];
  await runCacheBench(datasetFrom({}), [], { n: 300, stream: 60, rounds: 1, offAt: 'misses', mmap: false }, (line) => lines.push(line));
  assert.equal(figure(lines, 'answers that differed between the two stores:'), 0);
  assert.ok(lines.some((l) => l.startsWith('data:') && l.includes('positioned reads (mmap: false)')));
  const saved = lines.find((l) => l.includes('full-precision reads saved by hot vectors'));
  assert.ok(saved !== undefined && Number(/saved by hot vectors (\d+)/.exec(saved)?.[1]) > 0, saved);
});
