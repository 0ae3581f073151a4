/**
 * The q8/q4 quantizer on the CPU: the bit layout the shaders read, the per-block error bound, zero and
 * tiny blocks, f16 input, tensors whose size is not a multiple of the block, and refused inputs.
 */
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/gpu/errors';
import { fromF16, toF16 } from '../../src/gpu/f16';
import { dataBytes, tensorBytes } from '../../src/gpu/tensor';
import {
  QUANT_BLOCK,
  QUANT_LEVELS,
  blockScales,
  dequantize,
  quantize,
  quantizeQ4,
  quantizeQ8,
  quantizedWords,
  type QuantDType,
} from '../../src/quant/quantize';
import { createRng, randomNormal } from '../../src/selftest/random';
import { freshSeed } from '../gpu';

const DTYPES: QuantDType[] = ['q8', 'q4'];

/** The integer of element i, decoded independently of `dequantize` (straight from the documented layout). */
function storedInt(dtype: QuantDType, words: Uint32Array, i: number): number {
  const b = Math.floor(i / 32);
  const j = i % 32;
  if (dtype === 'q8') {
    const byte = (words[b * 9 + Math.floor(j / 4)] >>> (8 * (j % 4))) & 0xff;
    return byte >= 128 ? byte - 256 : byte;
  }
  return ((words[b * 5 + Math.floor(j / 8)] >>> (4 * (j % 8))) & 0xf) - 8;
}

function expectWithinHalfStep(dtype: QuantDType, x: ArrayLike<number>, words: Uint32Array, shape: number[], seed: number): void {
  const deq = dequantize(dtype, words, shape);
  const scales = blockScales(dtype, words);
  for (let i = 0; i < x.length; i++) {
    const scale = scales[Math.floor(i / QUANT_BLOCK)];
    const q = storedInt(dtype, words, i);
    expect(Math.abs(q), `${dtype} element ${i}, seed ${seed}`).toBeLessThanOrEqual(QUANT_LEVELS[dtype]);
    expect(deq[i], `${dtype} element ${i}, seed ${seed}`).toBe(q * scale);
    // The bound is exact math on exactly representable values; allow only the f64 rounding of the difference.
    expect(Math.abs(x[i] - deq[i]), `${dtype} element ${i} = ${x[i]}, scale ${scale}, seed ${seed}`).toBeLessThanOrEqual(scale / 2 + 1e-12 * scale);
  }
}

