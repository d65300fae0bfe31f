import fc from 'fast-check';
import { CODEC_NAMES } from '../../src/codec/codec.js';
import { MODEL_DIM, type IdSpec, type MetaSpec, type ModelConfig, type RecordSpec, type Step, type TextSpec, type VectorSpec } from './model.js';

/**
 * fast-check generators of hostile step sequences for the model-based test: ids of every length
 * and script (most drawn from a small pool, so upserts and deletes hit), metadata of every JSON
 * shape and every non-JSON kind, extreme and malformed vectors, and closes, crashes and compactions.
 */

const emoji = '\u{1F600}';
/** Ids that keep coming back: odd scripts, control characters, prototype names, the longest allowed. */
const POOL = ['a', 'B', '\uFEFFa', '\uFEFF', 'é', '日本語', emoji, 'x\u0000y', ' ', '__proto__', 'constructor', 'a'.repeat(1024), 'ü'.repeat(512), emoji.repeat(256), 'line\nbreak', '\u202Eright-to-left'];

/** Ids a program could mean: most from the pool (so upserts and deletes hit), some random in any script. */
const goodIdArb: fc.Arbitrary<IdSpec> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...POOL) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }) },
);

/** Ids that must be refused: empty, lone surrogates, one byte past the limit in 1-, 2- and 4-byte scripts, not strings. */
const badIdArb: fc.Arbitrary<IdSpec> = fc.oneof(
  fc.constantFrom<IdSpec>('', 'a\uD800', '\uDC00z', 'b'.repeat(1025), emoji.repeat(257), 'ü'.repeat(513), { bad: 'number' }, { bad: 'null' }),
  fc.integer({ min: 513, max: 600 }).map((n) => 'é'.repeat(n)),
);

export const idArb: fc.Arbitrary<IdSpec> = fc.oneof({ weight: 15, arbitrary: goodIdArb }, { weight: 1, arbitrary: badIdArb });

/**
 * A vector component: mostly plain values, sometimes anything a double in [-4, 4] can be (fast-check
 * favours the extremes there: subnormals, -0, values that round to 0 in float32).
 */
const component = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -4000, max: 4000 }).map((x) => x / 1000) },
  { weight: 1, arbitrary: fc.double({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }) },
);

/** Vectors of plain and extreme (but, for most stores, acceptable) magnitudes, and the zero vector. */
const goodVectorArb: fc.Arbitrary<VectorSpec> = fc.oneof(
  { weight: 12, arbitrary: fc.array(component, { minLength: MODEL_DIM, maxLength: MODEL_DIM }) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.array(component, { minLength: MODEL_DIM, maxLength: MODEL_DIM }), fc.constantFrom(1e-11, 1e-3, 1e4, 1e11))
      .map(([v, scale]) => v.map((x) => x * scale)),
  },
  { weight: 1, arbitrary: fc.constant(new Array<number>(MODEL_DIM).fill(0)) },
);

const badVectorArb: fc.Arbitrary<VectorSpec> = fc.constantFrom<VectorSpec>({ bad: 'nan' }, { bad: 'inf' }, { bad: 'overflow' }, { bad: 'short' }, { bad: 'string' }, { bad: 'huge' }, { bad: 'tiny' }, { bad: 'f64array' });

const goodTextArb: fc.Arbitrary<TextSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 200, maxLength: 2000 }) },
);

const badTextArb: fc.Arbitrary<TextSpec> = fc.constantFrom<TextSpec>({ bad: 'lone' }, { bad: 'number' });

const jsonObject = fc.dictionary(fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'toString', '')), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });

/** Metadata of every JSON shape, usually with a `tag` the searches filter on. */
const goodMetaArb: fc.Arbitrary<MetaSpec> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('red', 'green', 'blue'), jsonObject).map(([tag, rest]) => ({ ...rest, tag })) },
  { weight: 1, arbitrary: jsonObject },
);

const badMetaArb: fc.Arbitrary<MetaSpec> = fc
  .constantFrom('map', 'date', 'typed', 'fn', 'undefined', 'bigint', 'cycle', 'nan', 'symbol', 'sparse', 'class', 'lone', 'array')
  .map((hostile) => ({ hostile }) as MetaSpec);

/** A well-formed record: text in two of three, metadata in three of four. */
const goodRecordArb: fc.Arbitrary<RecordSpec> = fc
  .tuple(goodIdArb, goodVectorArb, fc.option(goodTextArb, { freq: 3 }), fc.option(goodMetaArb, { freq: 4 }))
  .map(([id, vector, text, meta]) => ({ id, vector, ...(text === null ? {} : { text }), ...(meta === null ? {} : { meta }) }));

/** A record with one hostile part (id, vector, text, metadata, or a misspelt field name). */
const badRecordArb: fc.Arbitrary<RecordSpec> = fc
  .tuple(goodRecordArb, fc.oneof(badIdArb.map((id) => ({ id })), badVectorArb.map((vector) => ({ vector })), badTextArb.map((text) => ({ text })), badMetaArb.map((meta) => ({ meta })), fc.constant({ typo: true })))
  .map(([record, bad]) => ({ ...record, ...bad }));

export const recordArb: fc.Arbitrary<RecordSpec> = fc.oneof({ weight: 30, arbitrary: goodRecordArb }, { weight: 1, arbitrary: badRecordArb });

const queryArb = fc.array(component, { minLength: MODEL_DIM, maxLength: MODEL_DIM });

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.array(recordArb, { minLength: 1, maxLength: 6 }).map((records) => ({ op: 'add' as const, records })) },
  { weight: 2, arbitrary: fc.array(idArb, { minLength: 1, maxLength: 4 }).map((ids) => ({ op: 'delete' as const, ids })) },
  {
    weight: 6,
    arbitrary: fc.record(
      { op: fc.constant('search' as const), query: queryArb, k: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constant(100)), tag: fc.constantFrom('red', 'green', 'blue'), rescore: fc.boolean() },
      { requiredKeys: ['op', 'query', 'k'] },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom<Step>({ op: 'reopen' }, { op: 'crash' }, { op: 'compact' }) },
);

export const configArb: fc.Arbitrary<ModelConfig> = fc.record({
  metric: fc.constantFrom('cosine', 'dot', 'l2'),
  codec: fc.constantFrom(...CODEC_NAMES),
  pca: fc.boolean(),
  rescore: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

/** Only writes: what the child process of the kill -9 test runs. */
export const writeStepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.array(recordArb, { minLength: 1, maxLength: 8 }).map((records) => ({ op: 'add' as const, records })) },
  { weight: 3, arbitrary: fc.array(idArb, { minLength: 1, maxLength: 4 }).map((ids) => ({ op: 'delete' as const, ids })) },
  { weight: 1, arbitrary: fc.constant<Step>({ op: 'compact' }) },
);
