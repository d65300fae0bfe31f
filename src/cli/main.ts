#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { MemStore } from '../memstore.js';
import { isMemstoreError } from '../errors.js';
import { METRICS } from '../options.js';
import { bench, type BenchFlags } from './bench.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

async function inspect(dir: string): Promise<void> {
  const store = await MemStore.open(dir);
  try {
    process.stdout.write(`${JSON.stringify({ dir, ...store.stats() }, null, 2)}\n`);
  } finally {
    await store.close();
  }
}

const program = new Command()
  .name('memstore')
  .description('Embedded quantized vector memory: the storage/recall trade-off study and store tools');

program
  .command('bench')
  .description('recall, memory and speed of every codec x PCA x rescoring, beside exact float32 and HNSW (default data: the shipped WordNet USE-lite set)')
  .option('--data <file>', 'your embeddings: .fvecs, .npy (float32/float16), .jsonl with an "embedding" field, or raw float32 with --dim')
  .option('--queries <file>', 'query embeddings in the same formats (default: the last 10% of --data, at most 1000)')
  .option('--dim <n>', 'dimension of raw float32 files (and of --synthetic data, default 256)', positiveInt)
  .option('--n <n>', 'use only the first n data vectors (--synthetic: how many to make, default 10000)', positiveInt)
  .option('--k <n>', 'neighbours per query', positiveInt, 10)
  .addOption(new Option('--metric <metric>', 'similarity').choices(METRICS).default('cosine'))
  .option('--synthetic', 'use a clustered synthetic data set instead of real embeddings')
  .option('--pca <list>', 'PCA settings to try: none, N% of dims, or N dims, comma separated', 'none,50%,25%')
  .option('--no-hnsw', 'skip the hnswlib-node baseline')
  .option('--out <dir>', 'where results.md, results.json and results.svg go', 'memstore-bench-results')
  .option('--json <file>', 'write the JSON report here instead')
  .option('--chart <file>', 'write the SVG chart (recall@k against RAM per vector) here instead')
  .option('--budget <size>', 'RAM budget for a recommendation, e.g. 2GB (needs --count)')
  .option('--count <n>', 'vectors the budget must hold, e.g. 5000000 or 5M')
  .option('--kernels', 'run the distance-kernel micro-benchmarks (tinybench) at the data set\'s dimension instead')
  .option('--quick', 'a small subset (300 vectors, 30 queries, PCA none and 25%) to check the set-up in seconds')
  .action((flags: BenchFlags) => bench(flags));

program
  .command('inspect')
  .argument('<dir>', 'store directory')
  .description('print the configuration and statistics of a store')
  .action((dir: string) => inspect(dir));

program.parseAsync().catch((e: unknown) => {
  if (isMemstoreError(e)) process.stderr.write(`memstore: ${e.code}: ${e.message}\n`);
  else process.stderr.write(`memstore: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = isMemstoreError(e, 'CORRUPTION') ? 1 : 2;
});
