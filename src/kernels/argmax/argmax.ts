/**
 * argmax: out[r] = the index of the largest logit of row r, the lowest index on ties (as torch.argmax), for
 * greedy decoding. One workgroup per row, so a vocabulary of any size (151,936 for Qwen) is one dispatch.
 */
import argmaxWgsl from './argmax.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, type GridFn } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

type Field = 'rows' | 'V';

/** Threads per row; a power of two for the tree reduction. */
const WG = 256;

export const argmaxKernel: KernelSpec<null, Field> = {
  name: 'argmax',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'logits', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', V: 'u32' }),
  shader: { file: 'argmax.wgsl', code: argmaxWgsl },
  constants: () => ({ WG }),
};

export interface ArgmaxArgs {
  /** [maxRows, V] f32. */
  logits: Tensor;
  /** [maxRows] u32 token ids. */
  out: Tensor;
  /** Rows to reduce, ≤ maxRows; defaults to maxRows and can be changed later with `set({ rows })`. */
  rows?: number;
}

function validateArgmax(a: ArgmaxArgs): { maxRows: number; V: number } {
  if (a.logits.shape.length !== 2) throw new ShapeError('argmax', `logits must be 2-D, got [${a.logits.shape}]`);
  const [maxRows, V] = a.logits.shape;
  if (maxRows < 1 || V < 1) throw new ShapeError('argmax', `empty shape [${a.logits.shape}]`);
  expectTensor('argmax', 'logits', a.logits, 'f32', [maxRows, V]);
  expectTensor('argmax', 'out', a.out, 'u32', [maxRows]);
  return { maxRows, V };
}

export async function prepareArgmax(gpu: Gpu, a: ArgmaxArgs): Promise<KernelDispatch<Field>> {
  const { maxRows, V } = validateArgmax(a);
  const grid: GridFn<Field> = (p) => {
    checkRows('argmax', p.rows, maxRows);
    return p.rows;
  };
  const params = { rows: a.rows ?? maxRows, V };
  return KernelDispatch.create(gpu, argmaxKernel, null, params, { logits: a.logits.buffer, out: a.out.buffer }, grid);
}
