/**
 * Load-time quantization of weight matrices to q8 / q4 (layout in ./format.ts), and the exact inverse.
 *
 * Symmetric, one f16 scale per block of 32, q ∈ [-128, 127] (q8) or [-8, 7] (q4). Each block's scale is
 * chosen for a small squared error Σ (x − q·scale)², not just to cover the block's largest value:
 * - Trials map the largest-magnitude value x_m to about −t, for a few t near 8 (q4) or 128 (q8): scale
 *   −x_m / t, negative when x_m is positive, so the lone −8 / −128 serves either sign. Each trial rounds and
 *   clamps q, refits the scale by least squares (Σ x·q / Σ q², rounded to f16) and is scored by the error left.
 * - The best trial's scale then competes with the absmax scale (absmax / 7 or 127, rounded up to f16, so q
 *   never clamps) on their exact errors, each with q = round(x / scale) clamped.
 * Guarantee: each block's squared error is at most the absmax scale's. On Gaussian-like weights the total is
 * ~30% lower in q4 and ~15% in q8; a clamped element may be off by more than half a step.
 * An all-zero block has scale 0 and decodes to zeros.
 */
import { ShapeError } from '../gpu/errors';
import { f16BitsToF32, f32ToF16Bits } from '../gpu/f16';
import { numel } from '../gpu/tensor';
import { QUANT_BLOCK, QUANT_INT_WORDS, QUANT_OFFSET, QUANT_SLICE_ALIGN, quantBlocks, quantScaleOffset, quantizedWords, type QuantDType } from './format';

export { QUANT_BLOCK, QUANT_INT_WORDS, QUANT_OFFSET, QUANT_SLICE_ALIGN, isQuantDType, quantScaleOffset, quantizedWords, type QuantDType } from './format';

/** The integers each dtype stores: int8, and q4's nibble − 8. */
export const QUANT_RANGE: Record<QuantDType, { min: number; max: number }> = {
  q8: { min: -128, max: 127 },
  q4: { min: -8, max: 7 },
};

/**
 * The t of each trial (x_m ↦ −t). Past |min| the extreme clamps but the rest get finer steps; q8 gains
 * mostly from trying several roundings, whose least-squares refits differ, so its trials are spaced wider.
 * Each trial adds ~15% to the quantizer's time; five would lower the error only ~1% more than three.
 */
const TRIAL_LEVELS: Record<QuantDType, readonly [number, number, number]> = {
  q8: [126, 128, 130],
  q4: [7.5, 8, 8.5],
};

/** Weights to quantize: f32 values, or raw f16 bits (as the safetensors reader returns F16). */
export type QuantInput = Float32Array | Uint16Array;

let f16Table: Float32Array | undefined;

/** All 65536 halves widened, so widening f16 weights and candidate scales costs a lookup. */
function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) f16Table[b] = f16BitsToF32(b);
  }
  return f16Table;
}

/**
 * Vite's SSR loader (how Node runs this module) turns each read of an imported binding into a getter call,
 * which costs ~15% in the per-block code; that code reads these copies instead.
 */
const BLOCK = QUANT_BLOCK;
const toF16Bits = f32ToF16Bits;

/** The bits of the smallest f16 ≥ v (v ≥ 0 and finite); 0x7c00 (infinity) past the largest half. */
function f16RoundUp(v: number, halfValues: Float32Array): number {
  const bits = toF16Bits(v);
  return halfValues[bits] < v ? bits + 1 : bits;
}

function badBlock(start: number, n: number, problem: string): RangeError {
  const end = Math.min(start + QUANT_BLOCK, n) - 1;
  return new RangeError(`quantize: block ${start / QUANT_BLOCK} (elements ${start}..${end}) ${problem}`);
}

