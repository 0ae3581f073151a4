/**
 * The q8/q4 quantizer on the CPU: the bit layout the shaders read (negative scales and the -8 / -128 levels
 * included), the guarantee that each block's squared error is at most the absmax scale's (against a naive
 * reimplementation of that scale) and the gain over it, zero and tiny blocks, f16 input, tensors whose size
 * is not a multiple of the block, and refused inputs.
 */
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/gpu/errors';
import { f16BitsToF32, f32ToF16Bits, fromF16, toF16 } from '../../src/gpu/f16';
import { dataBytes, tensorBytes } from '../../src/gpu/tensor';
import {
  QUANT_RANGE,
  blockScales,
  dequantize,
  quantize,
  quantizeQ4,
  quantizeQ8,
  quantizedWords,
  type QuantDType,
} from '../../src/quant/quantize';
import { createRng, randomNormal, type Rng } from '../../src/util/random';
import { freshSeed } from '../gpu';

const DTYPES: QuantDType[] = ['q8', 'q4'];

/** The integer of element i, decoded independently of `dequantize` (straight from the documented layout). */
function storedInt(dtype: QuantDType, words: Uint32Array, i: number): number {
  if (dtype === 'q8') return ((words[Math.floor(i / 4)] >>> (8 * (i % 4))) & 0xff) - 128;
  // Elements 0..3 of a word in the low nibbles of its bytes, 4..7 in the high nibbles.
  const j = i % 8;
  return ((words[Math.floor(i / 8)] >>> (8 * (j % 4) + 4 * Math.floor(j / 4))) & 0xf) - 8;
}

/** Each block's scale, decoded straight from the documented layout: f16 pairs after the integers. */
function storedScales(dtype: QuantDType, words: Uint32Array, count: number): number[] {
  const blocks = Math.ceil(count / 32);
  const first = blocks * (dtype === 'q8' ? 8 : 4);
  return Array.from({ length: blocks }, (_, b) => f16BitsToF32((words[first + Math.floor(b / 2)] >>> (16 * (b % 2))) & 0xffff));
}

/**
 * Each block's squared error with the absmax scale: absmax / 127 (q8) or / 7 (q4) rounded up to f16, and
 * q = round(x / scale), which then never exceeds ±127 / ±7.
 */
function absmaxScaleErrors(dtype: QuantDType, x: ArrayLike<number>): number[] {
  const levels = dtype === 'q8' ? 127 : 7;
  const errors = [];
  for (let start = 0; start < x.length; start += 32) {
    const end = Math.min(start + 32, x.length);
    let absmax = 0;
    for (let i = start; i < end; i++) absmax = Math.max(absmax, Math.abs(x[i]));
    let bits = f32ToF16Bits(absmax / levels);
    if (f16BitsToF32(bits) < absmax / levels) bits++;
    const scale = f16BitsToF32(bits);
    let error = 0;
    for (let i = start; i < end; i++) error += scale === 0 ? x[i] ** 2 : (x[i] - Math.round(x[i] / scale) * scale) ** 2;
    errors.push(error);
  }
  return errors;
}

/**
 * Checks that every element decodes to its stored integer (in range) times its block's scale, that integer
 * being round(x / scale) clamped (ties up, as Math.round), and that each block's squared error is at most the
 * absmax scale's. Returns both totals.
 */
