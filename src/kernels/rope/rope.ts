/**
 * rope: rotary position embedding applied to the output of the fused QKV projection, writing rotated
 * queries to `q` and K (rotated) / V into the KV cache at positions pos..pos+T−1. With rotaryDim = 0 it is
 * a plain K/V cache write (models without rope). Optionally fuses Qwen3's per-head q_norm / k_norm.
 *
 * cos/sin are not computed in WGSL (its sin/cos are inexact outside [−π, π], and angles reach ~10⁴ rad):
 * `ropeTable` (src/model/rope-table.ts) computes them in f64 once at load, and the kernel reads the f32 table.
 */
import ropeWgsl from './rope.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, placeholderBuffer } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';
import { kvFormat, kvPrelude, KV_DTYPES, type KvFormat } from '../attention/kv-format';

export function checkRotaryDim(rotaryDim: number): void {
  if (!Number.isInteger(rotaryDim) || rotaryDim < 0 || rotaryDim % 2 !== 0) {
    throw new ShapeError('rope', `rotaryDim must be an even non-negative integer, got ${rotaryDim}`);
  }
}

interface RopeKey {
  wg: number;
  qkNorm: boolean;
  kv: KvFormat;
}

type RopeField = 'T' | 'pos' | 'nHeads' | 'nKvHeads' | 'headDim' | 'rotaryDim' | 'maxContext' | 'normEps';

export const ropeKernel: KernelSpec<RopeKey, RopeField> = {
  name: 'rope',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'qkv', kind: 'read' },
    { name: 'table', kind: 'read' },
    { name: 'qNorm', kind: 'read' },
    { name: 'kNorm', kind: 'read' },
    { name: 'q', kind: 'storage' },
    { name: 'kCache', kind: 'storage' },
    { name: 'vCache', kind: 'storage' },
  ],
  uniforms: defineUniforms({
    T: 'u32',
    pos: 'u32',
    nHeads: 'u32',
    nKvHeads: 'u32',
    headDim: 'u32',
    rotaryDim: 'u32',
    maxContext: 'u32',
    normEps: 'f32',
  }),
  shader: { file: 'rope.wgsl', code: ropeWgsl },
  preludes: (key) => [kvPrelude(key.kv)],
  constants: (key) => ({ WG: key.wg, HAS_QK_NORM: Number(key.qkNorm) }),
};

export interface RopeArgs {
  /** [maxT, (nHeads + 2·nKvHeads)·headDim] f32: per token, the query heads, then key heads, then value heads. */
  qkv: Tensor;
  /** [maxT, nHeads, headDim] f32 output: rotated queries. */
  q: Tensor;
  /** [nKvHeads, maxContext, headDim] f32 or f16: rotated keys are written at positions pos..pos+T−1. */
  kCache: Tensor;
  /** [nKvHeads, maxContext, headDim], kCache's dtype: values are copied at positions pos..pos+T−1. */
  vCache: Tensor;
  /** Force how an f16 cache is written (tests cover both paths on a shader-f16 device). */
  kvFormat?: KvFormat;
  /** [≥ maxContext, rotaryDim/2, 2] f32 from `ropeTable`; may be left out when rotaryDim is 0. */
  table?: Tensor;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Leading dims of each head that rotate (even, ≤ headDim); 0 for no rope. */
  rotaryDim: number;
  maxContext: number;
  /** [headDim] f32 per-head RMSNorm weights for queries and keys (Qwen3); both or neither. */
  qNorm?: Tensor;
  kNorm?: Tensor;
  normEps?: number;
  /** Tokens in this call and the position of the first; both settable per call with `set({ T, pos })`. */
  T: number;
  pos: number;
}

function checkSpan(T: number, pos: number, maxT: number, maxContext: number): void {
  if (!Number.isInteger(T) || T < 0 || T > maxT) {
    throw new ShapeError('rope', `T must be an integer in [0, ${maxT}], got ${T}`);
  }
  if (!Number.isInteger(pos) || pos < 0 || pos + T > maxContext) {
    throw new ShapeError('rope', `positions ${pos}..${pos + T - 1} do not fit a context of ${maxContext}`);
  }
}

