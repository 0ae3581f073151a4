/**
 * gelu: the tanh approximation GPT-2 uses ("gelu_new"), or the exact erf form BERT uses, element-wise over
 * [rows, D]; gated (GeGLU, Gemma), gelu(gate)·up from input rows [gate | up] of width 2·D. `rows` (a prefill
 * chunk's length) is a uniform set per call.
 */
import geluWgsl from './gelu.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, type GridFn } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

type Field = 'rows' | 'D';

const WG = 256;

interface GeluKey {
  gated: boolean;
  erf: boolean;
}

export const geluKernel: KernelSpec<GeluKey, Field> = {
  name: 'gelu',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'x', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', D: 'u32' }),
  shader: { file: 'gelu.wgsl', code: geluWgsl },
  constants: (key) => ({ WG, GATED: Number(key.gated), ERF: Number(key.erf) }),
};

export interface GeluArgs {
  /** [maxRows, D] f32, or [maxRows, 2·D] (gate, then up) when gated. */
  x: Tensor;
  /** [maxRows, D] f32, a different buffer. */
  out: Tensor;
  /** Rows to compute, ≤ maxRows; defaults to maxRows and can be changed later with `set({ rows })`. */
  rows?: number;
  /** GeGLU: out = gelu(gate)·up. */
  gated?: boolean;
  /** The exact form x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (BERT's "gelu") instead of the tanh approximation. */
  erf?: boolean;
}

function validateGelu(a: GeluArgs): { maxRows: number; D: number } {
  if (a.out.shape.length !== 2) throw new ShapeError('gelu', `out must be 2-D, got [${a.out.shape}]`);
  const [maxRows, D] = a.out.shape;
  if (maxRows < 1 || D < 1) throw new ShapeError('gelu', `empty shape [${a.out.shape}]`);
  expectTensor('gelu', 'x', a.x, 'f32', [maxRows, a.gated ? 2 * D : D]);
  expectTensor('gelu', 'out', a.out, 'f32', [maxRows, D]);
  if (a.out.buffer === a.x.buffer) throw new ShapeError('gelu', 'out must not alias x');
  return { maxRows, D };
}

export async function prepareGelu(gpu: Gpu, a: GeluArgs): Promise<KernelDispatch<Field>> {
  const { maxRows, D } = validateGelu(a);
  const grid: GridFn<Field> = (p) => {
    checkRows('gelu', p.rows, maxRows);
    return Math.ceil((p.rows * p.D) / WG);
  };
  const params = { rows: a.rows ?? maxRows, D };
  return KernelDispatch.create(gpu, geluKernel, { gated: a.gated ?? false, erf: a.erf ?? false }, params, { x: a.x.buffer, out: a.out.buffer }, grid);
}
