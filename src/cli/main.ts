#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { readVectors, shippedDataset, type Dataset } from '../../bench/data.js';
import { defaultConfigs, formatTable, runStudy } from '../../bench/study.js';
import { runKernelBench } from '../../bench/kernels.bench.js';
import { MemStore } from '../memstore.js';
import { isMemstoreError } from '../errors.js';
import { METRICS, type Metric } from '../options.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

interface BenchFlags {
  data?: string;
  queries?: string;
  dim?: number;
  k: number;
  n?: number;
  metric: Metric;
  kernels?: boolean;
}

function loadData(flags: BenchFlags): Dataset {
  if (flags.data === undefined) {
    if (flags.queries !== undefined) throw new InvalidArgumentError('--queries needs --data');
    const shipped = shippedDataset();
    return flags.n === undefined ? shipped : { ...shipped, docs: shipped.docs.slice(0, flags.n) };
  }
  const docs = readVectors(flags.data, flags.dim);
  let queries: Float32Array[];
  let rows = docs.rows;
  if (flags.queries !== undefined) {
    queries = readVectors(flags.queries, docs.dim).rows;
  } else {
    // Without a query file, hold out the last 10% (at most 1000) of the data as queries.
    const held = Math.min(1000, Math.max(1, Math.floor(rows.length / 10)));
    queries = rows.slice(rows.length - held);
    rows = rows.slice(0, rows.length - held);
  }
  if (flags.n !== undefined) rows = rows.slice(0, flags.n);
  return { name: flags.data, dim: docs.dim, docs: rows, queries };
}

async function bench(flags: BenchFlags): Promise<void> {
  const data = loadData(flags);
  if (flags.kernels === true) {
    await runKernelBench({ dims: [data.dim] });
    return;
  }
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  progress(`memstore bench: ${data.name}, ${data.docs.length} vectors, ${data.queries.length} queries, dim ${data.dim}, ${flags.metric}, k=${flags.k}`);
  const rows = await runStudy({ data, configs: defaultConfigs(data.dim), k: flags.k, metric: flags.metric, onProgress: progress });
  process.stdout.write(`${formatTable(rows, flags.k)}\n`);
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
  .description('Embedded quantized vector memory: benchmarks and store tools');

program
  .command('bench')
  .description('recall / memory / speed of every codec x PCA x rescoring on real embeddings (default: the shipped WordNet USE-lite set)')
  .option('--data <file>', 'embeddings: .fvecs, or raw little-endian float32 with --dim')
  .option('--queries <file>', 'query embeddings in the same format (default: hold out 10% of --data)')
  .option('--dim <n>', 'dimension of raw float32 files', positiveInt)
  .option('--k <n>', 'neighbours per query', positiveInt, 10)
  .option('--n <n>', 'use only the first n data vectors', positiveInt)
  .addOption(new Option('--metric <metric>', 'similarity').choices(METRICS).default('cosine'))
  .option('--kernels', 'run the distance-kernel micro-benchmarks (tinybench) instead')
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
