/**
 * Streaming a checkpoint into its destination one bounded slice at a time, so loading never holds the model
 * in memory: each canonical tensor (per the architecture table) is announced to a TensorSink with its shape
 * and dtype, then its elements arrive as row slices of at most `sliceBytes` checkpoint bytes, each read by a
 * range request, widened or narrowed to the canonical dtype, written and dropped. Concatenated tensors (q|k|v,
 * gate|up) arrive as each part's slices at that part's offset; a transposed tensor (GPT-2's Conv1D) and
 * vectors arrive whole. Slices start on multiples of 64 elements (QUANT_SLICE_ALIGN), so a quantizing sink
 * sees whole blocks and whole scale words.
 * The values are exactly those loadCanonicalWeights produces (same conversions, element for element).
 */
import { decodeTensor, type TensorInfo, type TensorSource } from '../formats/safetensors';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../gpu/f16';
import { QUANT_SLICE_ALIGN } from '../quant/format';
import {
  architectureOf,
  canonicalShape,
  LAYER_TENSOR_NAMES,
  LAYER_TENSORS,
  MODEL_TENSORS,
  type CanonicalTensor,
  type LayerTensorName,
  type ModelTensorName,
} from './architectures';
import type { ModelSpec } from './config';
import { ModelWeightsError, type CanonicalWeights, type WeightDtype } from './weights';

/** Which canonical tensor: a model tensor, or a layer's. */
export type TensorKey = { layer: undefined; name: ModelTensorName } | { layer: number; name: LayerTensorName };

export type SliceData = Float32Array | Uint16Array;

export interface TensorSink {
  /** A canonical tensor starts: its shape, and the dtype its slices have (vectors are always f32). */
  begin(key: TensorKey, tensor: CanonicalTensor, shape: readonly number[], dtype: WeightDtype): Promise<void>;
  /** Elements [offset, offset + data.length) of the tensor, row-major; `data` may be reused after this returns. */
  write(key: TensorKey, offset: number, data: SliceData): Promise<void>;
}

/** Feeds canonical tensors, one after another, into a sink. */
export type WeightStream = (sink: TensorSink) => Promise<void>;

export interface StreamOptions {
  /** Dtype of the matrices; by default each keeps its checkpoint dtype (a fused matrix is f16 only when all parts are). */
  dtype?: WeightDtype;
  /** Most checkpoint bytes read at once (default 16 MiB); a slice is never less than 32 rows. */
  sliceBytes?: number;
  /** After each read, with its byte count and tensor name (progress). */
  onRead?: (bytes: number, tensor: string) => void;
  /** Checked between slices: an abort stops the stream with the signal's reason. */
  signal?: AbortSignal;
}

export const DEFAULT_SLICE_BYTES = 16 << 20;

/** A stream over a safetensors file or sharded model, in the order loadCanonicalWeights reads. */
export function checkpointStream(spec: ModelSpec, file: TensorSource, options: StreamOptions = {}): WeightStream {
  return async (sink) => {
    const map = architectureOf(spec).tensors;
    const embeddingName = typeof map.model.embedding === 'string' ? map.model.embedding : undefined;
    const prefix = embeddingName === undefined ? map.prefixes[0] : map.prefixes.find((p) => file.tensors.has(p + embeddingName));
    if (prefix === undefined) {
      const shape = canonicalShape(MODEL_TENSORS.embedding, spec);
      const others = map.prefixes.slice(1).map((p) => p + embeddingName);
      throw new ModelWeightsError(map.prefixes[0] + embeddingName, shape, null, `missing from the checkpoint (also as ${others.join(', ')})`);
    }
    const reader = new SliceReader(file, options);
    const modelName = (name: string) => (name === map.model.lmHead ? name : prefix + name);
    const model = (name: ModelTensorName) => reader.tensor(spec, sink, { layer: undefined, name }, MODEL_TENSORS[name], map.model[name], modelName);
    await model('embedding');
    await model('positionEmbedding');
    for (let l = 0; l < spec.numLayers; l++) {
      const layerName = (name: string) => `${prefix}${map.layerPrefix}${l}.${name}`;
      for (const name of LAYER_TENSOR_NAMES) await reader.tensor(spec, sink, { layer: l, name }, LAYER_TENSORS[name], map.layer[name], layerName);
    }
    await model('finalNorm');
    await model('finalNormBias');
    await model('lmHead');
  };
}

