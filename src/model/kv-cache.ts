/**
 * The KV cache: per layer, keys and values for every position of the context, in GPU memory for the whole
 * life of the model. Layout (shared by the rope kernel that writes it and the attention kernel that reads
 * it): [nKvHeads, contextLength, headDim], element (h, p, d) at (h·contextLength + p)·headDim + d, in f16 (half
 * the memory and bandwidth of f32; the default) or f32.
 *
 * `length` is how many leading positions hold valid entries; a forward pass at position p overwrites p
 * onward, so rewinding (for reuse of a common prefix) is just lowering `length`.
 */
import type { Gpu } from '../gpu/device';
import { createTensor, type Tensor } from '../gpu/tensor';
import type { KvDtype } from '../kernels/attention/kv-format';
import type { ModelSpec } from './config';

/** A prompt or a generation would run past the context (the KV cache's positions) the model was loaded with. */
export class ContextWindowExceededError extends Error {
  override readonly name = 'ContextWindowExceededError';
  constructor(
    /** The positions needed: the prompt's tokens, or the cached tokens plus the new ones. */
    readonly requiredTokens: number,
    readonly contextLength: number,
    subject = 'This needs',
  ) {
    super(
      `${subject} ${requiredTokens} tokens but the context holds ${contextLength} (including the reply). ` +
        `Start a new conversation, shorten the prompt, or load the model with a larger contextLength.`,
    );
  }
}

export interface KvCache {
  dtype: KvDtype;
  /** Per layer, [nKvHeads, contextLength, headDim]. */
  keys: Tensor[];
  /** Per layer, [nKvHeads, contextLength, headDim]. */
  values: Tensor[];
  contextLength: number;
  /** Positions 0..length-1 hold the keys and values of the tokens processed so far. */
  length: number;
}

/** f16 halves the cache's memory and the bytes attention reads; the stories260K golden holds with it. */
export const DEFAULT_KV_DTYPE: KvDtype = 'f16';

export function kvCacheShape(spec: ModelSpec, contextLength: number): number[] {
  return [spec.numKvHeads, contextLength, spec.headDim];
}

/** Bytes the cache holds per position: keys and values of every layer. */
export function kvCacheBytesPerToken(spec: ModelSpec, dtype: KvDtype): number {
  return 2 * spec.numLayers * spec.numKvHeads * spec.headDim * (dtype === 'f32' ? 4 : 2);
}

export async function createKvCache(gpu: Gpu, spec: ModelSpec, contextLength: number, dtype: KvDtype): Promise<KvCache> {
  const shape = kvCacheShape(spec, contextLength);
  const keys: Tensor[] = [];
  const values: Tensor[] = [];
  for (let l = 0; l < spec.numLayers; l++) {
    keys.push(await createTensor(gpu, `layer ${l} keys`, dtype, shape));
    values.push(await createTensor(gpu, `layer ${l} values`, dtype, shape));
  }
  return { dtype, keys, values, contextLength, length: 0 };
}
