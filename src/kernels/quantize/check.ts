/**
 * Checks the quantize kernel against the CPU quantizer, block by block: a tensor of f16 values goes through
 * the kernel in slices (as the load streams it) into a poisoned buffer, and every block must either hold
 * exactly the CPU's words or meet the CPU's rule (squared error at most the absmax scale's).
 */
import type { Gpu } from '../../gpu/device';
import { f16BitsToF32, f32ToF16Bits } from '../../gpu/f16';
import { readBuffer } from '../../gpu/tensor';
import { dequantize, QUANT_INT_WORDS, quantizedWords, type QuantDType } from '../../quant/quantize';
import { check, type CheckResult } from '../../selftest/compare';
import { poisoned } from '../../selftest/harness';
import { createRng, type Rng } from '../../util/random';
import { createQuantizeStatus, QuantizeDispatch, quantizeFailure } from './quantize';
import { absmaxBlockErrors, blockErrors, quantizeRef } from './reference';

/** Kinds of block: weight-like values, and the adversarial ones the quantizer must survive. */
export type QuantizeValues = 'gaussian' | 'adversarial';

export interface QuantizeCase {
  dtype: QuantDType;
  count: number;
  /** Elements per launch, a multiple of 64. */
  slice: number;
  values: QuantizeValues;
}

export interface QuantizeCheck extends CheckResult {
  blocks: number;
  /** Blocks whose words equal the CPU quantizer's. */
  identical: number;
  /** Blocks over the absmax scale's squared error (must be 0). */
  overBound: number;
}

/**
 * Blocks that differ took another of two nearly tied candidates, each within the rule; q4 rounding error
 * alone is ~1e-2 of the values, so a wrong scale or integer anywhere shows far above this.
 */
const TOLERANCE = 1e-3;

const MAX_HALF = 0x7bff; // 65504

/** Normal-ish f16 weights (σ 0.02, as trained matrices), as raw halves. */
function gaussianHalves(rng: Rng, n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(rng.normal() * 0.02);
  return out;
}

/**
 * Blocks of 32 built to be hard: all zeros, one outlier among small values, ±65504, only subnormals,
 * subnormals beside large values, a constant, and values on exact rounding ties of the trials (k/16 or
 * k/256 of an extreme with a short mantissa, which scale to half-integers at t = 8 or 128).
 */
function adversarialHalves(rng: Rng, n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let b = 0; b * 32 < n; b++) {
    const kind = rng.int(8);
    const extreme = ((5 + rng.int(20)) << 10) | [0, 256, 512, 768][rng.int(4)];
    const constant = (rng.next() < 0.5 ? 0x8000 : 0) | (1 + rng.int(MAX_HALF));
    const end = Math.min(n, 32 * b + 32);
    for (let i = 32 * b; i < end; i++) {
      const sign = rng.next() < 0.5 ? 0x8000 : 0;
      if (kind === 0) out[i] = 0;
      else if (kind === 1) out[i] = i % 32 === 7 ? sign | 0x5800 : f32ToF16Bits(rng.normal() * 1e-3);
      else if (kind === 2) out[i] = rng.next() < 0.3 ? sign | MAX_HALF : f32ToF16Bits(rng.normal() * 1000);
      else if (kind === 3) out[i] = sign | rng.int(1024);
      else if (kind === 4) out[i] = sign | (rng.next() < 0.2 ? 0x7000 + rng.int(0xbff) : rng.int(1024));
      else if (kind === 5) out[i] = constant;
      else {
        const steps = kind === 6 ? 16 : 256;
        out[i] = sign | f32ToF16Bits((f16BitsToF32(extreme) * rng.int(steps + 1)) / steps);
      }
    }
    if (kind >= 6) out[32 * b + rng.int(end - 32 * b)] = (rng.next() < 0.5 ? 0x8000 : 0) | extreme;
  }
  return out;
}

export function quantizeInputs(rng: Rng, c: QuantizeCase): Uint16Array {
  return c.values === 'gaussian' ? gaussianHalves(rng, c.count) : adversarialHalves(rng, c.count);
}

export async function checkQuantize(gpu: Gpu, c: QuantizeCase, seed: number): Promise<QuantizeCheck> {
  const rng = createRng(seed);
  const halves = quantizeInputs(rng, c);
  const out = await poisoned(gpu, 'quantized', [c.count], c.dtype);
  const input = gpu.device.createBuffer({ label: 'quantize input', size: Math.ceil(c.slice / 2) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const status = await createQuantizeStatus(gpu);
  const op = await QuantizeDispatch.create(gpu, { input, out, status, slot: 3 });
  for (let offset = 0; offset < c.count; offset += c.slice) {
    const length = Math.min(c.slice, c.count - offset);
    const words = new Uint32Array(Math.ceil(length / 2));
    new Uint16Array(words.buffer).set(halves.subarray(offset, offset + length));
    gpu.device.queue.writeBuffer(input, 0, words);
    op.run(offset, length);
  }
  const actual = new Uint32Array(await readBuffer(gpu, out.buffer, quantizedWords(c.dtype, c.count) * 4));
  const failure = quantizeFailure(new Uint32Array(await readBuffer(gpu, status)));
  op.dispose();
  for (const b of [out.buffer, input, status]) b.destroy();

  const x = Float32Array.from(halves, f16BitsToF32);
  const expected = quantizeRef(c.dtype, halves, [c.count]);
  // The words the kernel writes: every block's integers and the scale words in use (the padding stays).
  const blocks = Math.ceil(c.count / 32);
  const used = blocks * QUANT_INT_WORDS[c.dtype] + Math.ceil(blocks / 2);
  const scaleBase = blocks * QUANT_INT_WORDS[c.dtype];
  actual.set(expected.subarray(used), used);
  const errors = blockErrors(c.dtype, x, actual);
  const bounds = absmaxBlockErrors(c.dtype, x);
  let identical = 0;
  let overBound = 0;
  const intWords = QUANT_INT_WORDS[c.dtype];
  for (let b = 0; b < blocks; b++) {
    const scaleOf = (w: Uint32Array) => (w[scaleBase + (b >> 1)] >>> ((b & 1) * 16)) & 0xffff;
    let same = scaleOf(actual) === scaleOf(expected);
    for (let w = b * intWords; same && w < (b + 1) * intWords; w++) same = actual[w] === expected[w];
    if (same) identical++;
    else if (!(errors[b] <= bounds[b])) overBound++;
  }
  const name = `quantize ${c.dtype} ${c.values} ${c.count} in slices of ${c.slice} (${identical}/${blocks} blocks identical, ${overBound} over the absmax bound${failure === undefined ? '' : ', reported non-finite'})`;
  const result = check(name, seed, TOLERANCE, dequantize(c.dtype, actual, [c.count]), dequantize(c.dtype, expected, [c.count]));
  const passed = result.passed && overBound === 0 && failure === undefined;
  return { ...result, passed, blocks, identical, overBound };
}