/** Quantizes `data` (row-major, `shape`) to `dtype`, returning the tensor's u32 words. */
export function quantize(dtype: QuantDType, data: QuantInput, shape: readonly number[]): Uint32Array {
  const n = numel(shape);
  if (data.length !== n) throw new ShapeError('quantize', `expected ${n} values for shape [${shape}], got ${data.length}`);
  const out = new Uint32Array(quantizedWords(dtype, n));
  if (data instanceof Float32Array) {
    quantizeBlocks(dtype, data, 0, n, out);
    return out;
  }
  // Widen f16 a chunk at a time, so the quantizing loop always reads one kind of array (faster in JS).
  const table = f16Values();
  const chunk = new Float32Array(Math.min(n, 64 * QUANT_BLOCK * 1024));
  for (let start = 0; start < n; start += chunk.length) {
    const len = Math.min(chunk.length, n - start);
    for (let i = 0; i < len; i++) chunk[i] = table[data[start + i]];
    quantizeBlocks(dtype, chunk.subarray(0, len), start, n, out);
  }
  return out;
}

/**
 * Math.round(v / scale), computed as floor(v · inverse + 0.5) with inverse = 1 / scale: a division costs
 * several multiplications, and V8 compiles Math.round to a branch that random data mispredicts. r = v · inverse
 * is within a relative 2^-51 of v / scale. Below |r| = 2^21 the two therefore round alike unless r is within
 * 2^-20 of a half-integer; that rare r is rounded from the quotient itself (as is r = 0.5 − 2^-54, where
 * r + 0.5 rounds up to 1). Beyond, both are as far out with the same sign, so they clamp alike.
 */
function nearestInt(v: number, scale: number, inverse: number): number {
  const r = v * inverse;
  const q = Math.floor(r + 0.5);
  return Math.abs(r - q) < 0.5 - 2 ** -20 ? q : Math.round(v / scale);
}

/** Quantizes `src`, the tensor's elements from `first` (a block boundary), into the blocks of `out`. */
function quantizeBlocks(dtype: QuantDType, src: Float32Array, first: number, n: number, out: Uint32Array): void {
  const { min, max } = QUANT_RANGE[dtype];
  const [level0, level1, level2] = TRIAL_LEVELS[dtype];
  const intWords = QUANT_INT_WORDS[dtype];
  const shifts = INT_SHIFTS[dtype];
  const offset = QUANT_OFFSET[dtype];
  let zeroWord = 0; // a word of q = 0
  for (let j = 0; j < shifts.length; j++) zeroWord |= offset << shifts[j];
  const scaleOffset = quantScaleOffset(dtype, n);
  const halfValues = f16Values();

  for (let s = 0; s < src.length; s += BLOCK) {
    const start = first + s;
    // The tensor's last block may be partial: it is quantized zero-padded.
    const partial = s + BLOCK > src.length;
    const block = partial ? zeroPadded(src.subarray(s)) : src;
    const at = partial ? 0 : s;
    const blockIndex = start / BLOCK;
    const base = blockIndex * intWords;
    const scaleWord = scaleOffset + (blockIndex >> 1);
    const scaleShift = (blockIndex & 1) * 16;

    let absmax = 0;
    let extreme = 0;
    let sumSquares = 0;
    for (let i = at, end = at + BLOCK; i < end; i++) {
      const v = block[i];
      sumSquares += v * v;
      if (Math.abs(v) > absmax) {
        absmax = Math.abs(v);
        extreme = v;
      }
    }
    // A NaN or infinity makes the sum NaN or infinite; 32 finite f32 squares cannot overflow it.
    if (!(sumSquares < Infinity)) throw badBlock(start, n, 'holds a non-finite value');
    const absmaxScaleBits = f16RoundUp(absmax / max, halfValues);
    if (absmaxScaleBits >= 0x7c00) throw badBlock(start, n, `needs a scale of ${absmax / max}, beyond the f16 range`);
    if (absmax === 0) {
      out.fill(zeroWord, base, base + intWords); // the scale stays 0
      continue;
    }

    // One pass scores the absmax scale and sums Σ x·q, Σ q² for each trial (see bestTrialScaleBits), the
    // trials unrolled so that their sums are locals.
    const absmaxScale = halfValues[absmaxScaleBits];
    const absmaxInverse = 1 / absmaxScale;
    const inverse0 = -level0 / extreme;
    const inverse1 = -level1 / extreme;
    const inverse2 = -level2 / extreme;
    let absmaxError = 0;
    let xq0 = 0;
    let qq0 = 0;
    let xq1 = 0;
    let qq1 = 0;
    let xq2 = 0;
    let qq2 = 0;
    for (let i = at, end = at + BLOCK; i < end; i++) {
      const v = block[i];
      // The absmax scale is rounded up, so q needs no clamping.
      const q = nearestInt(v, absmaxScale, absmaxInverse);
      const difference = v - q * absmaxScale;
      absmaxError += difference * difference;
      // Faster than Math.round in V8; the two differ only just below ±0.5, which is immaterial in a trial.
      // `| 0` (exact: |v · inverse| ≤ t) lets V8 keep q an int32 rather than check that it is one.
      const rounded0 = Math.floor(v * inverse0 + 0.5) | 0;
      const q0 = rounded0 < min ? min : rounded0 > max ? max : rounded0;
      xq0 += v * q0;
      qq0 += q0 * q0;
      const rounded1 = Math.floor(v * inverse1 + 0.5) | 0;
      const q1 = rounded1 < min ? min : rounded1 > max ? max : rounded1;
      xq1 += v * q1;
      qq1 += q1 * q1;
      const rounded2 = Math.floor(v * inverse2 + 0.5) | 0;
      const q2 = rounded2 < min ? min : rounded2 > max ? max : rounded2;
      xq2 += v * q2;
      qq2 += q2 * q2;
    }
    const fittedBits = bestTrialScaleBits(sumSquares, xq0, qq0, xq1, qq1, xq2, qq2, halfValues);
    // A fitted scale that rounds to zero or overflows f16 cannot compete. Its integers are stored as they are
    // scored; the absmax scale's only if they lose (rarely in q4, a quarter of the time in q8).
    const fittedUsable = (fittedBits & 0x7fff) !== 0 && (fittedBits & 0x7fff) < 0x7c00;
    if (fittedUsable && storeInts(block, at, halfValues[fittedBits], min, max, shifts, offset, out, base) < absmaxError) {
      out[scaleWord] |= fittedBits << scaleShift;
    } else {
      storeInts(block, at, absmaxScale, min, max, shifts, offset, out, base);
      out[scaleWord] |= absmaxScaleBits << scaleShift;
    }
  }
}

