/**
 * softmax, row-wise and numerically stable (the row maximum is subtracted before exp), over [rows, N].
 * One workgroup per row; `rows` is a uniform set per call.
 */
import softmaxWgsl from '../../shaders/softmax.wgsl?raw';
import type { Gpu } from '../gpu/device';
import { KernelDispatch, type GridFn } from '../gpu/dispatch';
import { ShapeError } from '../gpu/errors';
import type { KernelSpec } from '../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../gpu/tensor';
import { defineUniforms } from '../gpu/uniforms';

type Field = 'rows' | 'N';

/** Threads per row; a power of two for the tree reductions. */
const WG = 256;

export const softmaxKernel: KernelSpec<null, Field> = {
  name: 'softmax',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'x', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', N: 'u32' }),
  shader: { file: 'softmax.wgsl', code: softmaxWgsl },
  constants: () => ({ WG }),
};

export interface SoftmaxArgs {
  /** [maxRows, N] f32. */
  x: Tensor;
  /** [maxRows, N] f32, a different buffer. */
  out: Tensor;
  /** Rows to compute, ≤ maxRows; defaults to maxRows and can be changed later with `set({ rows })`. */
  rows?: number;
}

export function validateSoftmax(a: SoftmaxArgs): { maxRows: number; N: number } {
  if (a.x.shape.length !== 2) throw new ShapeError('softmax', `x must be 2-D, got [${a.x.shape}]`);
  const [maxRows, N] = a.x.shape;
  if (maxRows < 1 || N < 1) throw new ShapeError('softmax', `empty shape [${a.x.shape}]`);
  expectTensor('softmax', 'x', a.x, 'f32', [maxRows, N]);
  expectTensor('softmax', 'out', a.out, 'f32', [maxRows, N]);
  if (a.out.buffer === a.x.buffer) throw new ShapeError('softmax', 'out must not alias x');
  return { maxRows, N };
}

export async function prepareSoftmax(gpu: Gpu, a: SoftmaxArgs): Promise<KernelDispatch<Field>> {
  const { maxRows, N } = validateSoftmax(a);
  const grid: GridFn<Field> = (p) => {
    checkRows('softmax', p.rows, maxRows);
    return p.rows;
  };
  const params = { rows: a.rows ?? maxRows, N };
  return KernelDispatch.create(gpu, softmaxKernel, null, params, { x: a.x.buffer, out: a.out.buffer }, grid);
}
