/**
 * A checkpoint's tensors, per the architecture table's tensor map, rearranged into the canonical layout every
 * kernel and the CPU reference use:
 * - linear weights [out, in] (PyTorch nn.Linear); GPT-2's Conv1D [in, out] is transposed here;
 * - q, k, v fused into wqkv [(nH + 2·nKV)·hd, D], rows q then k then v (GPT-2's c_attn already is);
 * - gate and up fused into wGateUp [2I, D], gate rows then up rows;
 * - norm weights and all biases as f32; big matrices keep f16 (raw bits) or f32.
 * Every tensor's shape is checked against the ModelSpec before it is used.
 */
import type { TensorInfo, TensorSource } from '../formats/safetensors';
import { f16BitsToF32, f32ToF16Bits } from '../gpu/f16';
import {
  architectureOf,
  canonicalShape,
  LAYER_TENSOR_NAMES,
  LAYER_TENSORS,
  MODEL_TENSORS,
  type CanonicalTensor,
  type LayerTensorName,
  type ModelTensorName,
  type TensorMap,
  type TensorSource as CheckpointSource,
} from './architectures';
import type { ModelSpec } from './config';

export type WeightDtype = 'f32' | 'f16';

/** A host tensor, row-major. f16 data holds IEEE half bits. */
export type WeightTensor =
  | { dtype: 'f32'; shape: number[]; data: Float32Array }
  | { dtype: 'f16'; shape: number[]; data: Uint16Array };

export type F32Tensor = Extract<WeightTensor, { dtype: 'f32' }>;

/**
 * Reads one tensor of a checkpoint by its Hugging Face name; resolves undefined when the checkpoint has no
 * such tensor (BF16 sources are expected to arrive widened to f32).
 */
export type WeightReader = (name: string) => Promise<WeightTensor | undefined>;

/** One layer's tensors (see LAYER_TENSORS for shapes and when each is present). */
export interface CanonicalLayer {
  attnNorm: F32Tensor;
  /** LayerNorm only. */
  attnNormBias?: F32Tensor;
  /** [(nH + 2·nKV)·hd, D]: q rows, then k rows, then v rows. */
  wqkv: WeightTensor;
  /** [(nH + 2·nKV)·hd], same row order; when spec.qkvBias. */
  bqkv?: F32Tensor;
  /** [hd], RMSNorm of each q head before rope; when spec.qkNorm. */
  qNorm?: F32Tensor;
  /** [hd], RMSNorm of each k head before rope; when spec.qkNorm. */
  kNorm?: F32Tensor;
  /** [D, nH·hd] */
  wo: WeightTensor;
  /** [D]; when spec.outputBias. */
  bo?: F32Tensor;
  /** [D], RMSNorm of the attention output before the residual add; when spec.sandwichNorms (Gemma 3). */
  postAttnNorm?: F32Tensor;
  mlpNorm: F32Tensor;
  mlpNormBias?: F32Tensor;
  /** [2I, D]: gate rows, then up rows; when spec.gatedMlp. */
  wGateUp?: WeightTensor;
  /** [2I]; when spec.gatedMlp and spec.mlpBias. */
  bGateUp?: F32Tensor;
  /** [I, D]; when not spec.gatedMlp (GPT-2's c_fc). */
  wUp?: WeightTensor;
  /** [I]; when not spec.gatedMlp and spec.mlpBias. */
  bUp?: F32Tensor;
  /** [D, I] */
  wDown: WeightTensor;
  /** [D]; when spec.mlpBias. */
  bDown?: F32Tensor;
  /** [D], RMSNorm of the MLP output before the residual add; when spec.sandwichNorms. */
  postMlpNorm?: F32Tensor;
}

/** Tensors may share memory with the reader's buffers: treat every array as read-only. */
export interface CanonicalWeights {
  /** [V, D] */
  embedding: WeightTensor;
  /** [maxContext, D]; when spec.learnedPositions. */
  positionEmbedding?: WeightTensor;
  layers: CanonicalLayer[];
  /** [D] */
  finalNorm: F32Tensor;
  /** [D]; LayerNorm only. */
  finalNormBias?: F32Tensor;
  /** [V, D]; the same object as `embedding` when spec.tiedEmbeddings. */
  lmHead: WeightTensor;
}