function expectAtMostAbsmaxError(dtype: QuantDType, x: ArrayLike<number>, words: Uint32Array, shape: number[], seed: number) {
  const deq = dequantize(dtype, words, shape);
  const scales = storedScales(dtype, words, x.length);
  expect(Array.from(blockScales(dtype, words, x.length))).toEqual(scales);
  const { min, max } = QUANT_RANGE[dtype];
  const bound = absmaxScaleErrors(dtype, x);
  const totals = { error: 0, absmaxError: 0 };
  for (let b = 0; b < bound.length; b++) {
    let error = 0;
    for (let i = b * 32; i < Math.min(x.length, b * 32 + 32); i++) {
      const q = storedInt(dtype, words, i);
      expect(q, `${dtype} element ${i}, seed ${seed}`).toBeGreaterThanOrEqual(min);
      expect(q, `${dtype} element ${i}, seed ${seed}`).toBeLessThanOrEqual(max);
      // + 0 turns Math.round's -0 into the 0 stored.
      const nearest = scales[b] === 0 ? 0 : Math.min(max, Math.max(min, Math.round(x[i] / scales[b]))) + 0;
      expect(q, `${dtype} element ${i}, seed ${seed}`).toBe(nearest);
      expect(deq[i], `${dtype} element ${i}, seed ${seed}`).toBe(q * scales[b]);
      error += (x[i] - deq[i]) ** 2;
    }
    expect(error, `${dtype} block ${b}, scale ${scales[b]}, seed ${seed}`).toBeLessThanOrEqual(bound[b]);
    totals.error += error;
    totals.absmaxError += bound[b];
  }
  return totals;
}

/** Weight-like data: Gaussian, Laplace, Student-t (3 degrees of freedom) and Gaussian with 20× outliers. */
function weightLike(rng: Rng, n: number, kind: 'gaussian' | 'laplace' | 'student-t' | 'outliers'): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const z = rng.normal();
    if (kind === 'laplace') x[i] = -Math.log(1 - rng.next()) * (rng.next() < 0.5 ? -1 : 1);
    else if (kind === 'student-t') x[i] = z / Math.sqrt((rng.normal() ** 2 + rng.normal() ** 2 + rng.normal() ** 2) / 3);
    else x[i] = kind === 'outliers' && i % 97 === 0 ? 20 * z : z;
    x[i] *= 0.05;
  }
  return x;
}

/**
 * The largest total squared error allowed, as a fraction of the absmax scale's, on Gaussian and Laplace data:
 * over 200 seeds it measured at most 0.73 (q4) and 0.89 (q8). Heavier tails gain less (one value dominates
 * its block), so they are held to the per-block guarantee only.
 */
const MAX_ERROR_RATIO: Record<QuantDType, number> = { q8: 0.92, q4: 0.8 };

