/**
 * The context budget: every GPU byte a model will hold, from its config alone, and the context length that
 * fits. Computed before anything is downloaded or allocated, so an oversized context (Llama-3.2's
 * max_position_embeddings is 131072: GBs of KV cache) is refused in milliseconds instead of after a long
 * allocation, and the default context is one the device can hold.
 */
import { LimitsExceededError, ShapeError } from '../gpu/errors';
import { tensorBytes, type DType } from '../gpu/tensor';
import { topKScratchShape } from '../kernels/topk/topk';
import { topKStagingBytes } from './readback';
import type { QuantDType } from '../quant/quantize';
import type { ModelSpec } from './config';
import { attentionPartialsShape } from '../kernels/attention/attention';
import type { KvDtype } from '../kernels/attention/kv-format';
import { DEFAULT_KV_DTYPE, kvCacheBytesPerToken } from './kv-cache';
import { splitTensorBytes, type BindingLimit } from './split';
import type { WeightDtype } from './weights';

/** The default context when none is asked for, if the model and the memory allow it: long chats, modest memory. */
export const DEFAULT_CONTEXT_LENGTH = 4096;

/** Used when the browser does not report its memory (Node, Firefox, Safari). */
const FALLBACK_MEMORY_BUDGET = 8 * 2 ** 30;

/**
 * Bytes of GPU memory a model may use when the caller does not say. WebGPU does not report a device's
 * memory, so this estimates it from the browser's `navigator.deviceMemory` (RAM in GiB, which Chrome rounds
 * down and caps at 8) and otherwise assumes 8 GiB. Pass `memoryBudget` to use more (or less).
 */
export function defaultMemoryBudget(): number {
  const reported = (globalThis.navigator as { deviceMemory?: unknown } | undefined)?.deviceMemory;
  return typeof reported === 'number' && reported > 0 ? reported * 2 ** 30 : FALLBACK_MEMORY_BUDGET;
}

export interface MemoryPlanOptions {
  /** Dtype of the embedding and of unquantized matrices. */
  dtype: WeightDtype;
  quantize?: QuantDType;
  prefillChunk: number;
  /** Default f16 (DEFAULT_KV_DTYPE). */
  kvDtype?: KvDtype;
  topKCapacity?: number;
  maskedTokens?: number;
  /** Matrices larger than this are split by rows across buffers (./split.ts), each padded on its own. */
  bindingLimit?: BindingLimit;
}

/** What a model holds on the GPU, split by how it grows with the context. */
export interface MemoryPlan {
  /** Weights: embedding, every layer, final norm, LM head (unless it shares the embedding), position embedding. */
  weightBytes: number;
  /** Activations, logits, top-k and readback buffers: the same for any context. */
  activationBytes: number;
  /** Per token of context: keys and values of every layer, and the rope table's row. */
  bytesPerToken: number;
}

/** Mirrors what `GpuModel.create` allocates (test/model/memory-gpu.test.ts holds them equal). */
export function planMemory(spec: ModelSpec, o: MemoryPlanOptions): MemoryPlan {
  const { hiddenSize: D, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I, vocabSize: V } = spec;
  const qkvRows = (nH + 2 * nKV) * hd;
  const upRows = spec.gatedMlp ? 2 * I : I;
  const f32 = (...shape: number[]) => tensorBytes('f32', shape);
  const matrix = (label: string, dtype: DType, ...shape: number[]) => (o.bindingLimit ? splitTensorBytes(label, dtype, shape, o.bindingLimit) : tensorBytes(dtype, shape));
  const matrixDtype: DType = o.quantize ?? o.dtype;
  const layerNorm = spec.norm.kind === 'layer';
  const norm = layerNorm ? 2 * f32(D) : f32(D);
  const postNorms = spec.sandwichNorms ? 2 * f32(D) : 0;

  let layer =
    2 * norm +
    postNorms +
    matrix("a layer's q/k/v weight", matrixDtype, qkvRows, D) +
    matrix("a layer's output projection weight", matrixDtype, D, nH * hd) +
    matrix("a layer's MLP up weight", matrixDtype, upRows, D) +
    matrix("a layer's MLP down weight", matrixDtype, D, I);
  if (spec.qkvBias) layer += f32(qkvRows);
  if (spec.qkNorm) layer += 2 * f32(hd);
  if (spec.outputBias) layer += f32(D);
  if (spec.mlpBias) layer += f32(upRows) + f32(D);
  const sharedHead = spec.tiedEmbeddings && !o.quantize;
  const headDtype: DType = o.quantize === 'q4' ? 'q8' : matrixDtype;
  const weightBytes =
    matrix('the embedding', o.dtype, V, D) +
    (spec.learnedPositions ? f32(spec.maxContext, D) : 0) + // never split
    spec.numLayers * layer +
    norm +
    (sharedHead ? 0 : matrix('the LM head', headDtype, V, D));

  const T = o.prefillChunk;
  const topK = Math.min(o.topKCapacity ?? 0, V);
  const activationBytes =
    tensorBytes('u32', [T]) +
    f32(T, D) * (layerNorm ? 2 : 1) +
    f32(T, qkvRows) +
    2 * f32(T, nH, hd) +
    f32(...attentionPartialsShape(nH, hd)) +
    f32(T, upRows) +
    (spec.activation === 'gelu_tanh' ? f32(T, I) : 0) +
    (spec.sandwichNorms ? f32(T, D) : 0) +
    2 * f32(D) + // the last row and its final norm
    f32(V) +
    f32(Math.max(V, D)) + // the readback of logits or of the final hidden state
    2 * tensorBytes('u32', [1]) + // next token and its readback
    // Values and ids, their scratch, the log-sum-exp, and their readback.
    (topK ? 2 * f32(topK) + tensorBytes('u32', topKScratchShape(V, topK)) + f32(1) + topKStagingBytes(topK) : 0) +
    (o.maskedTokens ? tensorBytes('u32', [o.maskedTokens]) : 0);

  const bytesPerToken =
    kvCacheBytesPerToken(spec, o.kvDtype ?? DEFAULT_KV_DTYPE) + (spec.rope ? 4 * spec.rope.rotaryDim : 0) + (spec.localRope ? 4 * spec.localRope.rotaryDim : 0);
  return { weightBytes, activationBytes, bytesPerToken };
}

