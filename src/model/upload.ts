/**
 * The GPU end of a weight stream (./stream.ts): each canonical tensor gets its buffer when it starts, and each
 * slice is written at its offset and dropped. Nothing is kept on the CPU between slices. Matrices to quantize
 * arrive as f16 and are quantized on the GPU: each slice's halves go, through reused mappable upload buffers,
 * into one reused staging buffer and the quantize kernel writes their blocks into the tensor's buffer (f32
 * slices, from in-memory models, are quantized on the CPU instead, block for block as the kernel would).
 * Dawn keeps a copy of every pending
 * write until the queue catches up, so the upload waits for the queue every UPLOAD_FLUSH_BYTES (QueueWait).
 * A matrix larger than one binding goes into row ranges of its own buffers (./split.ts), each slice cut at
 * the parts' boundaries.
 */
import type { Gpu } from '../gpu/device';
import { f16BitsToF32 } from '../gpu/f16';
import { createBuffer, createTensor, dataBytes, numel, readBuffer, type DType, type Tensor } from '../gpu/tensor';
import { createQuantizeStatus, QuantizeDispatch, quantizeFailure } from '../kernels/quantize/quantize';
import { QUANT_SLICE_ALIGN } from '../quant/format';
import { quantizeSlice, type QuantDType } from '../quant/quantize';
import { canonicalShape, LAYER_TENSOR_NAMES, LAYER_TENSORS, MODEL_TENSORS, type CanonicalTensor, type LayerTensorName, type ModelTensorName } from './architectures';
import type { ModelSpec } from './config';
import { partRows, rowParts, type BindingLimit, type Weight } from './split';
import type { TensorKey, WeightStream } from './stream';
import type { WeightDtype } from './weights';

const UPLOAD_FLUSH_BYTES = 64 << 20;

/** Most bytes of f16 weights the quantize kernel reads at once: the staging buffer, allocated once per load. */
const QUANTIZE_STAGING_BYTES = 16 << 20;

/**
 * Mappable buffers, as large as the staging buffer, that the halves to quantize go through: a writeBuffer of a
 * slice this large makes Dawn allocate, zero and free a staging buffer of its own each time (on lavapipe about
 * as much CPU as reading the file), where these are allocated once per load and reused once a queue wait has
 * seen their last copy done.
 */
const QUANTIZE_UPLOAD_BUFFERS = 4;

export interface UploadedTensors {
  model: Partial<Record<ModelTensorName, Weight>>;
  layers: Partial<Record<LayerTensorName, Weight>>[];
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
  /** Where f16 matrices are quantized: on the GPU (default), or by the CPU quantizer (the reference, for tests). */
  quantizeOn?: 'gpu' | 'cpu';
  /** The matrices' dtype as the stream delivers them, for the progress totals (without it they are 0). */
  dtype?: WeightDtype;
  /**
   * Tensors allocated before the stream (allocateTensors), written in place where dtype and shape match; one
   * that does not is replaced by a new tensor and passed to `release`.
   */
  into?: UploadedTensors;
  release?: (t: Tensor) => void;
  /** Every buffer created, as it is created: the caller destroys them all if the load fails. */
  track: (t: Tensor) => Tensor;
  onProgress?: (p: LoadProgress) => void;
  /** Split matrices larger than this across buffers by rows (./split.ts); by default none is split. */
  bindingLimit?: BindingLimit;
}

/** One buffer of a destination: elements [first, first + count) of the whole tensor. */
interface PartTarget {
  tensor: Tensor;
  first: number;
  count: number;
  /** The quantize launch into this buffer, made at its first f16 slice. */
  quantizer?: QuantizeDispatch;
}

interface Target {
  weight: Weight;
  dtype: DType;
  label: string;
  /** Its one buffer, or the row ranges of a split matrix. */
  parts: PartTarget[];
}

function targetOf(weight: Weight, label: string): Target {
  const cols = weight.shape[1] ?? 1;
  const parts = rowParts(weight).map(({ tensor, firstRow }) => ({ tensor, first: firstRow * cols, count: numel(tensor.shape) }));
  return { weight, dtype: weight.dtype, label, parts };
}