describe('quantize', () => {
  it('lays a block out as the shaders read it', () => {
    // absmax 127 → q8 scale exactly 1; absmax 7 → q4 scale exactly 1.
    const q8In = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? -127 : j === 1 ? 127 : j - 16));
    const q8 = quantizeQ8(q8In, [32]);
    expect(q8.length).toBe(9);
    expect(q8[0]).toBe(((0x81 | (0x7f << 8) | (0xf2 << 16) | (0xf3 << 24)) >>> 0)); // -127, 127, -14, -13
    expect(q8[8]).toBe(0x3c00); // f16 1.0, high half zero
    expect(Array.from(dequantize('q8', q8, [32]))).toEqual(Array.from(q8In));

    const q4In = Float32Array.from({ length: 32 }, (_, j) => (j % 15) - 7);
    const q4 = quantizeQ4(q4In, [32]);
    expect(q4.length).toBe(5);
    // Elements 0..7 are -7..0, stored +8: nibbles 1..8, low nibble first.
    expect(q4[0]).toBe(0x87654321);
    expect(q4[4]).toBe(0x3c00);
    expect(Array.from(dequantize('q4', q4, [32]))).toEqual(Array.from(q4In));
  });

  for (const dtype of DTYPES) {
    it(`${dtype}: every element within half a step of its block's scale, K not a multiple of 32`, () => {
      const seed = freshSeed();
      const rng = createRng(seed);
      for (const shape of [[37, 19], [5, 83], [3, 130], [1, 1], [64, 64]]) {
        const x = randomNormal(rng, shape[0] * shape[1], 0.05);
        // Outliers make some blocks' scales large and others' small.
        for (let i = 0; i < x.length; i += 97) x[i] *= 20;
        const words = quantize(dtype, x, shape);
        expect(words.length).toBe(quantizedWords(dtype, x.length));
        expect(words.length).toBe(Math.ceil(x.length / 32) * (dtype === 'q8' ? 9 : 5));
        expectWithinHalfStep(dtype, x, words, shape, seed);
        // The block's largest magnitude sets the scale: it maps to ±levels (within the f16 round-up).
        const scales = blockScales(dtype, words);
        for (let b = 0; b < scales.length; b++) {
          let absmax = 0;
          for (let i = b * 32; i < Math.min(x.length, b * 32 + 32); i++) absmax = Math.max(absmax, Math.abs(x[i]));
          expect(scales[b]).toBeGreaterThanOrEqual(absmax / QUANT_LEVELS[dtype]);
          expect(scales[b]).toBeLessThanOrEqual((absmax / QUANT_LEVELS[dtype]) * (1 + 2 ** -10));
        }
      }
    });

    it(`${dtype}: pads only the last block, with zeros`, () => {
      const x = Float32Array.from({ length: 7 * 19 }, (_, i) => Math.sin(i) + 0.1);
      const words = quantize(dtype, x, [7, 19]);
      expect(words.length).toBe(5 * (dtype === 'q8' ? 9 : 5)); // 133 elements: 4 full blocks and 5 of a 5th
      // Elements 133..159 of the last block are stored as 0.
      for (let i = 133; i < 160; i++) expect(storedInt(dtype, words, i)).toBe(0);
      // A block spans rows: block 0 holds row 0 and the first 13 elements of row 1.
      expectWithinHalfStep(dtype, x, words, [7, 19], 0);
    });

    it(`${dtype}: an all-zero block has scale 0 and decodes to zeros, not NaN`, () => {
      const x = new Float32Array(96);
      x.fill(0.5, 64); // blocks 0 and 1 zero (one of them -0), block 2 not
      x[40] = -0;
      const words = quantize(dtype, x, [96]);
      const scales = blockScales(dtype, words);
      expect([scales[0], scales[1]]).toEqual([0, 0]);
      expect(scales[2]).toBeGreaterThan(0);
      const deq = dequantize(dtype, words, [96]);
      expect(Array.from(deq.subarray(0, 64))).toEqual(new Array(64).fill(0));
      expectWithinHalfStep(dtype, x, words, [96], 0);
    });

    it(`${dtype}: a tiny block gets a subnormal f16 scale that still bounds its error`, () => {
      const x = Float32Array.from({ length: 32 }, (_, j) => (j - 15.5) * 1e-7);
      const words = quantize(dtype, x, [32]);
      const [scale] = blockScales(dtype, words);
      expect(scale).toBeGreaterThan(0);
      expect(scale).toBeLessThan(2 ** -14); // below the smallest normal f16
      expectWithinHalfStep(dtype, x, words, [32], 0);
    });

    it(`${dtype}: f16 input quantizes exactly as its f32 widening`, () => {
      const seed = freshSeed();
      const bits = toF16(randomNormal(createRng(seed), 5 * 83));
      const fromBits = quantize(dtype, bits, [5, 83]);
      expect(fromBits).toEqual(quantize(dtype, fromF16(bits), [5, 83]));
      expectWithinHalfStep(dtype, fromF16(bits), fromBits, [5, 83], seed);
    });

    it(`${dtype}: refuses a wrong length, non-finite values and scales beyond f16`, () => {
      expect(() => quantize(dtype, new Float32Array(10), [3, 4])).toThrow(ShapeError);
      expect(() => dequantize(dtype, new Uint32Array(3), [3, 4])).toThrow(ShapeError);
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = new Float32Array(40);
        x[35] = bad;
        expect(() => quantize(dtype, x, [40])).toThrow(/block 1 \(elements 32\.\.39\) holds a non-finite value/);
      }
      // The largest f16 is 65504: q4 reaches it at absmax 7 × 65504.
      expect(() => quantize(dtype, Float32Array.of(1, QUANT_LEVELS[dtype] * 65504 * 1.001), [2])).toThrow(/beyond the f16 range/);
      expect(() => quantize(dtype, Float32Array.of(QUANT_LEVELS[dtype] * 65504), [1])).not.toThrow();
    });
  }

  it('byte sizes: whole blocks, for the tensor helpers too', () => {
    expect(dataBytes('q8', [7, 19])).toBe(5 * 36);
    expect(dataBytes('q4', [7, 19])).toBe(5 * 20);
    expect(dataBytes('q8', [4096, 4096])).toBe(4096 * 128 * 36);
    expect(tensorBytes('q4', [1, 1])).toBe(20);
    expect(tensorBytes('q8', [0])).toBe(4);
    expect(dataBytes('f16', [3])).toBe(6);
    expect(tensorBytes('f16', [3])).toBe(8);
  });
});
