/**
 * CPU reference for the quantize kernel: the CPU quantizer itself, and the quality rule both meet, each
 * block's squared error at most that of the absmax scale (absmax / 127 or / 7, rounded up to f16), in f64.
 */
import { f16BitsToF32, f32ToF16Bits } from '../../gpu/f16';
import { blockScales, QUANT_RANGE, storedInt, type QuantDType } from '../../quant/quantize';

export { quantize as quantizeRef } from '../../quant/quantize';

/** Σ (x − q·scale)² of each block of a tensor of x.length elements, from its quantized words. */
export function blockErrors(dtype: QuantDType, x: ArrayLike<number>, words: Uint32Array): Float64Array {
  const scales = blockScales(dtype, words, x.length);
  const out = new Float64Array(scales.length);
  for (let i = 0; i < x.length; i++) {
    const difference = x[i] - storedInt(dtype, words, i) * scales[i >> 5];
    out[i >> 5] += difference * difference;
  }
  return out;
}

/** Each block's squared error with the absmax scale, the bound every block must meet. */
export function absmaxBlockErrors(dtype: QuantDType, x: ArrayLike<number>): Float64Array {
  const { max } = QUANT_RANGE[dtype];
  const out = new Float64Array(Math.ceil(x.length / 32));
  for (let b = 0; b < out.length; b++) {
    const end = Math.min(x.length, 32 * b + 32);
    let absmax = 0;
    for (let i = 32 * b; i < end; i++) absmax = Math.max(absmax, Math.abs(x[i]));
    let bits = f32ToF16Bits(absmax / max);
    if (f16BitsToF32(bits) < absmax / max) bits++;
    const scale = f16BitsToF32(bits);
    for (let i = 32 * b; i < end; i++) {
      const difference = scale === 0 ? x[i] : x[i] - Math.round(x[i] / scale) * scale;
      out[b] += difference * difference;
    }
  }
  return out;
}
