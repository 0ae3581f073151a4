/**
 * add: out = a + b, element-wise over [rows, D] (e.g. a residual add where the matmul epilogue cannot do
 * it). `rows` (a prefill chunk's length) is a uniform set per call.
 */
import addWgsl from '../../shaders/add.wgsl?raw';
import type { Gpu } from '../gpu/device';
import { KernelDispatch, type GridFn } from '../gpu/dispatch';
import { ShapeError } from '../gpu/errors';
import type { KernelSpec } from '../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../gpu/tensor';
import { defineUniforms } from '../gpu/uniforms';

type Field = 'rows' | 'D';

const WG = 256;

export const addKernel: KernelSpec<null, Field> = {
  name: 'add',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'a', kind: 'read' },
    { name: 'b', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', D: 'u32' }),
  shader: { file: 'add.wgsl', code: addWgsl },
  constants: () => ({ WG }),
};

export interface AddArgs {
  /** [maxRows, D] f32. */
  a: Tensor;
  /** [maxRows, D] f32. */
  b: Tensor;
  /** [maxRows, D] f32; must not alias a or b (a buffer cannot be bound read-only and writable at once). */
  out: Tensor;
  /** Rows to compute, ≤ maxRows; defaults to maxRows and can be changed later with `set({ rows })`. */
  rows?: number;
}

export function validateAdd(a: AddArgs): { maxRows: number; D: number } {
  if (a.a.shape.length !== 2) throw new ShapeError('add', `a must be 2-D, got [${a.a.shape}]`);
  const [maxRows, D] = a.a.shape;
  if (maxRows < 1 || D < 1) throw new ShapeError('add', `empty shape [${a.a.shape}]`);
  expectTensor('add', 'a', a.a, 'f32', [maxRows, D]);
  expectTensor('add', 'b', a.b, 'f32', [maxRows, D]);
  expectTensor('add', 'out', a.out, 'f32', [maxRows, D]);
  if (a.out.buffer === a.a.buffer || a.out.buffer === a.b.buffer) throw new ShapeError('add', 'out must not alias a or b');
  return { maxRows, D };
}

export async function prepareAdd(gpu: Gpu, a: AddArgs): Promise<KernelDispatch<Field>> {
  const { maxRows, D } = validateAdd(a);
  const grid: GridFn<Field> = (p) => {
    checkRows('add', p.rows, maxRows);
    return Math.ceil((p.rows * p.D) / WG);
  };
  const params = { rows: a.rows ?? maxRows, D };
  return KernelDispatch.create(gpu, addKernel, null, params, { a: a.a.buffer, b: a.b.buffer, out: a.out.buffer }, grid);
}