/** A tensor's buffer, or (a matrix over `limit`, except the position table the gather reads whole) its row ranges' buffers. */
async function createWeight(
  gpu: Gpu,
  key: TensorKey,
  label: string,
  dtype: DType,
  shape: readonly number[],
  kind: CanonicalTensor['kind'],
  options: Pick<UploadOptions, 'track' | 'bindingLimit'>,
): Promise<Weight> {
  const splittable = kind === 'matrix' && key.name !== 'positionEmbedding' && options.bindingLimit;
  const rows = splittable ? partRows(`the ${label}`, dtype, shape, options.bindingLimit!) : [shape[0]];
  if (rows.length === 1) return options.track(await createTensor(gpu, label, dtype, shape));
  const parts: Tensor[] = [];
  let first = 0;
  for (const count of rows) {
    parts.push(options.track(await createTensor(gpu, `${label} rows ${first}–${first + count - 1}`, dtype, [count, shape[1]])));
    first += count;
  }
  return { dtype, shape: [...shape], parts };
}

/** Where a canonical tensor goes: f32 vectors and position table, the embedding as streamed, matrices quantized when asked (the LM head q8 under q4). */
function destinationOf(quant: QuantDType | undefined): (name: string, t: CanonicalTensor, dtype: WeightDtype) => DType {
  const quantAs = (name: string): QuantDType | undefined => (quant === 'q4' && name === 'lmHead' ? 'q8' : quant);
  return (name, t, dtype) => (name === 'positionEmbedding' || t.kind !== 'matrix' ? 'f32' : name === 'embedding' ? dtype : (quantAs(name) ?? dtype));
}

function tensorLabel(key: TensorKey, t: CanonicalTensor): string {
  return key.layer === undefined ? t.label : `layer ${key.layer} ${t.label}`;
}

/**
 * Every tensor a stream of `spec` with matrices in `dtype` will write, allocated (zeroed) before it starts, so
 * that what reads them (the plans' bind groups) can be prepared while the weights arrive.
 */
export async function allocateTensors(
  gpu: Gpu,
  spec: ModelSpec,
  dtype: WeightDtype,
  quant: QuantDType | undefined,
  track: (t: Tensor) => Tensor,
  bindingLimit?: BindingLimit,
): Promise<UploadedTensors> {
  const destination = destinationOf(quant);
  const out: UploadedTensors = { model: {}, layers: Array.from({ length: spec.numLayers }, () => ({})) };
  const allocate = async (key: TensorKey, t: CanonicalTensor) =>
    t.present(spec) ? createWeight(gpu, key, tensorLabel(key, t), destination(key.name, t, dtype), canonicalShape(t, spec), t.kind, { track, bindingLimit }) : undefined;
  for (const name of Object.keys(MODEL_TENSORS) as ModelTensorName[]) {
    const tensor = await allocate({ layer: undefined, name }, MODEL_TENSORS[name]);
    if (tensor) out.model[name] = tensor;
  }
  if (spec.tiedEmbeddings) {
    const head = destination('lmHead', MODEL_TENSORS.lmHead, dtype);
    const headKey: TensorKey = { layer: undefined, name: 'lmHead' };
    out.model.lmHead =
      head === dtype ? out.model.embedding : await createWeight(gpu, headKey, 'LM head', head, canonicalShape(MODEL_TENSORS.embedding, spec), 'matrix', { track, bindingLimit });
  }
  for (const [l, layer] of out.layers.entries()) {
    for (const name of LAYER_TENSOR_NAMES) {
      const tensor = await allocate({ layer: l, name }, LAYER_TENSORS[name]);
      if (tensor) layer[name] = tensor;
    }
  }
  return out;
}

