/**
 * WebGPU in Node through Dawn (the `webgpu` package). Kept apart from `device.ts` so browser bundles never
 * import it. Dawn finds the GPU through a Vulkan driver; with no GPU, point VK_ICD_FILENAMES at a software
 * one (SwiftShader from Debian's chromium package, or Mesa's lavapipe).
 */
import { create, globals } from 'webgpu';
import { acquireGpu, type AcquireOptions, type Gpu } from './device';

let entry: GPU | undefined;

export function nodeWebGPU(): GPU {
  if (!entry) {
    // Kernels use GPUBufferUsage, GPUShaderStage and friends as globals, as in a browser.
    Object.assign(globalThis, globals);
    entry = create([]);
  }
  return entry;
}

export function acquireNodeGpu(options: Omit<AcquireOptions, 'gpu'> = {}): Promise<Gpu> {
  return acquireGpu({ ...options, gpu: nodeWebGPU(), busyPollingWaits: true });
}
