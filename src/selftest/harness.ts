/** Helpers shared by the kernel checks: poisoned outputs, uploads and one-shot runs. */
import type { Gpu } from '../gpu/device';
import { runDispatches, type KernelDispatch } from '../gpu/dispatch';
import { fromF16, toF16 } from '../gpu/f16';
import { createTensor, numel, readTensor, uploadTensor, writeTensor, type DType, type Tensor } from '../gpu/tensor';

/** An output tensor filled with NaN, so a kernel that skips an element cannot pass by luck. */
export async function poisoned(gpu: Gpu, label: string, shape: readonly number[], dtype: DType = 'f32'): Promise<Tensor> {
  const t = await createTensor(gpu, label, dtype, shape);
  const n = numel(shape);
  writeTensor(gpu, t, dtype === 'f32' ? new Float32Array(n).fill(NaN) : new Uint32Array(n).fill(0xffffffff));
  return t;
}

export function upload(gpu: Gpu, label: string, shape: readonly number[], data: Float32Array): Promise<Tensor> {
  return uploadTensor(gpu, label, 'f32', shape, data);
}

/** Uploads weights as f32 or f16, returning also the values the GPU actually sees (f16-rounded). */
export async function uploadWeights(
  gpu: Gpu,
  label: string,
  shape: readonly number[],
  data: Float32Array,
  dtype: 'f32' | 'f16',
): Promise<{ tensor: Tensor; values: Float32Array }> {
  if (dtype === 'f32') return { tensor: await upload(gpu, label, shape, data), values: data };
  const bits = toF16(data);
  const tensor = await uploadTensor(gpu, label, 'f16', shape, bits);
  return { tensor, values: fromF16(bits) };
}

export async function runAndRead(gpu: Gpu, dispatches: KernelDispatch<string>[], out: Tensor): Promise<Float32Array | Uint32Array> {
  runDispatches(gpu, dispatches);
  return readTensor(gpu, out);
}

export function destroyAll(...tensors: (Tensor | undefined)[]): void {
  for (const t of tensors) t?.buffer.destroy();
}
