import type { ScalarCodecName } from '../codec/codec.js';
import {
  BYTES_PER_DIM,
  EXACT_DOT_NORM,
  EXACT_SQDIST,
  I8_METRICS,
  KERNEL_CODECS,
  KERNEL_METRICS,
  RQ_BITS,
  RQ_METRICS,
  SELECT_AT_LEAST,
  ROUTE_SCORES,
  BUCKET_SELECT,
  INT8_NORMS,
  INT8_DECODE,
  ROUTE_SPHERE,
  ROUTE_WIDEN,
  SELECT_BUCKETS,
  ROW_MAX_ABS,
  SIGN_SKETCH,
  SUM_MULTIPLES,
  HADAMARD_TRANSFORM,
  MULTIPLY_SIGNS,
  GIVENS_HALVES,
  EIGEN_DOT_AXPY,
  EIGEN_RANK2,
  EIGEN_REFLECT,
  HAMMING_ROWS,
  QUERY_SHIFT_I8,
  QUERY_SHIFT_F32,
  fastScanDecodeExportName,
  fastScanExportName,
  fastScanTableExportName,
  fastScanWriteExportName,
  gatherName,
  scanExportName,
  scanI8ExportName,
  SCAN_I8_COSINE_NORMED,
  FLOAT_NORMED_CODECS,
  floatNormsExportName,
  scanCosineNormedExportName,
  scanRqExportName,
  type FloatNormedCodec,
  type I8Metric,
  type KernelMetric,
  type RqBits,
  type RqMetric,
} from './contract.js';

/**
 * Generates the WebAssembly text of every distance kernel from templates: one exported function
 * per (codec, metric) for float32 queries, and one per metric for int8 queries, each in a
 * contiguous and a gather form. KERNELS.md explains the memory layout and the decode tricks; this
 * file only says why the code is shaped as it is.
 */

/** How many stored vectors one pass over the query scores at once, per kernel family. */
export interface KernelTuning {
  /** Float-query kernels: sharing the four query loads of a step between vectors. */
  readonly floatBlock: number;
  /** Int8-query kernels: sharing the two sign-extending query loads of a step between vectors. */
  readonly i8Block: number;
  /** Rotated-code kernels: sharing each query plane's load of a step between vectors. */
  readonly rqBlock: number;
  /** Fast-scan kernels: groups per step of the group loop, a power of two (the rest of a segment goes one at a time). */
  readonly fastScanUnroll: number;
}

/**
 * Chosen by measurement on x86-64 (V8 11, Node 20): a float block of 2 already spills an
 * accumulator to the stack, while four int8-query vectors fit the 16 xmm registers and run ~20%
 * faster than one. Four rq vectors took 1-bit 512-d from 24 ns (one) to 18 ns per vector. Two
 * fast-scan groups per step measured 2-4% faster than one; four and eight were slower (4.6 and
 * 5.0 ns per 1-bit 512-d vector against 4.3). Any values stay correct.
 */
export const DEFAULT_TUNING: KernelTuning = { floatBlock: 1, i8Block: 4, rqBlock: 4, fastScanUnroll: 2 };

const get = (name: string): string => `(local.get $${name})`;
const set = (name: string, value: string): string => `(local.set $${name} ${value})`;
const i32 = (value: number): string => `(i32.const ${value})`;
const splat32 = (bits: number): string => {
  const hex = `0x${(bits >>> 0).toString(16).padStart(8, '0')}`;
  return `(v128.const i32x4 ${hex} ${hex} ${hex} ${hex})`;
};
const ZERO = splat32(0);

/** f32 bit patterns of the powers of two that rebias a narrow float's exponent to binary32. */
const POW2_112 = (112 + 127) << 23;
const POW2_120 = (120 + 127) << 23;

/**
 * Decodes the 16 dimensions of one step of a code into four f32x4 vectors of d (unscaled value).
 * `setup` runs first and may fill the raw registers r0/r1; `vecs` are expressions over them.
 */
interface Decoder {
  readonly scaled: boolean;
  /** v128 constants the decode needs, hoisted into locals so V8 does not rematerialize them per step. */
  readonly constants: Readonly<Record<string, string>>;
  decode(ptr: string): { setup: string[]; vecs: string[] };
  /**
   * The step's Σ d² as an f32x4, when the codec has a cheaper way than squaring the decoded
   * floats; may use what `decode` left in r0/r1.
   */
  squaredNorm?(): string;
}

/*
 * Narrow floats are decoded by moving their exponent and mantissa bits to where binary32 keeps
 * its low exponent bits and mantissa, with the sign in bit 31. That binary32 is the value times
 * 2^-rebias (rebias = 127 − narrow bias), and one multiply by 2^rebias makes it exact. Narrow
 * subnormals land on binary32 subnormals with the same significand, so they come out exact too
 * (WebAssembly never flushes subnormals). Sign-extending loads put copies of the sign above the
 * field; the mask keeps one copy, in bit 31.
 *
 * No i8x16.shuffle gathers bytes into lanes: V8 lowers a general constant shuffle to pshufb with a
 * rematerialized mask, which measured ~40% slower than extends. The zero-interleave used for fp8
 * is matched to a single punpck{l,h}wd.
 */

/** f16: sign-extended into i32 lanes by the load, shifted left 13, masked to sign|exp|mantissa. */
const f16Decoder: Decoder = {
  scaled: false,
  constants: { kMask: splat32(0x8fffe000), kRebias: splat32(POW2_112) },
  decode: (ptr) => ({
    setup: [],
    vecs: [0, 1, 2, 3].map(
      (v) =>
        `(f32x4.mul (v128.and (i32x4.shl (v128.load16x4_s offset=${8 * v} ${get(ptr)}) ${i32(13)}) ` +
        `${get('kMask')}) ${get('kRebias')})`,
    ),
  }),
};

/** Interleaves the i16 lanes of `src` above zero halves: i32 lane k = src lane k << 16. */
const WORDS_TO_HIGH_HALVES = {
  low: [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23],
  high: [8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31],
};

/**
 * fp8: the byte is sign-extended to i16 and shifted so its fields sit in the top half of the
 * binary32 pattern (bits 15..0 of the i16 become bits 31..16), masked on eight lanes at once, then
 * interleaved with zero halves into i32 lanes.
 */
function fp8Decoder(kind: 'e4m3' | 'e5m2'): Decoder {
  const shift = kind === 'e4m3' ? 4 : 5;
  const mask = kind === 'e4m3' ? 0x87f0 : 0x8fe0;
  return {
    scaled: true,
    constants: {
      kMask16: `(v128.const i16x8 ${Array(8).fill(`0x${mask.toString(16)}`).join(' ')})`,
      kRebias: splat32(kind === 'e4m3' ? POW2_120 : POW2_112),
      kZero: ZERO,
    },
    decode(ptr) {
      const setup = (['r0', 'r1'] as const).map((r, half) =>
        set(r, `(v128.and (i16x8.shl (v128.load8x8_s offset=${8 * half} ${get(ptr)}) ${i32(shift)}) ${get('kMask16')})`),
      );
      const vecs = ['r0', 'r1'].flatMap((r) =>
        [WORDS_TO_HIGH_HALVES.low, WORDS_TO_HIGH_HALVES.high].map(
          (pattern) => `(f32x4.mul (i8x16.shuffle ${pattern.join(' ')} ${get('kZero')} ${get(r)}) ${get('kRebias')})`,
        ),
      );
      return { setup, vecs };
    },
  };
}

const DECODERS: Readonly<Record<ScalarCodecName, Decoder>> = {
  f32: {
    scaled: false,
    constants: {},
    decode: (ptr) => ({ setup: [], vecs: [0, 1, 2, 3].map((v) => `(v128.load offset=${16 * v} ${get(ptr)})`) }),
  },
  f16: f16Decoder,
  int8: {
    scaled: true,
    constants: {},
    // Integer squares (one pmaddwd per 8 dimensions) instead of four float multiplies; each step's
    // lane sums 4 squares of at most 127², exact in i32 and in f32.
    squaredNorm: () =>
      `(f32x4.convert_i32x4_s (i32x4.add (i32x4.dot_i16x8_s ${get('r0')} ${get('r0')}) ` +
      `(i32x4.dot_i16x8_s ${get('r1')} ${get('r1')})))`,
    decode: (ptr) => ({
      setup: [set('r0', `(v128.load8x8_s ${get(ptr)})`), set('r1', `(v128.load8x8_s offset=8 ${get(ptr)})`)],
      vecs: ['r0', 'r1'].flatMap((r) => [
        `(f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s ${get(r)}))`,
        `(f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s ${get(r)}))`,
      ]),
    }),
  },
  'fp8-e4m3': fp8Decoder('e4m3'),
  'fp8-e5m2': fp8Decoder('e5m2'),
};

/** Sum of four terms as a balanced tree, so only one add per step joins the loop-carried chain. */
function tree(op: string, terms: readonly string[]): string {
  const [a, b, c, d] = terms;
  return `(${op} (${op} ${a} ${b}) (${op} ${c} ${d}))`;
}

const f32HorizontalSum = (v: string): string =>
  `(f32.add (f32.add (f32x4.extract_lane 0 ${get(v)}) (f32x4.extract_lane 1 ${get(v)})) ` +
  `(f32.add (f32x4.extract_lane 2 ${get(v)}) (f32x4.extract_lane 3 ${get(v)})))`;

const i32HorizontalSum = (v: string): string =>
  `(i32.add (i32.add (i32x4.extract_lane 0 ${get(v)}) (i32x4.extract_lane 1 ${get(v)})) ` +
  `(i32.add (i32x4.extract_lane 2 ${get(v)}) (i32x4.extract_lane 3 ${get(v)})))`;

/** The two float64 of the high half of four float32 lanes `v` (f64x2.promote_low_f32x4 takes the low two). */
const promoteHigh = (v: string): string => `(f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 ${v} ${v}))`;

/** A float64 sum kept in two f64x2 locals `lo` and `hi`, folded (lo₀ + lo₁) + (hi₀ + hi₁). */
const f64PairsSum = (lo: string, hi: string): string =>
  `(f64.add (f64.add (f64x2.extract_lane 0 ${get(lo)}) (f64x2.extract_lane 1 ${get(lo)})) ` +
  `(f64.add (f64x2.extract_lane 0 ${get(hi)}) (f64x2.extract_lane 1 ${get(hi)})))`;

/**
 * Declarations of the locals among `i32Locals` and `v128Locals` that a kernel's `text` uses (a name
 * is used when `$name` appears followed by a space or a parenthesis): the templates name more
 * scratch locals than any one kernel needs.
 */
function usedLocals(text: string, i32Locals: readonly string[], v128Locals: readonly string[]): string[] {
  const referenced = (name: string): boolean => new RegExp(`\\$${name}[ )]`).test(text);
  return [...i32Locals.filter(referenced).map((name) => `(local $${name} i32)`), ...v128Locals.filter(referenced).map((name) => `(local $${name} v128)`)];
}

/** What differs between kernels; `scanFunction` supplies the loops around it. */
interface KernelBody {
  readonly exportName: string;
  /** Parameters between the query pointer and the codes pointer (the int8 query's scale). */
  readonly extraParams: string;
  readonly queryStep: number;
  readonly codeStep: number;
  readonly block: number;
  readonly constants: Readonly<Record<string, string>>;
  /** Instructions run once per step before the per-vector work (query loads). */
  loadQuery(): string[];
  /** Instructions run before the dimension loop for vector b of the block; `scale` loads its f32 scale. */
  initVector(b: number, scale: string): string[];
  /** Instructions consuming one step of vector b, whose code pointer is local `ptr`. */
  step(b: number, ptr: string): string[];
  /** f32 score of vector b after the dimension loop; `scale` loads its f32 scale. */
  score(b: number, scale: string): string;
  /**
   * The four scores of a block of four at once, as an f32x4 (lane b = score(b)'s value, bit for
   * bit), after `setup`; `scales` is an f32x4 of the four scales. Optional: where given, a block's
   * scores are reduced and stored by SIMD instead of lane by lane (blockSums()).
   */
  readonly scores4?: ((scales: string) => { readonly setup: string[]; readonly value: string }) | undefined;
}

/**
 * The lane sums of four accumulators `a0..a3` (i32x4 or f32x4) as one vector, lane b the sum of
 * accumulator b folded as f32HorizontalSum and i32HorizontalSum fold it, (l0 + l1) + (l2 + l3):
 * two rounds of shuffles and adds instead of sixteen extractions and twelve scalar adds. The first
 * round pairs lanes 0+1 and 2+3 of a0 and a1 (into `u01`) and of a2 and a3 (`u23`); the second adds
 * the two halves. Float lanes are added in the same order as the scalar fold, so the sums are the
 * same bits.
 */
function blockSums(type: 'i32x4' | 'f32x4', a: readonly [string, string, string, string], u01: string, u23: string): { setup: string[]; value: string } {
  const evens = 'i8x16.shuffle 0 1 2 3 16 17 18 19 8 9 10 11 24 25 26 27';
  const odds = 'i8x16.shuffle 4 5 6 7 20 21 22 23 12 13 14 15 28 29 30 31';
  const pairs = (x: string, y: string): string => `(${type}.add (${evens} ${get(x)} ${get(y)}) (${odds} ${get(x)} ${get(y)}))`;
  const lows = 'i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23';
  const highs = 'i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31';
  return {
    setup: [set(u01, pairs(a[0], a[1])), set(u23, pairs(a[2], a[3]))],
    value: `(${type}.add (${lows} ${get(u01)} ${get(u23)}) (${highs} ${get(u01)} ${get(u23)}))`,
  };
}

/**
 * Where a kernel finds its vectors: `contiguous` codes back to back from $codes with their scales
 * from $s; `gather` an address table at $a, one (code address, scale address) pair of i32s per
 * vector, so that vectors scattered over the blocks are scored in one call, each exactly as the
 * contiguous kernel scores it (the same instructions on the same bytes, in the same order).
 */
type Layout = 'contiguous' | 'gather';

const codePtr = (b: number): string => `c${b}`;

/**
 * The loop skeleton shared by all kernels: blocks of `block` vectors walk the query once, then the
 * remaining n mod block vectors go one at a time. Contiguous: code pointers advance with the step,
 * so after the dimension loop pointer b sits on the code of vector b + 1 and no multiplication is
 * needed. Gather: each block loads its code pointers from the address table, and a block of
 * scattered vectors keeps that many independent streams of loads in flight.
 */