/**
 * `f` applied to every tensor of a layer, keeping the layer's shape: a tensor the layer has maps to one the
 * result has (the GPU upload and the f32 widening of the reference go through here).
 */
export async function mapLayer<R>(
  layer: CanonicalLayer,
  f: (name: LayerTensorName, t: WeightTensor) => R | Promise<R>,
): Promise<{ [K in keyof CanonicalLayer]: R }> {
  const out: Partial<Record<LayerTensorName, R>> = {};
  for (const name of LAYER_TENSOR_NAMES) {
    const t = layer[name];
    if (t) out[name] = await f(name, t);
  }
  // Every required field of CanonicalLayer was present, so it is present in `out`.
  return out as { [K in keyof CanonicalLayer]: R };
}

export interface LoadOptions {
  /**
   * Dtype of the matrices (embeddings, projections, LM head). By default each keeps its checkpoint dtype
   * (a fused matrix is f16 only when all its parts are).
   */
  dtype?: WeightDtype;
}

/** A tensor is missing from the checkpoint, or its shape or data does not match the model config. */
export class ModelWeightsError extends Error {
  override readonly name = 'ModelWeightsError';
  constructor(
    readonly tensor: string,
    readonly expected: readonly number[],
    readonly actual: readonly number[] | null,
    detail?: string,
  ) {
    const mismatch =
      actual === null
        ? `missing from the checkpoint (expected shape [${expected.join(', ')}])`
        : `expected shape [${expected.join(', ')}], got [${actual.join(', ')}]`;
    super(`Weight "${tensor}": ${detail ?? mismatch}. The checkpoint does not fit this model's config.json.`);
  }
}

/**
 * A WeightReader over a safetensors file or sharded model. F32 and F16 pass through (F16 as bits), BF16
 * arrives widened to f32 by the reader; any other dtype is refused. `onRead` sees each tensor once read
 * (for progress).
 */
export function safetensorsWeightReader(file: TensorSource, onRead?: (info: TensorInfo) => void): WeightReader {
  return async (name) => {
    const info = file.tensors.get(name);
    if (info === undefined) return undefined;
    const { data } = await file.readTensor(name);
    onRead?.(info);
    if (info.dtype === 'F16' && data instanceof Uint16Array) return { dtype: 'f16', shape: info.shape, data };
    if ((info.dtype === 'F32' || info.dtype === 'BF16') && data instanceof Float32Array) {
      return { dtype: 'f32', shape: info.shape, data };
    }
    const detail = `has dtype ${info.dtype}, but only F32, F16 and BF16 weights are supported`;
    throw new ModelWeightsError(name, info.shape, info.shape, detail);
  };
}

/** A WeightReader over an in-memory map of tensors (random models, tests). */
export function tensorMapReader(tensors: ReadonlyMap<string, WeightTensor>): WeightReader {
  return (name) => Promise.resolve(tensors.get(name));
}

/** Bytes the canonical weights take with matrices in `dtype` (norms and biases are f32), before loading. */
export function weightBytes(spec: ModelSpec, dtype: WeightDtype): number {
  const bytes = (t: CanonicalTensor) => {
    if (!t.present(spec)) return 0;
    const elements = canonicalShape(t, spec).reduce((a, b) => a * b, 1);
    return elements * (t.kind === 'matrix' && dtype === 'f16' ? 2 : 4);
  };
  const layer = Object.values<CanonicalTensor>(LAYER_TENSORS).reduce((n, t) => n + bytes(t), 0);
  return Object.values<CanonicalTensor>(MODEL_TENSORS).reduce((n, t) => n + bytes(t), spec.numLayers * layer);
}

/**
 * Refuses a checkpoint with tensors for layers past config.json's num_hidden_layers: loading only the first
 * layers of a deeper model would run, and answer nonsense, without a word.
 */
