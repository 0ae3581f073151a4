/**
 * The GPU end of a weight stream (./stream.ts): each canonical tensor gets its buffer when it starts, and each
 * slice is written at its offset (quantized first, when asked, block for block as the CPU quantizer does for
 * the whole tensor) and dropped. Nothing is kept on the CPU between slices. Dawn keeps a copy of every
 * pending write until the queue catches up, so the upload waits for the queue every UPLOAD_FLUSH_BYTES.
 */
import type { Gpu } from '../gpu/device';
import { f16BitsToF32 } from '../gpu/f16';
import { createTensor, numel, type DType, type Tensor } from '../gpu/tensor';
import { quantizeSlice, type QuantDType } from '../quant/quantize';
import type { LayerTensorName, ModelTensorName } from './architectures';
import type { ModelSpec } from './config';
import type { WeightStream } from './stream';

const UPLOAD_FLUSH_BYTES = 64 << 20;

export interface UploadedTensors {
  model: Partial<Record<ModelTensorName, Tensor>>;
  layers: Partial<Record<LayerTensorName, Tensor>>[];
}

/**
 * How far a load is, by stage: `read` checkpoint bytes, `upload` bytes written to the GPU, `quantize` weights
 * quantized, `compile` steps (tuning and pipelines). `total` is 0 where the stage does not know it.
 */
export interface LoadProgress {
  stage: 'read' | 'upload' | 'quantize' | 'compile';
  done: number;
  total: number;
  /** The checkpoint tensor being read (read stage). */
  tensor?: string;
}

export interface UploadOptions {
  /** Quantize the matrices (not the embedding gather); under q4 the LM head is q8. */
  quantize?: QuantDType;
  /** Every buffer created, as it is created: the caller destroys them all if the load fails. */
  track: (t: Tensor) => Tensor;
  onProgress?: (p: LoadProgress) => void;
}

interface Target {
  tensor: Tensor;
  dtype: DType;
}

/** Runs `stream` into GPU buffers; a tied LM head is the embedding's buffer, or its own when quantized. */
export async function uploadStream(gpu: Gpu, spec: ModelSpec, stream: WeightStream, options: UploadOptions): Promise<UploadedTensors> {
  const quant = options.quantize;
  const out: UploadedTensors = { model: {}, layers: Array.from({ length: spec.numLayers }, () => ({})) };
  let targets: Target[] = [];
  let pending = 0;
  let uploaded = 0;
  let quantized = 0;
  const create = async (label: string, dtype: DType, shape: readonly number[]): Promise<Target> => ({
    tensor: options.track(await createTensor(gpu, label, dtype, shape)),
    dtype,
  });
  await stream({
    async begin(key, t, shape, dtype) {
      const label = key.layer === undefined ? t.label : `layer ${key.layer} ${t.label}`;
      const quantAs = (name: string): QuantDType | undefined => (quant === 'q4' && name === 'lmHead' ? 'q8' : quant);
      const destDtype: DType =
        key.name === 'positionEmbedding' || t.kind !== 'matrix' ? 'f32' : key.name === 'embedding' ? dtype : (quantAs(key.name) ?? dtype);
      targets = [await create(label, destDtype, shape)];
      if (key.layer === undefined) out.model[key.name] = targets[0].tensor;
      else out.layers[key.layer][key.name] = targets[0].tensor;
      if (key.name === 'embedding' && spec.tiedEmbeddings) {
        // The gather reads the embedding as is; a quantized head needs its own copy of the same rows.
        const head = quantAs('lmHead');
        if (head) targets.push(await create('LM head', head, shape));
        out.model.lmHead = targets[targets.length - 1].tensor;
      }
    },
    async write(_key, offset, data) {
      for (const { tensor, dtype } of targets) {
        let bytes: Uint8Array<ArrayBuffer>;
        let at: number;
        if (dtype === 'q8' || dtype === 'q4') {
          // Integers and block scales live in two regions of the buffer (src/quant/format.ts).
          const slice = quantizeSlice(dtype, data, offset, numel(tensor.shape));
          quantized += data.length;
          gpu.device.queue.writeBuffer(tensor.buffer, slice.scalesByteOffset, asBytes(slice.scales));
          uploaded += slice.scales.byteLength;
          pending += slice.scales.byteLength;
          bytes = asBytes(slice.ints);
          at = slice.intsByteOffset;
        } else if (dtype === 'f32') {
          bytes = asBytes(data instanceof Float32Array ? data : widen(data));
          at = offset * 4;
        } else {
          bytes = padTo4(asBytes(data));
          at = offset * 2;
        }
        gpu.device.queue.writeBuffer(tensor.buffer, at, bytes);
        uploaded += bytes.byteLength;
        pending += bytes.byteLength;
      }
      options.onProgress?.({ stage: 'upload', done: uploaded, total: 0 });
      if (quant) options.onProgress?.({ stage: 'quantize', done: quantized, total: 0 });
      if (pending >= UPLOAD_FLUSH_BYTES) {
        pending = 0;
        await gpu.device.queue.onSubmittedWorkDone();
      }
      if (gpu.lostError) throw gpu.lostError;
    },
  });
  await gpu.device.queue.onSubmittedWorkDone();
  return out;
}

function asBytes(data: Float32Array | Uint16Array | Uint32Array): Uint8Array<ArrayBuffer> {
  // Typed arrays default to ArrayBufferLike; ours are never shared, which is what writeBuffer's type wants.
  return new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
}

/** Buffer writes must be multiples of 4 bytes: an odd f16 count gets one zero half (the buffer is padded too). */
function padTo4(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  if (bytes.byteLength % 4 === 0) return bytes;
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  return padded;
}

function widen(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  return out;
}