function scanFunction(body: KernelBody, layout: Layout): string {
  const gather = layout === 'gather';
  const scaleOf = (b: number): string =>
    gather ? `(f32.load (i32.load offset=${8 * b + 4} ${get('a')}))` : `(f32.load offset=${4 * b} ${get('s')})`;
  const loopFor = (block: number, label: string, end: string): string[] => {
    const out: string[] = [];
    out.push(`(block $${label}_done`);
    out.push(`(br_if $${label}_done (i32.ge_u ${get('out')} ${get(end)}))`);
    out.push(`(loop $${label}`);
    if (gather) for (let b = 0; b < block; b++) out.push(set(codePtr(b), `(i32.load offset=${8 * b} ${get('a')})`));
    else for (let b = 1; b < block; b++) out.push(set(codePtr(b), `(i32.add ${get(codePtr(b - 1))} ${get('stride')})`));
    for (let b = 0; b < block; b++) out.push(...body.initVector(b, scaleOf(b)));
    out.push(set('qi', get('q')));
    out.push(`(loop $${label}_dims`);
    out.push(...body.loadQuery());
    for (let b = 0; b < block; b++) out.push(...body.step(b, codePtr(b)));
    out.push(set('qi', `(i32.add ${get('qi')} ${i32(body.queryStep)})`));
    for (let b = 0; b < block; b++) {
      out.push(set(codePtr(b), `(i32.add ${get(codePtr(b))} ${i32(body.codeStep)})`));
    }
    out.push(`(br_if $${label}_dims (i32.lt_u ${get('qi')} ${get('qEnd')})))`);
    if (block === 4 && body.scores4 !== undefined) {
      const scales = gather
        ? [1, 2, 3].reduce((v, b) => `(f32x4.replace_lane ${b} ${v} ${scaleOf(b)})`, `(f32x4.splat ${scaleOf(0)})`)
        : `(v128.load ${get('s')})`;
      const { setup, value } = body.scores4(scales);
      out.push(...setup, `(v128.store ${get('out')} ${value})`);
    } else {
      for (let b = 0; b < block; b++) out.push(`(f32.store offset=${4 * b} ${get('out')} ${body.score(b, scaleOf(b))})`);
    }
    if (gather) {
      out.push(set('a', `(i32.add ${get('a')} ${i32(8 * block)})`));
    } else {
      // Pointer block − 1 now sits on the code right after the block.
      if (block > 1) out.push(set(codePtr(0), get(codePtr(block - 1))));
      out.push(set('s', `(i32.add ${get('s')} ${i32(4 * block)})`));
    }
    out.push(set('out', `(i32.add ${get('out')} ${i32(4 * block)})`));
    out.push(`(br_if $${label} (i32.lt_u ${get('out')} ${get(end)})))`);
    out.push(')');
    return out;
  };

  const code: string[] = [];
  for (const [name, value] of Object.entries(body.constants)) code.push(set(name, value));
  code.push(set('qEnd', `(i32.add ${get('q')} (i32.mul ${get('dim')} ${i32(body.queryStep / 16)}))`));
  if (!gather) code.push(set('stride', `(i32.mul ${get('dim')} ${i32(body.codeStep / 16)})`));
  code.push(set('outEnd', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(2)}))`));
  if (!gather) code.push(set(codePtr(0), get('codes')));
  if (body.block > 1) {
    const whole = `(i32.sub ${get('n')} (i32.rem_u ${get('n')} ${i32(body.block)}))`;
    code.push(set('blockEnd', `(i32.add ${get('out')} (i32.shl ${whole} ${i32(2)}))`));
    code.push(...loopFor(body.block, 'blocks', 'blockEnd'));
  }
  code.push(...loopFor(1, 'singles', 'outEnd'));
  const text = code.join('\n');

  // Declare every scratch name the templates may use, but only those this kernel does use.
  const i32Locals = ['qEnd', 'blockEnd', 'outEnd', 'stride', 'qi'];
  const v128Locals = ['q0', 'q1', 'q2', 'q3', 'd0', 'd1', 'd2', 'd3', 'r0', 'r1', 'cl', 'ch', 'u01', 'u23', 'sc'];
  v128Locals.push(...Object.keys(body.constants));
  for (let b = 0; b < body.block; b++) {
    i32Locals.push(codePtr(b));
    v128Locals.push(`acc${b}`, `den${b}`, `sv${b}`);
  }
  const declarations = usedLocals(text, i32Locals, v128Locals);
  const name = gather ? gatherName(body.exportName) : body.exportName;
  const vectors = gather ? '(param $a i32)' : '(param $codes i32) (param $s i32)';
  const signature =
    `(func $${name} (export "${name}") (param $q i32)${body.extraParams} ` +
    `${vectors} (param $n i32) (param $dim i32) (param $out i32)`;
  return [signature, ...declarations, text, ')'].join('\n');
}

/** The squares of a step's four decoded vectors, summed lane by lane as every float cosine kernel sums them: ((d0² + d1²) + (d2² + d3²)). */
function stepSquares(decoder: Decoder): string {
  const d = (k: number): string => get(`d${k}`);
  return decoder.squaredNorm?.() ?? tree('f32x4.add', [0, 1, 2, 3].map((k) => `(f32x4.mul ${d(k)} ${d(k)})`));
}

/**
 * `normed` (cosine, contiguous, codecs other than int8, which has its own): each code's norm comes
 * from $s, where the other cosine kernels would read a scale they do not use, instead of being
 * summed from the decoded values: half the multiplies of a step. The norms are the ones
 * norms_<codec> computes, by the same instructions as the summing kernel's, so the two give every
 * score bit for bit.
 */
function floatKernel(codec: ScalarCodecName, metric: KernelMetric, block: number, layout: Layout, normed = false): string {
  const decoder = DECODERS[codec];
  const q = (k: number): string => get(`q${k}`);
  const d = (k: number): string => get(`d${k}`);
  const ks = [0, 1, 2, 3];
  const summed = metric === 'cosine' && !normed;
  return scanFunction({
    exportName: normed ? scanCosineNormedExportName(codec as FloatNormedCodec) : scanExportName(codec, metric),
    extraParams: '',
    queryStep: 64,
    codeStep: 16 * BYTES_PER_DIM[codec],
    block,
    constants: decoder.constants,
    loadQuery: () => ks.map((k) => set(`q${k}`, `(v128.load offset=${16 * k} ${get('qi')})`)),
    initVector(b, scale) {
      const init = [set(`acc${b}`, ZERO)];
      if (summed) init.push(set(`den${b}`, ZERO));
      if (metric === 'l2' && decoder.scaled) init.push(set(`sv${b}`, `(f32x4.splat ${scale})`));
      return init;
    },
    step(b, ptr) {
      const { setup, vecs } = decoder.decode(ptr);
      const out = [...setup, ...vecs.map((v, k) => set(`d${k}`, v))];
      const acc = `acc${b}`;
      if (metric === 'l2') {
        const scaledD = (k: number): string => (decoder.scaled ? `(f32x4.mul ${get(`sv${b}`)} ${d(k)})` : d(k));
        out.push(...ks.map((k) => set(`d${k}`, `(f32x4.sub ${q(k)} ${scaledD(k)})`)));
        out.push(set(acc, `(f32x4.add ${get(acc)} ${tree('f32x4.add', ks.map((k) => `(f32x4.mul ${d(k)} ${d(k)})`))})`));
        return out;
      }
      out.push(set(acc, `(f32x4.add ${get(acc)} ${tree('f32x4.add', ks.map((k) => `(f32x4.mul ${q(k)} ${d(k)})`))})`));
      if (summed) {
        const den = `den${b}`;
        out.push(set(den, `(f32x4.add ${get(den)} ${stepSquares(decoder)})`));
      }
      return out;
    },
    score(b, scale) {
      const sum = f32HorizontalSum(`acc${b}`);
      if (metric === 'l2') return `(f32.neg ${sum})`;
      if (metric === 'dot') return decoder.scaled ? `(f32.mul ${scale} ${sum})` : sum;
      // $s holds the norm, the f32.sqrt of the sum below: a norm above 0 exactly when that sum is.
      if (normed) return `(select (f32.div ${sum} ${scale}) (f32.const 0) (f32.gt ${scale} (f32.const 0)))`;
      const den = f32HorizontalSum(`den${b}`);
      return `(select (f32.div ${sum} (f32.sqrt ${den})) (f32.const 0) (f32.gt ${den} (f32.const 0)))`;
    },
  }, layout);
}

/**
 * norms_<codec>(codes, n, dim, out): the norm of each of `n` codes back to back from `codes` (`dim`
 * values each, a multiple of DIM_STEP), as float32 at `out`: the f32.sqrt of the sum of squares
 * the summing cosine kernel forms (the same decode, stepSquares() and lane sums), which
 * scan_<codec>_cosine_normed then reads. Run when codes are written and loaded, one or a few at a time.
 */
function floatNormsKernel(codec: FloatNormedCodec): string {
  const decoder = DECODERS[codec];
  const codeStep = 16 * BYTES_PER_DIM[codec];
  const name = floatNormsExportName(codec);
  const { setup, vecs } = decoder.decode('c');
  const body = [
    ...Object.entries(decoder.constants).map(([k, v]) => set(k, v)),
    set('outEnd', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(2)}))`),
    set('c', get('codes')),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('out')} ${get('outEnd')}))`,
    '(loop $vectors',
    set('den', ZERO),
    set('cEnd', `(i32.add ${get('c')} (i32.mul ${get('dim')} ${i32(codeStep / 16)}))`),
    '(block $steps_done',
    `(br_if $steps_done (i32.ge_u ${get('c')} ${get('cEnd')}))`,
    '(loop $steps',
    ...setup,
    ...vecs.map((v, k) => set(`d${k}`, v)),
    set('den', `(f32x4.add ${get('den')} ${stepSquares(decoder)})`),
    set('c', `(i32.add ${get('c')} ${i32(codeStep)})`),
    `(br_if $steps (i32.lt_u ${get('c')} ${get('cEnd')})))`,
    ')',
    `(f32.store ${get('out')} (f32.sqrt ${f32HorizontalSum('den')}))`,
    set('out', `(i32.add ${get('out')} ${i32(4)})`),
    `(br_if $vectors (i32.lt_u ${get('out')} ${get('outEnd')})))`,
    ')',
  ].join('\n');
  const declarations = usedLocals(body, ['c', 'cEnd', 'outEnd'], ['den', 'd0', 'd1', 'd2', 'd3', 'r0', 'r1', ...Object.keys(decoder.constants)]);
  return [`(func $${name} (export "${name}") (param $codes i32) (param $n i32) (param $dim i32) (param $out i32)`, ...declarations, body, ')'].join('\n');
}

/**
 * Int8 query against int8 codes. Bytes are sign-extended to i16 by the loads and multiplied
 * pairwise into i32 by i32x4.dot_i16x8_s (pmaddwd), exactly; MAX_I8_DIM keeps the sums in i32.
 *
 * `normed` (cosine, contiguous only): each code's norm √Σc² comes from $s instead of being summed
 * from the code, which halves the multiplies of a step (cosine never reads the scale). A norm as
 * int8CodeNorm() makes it is the float32 the summing kernel computes, so the two give every score
 * bit for bit.
 */
function i8Kernel(metric: I8Metric, block: number, layout: Layout, normed = false): string {
  const dot = (a: string, b: string): string => `(i32x4.dot_i16x8_s ${a} ${b})`;
  const summed = metric === 'cosine' && !normed;
  return scanFunction({
    exportName: normed ? SCAN_I8_COSINE_NORMED : scanI8ExportName(metric),
    extraParams: ' (param $qScale f32)',
    queryStep: 16,
    codeStep: 16,
    block,
    constants: {},
    loadQuery: () => [
      set('q0', `(v128.load8x8_s ${get('qi')})`),
      set('q1', `(v128.load8x8_s offset=8 ${get('qi')})`),
    ],
    initVector(b) {
      const init = [set(`acc${b}`, ZERO)];
      if (summed) init.push(set(`den${b}`, ZERO));
      return init;
    },
    step(b, ptr) {
      const out = [set('cl', `(v128.load8x8_s ${get(ptr)})`), set('ch', `(v128.load8x8_s offset=8 ${get(ptr)})`)];
      const acc = `acc${b}`;
      out.push(
        set(acc, `(i32x4.add ${get(acc)} (i32x4.add ${dot(get('q0'), get('cl'))} ${dot(get('q1'), get('ch'))}))`),
      );
      if (summed) {
        const den = `den${b}`;
        out.push(
          set(den, `(i32x4.add ${get(den)} (i32x4.add ${dot(get('cl'), get('cl'))} ${dot(get('ch'), get('ch'))}))`),
        );
      }
      return out;
    },
    score(b, scale) {
      const sum = `(f32.convert_i32_s ${i32HorizontalSum(`acc${b}`)})`;
      if (metric === 'dot') return `(f32.mul (f32.mul ${get('qScale')} ${scale}) ${sum})`;
      // $s holds the norm: a code of zeros has norm 0 and scores 0, as a den of 0 does.
      if (normed) return `(select (f32.div (f32.mul ${get('qScale')} ${sum}) ${scale}) (f32.const 0) (f32.ne ${scale} (f32.const 0)))`;
      const den = i32HorizontalSum(`den${b}`);
      return (
        `(select (f32.div (f32.mul ${get('qScale')} ${sum}) (f32.sqrt (f32.convert_i32_s ${den}))) ` +
        `(f32.const 0) ${den})`
      );
    },
    // score()'s steps lane by lane: the integer sums are exact, and each float step is the same
    // IEEE operation on the same operands in each lane.
    scores4: summed ? undefined : (scales: string) => {
      const dots = blockSums('i32x4', ['acc0', 'acc1', 'acc2', 'acc3'], 'u01', 'u23');
      if (metric === 'dot') return { setup: dots.setup, value: `(f32x4.mul (f32x4.mul (f32x4.splat ${get('qScale')}) ${scales}) (f32x4.convert_i32x4_s ${dots.value}))` };
      const scaled = `(f32x4.mul (f32x4.splat ${get('qScale')}) (f32x4.convert_i32x4_s ${dots.value}))`;
      return { setup: [...dots.setup, set('sc', scales)], value: `(v128.bitselect (f32x4.div ${scaled} ${get('sc')}) ${ZERO} (f32x4.ne ${get('sc')} ${ZERO}))` };
    },
  }, layout);
}

/**
 * Bytes of a plane whose popcounts an rq kernel adds up in i8 lanes before widening them: 31
 * steps add at most 31 · 8 = 248 to a lane, so no lane wraps past 255.
 */
const RQ_SEGMENT_BYTES = 31 * 16;

/**
 * Rotated codes (KERNELS.md, "Rotated codes"): `bits` bit planes of planeBytes per code against
 * qBits query planes. For each code plane b and query plane c, the kernel ANDs 16-byte steps of
 * both, counts the bits per byte (i8x16.popcnt) and adds the counts in i8 lanes; at the end of the
 * plane, or of each RQ_SEGMENT_BYTES of it, the lanes are widened to i16 pairwise and multiplied
 * into i32 by the weight 2^(b+c) with one i32x4.dot_i16x8_s, which widens and weighs in a single
 * instruction. The query planes are a loop (qBits is a run-time bound) and the weight doubles per
 * plane. Σ_b 2^b · popcount(plane b) is counted with scalar i64.popcnt, which runs on the integer
 * units beside the vector work. Every sum is an exact integer, so blocks, singles and the gather
 * form give the same integers whatever the order, and the float32 steps after them are the
 * reference's, in its order.
 */
function rqKernel(bits: RqBits, metric: RqMetric, block: number, layout: Layout): string {
  const gather = layout === 'gather';
  const scaleOf = (v: number): string =>
    gather ? `(f32.load (i32.load offset=${8 * v + 4} ${get('a')}))` : `(f32.load offset=${4 * v} ${get('s')})`;
  const vs = (count: number): number[] => Array.from({ length: count }, (_, v) => v);

  const loopFor = (count: number, label: string, end: string): string[] => {
    const out: string[] = [];
    out.push(`(block $${label}_done`);
    out.push(`(br_if $${label}_done (i32.ge_u ${get('out')} ${get(end)}))`);
    out.push(`(loop $${label}`);
    for (const v of vs(count)) {
      if (gather) out.push(set(codePtr(v), `(i32.load offset=${8 * v} ${get('a')})`));
      else if (v > 0) out.push(set(codePtr(v), `(i32.add ${get(codePtr(v - 1))} ${get('stride')})`));
      out.push(set(`p${v}`, get(codePtr(v))), set(`acc${v}`, ZERO), set(`u${v}`, i32(0)));
    }
    for (let b = 0; b < bits; b++) {
      if (b > 0) for (const v of vs(count)) out.push(set(`p${v}`, `(i32.add ${get(`p${v}`)} ${get('pb')})`));
      out.push(set('qc', get('q')), set('w', `(i16x8.splat ${i32(1 << b)})`));
      out.push(`(loop $${label}_planes${b}`);
      out.push(set('k', i32(0)));
      out.push(`(loop $${label}_segments${b}`);
      const next = `(i32.add ${get('k')} ${i32(RQ_SEGMENT_BYTES)})`;
      out.push(set('segEnd', `(select ${get('pb')} ${next} (i32.lt_u ${get('pb')} ${next}))`));
      for (const v of vs(count)) out.push(set(`n${v}`, ZERO));
      out.push(`(loop $${label}_steps${b}`);
      out.push(set('qv', `(v128.load (i32.add ${get('qc')} ${get('k')}))`));
      for (const v of vs(count)) {
        const codeStep = `(v128.load (i32.add ${get(`p${v}`)} ${get('k')}))`;
        out.push(set(`n${v}`, `(i8x16.add ${get(`n${v}`)} (i8x16.popcnt (v128.and ${get('qv')} ${codeStep})))`));
      }
      out.push(set('k', `(i32.add ${get('k')} ${i32(16)})`));
      out.push(`(br_if $${label}_steps${b} (i32.lt_u ${get('k')} ${get('segEnd')})))`);
      for (const v of vs(count)) {
        const weighed = `(i32x4.dot_i16x8_s (i16x8.extadd_pairwise_i8x16_u ${get(`n${v}`)}) ${get('w')})`;
        out.push(set(`acc${v}`, `(i32x4.add ${get(`acc${v}`)} ${weighed})`));
      }
      out.push(`(br_if $${label}_segments${b} (i32.lt_u ${get('k')} ${get('pb')})))`);
      out.push(set('qc', `(i32.add ${get('qc')} ${get('pb')})`), set('w', `(i16x8.add ${get('w')} ${get('w')})`));
      out.push(`(br_if $${label}_planes${b} (i32.lt_u ${get('qc')} ${get('qEnd')})))`);
      out.push(set('k', i32(0)), ...vs(count).map((v) => set(`t${v}`, '(i64.const 0)')));
      out.push(`(loop $${label}_ones${b}`);
      for (const v of vs(count)) {
        const at = `(i32.add ${get(`p${v}`)} ${get('k')})`;
        const ones = `(i64.add (i64.popcnt (i64.load ${at})) (i64.popcnt (i64.load offset=8 ${at})))`;
        out.push(set(`t${v}`, `(i64.add ${get(`t${v}`)} ${ones})`));
      }
      out.push(set('k', `(i32.add ${get('k')} ${i32(16)})`));
      out.push(`(br_if $${label}_ones${b} (i32.lt_u ${get('k')} ${get('pb')})))`);
      for (const v of vs(count)) {
        out.push(set(`u${v}`, `(i32.add ${get(`u${v}`)} (i32.shl (i32.wrap_i64 ${get(`t${v}`)}) ${i32(b)}))`));
      }
    }
    for (const v of vs(count)) {
      const dot = `(f32.convert_i32_s ${i32HorizontalSum(`acc${v}`)})`;
      const sumU = `(f32.convert_i32_s ${get(`u${v}`)})`;
      const inner = `(f32.sub (f32.add (f32.mul ${get('delta')} ${dot}) (f32.mul ${get('lo')} ${sumU})) ${get('corr')})`;
      const estimate = `(f32.mul ${scaleOf(v)} ${inner})`;
      if (metric === 'dot') {
        out.push(`(f32.store offset=${4 * v} ${get('out')} ${estimate})`);
      } else {
        out.push(set('est', estimate));
        // ‖r‖² sits right after the last plane, where p_v points.
        const normSq = `(f32.load (i32.add ${get(`p${v}`)} ${get('pb')}))`;
        const distance = `(f32.sub (f32.add ${get('qNormSq')} ${normSq}) (f32.add ${get('est')} ${get('est')}))`;
        out.push(`(f32.store offset=${4 * v} ${get('out')} (f32.neg ${distance}))`);
      }
    }
    if (gather) {
      out.push(set('a', `(i32.add ${get('a')} ${i32(8 * count)})`));
    } else {
      out.push(set(codePtr(0), `(i32.add ${get(codePtr(count - 1))} ${get('stride')})`));
      out.push(set('s', `(i32.add ${get('s')} ${i32(4 * count)})`));
    }
    out.push(set('out', `(i32.add ${get('out')} ${i32(4 * count)})`));
    out.push(`(br_if $${label} (i32.lt_u ${get('out')} ${get(end)})))`);
    out.push(')');
    return out;
  };

  const code: string[] = [];
  code.push(set('qEnd', `(i32.add ${get('q')} (i32.mul ${get('qBits')} ${get('pb')}))`));
  code.push(set('outEnd', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(2)}))`));
  if (!gather) code.push(set(codePtr(0), get('codes')));
  if (block > 1) {
    const whole = `(i32.sub ${get('n')} (i32.rem_u ${get('n')} ${i32(block)}))`;
    code.push(set('blockEnd', `(i32.add ${get('out')} (i32.shl ${whole} ${i32(2)}))`));
    code.push(...loopFor(block, 'blocks', 'blockEnd'));
  }
  code.push(...loopFor(1, 'singles', 'outEnd'));

  const i32Locals = ['qEnd', 'outEnd', 'blockEnd', 'qc', 'k', 'segEnd'];
  const v128Locals = ['qv', 'w'];
  const i64Locals: string[] = [];
  for (const v of vs(block)) {
    i32Locals.push(codePtr(v), `p${v}`, `u${v}`);
    v128Locals.push(`acc${v}`, `n${v}`);
    i64Locals.push(`t${v}`);
  }
  const declarations = [
    ...i32Locals.filter((name) => name !== 'blockEnd' || block > 1).map((name) => `(local $${name} i32)`),
    ...i64Locals.map((name) => `(local $${name} i64)`),
    ...v128Locals.map((name) => `(local $${name} v128)`),
    ...(metric === 'l2' ? ['(local $est f32)'] : []),
  ];
  const name = gather ? gatherName(scanRqExportName(bits, metric)) : scanRqExportName(bits, metric);
  const vectors = gather ? '(param $a i32)' : '(param $codes i32) (param $s i32)';
  const strideParam = gather ? '' : ' (param $stride i32)';
  const signature =
    `(func $${name} (export "${name}") (param $q i32) (param $qBits i32) (param $delta f32) (param $lo f32) ` +
    `(param $corr f32) (param $qNormSq f32) ${vectors} (param $n i32) (param $pb i32)${strideParam} (param $out i32)`;
  return [signature, ...declarations, ...code, ')'].join('\n');
}

