/**
 * The one place that knows Hugging Face tensor names: it maps a checkpoint's tensors, per architecture,
 * to the canonical layout every kernel and the CPU reference use:
 * - linear weights [out, in] (PyTorch nn.Linear); GPT-2's Conv1D [in, out] is transposed here;
 * - q, k, v fused into wqkv [(nH + 2·nKV)·hd, D], rows q then k then v (GPT-2's c_attn already is);
 * - gate and up fused into wGateUp [2I, D], gate rows then up rows;
 * - norm weights and all biases as f32; big matrices keep f16 (raw bits) or f32.
 * Every tensor's shape is checked against the ModelSpec before it is used.
 */
import type { TensorInfo, TensorSource } from '../formats/safetensors';
import { f16BitsToF32, f32ToF16Bits } from '../gpu/f16';
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

export interface NormWeights {
  /** [D] */
  weight: F32Tensor;
  /** [D]; LayerNorm only. */
  bias?: F32Tensor;
}

export interface CanonicalLayer {
  attnNorm: NormWeights;
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
  mlpNorm: NormWeights;
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
}

/** Tensors may share memory with the reader's buffers: treat every array as read-only. */
export interface CanonicalWeights {
  /** [V, D] */
  embedding: WeightTensor;
  /** [maxContext, D]; when spec.learnedPositions. */
  positionEmbedding?: WeightTensor;
  layers: CanonicalLayer[];
  finalNorm: NormWeights;
  /** [V, D]; the same object as `embedding` when spec.tiedEmbeddings. */
  lmHead: WeightTensor;
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
  const { vocabSize: V, hiddenSize: D, intermediateSize: I, numHeads: nH, numKvHeads: nKV, headDim: hd } = spec;
  const qkvRows = (nH + 2 * nKV) * hd;
  const normElems = spec.norm.kind === 'layer' ? 2 * D : D;
  let matrix = V * D + (spec.tiedEmbeddings ? 0 : V * D) + (spec.learnedPositions ? spec.maxContext * D : 0);
  let vector = normElems;
  const mlpRows = spec.gatedMlp ? 2 * I : I;
  matrix += spec.numLayers * (qkvRows * D + D * nH * hd + mlpRows * D + D * I);
  vector +=
    spec.numLayers *
    (2 * normElems +
      (spec.qkvBias ? qkvRows : 0) +
      (spec.qkNorm ? 2 * hd : 0) +
      (spec.outputBias ? D : 0) +
      (spec.mlpBias ? mlpRows + D : 0));
  return matrix * (dtype === 'f16' ? 2 : 4) + vector * 4;
}

