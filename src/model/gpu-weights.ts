/**
 * The weights on the GPU: every canonical tensor uploaded once at load (matrices optionally quantized as they
 * go), under the same names, plus the rope cos/sin table. Nothing here runs per token.
 */
import type { Gpu } from '../gpu/device';
import { f16BitsToF32 } from '../gpu/f16';
import { tensorBytes, uploadTensor, type Tensor } from '../gpu/tensor';
import { ropeInvFreq, ropeTable } from '../kernels/rope/rope';
import { quantize, type QuantDType } from '../quant/quantize';
import { LAYER_TENSORS } from './architectures';
import type { ModelSpec } from './config';
import { mapLayer, type CanonicalLayer, type CanonicalWeights, type F32Tensor, type WeightTensor } from './weights';

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

/** Uploads `w`, passing every buffer it creates to `track` (the model destroys them). */
export async function uploadWeights(
  gpu: Gpu,
  spec: ModelSpec,
  w: CanonicalWeights,
  contextLength: number,
  track: (t: Tensor) => Tensor,
  quant: QuantDType | undefined,
): Promise<GpuWeights> {
  const up = async (label: string, t: WeightTensor) => track(await uploadTensor(gpu, label, t.dtype, t.shape, t.data));
  /** A weight matrix read by matmul: quantized to `as` when asked, block by block, as it is uploaded. */
  const matrix = async (label: string, t: WeightTensor, as = quant) =>
    as ? track(await uploadTensor(gpu, label, as, t.shape, quantize(as, t.data, t.shape))) : up(label, t);
  const opt = async (label: string, t: WeightTensor | undefined) => (t ? up(label, t) : undefined);

  const embedding = await up('embedding', w.embedding);
  const layers: GpuLayer[] = [];
  for (const [i, l] of w.layers.entries()) {
    const label = (name: keyof CanonicalLayer) => `layer ${i} ${LAYER_TENSORS[name].label}`;
    layers.push(await mapLayer(l, (name, t) => (LAYER_TENSORS[name].kind === 'matrix' ? matrix(label(name), t) : up(label(name), t))));
  }
  let ropeTableTensor: Tensor | undefined;
  if (spec.rope) {
    const invFreq = ropeInvFreq({ rotaryDim: spec.rope.rotaryDim, theta: spec.rope.theta, scaling: spec.rope.scaling ?? undefined });
    const table = ropeTable(invFreq, contextLength);
    ropeTableTensor = track(await uploadTensor(gpu, 'rope cos/sin', 'f32', [contextLength, spec.rope.rotaryDim / 2, 2], table));
  }
  return {
    embedding,
    positionEmbedding: w.positionEmbedding && (await up('position embedding', toF32(w.positionEmbedding))),
    layers,
    finalNorm: await up('final norm', w.finalNorm),
    finalNormBias: await opt('final norm bias', w.finalNormBias),
    // A tied head shares the embedding, unless quantizing: the gather reads f16/f32, the head quantized.
    lmHead: w.lmHead === w.embedding && !quant ? embedding : await matrix('LM head', w.lmHead, quant === 'q4' ? 'q8' : quant),
    ropeTable: ropeTableTensor,
  };
}

/** The embedding kernel adds position embeddings in f32. */
function toF32(t: WeightTensor): F32Tensor {
  if (t.dtype === 'f32') return t;
  const data = new Float32Array(t.data.length);
  for (let i = 0; i < data.length; i++) data[i] = f16BitsToF32(t.data[i]);
  return { dtype: 'f32', shape: t.shape, data };
}