/**
 * Groups a fast-scan kernel adds up in u16 lanes before widening them into i32: each group adds at
 * most 255 to a lane, and 256 · 255 = 65,280 stays below 2^16 (257 groups would just fit; 258 not).
 */
const FAST_SCAN_SEGMENT_GROUPS = 256;

/** Byte pattern of i8x16.shuffle interleaving the first (`low`) or last four i16 lanes of two vectors, a and b: a0 b0 a1 b1 ... */
const INTERLEAVE_WORDS = {
  low: [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23],
  high: [8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31],
};

/**
 * The float32 steps that turn a lane's exact sum into its score, on four lanes at once or on one:
 * `op` prefixes each instruction (`f32x4` or `f32`), `sum` is the f32 conversion of the sum, and the
 * other arguments are expressions of the same shape; local `p` (of that shape) holds F · inner for
 * l2, which uses it twice. f32x4.mul and f32x4.add round each lane as f32.mul and f32.add round one
 * value, so the block and gather kernels agree bit for bit. Returns the instructions that store the
 * score through `store`.
 */
function fastScanScore(
  op: 'f32x4' | 'f32',
  metric: RqMetric,
  terms: { sum: string; delta: string; bias: string; scale: string; qNormSq: string; normSq: string },
  store: (value: string) => string,
): string[] {
  const p = `(${op}.mul ${terms.scale} (${op}.add (${op}.mul ${terms.delta} ${terms.sum}) ${terms.bias}))`;
  if (metric === 'dot') return [store(p)];
  const distance = `(${op}.sub (${op}.add ${terms.qNormSq} ${terms.normSq}) (${op}.add ${get('p')} ${get('p')}))`;
  return [set('p', p), store(`(${op}.neg ${distance})`)];
}

/**
 * Fast scan (KERNELS.md, "Fast scan"): a block of 32 codes cut into 4-bit groups, each group's 16
 * bytes holding lanes 0-15 in the low nibbles and 16-31 in the high ones, scored against a table of
 * 16 bytes per group. Per group, each nibble vector picks its lanes' table bytes with one
 * i8x16.swizzle, and the 32 picked bytes are added up in u16 without widening: a byte vector read
 * as eight u16 lanes is (even byte) + 256 · (odd byte), so one accumulator adds it as is and another
 * adds it shifted right by 8 (the odd bytes alone); at the end of a segment the even sums are the
 * first minus the second shifted left by 8, modulo 2^16, exact while no sum reaches 2^16. That is
 * three instructions per 16 lanes instead of the four of two extends and two adds. Each segment is
 * then widened into eight i32x4 sums in lane order, and the float steps run on four lanes at once.
 */
