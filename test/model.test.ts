import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MemStore } from '../src/index.js';
import { rng, tempDir } from './helpers.js';
import { runUntilKilled } from './support/killable.js';
import { configArb, stepArb, writeStepArb } from './support/model-arbitraries.js';
import { applyToModel, differences, expectedRefusal, modelStats, runSequence, validIds, type Model, type ModelConfig, type Step } from './support/model.js';

/**
 * Randomized model-based tests: long random sequences of adds, upserts, deletes, searches, gets,
 * closes, crashes and compactions, with hostile input mixed in (ids of every length and script,
 * metadata of every JSON shape and every non-JSON kind, extreme and malformed vectors), on every
 * metric x codec x PCA x rescoring. After every step the store must equal a plain in-memory model:
 * `get` of every id, `count`, and searches (exact where the store rescored every candidate).
 *
 * MODEL_SEQUENCES (default 200) sets how many sequences run; MODEL_SEED replays one run;
 * MODEL_KILLS (default 12) sets the kill -9 cycles. A failure prints the shrunk sequence as a test.
 */
const SEQUENCES = Number(process.env['MODEL_SEQUENCES'] ?? 200);
const SEED = process.env['MODEL_SEED'] === undefined ? Date.now() % 2147483647 : Number(process.env['MODEL_SEED']);
const KILLS = Number(process.env['MODEL_KILLS'] ?? 12);
const child = fileURLToPath(new URL('./support/model-child.js', import.meta.url));

/** JSON, except that -0 stays -0 (JSON would write 0): the steps as JavaScript source. */
function source(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (Object.is(v, -0) ? '__minus_zero__' : v)).replaceAll('"__minus_zero__"', '-0');
}

function asTest(config: ModelConfig, steps: readonly Step[]): string {
  return [
    `test('model regression (MODEL_SEED=${SEED})', async () => {`,
    `  await runSequence(${source(config)}, ${source(steps)});`,
    `});`,
  ].join('\n');
}

test(`model-based: ${SEQUENCES} random sequences with hostile input match an in-memory model after every step (seed ${SEED})`, async () => {
  const started = Date.now();
  const result = await fc.check(
    fc.asyncProperty(configArb, fc.array(stepArb, { minLength: 5, maxLength: 60 }), (config, steps) => runSequence(config, steps)),
    { numRuns: SEQUENCES, seed: SEED, endOnFailure: false },
  );
  if (result.failed) {
    const [config, steps] = result.counterexample!;
    process.stdout.write(`# the shrunk failing sequence, as a test for test/model.test.ts:\n${asTest(config, steps)}\n`);
    const error = 'errorInstance' in result ? result.errorInstance : undefined;
    assert.fail(`${error instanceof Error ? error.message : String(error)}\n\n${asTest(config, steps)}`);
  }
  process.stdout.write(`# model-based: ${result.numRuns} sequences in ${((Date.now() - started) / 1000).toFixed(1)} s, seed ${SEED}: ${JSON.stringify(modelStats)}\n`);
  assert.ok(modelStats.accepted > modelStats.refused / 2 && modelStats.exactTopK > 0, 'the sequences exercised the store (not only refusals)');
});

interface KillResult {
  acks: { index: number; outcome: string }[];
}

/** Runs the child and kills it once it has acknowledged step `killAtAck`, after `delayMs` more (the next write is then under way). */
async function runChildUntilKilled(dir: string, file: string, killAtAck: number, delayMs: number): Promise<KillResult> {
  const acks: KillResult['acks'] = [];
  await runUntilKilled(child, [dir, file], (line, kill) => {
    if (line === 'done') kill();
    else if (line.startsWith('ack ')) {
      const [, index, outcome] = line.split(' ');
      acks.push({ index: Number(index), outcome: outcome! });
      if (Number(index) === killAtAck) kill(delayMs);
    }
  });
  return { acks };
}

test(`model-based kill -9: ${KILLS} children killed at random points while writing hostile sequences; every acknowledged write survives`, async () => {
  const next = rng(SEED);
  let inFlightApplied = 0;
  for (let cycle = 0; cycle < KILLS; cycle++) {
    const sampled = fc.sample(fc.tuple(configArb, fc.array(writeStepArb, { minLength: 20, maxLength: 60 })), { seed: SEED + cycle, numRuns: 1 })[0]!;
    // The child reads the steps as JSON: the model must see them as the child does (-0 becomes 0).
    const [config, steps] = JSON.parse(JSON.stringify(sampled)) as typeof sampled;
    const dir = tempDir('memstore-model-kill-');
    const file = join(tempDir('memstore-model-steps-'), 'steps.json');
    writeFileSync(file, JSON.stringify({ config, steps }));
    const { acks } = await runChildUntilKilled(dir, file, Math.floor(next() * steps.length), Math.floor(next() * 3));
    const model: Model = new Map();
    const universe = new Set<string>();
    for (const step of steps) for (const id of validIds(step)) universe.add(id);
    for (const { index, outcome } of acks) {
      const step = steps[index]!;
      const expected = expectedRefusal(step, config);
      const where = `cycle ${cycle} (MODEL_SEED=${SEED}) step ${index}`;
      if (expected.size === 0) assert.equal(outcome, 'ok', where);
      else assert.ok(expected.has(outcome as never), `${where}: ${outcome}, expected one of ${[...expected].join(', ')}`);
      if (outcome === 'ok') applyToModel(model, step, config);
    }
    const store = await MemStore.open(dir);
    try {
      const plain = await differences(store, model, universe, config);
      if (plain !== undefined) {
        // Acks arrive in order; the kill may land after the next write took effect but before its ack.
        const inFlight = steps[acks.length];
        assert.ok(inFlight !== undefined && expectedRefusal(inFlight, config).size === 0, `cycle ${cycle} (MODEL_SEED=${SEED}, ${JSON.stringify(config)}): ${plain.slice(0, 200)}, and no write was in flight`);
        applyToModel(model, inFlight, config);
        const whole = await differences(store, model, universe, config);
        assert.equal(whole, undefined, `cycle ${cycle} (MODEL_SEED=${SEED}): the store matches neither the acknowledged writes (${plain}) nor them plus the write in flight`);
        inFlightApplied++;
      }
    } finally {
      await store.close();
    }
  }
  process.stdout.write(`# model-based kill -9: ${KILLS} cycles, in-flight write found applied ${inFlightApplied} times\n`);
});