/** A stream over weights already in memory (random models, tests): each tensor is one slice. */
export function canonicalStream(spec: ModelSpec, w: CanonicalWeights): WeightStream {
  return async (sink) => {
    const one = async (key: TensorKey, t: CanonicalTensor, data: { dtype: WeightDtype; shape: number[]; data: SliceData } | undefined) => {
      if (!data) return;
      await sink.begin(key, t, data.shape, data.dtype);
      await sink.write(key, 0, data.data);
    };
    await one({ layer: undefined, name: 'embedding' }, MODEL_TENSORS.embedding, w.embedding);
    await one({ layer: undefined, name: 'positionEmbedding' }, MODEL_TENSORS.positionEmbedding, w.positionEmbedding);
    for (const [l, layer] of w.layers.entries()) {
      for (const name of LAYER_TENSOR_NAMES) await one({ layer: l, name }, LAYER_TENSORS[name], layer[name]);
    }
    await one({ layer: undefined, name: 'finalNorm' }, MODEL_TENSORS.finalNorm, w.finalNorm);
    await one({ layer: undefined, name: 'finalNormBias' }, MODEL_TENSORS.finalNormBias, w.finalNormBias);
    if (!spec.tiedEmbeddings) await one({ layer: undefined, name: 'lmHead' }, MODEL_TENSORS.lmHead, w.lmHead);
  };
}

const SOURCE_DTYPES = { F16: 2, BF16: 2, F32: 4 } as const;

class SliceReader {
  private readonly sliceBytes: number;

  constructor(
    private readonly file: TensorSource,
    private readonly options: StreamOptions,
  ) {
    this.sliceBytes = options.sliceBytes ?? DEFAULT_SLICE_BYTES;
  }

  /** The checkpoint tensor `name`, checked to exist with `shape` and a weight dtype. */
  private info(name: string, shape: readonly number[]): TensorInfo & { dtype: keyof typeof SOURCE_DTYPES } {
    const info = this.file.tensors.get(name);
    if (info === undefined) throw new ModelWeightsError(name, shape, null);
    if (info.shape.length !== shape.length || info.shape.some((n, i) => n !== shape[i])) throw new ModelWeightsError(name, shape, info.shape);
    if (!(info.dtype in SOURCE_DTYPES)) {
      throw new ModelWeightsError(name, info.shape, info.shape, `has dtype ${info.dtype}, but only F32, F16 and BF16 weights are supported`);
    }
    return info as TensorInfo & { dtype: keyof typeof SOURCE_DTYPES };
  }

