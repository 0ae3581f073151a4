/**
 * norm: row-wise RMSNorm or LayerNorm of x[rows, D] into out[rows, D] with f32 weight (and bias for
 * LayerNorm). One shader; the variant is an override constant. `rows` is a uniform, so one prepared
 * dispatch serves every prefill chunk up to the buffers' row count.
 */
import normWgsl from './norm.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, placeholderBuffer } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

export type NormKind = 'rms' | 'layer';

interface NormKey {
  wg: number;
  kind: NormKind;
  hasBias: boolean;
  accumulate: boolean;
}

type NormField = 'rows' | 'D' | 'eps';

/** Threads per row: D rounded up to a power of two, within [32, 256] (every device allows 256); rows loop. */
function workgroupSize(D: number): number {
  return Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(D))));
}

export const normKernel: KernelSpec<NormKey, NormField> = {
  name: 'norm',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'x', kind: 'read' },
    { name: 'weight', kind: 'read' },
    { name: 'bias', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', D: 'u32', eps: 'f32' }),
  shader: { file: 'norm.wgsl', code: normWgsl },
  constants: (key) => ({ WG: key.wg, LAYER: Number(key.kind === 'layer'), HAS_BIAS: Number(key.hasBias), ACCUMULATE: Number(key.accumulate) }),
};

export interface NormArgs {
  /** [maxRows, D] f32 input. */
  x: Tensor;
  /** [maxRows, D] f32 output; must not alias x. */
  out: Tensor;
  /** [D] f32 (norm weights are kept in f32 on the GPU whatever the checkpoint's dtype). */
  weight: Tensor;
  /** [D] f32, LayerNorm only, optional. */
  bias?: Tensor;
  kind: NormKind;
  eps: number;
  /** Rows to normalise, ≤ maxRows; defaults to maxRows and can be changed per call with `set({ rows })`. */
  rows?: number;
  /** Add the normalised rows to `out` (a residual stream) instead of writing them. */
  accumulate?: boolean;
}

function validateNorm(a: NormArgs): { maxRows: number; D: number; rows: number } {
  if (a.x.shape.length !== 2) throw new ShapeError('norm', `x must be 2-D [rows, D], got [${a.x.shape}]`);
  const [maxRows, D] = a.x.shape;
  if (maxRows < 1 || D < 1) throw new ShapeError('norm', `empty shape rows=${maxRows} D=${D}`);
  expectTensor('norm', 'x', a.x, 'f32', [maxRows, D]);
  expectTensor('norm', 'out', a.out, 'f32', [maxRows, D]);
  expectTensor('norm', 'weight', a.weight, 'f32', [D]);
  if (a.bias) {
    if (a.kind !== 'layer') throw new ShapeError('norm', 'a bias is only used by layer norm');
    expectTensor('norm', 'bias', a.bias, 'f32', [D]);
  }
  if (a.out.buffer === a.x.buffer) throw new ShapeError('norm', 'out must not alias x');
  if (!(a.eps >= 0)) throw new ShapeError('norm', `eps must be a non-negative number, got ${a.eps}`);
  const rows = a.rows ?? maxRows;
  checkRows('norm', rows, maxRows);
  return { maxRows, D, rows };
}

export async function prepareNorm(gpu: Gpu, a: NormArgs): Promise<KernelDispatch<NormField>> {
  const { maxRows, D, rows } = validateNorm(a);
  const key: NormKey = { wg: workgroupSize(D), kind: a.kind, hasBias: a.bias !== undefined, accumulate: a.accumulate ?? false };
  const resources = {
    x: a.x.buffer,
    weight: a.weight.buffer,
    bias: a.bias?.buffer ?? placeholderBuffer(gpu),
    out: a.out.buffer,
  };
  return KernelDispatch.create(gpu, normKernel, key, { rows, D, eps: a.eps }, resources, (p) => {
    // set() runs this on every change, so a chunk larger than the buffers is refused before any dispatch.
    checkRows('norm', p.rows, maxRows);
    return p.rows;
  });
}
