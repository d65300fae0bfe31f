import type { CodecName } from '../codec/codec.js';
import {
  BYTES_PER_DIM,
  I8_METRICS,
  KERNEL_CODECS,
  KERNEL_METRICS,
  scanExportName,
  scanI8ExportName,
  type I8Metric,
  type KernelMetric,
} from './contract.js';

/**
 * Generates the WebAssembly text of every distance kernel from templates: one exported function
 * per (codec, metric) for float32 queries, and one per metric for int8 queries. KERNELS.md explains
 * the memory layout and the decode tricks; this file only says why the code is shaped as it is.
 */

/** How many stored vectors one pass over the query scores at once, per kernel family. */
export interface KernelTuning {
  /** Float-query kernels: sharing the four query loads of a step between vectors. */
  readonly floatBlock: number;
  /** Int8-query kernels: sharing the query load and its two sign extensions between vectors. */
  readonly i8Block: number;
}

/** Chosen by measurement on x86-64 (see bench/kernels.bench.ts); other values stay correct. */
export const DEFAULT_TUNING: KernelTuning = { floatBlock: 2, i8Block: 4 };

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

/** Byte pattern of an i8x16.shuffle of one register with itself. */
function shuffle(pattern: readonly number[], src: string): string {
  return `(i8x16.shuffle ${pattern.join(' ')} ${src} ${src})`;
}

/**
 * Pattern moving byte `first + k` into the top byte of i32 lane k. The three low bytes repeat the
 * same source byte: they are garbage the callers shift or mask away, which lets the shuffle read a
 * single register (one pshufb on x64) instead of blending in a zero vector.
 */
function bytesToLaneTops(first: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < 4; k++) out.push(first + k, first + k, first + k, first + k);
  return out;
}

/** Pattern moving half-word `first + k` into the upper 16 bits of i32 lane k (low half garbage). */
function halvesToLaneTops(first: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < 4; k++) {
    const b = 2 * (first + k);
    out.push(b, b + 1, b, b + 1);
  }
  return out;
}

/**
 * Decodes the 16 dimensions of one step of a code into four f32x4 vectors of d (unscaled value).
 * `setup` runs first and may fill the raw registers r0/r1; `vecs` are expressions over them.
 */
interface Decoder {
  readonly scaled: boolean;
  /** v128 constants the decode needs, hoisted into locals before the loops. */
  readonly constants: Readonly<Record<string, string>>;
  decode(ptr: string): { setup: string[]; vecs: string[] };
}

/**
 * A narrow float whose bits, moved to the top of an i32 lane and arithmetic-shifted right by
 * `shift`, line up with binary32's sign, exponent low bits and mantissa; `mask` then drops the
 * copies of the sign that the shift smeared into the exponent's high bits (and the garbage low
 * bits), and multiplying by 2^rebias turns the too-small binary32 into the exact value, subnormals
 * included, because the product is a normal binary32 with the same significand.
 */
function narrowFloatDecoder(kind: 'f16' | 'e4m3' | 'e5m2'): Decoder {
  const shift = kind === 'e4m3' ? 4 : 3;
  const mask = kind === 'f16' ? 0x8fffe000 : kind === 'e4m3' ? 0x87f00000 : 0x8fe00000;
  const rebias = kind === 'e4m3' ? POW2_120 : POW2_112;
  const wide = kind === 'f16';
  return {
    scaled: kind !== 'f16',
    constants: { kMask: splat32(mask), kRebias: splat32(rebias) },
    decode(ptr) {
      const setup = [set('r0', `(v128.load ${get(ptr)})`)];
      if (wide) setup.push(set('r1', `(v128.load offset=16 ${get(ptr)})`));
      const vecs: string[] = [];
      for (let v = 0; v < 4; v++) {
        const lanes = wide
          ? shuffle(halvesToLaneTops(4 * (v & 1)), get(v < 2 ? 'r0' : 'r1'))
          : shuffle(bytesToLaneTops(4 * v), get('r0'));
        vecs.push(`(f32x4.mul (v128.and (i32x4.shr_s ${lanes} ${i32(shift)}) ${get('kMask')}) ${get('kRebias')})`);
      }
      return { setup, vecs };
    },
  };
}

const DECODERS: Readonly<Record<CodecName, Decoder>> = {
  f32: {
    scaled: false,
    constants: {},
    decode: (ptr) => ({ setup: [], vecs: [0, 1, 2, 3].map((v) => `(v128.load offset=${16 * v} ${get(ptr)})`) }),
  },
  f16: narrowFloatDecoder('f16'),
  int8: {
    scaled: true,
    constants: {},
    decode: (ptr) => ({
      setup: [set('r0', `(v128.load ${get(ptr)})`)],
      // The arithmetic shift both sign-extends the byte and discards the garbage below it.
      vecs: [0, 1, 2, 3].map(
        (v) => `(f32x4.convert_i32x4_s (i32x4.shr_s ${shuffle(bytesToLaneTops(4 * v), get('r0'))} ${i32(24)}))`,
      ),
    }),
  },
  'fp8-e4m3': narrowFloatDecoder('e4m3'),
  'fp8-e5m2': narrowFloatDecoder('e5m2'),
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
  /** Instructions run before the dimension loop for vector b of the block (scale pointer in $s). */
  initVector(b: number): string[];
  /** Instructions consuming one step of vector b, whose code pointer is local `ptr`. */
  step(b: number, ptr: string): string[];
  /** f32 score of vector b after the dimension loop. */
  score(b: number): string;
}

