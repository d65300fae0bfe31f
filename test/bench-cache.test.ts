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