function fastScanKernel(metric: RqMetric, unroll: number): string {
  if (!(Number.isInteger(unroll) && unroll > 0 && (unroll & (unroll - 1)) === 0)) {
    throw new RangeError(`fastScanUnroll must be a power of two, got ${unroll}`);
  }
  const name = fastScanExportName(metric);
  const halves = [
    { nibbles: (code: string) => `(v128.and ${code} ${get('mask')})`, a: 'aLo', b: 'bLo', r: 'rLo', first: 0 },
    { nibbles: (code: string) => `(v128.and (i16x8.shr_u ${code} ${i32(4)}) ${get('mask')})`, a: 'aHi', b: 'bHi', r: 'rHi', first: 4 },
  ];
  const sums = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => `s${k}`);
  const groupLoop = (label: string, groups: number, end: string): string[] => {
    const out = [`(loop $${label}`];
    for (let g = 0; g < groups; g++) {
      out.push(set('t', `(v128.load offset=${16 * g} ${get('l')})`), set('code', `(v128.load offset=${16 * g} ${get('c')})`));
      for (const h of halves) {
        out.push(
          set(h.r, `(i8x16.swizzle ${get('t')} ${h.nibbles(get('code'))})`),
          set(h.a, `(i16x8.add ${get(h.a)} ${get(h.r)})`),
          set(h.b, `(i16x8.add ${get(h.b)} (i16x8.shr_u ${get(h.r)} ${i32(8)}))`),
        );
      }
    }
    out.push(set('l', `(i32.add ${get('l')} ${i32(16 * groups)})`), set('c', `(i32.add ${get('c')} ${i32(16 * groups)})`));
    out.push(`(br_if $${label} (i32.lt_u ${get('l')} ${get(end)})))`);
    return out;
  };
  const code: string[] = [
    set('mask', `(v128.const i8x16 ${Array(16).fill('0x0f').join(' ')})`),
    set('vDelta', `(f32x4.splat ${get('delta')})`),
    set('vBias', `(f32x4.splat ${get('bias')})`),
    set('vQ', `(f32x4.splat ${get('qNormSq')})`),
    set('lutEnd', `(i32.add ${get('lut')} (i32.shl ${get('G')} ${i32(4)}))`),
    set('outEnd', `(i32.add ${get('out')} (i32.shl ${get('nBlocks')} ${i32(7)}))`),
    set('c', get('blocks')),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('out')} ${get('outEnd')}))`,
    '(loop $blocks',
    ...sums.map((s) => set(s, ZERO)),
    set('l', get('lut')),
    '(loop $segments',
    set('segEnd', `(i32.sub ${get('lutEnd')} ${get('l')})`),
    set('segEnd', `(i32.add ${get('l')} (select ${get('segEnd')} ${i32(16 * FAST_SCAN_SEGMENT_GROUPS)} (i32.lt_u ${get('segEnd')} ${i32(16 * FAST_SCAN_SEGMENT_GROUPS)})))`),
    ...halves.flatMap((h) => [set(h.a, ZERO), set(h.b, ZERO)]),
    // Steps of `unroll` groups while a whole one fits in the segment, then single groups.
    set('stepEnd', `(i32.add ${get('l')} (i32.and (i32.sub ${get('segEnd')} ${get('l')}) ${i32(-16 * unroll)}))`),
    '(block $groupsDone',
    `(br_if $groupsDone (i32.ge_u ${get('l')} ${get('stepEnd')}))`,
    ...groupLoop('groups', unroll, 'stepEnd'),
    ')',
    '(block $restDone',
    `(br_if $restDone (i32.ge_u ${get('l')} ${get('segEnd')}))`,
    ...groupLoop('rest', 1, 'segEnd'),
    ')',
  ];
  for (const h of halves) {
    // Even lanes of this half: the plain sum less 256 times the odd lanes' sum, modulo 2^16.
    code.push(set('even', `(i16x8.sub ${get(h.a)} (i16x8.shl ${get(h.b)} ${i32(8)}))`));
    for (const [k, pattern] of [INTERLEAVE_WORDS.low, INTERLEAVE_WORDS.high].entries()) {
      code.push(set('w', `(i8x16.shuffle ${pattern.join(' ')} ${get('even')} ${get(h.b)})`));
      const low = sums[h.first + 2 * k]!;
      const high = sums[h.first + 2 * k + 1]!;
      code.push(set(low, `(i32x4.add ${get(low)} (i32x4.extend_low_i16x8_u ${get('w')}))`));
      code.push(set(high, `(i32x4.add ${get(high)} (i32x4.extend_high_i16x8_u ${get('w')}))`));
    }
  }
  code.push(`(br_if $segments (i32.lt_u ${get('l')} ${get('lutEnd')})))`);
  sums.forEach((s, k) => {
    const terms = {
      sum: `(f32x4.convert_i32x4_s ${get(s)})`,
      delta: get('vDelta'),
      bias: get('vBias'),
      scale: `(v128.load offset=${16 * k} ${get('scales')})`,
      qNormSq: get('vQ'),
      normSq: `(v128.load offset=${16 * k} ${get('norms')})`,
    };
    code.push(...fastScanScore('f32x4', metric, terms, (value) => `(v128.store offset=${16 * k} ${get('out')} ${value})`));
  });
  code.push(
    set('scales', `(i32.add ${get('scales')} ${i32(128)})`),
    set('norms', `(i32.add ${get('norms')} ${i32(128)})`),
    set('out', `(i32.add ${get('out')} ${i32(128)})`),
    `(br_if $blocks (i32.lt_u ${get('out')} ${get('outEnd')})))`,
    ')',
  );
  const declarations = [
    ...['lutEnd', 'outEnd', 'l', 'c', 'segEnd', 'stepEnd'].map((local) => `(local $${local} i32)`),
    ...['mask', 'vDelta', 'vBias', 'vQ', 't', 'code', 'rLo', 'rHi', 'aLo', 'bLo', 'aHi', 'bHi', 'even', 'w', ...sums].map(
      (local) => `(local $${local} v128)`,
    ),
    ...(metric === 'l2' ? ['(local $p v128)'] : []),
  ];
  const signature =
    `(func $${name} (export "${name}") (param $lut i32) (param $G i32) (param $delta f32) (param $bias f32) ` +
    `(param $qNormSq f32) (param $blocks i32) (param $scales i32) (param $norms i32) (param $nBlocks i32) (param $out i32)`;
  return [signature, ...declarations, ...code, ')'].join('\n');
}

/**
 * The gather form of fastScanKernel: n vectors, each given by four i32 at tablePtr + 16j (its block's
 * code address, its lane 0-31, the address of its float32 scale and of its float32 ‖r‖²), one
 * vector at a time with a scalar loop over the groups. The sum is the same exact integer, and the
 * float steps are fastScanScore's on one lane, so each score is bit for bit the block kernel's.
 */
function gatherFastScanKernel(metric: RqMetric): string {
  const name = gatherName(fastScanExportName(metric));
  const at = (offset: number): string => `(i32.load offset=${offset} ${get('a')})`;
  const terms = {
    sum: `(f32.convert_i32_s ${get('sum')})`,
    delta: get('delta'),
    bias: get('bias'),
    scale: `(f32.load ${at(8)})`,
    qNormSq: get('qNormSq'),
    normSq: `(f32.load ${at(12)})`,
  };
  const code = [
    set('lutEnd', `(i32.add ${get('lut')} (i32.shl ${get('G')} ${i32(4)}))`),
    set('outEnd', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(2)}))`),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('out')} ${get('outEnd')}))`,
    '(loop $vectors',
    set('c', `(i32.add ${at(0)} (i32.and ${at(4)} ${i32(15)}))`),
    // Lanes 16-31 sit in the high nibbles.
    set('shift', `(i32.shl (i32.shr_u ${at(4)} ${i32(4)}) ${i32(2)})`),
    set('sum', i32(0)),
    set('l', get('lut')),
    '(loop $groups',
    set('nibble', `(i32.and (i32.shr_u (i32.load8_u ${get('c')}) ${get('shift')}) ${i32(15)})`),
    set('sum', `(i32.add ${get('sum')} (i32.load8_u (i32.add ${get('l')} ${get('nibble')})))`),
    set('l', `(i32.add ${get('l')} ${i32(16)})`),
    set('c', `(i32.add ${get('c')} ${i32(16)})`),
    `(br_if $groups (i32.lt_u ${get('l')} ${get('lutEnd')})))`,
    ...fastScanScore('f32', metric, terms, (value) => `(f32.store ${get('out')} ${value})`),
    set('a', `(i32.add ${get('a')} ${i32(16)})`),
    set('out', `(i32.add ${get('out')} ${i32(4)})`),
    `(br_if $vectors (i32.lt_u ${get('out')} ${get('outEnd')})))`,
    ')',
  ];
  const declarations = ['lutEnd', 'outEnd', 'c', 'shift', 'sum', 'l', 'nibble'].map((local) => `(local $${local} i32)`);
  if (metric === 'l2') declarations.push('(local $p f32)');
  const signature =
    `(func $${name} (export "${name}") (param $lut i32) (param $G i32) (param $delta f32) (param $bias f32) ` +
    `(param $qNormSq f32) (param $a i32) (param $n i32) (param $out i32)`;
  return [signature, ...declarations, ...code, ')'].join('\n');
}

/**
 * The exact kernels rescoring uses: float32 vectors against a float32 query, accumulated in
 * float64 exactly as vector.ts's dot and squaredDistance do (four running sums, s_j over the
 * dimensions i ≡ j mod 4, added as (s0 + s1) + (s2 + s3); no fused multiply-add), so a score is
 * the same number whichever computes it. Lanes 0 and 1 of `lo` hold s0 and s1, of `hi` s2 and s3.
 * Vectors are zero-padded to a multiple of 4 floats: the zeros add +0 to sums that are never -0.
 *
 * exact_dot_norm writes, per vector, the f64 pair (q · x, ‖x‖²); exact_sqdist the f64 ‖q − x‖².
 */
function exactKernel(name: typeof EXACT_DOT_NORM | typeof EXACT_SQDIST): string {
  const zero = '(v128.const f64x2 0 0)';
  const dot = name === EXACT_DOT_NORM;
  const body: string[] = [
    set('stride', `(i32.shl ${get('dim')} ${i32(2)})`),
    set('end', `(i32.add ${get('x')} (i32.mul ${get('n')} ${get('stride')}))`),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('x')} ${get('end')}))`,
    '(loop $vectors',
    set('lo', zero),
    set('hi', zero),
    ...(dot ? [set('nlo', zero), set('nhi', zero)] : []),
    set('qi', get('q')),
    set('xEnd', `(i32.add ${get('x')} ${get('stride')})`),
    '(loop $dims',
    set('a', `(v128.load ${get('qi')})`),
    set('b', `(v128.load ${get('x')})`),
    set('alo', `(f64x2.promote_low_f32x4 ${get('a')})`),
    set('ahi', promoteHigh(get('a'))),
    set('blo', `(f64x2.promote_low_f32x4 ${get('b')})`),
    set('bhi', promoteHigh(get('b'))),
  ];
  if (dot) {
    body.push(
      set('lo', `(f64x2.add ${get('lo')} (f64x2.mul ${get('alo')} ${get('blo')}))`),
      set('hi', `(f64x2.add ${get('hi')} (f64x2.mul ${get('ahi')} ${get('bhi')}))`),
      set('nlo', `(f64x2.add ${get('nlo')} (f64x2.mul ${get('blo')} ${get('blo')}))`),
      set('nhi', `(f64x2.add ${get('nhi')} (f64x2.mul ${get('bhi')} ${get('bhi')}))`),
    );
  } else {
    body.push(
      set('alo', `(f64x2.sub ${get('alo')} ${get('blo')})`),
      set('ahi', `(f64x2.sub ${get('ahi')} ${get('bhi')})`),
      set('lo', `(f64x2.add ${get('lo')} (f64x2.mul ${get('alo')} ${get('alo')}))`),
      set('hi', `(f64x2.add ${get('hi')} (f64x2.mul ${get('ahi')} ${get('ahi')}))`),
    );
  }
  body.push(
    set('qi', `(i32.add ${get('qi')} ${i32(16)})`),
    set('x', `(i32.add ${get('x')} ${i32(16)})`),
    `(br_if $dims (i32.lt_u ${get('x')} ${get('xEnd')})))`,
  );
  if (dot) {
    body.push(
      `(f64.store ${get('out')} ${f64PairsSum('lo', 'hi')})`,
      `(f64.store offset=8 ${get('out')} ${f64PairsSum('nlo', 'nhi')})`,
      set('out', `(i32.add ${get('out')} ${i32(16)})`),
    );
  } else {
    body.push(`(f64.store ${get('out')} ${f64PairsSum('lo', 'hi')})`, set('out', `(i32.add ${get('out')} ${i32(8)})`));
  }
  body.push(`(br_if $vectors (i32.lt_u ${get('x')} ${get('end')})))`, ')');
  const locals = ['(local $stride i32) (local $end i32) (local $xEnd i32) (local $qi i32)', '(local $a v128) (local $b v128) (local $alo v128) (local $ahi v128) (local $blo v128) (local $bhi v128) (local $lo v128) (local $hi v128)'];
  if (dot) locals.push('(local $nlo v128) (local $nhi v128)');
  const signature = `(func $${name} (export "${name}") (param $q i32) (param $x i32) (param $n i32) (param $dim i32) (param $out i32)`;
  return [signature, ...locals, ...body, ')'].join('\n');
}

/**
 * The builder of a query's fast-scan table for codes of `bits` bits (KERNELS.md, "The table
 * kernel"): writeTable() of src/scan/fast-scan-lut.ts pass for pass in f64, so the bytes and the
 * two numbers it leaves at `out` (delta, Σ min_g) are bit for bit the reference's. Each pass
 * computes a group's halves again from the query; the 16 entries of a group are unrolled.
 *
 * Two groups at a time, one in each f64x2 lane: every step is the scalar one lane by lane (IEEE
 * operations round each lane as f64 does; min, max and the saturating conversion are defined alike),
 * so a lane computes what the reference computes for its group. What crosses groups keeps the
 * reference's order: the widest span is a maximum (the same whichever order), Σ min_g is added group
 * by group, lane 0 then lane 1. An odd last group takes the scalar steps.
 */