export function checkLayerCount(spec: ModelSpec, tensorNames: Iterable<string>): void {
  const map = architectureOf(spec).tensors;
  for (const name of tensorNames) {
    for (const prefix of map.prefixes) {
      const start = prefix + map.layerPrefix;
      if (!name.startsWith(start)) continue;
      const layer = Number(/^\d+/.exec(name.slice(start.length))?.[0] ?? NaN);
      if (layer >= spec.numLayers) {
        throw new ModelWeightsError(name, [], null, `belongs to layer ${layer}, but config.json says num_hidden_layers is ${spec.numLayers}`);
      }
    }
  }
}

/** Reads, checks and rearranges a checkpoint into the canonical layout for `spec`. */
export async function loadCanonicalWeights(
  spec: ModelSpec,
  read: WeightReader,
  options: LoadOptions = {},
): Promise<CanonicalWeights> {
  const map = architectureOf(spec).tensors;
  const r = new CheckedReader(read, options.dtype);
  const { prefix, embedding: probed } = await findPrefix(spec, map, r);
  const names = (name: string) => (name === map.model.lmHead ? name : prefix + name);
  const model = (name: ModelTensorName) => loadTensor(spec, r, MODEL_TENSORS[name], map.model[name], names, name);

  const embedding = probed ? r.matrix(probed) : await model('embedding');
  const positionEmbedding = await model('positionEmbedding');
  const layers: CanonicalLayer[] = [];
  for (let l = 0; l < spec.numLayers; l++) {
    const layerName = (name: string) => `${prefix}${map.layerPrefix}${l}.${name}`;
    const tensors: Partial<Record<LayerTensorName, WeightTensor>> = {};
    for (const name of LAYER_TENSOR_NAMES) {
      tensors[name] = await loadTensor(spec, r, LAYER_TENSORS[name], map.layer[name], layerName, name);
    }
    layers.push(asLayer(tensors));
  }
  const finalNorm = await model('finalNorm');
  const finalNormBias = await model('finalNormBias');
  if (!embedding || !finalNorm) throw new Error('the embedding and the final norm are always present');
  return {
    embedding,
    positionEmbedding,
    layers,
    finalNorm: toF32(finalNorm),
    finalNormBias: finalNormBias && toF32(finalNormBias),
    // Tied checkpoints sometimes still carry a copy of lm_head.weight; HF ignores it, and so do we.
    lmHead: (await model('lmHead')) ?? embedding,
  };
}

/**
 * The first of the map's prefixes under which the checkpoint has the embedding (GPT-2 checkpoints may or may
 * not say `transformer.`), and the embedding as read, when it took probing to find.
 */
async function findPrefix(spec: ModelSpec, map: TensorMap, r: CheckedReader): Promise<{ prefix: string; embedding?: WeightTensor }> {
  const source = map.model.embedding;
  const name = typeof source === 'string' ? source : undefined;
  if (name === undefined || map.prefixes.length === 1) return { prefix: map.prefixes[0] };
  const shape = canonicalShape(MODEL_TENSORS.embedding, spec);
  for (const prefix of map.prefixes) {
    const embedding = await r.optional(prefix + name, shape);
    if (embedding) return { prefix, embedding };
  }
  const others = map.prefixes.slice(1).map((p) => p + name);
  const detail = `missing from the checkpoint (also as ${others.join(', ')})`;
  throw new ModelWeightsError(map.prefixes[0] + name, shape, null, detail);
}

/** A canonical tensor from its checkpoint source, or undefined when the spec has no such tensor. */
async function loadTensor(
  spec: ModelSpec,
  r: CheckedReader,
  t: CanonicalTensor,
  source: CheckpointSource | undefined,
  named: (name: string) => string,
  canonicalName: string,
): Promise<WeightTensor | undefined> {
  if (!t.present(spec)) return undefined;
  if (source === undefined) throw new Error(`the ${spec.modelType} tensor map has no source for ${canonicalName}`);
  const shape = canonicalShape(t, spec);
  let tensor: WeightTensor;
  if (typeof source === 'string') {
    tensor = await r.tensor(named(source), shape);
  } else if ('transposed' in source) {
    tensor = transpose(await r.tensor(named(source.transposed), [...shape].reverse()));
  } else {
    const rows = t.rows(spec);
    if (rows.length !== source.blocks.length) throw new Error(`${canonicalName} has ${rows.length} row blocks, the map names ${source.blocks.length}`);
    const parts: WeightTensor[] = [];
    for (const [i, name] of source.blocks.entries()) parts.push(await r.tensor(named(name), t.cols ? [rows[i], t.cols(spec)] : [rows[i]]));
    tensor = t.kind === 'matrix' ? r.concatRows(parts) : concatF32(parts.map(toF32));
  }
  return t.kind === 'matrix' ? r.matrix(tensor) : toF32(tensor);
}