const codePtr = (b: number): string => `c${b}`;

/**
 * The loop skeleton shared by all kernels: blocks of `block` vectors walk the query once, then the
 * remaining n mod block vectors go one at a time. Code pointers advance with the step, so after
 * the dimension loop pointer b sits on the code of vector b + 1 and no multiplication is needed.
 */
function scanFunction(body: KernelBody): string {
  const loopFor = (block: number, label: string, end: string): string[] => {
    const out: string[] = [];
    out.push(`(block $${label}_done`);
    out.push(`(br_if $${label}_done (i32.ge_u ${get('out')} ${get(end)}))`);
    out.push(`(loop $${label}`);
    for (let b = 1; b < block; b++) out.push(set(codePtr(b), `(i32.add ${get(codePtr(b - 1))} ${get('stride')})`));
    for (let b = 0; b < block; b++) out.push(...body.initVector(b));
    out.push(set('qi', get('q')));
    out.push(`(loop $${label}_dims`);
    out.push(...body.loadQuery());
    for (let b = 0; b < block; b++) out.push(...body.step(b, codePtr(b)));
    out.push(set('qi', `(i32.add ${get('qi')} ${i32(body.queryStep)})`));
    for (let b = 0; b < block; b++) {
      out.push(set(codePtr(b), `(i32.add ${get(codePtr(b))} ${i32(body.codeStep)})`));
    }
    out.push(`(br_if $${label}_dims (i32.lt_u ${get('qi')} ${get('qEnd')})))`);
    for (let b = 0; b < block; b++) out.push(`(f32.store offset=${4 * b} ${get('out')} ${body.score(b)})`);
    // Pointer block − 1 now sits on the code right after the block.
    if (block > 1) out.push(set(codePtr(0), get(codePtr(block - 1))));
    out.push(set('s', `(i32.add ${get('s')} ${i32(4 * block)})`));
    out.push(set('out', `(i32.add ${get('out')} ${i32(4 * block)})`));
    out.push(`(br_if $${label} (i32.lt_u ${get('out')} ${get(end)})))`);
    out.push(')');
    return out;
  };

  const code: string[] = [];
  for (const [name, value] of Object.entries(body.constants)) code.push(set(name, value));
  code.push(set('qEnd', `(i32.add ${get('q')} (i32.mul ${get('dim')} ${i32(body.queryStep / 16)}))`));
  code.push(set('stride', `(i32.mul ${get('dim')} ${i32(body.codeStep / 16)})`));
  code.push(set('outEnd', `(i32.add ${get('out')} (i32.shl ${get('n')} ${i32(2)}))`));
  code.push(set(codePtr(0), get('codes')));
  if (body.block > 1) {
    const whole = `(i32.sub ${get('n')} (i32.rem_u ${get('n')} ${i32(body.block)}))`;
    code.push(set('blockEnd', `(i32.add ${get('out')} (i32.shl ${whole} ${i32(2)}))`));
    code.push(...loopFor(body.block, 'blocks', 'blockEnd'));
  }
  code.push(...loopFor(1, 'singles', 'outEnd'));
  const text = code.join('\n');

  // Declare every scratch name the templates may use, but only those this kernel does use.
  const i32Locals = ['qEnd', 'blockEnd', 'outEnd', 'stride', 'qi'];
  const v128Locals = ['q0', 'q1', 'q2', 'q3', 'd0', 'd1', 'd2', 'd3', 'r0', 'r1', 'cl', 'ch'];
  v128Locals.push(...Object.keys(body.constants));
  for (let b = 0; b < body.block; b++) {
    i32Locals.push(codePtr(b));
    v128Locals.push(`acc${b}`, `den${b}`, `sv${b}`);
  }
  const referenced = (name: string): boolean => new RegExp(`\\$${name}[ )]`).test(text);
  const declarations = [
    ...i32Locals.filter(referenced).map((name) => `(local $${name} i32)`),
    ...v128Locals.filter(referenced).map((name) => `(local $${name} v128)`),
  ];
  const signature =
    `(func $${body.exportName} (export "${body.exportName}") (param $q i32)${body.extraParams} ` +
    '(param $codes i32) (param $s i32) (param $n i32) (param $dim i32) (param $out i32)';
  return [signature, ...declarations, text, ')'].join('\n');
}

