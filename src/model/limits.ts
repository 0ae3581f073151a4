/** The device-limits check of a model, from its config alone. */
import type { Gpu } from '../gpu/device';
import { LimitsExceededError } from '../gpu/errors';
import { tensorBytes } from '../gpu/tensor';
import { canonicalShape, LAYER_TENSORS, MODEL_TENSORS, type CanonicalTensor } from './architectures';
import type { ModelSpec } from './config';
import type { KvDtype } from '../kernels/attention/kv-format';
import { DEFAULT_KV_DTYPE, kvCacheShape } from './kv-cache';
import { partRows, weightBindingLimit } from './split';
import type { WeightDtype } from './weights';

/**
 * Checks every GPU allocation the model will make against the device limits, from the config alone, so a
 * model that cannot run is refused before its weights are downloaded or anything is allocated. A weight
 * matrix larger than one binding is split by rows across buffers (./split.ts), so it only needs a few rows
 * to fit one (`maxBindingSize` lowers that limit below the device's); its total is the memory plan's to check.
 */
export function checkModelFits(
  gpu: Gpu,
  spec: ModelSpec,
  dtype: WeightDtype,
  contextLength: number,
  prefillChunk: number,
  kvDtype: KvDtype = DEFAULT_KV_DTYPE,
  maxBindingSize?: number,
): void {
  const { maxBufferSize, maxStorageBufferBindingSize } = gpu.device.limits;
  const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
  const limitName = limit === maxBufferSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  const check = (what: string, bytes: number) => {
    if (bytes > limit) throw new LimitsExceededError(what, bytes, limit, limitName);
  };
  const weightLimit = weightBindingLimit(gpu.device.limits, maxBindingSize);
  const matrices = (tensors: Record<string, CanonicalTensor>) => Object.values(tensors).filter((t) => t.kind === 'matrix' && t.present(spec));
  for (const t of matrices(MODEL_TENSORS)) {
    if (t === MODEL_TENSORS.positionEmbedding) {
      // The gather reads position embeddings whole, in f32: that table is never split.
      const bytes = tensorBytes('f32', canonicalShape(t, spec));
      if (bytes > weightLimit.bytes) throw new LimitsExceededError(`the ${t.label}`, bytes, weightLimit.bytes, weightLimit.name);
    } else partRows(`the ${t.label}`, dtype, canonicalShape(t, spec), weightLimit);
  }
  for (const t of matrices(LAYER_TENSORS)) partRows(`a layer's ${t.label}`, dtype, canonicalShape(t, spec), weightLimit);
  const { hiddenSize: D, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I, vocabSize: V } = spec;
  const qkvRows = (nH + 2 * nKV) * hd;
  const upRows = spec.gatedMlp ? 2 * I : I;
  check('one layer\'s KV cache', tensorBytes(kvDtype, kvCacheShape(spec, contextLength)));
  check('the activations', tensorBytes('f32', [prefillChunk, Math.max(D, qkvRows, upRows)]));
  check('the logits', tensorBytes('f32', [V]));
}