export function totalBytes(plan: MemoryPlan, contextLength: number): number {
  return plan.weightBytes + plan.activationBytes + plan.bytesPerToken * contextLength;
}

/** Why the context is as long as it is: asked for, the model's maximum, the default, or what memory allows. */
export type ContextLimit = 'requested' | 'model' | 'default' | 'memory';

export interface ContextChoice {
  contextLength: number;
  limitedBy: ContextLimit;
  /** GPU bytes the model will hold with this context, and the budget they were held to. */
  totalBytes: number;
  budgetBytes: number;
}

const GiB = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

/**
 * The context to allocate: `requested` if the total fits the budget, else a LimitsExceededError naming the
 * total; by default min(the model's maximum, DEFAULT_CONTEXT_LENGTH, what the budget leaves after weights
 * and activations).
 */
export function chooseContext(spec: ModelSpec, plan: MemoryPlan, requested: number | undefined, budgetBytes = defaultMemoryBudget()): ContextChoice {
  const breakdown = (n: number) =>
    `the model with a context of ${n} tokens (weights ${GiB(plan.weightBytes)}, KV cache and rope table ` +
    `${GiB(plan.bytesPerToken * n)}, activations ${GiB(plan.activationBytes)})`;
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1 || requested > spec.maxContext) {
      throw new ShapeError('model', `contextLength must be an integer in [1, ${spec.maxContext}], got ${requested}`);
    }
    const total = totalBytes(plan, requested);
    if (total > budgetBytes) throw new LimitsExceededError(breakdown(requested), total, budgetBytes, 'memoryBudget');
    return { contextLength: requested, limitedBy: 'requested', totalBytes: total, budgetBytes };
  }
  const fits = Math.floor((budgetBytes - plan.weightBytes - plan.activationBytes) / plan.bytesPerToken);
  if (fits < 1) throw new LimitsExceededError(breakdown(1), totalBytes(plan, 1), budgetBytes, 'memoryBudget');
  const [contextLength, limitedBy]: [number, ContextLimit] =
    fits < Math.min(spec.maxContext, DEFAULT_CONTEXT_LENGTH)
      ? [fits, 'memory']
      : spec.maxContext <= DEFAULT_CONTEXT_LENGTH
        ? [spec.maxContext, 'model']
        : [DEFAULT_CONTEXT_LENGTH, 'default'];
  return { contextLength, limitedBy, totalBytes: totalBytes(plan, contextLength), budgetBytes };
}

export interface ContextOptions extends Omit<MemoryPlanOptions, 'prefillChunk'> {
  contextLength?: number;
  memoryBudget?: number;
  /** Default 128; never more than the context. */
  prefillChunk?: number;
}

/** The context a model gets with these options (see chooseContext), and the prefill chunk that goes with it. */
export function planContext(spec: ModelSpec, o: ContextOptions): { context: ContextChoice; chunk: number } {
  const prefillChunk = o.prefillChunk ?? 128;
  if (!Number.isInteger(prefillChunk) || prefillChunk < 1) throw new ShapeError('model', `prefillChunk must be an integer ≥ 1, got ${prefillChunk}`);
  // The chunk is capped by the context, so planning with the whole chunk bounds the activations from above.
  const choice = chooseContext(spec, planMemory(spec, { ...o, prefillChunk }), o.contextLength, o.memoryBudget);
  const chunk = Math.min(prefillChunk, choice.contextLength);
  return { context: { ...choice, totalBytes: totalBytes(planMemory(spec, { ...o, prefillChunk: chunk }), choice.contextLength) }, chunk };
}
