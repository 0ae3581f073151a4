/**
 * The GPU for a test file, acquired once. WEBGPU_LLM_ADAPTER names the software driver the vitest project
 * chose; on lavapipe the device must offer shader-f16, or the native-f16 tests would silently not run.
 */
import type { Gpu } from '../src/gpu/device';
import { acquireNodeGpu } from '../src/gpu/node';
import { describe as describeResult, type CheckResult } from '../src/selftest/compare';
import { freshSeed } from '../src/util/random';
import { expect } from 'vitest';

let gpu: Promise<Gpu> | undefined;

export function testGpu(): Promise<Gpu> {
  gpu ??= acquireNodeGpu().then((g) => {
    if (process.env.WEBGPU_LLM_ADAPTER === 'lavapipe' && !g.features.shaderF16) {
      throw new Error(`lavapipe adapter "${g.adapterName}" lacks shader-f16: install mesa-vulkan-drivers from bookworm-backports (Mesa 25)`);
    }
    return g;
  });
  return gpu;
}

/** Weight formats this device can run: packed f16 everywhere, native f16 only with shader-f16. */
export async function weightFormats(): Promise<('f32' | 'f16-packed' | 'f16')[]> {
  const g = await testGpu();
  return g.features.shaderF16 ? ['f32', 'f16-packed', 'f16'] : ['f32', 'f16-packed'];
}

export { freshSeed };

export function expectPass(result: CheckResult): void {
  expect(result.passed, describeResult(result)).toBe(true);
}