function floatKernel(codec: CodecName, metric: KernelMetric, block: number): string {
  const decoder = DECODERS[codec];
  const q = (k: number): string => get(`q${k}`);
  const d = (k: number): string => get(`d${k}`);
  const ks = [0, 1, 2, 3];
  return scanFunction({
    exportName: scanExportName(codec, metric),
    extraParams: '',
    queryStep: 64,
    codeStep: 16 * BYTES_PER_DIM[codec],
    block,
    constants: decoder.constants,
    loadQuery: () => ks.map((k) => set(`q${k}`, `(v128.load offset=${16 * k} ${get('qi')})`)),
    initVector(b) {
      const init = [set(`acc${b}`, ZERO)];
      if (metric === 'cosine') init.push(set(`den${b}`, ZERO));
      if (metric === 'l2' && decoder.scaled) {
        init.push(set(`sv${b}`, `(f32x4.splat (f32.load offset=${4 * b} ${get('s')}))`));
      }
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
      if (metric === 'cosine') {
        const den = `den${b}`;
        out.push(set(den, `(f32x4.add ${get(den)} ${tree('f32x4.add', ks.map((k) => `(f32x4.mul ${d(k)} ${d(k)})`))})`));
      }
      return out;
    },
    score(b) {
      const sum = f32HorizontalSum(`acc${b}`);
      if (metric === 'l2') return `(f32.neg ${sum})`;
      if (metric === 'dot') return decoder.scaled ? `(f32.mul (f32.load offset=${4 * b} ${get('s')}) ${sum})` : sum;
      const den = f32HorizontalSum(`den${b}`);
      return `(select (f32.div ${sum} (f32.sqrt ${den})) (f32.const 0) (f32.gt ${den} (f32.const 0)))`;
    },
  });
}

/**
 * Int8 query against int8 codes. Bytes are sign-extended to i16 and multiplied pairwise into i32
 * by i32x4.dot_i16x8_s (pmaddwd), which is exact for codes in [-127, 127]; see MAX_I8_DIM.
 */
function i8Kernel(metric: I8Metric, block: number): string {
  const dot = (a: string, b: string): string => `(i32x4.dot_i16x8_s ${a} ${b})`;
  return scanFunction({
    exportName: scanI8ExportName(metric),
    extraParams: ' (param $qScale f32)',
    queryStep: 16,
    codeStep: 16,
    block,
    constants: {},
    loadQuery: () => [
      set('r0', `(v128.load ${get('qi')})`),
      set('q0', `(i16x8.extend_low_i8x16_s ${get('r0')})`),
      set('q1', `(i16x8.extend_high_i8x16_s ${get('r0')})`),
    ],
    initVector(b) {
      const init = [set(`acc${b}`, ZERO)];
      if (metric === 'cosine') init.push(set(`den${b}`, ZERO));
      return init;
    },
    step(b, ptr) {
      const out = [
        set('r1', `(v128.load ${get(ptr)})`),
        set('cl', `(i16x8.extend_low_i8x16_s ${get('r1')})`),
        set('ch', `(i16x8.extend_high_i8x16_s ${get('r1')})`),
      ];
      const acc = `acc${b}`;
      out.push(
        set(acc, `(i32x4.add ${get(acc)} (i32x4.add ${dot(get('q0'), get('cl'))} ${dot(get('q1'), get('ch'))}))`),
      );
      if (metric === 'cosine') {
        const den = `den${b}`;
        out.push(
          set(den, `(i32x4.add ${get(den)} (i32x4.add ${dot(get('cl'), get('cl'))} ${dot(get('ch'), get('ch'))}))`),
        );
      }
      return out;
    },
    score(b) {
      const sum = `(f32.convert_i32_s ${i32HorizontalSum(`acc${b}`)})`;
      if (metric === 'dot') return `(f32.mul (f32.mul ${get('qScale')} (f32.load offset=${4 * b} ${get('s')})) ${sum})`;
      const den = i32HorizontalSum(`den${b}`);
      return (
        `(select (f32.div (f32.mul ${get('qScale')} ${sum}) (f32.sqrt (f32.convert_i32_s ${den}))) ` +
        `(f32.const 0) ${den})`
      );
    },
  });
}

/**
 * The whole module. Memory is imported (env.memory) so the allocator owns it and can exist, and be
 * tested, without the kernels; the module itself needs no static data.
 */
export function generateWat(tuning: KernelTuning = DEFAULT_TUNING): string {
  const parts = [';; Generated by src/kernels/wat.ts; do not edit. See src/kernels/KERNELS.md.', '(module'];
  parts.push('(import "env" "memory" (memory 1))');
  for (const codec of KERNEL_CODECS) {
    for (const metric of KERNEL_METRICS) parts.push(floatKernel(codec, metric, tuning.floatBlock));
  }
  for (const metric of I8_METRICS) parts.push(i8Kernel(metric, tuning.i8Block));
  parts.push(')');
  return `${parts.join('\n')}\n`;
}
