/**
 * How kernels read and write the KV cache. The cache is f32 or f16 ([nKvHeads, maxContext, headDim], 4 head
 * dims per access); f16 is read and written as halves packed in u32 or natively (needs `shader-f16`), the same
 * bytes either way. Kernels see it through `KvUnit`, `kv_load`
 * and `kv_pack` from the prelude.
 */
import kvF32 from './kv_f32.wgsl?raw';
import kvF16Packed from './kv_f16_packed.wgsl?raw';
import kvF16 from './kv_f16.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { ShapeError } from '../../gpu/errors';
import type { ShaderPart } from '../../gpu/pipelines';
import type { Tensor } from '../../gpu/tensor';

/** The dtypes a KV cache may have. */
export type KvDtype = 'f32' | 'f16';
export const KV_DTYPES: readonly KvDtype[] = ['f32', 'f16'];

export type KvFormat = 'f32' | 'f16-packed' | 'f16';

export function kvPrelude(format: KvFormat): ShaderPart {
  switch (format) {
    case 'f32':
      return { file: 'kv_f32.wgsl', code: kvF32 };
    case 'f16-packed':
      return { file: 'kv_f16_packed.wgsl', code: kvF16Packed };
    case 'f16':
      return { file: 'kv_f16.wgsl', code: kvF16 };
  }
}

/**
 * The format to access a cache tensor with: f16 as packed halves unless `prefer` asks for native f16 (which
 * needs shader-f16). Packed is the default everywhere: it reads the same bytes with one unpack per two values,
 * and on Mesa's lavapipe native vec4<f16> loads ran ~100x slower than the packed ones.
 */
export function kvFormat(gpu: Gpu, kernel: string, cache: Tensor, prefer?: KvFormat): KvFormat {
  if (cache.dtype === 'f32') return 'f32';
  if (cache.dtype !== 'f16') throw new ShapeError(kernel, `the KV cache must be f32 or f16, got ${cache.dtype}`);
  if (prefer === 'f16' && !gpu.features.shaderF16) {
    throw new ShapeError(kernel, 'a native f16 KV cache needs the shader-f16 device feature, which is off');
  }
  return prefer === 'f16' ? 'f16' : 'f16-packed';
}