/** Runs `stream` into GPU buffers; a tied LM head is the embedding's buffer, or its own when quantized. */
export async function uploadStream(gpu: Gpu, spec: ModelSpec, stream: WeightStream, options: UploadOptions): Promise<UploadedTensors> {
  const quant = options.quantize;
  const destination = destinationOf(quant);
  const onGpu = (dtype: WeightDtype) => dtype === 'f16' && options.quantizeOn !== 'cpu';
  const totals = uploadTotals(spec, options.dtype, destination, onGpu);
  const out: UploadedTensors = { model: {}, layers: Array.from({ length: spec.numLayers }, () => ({})) };
  const queueWait = new QueueWait(gpu);
  const quantizer = new SliceQuantizer(gpu, totals.largestMatrixBytes, queueWait);
  let targets: Target[] = [];
  let uploaded = 0;
  let quantized = 0;
  /** The allocated tensor where it fits, else a new one (the allocated one released). */
  const target = async (key: TensorKey, label: string, dtype: DType, shape: readonly number[], kind: CanonicalTensor['kind'], allocated: Weight | undefined): Promise<Target> => {
    if (allocated && allocated.dtype === dtype && allocated.shape.length === shape.length && allocated.shape.every((n, i) => n === shape[i])) {
      return targetOf(allocated, label);
    }
    if (allocated) for (const { tensor } of rowParts(allocated)) options.release?.(tensor);
    return targetOf(await createWeight(gpu, key, label, dtype, shape, kind, options), label);
  };
  // Gemma's RMSNorm weights are used as 1 + w: stored so, the norm kernels need not know.
  let plusOne = false;
  try {
    await stream({
      async begin(key, t, shape, dtype) {
        quantizer.release(targets);
        plusOne = spec.normPlusOne && t.kind === 'norm';
        const into = options.into;
        const allocated = key.layer === undefined ? into?.model[key.name] : into?.layers[key.layer][key.name];
        targets = [await target(key, tensorLabel(key, t), destination(key.name, t, dtype), shape, t.kind, allocated)];
        if (key.layer === undefined) out.model[key.name] = targets[0].weight;
        else out.layers[key.layer][key.name] = targets[0].weight;
        if (key.name === 'embedding' && spec.tiedEmbeddings) {
          // The gather reads the embedding as is; a quantized head needs its own copy of the same rows.
          const head = destination('lmHead', MODEL_TENSORS.lmHead, dtype);
          const allocatedHead = into?.model.lmHead === into?.model.embedding ? undefined : into?.model.lmHead;
          if (head !== dtype) targets.push(await target({ layer: undefined, name: 'lmHead' }, 'LM head', head, shape, 'matrix', allocatedHead));
          out.model.lmHead = targets[targets.length - 1].weight;
        }
      },
      async write(_key, offset, data) {
        for (const { dtype, label, parts } of targets) {
          for (const part of parts) {
            // The slice's elements that fall in this part, at their offset within it.
            const start = Math.max(offset, part.first);
            const end = Math.min(offset + data.length, part.first + part.count);
            if (start >= end) continue;
            const piece = start === offset && end === offset + data.length ? data : data.subarray(start - offset, end - offset);
            const at = start - part.first;
            const { tensor } = part;
            let bytes: Uint8Array<ArrayBuffer>;
            let byteOffset: number;
            if ((dtype === 'q8' || dtype === 'q4') && piece instanceof Uint16Array && options.quantizeOn !== 'cpu') {
              uploaded += await quantizer.quantize(part, label, at, piece);
              quantized += piece.length;
              continue;
            }
            if (dtype === 'q8' || dtype === 'q4') {
              // Integers and block scales live in two regions of the buffer (src/quant/format.ts).
              const slice = quantizeSlice(dtype, piece, at, part.count);
              quantized += piece.length;
              gpu.device.queue.writeBuffer(tensor.buffer, slice.scalesByteOffset, asBytes(slice.scales));
              uploaded += slice.scales.byteLength;
              queueWait.pending += slice.scales.byteLength;
              bytes = asBytes(slice.ints);
              byteOffset = slice.intsByteOffset;
            } else if (dtype === 'f32') {
              const values = piece instanceof Float32Array ? piece : widen(piece);
              bytes = asBytes(plusOne ? values.map((v) => 1 + v) : values);
              byteOffset = at * 4;
            } else {
              bytes = padTo4(asBytes(piece));
              byteOffset = at * 2;
            }
            gpu.device.queue.writeBuffer(tensor.buffer, byteOffset, bytes);
            uploaded += bytes.byteLength;
            queueWait.pending += bytes.byteLength;
          }
        }
        options.onProgress?.({ stage: 'upload', done: uploaded, total: totals.uploadBytes });
        if (quant) options.onProgress?.({ stage: 'quantize', done: quantized, total: totals.quantizeElements });
        if (queueWait.pending >= UPLOAD_FLUSH_BYTES) {
          await queueWait.wait();
        }
        if (gpu.lostError) throw gpu.lostError;
      },
    });
    await queueWait.wait();
    await quantizer.check();
    return out;
  } finally {
    quantizer.release(targets);
    quantizer.destroy();
  }
}

