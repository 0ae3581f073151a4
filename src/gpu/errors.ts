/**
 * Typed errors for everything that can go wrong between us and the GPU. Each message says what happened
 * and what the user can do about it; `instanceof` (or `.name`) tells callers which case they are in.
 */

export class WebGPUUnavailableError extends Error {
  override readonly name = 'WebGPUUnavailableError';
  constructor(readonly reason: string) {
    super(
      `WebGPU is not available: ${reason}. Use a browser with WebGPU enabled (Chrome/Edge 113+, ` +
        `Safari 26+, or Firefox 141+ on Windows), or in Node install the "webgpu" package and a Vulkan driver.`,
    );
  }
}

export class DeviceLostError extends Error {
  override readonly name = 'DeviceLostError';
  constructor(
    readonly reason: GPUDeviceLostReason | 'unknown',
    readonly gpuMessage: string,
  ) {
    super(
      `The GPU device was lost (reason: ${reason}): ${gpuMessage || 'no message'}. ` +
        `Reload the model to get a fresh device; your conversation is kept.`,
    );
  }
}

export class LimitsExceededError extends Error {
  override readonly name = 'LimitsExceededError';
  constructor(
    readonly what: string,
    readonly required: number,
    readonly limit: number,
    readonly limitName: string,
  ) {
    // Size limits are bytes; the others (workgroup counts) are plain counts named by `what`.
    const amount = (n: number) => (/Size$/.test(limitName) ? formatBytes(n) : n.toLocaleString('en-US'));
    super(
      `${what} needs ${amount(required)} but this device allows at most ${amount(limit)} (${limitName}). ` +
        'Use a smaller model, a shorter context or a smaller weight dtype.',
    );
  }
}

/**
 * The model computed logits the sampler cannot use: NaN or +Infinity, or no finite value at all. A corrupt or
 * mis-converted checkpoint does this, as can f16 overflowing. Raised before any token is chosen from them.
 */
export class NumericalError extends Error {
  override readonly name = 'NumericalError';
  constructor(
    /** Which step of the request: "prefill", "decode step 5", "beam search step 2", or "forward" outside one. */
    readonly step: string,
    /** The position (0-based, in the context) of the token whose logits were broken. */
    readonly position: number,
  ) {
    super(
      `The model produced non-finite logits (NaN or Infinity) at ${step}, position ${position}. The weights may be ` +
        `corrupt or mis-converted, or f16 overflowed: try another checkpoint or f32 weights. Other requests still run.`,
    );
  }
}

/** A shape or buffer passed to a kernel does not fit what the kernel needs; raised before any dispatch. */
export class ShapeError extends Error {
  override readonly name = 'ShapeError';
  constructor(
    readonly kernel: string,
    detail: string,
  ) {
    super(`${kernel}: ${detail}`);
  }
}

export interface ShaderDiagnostic {
  file: string;
  line: number;
  column: number;
  message: string;
}

export class ShaderCompileError extends Error {
  override readonly name = 'ShaderCompileError';
  constructor(
    readonly kernel: string,
    readonly diagnostics: ShaderDiagnostic[],
  ) {
    super(
      `WGSL kernel "${kernel}" failed to compile:\n` +
        diagnostics.map((d) => `  ${d.file}:${d.line}:${d.column}: ${d.message}`).join('\n'),
    );
  }
}

/** A GPU validation error caught by an error scope (a bug in how we drive the GPU, or a driver limit). */
export class GpuValidationError extends Error {
  override readonly name = 'GpuValidationError';
  constructor(
    readonly operation: string,
    gpuMessage: string,
  ) {
    super(`GPU validation failed during ${operation}: ${gpuMessage}`);
  }
}

export class GpuOutOfMemoryError extends Error {
  override readonly name = 'GpuOutOfMemoryError';
  constructor(
    readonly operation: string,
    gpuMessage: string,
  ) {
    super(
      `The GPU ran out of memory during ${operation}: ${gpuMessage}. Close other GPU-heavy tabs, or use a ` +
        `smaller model, a shorter context or a smaller weight dtype.`,
    );
  }
}

/** `1,234,567,890 bytes (1.15 GiB)`: exact for comparing with the device's limits, rounded for reading. */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = '';
  for (const u of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = u;
  }
  const exact = `${bytes.toLocaleString('en-US')} bytes`;
  return unit === '' ? exact : `${exact} (${value.toFixed(2)} ${unit})`;
}
