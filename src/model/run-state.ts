/**
 * The run state: every activation buffer, the KV cache and the readback staging, allocated once at load for
 * the largest chunk and reused by every forward call (a chunk of T rows uses the first T rows of each).
 */
import type { Gpu } from '../gpu/device';
import { createBuffer, createTensor, uploadTensor, type DType, type Tensor } from '../gpu/tensor';
import { topKScratchShape } from '../kernels/topk/topk';
import { attentionPartialsShape } from '../kernels/attention/attention';
import type { ModelSpec } from './config';
import type { KvDtype } from '../kernels/attention/kv-format';
import { createKvCache, type KvCache } from './kv-cache';
import { topKStagingBytes } from './readback';

/** Activations, sized for the largest chunk and reused by every call (T = rows in use). */
export interface RunState {
  /** [chunk] u32 token ids of the current chunk. */
  ids: Tensor;
  /** [chunk, D] the residual stream. */
  x: Tensor;
  /** [chunk, D] LayerNorm of x, input of the projections (RMSNorm models normalise inside the projections). */
  xn?: Tensor;
  /** [chunk, (nH + 2·nKV)·hd] fused q, k, v projections. */
  qkv: Tensor;
  /** [chunk, nH, hd] rotated queries. */
  q: Tensor;
  /** [chunk, nH, hd] attention output. */
  attn: Tensor;
  /** Decode attention's split partial results, shared by every layer's launch. */
  attnPartials: Tensor;
  /** [chunk, 2I] gate and up (gated MLP) or [chunk, I]. */
  up: Tensor;
  /** [chunk, I] GELU of `up` (plain MLP); a gated MLP's down projection applies SwiGLU as it reads `up`. */
  act?: Tensor;
  /** [chunk, D] attention or MLP output before its post-norm adds it to x (Gemma 3). */
  o?: Tensor;
  /** [1, D] the last row of x, the only one the LM head needs (a prefill chunk copies it here). */
  last: Tensor;
  /** [1, D] the final norm of the last row: the LayerNorm the LM head reads, and what a hidden-state read returns. */
  lastNorm: Tensor;
  /** [1, V] */
  logits: Tensor;
  /** [1] u32 greedy next token. */
  next: Tensor;
  /** [count] u32 ids whose logits are set to -Infinity after the LM head, when there are any. */
  maskedIds?: Tensor;
  /** [capacity] f32 and u32: the top-k candidates, when the model was loaded with topKCapacity. */
  topValues?: Tensor;
  topIndices?: Tensor;
  /** The top-k kernel's per-block candidates, shared by the prefill and decode launches. */
  topScratch?: Tensor;
  /** [1] f32 log Σ exp of the logits, for a logprobs read (with the top-k, when there is a topKCapacity). */
  logSumExp?: Tensor;
  /** MAP_READ staging for `next`, `logits` and the top-k candidates, reused by every readback. */
  tokenReadback: GPUBuffer;
  logitsReadback: GPUBuffer;
  topKReadback?: GPUBuffer;
  kv: KvCache;
}

export async function createRunState(
  gpu: Gpu,
  spec: ModelSpec,
  contextLength: number,
  chunk: number,
  track: (t: Tensor) => Tensor,
  buffers: GPUBuffer[],
  topKCapacity: number,
  masked: Uint32Array,
  kvDtype: KvDtype,
): Promise<RunState> {
  const { hiddenSize: D, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I, vocabSize: V } = spec;
  const t = async (label: string, shape: number[], dtype: DType = 'f32') => track(await createTensor(gpu, label, dtype, shape));
  const staging = async (label: string, size: number) => {
    const b = await createBuffer(gpu, label, size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    buffers.push(b);
    return b;
  };
  const kv = await createKvCache(gpu, spec, contextLength, kvDtype);
  for (const c of [...kv.keys, ...kv.values]) track(c);
  return {
    ids: await t('ids', [chunk], 'u32'),
    x: await t('x', [chunk, D]),
    xn: spec.norm.kind === 'layer' ? await t('xn', [chunk, D]) : undefined,
    qkv: await t('qkv', [chunk, (nH + 2 * nKV) * hd]),
    q: await t('q', [chunk, nH, hd]),
    attn: await t('attn', [chunk, nH, hd]),
    attnPartials: await t('attention partials', attentionPartialsShape(nH, hd)),
    up: await t('up', [chunk, spec.gatedMlp ? 2 * I : I]),
    act: spec.activation === 'gelu_tanh' ? await t('act', [chunk, I]) : undefined,
    o: spec.sandwichNorms ? await t('o', [chunk, D]) : undefined,
    last: await t('last row', [1, D]),
    lastNorm: await t('last row normed', [1, D]),
    logits: await t('logits', [1, V]),
    next: await t('next token', [1], 'u32'),
    maskedIds: masked.length ? track(await uploadTensor(gpu, 'masked token ids', 'u32', [masked.length], masked)) : undefined,
    topValues: topKCapacity ? await t('top-k values', [topKCapacity]) : undefined,
    topIndices: topKCapacity ? await t('top-k indices', [topKCapacity], 'u32') : undefined,
    topScratch: topKCapacity ? await t('top-k scratch', topKScratchShape(V, topKCapacity), 'u32') : undefined,
    logSumExp: topKCapacity ? await t('log-sum-exp', [1]) : undefined,
    tokenReadback: await staging('token readback', 4),
    // Also the staging of a hidden-state read (D floats).
    logitsReadback: await staging('logits readback', Math.max(V, D) * 4),
    topKReadback: topKCapacity ? await staging('top-k readback', topKStagingBytes(topKCapacity)) : undefined,
    kv,
  };
}

/** The same buffer seen with fewer leading rows: decode launches bind the first row of each activation. */
export function rows(t: Tensor, n: number): Tensor {
  return { ...t, shape: [n, ...t.shape.slice(1)] };
}

/** A 3-D [T, nH, hd] activation seen as the 2-D [T, nH·hd] input of a matmul. */
export function flatten(t: Tensor): Tensor {
  return { ...t, shape: [t.shape[0], t.shape[1] * t.shape[2]] };
}

/** Timestamp queries around each submit: the first pass writes the start, the last pass the end. */
export interface Profiler {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
}

export async function createProfiler(gpu: Gpu, buffers: GPUBuffer[]): Promise<Profiler> {
  const querySet = gpu.device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = await createBuffer(gpu, 'timestamps', 16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
  const readback = await createBuffer(gpu, 'timestamps readback', 16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  buffers.push(resolve, readback);
  return { querySet, resolve, readback };
}

export async function readGpuMs(gpu: Gpu, profiler: Profiler): Promise<number> {
  await Promise.race([profiler.readback.mapAsync(GPUMapMode.READ), gpu.lost.then((e) => Promise.reject(e))]);
  const [start, end] = new BigUint64Array(profiler.readback.getMappedRange(), 0, 2);
  profiler.readback.unmap();
  return end > start ? Number(end - start) / 1e6 : 0;
}

