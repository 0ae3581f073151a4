/** Which adapters count as software (CPU) ones: auto's backend choice and the kernels' defaults both read this. */
import { describe, expect, it } from 'vitest';
import { softwareAdapterName } from '../../src/gpu/device';

const info = (fields: Partial<Record<'vendor' | 'architecture' | 'device' | 'description', string>>): GPUAdapterInfo =>
  ({ vendor: '', architecture: '', device: '', description: '', ...fields }) as GPUAdapterInfo;

describe('softwareAdapterName', () => {
  it('names the CPU implementations by the field that says so', () => {
    expect(softwareAdapterName(info({ vendor: 'google', architecture: 'swiftshader' }))).toBe('swiftshader');
    expect(softwareAdapterName(info({ vendor: 'mesa', description: 'llvmpipe (LLVM 19.1.7, 256 bits)' }))).toBe('llvmpipe (LLVM 19.1.7, 256 bits)');
    expect(softwareAdapterName(info({ description: 'Microsoft Basic Render Driver' }))).toBe('Microsoft Basic Render Driver');
    expect(softwareAdapterName(info({ device: 'WARP' }))).toBe('WARP');
    expect(softwareAdapterName(info({ description: 'softpipe' }))).toBe('softpipe');
  });

  it('leaves hardware adapters alone, even where a word contains one of those names', () => {
    expect(softwareAdapterName(info({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' }))).toBeUndefined();
    expect(softwareAdapterName(info({ vendor: 'apple', architecture: 'metal-3', description: 'Apple M2 (warpsize 32)' }))).toBeUndefined();
    expect(softwareAdapterName(info({ vendor: 'intel', description: 'Intel(R) Iris(R) Xe Graphics, software version 31' }))).toBeUndefined();
  });
});