function fastScanTableKernel(bits: RqBits): string {
  const name = fastScanTableExportName(bits);
  const perNibble = 4 / bits;
  const f64 = (x: number): string => `(f64.const ${x})`;
  const q = (k: number): string => `(f64.promote_f32 (f32.load offset=${4 * k} ${get('qp')}))`;
  // f32 lanes `a` of the first load and `b` of the second (or of the same) as an f64x2.
  const pick = (first: string, second: string, a: number, b: number): string => {
    const bytes = (lane: number, base: number) => [0, 1, 2, 3].map((i) => base + 4 * lane + i);
    return `(f64x2.promote_low_f32x4 (i8x16.shuffle ${[...bytes(a, 0), ...bytes(b, 16), ...bytes(0, 0), ...bytes(0, 0)].join(' ')} ${first} ${second}))`;
  };
  /**
   * One group in f64 locals (lower-case names) or two in f64x2 locals (the same names upper-case):
   * the arithmetic below is written once for both; what differs is here. `loads` sets a to d to the
   * group's query coordinates (the first perNibble of them); an entry is rounded to an i32 local
   * (`e`) and stored at `t` + n (the second group's 16 bytes further).
   */
  interface Form {
    readonly lanes: 1 | 2;
    op(name: string): string;
    c(x: number): string;
    v(local: string): string;
    /** Lane `i` of the local `local` as an f64. */
    lane(local: string, i: number): string;
    loads: string[];
    round(x: string): string;
    store(at: string, n: number, local: string): string[];
  }
  const one: Form = {
    lanes: 1,
    op: (o) => `f64.${o}`,
    c: f64,
    v: (l) => l,
    lane: (l) => get(l),
    loads: ['a', 'b', 'c', 'd'].slice(0, perNibble).map((l, k) => set(l, q(k))),
    // roundEntry(): (x + ½) truncated, at most 255 (x ≥ 0 and at most a little over 255 for a finite
    // query; the saturating conversion never traps, whatever the query).
    round: (x) => `(select ${i32(255)} (local.tee $entry (i32.trunc_sat_f64_s (f64.add ${x} ${f64(0.5)}))) (i32.gt_s ${get('entry')} ${i32(255)}))`,
    store: (at, n, l) => [`(i32.store8 offset=${n} ${get(at)} ${get(l)})`],
  };
  // The two groups' coordinates are perNibble apart: g's in lane 0, g + 1's in lane 1.
  const loads2 =
    perNibble === 1
      ? [set('A', `(f64x2.promote_low_f32x4 (v128.load64_zero ${get('qp')}))`)]
      : perNibble === 2
        ? [set('V', `(v128.load ${get('qp')})`), set('A', pick(get('V'), get('V'), 0, 2)), set('B', pick(get('V'), get('V'), 1, 3))]
        : [set('V', `(v128.load ${get('qp')})`), set('W', `(v128.load offset=16 ${get('qp')})`), ...['A', 'B', 'C', 'D'].map((l, i) => set(l, pick(get('V'), get('W'), i, i)))];
  const two: Form = {
    lanes: 2,
    op: (o) => `f64x2.${o}`,
    c: (x) => `(v128.const f64x2 ${x} ${x})`,
    v: (l) => l.toUpperCase(),
    lane: (l, i) => `(f64x2.extract_lane ${i} ${get(l.toUpperCase())})`,
    loads: loads2,
    // Both lanes' entries as i32 lanes 0 and 1 (2 and 3 zero): their low bytes are bytes 0 and 4.
    round: (x) => `(i32x4.min_s (i32x4.trunc_sat_f64x2_s_zero (f64x2.add ${x} (v128.const f64x2 0.5 0.5))) (v128.const i32x4 255 255 255 255))`,
    store: (at, n, l) => [`(v128.store8_lane offset=${n} 0 ${get(at)} ${get(l.toUpperCase())})`, `(v128.store8_lane offset=${n + 16} 4 ${get(at)} ${get(l.toUpperCase())})`],
  };
  // The halves of a nibble: low[j] for n & 3, high[j] for n >> 2 (halves() of writeTable).
  const halves = (f: Form): string[] => {
    const at = (l: string) => get(f.v(l));
    const out = [...f.loads];
    if (bits === 4) {
      for (let j = 0; j < 4; j++) out.push(set(f.v(`l${j}`), `(${f.op('mul')} ${f.c(j - 7.5)} ${at('a')})`), set(f.v(`h${j}`), `(${f.op('mul')} ${f.c(4 * j)} ${at('a')})`));
    } else if (bits === 2) {
      for (let j = 0; j < 4; j++) out.push(set(f.v(`l${j}`), `(${f.op('mul')} ${f.c(j - 1.5)} ${at('a')})`), set(f.v(`h${j}`), `(${f.op('mul')} ${f.c(j - 1.5)} ${at('b')})`));
    } else {
      for (const l of ['a', 'b', 'c', 'd']) out.push(set(f.v(l), `(${f.op('div')} ${at(l)} ${f.c(2)})`));
      const sign = (on: boolean, l: string): string => (on ? at(l) : `(${f.op('neg')} ${at(l)})`);
      for (let j = 0; j < 4; j++) {
        out.push(set(f.v(`l${j}`), `(${f.op('add')} ${sign((j & 1) !== 0, 'a')} ${sign((j & 2) !== 0, 'b')})`));
        out.push(set(f.v(`h${j}`), `(${f.op('add')} ${sign((j & 1) !== 0, 'c')} ${sign((j & 2) !== 0, 'd')})`));
      }
    }
    return out;
  };
  // Math.min and Math.max of four, as f64.min and f64.max give them (−0 below +0 in both).
  const four = (f: Form, op: string, l: string): string =>
    `(${f.op(op)} (${f.op(op)} (${f.op(op)} ${get(f.v(`${l}0`))} ${get(f.v(`${l}1`))}) ${get(f.v(`${l}2`))}) ${get(f.v(`${l}3`))})`;
  const least = (f: Form): string => set(f.v('lo'), `(${f.op('add')} ${four(f, 'min', 'l')} ${four(f, 'min', 'h')})`);
  const span = (f: Form): string => `(${f.op('sub')} (${f.op('add')} ${four(f, 'max', 'l')} ${four(f, 'max', 'h')}) (${f.op('add')} ${four(f, 'min', 'l')} ${four(f, 'min', 'h')}))`;
  /** The steps of each pair of groups (`two`), then of an odd last group (`one`). */
  const loop = (label: string, body: (f: Form) => string[]): string[] => [
    set('g', i32(0)),
    set('qp', get('q')),
    `(block $${label}Done`,
    `(loop $${label}`,
    `(br_if $${label}Done (i32.gt_u (i32.add ${get('g')} ${i32(2)}) ${get('G')}))`,
    ...halves(two),
    ...body(two),
    set('qp', `(i32.add ${get('qp')} ${i32(8 * perNibble)})`),
    set('g', `(i32.add ${get('g')} ${i32(2)})`),
    `(br $${label})))`,
    `(if (i32.lt_u ${get('g')} ${get('G')}) (then`,
    ...halves(one),
    ...body(one),
    '))',
  ];
  const entries = (f: Form): string[] => {
    const at = (l: string) => get(f.v(l));
    const out: string[] = [];
    for (let n = 0; n < 16; n++) {
      out.push(
        set(f.v('x'), `(${f.op('add')} ${at(`l${n & 3}`)} ${at(`h${n >> 2}`)})`),
        set(f.v('e'), f.round(`(${f.op('mul')} (${f.op('sub')} ${at('x')} ${at('lo')}) ${at('inv')})`)),
        ...f.store('t', n, 'e'),
      );
    }
    return out;
  };
  const place = set('t', `(i32.add ${get('table')} (i32.shl ${get('g')} ${i32(4)}))`);
  // Σ min_g group by group: lane 0, then lane 1.
  const addBias = (f: Form): string => set('bias', f.lanes === 1 ? `(f64.add ${get('bias')} ${f.lane('lo', 0)})` : `(f64.add (f64.add ${get('bias')} ${f.lane('lo', 0)}) ${f.lane('lo', 1)})`);
  const up = (x: string): string => {
    const f = `(f32.demote_f64 ${x})`;
    return `(if (result f64) (f64.ge (f64.promote_f32 ${f}) ${x}) (then (f64.promote_f32 ${f})) (else (f64.promote_f32 (f32.reinterpret_i32 (i32.add (i32.reinterpret_f32 ${f}) ${i32(1)})))))`;
  };
  const positive = (x: string, then: string): string => `(if (result f64) (f64.gt ${get(x)} ${f64(0)}) (then ${then}) (else ${f64(0)}))`;
  const locals = ['g', 't', 'qp', 'entry', 'e'].map((l) => `(local $${l} i32)`).join(' ');
  // The f64 locals of one group; the same names upper-case are the v128 locals of two (and V, W their loads).
  const grouped = ['a', 'b', 'c', 'd', 'l0', 'l1', 'l2', 'l3', 'h0', 'h1', 'h2', 'h3', 'x', 'lo', 'widest', 'inv'];
  const floats = [...grouped, 'delta', 'bias'].map((l) => `(local $${l} f64)`).join(' ');
  const vectors = [...grouped.map((l) => l.toUpperCase()), 'E', 'V', 'W'].map((l) => `(local $${l} v128)`).join(' ');
  return [
    `(func $${name} (export "${name}") (param $q i32) (param $G i32) (param $table i32) (param $out i32)`,
    locals,
    floats,
    vectors,
    ...loop('spans', (f) => [set(f.v('widest'), `(${f.op('max')} ${get(f.v('widest'))} ${span(f)})`)]),
    set('widest', `(f64.max ${get('widest')} (f64.max ${two.lane('widest', 0)} ${two.lane('widest', 1)}))`),
    set('delta', positive('widest', up(`(f64.div ${get('widest')} ${f64(255)})`))),
    set('inv', positive('delta', `(f64.div ${f64(1)} ${get('delta')})`)),
    set('INV', `(f64x2.splat ${get('inv')})`),
    ...loop('entries', (f) => [least(f), addBias(f), place, ...entries(f)]),
    `(f64.store ${get('out')} ${get('delta')})`,
    `(f64.store offset=8 ${get('out')} ${get('bias')})`,
    ')',
  ].join('\n');
}

/**
 * select_at_least(scores, n, floor, out) → count: the positions i < n whose float32 score is at
 * least `floor`, in increasing order, as i32 from `out` (room for n). Four scores are compared at
 * once; a step with no score at the floor (nearly all of them once a top-k's floor has risen)
 * costs a load, a compare and a branch. A step with some writes all four positions, each at the
 * next free place, and advances by the lane's bit: no branch per lane, and no write beyond the
 * place of the last position written so far (so never past out + 4n). NaN is never selected.
 */
function selectKernel(): string {
  const lanes = [0, 1, 2, 3].flatMap((lane) => [
    `(i32.store ${get('o')} (i32.add ${get('i')} ${i32(lane)}))`,
    set('o', `(i32.add ${get('o')} (i32.shl (i32.and (i32.shr_u ${get('bits')} ${i32(lane)}) ${i32(1)}) ${i32(2)}))`),
  ]);
  return [
    `(func $${SELECT_AT_LEAST} (export "${SELECT_AT_LEAST}") (param $s i32) (param $n i32) (param $floor f32) (param $out i32) (result i32)`,
    '(local $i i32) (local $quads i32) (local $o i32) (local $bits i32) (local $f v128)',
    set('f', `(f32x4.splat ${get('floor')})`),
    set('o', get('out')),
    set('quads', `(i32.and ${get('n')} ${i32(-4)})`),
    '(block $quadsDone',
    '(loop $quad',
    `(br_if $quadsDone (i32.ge_u ${get('i')} ${get('quads')}))`,
    set('bits', `(i32x4.bitmask (f32x4.ge (v128.load (i32.add ${get('s')} (i32.shl ${get('i')} ${i32(2)}))) ${get('f')}))`),
    `(if ${get('bits')} (then ${lanes.join(' ')}))`,
    set('i', `(i32.add ${get('i')} ${i32(4)})`),
    '(br $quad)))',
    '(block $tailDone',
    '(loop $tail',
    `(br_if $tailDone (i32.ge_u ${get('i')} ${get('n')}))`,
    `(if (f32.ge (f32.load (i32.add ${get('s')} (i32.shl ${get('i')} ${i32(2)}))) ${get('floor')}) (then (i32.store ${get('o')} ${get('i')}) ${set('o', `(i32.add ${get('o')} ${i32(4)})`)}))`,
    set('i', `(i32.add ${get('i')} ${i32(1)})`),
    '(br $tail)))',
    `(i32.shr_u (i32.sub ${get('o')} ${get('out')}) ${i32(2)})`,
    ')',
  ].join('\n');
}

/**
 * route_scores(k, n, mode, offset, qn, coef, out, bounds): the router's score of each of n pages as
 * float64 at out + 8j, from the kernel's float32 score k_j at k + 4j (KERNELS.md, "Router
 * selection"): k_j itself (ROUTE_PLAIN), (offset + k_j) · coef_j (ROUTE_SPHERE, coef_j = 1/‖c‖) or
 * k_j + qn · coef_j (ROUTE_WIDEN, coef_j the page's width), coef_j float64 at coef + 8j. The same
 * float64 operations in the same order as router.ts's queryScore(), so the same numbers bit for bit.
 * Then the least and the greatest of them at bounds and bounds + 8, compared as JavaScript's `<` and
 * `>` do, both NaN once any score is.
 */
function routeScoresKernel(): string {
  const score = `(f64.promote_f32 (f32.load ${get('k')}))`;
  return [
    `(func $${ROUTE_SCORES} (export "${ROUTE_SCORES}") (param $k i32) (param $n i32) (param $mode i32) (param $offset f64) (param $qn f64) (param $coef i32) (param $out i32) (param $bounds i32)`,
    '(local $end i32) (local $s f64) (local $least f64) (local $most f64)',
    set('least', '(f64.const inf)'),
    set('most', '(f64.const -inf)'),
    set('end', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(3)}))`),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('out')} ${get('end')}))`,
    '(loop $page',
    `(if (i32.eq ${get('mode')} ${i32(ROUTE_SPHERE)})`,
    `(then ${set('s', `(f64.mul (f64.add ${get('offset')} ${score}) (f64.load ${get('coef')}))`)})`,
    `(else (if (i32.eq ${get('mode')} ${i32(ROUTE_WIDEN)})`,
    `(then ${set('s', `(f64.add ${score} (f64.mul ${get('qn')} (f64.load ${get('coef')})))`)})`,
    `(else ${set('s', score)}))))`,
    `(f64.store ${get('out')} ${get('s')})`,
    `(if (f64.ne ${get('s')} ${get('s')}) (then ${set('least', '(f64.const nan)')} ${set('most', '(f64.const nan)')}))`,
    `(if (f64.lt ${get('s')} ${get('least')}) (then ${set('least', get('s'))}))`,
    `(if (f64.gt ${get('s')} ${get('most')}) (then ${set('most', get('s'))}))`,
    set('k', `(i32.add ${get('k')} ${i32(4)})`),
    set('coef', `(i32.add ${get('coef')} ${i32(8)})`),
    set('out', `(i32.add ${get('out')} ${i32(8)})`),
    `(br_if $page (i32.lt_u ${get('out')} ${get('end')})))`,
    ')',
    `(f64.store ${get('bounds')} ${get('least')})`,
    `(f64.store offset=8 ${get('bounds')} ${get('most')})`,
    ')',
  ].join('\n');
}

/**
 * bucket_select(s, n, indices, need, f, base, scale, bucketOf, counts, taken, boundary, out): one
 * round of BestIndices' selection over n float64 scores (KERNELS.md, "Router selection"): with
 * `indices` 0, scores s[0..n); otherwise the scores s[i] of the n int32 positions i at `indices`
 * (the boundary bucket of the round before). Each goes to bucket min(SELECT_BUCKETS − 1,
 * trunc((score · f − base) · scale)) (a byte at bucketOf + j; the counts, SELECT_BUCKETS int32 at
 * `counts`, zeroed first); the boundary bucket is the highest whose count, with those above it,
 * reaches `need`; positions in higher buckets (or in it, when it completes `need` exactly) are
 * written in the order met as int32 from `taken`, the boundary bucket's others from `boundary`
 * (which may be `indices` itself: each is written at or before the place it was read from). Writes
 * at `out` the int32 counts taken and kept, then the least and greatest score kept (float64, at out
 * + 8 and out + 16; compared as JavaScript's `<` and `>`). Every score must be finite, need in 1..n,
 * and the bucketing positive and finite: the caller's.
 */
