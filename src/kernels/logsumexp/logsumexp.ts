/**
 * logsumexp: out[r] = log Σ_j exp(logits[r, j]) over the values above -Infinity (-Infinity for a row with
 * none), the normaliser of log-softmax. With the top-k kernel it serves a logprobs request from a few bytes of
 * readback: each candidate's log-probability is its logit minus this. One workgroup per row.
 */
import logSumExpWgsl from './logsumexp.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, type GridFn } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

type Field = 'rows' | 'V';

/** Threads per row; a power of two for the tree reduction. */
const WG = 256;

export const logSumExpKernel: KernelSpec<null, Field> = {
  name: 'logsumexp',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'logits', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', V: 'u32' }),
  shader: { file: 'logsumexp.wgsl', code: logSumExpWgsl },
  constants: () => ({ WG }),
};

export interface LogSumExpArgs {
  /** [maxRows, V] f32. */
  logits: Tensor;
  /** [maxRows] f32. */
  out: Tensor;
  /** Rows to reduce, ≤ maxRows; defaults to maxRows and can be changed later with `set({ rows })`. */
  rows?: number;
}

function validateLogSumExp(a: LogSumExpArgs): { maxRows: number; V: number } {
  if (a.logits.shape.length !== 2) throw new ShapeError('logsumexp', `logits must be 2-D, got [${a.logits.shape}]`);
  const [maxRows, V] = a.logits.shape;
  if (maxRows < 1 || V < 1) throw new ShapeError('logsumexp', `empty shape [${a.logits.shape}]`);
  expectTensor('logsumexp', 'logits', a.logits, 'f32', [maxRows, V]);
  expectTensor('logsumexp', 'out', a.out, 'f32', [maxRows]);
  if (a.logits.buffer === a.out.buffer) throw new ShapeError('logsumexp', 'logits and out must be distinct buffers');
  return { maxRows, V };
}

export async function prepareLogSumExp(gpu: Gpu, a: LogSumExpArgs): Promise<KernelDispatch<Field>> {
  const { maxRows, V } = validateLogSumExp(a);
  const grid: GridFn<Field> = (p) => {
    checkRows('logsumexp', p.rows, maxRows);
    return p.rows;
  };
  const params = { rows: a.rows ?? maxRows, V };
  return KernelDispatch.create(gpu, logSumExpKernel, null, params, { logits: a.logits.buffer, out: a.out.buffer }, grid);
}