function validateRope(a: RopeArgs): { maxT: number } {
  const sizes = { nHeads: a.nHeads, nKvHeads: a.nKvHeads, headDim: a.headDim, maxContext: a.maxContext };
  for (const [name, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError('rope', `${name} must be a positive integer, got ${v}`);
  }
  checkRotaryDim(a.rotaryDim);
  const { nHeads, nKvHeads, headDim, rotaryDim, maxContext } = a;
  if (rotaryDim > headDim) throw new ShapeError('rope', `rotaryDim ${rotaryDim} exceeds headDim ${headDim}`);
  if (headDim % 4 !== 0) throw new ShapeError('rope', `headDim ${headDim} must be a multiple of 4 (the cache is written 4 dims at a time)`);
  if (a.qkv.shape.length !== 2) throw new ShapeError('rope', `qkv must be 2-D [T, width], got [${a.qkv.shape}]`);
  const maxT = a.qkv.shape[0];
  expectTensor('rope', 'qkv', a.qkv, 'f32', [maxT, (nHeads + 2 * nKvHeads) * headDim]);
  expectTensor('rope', 'q', a.q, 'f32', [maxT, nHeads, headDim]);
  expectTensor('rope', 'kCache', a.kCache, KV_DTYPES, [nKvHeads, maxContext, headDim]);
  expectTensor('rope', 'vCache', a.vCache, a.kCache.dtype, [nKvHeads, maxContext, headDim]);
  if (rotaryDim > 0) {
    if (!a.table) throw new ShapeError('rope', 'a cos/sin table is needed when rotaryDim > 0');
    const positions = a.table.shape[0];
    if (a.table.shape.length !== 3 || !(positions >= maxContext)) {
      throw new ShapeError('rope', `table must be [≥ ${maxContext}, ${rotaryDim / 2}, 2], got [${a.table.shape}]`);
    }
    expectTensor('rope', 'table', a.table, 'f32', [positions, rotaryDim / 2, 2]);
  }
  if ((a.qNorm === undefined) !== (a.kNorm === undefined)) {
    throw new ShapeError('rope', 'give both qNorm and kNorm, or neither');
  }
  if (a.qNorm && a.kNorm) {
    expectTensor('rope', 'qNorm', a.qNorm, 'f32', [headDim]);
    expectTensor('rope', 'kNorm', a.kNorm, 'f32', [headDim]);
    if (a.normEps === undefined || !(a.normEps >= 0)) {
      throw new ShapeError('rope', `qk-norm needs normEps ≥ 0, got ${a.normEps}`);
    }
  }
  const outputs = [a.q.buffer, a.kCache.buffer, a.vCache.buffer];
  if (new Set([a.qkv.buffer, ...outputs]).size !== 4) {
    throw new ShapeError('rope', 'qkv, q, kCache and vCache must be distinct buffers');
  }
  checkSpan(a.T, a.pos, maxT, maxContext);
  return { maxT };
}

/** Threads per head: one per 4 dims, rounded up to a power of two (for qk-norm's tree), within [32, 256]. */
function workgroupSize(headDim: number): number {
  return Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(headDim / 4))));
}

export async function prepareRope(gpu: Gpu, a: RopeArgs): Promise<KernelDispatch<RopeField>> {
  const { maxT } = validateRope(a);
  const qkNorm = a.qNorm !== undefined;
  const kv = kvFormat(gpu, 'rope', a.kCache, a.kvFormat);
  const key: RopeKey = { wg: workgroupSize(a.headDim), qkNorm, kv };
  const unused = placeholderBuffer(gpu);
  const resources = {
    qkv: a.qkv.buffer,
    table: a.rotaryDim > 0 && a.table ? a.table.buffer : unused,
    qNorm: a.qNorm?.buffer ?? unused,
    kNorm: a.kNorm?.buffer ?? unused,
    q: a.q.buffer,
    kCache: a.kCache.buffer,
    vCache: a.vCache.buffer,
  };
  const params = {
    T: a.T,
    pos: a.pos,
    nHeads: a.nHeads,
    nKvHeads: a.nKvHeads,
    headDim: a.headDim,
    rotaryDim: a.rotaryDim,
    maxContext: a.maxContext,
    normEps: qkNorm ? (a.normEps ?? 0) : 0,
  };
  return KernelDispatch.create(gpu, ropeKernel, key, params, resources, (p) => {
    // set() runs this on every change, so a chunk past the cache's end is refused before any dispatch.
    checkSpan(p.T, p.pos, maxT, a.maxContext);
    return p.T * (p.nHeads + 2 * p.nKvHeads);
  });
}