/**
 * Stores the block's integers for `scale` (≠ 0), q = round(x / scale) clamped to [min, max], packed from
 * out[base], and returns the squared error they leave, Σ (x − q·scale)².
 */
function storeInts(
  block: Float32Array,
  at: number,
  scale: number,
  min: number,
  max: number,
  shifts: readonly number[],
  offset: number,
  out: Uint32Array,
  base: number,
): number {
  const inverse = 1 / scale;
  const perWord = shifts.length;
  let error = 0;
  for (let i = at, w = base, end = at + BLOCK; i < end; w++) {
    let word = 0;
    for (let j = 0; j < perWord; j++, i++) {
      const v = block[i];
      const rounded = nearestInt(v, scale, inverse);
      const q = rounded < min ? min : rounded > max ? max : rounded;
      word |= (q + offset) << shifts[j];
      const difference = v - q * scale;
      error += difference * difference;
    }
    out[w] = word >>> 0;
  }
  return error;
}

/**
 * The f16 bits of the best trial's least-squares scale Σ x·q / Σ q², judged by the error its q leave with
 * that scale as stored, Σ x² − 2·scale·Σ x·q + scale²·Σ q² (rounding to f16 can undo a trial's gain, and
 * decides between trials that fit equally well, as all do on a constant block). Each trial has some q ≠ 0.
 */
function bestTrialScaleBits(
  sumSquares: number,
  xq0: number,
  qq0: number,
  xq1: number,
  qq1: number,
  xq2: number,
  qq2: number,
  halfValues: Float32Array,
): number {
  let bestError = Infinity;
  let bestBits = 0;
  for (let i = 0; i < 3; i++) {
    const xq = i === 0 ? xq0 : i === 1 ? xq1 : xq2;
    const qq = i === 0 ? qq0 : i === 1 ? qq1 : qq2;
    const bits = toF16Bits(xq / qq);
    const scale = halfValues[bits];
    const error = sumSquares - 2 * scale * xq + scale * scale * qq;
    if (error < bestError) {
      bestError = error;
      bestBits = bits;
    }
  }
  return bestBits;
}