describe('quantize', () => {
  it('lays a block out as the shaders read it', () => {
    // absmax 127 → q8 scale exactly 1; absmax 7 → q4 scale exactly 1.
    const q8In = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? -127 : j === 1 ? 127 : j - 16));
    const q8 = quantizeQ8(q8In, [32]);
    expect(q8.length).toBe(12); // 8 words of bytes, the scale, 3 words of padding
    expect(q8[0]).toBe(((0x01 | (0xff << 8) | (0x72 << 16) | (0x73 << 24)) >>> 0)); // -127, 127, -14, -13 stored + 128
    expect(Array.from(q8.subarray(8))).toEqual([0x3c00, 0, 0, 0]); // f16 1.0; no second block
    expect(Array.from(dequantize('q8', q8, [32]))).toEqual(Array.from(q8In));

    const q4In = Float32Array.from({ length: 32 }, (_, j) => (j % 15) - 7);
    const q4 = quantizeQ4(q4In, [32]);
    expect(q4.length).toBe(8);
    // Elements 0..7 are -7..0, stored + 8 as 1..8: 1..4 in the low nibbles of bytes 0..3, 5..8 in the high ones.
    expect(q4[0]).toBe(0x84736251);
    expect(Array.from(q4.subarray(4))).toEqual([0x3c00, 0, 0, 0]);
    expect(Array.from(dequantize('q4', q4, [32]))).toEqual(Array.from(q4In));

    // Two blocks share a scale word, the first in its low half.
    const two = quantizeQ4(Float32Array.from({ length: 64 }, (_, j) => (j < 32 ? (j % 15) - 7 : 2 * ((j % 15) - 7))), [64]);
    expect(two.length).toBe(12);
    expect(Array.from(two.subarray(8))).toEqual([(0x4000 << 16) | 0x3c00, 0, 0, 0]); // scales 1 and 2
  });

  it('rounds ties up, as Math.round(x / scale), where x · (1 / scale) falls on the other side', () => {
    // Multiples of 1.171875 (an f16 whose reciprocal is inexact) up to 127×, so q8 keeps that absmax scale,
    // and three half-integer multiples: -3.5 and -7.5 times it times the rounded reciprocal fall just below.
    const scale = 1.171875;
    const x = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : ((j * 3) % 255) - 127) * scale);
    x[5] = -3.5 * scale;
    x[9] = -7.5 * scale;
    x[12] = 3.5 * scale;
    expect(Math.floor(x[5] * (1 / scale) + 0.5)).toBe(-4);
    const words = quantizeQ8(x, [32]);
    expect(storedScales('q8', words, 32)[0]).toBe(scale);
    expect([5, 9, 12].map((i) => storedInt('q8', words, i))).toEqual([-3, -7, 4]);
    expectAtMostAbsmaxError('q8', x, words, [32], 0);
  });

  it('uses -8 and -128, with a negative scale when the extreme is positive', () => {
    // -8..7 twice: scale 1 represents it exactly, nibbles 0..15 (absmax / 7 could not).
    const q4In = Float32Array.from({ length: 32 }, (_, j) => (j % 16) - 8);
    const q4 = quantizeQ4(q4In, [32]);
    expect(Array.from(q4)).toEqual([0x73625140, 0xfbead9c8, 0x73625140, 0xfbead9c8, 0x3c00, 0, 0, 0]);
    // The negation: 8 is the extreme, so scale -1 (f16 0xbc00) maps it to nibble 0.
    const negated = q4In.map((v) => -v);
    const q4Negated = quantizeQ4(negated, [32]);
    expect(Array.from(q4Negated)).toEqual([0x73625140, 0xfbead9c8, 0x73625140, 0xfbead9c8, 0xbc00, 0, 0, 0]);
    expect(Array.from(dequantize('q4', q4Negated, [32]))).toEqual(Array.from(negated));

    const q8In = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? 128 : 5 * j - 100));
    const q8 = quantizeQ8(q8In, [32]);
    expect(q8[0] & 0xff).toBe(0); // -128 stored + 128
    expect(q8[8]).toBe(0xbc00);
    // + 0 turns the -0 that 0 times a negative scale decodes to into 0.
    expect(Array.from(dequantize('q8', q8, [32]), (v) => v + 0)).toEqual(Array.from(q8In));
  });

  for (const dtype of DTYPES) {
    it(`${dtype}: each block's squared error is at most the absmax scale's, and the total well below it`, () => {
      const seed = freshSeed();
      const rng = createRng(seed);
      for (const kind of ['gaussian', 'laplace', 'student-t', 'outliers'] as const) {
        const totals = { error: 0, absmaxError: 0 };
        for (const shape of [[37, 19], [5, 83], [3, 130], [1, 1], [64, 64], [96, 100]]) {
          const x = weightLike(rng, shape[0] * shape[1], kind);
          const words = quantize(dtype, x, shape);
          expect(words.length).toBe(quantizedWords(dtype, x.length));
          const blocks = Math.ceil(x.length / 32);
          expect(words.length).toBe(blocks * (dtype === 'q8' ? 8 : 4) + 4 * Math.ceil(blocks / 8));
          const t = expectAtMostAbsmaxError(dtype, x, words, shape, seed);
          totals.error += t.error;
          totals.absmaxError += t.absmaxError;
        }
        if (kind === 'gaussian' || kind === 'laplace') {
          const ratio = totals.error / totals.absmaxError;
          expect(ratio, `${dtype} ${kind}: total squared error over the absmax scale's, seed ${seed}`).toBeLessThan(MAX_ERROR_RATIO[dtype]);
        }
      }
    });

    it(`${dtype}: pads only the last block, with zeros`, () => {
      const x = Float32Array.from({ length: 7 * 19 }, (_, i) => Math.sin(i) + 0.1);
      const words = quantize(dtype, x, [7, 19]);
      expect(words.length).toBe(5 * (dtype === 'q8' ? 8 : 4) + 4); // 133 elements: 4 full blocks and 5 of a 5th
      // Elements 133..159 of the last block are stored as 0.
      for (let i = 133; i < 160; i++) expect(storedInt(dtype, words, i)).toBe(0);
      // A block spans rows: block 0 holds row 0 and the first 13 elements of row 1.
      expectAtMostAbsmaxError(dtype, x, words, [7, 19], 0);
    });

    it(`${dtype}: an all-zero block has scale 0 and decodes to zeros, not NaN`, () => {
      const x = new Float32Array(96);
      x.fill(0.5, 64); // blocks 0 and 1 zero (one of them -0), block 2 not
      x[40] = -0;
      const words = quantize(dtype, x, [96]);
      const scales = storedScales(dtype, words, 96);
      expect([scales[0], scales[1]]).toEqual([0, 0]);
      const deq = dequantize(dtype, words, [96]);
      expect(Array.from(deq.subarray(0, 64))).toEqual(new Array(64).fill(0));
      // A constant block is exact: scale -0.5 / 8 or -0.5 / 128, a power of two.
      expect(Array.from(deq.subarray(64))).toEqual(new Array(32).fill(0.5));
      expectAtMostAbsmaxError(dtype, x, words, [96], 0);
    });

    it(`${dtype}: a tiny block gets a subnormal f16 scale, no worse than the absmax one`, () => {
      const x = Float32Array.from({ length: 32 }, (_, j) => (j - 15.5) * 1e-7);
      const words = quantize(dtype, x, [32]);
      const [scale] = storedScales(dtype, words, 32);
      expect(scale).not.toBe(0);
      expect(Math.abs(scale)).toBeLessThan(2 ** -14); // below the smallest normal f16
      expectAtMostAbsmaxError(dtype, x, words, [32], 0);
    });

    it(`${dtype}: f16 input quantizes exactly as its f32 widening`, () => {
      const seed = freshSeed();
      const bits = toF16(randomNormal(createRng(seed), 5 * 83));
      const fromBits = quantize(dtype, bits, [5, 83]);
      expect(fromBits).toEqual(quantize(dtype, fromF16(bits), [5, 83]));
      expectAtMostAbsmaxError(dtype, fromF16(bits), fromBits, [5, 83], seed);
    });

    it(`${dtype}: refuses a wrong length, non-finite values and absmax scales beyond f16`, () => {
      expect(() => quantize(dtype, new Float32Array(10), [3, 4])).toThrow(ShapeError);
      expect(() => dequantize(dtype, new Uint32Array(3), [3, 4])).toThrow(ShapeError);
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = new Float32Array(40);
        x[35] = bad;
        expect(() => quantize(dtype, x, [40])).toThrow(RangeError);
        expect(() => quantize(dtype, x, [40])).toThrow(/block 1 \(elements 32\.\.39\) holds a non-finite value/);
      }
      // The largest f16 is 65504: the absmax scale of q4 reaches it at absmax 7 × 65504.
      const { max } = QUANT_RANGE[dtype];
      expect(() => quantize(dtype, Float32Array.of(1, max * 65504 * 1.001), [2])).toThrow(/beyond the f16 range/);
      expect(() => quantize(dtype, Float32Array.of(max * 65504), [1])).not.toThrow();
    });
  }

  it('byte sizes: whole blocks, for the tensor helpers too', () => {
    // 5 blocks: their integers, then 3 words of scales padded to 4.
    expect(dataBytes('q8', [7, 19])).toBe(5 * 32 + 16);
    expect(dataBytes('q4', [7, 19])).toBe(5 * 16 + 16);
    expect(dataBytes('q8', [4096, 4096])).toBe(4096 * 128 * 34);
    expect(tensorBytes('q4', [1, 1])).toBe(32);
    expect(tensorBytes('q8', [0])).toBe(4);
    expect(dataBytes('f16', [3])).toBe(6);
    expect(tensorBytes('f16', [3])).toBe(8);
  });
});
