/**
 * The weights on the GPU: every canonical tensor uploaded once at load (matrices optionally quantized as they
 * go), under the same names, plus the rope cos/sin table. Nothing here runs per token.
 */
import type { Gpu } from '../gpu/device';
import { tensorBytes, uploadTensor, type Tensor } from '../gpu/tensor';
import { ropeInvFreq, ropeTable } from './rope-table';
import type { QuantDType } from '../quant/quantize';
import type { ModelSpec } from './config';
import type { WeightStream } from './stream';
import { uploadStream, type LoadProgress } from './upload';
import type { CanonicalLayer, WeightDtype } from './weights';

/** A layer's tensors on the GPU, under their canonical names (see LAYER_TENSORS). */
export type GpuLayer = { [K in keyof CanonicalLayer]: Tensor };

export interface GpuWeights {
  /** [V, D] */
  embedding: Tensor;
  /** [maxContext, D] f32 (GPT-2). */
  positionEmbedding?: Tensor;
  layers: GpuLayer[];
  finalNorm: Tensor;
  finalNormBias?: Tensor;
  /** [V, D]; the embedding tensor itself when tied. */
  lmHead: Tensor;
  /** [contextLength, rotaryDim/2, 2] cos/sin, when the model uses rope. */
  ropeTable?: Tensor;
}

/** Weight bytes one decode token reads: every layer's tensors, the final norm, the LM head, one embedding row. */
export function decodeWeightBytes(spec: ModelSpec, w: GpuWeights): number {
  const bytes = (t: Tensor | undefined) => (t ? tensorBytes(t.dtype, t.shape) : 0);
  let total = bytes(w.finalNorm) + bytes(w.finalNormBias) + bytes(w.lmHead) + bytes(w.embedding) / spec.vocabSize;
  for (const layer of w.layers) for (const t of Object.values<Tensor>(layer)) total += bytes(t);
  return total;
}

/**
 * Runs `stream` into GPU buffers (see upload.ts), passing every buffer it creates to `track` (the model
 * destroys them), and adds the rope table.
 */
export async function uploadWeights(
  gpu: Gpu,
  spec: ModelSpec,
  stream: WeightStream,
  contextLength: number,
  track: (t: Tensor) => Tensor,
  options: { quantize?: QuantDType; dtype?: WeightDtype; onProgress?: (p: LoadProgress) => void },
): Promise<GpuWeights> {
  const { model, layers } = await uploadStream(gpu, spec, stream, { quantize: options.quantize, dtype: options.dtype, track, onProgress: options.onProgress });
  let ropeTableTensor: Tensor | undefined;
  if (spec.rope) {
    const invFreq = ropeInvFreq({ rotaryDim: spec.rope.rotaryDim, theta: spec.rope.theta, scaling: spec.rope.scaling ?? undefined });
    const table = ropeTable(invFreq, contextLength);
    ropeTableTensor = track(await uploadTensor(gpu, 'rope cos/sin', 'f32', [contextLength, spec.rope.rotaryDim / 2, 2], table));
  }
  const { embedding, finalNorm, lmHead } = model;
  if (!embedding || !finalNorm || !lmHead || layers.some((l: Partial<GpuLayer>) => !l.attnNorm || !l.wqkv || !l.wo || !l.mlpNorm || !l.wDown)) {
    throw new Error('the weight stream ended before every tensor the model needs');
  }
  return {
    embedding,
    positionEmbedding: model.positionEmbedding,
    // Checked above: every layer holds the tensors every layer has.
    layers: layers as GpuLayer[],
    finalNorm,
    finalNormBias: model.finalNormBias,
    lmHead,
    ropeTable: ropeTableTensor,
  };
}
