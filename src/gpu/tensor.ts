/**
 * A tensor is a GPU buffer with a dtype and a row-major shape. f16 data is stored as raw halves, two per
 * 32-bit word (element 2i in the low half), which is the same bytes whether a kernel reads it as
 * `array<u32>` with `unpack2x16float` or as native `array<f16>`.
 */
import { withErrorScopes, type Gpu } from './device';
import { LimitsExceededError, ShapeError } from './errors';
import { isQuantDType, quantizedWords, type QuantDType } from '../quant/format';

/** q8 and q4 are quantized weights, stored in blocks (src/quant/format.ts) rather than per element. */
export type DType = 'f32' | 'f16' | 'u32' | QuantDType;

export interface Tensor {
  buffer: GPUBuffer;
  dtype: DType;
  shape: readonly number[];
}

export const BYTES_PER_ELEMENT: Record<Exclude<DType, QuantDType>, number> = { f32: 4, f16: 2, u32: 4 };

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes of a tensor's data, unpadded (whole blocks for the quantized dtypes). */
export function dataBytes(dtype: DType, shape: readonly number[]): number {
  const n = numel(shape);
  return isQuantDType(dtype) ? quantizedWords(dtype, n) * 4 : n * BYTES_PER_ELEMENT[dtype];
}

/** Bytes a tensor needs, padded to 4 because buffer sizes and writes must be multiples of 4. */
export function tensorBytes(dtype: DType, shape: readonly number[]): number {
  const bytes = dataBytes(dtype, shape);
  if (!Number.isSafeInteger(bytes)) throw new ShapeError('tensor', `shape [${shape}] is too large`);
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/** Allocates a buffer after checking the device limits, catching validation and out-of-memory errors. */
export async function createBuffer(gpu: Gpu, label: string, size: number, usage: number): Promise<GPUBuffer> {
  const { limits } = gpu.device;
  if (size > limits.maxBufferSize) throw new LimitsExceededError(`buffer "${label}"`, size, limits.maxBufferSize, 'maxBufferSize');
  return withErrorScopes(gpu, `allocating buffer "${label}" (${size} bytes)`, () =>
    gpu.device.createBuffer({ label, size, usage }),
  );
}

export async function createTensor(gpu: Gpu, label: string, dtype: DType, shape: readonly number[]): Promise<Tensor> {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(label, `bad dimension ${d} in shape [${shape}]`);
  }
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  return { buffer: await createBuffer(gpu, label, tensorBytes(dtype, shape), usage), dtype, shape: [...shape] };
}

export type TensorData = Float32Array | Uint16Array | Uint32Array;

export async function uploadTensor(
  gpu: Gpu,
  label: string,
  dtype: DType,
  shape: readonly number[],
  data: TensorData,
): Promise<Tensor> {
  // Quantized tensors arrive as their u32 words (src/quant/quantize.ts).
  const expected = dtype === 'f32' ? Float32Array : dtype === 'f16' ? Uint16Array : Uint32Array;
  const length = dataBytes(dtype, shape) / expected.BYTES_PER_ELEMENT;
  if (!(data instanceof expected) || data.length !== length) {
    throw new ShapeError(label, `expected ${length} ${dtype} values as ${expected.name}, got ${data.length}`);
  }
  const t = await createTensor(gpu, label, dtype, shape);
  writeTensor(gpu, t, data);
  return t;
}

export function writeTensor(gpu: Gpu, t: Tensor, data: TensorData): void {
  // Typed arrays default to ArrayBufferLike; ours are never shared, which is what writeBuffer's type wants.
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) gpu.device.queue.writeBuffer(t.buffer, 0, bytes);
  else {
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    gpu.device.queue.writeBuffer(t.buffer, 0, padded);
  }
}

/** Copies a buffer back to the CPU. Slow (a round trip): for tests, tools and reading back small results. */
export async function readBuffer(gpu: Gpu, buffer: GPUBuffer, size = buffer.size, offset = 0): Promise<ArrayBuffer> {
  if (gpu.lostError) throw gpu.lostError;
  const staging = gpu.device.createBuffer({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const encoder = gpu.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    gpu.device.queue.submit([encoder.finish()]);
    await Promise.race([staging.mapAsync(GPUMapMode.READ), gpu.lost.then((e) => Promise.reject(e))]);
    // A device lost mid-read can still resolve the map, with zeros: never return those as data.
    if (gpu.lostError) throw gpu.lostError;
    return staging.getMappedRange().slice(0);
  } finally {
    staging.destroy();
  }
}

export async function readTensor(gpu: Gpu, t: Tensor): Promise<Float32Array | Uint32Array> {
  const data = await readBuffer(gpu, t.buffer);
  const n = numel(t.shape);
  if (t.dtype === 'f32') return new Float32Array(data, 0, n);
  if (t.dtype === 'u32') return new Uint32Array(data, 0, n);
  throw new ShapeError('readTensor', `${t.dtype} tensors are weights; read them back as raw bytes with readBuffer`);
}

/** Throws unless `rows` (the rows a call uses) is an integer in [0, maxRows] (the rows the buffers hold). */
export function checkRows(kernel: string, rows: number, maxRows: number): void {
  if (!Number.isInteger(rows) || rows < 0 || rows > maxRows) {
    throw new ShapeError(kernel, `rows must be an integer in [0, ${maxRows}], got ${rows}`);
  }
}

/** Throws unless `t` has exactly `shape` and `dtype` (one of them when a list), and its buffer holds it. */
export function expectTensor(kernel: string, name: string, t: Tensor, dtype: DType | readonly DType[], shape: readonly number[]): void {
  const dtypes = typeof dtype === 'string' ? [dtype] : dtype;
  if (!dtypes.includes(t.dtype)) throw new ShapeError(kernel, `${name} must be ${dtypes.join(' or ')}, got ${t.dtype}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(kernel, `${name} must have shape [${shape}], got [${t.shape}]`);
  }
  const bytes = dataBytes(t.dtype, shape);
  if (t.buffer.size < bytes) {
    throw new ShapeError(kernel, `${name} buffer holds ${t.buffer.size} bytes, needs ${bytes} for shape [${shape}]`);
  }
}
