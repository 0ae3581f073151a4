/** Helpers shared by the kernel checks: poisoned outputs, uploads, one-shot runs and row-wise comparisons. */
import type { Gpu } from '../gpu/device';
import { runDispatches, type KernelDispatch } from '../gpu/dispatch';
import { fromF16, toF16 } from '../gpu/f16';
import { createTensor, numel, readBuffer, readTensor, tensorBytes, uploadTensor, writeTensor, type DType, type Tensor } from '../gpu/tensor';
import { check, type CheckResult } from './compare';
import { randomNormal, type Rng } from '../util/random';

/** An output tensor filled with NaN, so a kernel that skips an element cannot pass by luck. */
export async function poisoned(gpu: Gpu, label: string, shape: readonly number[], dtype: DType = 'f32'): Promise<Tensor> {
  const t = await createTensor(gpu, label, dtype, shape);
  const n = numel(shape);
  // u32 and the quantized dtypes: every word all ones (a q8/q4 tensor's words are not one per element).
  const poison = dtype === 'f32' ? new Float32Array(n).fill(NaN) : dtype === 'f16' ? new Uint16Array(n).fill(0xffff) : new Uint32Array(tensorBytes(dtype, shape) / 4).fill(0xffffffff);
  writeTensor(gpu, t, poison);
  return t;
}

/** Reads an f32 or f16 tensor back as f32 values. */
export async function readValues(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  if (t.dtype !== 'f16') return Float32Array.from(await readTensor(gpu, t));
  return fromF16(new Uint16Array(await readBuffer(gpu, t.buffer), 0, numel(t.shape)));
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

/**
 * Tighter than the 1e-6 used for matmul: nothing here accumulates more than a softmax row sum, and results
 * measure ~1e-14 (add and embedding exactly 0: f16 tables widen exactly and the reference sees the same
 * f16-rounded values). At 1e-6 even exact-erf GELU would pass for the tanh approximation (NMSE ~4e-8);
 * 1e-9 still leaves room for exp's allowed error and for drivers that flush f16 subnormals.
 */
export const ELEMENTWISE_TOLERANCE = 1e-9;

export interface ElementwiseCase {
  /** Rows the tensors hold. */
  maxRows: number;
  /** Rows to compute, set with `set({ rows })` after prepare; defaults to maxRows. */
  rows?: number;
  /** Values per row. */
  width: number;
  /** Mix in huge inputs (up to ±1e30) to show that no NaN or Infinity comes out. */
  extremes?: boolean;
}

const EXTREMES = [20, 50, 100, 1e4, 1e10, 1e30];

export function extreme(rng: Rng): number {
  return EXTREMES[rng.int(EXTREMES.length)] * (rng.next() < 0.5 ? -1 : 1);
}

export function randomInputs(rng: Rng, n: number, scale: number, extremes = false): Float32Array {
  const x = randomNormal(rng, n, scale);
  if (extremes) for (let i = 0; i < n; i += 7) x[i] = extreme(rng);
  return x;
}

/** Compares the first `expected.length` values; everything after them (rows past `rows`) must still be NaN. */
export function checkRows(name: string, seed: number, actual: Float32Array, expected: Float32Array): CheckResult {
  const n = expected.length;
  const result = check(name, seed, ELEMENTWISE_TOLERANCE, actual.subarray(0, n), expected);
  const written = actual.subarray(n).findIndex((v) => !Number.isNaN(v));
  if (written < 0) return result;
  return { ...result, name: `${name}: wrote past the last row, at index ${n + written}`, nmse: Infinity, passed: false, worstIndex: n + written };
}

export function rowsLabel(c: { maxRows: number; rows?: number }): string {
  return c.rows === undefined ? `rows=${c.maxRows}` : `rows=${c.rows}/${c.maxRows}`;
}

export async function readF32(gpu: Gpu, op: KernelDispatch<string> | KernelDispatch<string>[], out: Tensor): Promise<Float32Array> {
  const ops = Array.isArray(op) ? op : [op];
  const data = await runAndRead(gpu, ops, out);
  if (!(data instanceof Float32Array)) throw new TypeError(`expected f32 output from ${ops[0].name}`);
  return data;
}
