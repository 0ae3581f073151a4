/**
 * attention: fused causal attention with online softmax and grouped-query heads. Query rows t = 0..T-1 sit
 * at positions pos..pos+T-1 and row t attends to cache positions 0..pos+t; the T×context scores stay in
 * workgroup memory. Query head h reads kv head floor(h / (nHeads / nKvHeads)).
 *
 * Layouts (all f32, row-major):
 * - q, out: [maxT, nHeads, headDim]; row t, head h starts at (t·nHeads + h)·headDim.
 * - kCache, vCache: [nKvHeads, maxContext, headDim]; element (kvh, p, d) is at
 *   (kvh·maxContext + p)·headDim + d, so a kv head's keys are one contiguous run of positions. The kernel
 *   that appends K/V (rope) writes exactly this layout.
 */
import attentionWgsl from './attention.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

/** The shader stages the query row and accumulators in fixed workgroup arrays of this size. */
export const MAX_HEAD_DIM = 256;
const WG = 64;

export type AttentionParam = 'T' | 'pos' | 'nHeads' | 'nKvHeads' | 'headDim' | 'maxContext' | 'scale';

const uniforms = defineUniforms({
  T: 'u32',
  pos: 'u32',
  nHeads: 'u32',
  nKvHeads: 'u32',
  headDim: 'u32',
  maxContext: 'u32',
  scale: 'f32',
});

export const attentionKernel: KernelSpec<Record<string, never>, AttentionParam> = {
  name: 'attention',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'q', kind: 'read' },
    { name: 'kCache', kind: 'read' },
    { name: 'vCache', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms,
  shader: { file: 'attention.wgsl', code: attentionWgsl },
  constants: () => ({ WG }),
};

export interface AttentionArgs {
  /** [maxT, nHeads, headDim] f32 queries (after rope). */
  q: Tensor;
  /** [nKvHeads, maxContext, headDim] f32; positions 0..pos+T-1 must be filled. */
  kCache: Tensor;
  /** [nKvHeads, maxContext, headDim] f32, same layout as kCache. */
  vCache: Tensor;
  /** [maxT, nHeads, headDim] f32; rows T.. are left untouched. */
  out: Tensor;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  maxContext: number;
  /** Rows in this call; changeable later with `dispatch.set({ T, pos })`. */
  T: number;
  /** Position of row 0, i.e. how many tokens the cache held before this call. */
  pos: number;
  /** Score scale; defaults to 1/√headDim. */
  scale?: number;
}

/**
 * Throws ShapeError unless a call with T rows at position pos fits: 1 ≤ T ≤ maxT (the q rows) and
 * pos + T ≤ maxContext. Callers check with it before `dispatch.set({ T, pos })`, which does not validate.
 */
export function validateAttentionStep(maxT: number, maxContext: number, T: number, pos: number): void {
  if (!Number.isInteger(T) || T < 1 || T > maxT) {
    throw new ShapeError('attention', `T=${T} rows must be an integer in 1..${maxT} (the rows of q)`);
  }
  if (!Number.isInteger(pos) || pos < 0 || pos + T > maxContext) {
    throw new ShapeError('attention', `pos=${pos} with T=${T} runs past the cache: pos + T must be ≤ maxContext=${maxContext}`);
  }
}

function validateAttention(a: AttentionArgs): Record<AttentionParam, number> {
  const { nHeads, nKvHeads, headDim, maxContext } = a;
  for (const [name, v] of Object.entries({ nHeads, nKvHeads, headDim, maxContext })) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError('attention', `${name}=${v} must be a positive integer`);
  }
  if (headDim > MAX_HEAD_DIM) throw new ShapeError('attention', `headDim=${headDim} is over the supported ${MAX_HEAD_DIM}`);
  if (nHeads % nKvHeads !== 0) {
    throw new ShapeError('attention', `nHeads=${nHeads} is not a multiple of nKvHeads=${nKvHeads}`);
  }
  if (a.q.shape.length !== 3) throw new ShapeError('attention', `q must be [maxT, nHeads, headDim], got [${a.q.shape}]`);
  const maxT = a.q.shape[0];
  expectTensor('attention', 'q', a.q, 'f32', [maxT, nHeads, headDim]);
  expectTensor('attention', 'out', a.out, 'f32', [maxT, nHeads, headDim]);
  expectTensor('attention', 'kCache', a.kCache, 'f32', [nKvHeads, maxContext, headDim]);
  expectTensor('attention', 'vCache', a.vCache, 'f32', [nKvHeads, maxContext, headDim]);
  if ([a.q, a.kCache, a.vCache].some((t) => t.buffer === a.out.buffer)) {
    throw new ShapeError('attention', 'out must not alias q, kCache or vCache');
  }
  validateAttentionStep(maxT, maxContext, a.T, a.pos);
  const scale = a.scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(scale)) throw new ShapeError('attention', `scale=${scale} must be finite`);
  return { T: a.T, pos: a.pos, nHeads, nKvHeads, headDim, maxContext, scale };
}

export async function prepareAttention(gpu: Gpu, a: AttentionArgs): Promise<KernelDispatch<AttentionParam>> {
  const params = validateAttention(a);
  const resources = { q: a.q.buffer, kCache: a.kCache.buffer, vCache: a.vCache.buffer, out: a.out.buffer };
  return KernelDispatch.create(gpu, attentionKernel, {}, params, resources, (p) => p.T * p.nHeads);
}
