/**
 * The process the model-based kill -9 test kills: it opens (or creates) the store in argv[2] in
 * 'always' mode, runs the write steps of the JSON file argv[3] and prints `ack N ok` or
 * `ack N <code>` once step N has resolved or been refused. Then it waits to be killed.
 *   node model-child.js DIR STEPS.json
 */
import { readFileSync } from 'node:fs';
import { MemStore, isMemstoreError } from '../../src/index.js';
import { openOptions, performWrite, type ModelConfig, type Step } from './model.js';

const [dir, file] = process.argv.slice(2);
const { config, steps } = JSON.parse(readFileSync(file!, 'utf8')) as { config: ModelConfig; steps: Step[] };
const store = await MemStore.open(dir!, { ...openOptions(config), durability: 'always' });
process.stdout.write('ready\n');
for (const [i, step] of steps.entries()) {
  let outcome = 'ok';
  try {
    await performWrite(store, step);
  } catch (e) {
    if (!isMemstoreError(e)) throw e;
    outcome = e.code;
  }
  process.stdout.write(`ack ${i} ${outcome}\n`);
}
process.stdout.write('done\n');
setInterval(() => undefined, 1 << 30);
