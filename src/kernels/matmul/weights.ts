/**
 * How a kernel reads weights. f16 weights are read either as packed u32 pairs (works everywhere) or as
 * native f16 (needs `shader-f16`); both see the same bytes, so the choice is made per device, not per file.
 * q8/q4 weights (quantized at load, src/quant/quantize.ts) are dequantized in registers by `load_w`. Each
 * format has a scalar prelude (`load_w(i)`, any shape) and a vector one (whole steps of W_STEP weights).
 */
import weightsF32 from './weights_f32.wgsl?raw';
import weightsF16Packed from './weights_f16_packed.wgsl?raw';
import weightsF16 from './weights_f16.wgsl?raw';
import weightsQ8 from './weights_q8.wgsl?raw';
import weightsQ4 from './weights_q4.wgsl?raw';
import weightsVecF32 from './weights_vec_f32.wgsl?raw';
import weightsVecF16Packed from './weights_vec_f16_packed.wgsl?raw';
import weightsVecF16 from './weights_vec_f16.wgsl?raw';
import weightsVecQ8 from './weights_vec_q8.wgsl?raw';
import weightsVecQ4 from './weights_vec_q4.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { ShapeError } from '../../gpu/errors';
import type { ShaderPart } from '../../gpu/pipelines';
import type { DType, Tensor } from '../../gpu/tensor';

export type WeightFormat = 'f32' | 'f16-packed' | 'f16' | 'q8' | 'q4';

/** The dtypes a weight tensor may have (for `expectTensor`). */
export const WEIGHT_DTYPES: readonly DType[] = ['f32', 'f16', 'q8', 'q4'];

export function weightPrelude(format: WeightFormat): ShaderPart {
  switch (format) {
    case 'f32':
      return { file: 'weights_f32.wgsl', code: weightsF32 };
    case 'f16-packed':
      return { file: 'weights_f16_packed.wgsl', code: weightsF16Packed };
    case 'f16':
      return { file: 'weights_f16.wgsl', code: weightsF16 };
    case 'q8':
      return { file: 'weights_q8.wgsl', code: weightsQ8 };
    case 'q4':
      return { file: 'weights_q4.wgsl', code: weightsQ4 };
  }
}

/**
 * The vector form of a format's prelude (`load_w_step`, `dot_w_step`): whole steps of weights per load, for
 * kernels whose K is a multiple of `weightStep(format)`.
 */
export function vectorWeightPrelude(format: WeightFormat): ShaderPart {
  switch (format) {
    case 'f32':
      return { file: 'weights_vec_f32.wgsl', code: weightsVecF32 };
    case 'f16-packed':
      return { file: 'weights_vec_f16_packed.wgsl', code: weightsVecF16Packed };
    case 'f16':
      return { file: 'weights_vec_f16.wgsl', code: weightsVecF16 };
    case 'q8':
      return { file: 'weights_vec_q8.wgsl', code: weightsVecQ8 };
    case 'q4':
      return { file: 'weights_vec_q4.wgsl', code: weightsVecQ4 };
  }
}

/** Weights per step of the vector prelude (its W_STEP): one vec4 load, two for native f16 and q8. */
export function weightStep(format: WeightFormat): number {
  return format === 'f32' ? 4 : format === 'f16' || format === 'f16-packed' ? 8 : 32;
}

/**
 * The format to read `w` with: its dtype, except that f16 is read natively when the device has it, unless
 * `prefer` asks for packed (tests use that to cover both paths on one device).
 */
export function weightFormat(gpu: Gpu, kernel: string, w: Tensor, prefer?: WeightFormat): WeightFormat {
  if (w.dtype === 'f32' || w.dtype === 'q8' || w.dtype === 'q4') return w.dtype;
  if (w.dtype !== 'f16') throw new ShapeError(kernel, `weights must be f32, f16, q8 or q4, got ${w.dtype}`);
  if (prefer === 'f16' && !gpu.features.shaderF16) {
    throw new ShapeError(kernel, 'native f16 weights need the shader-f16 device feature, which is off');
  }
  return prefer === 'f16-packed' || !gpu.features.shaderF16 ? 'f16-packed' : 'f16';
}
