/**
 * mask_logits: logits[id] = -Infinity for each id in a list, after the LM head and before argmax, top-k or
 * a readback, so ids the tokenizer cannot decode (Qwen's 267 padded ids past its 151,669 tokens) are never
 * produced whatever their weights say. The list is uploaded once, at load; per token it is one tiny launch.
 */
import maskLogitsWgsl from './mask_logits.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

type Field = 'count' | 'V';

const WG = 64;

export const maskLogitsKernel: KernelSpec<null, Field> = {
  name: 'mask_logits',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'ids', kind: 'read' },
    { name: 'logits', kind: 'storage' },
  ],
  uniforms: defineUniforms({ count: 'u32', V: 'u32' }),
  shader: { file: 'mask_logits.wgsl', code: maskLogitsWgsl },
  constants: () => ({ WG }),
};

export interface MaskLogitsArgs {
  /** f32 [V] or [1, V]: one row of logits, masked in place. */
  logits: Tensor;
  /** u32 [count], count ≥ 1: the ids to mask, each < V (checked by the caller, which knows their values). */
  ids: Tensor;
}

export function validateMaskLogits(a: MaskLogitsArgs): { count: number; V: number } {
  const shape = a.logits.shape;
  if (shape.length !== 1 && !(shape.length === 2 && shape[0] === 1)) {
    throw new ShapeError('mask_logits', `logits must be [V] or [1, V], got [${shape}]`);
  }
  const V = shape[shape.length - 1];
  expectTensor('mask_logits', 'logits', a.logits, 'f32', shape);
  if (a.ids.shape.length !== 1 || a.ids.shape[0] < 1) throw new ShapeError('mask_logits', `ids must be 1-D and not empty, got [${a.ids.shape}]`);
  const [count] = a.ids.shape;
  expectTensor('mask_logits', 'ids', a.ids, 'u32', [count]);
  if (count > V) throw new ShapeError('mask_logits', `${count} ids to mask in a row of ${V} logits`);
  if (a.ids.buffer === a.logits.buffer) throw new ShapeError('mask_logits', 'ids must not alias logits');
  return { count, V };
}

export async function prepareMaskLogits(gpu: Gpu, a: MaskLogitsArgs): Promise<KernelDispatch<Field>> {
  const params = validateMaskLogits(a);
  return KernelDispatch.create(gpu, maskLogitsKernel, null, params, { ids: a.ids.buffer, logits: a.logits.buffer }, (p) => Math.ceil(p.count / WG));
}
