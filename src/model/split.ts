/**
 * Weight matrices larger than one storage binding (a 151936-row LM head on a phone GPU whose
 * maxStorageBufferBindingSize is 128 MiB) are stored as consecutive row ranges, each in its own buffer as an
 * independent tensor of its rows in the same dtype (a quantized part has its own scales; as parts start on
 * multiples of PART_ROW_ALIGN rows, its blocks are exactly the whole tensor's). Kernels run once per part:
 * the gather picks the part that holds each id, a projection writes its part's outputs at the part's offset,
 * so what follows sees one contiguous result.
 */
import { LimitsExceededError } from '../gpu/errors';
import { tensorBytes, type DType, type Tensor } from '../gpu/tensor';

/**
 * Rows at which a part may start: 64 f32 outputs are 256 bytes, the largest minStorageBufferOffsetAlignment
 * WebGPU allows, so a part's outputs can be bound where they start; and 64·cols elements keep quantization
 * blocks and scale words whole.
 */
export const PART_ROW_ALIGN = 64;

/** A [rows, cols] matrix stored as row ranges in several buffers; `parts[i].shape` is [rows_i, cols]. */
export interface SplitTensor {
  dtype: DType;
  shape: readonly number[];
  parts: readonly Tensor[];
}

/** A weight matrix on the GPU: one buffer, or row ranges in several. */
export type Weight = Tensor | SplitTensor;

export function isSplit(w: Weight): w is SplitTensor {
  return 'parts' in w;
}

/** The buffers of `w` with the first row of the whole matrix each holds. */
export function rowParts(w: Weight): { tensor: Tensor; firstRow: number }[] {
  if (!isSplit(w)) return [{ tensor: w, firstRow: 0 }];
  let firstRow = 0;
  return w.parts.map((tensor) => {
    const part = { tensor, firstRow };
    firstRow += tensor.shape[0];
    return part;
  });
}

/** The most bytes one weight buffer may hold, and the limit that says so (for errors). */
export interface BindingLimit {
  bytes: number;
  name: string;
}

/**
 * The largest buffer one weight tensor may have: one storage binding and one buffer on this device, or
 * `maxBindingSize` when smaller (tests use it to split small models; it also works around drivers whose
 * largest allocations fail).
 */
export function weightBindingLimit(limits: GPUSupportedLimits, maxBindingSize?: number): BindingLimit {
  const device: BindingLimit =
    limits.maxBufferSize < limits.maxStorageBufferBindingSize
      ? { bytes: limits.maxBufferSize, name: 'maxBufferSize' }
      : { bytes: limits.maxStorageBufferBindingSize, name: 'maxStorageBufferBindingSize' };
  return maxBindingSize !== undefined && maxBindingSize < device.bytes ? { bytes: maxBindingSize, name: 'maxBindingSize' } : device;
}

/**
 * Rows of each part of a [rows, cols] `dtype` matrix whose buffers may hold at most `limit` bytes: one part
 * when it fits, else as many rows per part as fit (a multiple of PART_ROW_ALIGN) and the rest in the last.
 * A LimitsExceededError naming `what` when not even PART_ROW_ALIGN rows fit.
 */
export function partRows(what: string, dtype: DType, shape: readonly number[], limit: BindingLimit): number[] {
  const [rows, cols] = shape;
  if (tensorBytes(dtype, shape) <= limit.bytes) return [rows];
  const rowBytes = tensorBytes(dtype, [PART_ROW_ALIGN, cols]) / PART_ROW_ALIGN;
  let perPart = Math.floor(limit.bytes / rowBytes / PART_ROW_ALIGN) * PART_ROW_ALIGN;
  // Quantized sizes round up per tensor (scale words padded to 16 bytes): step down until the part fits.
  while (perPart > 0 && tensorBytes(dtype, [perPart, cols]) > limit.bytes) perPart -= PART_ROW_ALIGN;
  if (perPart === 0) {
    const least = `${PART_ROW_ALIGN} rows of ${what} (the least a part of a split tensor holds)`;
    throw new LimitsExceededError(least, tensorBytes(dtype, [PART_ROW_ALIGN, cols]), limit.bytes, limit.name);
  }
  const parts: number[] = [];
  for (let row = 0; row < rows; row += perPart) parts.push(Math.min(perPart, rows - row));
  return parts;
}

/** Bytes of the buffers a matrix is stored in (see partRows): the parts' padding included. */
export function splitTensorBytes(what: string, dtype: DType, shape: readonly number[], limit: BindingLimit): number {
  return partRows(what, dtype, shape, limit).reduce((sum, rows) => sum + tensorBytes(dtype, [rows, shape[1]]), 0);
}
