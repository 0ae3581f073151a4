/// <reference types="@webgpu/types" preserve="true" />
// (Kept in the package's declarations, so apps that import the engine get the WebGPU types it names.)
import { DeviceLostError, GpuOutOfMemoryError, GpuValidationError, WebGPUUnavailableError } from './errors';

/** Optional features we use when the adapter has them; `features` records which ones are on. */
const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

/** Limits we raise from the spec defaults to whatever the adapter offers: big models need big bindings. */
const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** CPU implementations of WebGPU, by the names their adapter info gives (Dawn's, Mesa's and Windows' ones). */
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b/i;

/** The first adapter info field that names a software (CPU) implementation, or undefined for a hardware one. */
export function softwareAdapterName(info: GPUAdapterInfo): string | undefined {
  return [info.vendor, info.architecture, info.device, info.description].find((s) => s && SOFTWARE_ADAPTER.test(s));
}

export interface GpuFeatures {
  shaderF16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
}

export interface Gpu {
  device: GPUDevice;
  features: GpuFeatures;
  /** "vendor architecture description", for benchmark tables and bug reports. */
  adapterName: string;
  /** Vendor, architecture, device and driver description: what results measured on this adapter are keyed by. */
  adapterKey: string;
  isFallbackAdapter: boolean;
  /** A CPU implementation (SwiftShader, lavapipe, WARP, or an adapter that says it is a fallback). */
  isSoftwareAdapter: boolean;
  /** The smallest subgroup the adapter may run (0 where it has no subgroups or does not say). */
  subgroupMinSize: number;
  /**
   * Waits on the GPU (onSubmittedWorkDone, mapAsync) spin on the calling thread until they settle: Dawn in Node
   * polls the device in a setImmediate loop, which on a software adapter takes a core from the GPU's own threads.
   */
  busyPollingWaits: boolean;
  /** Set once the device is lost; every later GPU call should be refused with it. */
  lostError: DeviceLostError | undefined;
  /** Resolves (never rejects) when the device is lost, with the typed error describing why. */
  lost: Promise<DeviceLostError>;
  /**
   * The first GPU error no error scope caught since the last `takeUncapturedError()`. Work whose commands
   * were invalid silently does nothing, so callers check this after reading results back.
   */
  takeUncapturedError(): GpuValidationError | GpuOutOfMemoryError | undefined;
}

export interface AcquireOptions {
  /** The WebGPU entry point; defaults to `navigator.gpu`. Node passes the one from `src/gpu/node.ts`. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Features to leave off even if present, e.g. to test the no-`shader-f16` path on an f16-capable GPU. */
  disableFeatures?: readonly (typeof OPTIONAL_FEATURES)[number][];
  /** Request WebGPU's default limits rather than the adapter's best, to test the paths a minimal device takes. */
  defaultLimits?: boolean;
  /** The entry point's waits spin on this thread (Dawn in Node): see Gpu.busyPollingWaits. */
  busyPollingWaits?: boolean;
}

/**
 * The WebGPU entry point (`entry`, else `navigator.gpu`), or WebGPUUnavailableError saying why there is none.
 * Pages call it before starting a worker for nothing.
 */
export function checkWebGpu(entry = (globalThis.navigator as Navigator | undefined)?.gpu): GPU {
  if (entry) return entry;
  throw new WebGPUUnavailableError(
    globalThis.isSecureContext === false
      ? 'this page is not a secure context (serve it over https or from localhost)'
      : typeof window === 'undefined'
        ? 'navigator.gpu is missing (in Node, acquire the GPU with acquireNodeGpu from src/gpu/node.ts)'
        : 'navigator.gpu is missing in this browser',
  );
}

export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  const entry = checkWebGpu(options.gpu);
  // A device can come back already lost (driver reset, GPU process crash): then try once with a fresh adapter.
  for (let attempt = 0; ; attempt++) {
    const gpu = await requestOnce(entry, options);
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (!gpu.lostError) return gpu;
    if (attempt === 1) throw gpu.lostError;
  }
}

async function requestOnce(entry: GPU, options: AcquireOptions): Promise<Gpu> {
  let adapter: GPUAdapter | null;
  try {
    adapter = await entry.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  } catch (e) {
    throw new WebGPUUnavailableError(`requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new WebGPUUnavailableError('no suitable GPU adapter was found (requestAdapter returned null)');

  const requiredFeatures = OPTIONAL_FEATURES.filter(
    (f) => adapter.features.has(f) && !options.disableFeatures?.includes(f),
  );
  const requiredLimits: Record<string, number> = {};
  if (!options.defaultLimits) for (const name of REQUESTED_LIMITS) requiredLimits[name] = adapter.limits[name];

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'webgpu-llm' });
  } catch (e) {
    throw new WebGPUUnavailableError(`requestDevice failed: ${(e as Error).message}`);
  }

  const info = adapter.info;
  let uncaptured: GpuValidationError | GpuOutOfMemoryError | undefined;
  device.addEventListener('uncapturederror', (event) => {
    const { error } = event as GPUUncapturedErrorEvent;
    uncaptured ??= error instanceof GPUOutOfMemoryError ? new GpuOutOfMemoryError('GPU work', error.message) : new GpuValidationError('GPU work', error.message);
  });
  const gpu: Gpu = {
    device,
    features: {
      shaderF16: device.features.has('shader-f16'),
      subgroups: device.features.has('subgroups'),
      timestampQuery: device.features.has('timestamp-query'),
    },
    adapterName: [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' '),
    adapterKey: JSON.stringify([info.vendor, info.architecture, info.device, info.description]),
    isFallbackAdapter: info.isFallbackAdapter ?? false,
    isSoftwareAdapter: (info.isFallbackAdapter ?? false) || softwareAdapterName(info) !== undefined,
    subgroupMinSize: device.features.has('subgroups') ? ((info as { subgroupMinSize?: number }).subgroupMinSize ?? 0) : 0,
    busyPollingWaits: options.busyPollingWaits ?? false,
    lostError: undefined,
    lost: device.lost.then((lost) => {
      gpu.lostError = new DeviceLostError(lost.reason ?? 'unknown', lost.message);
      return gpu.lostError;
    }),
    takeUncapturedError() {
      const error = uncaptured;
      uncaptured = undefined;
      return error;
    },
  };
  return gpu;
}

/**
 * Runs `fn` inside validation and out-of-memory error scopes and turns what they catch into typed errors.
 * Use it where failures are expected to be possible: allocation and pipeline creation.
 */
export async function withErrorScopes<T>(gpu: Gpu, operation: string, fn: () => T | Promise<T>): Promise<T> {
  if (gpu.lostError) throw gpu.lostError;
  const { device } = gpu;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = await fn();
  } catch (e) {
    thrown = e;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (thrown !== undefined) throw thrown;
  if (oom) throw new GpuOutOfMemoryError(operation, oom.message);
  if (validation) throw new GpuValidationError(operation, validation.message);
  if (gpu.lostError) throw gpu.lostError;
  return result as T;
}
