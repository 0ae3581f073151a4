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
import { QUANT_BLOCK, QUANT_BLOCK_WORDS, quantizedWords, type QuantDType } from './format';

export { QUANT_BLOCK, QUANT_BLOCK_WORDS, isQuantDType, quantizedWords, type QuantDType } from './format';

/** The integers each dtype stores: int8, and q4's nibble − 8. */
export const QUANT_RANGE: Record<QuantDType, { min: number; max: number }> = {
  q8: { min: -128, max: 127 },
  q4: { min: -8, max: 7 },
};

/**
 * The t of each trial (x_m ↦ −t). Past |min| the extreme clamps but the rest get finer steps; q8 gains
 * mostly from trying several roundings, whose least-squares refits differ, so its trials are spaced wider.
 * Each trial adds ~40% of the cost of the absmax scale alone; five would lower the error only ~1% more than three.
 */
const TRIAL_LEVELS: Record<QuantDType, readonly number[]> = {
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

/** The bits of the smallest f16 ≥ v (v ≥ 0 and finite); 0x7c00 (infinity) past the largest half. */
function f16RoundUp(v: number): number {
  const bits = f32ToF16Bits(v);
  return f16BitsToF32(bits) < v ? bits + 1 : bits;
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

/** Quantizes `src`, the tensor's elements from `first` (a block boundary), into the blocks of `out`. */
function quantizeBlocks(dtype: QuantDType, src: Float32Array, first: number, n: number, out: Uint32Array): void {
  const { min, max } = QUANT_RANGE[dtype];
  const trials = TRIAL_LEVELS[dtype];
  const blockWords = QUANT_BLOCK_WORDS[dtype];
  const bits = dtype === 'q8' ? 8 : 4;
  const perWord = 32 / bits;
  const mask = (1 << bits) - 1;
  const offset = dtype === 'q8' ? 0 : 8; // q8 stores two's complement bytes, q4 stores q + 8
  const halfValues = f16Values();
  const ints = new Int8Array(QUANT_BLOCK);
  const absmaxInts = new Int8Array(QUANT_BLOCK);

  for (let s = 0; s < src.length; s += QUANT_BLOCK) {
    const start = first + s;
    // The tensor's last block may be partial: it is quantized zero-padded.
    const partial = s + QUANT_BLOCK > src.length;
    const block = partial ? zeroPadded(src.subarray(s)) : src;
    const at = partial ? 0 : s;

    let absmax = 0;
    let extreme = 0;
    let sumSquares = 0;
    let sawNaN = false;
    for (let j = 0; j < QUANT_BLOCK; j++) {
      const v = block[at + j];
      sumSquares += v * v;
      if (Math.abs(v) > absmax) {
        absmax = Math.abs(v);
        extreme = v;
      } else if (v !== v) {
        sawNaN = true;
      }
    }
    if (sawNaN || absmax === Infinity) throw badBlock(start, n, 'holds a non-finite value');
    const absmaxScaleBits = f16RoundUp(absmax / max);
    if (absmaxScaleBits >= 0x7c00) throw badBlock(start, n, `needs a scale of ${absmax / max}, beyond the f16 range`);

    let scaleBits = 0;
    if (absmax === 0) {
      ints.fill(0);
    } else {
      const absmaxError = squaredError(block, at, halfValues[absmaxScaleBits], min, max, absmaxInts);
      const fittedBits = bestTrialScaleBits(block, at, extreme, sumSquares, trials, min, max, halfValues);
      // A fitted scale that rounds to zero or overflows f16 cannot compete.
      const fittedUsable = (fittedBits & 0x7fff) !== 0 && (fittedBits & 0x7fff) < 0x7c00;
      if (fittedUsable && squaredError(block, at, halfValues[fittedBits], min, max, ints) < absmaxError) {
        scaleBits = fittedBits;
      } else {
        scaleBits = absmaxScaleBits;
        ints.set(absmaxInts);
      }
    }

    const base = (start / QUANT_BLOCK) * blockWords;
    for (let w = 0; w < blockWords - 1; w++) {
      let word = 0;
      for (let k = 0; k < perWord; k++) word |= ((ints[w * perWord + k] + offset) & mask) << (k * bits);
      out[base + w] = word;
    }
    out[base + blockWords - 1] = scaleBits;
  }
}

/**
 * The f16 bits of the best trial's least-squares scale Σ x·q / Σ q², judged by the error its q leave with
 * that scale as stored, Σ x² − 2·scale·Σ x·q + scale²·Σ q² (rounding to f16 can undo a trial's gain, and
 * decides between trials that fit equally well, as all do on a constant block). `extreme` ≠ 0, so every
 * trial has some q ≠ 0.
 */
function bestTrialScaleBits(
  block: Float32Array,
  at: number,
  extreme: number,
  sumSquares: number,
  trials: readonly number[],
  min: number,
  max: number,
  halfValues: Float32Array,
): number {
  let bestError = Infinity;
  let bestBits = 0;
  for (let i = 0; i < trials.length; i++) {
    const inverseScale = -trials[i] / extreme;
    let xq = 0;
    let qq = 0;
    for (let j = 0; j < QUANT_BLOCK; j++) {
      const v = block[at + j];
      // Faster than Math.round in V8; the two differ only just below ±0.5, which is immaterial in a trial.
      const rounded = Math.floor(v * inverseScale + 0.5);
      const q = rounded < min ? min : rounded > max ? max : rounded;
      xq += v * q;
      qq += q * q;
    }
    const bits = f32ToF16Bits(xq / qq);
    const scale = halfValues[bits];
    const error = sumSquares - 2 * scale * xq + scale * scale * qq;
    if (error < bestError) {
      bestError = error;
      bestBits = bits;
    }
  }
  return bestBits;
}

/** Σ (x − q·scale)² over the block, with q = round(x / scale) clamped (the best q for the scale) written to `ints`. */
function squaredError(
  block: Float32Array,
  at: number,
  scale: number,
  min: number,
  max: number,
  ints: Int8Array,
): number {
  let error = 0;
  for (let j = 0; j < QUANT_BLOCK; j++) {
    const v = block[at + j];
    const rounded = Math.round(v / scale);
    const q = rounded < min ? min : rounded > max ? max : rounded;
    ints[j] = q;
    const difference = v - q * scale;
    error += difference * difference;
  }
  return error;
}

function zeroPadded(values: Float32Array): Float32Array {
  const out = new Float32Array(QUANT_BLOCK);
  out.set(values);
  return out;
}

export function quantizeQ8(data: QuantInput, shape: readonly number[]): Uint32Array {
  return quantize('q8', data, shape);
}

export function quantizeQ4(data: QuantInput, shape: readonly number[]): Uint32Array {
  return quantize('q4', data, shape);
}

/** The values the GPU's `load_w` yields for each element: q · scale, exact in f32. */
export function dequantize(dtype: QuantDType, words: Uint32Array, shape: readonly number[]): Float32Array {
  const n = numel(shape);
  const expected = quantizedWords(dtype, n);
  if (words.length !== expected) {
    throw new ShapeError('dequantize', `expected ${expected} ${dtype} words for shape [${shape}], got ${words.length}`);
  }
  const blockWords = QUANT_BLOCK_WORDS[dtype];
  const out = new Float32Array(n);
  for (let start = 0, base = 0; start < n; start += QUANT_BLOCK, base += blockWords) {
    const scale = f16BitsToF32(words[base + blockWords - 1] & 0xffff);
    for (let j = 0; j < QUANT_BLOCK && start + j < n; j++) {
      // `<< then >>` sign-extends the byte; the nibble is stored offset by 8.
      const q = dtype === 'q8' ? (words[base + (j >> 2)] << (24 - (j & 3) * 8)) >> 24 : ((words[base + (j >> 3)] >>> ((j & 7) * 4)) & 15) - 8;
      out[start + j] = q * scale;
    }
  }
  return out;
}

/** The scale (as stored, widened; it may be negative) of every block. */
export function blockScales(dtype: QuantDType, words: Uint32Array): Float32Array {
  const blockWords = QUANT_BLOCK_WORDS[dtype];
  const out = new Float32Array(words.length / blockWords);
  for (let b = 0; b < out.length; b++) out[b] = f16BitsToF32(words[b * blockWords + blockWords - 1] & 0xffff);
  return out;
}