function bucketSelectKernel(): string {
  const position = `(if (result i32) ${get('indices')} (then (i32.load (i32.add ${get('indices')} (i32.shl ${get('j')} ${i32(2)})))) (else ${get('j')}))`;
  const score = `(f64.load (i32.add ${get('s')} (i32.shl ${get('i')} ${i32(3)})))`;
  return [
    `(func $${BUCKET_SELECT} (export "${BUCKET_SELECT}") (param $s i32) (param $n i32) (param $indices i32) (param $need i32) (param $f f64) (param $base f64) (param $scale f64) (param $bucketOf i32) (param $counts i32) (param $taken i32) (param $boundary i32) (param $out i32)`,
    '(local $j i32) (local $i i32) (local $b i32) (local $cell i32) (local $above i32) (local $from i32) (local $whole i32) (local $c i32) (local $kept i32) (local $x f64) (local $least f64) (local $most f64)',
    // The counts zeroed, 16 bytes a step (SELECT_BUCKETS is a multiple of 4).
    '(block $zeroed',
    '(loop $zero',
    `(br_if $zeroed (i32.ge_u ${get('j')} ${i32(SELECT_BUCKETS * 4)}))`,
    `(v128.store (i32.add ${get('counts')} ${get('j')}) ${ZERO})`,
    set('j', `(i32.add ${get('j')} ${i32(16)})`),
    '(br $zero)))',
    set('j', i32(0)),
    '(block $counted',
    `(br_if $counted (i32.ge_u ${get('j')} ${get('n')}))`,
    '(loop $count',
    set('i', position),
    set('b', `(i32.trunc_sat_f64_s (f64.mul (f64.sub (f64.mul ${score} ${get('f')}) ${get('base')}) ${get('scale')}))`),
    `(if (i32.gt_s ${get('b')} ${i32(SELECT_BUCKETS - 1)}) (then ${set('b', i32(SELECT_BUCKETS - 1))}))`,
    `(i32.store8 (i32.add ${get('bucketOf')} ${get('j')}) ${get('b')})`,
    set('cell', `(i32.add ${get('counts')} (i32.shl ${get('b')} ${i32(2)}))`),
    `(i32.store ${get('cell')} (i32.add (i32.load ${get('cell')}) ${i32(1)}))`,
    set('j', `(i32.add ${get('j')} ${i32(1)})`),
    `(br_if $count (i32.lt_u ${get('j')} ${get('n')})))`,
    ')',
    // From the top bucket down while those above and this one fall short of `need`.
    set('from', i32(SELECT_BUCKETS - 1)),
    '(block $found',
    '(loop $down',
    set('cell', `(i32.load (i32.add ${get('counts')} (i32.shl ${get('from')} ${i32(2)})))`),
    `(br_if $found (i32.ge_s (i32.add ${get('above')} ${get('cell')}) ${get('need')}))`,
    set('above', `(i32.add ${get('above')} ${get('cell')})`),
    set('from', `(i32.sub ${get('from')} ${i32(1)})`),
    '(br $down)))',
    set('whole', `(i32.eq (i32.add ${get('above')} ${get('cell')}) ${get('need')})`),
    set('least', '(f64.const inf)'),
    set('most', '(f64.const -inf)'),
    set('j', i32(0)),
    '(block $picked',
    `(br_if $picked (i32.ge_u ${get('j')} ${get('n')}))`,
    '(loop $pick',
    set('b', `(i32.load8_u (i32.add ${get('bucketOf')} ${get('j')}))`),
    `(if (i32.ge_s ${get('b')} ${get('from')})`,
    `(then ${set('i', position)} (if (i32.or (i32.gt_s ${get('b')} ${get('from')}) ${get('whole')})`,
    `(then (i32.store (i32.add ${get('taken')} (i32.shl ${get('c')} ${i32(2)})) ${get('i')}) ${set('c', `(i32.add ${get('c')} ${i32(1)})`)})`,
    `(else ${set('x', score)}`,
    `(if (f64.lt ${get('x')} ${get('least')}) (then ${set('least', get('x'))}))`,
    `(if (f64.gt ${get('x')} ${get('most')}) (then ${set('most', get('x'))}))`,
    `(i32.store (i32.add ${get('boundary')} (i32.shl ${get('kept')} ${i32(2)})) ${get('i')}) ${set('kept', `(i32.add ${get('kept')} ${i32(1)})`)}))))`,
    set('j', `(i32.add ${get('j')} ${i32(1)})`),
    `(br_if $pick (i32.lt_u ${get('j')} ${get('n')})))`,
    ')',
    `(i32.store ${get('out')} ${get('c')})`,
    `(i32.store offset=4 ${get('out')} ${get('kept')})`,
    `(f64.store offset=8 ${get('out')} ${get('least')})`,
    `(f64.store offset=16 ${get('out')} ${get('most')})`,
    ')',
  ].join('\n');
}

/**
 * int8_norms(codes, n, dim, out): the norm of each of n int8 codes back to back from `codes` (`dim`
 * bytes each, a multiple of DIM_STEP, zeros past the code), as float32 at out: f32.sqrt of the
 * exact integer Σc² converted to float32 once, which is int8CodeNorm() (contract.ts) and what
 * scanI8_cosine_normed reads (KERNELS.md, "Int8 rows"). Sixteen bytes a step, sign-extended to i16
 * and squared pairwise into i32 by i32x4.dot_i16x8_s, exactly (MAX_I8_DIM keeps Σc² in i32).
 */
function int8NormsKernel(): string {
  return [
    `(func $${INT8_NORMS} (export "${INT8_NORMS}") (param $codes i32) (param $n i32) (param $dim i32) (param $out i32)`,
    '(local $outEnd i32) (local $cEnd i32) (local $acc v128) (local $v v128) (local $lo v128) (local $hi v128)',
    set('outEnd', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(2)}))`),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('out')} ${get('outEnd')}))`,
    '(loop $codes',
    set('acc', ZERO),
    set('cEnd', `(i32.add ${get('codes')} ${get('dim')})`),
    '(block $steps_done',
    `(br_if $steps_done (i32.ge_u ${get('codes')} ${get('cEnd')}))`,
    '(loop $steps',
    set('v', `(v128.load ${get('codes')})`),
    set('lo', `(i16x8.extend_low_i8x16_s ${get('v')})`),
    set('hi', `(i16x8.extend_high_i8x16_s ${get('v')})`),
    set('acc', `(i32x4.add ${get('acc')} (i32x4.add (i32x4.dot_i16x8_s ${get('lo')} ${get('lo')}) (i32x4.dot_i16x8_s ${get('hi')} ${get('hi')})))`),
    set('codes', `(i32.add ${get('codes')} ${i32(16)})`),
    `(br_if $steps (i32.lt_u ${get('codes')} ${get('cEnd')})))`,
    ')',
    `(f32.store ${get('out')} (f32.sqrt (f32.convert_i32_s ${i32HorizontalSum('acc')})))`,
    set('out', `(i32.add ${get('out')} ${i32(4)})`),
    `(br_if $codes (i32.lt_u ${get('out')} ${get('outEnd')})))`,
    ')',
    ')',
  ].join('\n');
}

/**
 * int8_decode(codes, stride, scales, n, dim, out): n int8 codes `stride` bytes apart from `codes`,
 * decoded as the int8 codec decodes them: value i of code r is float32(c_ri · s_r), s_r the float32
 * at scales + 4r, one rounding of the exact product, as JavaScript's `scale * c` stored to a
 * Float32Array gives; `dim` floats a row, rows back to back from `out` (KERNELS.md, "Int8 rows").
 * Four values a step while four remain in the row, then one at a time: nothing is written past a
 * row, so rows of any `dim` lie back to back.
 */
function int8DecodeKernel(): string {
  return [
    `(func $${INT8_DECODE} (export "${INT8_DECODE}") (param $codes i32) (param $stride i32) (param $scales i32) (param $n i32) (param $dim i32) (param $out i32)`,
    '(local $r i32) (local $i i32) (local $quads i32) (local $c i32) (local $s f32) (local $S v128)',
    set('quads', `(i32.and ${get('dim')} ${i32(-4)})`),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('r')} ${get('n')}))`,
    '(loop $rows',
    set('s', `(f32.load (i32.add ${get('scales')} (i32.shl ${get('r')} ${i32(2)})))`),
    set('S', `(f32x4.splat ${get('s')})`),
    set('c', `(i32.add ${get('codes')} (i32.mul ${get('r')} ${get('stride')}))`),
    set('i', i32(0)),
    '(block $quadsDone',
    `(br_if $quadsDone (i32.ge_u ${get('i')} ${get('quads')}))`,
    '(loop $quad',
    `(v128.store ${get('out')} (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (v128.load32_zero (i32.add ${get('c')} ${get('i')}))))) ${get('S')}))`,
    set('out', `(i32.add ${get('out')} ${i32(16)})`),
    set('i', `(i32.add ${get('i')} ${i32(4)})`),
    `(br_if $quad (i32.lt_u ${get('i')} ${get('quads')})))`,
    ')',
    '(block $tailDone',
    `(br_if $tailDone (i32.ge_u ${get('i')} ${get('dim')}))`,
    '(loop $tail',
    `(f32.store ${get('out')} (f32.mul (f32.convert_i32_s (i32.load8_s (i32.add ${get('c')} ${get('i')}))) ${get('s')}))`,
    set('out', `(i32.add ${get('out')} ${i32(4)})`),
    set('i', `(i32.add ${get('i')} ${i32(1)})`),
    `(br_if $tail (i32.lt_u ${get('i')} ${get('dim')})))`,
    ')',
    set('r', `(i32.add ${get('r')} ${i32(1)})`),
    `(br_if $rows (i32.lt_u ${get('r')} ${get('n')})))`,
    ')',
    ')',
  ].join('\n');
}

/**
 * row_max_abs(v, rows, dim, out): for each of `rows` rows of `dim` float32 from `v`, back to back,
 * the largest |x| of the row as float32 at out + 4r (KERNELS.md, "Page sums"). A NaN is passed over
 * (pmax keeps the running maximum unless it is less than the value), as JavaScript's `a > m` does.
 */
function rowMaxAbsKernel(): string {
  return [
    `(func $${ROW_MAX_ABS} (export "${ROW_MAX_ABS}") (param $v i32) (param $rows i32) (param $dim i32) (param $out i32)`,
    '(local $r i32) (local $end i32) (local $quads i32) (local $m v128) (local $s f32) (local $x f32) (local $lane f32)',
    set('quads', `(i32.shl (i32.shr_u ${get('dim')} ${i32(2)}) ${i32(4)})`),
    '(block $rowsDone',
    '(loop $row',
    `(br_if $rowsDone (i32.ge_u ${get('r')} ${get('rows')}))`,
    set('m', ZERO),
    set('end', `(i32.add ${get('v')} ${get('quads')})`),
    '(block $quadsDone',
    '(loop $quad',
    `(br_if $quadsDone (i32.ge_u ${get('v')} ${get('end')}))`,
    set('m', `(f32x4.pmax ${get('m')} (f32x4.abs (v128.load ${get('v')})))`),
    set('v', `(i32.add ${get('v')} ${i32(16)})`),
    '(br $quad)))',
    set('s', '(f32.const 0)'),
    ...[0, 1, 2, 3].flatMap((lane) => [set('lane', `(f32x4.extract_lane ${lane} ${get('m')})`), `(if (f32.lt ${get('s')} ${get('lane')}) (then ${set('s', get('lane'))}))`]),
    set('end', `(i32.add ${get('end')} (i32.shl (i32.and ${get('dim')} ${i32(3)}) ${i32(2)}))`),
    '(block $tailDone',
    '(loop $tail',
    `(br_if $tailDone (i32.ge_u ${get('v')} ${get('end')}))`,
    set('x', `(f32.abs (f32.load ${get('v')}))`),
    `(if (f32.lt ${get('s')} ${get('x')}) (then ${set('s', get('x'))}))`,
    set('v', `(i32.add ${get('v')} ${i32(4)})`),
    '(br $tail)))',
    `(f32.store (i32.add ${get('out')} (i32.shl ${get('r')} ${i32(2)})) ${get('s')})`,
    set('r', `(i32.add ${get('r')} ${i32(1)})`),
    '(br $row)))',
    ')',
  ].join('\n');
}

/**
 * sum_multiples(v, rows, dim, up, sums): adds to each of the `dim` int32 at `sums` (wrapping) the
 * multiple floor(x · up + 0.5) of the value x in that place of each of `rows` rows of float32 from
 * `v`, computed in float64 as JavaScript's `Math.floor(x * up + 0.5) | 0` is (KERNELS.md, "Page
 * sums"): ±∞ and NaN count 0 (ToInt32), where a saturating truncation would give the int32 bounds.
 * Every finite x · up must be below 2^31 in magnitude (a page's grid keeps them below 2^22): past
 * that ToInt32 wraps and the truncation saturates.
 */
function sumMultiplesKernel(): string {
  const half = '(v128.const f64x2 0.5 0.5)';
  const inf = '(v128.const f64x2 inf inf)';
  // One float64 pair into $y: x · up + 0.5, floored, its ∞ lanes zeroed (their bits all cleared).
  const multiples = (pair: string): string => [
    set('y', `(f64x2.floor (f64x2.add (f64x2.mul ${pair} ${get('u')}) ${half}))`),
    set('y', `(v128.andnot ${get('y')} (f64x2.eq (f64x2.abs ${get('y')}) ${inf}))`),
  ].join(' ');
  return [
    `(func $${SUM_MULTIPLES} (export "${SUM_MULTIPLES}") (param $v i32) (param $rows i32) (param $dim i32) (param $up f64) (param $sums i32)`,
    '(local $r i32) (local $d i32) (local $quads i32) (local $u v128) (local $x v128) (local $y v128) (local $lo v128) (local $t f64) (local $at i32)',
    set('u', `(f64x2.splat ${get('up')})`),
    set('quads', `(i32.and ${get('dim')} ${i32(-4)})`),
    '(block $rowsDone',
    '(loop $row',
    `(br_if $rowsDone (i32.ge_u ${get('r')} ${get('rows')}))`,
    set('d', i32(0)),
    '(block $quadsDone',
    '(loop $quad',
    `(br_if $quadsDone (i32.ge_u ${get('d')} ${get('quads')}))`,
    set('x', `(v128.load ${get('v')})`),
    multiples(`(f64x2.promote_low_f32x4 ${get('x')})`),
    set('lo', `(i32x4.trunc_sat_f64x2_s_zero ${get('y')})`),
    multiples(promoteHigh(get('x'))),
    set('at', `(i32.add ${get('sums')} (i32.shl ${get('d')} ${i32(2)}))`),
    `(v128.store ${get('at')} (i32x4.add (v128.load ${get('at')}) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${get('lo')} (i32x4.trunc_sat_f64x2_s_zero ${get('y')}))))`,
    set('v', `(i32.add ${get('v')} ${i32(16)})`),
    set('d', `(i32.add ${get('d')} ${i32(4)})`),
    '(br $quad)))',
    '(block $tailDone',
    '(loop $tail',
    `(br_if $tailDone (i32.ge_u ${get('d')} ${get('dim')}))`,
    set('t', `(f64.floor (f64.add (f64.mul (f64.promote_f32 (f32.load ${get('v')})) ${get('up')}) (f64.const 0.5)))`),
    `(if (f64.eq (f64.abs ${get('t')}) (f64.const inf)) (then ${set('t', '(f64.const 0)')}))`,
    set('at', `(i32.add ${get('sums')} (i32.shl ${get('d')} ${i32(2)}))`),
    `(i32.store ${get('at')} (i32.add (i32.load ${get('at')}) (i32.trunc_sat_f64_s ${get('t')})))`,
    set('v', `(i32.add ${get('v')} ${i32(4)})`),
    set('d', `(i32.add ${get('d')} ${i32(1)})`),
    '(br $tail)))',
    set('r', `(i32.add ${get('r')} ${i32(1)})`),
    '(br $row)))',
    ')',
  ].join('\n');
}

/**
 * The sign sketch of a vector (KERNELS.md, "Sign sketches"): per word, eight steps of four float32
 * compared as int32 with 0 (a float is > 0 exactly when its bits as an int32 are: -0 is the least
 * int32, NaN never comes), their four-bit masks shifted into place.
 */
function signSketchKernel(): string {
  const zero = '(v128.const i32x4 0 0 0 0)';
  const nibble = (g: number): string => {
    const mask = `(i32x4.bitmask (i32x4.gt_s (v128.load offset=${16 * g} ${get('v')}) ${zero}))`;
    return g === 0 ? mask : `(i32.shl ${mask} ${i32(4 * g)})`;
  };
  let word = nibble(0);
  for (let g = 1; g < 8; g++) word = `(i32.or ${word} ${nibble(g)})`;
  return [
    `(func $${SIGN_SKETCH} (export "${SIGN_SKETCH}") (param $v i32) (param $words i32) (param $out i32)`,
    '(local $end i32)',
    set('end', `(i32.add ${get('out')} (i32.shl ${get('words')} ${i32(2)}))`),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('out')} ${get('end')}))`,
    '(loop $word',
    `(i32.store ${get('out')} ${word})`,
    set('v', `(i32.add ${get('v')} ${i32(128)})`),
    set('out', `(i32.add ${get('out')} ${i32(4)})`),
    `(br_if $word (i32.lt_u ${get('out')} ${get('end')}))))`,
    ')',
  ].join('\n');
}

