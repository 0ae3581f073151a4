/**
 * Which backend runs the model: WebGPU on a hardware adapter, else the CPU path (llama.cpp in WebAssembly),
 * which on a software adapter (SwiftShader, llvmpipe/lavapipe, WARP) is many times faster than WebGPU.
 */
import { checkWebGpu, softwareAdapterName } from '../gpu/device';
import { WebGPUUnavailableError } from '../gpu/errors';

/** 'auto' (default): WebGPU on a hardware adapter, WASM otherwise. */
export type BackendRequest = 'auto' | 'webgpu' | 'wasm';

export interface BackendChoice {
  backend: 'webgpu' | 'wasm';
  /** Why this backend: asked for, or what auto found (e.g. "software adapter (SwiftShader)", "no navigator.gpu"). */
  reason: string;
  /** What runs it: the GPU adapter's name, or the WebAssembly threads. */
  device: string;
}

/** Why an adapter is a software one, or null for a hardware adapter. */
export function softwareAdapterReason(adapter: GPUAdapter): string | null {
  const info = adapter.info;
  const named = softwareAdapterName(info);
  // isFallbackAdapter moved from the adapter to its info; older browsers have only the former.
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  if (named) return `software adapter (${named})`;
  if (fallback) return 'fallback adapter (isFallbackAdapter)';
  return null;
}

export interface WasmReason {
  reason: string;
  /** A (software) adapter is there: WebGPU can still run if the CPU path cannot. */
  webgpuUsable: boolean;
}

/**
 * What `auto` picks here: null for WebGPU (a hardware adapter), else why WASM. `entry` is the WebGPU entry point
 * (default navigator.gpu).
 */
export async function reasonForWasm(entry?: GPU): Promise<WasmReason | null> {
  let gpu: GPU;
  try {
    gpu = checkWebGpu(entry);
  } catch (e) {
    if (e instanceof WebGPUUnavailableError) return { reason: e.reason, webgpuUsable: false };
    throw e;
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { reason: `requestAdapter() failed: ${e instanceof Error ? e.message : String(e)}`, webgpuUsable: false };
  }
  if (!adapter) return { reason: 'requestAdapter() returned null', webgpuUsable: false };
  const software = softwareAdapterReason(adapter);
  return software === null ? null : { reason: software, webgpuUsable: true };
}
