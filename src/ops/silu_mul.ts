/**
 * silu_mul (SwiGLU): out[r, i] = silu(gate[r, i]) · up[r, i], where each row of `gateUp` is [gate | up] as
 * the fused gate+up projection writes it. `rows` (a prefill chunk's length) is a uniform set per call.
 */
import siluMulWgsl from '../../shaders/silu_mul.wgsl?raw';
import type { Gpu } from '../gpu/device';
import { KernelDispatch, type GridFn } from '../gpu/dispatch';
import { ShapeError } from '../gpu/errors';
import type { KernelSpec } from '../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../gpu/tensor';
import { defineUniforms } from '../gpu/uniforms';

type Field = 'rows' | 'I';

const WG = 256;

export const siluMulKernel: KernelSpec<null, Field> = {
  name: 'silu_mul',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'gateUp', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', I: 'u32' }),
  shader: { file: 'silu_mul.wgsl', code: siluMulWgsl },
  constants: () => ({ WG }),
};

export interface SiluMulArgs {
  /** [maxRows, 2·I] f32: each row is the gate projection, then the up projection. */
  gateUp: Tensor;
  /** [maxRows, I] f32, a different buffer. */
  out: Tensor;
  /** Rows to compute, ≤ maxRows; defaults to maxRows and can be changed later with `set({ rows })`. */
  rows?: number;
}

export function validateSiluMul(a: SiluMulArgs): { maxRows: number; I: number } {
  if (a.gateUp.shape.length !== 2) throw new ShapeError('silu_mul', `gateUp must be 2-D, got [${a.gateUp.shape}]`);
  const [maxRows, twoI] = a.gateUp.shape;
  if (maxRows < 1 || twoI < 2 || twoI % 2 !== 0) {
    throw new ShapeError('silu_mul', `gateUp must be [rows ≥ 1, 2·I ≥ 2] with an even width, got [${a.gateUp.shape}]`);
  }
  const I = twoI / 2;
  expectTensor('silu_mul', 'gateUp', a.gateUp, 'f32', [maxRows, twoI]);
  expectTensor('silu_mul', 'out', a.out, 'f32', [maxRows, I]);
  if (a.out.buffer === a.gateUp.buffer) throw new ShapeError('silu_mul', 'out must not alias gateUp');
  return { maxRows, I };
}

export async function prepareSiluMul(gpu: Gpu, a: SiluMulArgs): Promise<KernelDispatch<Field>> {
  const { maxRows, I } = validateSiluMul(a);
  const grid: GridFn<Field> = (p) => {
    checkRows('silu_mul', p.rows, maxRows);
    return Math.ceil((p.rows * p.I) / WG);
  };
  const params = { rows: a.rows ?? maxRows, I };
  return KernelDispatch.create(gpu, siluMulKernel, null, params, { gateUp: a.gateUp.buffer, out: a.out.buffer }, grid);
}