/**
 * A loop over 16-byte steps while the local `steps[0]` is below the local `end` (none when it starts
 * there): `body`, then every local of `steps` advanced by 16.
 */
function vectorLoop(label: string, end: string, body: readonly string[], steps: readonly string[]): string[] {
  const first = steps[0]!;
  return [
    `(block $${label}Done`,
    `(br_if $${label}Done (i32.ge_u ${get(first)} ${get(end)}))`,
    `(loop $${label}`,
    ...body,
    ...steps.map((step) => set(step, `(i32.add ${get(step)} ${i32(16)})`)),
    `(br_if $${label} (i32.lt_u ${get(first)} ${get(end)}))))`,
  ];
}

/** Four butterflies: the vectors at the locals `at` and `at + apart` become their sum and their difference (locals $a, $b). */
function butterfly(at: string, apart: string): string[] {
  const far = `(i32.add ${get(at)} ${get(apart)})`;
  return [
    set('a', `(v128.load ${get(at)})`),
    set('b', `(v128.load ${far})`),
    `(v128.store ${get(at)} (f32x4.add ${get('a')} ${get('b')}))`,
    `(v128.store ${far} (f32x4.sub ${get('a')} ${get('b')}))`,
  ];
}

/**
 * The unscaled Walsh–Hadamard transform of `n` float32 in place (KERNELS.md, "Hadamard steps"), `n` a
 * power of two of at least 4, then each value times `scale`: the butterflies of spans 1 and 2 inside
 * each vector of four (a shuffle, a multiply by ±1 and an add), then those of spans 4 to n/2 across
 * vectors, each `a + b` and `a − b` in float32 (so a value's steps are those referenceHadamard takes).
 */
function hadamardTransformKernel(): string {
  const lanes = (v: string, swap: string, signs: string) => `(f32x4.add (f32x4.mul ${v} (v128.const f32x4 ${signs})) (i8x16.shuffle ${swap} ${v} ${v}))`;
  return [
    `(func $${HADAMARD_TRANSFORM} (export "${HADAMARD_TRANSFORM}") (param $p i32) (param $n i32) (param $scale f32)`,
    '(local $end i32) (local $span i32) (local $i i32) (local $j i32) (local $stop i32) (local $a v128) (local $b v128) (local $v v128)',
    set('end', `(i32.add ${get('p')} (i32.shl ${get('n')} ${i32(2)}))`),
    set('i', get('p')),
    ...vectorLoop(
      'inLanes',
      'end',
      [
        set('v', `(v128.load ${get('i')})`),
        set('v', lanes(get('v'), '4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11', '1 -1 1 -1')),
        set('v', lanes(get('v'), '8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7', '1 1 -1 -1')),
        `(v128.store ${get('i')} ${get('v')})`,
      ],
      ['i'],
    ),
    // Spans in bytes: 16 (four floats) up to half the array's bytes.
    set('span', i32(16)),
    '(block $stagesDone',
    '(loop $stages',
    `(br_if $stagesDone (i32.ge_u ${get('span')} (i32.shl ${get('n')} ${i32(2)})))`,
    set('i', get('p')),
    '(loop $groups',
    set('j', get('i')),
    set('stop', `(i32.add ${get('i')} ${get('span')})`),
    ...vectorLoop(
      'pairs',
      'stop',
      butterfly('j', 'span'),
      ['j'],
    ),
    set('i', `(i32.add ${get('i')} (i32.shl ${get('span')} ${i32(1)}))`),
    `(br_if $groups (i32.lt_u ${get('i')} ${get('end')})))`,
    set('span', `(i32.shl ${get('span')} ${i32(1)})`),
    'br $stages))',
    '(block $scaled',
    `(br_if $scaled (f32.eq ${get('scale')} (f32.const 1)))`,
    set('v', `(f32x4.splat ${get('scale')})`),
    set('i', get('p')),
    ...vectorLoop('scale', 'end', [`(v128.store ${get('i')} (f32x4.mul (v128.load ${get('i')}) ${get('v')}))`], ['i']),
    ')',
    ')',
  ].join('\n');
}

/** `n` float32 in place times the `n` float32 (±1) at `signs`; `n` a multiple of 4. */
function multiplySignsKernel(): string {
  return [
    `(func $${MULTIPLY_SIGNS} (export "${MULTIPLY_SIGNS}") (param $p i32) (param $signs i32) (param $n i32)`,
    '(local $end i32)',
    set('end', `(i32.add ${get('p')} (i32.shl ${get('n')} ${i32(2)}))`),
    ...vectorLoop('values', 'end', [`(v128.store ${get('p')} (f32x4.mul (v128.load ${get('p')}) (v128.load ${get('signs')})))`], ['p', 'signs']),
    ')',
  ].join('\n');
}

/** The unscaled Givens step across halves: for i < half, (x_i, x_{i+half}) → (x_i + x_{i+half}, x_i − x_{i+half}); `half` a multiple of 4. */
function givensHalvesKernel(): string {
  return [
    `(func $${GIVENS_HALVES} (export "${GIVENS_HALVES}") (param $p i32) (param $half i32)`,
    '(local $end i32) (local $far i32) (local $a v128) (local $b v128)',
    set('far', `(i32.shl ${get('half')} ${i32(2)})`),
    set('end', `(i32.add ${get('p')} ${get('far')})`),
    ...vectorLoop(
      'pairs',
      'end',
      butterfly('p', 'far'),
      ['p'],
    ),
    ')',
  ].join('\n');
}

/**
 * A loop (`label`) over pairs of float64 while the local `steps[0]` is below `pairsEnd`, then one float64 more
 * while it is below `end` (the odd last one): `pair` with every local of `steps` advanced by 16,
 * then `last` (KERNELS.md, "Eigensolver steps").
 */
function pairsThenLast(label: string, pairsEnd: string, end: string, pair: readonly string[], last: readonly string[], steps: readonly string[]): string[] {
  return [...vectorLoop(label, pairsEnd, pair, steps), `(if (i32.lt_u ${get(steps[0]!)} ${get(end)}) (then ${last.join(' ')}))`];
}

/** Sets the locals `pairsEnd` and `end` for `m` float64 from the local `from`. */
function pairBounds(from: string, m: string): string[] {
  return [set('end', `(i32.add ${get(from)} (i32.shl ${get(m)} ${i32(3)}))`), set('pairsEnd', `(i32.add ${get(from)} (i32.shl (i32.and ${get(m)} ${i32(-2)}) ${i32(3)}))`)];
}

/** Σ row[k]·d[k] over k < m, returned, while e[k] += f·row[k]: the symmetric product of the Householder reduction. */
function eigenDotAxpyKernel(): string {
  return [
    `(func $${EIGEN_DOT_AXPY} (export "${EIGEN_DOT_AXPY}") (param $row i32) (param $d i32) (param $e i32) (param $m i32) (param $f f64) (result f64)`,
    '(local $end i32) (local $pairsEnd i32) (local $acc v128) (local $fv v128) (local $x v128) (local $sum f64) (local $last f64)',
    set('fv', `(f64x2.splat ${get('f')})`),
    ...pairBounds('row', 'm'),
    ...pairsThenLast(
      'pairs',
      'pairsEnd',
      'end',
      [
        set('x', `(v128.load ${get('row')})`),
        set('acc', `(f64x2.add ${get('acc')} (f64x2.mul ${get('x')} (v128.load ${get('d')})))`),
        `(v128.store ${get('e')} (f64x2.add (v128.load ${get('e')}) (f64x2.mul ${get('x')} ${get('fv')})))`,
      ],
      [
        set('last', `(f64.load ${get('row')})`),
        set('sum', `(f64.mul ${get('last')} (f64.load ${get('d')}))`),
        `(f64.store ${get('e')} (f64.add (f64.load ${get('e')}) (f64.mul ${get('last')} ${get('f')})))`,
      ],
      ['row', 'd', 'e'],
    ),
    `(f64.add (f64.add (f64x2.extract_lane 0 ${get('acc')}) (f64x2.extract_lane 1 ${get('acc')})) ${get('sum')})`,
    ')',
  ].join('\n');
}

/** row[k] −= f·e[k] + g·d[k] over k < m: the rank-two update of the Householder reduction. */
function eigenRank2Kernel(): string {
  const update = (load: string, store: string, mul: string, add: string, sub: string, f: string, g: string) =>
    `(${store} ${get('row')} (${sub} (${load} ${get('row')}) (${add} (${mul} ${f} (${load} ${get('e')})) (${mul} ${g} (${load} ${get('d')})))))`;
  return [
    `(func $${EIGEN_RANK2} (export "${EIGEN_RANK2}") (param $row i32) (param $e i32) (param $d i32) (param $m i32) (param $f f64) (param $g f64)`,
    '(local $end i32) (local $pairsEnd i32) (local $fv v128) (local $gv v128)',
    set('fv', `(f64x2.splat ${get('f')})`),
    set('gv', `(f64x2.splat ${get('g')})`),
    ...pairBounds('row', 'm'),
    ...pairsThenLast(
      'pairs',
      'pairsEnd',
      'end',
      [update('v128.load', 'v128.store', 'f64x2.mul', 'f64x2.add', 'f64x2.sub', get('fv'), get('gv'))],
      [update('f64.load', 'f64.store', 'f64.mul', 'f64.add', 'f64.sub', get('f'), get('g'))],
      ['row', 'e', 'd'],
    ),
    ')',
  ].join('\n');
}

/** z −= (Σ u[k]·z[k] / h)·u over k < m: one Householder reflector applied to a vector. */
function eigenReflectKernel(): string {
  return [
    `(func $${EIGEN_REFLECT} (export "${EIGEN_REFLECT}") (param $u i32) (param $z i32) (param $m i32) (param $h f64)`,
    '(local $end i32) (local $pairsEnd i32) (local $u0 i32) (local $z0 i32) (local $acc v128) (local $gv v128) (local $g f64)',
    set('u0', get('u')),
    set('z0', get('z')),
    ...pairBounds('u', 'm'),
    ...pairsThenLast(
      'pairs',
      'pairsEnd',
      'end',
      [set('acc', `(f64x2.add ${get('acc')} (f64x2.mul (v128.load ${get('u')}) (v128.load ${get('z')})))`)],
      [set('g', `(f64.mul (f64.load ${get('u')}) (f64.load ${get('z')}))`)],
      ['u', 'z'],
    ),
    set('g', `(f64.div (f64.add (f64.add (f64x2.extract_lane 0 ${get('acc')}) (f64x2.extract_lane 1 ${get('acc')})) ${get('g')}) ${get('h')})`),
    `(if (f64.eq ${get('g')} (f64.const 0)) (then (return)))`,
    set('gv', `(f64x2.splat ${get('g')})`),
    set('u', get('u0')),
    set('z', get('z0')),
    ...pairsThenLast(
      'update',
      'pairsEnd',
      'end',
      [`(v128.store ${get('z')} (f64x2.sub (v128.load ${get('z')}) (f64x2.mul ${get('gv')} (v128.load ${get('u')}))))`],
      [`(f64.store ${get('z')} (f64.sub (f64.load ${get('z')}) (f64.mul ${get('g')} (f64.load ${get('u')}))))`],
      ['u', 'z'],
    ),
    ')',
  ].join('\n');
}

/**
 * Bits each of `n` sketches differs in from one (KERNELS.md, "Sign sketches"): per row, `step`
 * steps of 128 bits, XOR, i8x16.popcnt, widened pairwise into four int32 counts, summed at the end.
 */
function hammingRowsKernel(): string {
  return [
    `(func $${HAMMING_ROWS} (export "${HAMMING_ROWS}") (param $rows i32) (param $n i32) (param $step i32) (param $q i32) (param $out i32)`,
    '(local $end i32) (local $qi i32) (local $rowEnd i32) (local $acc v128)',
    set('end', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(2)}))`),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('out')} ${get('end')}))`,
    '(loop $row',
    set('acc', '(v128.const i32x4 0 0 0 0)'),
    set('qi', get('q')),
    set('rowEnd', `(i32.add ${get('rows')} (i32.shl ${get('step')} ${i32(4)}))`),
    // Rows of no bits (step 0) are 0 apart.
    '(block $chunks',
    `(br_if $chunks (i32.ge_u ${get('rows')} ${get('rowEnd')}))`,
    '(loop $chunk',
    set('acc', `(i32x4.add ${get('acc')} (i32x4.extadd_pairwise_i16x8_u (i16x8.extadd_pairwise_i8x16_u (i8x16.popcnt (v128.xor (v128.load ${get('rows')}) (v128.load ${get('qi')}))))))`),
    set('rows', `(i32.add ${get('rows')} ${i32(16)})`),
    set('qi', `(i32.add ${get('qi')} ${i32(16)})`),
    `(br_if $chunk (i32.lt_u ${get('rows')} ${get('rowEnd')}))))`,
    `(i32.store ${get('out')} ${i32HorizontalSum('acc')})`,
    set('out', `(i32.add ${get('out')} ${i32(4)})`),
    `(br_if $row (i32.lt_u ${get('out')} ${get('end')})))`,
    ')',
    ')',
  ].join('\n');
}

/**
 * Σ(x − y)², Σx², Σy² and Σxy in float64 over two kernel queries x and y (KERNELS.md, "Query
 * shift"), four values a step: an int8 query's values are code · scale rounded to float32 (as
 * kernelValues() gives them), a float query's its own. Each sum is two f64x2 accumulators, one for
 * values 4i and 4i + 1, one for 4i + 2 and 4i + 3, folded (lane 0 + lane 1) + (lane 0 + lane 1):
 * so the same values in either form give the same four numbers, bit for bit.
 */