/**
 * What a load will upload, from the spec alone, for the progress totals: bytes written to the GPU (f16 halves
 * for the matrices the GPU quantizes) and elements quantized; and the largest matrix in f16 bytes.
 */
function uploadTotals(
  spec: ModelSpec,
  dtype: WeightDtype | undefined,
  destination: (name: string, t: CanonicalTensor, dtype: WeightDtype) => DType,
  onGpu: (dtype: WeightDtype) => boolean,
): { uploadBytes: number; quantizeElements: number; largestMatrixBytes: number } {
  const totals = { uploadBytes: 0, quantizeElements: 0, largestMatrixBytes: 0 };
  const add = (name: string, t: CanonicalTensor, copies: number) => {
    if (!t.present(spec)) return;
    const shape = canonicalShape(t, spec);
    if (t.kind === 'matrix') totals.largestMatrixBytes = Math.max(totals.largestMatrixBytes, numel(shape) * 2);
    if (!dtype) return;
    const dest = destination(name, t, dtype);
    const quantized = dest === 'q8' || dest === 'q4';
    totals.uploadBytes += copies * (quantized && onGpu(dtype) ? numel(shape) * 2 : dataBytes(dest, shape));
    if (quantized) totals.quantizeElements += copies * numel(shape);
  };
  for (const [name, t] of Object.entries(MODEL_TENSORS)) add(name, t, 1);
  // A tied, quantized head is a second, quantized copy of the embedding's rows.
  if (spec.tiedEmbeddings && dtype && destination('lmHead', MODEL_TENSORS.lmHead, dtype) !== dtype) add('lmHead', { ...MODEL_TENSORS.lmHead, present: () => true }, 1);
  for (const name of LAYER_TENSOR_NAMES) add(name, LAYER_TENSORS[name], spec.numLayers);
  return totals;
}

/**
 * Quantizes f16 slices on the GPU: one staging buffer for the halves (reused, writes are ordered after the
 * launch before them by the queue), one status buffer for the whole load, one launch per tensor.
 */
class SliceQuantizer {
  private staging?: GPUBuffer;
  private status?: GPUBuffer;
  /** The label of each tensor the kernel quantized, by the slot it reports non-finite values under. */
  private readonly labels: string[] = [];
  /** Each upload buffer and the queue wait after which its last copy was certainly done. */
  private readonly uploads: { buffer: GPUBuffer; idleAfter: number }[] = [];

  constructor(
    private readonly gpu: Gpu,
    private readonly largestBytes: number,
    private readonly queueWait: QueueWait,
  ) {}

