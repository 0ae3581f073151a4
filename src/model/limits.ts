/** The device-limits check of a model, from its config alone. */
import type { Gpu } from '../gpu/device';
import { LimitsExceededError } from '../gpu/errors';
import { tensorBytes } from '../gpu/tensor';
import { canonicalShape, LAYER_TENSORS, MODEL_TENSORS, type CanonicalTensor } from './architectures';
import type { ModelSpec } from './config';
import type { KvDtype } from '../kernels/attention/kv-format';
import { DEFAULT_KV_DTYPE, kvCacheShape } from './kv-cache';
import type { WeightDtype } from './weights';

/**
 * Checks every GPU allocation the model will make against the device limits, from the config alone, so a
 * model that cannot run is refused before its weights are downloaded or anything is allocated.
 */
export function checkModelFits(
  gpu: Gpu,
  spec: ModelSpec,
  dtype: WeightDtype,
  contextLength: number,
  prefillChunk: number,
  kvDtype: KvDtype = DEFAULT_KV_DTYPE,
): void {
  const { maxBufferSize, maxStorageBufferBindingSize } = gpu.device.limits;
  const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
  const limitName = limit === maxBufferSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  const check = (what: string, bytes: number) => {
    if (bytes > limit) throw new LimitsExceededError(what, bytes, limit, limitName);
  };
  const matrices = (tensors: Record<string, CanonicalTensor>) => Object.values(tensors).filter((t) => t.kind === 'matrix' && t.present(spec));
  for (const t of matrices(MODEL_TENSORS)) {
    // The embedding kernel adds position embeddings in f32.
    const bytes = tensorBytes(t === MODEL_TENSORS.positionEmbedding ? 'f32' : dtype, canonicalShape(t, spec));
    check(`the ${t.label}`, bytes);
  }
  for (const t of matrices(LAYER_TENSORS)) check(`a layer's ${t.label}`, tensorBytes(dtype, canonicalShape(t, spec)));
  const { hiddenSize: D, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I, vocabSize: V } = spec;
  const qkvRows = (nH + 2 * nKV) * hd;
  const upRows = spec.gatedMlp ? 2 * I : I;
  check('one layer\'s KV cache', tensorBytes(kvDtype, kvCacheShape(spec, contextLength)));
  check('the activations', tensorBytes('f32', [prefillChunk, Math.max(D, qkvRows, upRows)]));
  check('the logits', tensorBytes('f32', [V]));
}