function zeroPadded(values: Float32Array): Float32Array {
  const out = new Float32Array(BLOCK);
  out.set(values);
  return out;
}

/** A slice's words and the byte offsets in the whole tensor's buffer where they go. */
export interface QuantizedSlice {
  ints: Uint32Array;
  intsByteOffset: number;
  scales: Uint32Array;
  scalesByteOffset: number;
}

/**
 * Quantizes elements `offset` .. `offset + data.length` of a tensor of `count` elements, as `quantize` would
 * quantize them within the whole tensor. `offset` is a multiple of QUANT_SLICE_ALIGN, and so is the slice's
 * length unless it ends the tensor (then no scale word is shared between slices).
 */
export function quantizeSlice(dtype: QuantDType, data: QuantInput, offset: number, count: number): QuantizedSlice {
  const end = offset + data.length;
  if (offset % QUANT_SLICE_ALIGN !== 0 || end > count || (end !== count && data.length % QUANT_SLICE_ALIGN !== 0)) {
    throw new ShapeError('quantize', `slice ${offset}..${end} of ${count} elements is not on ${QUANT_SLICE_ALIGN}-element boundaries`);
  }
  const words = quantize(dtype, data, [data.length]);
  const blocks = quantBlocks(data.length);
  const intWords = blocks * QUANT_INT_WORDS[dtype];
  return {
    ints: words.subarray(0, intWords),
    intsByteOffset: (offset / QUANT_BLOCK) * QUANT_INT_WORDS[dtype] * 4,
    scales: words.subarray(intWords, intWords + Math.ceil(blocks / 2)),
    scalesByteOffset: (quantScaleOffset(dtype, count) + offset / QUANT_SLICE_ALIGN) * 4,
  };
}

export function quantizeQ8(data: QuantInput, shape: readonly number[]): Uint32Array {
  return quantize('q8', data, shape);
}

export function quantizeQ4(data: QuantInput, shape: readonly number[]): Uint32Array {
  return quantize('q4', data, shape);
}

/** The bit offset of each element of a word within it (./format.ts): q4 fills low nibbles, then high ones. */
const INT_SHIFTS: Record<QuantDType, readonly number[]> = {
  q8: [0, 8, 16, 24],
  q4: [0, 8, 16, 24, 4, 12, 20, 28],
};

/** The integer q of flat element i, from the words of a `dtype` tensor. */
export function storedInt(dtype: QuantDType, words: Uint32Array, i: number): number {
  const perWord = INT_SHIFTS[dtype].length;
  const mask = dtype === 'q8' ? 0xff : 0xf;
  return ((words[Math.floor(i / perWord)] >>> INT_SHIFTS[dtype][i % perWord]) & mask) - QUANT_OFFSET[dtype];
}

/** The values the GPU's `load_w` yields for each element: q · scale, exact in f32. */
export function dequantize(dtype: QuantDType, words: Uint32Array, shape: readonly number[]): Float32Array {
  const n = numel(shape);
  const expected = quantizedWords(dtype, n);
  if (words.length !== expected) {
    throw new ShapeError('dequantize', `expected ${expected} ${dtype} words for shape [${shape}], got ${words.length}`);
  }
  const scales = blockScales(dtype, words, n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = storedInt(dtype, words, i) * scales[i >> 5];
  return out;
}

/** The scale (as stored, widened; it may be negative) of every block of a tensor of `count` elements. */
export function blockScales(dtype: QuantDType, words: Uint32Array, count: number): Float32Array {
  const offset = quantScaleOffset(dtype, count);
  const out = new Float32Array(quantBlocks(count));
  for (let b = 0; b < out.length; b++) out[b] = f16BitsToF32((words[offset + (b >> 1)] >>> ((b & 1) * 16)) & 0xffff);
  return out;
}