  /** Copies `bytes` into the staging buffer through an upload buffer: an idle one, else a new one, else after a queue wait. */
  private async upload(staging: GPUBuffer, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    let upload = this.uploads.find((u) => u.idleAfter <= this.queueWait.count);
    if (!upload && this.uploads.length < QUANTIZE_UPLOAD_BUFFERS) {
      const buffer = await createBuffer(this.gpu, 'quantize upload', staging.size, GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC);
      upload = { buffer, idleAfter: 0 };
      this.uploads.push(upload);
    }
    if (!upload) {
      await this.queueWait.wait();
      upload = this.uploads[0];
    }
    await upload.buffer.mapAsync(GPUMapMode.WRITE);
    new Uint8Array(upload.buffer.getMappedRange(0, bytes.byteLength)).set(bytes);
    upload.buffer.unmap();
    upload.idleAfter = this.queueWait.count + 1;
    this.queueWait.pending += bytes.byteLength;
    const encoder = this.gpu.device.createCommandEncoder({ label: 'quantize upload' });
    encoder.copyBufferToBuffer(upload.buffer, 0, staging, 0, bytes.byteLength);
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  /** Writes the slice's halves to staging, in pieces as large as it holds, and quantizes each; returns bytes written. */
  async quantize(target: PartTarget, label: string, offset: number, data: Uint16Array): Promise<number> {
    const staging = (this.staging ??= await createBuffer(
      this.gpu,
      'quantize staging',
      Math.ceil(Math.min(QUANTIZE_STAGING_BYTES, Math.max(this.largestBytes, data.byteLength)) / 4) * 4,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    ));
    this.status ??= await createQuantizeStatus(this.gpu);
    if (!target.quantizer) {
      target.quantizer = await QuantizeDispatch.create(this.gpu, { input: staging, out: target.tensor, status: this.status, slot: this.labels.length });
      this.labels.push(label);
    }
    // Pieces start on QUANT_SLICE_ALIGN, so each is a slice the kernel takes on its own.
    const piece = Math.floor(staging.size / 2 / QUANT_SLICE_ALIGN) * QUANT_SLICE_ALIGN;
    for (let start = 0; start < data.length; start += piece) {
      const part = data.subarray(start, start + piece);
      await this.upload(staging, padTo4(asBytes(part)));
      target.quantizer.run(offset + start, part.length);
    }
    return data.byteLength;
  }

  /** Frees the launches of tensors that are complete. */
  release(targets: readonly Target[]): void {
    for (const t of targets.flatMap((target) => target.parts)) {
      t.quantizer?.dispose();
      t.quantizer = undefined;
    }
  }

  /** After the last launch: refuses the load if any quantized tensor held an infinity or NaN. */
  async check(): Promise<void> {
    if (!this.status) return;
    const slot = quantizeFailure(new Uint32Array(await readBuffer(this.gpu, this.status)));
    if (slot !== undefined) throw new RangeError(`quantize: ${this.labels[slot]} holds a non-finite value`);
  }

  destroy(): void {
    this.staging?.destroy();
    this.status?.destroy();
    for (const { buffer } of this.uploads) buffer.destroy();
  }
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

/**
 * Waits for the queue to finish what was submitted. Where such waits spin on this thread (Dawn in Node) and the
 * GPU is the CPU's own threads, a wait first sleeps most of the time the GPU should need for the bytes written
 * since the last wait, at the pace measured so far, and polls only for the rest. Elsewhere it just waits.
 */
class QueueWait {
  /** Bytes written to the GPU since the last wait. */
  pending = 0;
  /** Waits completed: work submitted before wait n began is done once `count` reaches n. */
  count = 0;
  private msPerByte = 0;
  private readonly sleeps: boolean;

  constructor(private readonly gpu: Gpu) {
    this.sleeps = gpu.busyPollingWaits && gpu.isSoftwareAdapter;
  }

  async wait(): Promise<void> {
    const bytes = this.pending;
    this.pending = 0;
    const start = performance.now();
    const sleepMs = this.sleeps ? Math.floor(0.8 * this.msPerByte * bytes) : 0;
    if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
    const polled = performance.now();
    await this.gpu.device.queue.onSubmittedWorkDone();
    const end = performance.now();
    if (bytes > 0) {
      // Done already when polled: the sleep overshot (a stall earlier inflated the pace), so the pace is halved
      // rather than taken from a time that was mostly sleep.
      this.msPerByte = sleepMs > 0 && end - polled < 1 ? this.msPerByte / 2 : (end - start) / bytes;
    }
    this.count++;
  }
}