/** Reads, checks and rearranges a checkpoint into the canonical layout for `spec`. */
export async function loadCanonicalWeights(
  spec: ModelSpec,
  read: WeightReader,
  options: LoadOptions = {},
): Promise<CanonicalWeights> {
  const checked = new CheckedReader(read, options.dtype);
  return spec.arch === 'gpt2' ? loadGpt2(spec, checked) : loadLlamaLike(spec, checked);
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

  /** A matrix, in the requested dtype. */
  async matrix(name: string, shape: number[]): Promise<WeightTensor> {
    const t = await this.tensor(name, shape);
    return this.dtype ? convert(t, this.dtype) : t;
  }

  async f32(name: string, shape: number[]): Promise<F32Tensor> {
    return toF32(await this.tensor(name, shape));
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

async function loadLlamaLike(spec: ModelSpec, r: CheckedReader): Promise<CanonicalWeights> {
  const { vocabSize: V, hiddenSize: D, intermediateSize: I, numHeads: nH, numKvHeads: nKV, headDim: hd } = spec;
  const embedding = await r.matrix('model.embed_tokens.weight', [V, D]);
  const layers: CanonicalLayer[] = [];
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const a = `${p}self_attn.`;
    const layer: CanonicalLayer = {
      attnNorm: { weight: await r.f32(`${p}input_layernorm.weight`, [D]) },
      wqkv: r.concatRows([
        await r.tensor(`${a}q_proj.weight`, [nH * hd, D]),
        await r.tensor(`${a}k_proj.weight`, [nKV * hd, D]),
        await r.tensor(`${a}v_proj.weight`, [nKV * hd, D]),
      ]),
      wo: await r.matrix(`${a}o_proj.weight`, [D, nH * hd]),
      mlpNorm: { weight: await r.f32(`${p}post_attention_layernorm.weight`, [D]) },
      wGateUp: r.concatRows([
        await r.tensor(`${p}mlp.gate_proj.weight`, [I, D]),
        await r.tensor(`${p}mlp.up_proj.weight`, [I, D]),
      ]),
      wDown: await r.matrix(`${p}mlp.down_proj.weight`, [D, I]),
    };
    if (spec.qkvBias) {
      layer.bqkv = concatF32([
        await r.f32(`${a}q_proj.bias`, [nH * hd]),
        await r.f32(`${a}k_proj.bias`, [nKV * hd]),
        await r.f32(`${a}v_proj.bias`, [nKV * hd]),
      ]);
    }
    if (spec.qkNorm) {
      layer.qNorm = await r.f32(`${a}q_norm.weight`, [hd]);
      layer.kNorm = await r.f32(`${a}k_norm.weight`, [hd]);
    }
    if (spec.outputBias) layer.bo = await r.f32(`${a}o_proj.bias`, [D]);
    if (spec.mlpBias) {
      layer.bGateUp = concatF32([await r.f32(`${p}mlp.gate_proj.bias`, [I]), await r.f32(`${p}mlp.up_proj.bias`, [I])]);
      layer.bDown = await r.f32(`${p}mlp.down_proj.bias`, [D]);
    }
    layers.push(layer);
  }
  return {
    embedding,
    layers,
    finalNorm: { weight: await r.f32('model.norm.weight', [D]) },
    // Tied checkpoints sometimes still carry a copy of lm_head.weight; HF ignores it, and so do we.
    lmHead: spec.tiedEmbeddings ? embedding : await r.matrix('lm_head.weight', [V, D]),
  };
}

/**
 * GPT-2 names (`h.N.attn.c_attn.weight`, ...) with or without the `transformer.` prefix that
 * GPT2LMHeadModel checkpoints may carry. Conv1D weights are [in, out]: transposed to [out, in]. c_attn's
 * output columns are q, k, v, so its transpose already is wqkv.
 */
async function loadGpt2(spec: ModelSpec, r: CheckedReader): Promise<CanonicalWeights> {
  const { vocabSize: V, hiddenSize: D, intermediateSize: I } = spec;
  let prefix = '';
  let wte = await r.optional('wte.weight', [V, D]);
  if (wte === undefined) {
    prefix = 'transformer.';
    wte = await r.optional(`${prefix}wte.weight`, [V, D]);
    if (wte === undefined) {
      const detail = 'missing from the checkpoint (also as transformer.wte.weight)';
      throw new ModelWeightsError('wte.weight', [V, D], null, detail);
    }
  }
  const embedding = r.dtype ? convert(wte, r.dtype) : wte;
  const conv1d = async (name: string, inDim: number, outDim: number) => {
    const t = transpose(await r.tensor(prefix + name, [inDim, outDim]));
    return r.dtype ? convert(t, r.dtype) : t;
  };
  const norm = async (name: string): Promise<NormWeights> => ({
    weight: await r.f32(`${prefix}${name}.weight`, [D]),
    bias: await r.f32(`${prefix}${name}.bias`, [D]),
  });
  const layers: CanonicalLayer[] = [];
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `h.${l}.`;
    layers.push({
      attnNorm: await norm(`${p}ln_1`),
      wqkv: await conv1d(`${p}attn.c_attn.weight`, D, 3 * D),
      bqkv: await r.f32(`${prefix}${p}attn.c_attn.bias`, [3 * D]),
      wo: await conv1d(`${p}attn.c_proj.weight`, D, D),
      bo: await r.f32(`${prefix}${p}attn.c_proj.bias`, [D]),
      mlpNorm: await norm(`${p}ln_2`),
      wUp: await conv1d(`${p}mlp.c_fc.weight`, D, I),
      bUp: await r.f32(`${prefix}${p}mlp.c_fc.bias`, [I]),
      wDown: await conv1d(`${p}mlp.c_proj.weight`, I, D),
      bDown: await r.f32(`${prefix}${p}mlp.c_proj.bias`, [D]),
    });
  }
  return {
    embedding,
    positionEmbedding: await r.matrix(`${prefix}wpe.weight`, [spec.maxContext, D]),
    layers,
    finalNorm: await norm('ln_f'),
    lmHead: spec.tiedEmbeddings ? embedding : await r.matrix('lm_head.weight', [V, D]),
  };
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
