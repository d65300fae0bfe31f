import { readVectors } from '../src/cli/vector-files.js';
import { shippedDataset, type Dataset } from '../src/cli/datasets.js';

/** The command-line options every benchmark script takes to choose its data (parseArgs form). */
export const DATA_OPTIONS = {
  data: { type: 'string' },
  queries: { type: 'string' },
  dim: { type: 'string' },
  n: { type: 'string' },
} as const;

/**
 * The data set `--data` (with `--queries`, else its last tenth as queries, and `--dim` for raw
 * float32) names, or the shipped one.
 */
export function datasetFrom(values: { data?: string | undefined; queries?: string | undefined; dim?: string | undefined }): Dataset {
  if (values.data === undefined) return shippedDataset();
  const docs = readVectors(values.data, values.dim === undefined ? undefined : Number(values.dim));
  const queries = values.queries === undefined ? docs.rows.splice(Math.floor(docs.rows.length * 0.9)) : readVectors(values.queries, docs.dim, `the data (${values.data})`).rows;
  return { name: values.data, dim: docs.dim, docs: docs.rows, queries };
}
