/**
 * Load-time quantization of weight matrices to q8 / q4 (layout in ./format.ts), and the exact inverse.
 *
 * Symmetric, one f16 scale per block of 32: scale = absmax / L with L = 127 (q8) or 7 (q4), rounded UP to
 * f16 so that |x / scale| ≤ L and rounding to the nearest integer never needs clamping; then
 * |x − q·scale| ≤ scale / 2 for every element, with the scale as stored. q4 uses q ∈ [-7, 7] (not the
 * asymmetric -8 of Q4_0, which would break that bound for the opposite sign); nibble 0 still decodes, as -8.
 * An all-zero block has scale 0 and decodes to zeros.
 */
import { ShapeError } from '../gpu/errors';
import { f16BitsToF32, f32ToF16Bits } from '../gpu/f16';
import { numel } from '../gpu/tensor';
import { QUANT_BLOCK, QUANT_BLOCK_WORDS, quantizedWords, type QuantDType } from './format';

export { QUANT_BLOCK, QUANT_BLOCK_WORDS, isQuantDType, quantizedWords, type QuantDType } from './format';

/** Largest |q| the quantizer produces. */
export const QUANT_LEVELS: Record<QuantDType, number> = { q8: 127, q4: 7 };

/** Weights to quantize: f32 values, or raw f16 bits (as the safetensors reader returns F16). */
export type QuantInput = Float32Array | Uint16Array;

let f16Table: Float32Array | undefined;

/** All 65536 halves widened, so quantizing f16 weights costs a lookup per element. */
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

function blockError(start: number, n: number, problem: string): RangeError {
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
  const levels = QUANT_LEVELS[dtype];
  const blockWords = QUANT_BLOCK_WORDS[dtype];
  const bits = dtype === 'q8' ? 8 : 4;
  const perWord = 32 / bits;
  const mask = (1 << bits) - 1;
  const offset = dtype === 'q8' ? 0 : 8; // q8 stores two's complement bytes, q4 stores q + 8

  for (let s = 0; s < src.length; s += QUANT_BLOCK) {
    const start = first + s;
    // The tensor's last block may be partial: it is quantized zero-padded.
    const partial = s + QUANT_BLOCK > src.length;
    const block = partial ? zeroPadded(src.subarray(s)) : src;
    const at = partial ? 0 : s;
    let absmax = 0;
    for (let j = 0; j < QUANT_BLOCK; j++) absmax = Math.max(absmax, Math.abs(block[at + j])); // NaN propagates
    if (!Number.isFinite(absmax)) throw blockError(start, n, 'holds a non-finite value');
    const scaleBits = f16RoundUp(absmax / levels);
    if (scaleBits >= 0x7c00) throw blockError(start, n, `needs a scale of ${absmax / levels}, beyond the f16 range`);
    const scale = f16BitsToF32(scaleBits);

    const base = (start / QUANT_BLOCK) * blockWords;
    for (let w = 0; w < blockWords - 1; w++) {
      let word = 0;
      for (let k = 0; k < perWord; k++) {
        const q = scale === 0 ? 0 : Math.round(block[at + w * perWord + k] / scale);
        word |= ((q + offset) & mask) << (k * bits);
      }
      out[base + w] = word;
    }
    out[base + blockWords - 1] = scaleBits;
  }
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

/** The scale (as stored, widened) of every block, e.g. to check the per-block error bound. */
export function blockScales(dtype: QuantDType, words: Uint32Array): Float32Array {
  const blockWords = QUANT_BLOCK_WORDS[dtype];
  const out = new Float32Array(words.length / blockWords);
  for (let b = 0; b < out.length; b++) out[b] = f16BitsToF32(words[b * blockWords + blockWords - 1] & 0xffff);
  return out;
}