  async tensor(
    spec: ModelSpec,
    sink: TensorSink,
    key: TensorKey,
    t: CanonicalTensor,
    source: string | { blocks: readonly string[] } | { transposed: string } | undefined,
    named: (name: string) => string,
  ): Promise<void> {
    if (!t.present(spec)) return;
    if (source === undefined) throw new Error(`the ${spec.modelType} tensor map has no source for ${key.name}`);
    const shape = canonicalShape(t, spec);
    if (typeof source === 'object' && 'transposed' in source) return this.transposed(sink, key, t, named(source.transposed), shape);
    const cols = shape[1] ?? 1;
    const parts = typeof source === 'string' ? [{ name: named(source), rows: shape[0] }] : source.blocks.map((b, i) => ({ name: named(b), rows: t.rows(spec)[i] }));
    const infos = parts.map((p) => this.info(p.name, t.cols ? [p.rows, cols] : [p.rows]));
    const dtype: WeightDtype = t.kind !== 'matrix' ? 'f32' : (this.options.dtype ?? (infos.every((i) => i.dtype === 'F16') ? 'f16' : 'f32'));
    await sink.begin(key, t, shape, dtype);
    // Parts whose starts are not on a boundary where quantizing may start (odd shapes) go through one
    // whole-tensor write instead.
    const aligned = t.kind === 'matrix' && parts.every((_, i) => (parts.slice(0, i).reduce((n, p) => n + p.rows, 0) * cols) % QUANT_SLICE_ALIGN === 0);
    if (!aligned) {
      const whole = dtype === 'f16' ? new Uint16Array(shape[0] * cols) : new Float32Array(shape[0] * cols);
      let at = 0;
      for (const info of infos) {
        const part = await this.read(info, 0, info.byteLength, dtype);
        whole.set(part, at);
        at += part.length;
      }
      return sink.write(key, 0, whole);
    }
    let rowOffset = 0;
    for (const [i, info] of infos.entries()) {
      const rowBytes = cols * SOURCE_DTYPES[info.dtype];
      // The fewest rows whose elements are a multiple of QUANT_SLICE_ALIGN (1 for cols a multiple of 64).
      const rowAlign = QUANT_SLICE_ALIGN / greatestCommonDivisor(cols, QUANT_SLICE_ALIGN);
      const sliceRows = Math.max(rowAlign, Math.floor(this.sliceBytes / rowBytes / rowAlign) * rowAlign);
      for (let row = 0; row < parts[i].rows; row += sliceRows) {
        const rows = Math.min(sliceRows, parts[i].rows - row);
        const data = await this.read(info, row * rowBytes, rows * rowBytes, dtype);
        await sink.write(key, (rowOffset + row) * cols, data);
      }
      rowOffset += parts[i].rows;
    }
  }

  /** A Conv1D weight stored [in, out]: read whole, written as [out, in]. */
  private async transposed(sink: TensorSink, key: TensorKey, t: CanonicalTensor, name: string, shape: number[]): Promise<void> {
    const [rows, cols] = shape;
    const info = this.info(name, [cols, rows]);
    const dtype: WeightDtype = this.options.dtype ?? (info.dtype === 'F16' ? 'f16' : 'f32');
    const source = await this.read(info, 0, info.byteLength, dtype);
    const out = dtype === 'f16' ? new Uint16Array(rows * cols) : new Float32Array(rows * cols);
    for (let r = 0; r < cols; r++) {
      for (let c = 0; c < rows; c++) out[c * cols + r] = source[r * rows + c];
    }
    await sink.begin(key, t, shape, dtype);
    await sink.write(key, 0, out);
  }

  /** Bytes [offset, offset + length) of a tensor, decoded (BF16 widened) and converted to `dtype`. */
  private async read(info: TensorInfo, offset: number, length: number, dtype: WeightDtype): Promise<SliceData> {
    if (this.options.signal?.aborted) throw this.options.signal.reason;
    const bytes = await this.file.readTensorRange(info.name, offset, length);
    this.options.onRead?.(length, info.name);
    if (info.dtype === 'BF16' && dtype === 'f16') return bf16BytesToF16(bytes);
    const { data } = decodeTensor({ ...info, byteLength: length }, bytes);
    if (dtype === 'f16') {
      if (data instanceof Uint16Array) return data;
      const out = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = f32ToF16Bits(data[i] as number);
      return out;
    }
    if (data instanceof Float32Array) return data;
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = f16BitsToF32(data[i] as number);
    return out;
  }
}

let bf16ToF16: Uint16Array | undefined;

/**
 * BF16 bytes straight to f16 bits through a 65536-entry table of f32ToF16Bits(bf16 value): the same halves
 * as widening to f32 and narrowing, at one lookup per element.
 */
function bf16BytesToF16(bytes: Uint8Array): Uint16Array {
  if (!bf16ToF16) {
    bf16ToF16 = new Uint16Array(65536);
    for (let b = 0; b < 65536; b++) bf16ToF16[b] = f32ToF16Bits(bf16BitsToF32(b));
  }
  const table = bf16ToF16;
  const out = new Uint16Array(bytes.byteLength >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  return out;
}

function greatestCommonDivisor(a: number, b: number): number {
  return b === 0 ? a : greatestCommonDivisor(b, a % b);
}
