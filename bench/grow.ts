/**
 * A larger data set from a real one, for the growth runs no real set here is big enough for: the
 * first rows are the real vectors, each further row a real vector (in turn) plus Gaussian noise of
 * `--noise` times its norm over √dim per coordinate, so near-duplicates cluster where the data does.
 * Seeded: the same arguments write the same file.
 *
 *   node dist/bench/grow.js --data docs.f32 --dim 100 --n 1000000 --out docs-1m.f32 [--noise 0.1] [--seed 1]
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { benchArgs } from './args.js';
import { readVectors } from '../src/cli/vector-files.js';
import { rng } from '../src/random.js';

const { values } = benchArgs('dist/bench/grow.js', { options: { data: { type: 'string' }, dim: { type: 'string' }, n: { type: 'string' }, out: { type: 'string' }, noise: { type: 'string' }, seed: { type: 'string' } } }, { numbers: ['noise', 'seed'] });
if (values.data === undefined || values.out === undefined || values.n === undefined) throw new Error('usage: --data FILE [--dim N] --n COUNT --out FILE [--noise 0.1] [--seed 1]');
const { rows, dim } = readVectors(values.data, values.dim === undefined ? undefined : Number(values.dim));
const n = Number(values.n);
const noise = values.noise === undefined ? 0.1 : Number(values.noise);
const next = rng(values.seed === undefined ? 1 : Number(values.seed));
const gaussian = (): number => {
  const u = Math.max(next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
};
const fd = openSync(values.out, 'w');
try {
  const batch = new Float32Array(4096 * dim);
  for (let at = 0; at < n; at += 4096) {
    const count = Math.min(4096, n - at);
    for (let j = 0; j < count; j++) {
      const i = at + j;
      const base = rows[i % rows.length]!;
      const row = batch.subarray(j * dim, (j + 1) * dim);
      row.set(base);
      if (i >= rows.length) {
        const scale = (noise * Math.hypot(...base)) / Math.sqrt(dim);
        for (let d = 0; d < dim; d++) row[d]! += scale * gaussian();
      }
    }
    writeSync(fd, new Uint8Array(batch.buffer, 0, count * dim * 4));
  }
} finally {
  closeSync(fd);
}
process.stdout.write(`wrote ${n} x ${dim}-d to ${values.out} (${rows.length} real rows, the rest with noise ${noise})\n`);
