/**
 * The weights on the GPU: every canonical tensor uploaded once at load (matrices optionally quantized as they
 * go), under the same names, plus the rope cos/sin table. Nothing here runs per token.
 */
import type { Gpu } from '../gpu/device';
import { tensorBytes, uploadTensor, type Tensor } from '../gpu/tensor';
import { LAYER_TENSOR_NAMES, LAYER_TENSORS, type LayerTensorName } from './architectures';
import { ropeTable } from './rope-table';
import type { QuantDType } from '../quant/quantize';
import type { ModelSpec } from './config';
import { isSplit, type BindingLimit, type Weight } from './split';
import type { WeightStream } from './stream';
import { allocateTensors, uploadStream, type LoadProgress, type UploadedTensors } from './upload';
import type { CanonicalLayer, WeightDtype } from './weights';

type LayerMatrixName = { [K in LayerTensorName]: (typeof LAYER_TENSORS)[K]['kind'] extends 'matrix' ? K : never }[LayerTensorName];

/** A layer's tensors on the GPU, under their canonical names (see LAYER_TENSORS); a matrix may be split (./split.ts). */
export type GpuLayer = { [K in keyof CanonicalLayer]: K extends LayerMatrixName ? Weight : Tensor };

export interface GpuWeights {
  /** [V, D], possibly split by rows. */
  embedding: Weight;
  /** [maxContext, D] f32 (GPT-2). */
  positionEmbedding?: Tensor;
  layers: GpuLayer[];
  finalNorm: Tensor;
  finalNormBias?: Tensor;
  /** [V, D], possibly split by rows; the embedding itself when tied. */
  lmHead: Weight;
  /** [contextLength, rotaryDim/2, 2] cos/sin, when the model uses rope. */
  ropeTable?: Tensor;
  /** The same for spec.localRope (Gemma 3's sliding layers). */
  localRopeTable?: Tensor;
}

/** Weight bytes one decode token reads: every layer's tensors, the final norm, the LM head, one embedding row. */
export function decodeWeightBytes(spec: ModelSpec, w: GpuWeights): number {
  const bytes = (t: Weight | undefined) => (t ? tensorBytes(t.dtype, t.shape) : 0);
  let total = bytes(w.finalNorm) + bytes(w.finalNormBias) + bytes(w.lmHead) + bytes(w.embedding) / spec.vocabSize;
  for (const layer of w.layers) for (const t of Object.values<Weight>(layer)) total += bytes(t);
  return total;
}

/** Checks that `model` and `layers` hold every tensor a model needs, and adds the rope table. */
function complete(uploaded: UploadedTensors, [ropeTable, localRopeTable]: RopeTables): GpuWeights {
  const { model, layers } = uploaded;
  const { embedding, finalNorm, lmHead } = model;
  if (!embedding || !finalNorm || !lmHead || layers.some((l) => !l.attnNorm || !l.wqkv || !l.wo || !l.mlpNorm || !l.wDown)) {
    throw new Error('the weight stream ended before every tensor the model needs');
  }
  for (const layer of layers) {
    for (const name of LAYER_TENSOR_NAMES) if (LAYER_TENSORS[name].kind !== 'matrix') whole(layer[name]);
  }
  return {
    embedding,
    positionEmbedding: whole(model.positionEmbedding),
    // Checked above: every layer holds the tensors every layer has, and only its matrices may be split.
    layers: layers as GpuLayer[],
    finalNorm: whole(finalNorm),
    finalNormBias: whole(model.finalNormBias),
    lmHead,
    ropeTable,
    localRopeTable,
  };
}

/** A tensor the upload never splits (vectors, the position table), as the one buffer it is. */
function whole(w: Weight): Tensor;
function whole(w: Weight | undefined): Tensor | undefined;
function whole(w: Weight | undefined): Tensor | undefined {
  if (w && isSplit(w)) throw new Error('only weight matrices are split across buffers');
  return w;
}

type RopeTables = [Tensor | undefined, Tensor | undefined];

/** The cos/sin tables of spec.rope and spec.localRope. */
async function uploadRopeTables(gpu: Gpu, spec: ModelSpec, contextLength: number, track: (t: Tensor) => Tensor): Promise<RopeTables> {
  const upload = async (rope: ModelSpec['rope'], label: string) => {
    if (!rope) return undefined;
    const table = ropeTable({ rotaryDim: rope.rotaryDim, theta: rope.theta, scaling: rope.scaling ?? undefined }, contextLength);
    return track(await uploadTensor(gpu, label, 'f32', [contextLength, rope.rotaryDim / 2, 2], table));
  };
  return [await upload(spec.rope, 'rope cos/sin'), await upload(spec.localRope, 'local rope cos/sin')];
}

/**
 * Every weight buffer of the model allocated (zeroed) and the rope table uploaded, before the weights stream
 * in: what reads the weights can be prepared meanwhile (see uploadWeights' `into`).
 */
export async function allocateWeights(
  gpu: Gpu,
  spec: ModelSpec,
  dtype: WeightDtype,
  quantize: QuantDType | undefined,
  contextLength: number,
  track: (t: Tensor) => Tensor,
  bindingLimit?: BindingLimit,
): Promise<GpuWeights> {
  const tensors = await allocateTensors(gpu, spec, dtype, quantize, track, bindingLimit);
  return complete(tensors, await uploadRopeTables(gpu, spec, contextLength, track));
}

/**
 * Runs `stream` into GPU buffers (see upload.ts), passing every buffer it creates to `track` (the model
 * destroys them), and adds the rope table; with `into` (allocateWeights), into those buffers where the
 * streamed tensors fit them, releasing those they do not.
 */
export async function uploadWeights(
  gpu: Gpu,
  spec: ModelSpec,
  stream: WeightStream,
  contextLength: number,
  track: (t: Tensor) => Tensor,
  options: {
    quantize?: QuantDType;
    dtype?: WeightDtype;
    onProgress?: (p: LoadProgress) => void;
    into?: GpuWeights;
    release?: (t: Tensor) => void;
    bindingLimit?: BindingLimit;
  },
): Promise<GpuWeights> {
  const { into } = options;
  const allocated: UploadedTensors | undefined = into && {
    model: { embedding: into.embedding, positionEmbedding: into.positionEmbedding, finalNorm: into.finalNorm, finalNormBias: into.finalNormBias, lmHead: into.lmHead },
    layers: into.layers,
  };
  const { quantize, dtype, onProgress, release, bindingLimit } = options;
  const uploaded = await uploadStream(gpu, spec, stream, { quantize, dtype, track, onProgress, into: allocated, release, bindingLimit });
  return complete(uploaded, into ? [into.ropeTable, into.localRopeTable] : await uploadRopeTables(gpu, spec, contextLength, track));
}

/** Whether `a` and `b` hold the same buffers (an upload into allocated weights kept them all). */
export function sameWeights(a: GpuWeights, b: GpuWeights): boolean {
  const model = (w: GpuWeights) => [w.embedding, w.positionEmbedding, w.finalNorm, w.finalNormBias, w.lmHead, w.ropeTable, w.localRopeTable];
  return (
    model(a).every((t, i) => t === model(b)[i]) &&
    a.layers.length === b.layers.length &&
    a.layers.every((l, i) => LAYER_TENSOR_NAMES.every((name) => l[name] === b.layers[i][name]))
  );
}