function queryShiftKernel(kind: 'i8' | 'f32'): string {
  const name = kind === 'i8' ? QUERY_SHIFT_I8 : QUERY_SHIFT_F32;
  // Four values as float32 lanes. An int8 query's value is code · scale rounded to float32: the
  // float32 product of the two (a code is exact in float32), which is what rounding their exact
  // product, as JavaScript's Math.fround(code * scale) does, gives.
  const values = (ptr: string, scale: string): string =>
    kind === 'f32'
      ? `(v128.load ${get(ptr)})`
      : `(f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (v128.load32_zero ${get(ptr)})))) ${get(scale)})`;
  const step = kind === 'i8' ? 4 : 16;
  const sums = ['d2', 'x2', 'y2', 'xy'];
  const acc = sums.flatMap((s) => [`${s}Lo`, `${s}Hi`]);
  const addTo = (s: string, half: 'Lo' | 'Hi', product: string): string => set(`${s}${half}`, `(f64x2.add ${get(`${s}${half}`)} ${product})`);
  const body: string[] = [
    set('end', `(i32.add ${get('a')} (i32.mul ${get('n')} ${i32(step / 4)}))`),
    ...(kind === 'i8' ? [set('sa', `(f32x4.splat (f32.demote_f64 ${get('scaleA')}))`), set('sb', `(f32x4.splat (f32.demote_f64 ${get('scaleB')}))`)] : []),
    '(block $done',
    `(br_if $done (i32.ge_u ${get('a')} ${get('end')}))`,
    '(loop $step',
    set('x', values('a', 'sa')),
    set('y', values('b', 'sb')),
    set('xLo', `(f64x2.promote_low_f32x4 ${get('x')})`),
    set('xHi', promoteHigh(get('x'))),
    set('yLo', `(f64x2.promote_low_f32x4 ${get('y')})`),
    set('yHi', promoteHigh(get('y'))),
  ];
  for (const half of ['Lo', 'Hi'] as const) {
    const x = get(`x${half}`);
    const y = get(`y${half}`);
    body.push(
      set('d', `(f64x2.sub ${x} ${y})`),
      addTo('d2', half, `(f64x2.mul ${get('d')} ${get('d')})`),
      addTo('x2', half, `(f64x2.mul ${x} ${x})`),
      addTo('y2', half, `(f64x2.mul ${y} ${y})`),
      addTo('xy', half, `(f64x2.mul ${x} ${y})`),
    );
  }
  body.push(
    set('a', `(i32.add ${get('a')} ${i32(step)})`),
    set('b', `(i32.add ${get('b')} ${i32(step)})`),
    `(br_if $step (i32.lt_u ${get('a')} ${get('end')}))))`,
  );
  sums.forEach((s, i) => body.push(`(f64.store offset=${8 * i} ${get('out')} ${f64PairsSum(`${s}Lo`, `${s}Hi`)})`));
  const params = kind === 'i8' ? '(param $a i32) (param $b i32) (param $scaleA f64) (param $scaleB f64) (param $n i32) (param $out i32)' : '(param $a i32) (param $b i32) (param $n i32) (param $out i32)';
  const locals = ['(local $end i32)', `(local $x v128) (local $y v128) (local $xLo v128) (local $xHi v128) (local $yLo v128) (local $yHi v128) (local $d v128) ${acc.map((a) => `(local $${a} v128)`).join(' ')}`];
  if (kind === 'i8') locals.push('(local $sa v128) (local $sb v128)');
  return [`(func $${name} (export "${name}") ${params}`, ...locals, ...body, ')'].join('\n');
}

/**
 * The levels a nibble of `bits`-bit codes holds, first level first (KERNELS.md, "Nibbles"), each
 * less the codec's midpoint m = (2^bits − 1) / 2: what a decoded dimension is before its scale.
 */
function nibbleValues(bits: RqBits, nibble: number): number[] {
  const per = 4 / bits;
  const mask = (1 << bits) - 1;
  return Array.from({ length: per }, (_, k) => ((nibble >> (k * bits)) & mask) - mask / 2);
}

/**
 * fastScanDecode<bits>(blocks, scales, first, count, G, table, out): rows first..first+count−1 of the
 * fast-scan blocks at `blocks` (row r: lane r % 32 of block ⌊r / 32⌋), decoded as the codec decodes
 * them, F_r · (u − m) per dimension, one row after another as float32 from `out` (KERNELS.md,
 * "Fast-scan rows"). Each nibble's values less m go into a 16-entry table at `table` first, so a
 * group is one byte load, a table load and a multiply: JavaScript took 5 ns a group, extracting the
 * levels one by one. The product of two float32 rounded once is the float64 product rounded to
 * float32, so the values are the JavaScript decode's bit for bit.
 */
function fastScanDecodeKernel(bits: RqBits): string {
  const name = fastScanDecodeExportName(bits);
  const per = 4 / bits;
  const entry = 4 * per;
  const table: string[] = [];
  for (let n = 0; n < 16; n++) nibbleValues(bits, n).forEach((v, k) => table.push(`(f32.store offset=${n * entry + 4 * k} ${get('table')} (f32.const ${v}))`));
  const value = `(i32.add ${get('table')} (i32.mul (i32.and (i32.shr_u (i32.load8_u ${get('at')}) ${get('shift')}) ${i32(15)}) ${i32(entry)}))`;
  // Four values go as one vector; two and one as float32 each.
  const store =
    per === 4
      ? [`(v128.store ${get('out')} (f32x4.mul (v128.load ${value}) ${get('fv')}))`]
      : [set('v', value), ...Array.from({ length: per }, (_, k) => `(f32.store offset=${4 * k} ${get('out')} (f32.mul (f32.load offset=${4 * k} ${get('v')}) ${get('f')}))`)];
  return [
    `(func $${name} (export "${name}") (param $blocks i32) (param $scales i32) (param $first i32) (param $count i32) (param $groups i32) (param $table i32) (param $out i32)`,
    '(local $row i32) (local $end i32) (local $at i32) (local $stop i32) (local $shift i32) (local $blockBytes i32) (local $v i32) (local $f f32) (local $fv v128)',
    ...table,
    set('blockBytes', `(i32.shl ${get('groups')} ${i32(4)})`),
    set('row', get('first')),
    set('end', `(i32.add ${get('first')} ${get('count')})`),
    '(block $rowsDone',
    '(loop $rows',
    `(br_if $rowsDone (i32.ge_u ${get('row')} ${get('end')}))`,
    set('at', `(i32.add (i32.add ${get('blocks')} (i32.mul (i32.shr_u ${get('row')} ${i32(5)}) ${get('blockBytes')})) (i32.and ${get('row')} ${i32(15)}))`),
    set('shift', `(i32.shr_u (i32.and ${get('row')} ${i32(16)}) ${i32(2)})`),
    set('f', `(f32.load (i32.add ${get('scales')} (i32.shl ${get('row')} ${i32(2)})))`),
    set('fv', `(f32x4.splat ${get('f')})`),
    set('stop', `(i32.add ${get('at')} ${get('blockBytes')})`),
    '(block $groupsDone',
    '(loop $groups',
    `(br_if $groupsDone (i32.ge_u ${get('at')} ${get('stop')}))`,
    ...store,
    set('out', `(i32.add ${get('out')} ${i32(entry)})`),
    set('at', `(i32.add ${get('at')} ${i32(16)})`),
    '(br $groups)))',
    set('row', `(i32.add ${get('row')} ${i32(1)})`),
    '(br $rows)))',
    ')',
  ].join('\n');
}

/**
 * fastScanWrite<bits>(planes, planeBytes, G, blocks, row, F, scales, norms, errs): the code whose bit
 * planes (CODECS.md: plane b holds bit b of every level, dimension d at bit d & 7 of byte d >> 3) are
 * at `planes`, `planeBytes` apart, then its ‖r‖² and ‖e‖, written as nibbles into the lane of `row`
 * of the blocks at `blocks` (the other lanes' half of each byte stays) and as row `row` of the
 * float32 arrays `scales` (F), `norms` and `errs` (KERNELS.md, "Fast-scan rows").
 *
 * A byte of each plane at a time: its bits spread apart and the planes' interleaved (z below) make
 * the nibbles of 2 · bits groups side by side, since a nibble holds its levels' bits plane by plane
 * (KERNELS.md, "Nibbles"). Taking each group's bits one by one had cost as much as JavaScript did.
 */
function fastScanWriteKernel(bits: RqBits): string {
  const name = fastScanWriteExportName(bits);
  // A byte of a plane holds 8 dimensions, a group 4 / bits of them.
  const perByte = 2 * bits;
  const plane = (b: number): string => `(i32.load8_u ${b === 0 ? get('p') : `(i32.add ${get('p')} ${b === 1 ? get('planeBytes') : `(i32.mul ${get('planeBytes')} ${i32(b)})`})`})`;
  // Bit i of a byte to bit 2i (bits 2) or 4i (bits 4): the standard interleaving by shifts and masks.
  const spread2 = (x: string): string => `(i32.and (i32.or (local.tee $t (i32.and (i32.or (local.tee $t (i32.and (i32.or ${x} (i32.shl ${x} ${i32(4)})) ${i32(0x0f0f)})) (i32.shl ${get('t')} ${i32(2)})) ${i32(0x3333)})) (i32.shl ${get('t')} ${i32(1)})) ${i32(0x5555)})`;
  const spread4 = (x: string): string => `(i32.and (i32.or (local.tee $t (i32.and (i32.or (local.tee $t (i32.and (i32.or ${x} (i32.shl ${x} ${i32(12)})) ${i32(0x000f000f)})) (i32.shl ${get('t')} ${i32(6)})) ${i32(0x03030303)})) (i32.shl ${get('t')} ${i32(3)})) ${i32(0x11111111)})`;
  const z: string[] = [];
  if (bits === 1) z.push(set('z', plane(0)));
  else if (bits === 2) z.push(set('x', plane(0)), set('z', spread2(get('x'))), set('x', plane(1)), set('z', `(i32.or ${get('z')} (i32.shl ${spread2(get('x'))} ${i32(1)}))`));
  else {
    z.push(set('x', plane(0)), set('z', spread4(get('x'))));
    for (let b = 1; b < 4; b++) z.push(set('x', plane(b)), set('z', `(i32.or ${get('z')} (i32.shl ${spread4(get('x'))} ${i32(b)}))`));
  }
  const stores = Array.from({ length: perByte }, (_, k) => {
    const nibble = k === 0 ? `(i32.and ${get('z')} ${i32(15)})` : `(i32.and (i32.shr_u ${get('z')} ${i32(4 * k)}) ${i32(15)})`;
    return `(i32.store8 offset=${16 * k} ${get('at')} (i32.or (i32.and (i32.load8_u offset=${16 * k} ${get('at')}) ${get('keep')}) (i32.shl ${nibble} ${get('shift')})))`;
  });
  return [
    `(func $${name} (export "${name}") (param $planes i32) (param $planeBytes i32) (param $groups i32) (param $blocks i32) (param $row i32) (param $scale f32) (param $scales i32) (param $norms i32) (param $errs i32)`,
    '(local $p i32) (local $end i32) (local $at i32) (local $shift i32) (local $keep i32) (local $x i32) (local $z i32) (local $t i32)',
    set('at', `(i32.add (i32.add ${get('blocks')} (i32.mul (i32.shr_u ${get('row')} ${i32(5)}) (i32.shl ${get('groups')} ${i32(4)}))) (i32.and ${get('row')} ${i32(15)}))`),
    set('shift', `(i32.shr_u (i32.and ${get('row')} ${i32(16)}) ${i32(2)})`),
    set('keep', `(i32.shr_u ${i32(0xf0)} ${get('shift')})`),
    set('p', get('planes')),
    // G is a multiple of 8 (FAST_SCAN_DIM_STEP): whole bytes of each plane.
    set('end', `(i32.add ${get('planes')} (i32.div_u ${get('groups')} ${i32(perByte)}))`),
    '(block $done',
    '(loop $byte',
    `(br_if $done (i32.ge_u ${get('p')} ${get('end')}))`,
    ...z,
    ...stores,
    set('at', `(i32.add ${get('at')} ${i32(16 * perByte)})`),
    set('p', `(i32.add ${get('p')} ${i32(1)})`),
    '(br $byte)))',
    // The row's three floats: F, then ‖r‖² and ‖e‖ as the code's last 8 bytes hold them (CODECS.md).
    set('p', `(i32.add ${get('planes')} (i32.mul ${get('planeBytes')} ${i32(bits)}))`),
    set('x', `(i32.shl ${get('row')} ${i32(2)})`),
    `(f32.store (i32.add ${get('scales')} ${get('x')}) ${get('scale')})`,
    `(f32.store (i32.add ${get('norms')} ${get('x')}) (f32.load ${get('p')}))`,
    `(f32.store (i32.add ${get('errs')} ${get('x')}) (f32.load offset=4 ${get('p')}))`,
    ')',
  ].join('\n');
}

/**
 * The whole module. Memory is imported (env.memory) so the allocator owns it and can exist, and be
 * tested, without the kernels; the module itself needs no static data.
 */
export function generateWat(tuning: KernelTuning = DEFAULT_TUNING): string {
  const parts = [';; Generated by src/kernels/wat.ts; do not edit. See src/kernels/KERNELS.md.', '(module'];
  parts.push('(import "env" "memory" (memory 1))');
  for (const layout of ['contiguous', 'gather'] as const) {
    for (const codec of KERNEL_CODECS) {
      for (const metric of KERNEL_METRICS) parts.push(floatKernel(codec, metric, tuning.floatBlock, layout));
    }
    for (const metric of I8_METRICS) parts.push(i8Kernel(metric, tuning.i8Block, layout));
    if (layout === 'contiguous') {
      parts.push(i8Kernel('cosine', tuning.i8Block, layout, true));
      for (const codec of FLOAT_NORMED_CODECS) parts.push(floatKernel(codec, 'cosine', tuning.floatBlock, layout, true), floatNormsKernel(codec));
    }
    for (const bits of RQ_BITS) {
      for (const metric of RQ_METRICS) parts.push(rqKernel(bits, metric, tuning.rqBlock, layout));
    }
  }
  for (const metric of RQ_METRICS) parts.push(fastScanKernel(metric, tuning.fastScanUnroll), gatherFastScanKernel(metric));
  for (const bits of RQ_BITS) parts.push(fastScanTableKernel(bits), fastScanDecodeKernel(bits), fastScanWriteKernel(bits));
  parts.push(exactKernel(EXACT_DOT_NORM), exactKernel(EXACT_SQDIST), selectKernel(), routeScoresKernel(), bucketSelectKernel(), int8NormsKernel(), int8DecodeKernel(), rowMaxAbsKernel(), sumMultiplesKernel(), signSketchKernel(), hammingRowsKernel(), hadamardTransformKernel(), multiplySignsKernel(), givensHalvesKernel(), queryShiftKernel('i8'), queryShiftKernel('f32'), eigenDotAxpyKernel(), eigenRank2Kernel(), eigenReflectKernel());
  parts.push(')');
  return `${parts.join('\n')}\n`;
}
