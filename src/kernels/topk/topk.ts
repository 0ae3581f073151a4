/**
 * top-k: the k largest logits of one row (V up to 262,144), best first, ties to the lower index, so the
 * result equals a stable sort by (-value, index) cut after k. NaN ranks above +Infinity, so the first value
 * is finite exactly when the row holds no NaN or +Infinity and at least one finite value: a non-finite
 * values[0] flags logits the sampler cannot use. 1 ≤ k ≤ 256 and k ≤ V (a larger k is a ShapeError, not
 * clamped: for sampling, top_k ≥ V disables the stage, so the caller has nothing to select).
 *
 * How the engine would use it: encode it after the lm_head matmul, in the same pass, and copy back only
 * values and indices (8·k bytes, ~2 KB, instead of 4·V: ~600 KB for V = 151,936). Sampling with top_k > 0
 * is then exact on those candidates alone when nothing before top-k in the processor order reorders the
 * logits: temperature (a positive scale) does not, but logit_bias and the repetition/frequency/presence
 * penalties move single tokens up or down, so those requests still read the full row. Two details keep
 * it exact: prepare with capacity top_k + 1 and read the full row when value[k] ties value[k-1] after
 * temperature (the CPU top-k keeps every token tied with the k-th, which may be more than the
 * candidates); and give the sampler the candidates in index order (sort the ids), so that its cumulative
 * walk sees the same order and sums as over the full row with -Infinity elsewhere.
 *
 * Two dispatches of topk.wgsl: stage 1 keeps the best k of each 4096-logit block in a scratch
 * buffer [blocks, capacity, 2] (allocated at prepare), stage 2 merges those lists in one workgroup.
 */
import topkWgsl from './topk.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { createTensor, expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

type Field = 'V' | 'K';

interface TopKKey {
  merge: boolean;
}

/** Largest k: the best k (rounded up to a power of two) plus one sweep must fit the workgroup buffer. */
export const TOPK_MAX_K = 256;
/** Logits per stage-1 workgroup. */
export const TOPK_BLOCK = 4096;
const WG = 256;
/** Workgroup buffer entries (8 bytes each: 8 KiB, within the portable 16 KiB). */
const CAP = 1024;

export const topKKernel: KernelSpec<TopKKey, Field> = {
  name: 'topk',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'logits', kind: 'read' },
    { name: 'scratch', kind: 'storage' },
    { name: 'values', kind: 'storage' },
    { name: 'indices', kind: 'storage' },
  ],
  uniforms: defineUniforms({ V: 'u32', K: 'u32' }),
  shader: { file: 'topk.wgsl', code: topkWgsl },
  constants: (key) => ({ WG, CAP, BLOCK: TOPK_BLOCK, MERGE: Number(key.merge) }),
};

/** Shape of the u32 scratch buffer: each stage-1 block's best `capacity` entries as (key, index) pairs. */
export function topKScratchShape(V: number, capacity: number): [number, number, number] {
  return [Math.ceil(V / TOPK_BLOCK), capacity, 2];
}

export interface TopKArgs {
  /** f32 [V] or [1, V]: one row of logits. */
  logits: Tensor;
  /** f32 [capacity], 1 ≤ capacity ≤ 256: receives the k best values in [0, k); the rest is not written. */
  values: Tensor;
  /** u32 [capacity]: their token ids. */
  indices: Tensor;
  /** How many to select, 1 ≤ k ≤ min(capacity, V); defaults to capacity, changed later with `set({ k })`. */
  k?: number;
  /** u32 of topKScratchShape(V, capacity); allocated here when absent. */
  scratch?: Tensor;
}

function validateTopK(a: TopKArgs): { V: number; capacity: number; k: number } {
  const shape = a.logits.shape;
  if (shape.length !== 1 && !(shape.length === 2 && shape[0] === 1)) {
    throw new ShapeError('topk', `logits must be [V] or [1, V], got [${shape}]`);
  }
  const V = shape[shape.length - 1];
  if (V < 1) throw new ShapeError('topk', `empty logits [${shape}]`);
  expectTensor('topk', 'logits', a.logits, 'f32', shape);
  if (a.values.shape.length !== 1) throw new ShapeError('topk', `values must be 1-D, got [${a.values.shape}]`);
  const [capacity] = a.values.shape;
  if (capacity < 1 || capacity > TOPK_MAX_K) {
    throw new ShapeError('topk', `values must hold 1 to ${TOPK_MAX_K} entries, got ${capacity}`);
  }
  expectTensor('topk', 'values', a.values, 'f32', [capacity]);
  expectTensor('topk', 'indices', a.indices, 'u32', [capacity]);
  if (a.scratch) expectTensor('topk', 'scratch', a.scratch, 'u32', topKScratchShape(V, capacity));
  const buffers = [a.logits, a.values, a.indices, a.scratch].filter((t) => t !== undefined).map((t) => t.buffer);
  if (new Set(buffers).size !== buffers.length) {
    throw new ShapeError('topk', 'logits, values, indices and scratch must be distinct buffers');
  }
  const k = a.k ?? capacity;
  checkK(k, capacity, V);
  return { V, capacity, k };
}

function checkK(k: number, capacity: number, V: number): void {
  if (!Number.isInteger(k) || k < 1 || k > capacity || k > V) {
    throw new ShapeError('topk', `k must be an integer in [1, ${Math.min(capacity, V)}] (capacity ${capacity}, V ${V}), got ${k}`);
  }
}

/** Both stages of a prepared top-k; `encode` records them, in order, into one compute pass. */
export class TopKDispatch {
  constructor(
    readonly stages: readonly [KernelDispatch<Field>, KernelDispatch<Field>],
    /** The scratch buffer in use (the caller's, or the one allocated at prepare, which the caller may destroy). */
    readonly scratch: Tensor,
    private readonly capacity: number,
    private readonly V: number,
  ) {}

  get name(): string {
    return 'topk';
  }

  /** Selects a different k from the next encode on (two uniform writes, no allocation). */
  set(changes: { k: number }): void {
    checkK(changes.k, this.capacity, this.V);
    for (const stage of this.stages) stage.set({ K: changes.k });
  }

  encode(pass: GPUComputePassEncoder): void {
    for (const stage of this.stages) stage.encode(pass);
  }

  dispose(): void {
    for (const stage of this.stages) stage.dispose();
  }
}

export async function prepareTopK(gpu: Gpu, a: TopKArgs): Promise<TopKDispatch> {
  const { V, capacity, k } = validateTopK(a);
  const shape = topKScratchShape(V, capacity);
  const scratch = a.scratch ?? (await createTensor(gpu, 'topk scratch', 'u32', shape));
  const resources = { logits: a.logits.buffer, scratch: scratch.buffer, values: a.values.buffer, indices: a.indices.buffer };
  const params = { V, K: k };
  // Both stages' pipelines compile at once.
  const stages = await Promise.all([
    KernelDispatch.create(gpu, topKKernel, { merge: false }, params, resources, () => shape[0]),
    KernelDispatch.create(gpu, topKKernel, { merge: true }, params, resources, () => 1),
  ]);
  return new TopKDispatch(stages, scratch, capacity, V);
}