/** The loaded tensors as a layer, checked to hold the tensors every layer has. */
function asLayer(t: Partial<Record<LayerTensorName, WeightTensor>>): CanonicalLayer {
  if (!t.attnNorm || !t.wqkv || !t.wo || !t.mlpNorm || !t.wDown) {
    throw new Error('a layer always has its norms, q/k/v, output and down projections');
  }
  // loadTensor made every norm weight and bias f32.
  return t as CanonicalLayer;
}

class CheckedReader {
  constructor(
    private readonly read: WeightReader,
    readonly dtype: WeightDtype | undefined,
  ) {}

  /** The tensor, or undefined when absent; a present tensor must have `shape`. */
  async optional(name: string, shape: number[]): Promise<WeightTensor | undefined> {
    const t = await this.read(name);
    if (t === undefined) return undefined;
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
      throw new ModelWeightsError(name, shape, t.shape);
    }
    const elements = shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== elements) {
      const detail = `holds ${t.data.length} values, but its shape needs ${elements}`;
      throw new ModelWeightsError(name, shape, t.shape, detail);
    }
    return t;
  }

  async tensor(name: string, shape: number[]): Promise<WeightTensor> {
    const t = await this.optional(name, shape);
    if (t === undefined) throw new ModelWeightsError(name, shape, null);
    return t;
  }

  /** A matrix in the requested dtype. */
  matrix(t: WeightTensor): WeightTensor {
    return this.dtype ? convert(t, this.dtype) : t;
  }

  /** Matrices stacked by rows into one, in the requested dtype (or f16 when every part is). */
  concatRows(parts: WeightTensor[]): WeightTensor {
    const dtype = this.dtype ?? (parts.every((p) => p.dtype === 'f16') ? 'f16' : 'f32');
    const cols = parts[0].shape[1];
    const rows = parts.reduce((n, p) => n + p.shape[0], 0);
    const out = emptyTensor(dtype, [rows, cols]);
    let offset = 0;
    for (const p of parts) {
      const c = convert(p, dtype);
      out.data.set(c.data, offset);
      offset += c.data.length;
    }
    return out;
  }
}

function emptyTensor(dtype: WeightDtype, shape: number[]): WeightTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return dtype === 'f16' ? { dtype, shape, data: new Uint16Array(n) } : { dtype, shape, data: new Float32Array(n) };
}

/** `t` itself when already in `dtype`, else a converted copy (f32 → f16 rounds to nearest even). */
function convert(t: WeightTensor, dtype: WeightDtype): WeightTensor {
  if (t.dtype === dtype) return t;
  const out = emptyTensor(dtype, t.shape);
  const to = dtype === 'f16' ? f32ToF16Bits : f16BitsToF32;
  for (let i = 0; i < t.data.length; i++) out.data[i] = to(t.data[i]);
  return out;
}

function toF32(t: WeightTensor): F32Tensor {
  return convert(t, 'f32') as F32Tensor;
}

function concatF32(parts: F32Tensor[]): F32Tensor {
  const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return { dtype: 'f32', shape: [data.length], data };
}

/** [rows, cols] → [cols, rows], same dtype. */
function transpose(t: WeightTensor): WeightTensor {
  const [rows, cols] = t.shape;
  const out = emptyTensor(t.dtype, [cols, rows]);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out.data[c * rows + r] = t.data[r * cols + c];
  }
  return out;
}
