/**
 * Each way the GPU layer can fail ends in its typed error, raised where the cause is known: broken WGSL,
 * limits, bad shapes, a lost device, no WebGPU at all.
 */
import { describe, expect, it, vi } from 'vitest';
import { acquireGpu, withErrorScopes } from '../../src/gpu/device';
import { runDispatches } from '../../src/gpu/dispatch';
import {
  DeviceLostError,
  GpuValidationError,
  LimitsExceededError,
  ShaderCompileError,
  ShapeError,
  WebGPUUnavailableError,
} from '../../src/gpu/errors';
import { acquireNodeGpu } from '../../src/gpu/node';
import { createBindGroup, getPipeline, type KernelSpec, type ShaderPart } from '../../src/gpu/pipelines';
import { createBuffer, createTensor, readBuffer } from '../../src/gpu/tensor';
import { defineUniforms } from '../../src/gpu/uniforms';
import { prepareMatmul } from '../../src/kernels/matmul/matmul';
import { checkMatmul } from '../../src/kernels/matmul/check';
import { expectPass, freshSeed, testGpu } from '../gpu';

/** A kernel made of a prelude and a shader; `preludes` counts how often it is compiled. */
function twoPartSpec(prelude: ShaderPart, shader: ShaderPart) {
  const compiles = { count: 0 };
  const spec: KernelSpec<{ variant: number }, 'n'> = {
    name: `two-part ${shader.file}`,
    shader,
    bindings: [
      { name: 'params', kind: 'uniform' },
      { name: 'out', kind: 'storage' },
    ],
    uniforms: defineUniforms({ n: 'u32' }),
    preludes: () => {
      compiles.count++;
      return [prelude];
    },
    constants: () => ({}),
  };
  return { spec, compiles };
}

// Ends with a newline, as files read with `?raw` do, so the line mapping must account for it.
const PRELUDE: ShaderPart = {
  file: 'prelude_ok.wgsl',
  code: '// prelude line 1\nalias Value = f32;\nfn twice(v: Value) -> Value { return 2.0 * v; }\n',
};
/** `struct Params` is generated from the spec's uniforms, as for every kernel. */
const GOOD_SHADER = `@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() {
  out[0] = twice(f32(params.n));
}
`;
/** The same shader with an unknown identifier on line 5. */
const BROKEN_LINE = 5;
const BROKEN_SHADER = GOOD_SHADER.replace('twice(f32(params.n))', 'twice(f32(params.n)) + not_declared');

describe('shader compile errors', () => {
  it('name the file, line and column of the error, past the prelude', async () => {
    const gpu = await testGpu();
    const { spec } = twoPartSpec(PRELUDE, { file: 'broken.wgsl', code: BROKEN_SHADER });
    const error = await getPipeline(gpu, spec, { variant: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShaderCompileError);
    const { diagnostics, message } = error as ShaderCompileError;
    const column = BROKEN_SHADER.split('\n')[BROKEN_LINE - 1].indexOf('not_declared') + 1;
    expect(diagnostics[0]).toMatchObject({ file: 'broken.wgsl', line: BROKEN_LINE, column });
    expect(diagnostics[0].message).toContain('not_declared');
    expect(message).toContain(`broken.wgsl:${BROKEN_LINE}:${column}`);
    expect(message).toContain(spec.name);
  });

  it('name the prelude when the error is in the prelude', async () => {
    const gpu = await testGpu();
    const prelude = { file: 'prelude_broken.wgsl', code: PRELUDE.code.replace('2.0 * v', '2.0 * w') };
    const { spec } = twoPartSpec(prelude, { file: 'good.wgsl', code: GOOD_SHADER });
    const error = await getPipeline(gpu, spec, { variant: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShaderCompileError);
    const column = prelude.code.split('\n')[2].indexOf('w; }') + 1; // the undeclared `w`, 1-based
    expect((error as ShaderCompileError).diagnostics[0]).toMatchObject({ file: 'prelude_broken.wgsl', line: 3, column });
  });

  it('are not cached: the next request compiles again, while a good pipeline is compiled once', async () => {
    const gpu = await testGpu();
    const broken = twoPartSpec(PRELUDE, { file: 'broken.wgsl', code: BROKEN_SHADER });
    const first = getPipeline(gpu, broken.spec, { variant: 2 });
    await expect(first).rejects.toBeInstanceOf(ShaderCompileError);
    const second = getPipeline(gpu, broken.spec, { variant: 2 });
    expect(second).not.toBe(first);
    await expect(second).rejects.toBeInstanceOf(ShaderCompileError);
    expect(broken.compiles.count).toBe(2);

    const good = twoPartSpec(PRELUDE, { file: 'good.wgsl', code: GOOD_SHADER });
    const a = await getPipeline(gpu, good.spec, { variant: 3 });
    const b = await getPipeline(gpu, good.spec, { variant: 3 });
    expect(b).toBe(a);
    expect(good.compiles.count).toBe(1);
  });
});

describe('device limits', () => {
  it('a buffer over maxBufferSize is refused before anything is allocated', async () => {
    const gpu = await testGpu();
    const max = gpu.device.limits.maxBufferSize;
    const allocate = vi.spyOn(gpu.device, 'createBuffer');
    try {
      const error = await createBuffer(gpu, 'huge', max + 4, GPUBufferUsage.STORAGE).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LimitsExceededError);
      expect(error).toMatchObject({ required: max + 4, limit: max, limitName: 'maxBufferSize' });
      // Sizes are stated in bytes, exactly and rounded to a readable unit.
      expect((error as Error).message).toContain(`at most ${max.toLocaleString('en-US')} bytes (`);
      expect((error as Error).message).toMatch(/bytes \(\d+\.\d\d [KMGT]iB\)/);
      expect(allocate).not.toHaveBeenCalled();
      (await createBuffer(gpu, 'small', 16, GPUBufferUsage.STORAGE)).destroy();
      expect(allocate).toHaveBeenCalledTimes(1); // the spy does see allocations
    } finally {
      allocate.mockRestore();
    }
  });

  it('a storage binding over maxStorageBufferBindingSize is refused when the bind group is made', async () => {
    const gpu = await testGpu();
    const { spec } = twoPartSpec(PRELUDE, { file: 'good.wgsl', code: GOOD_SHADER });
    const kernel = await getPipeline(gpu, spec, { variant: 4 });
    const params = await createBuffer(gpu, 'params', 16, GPUBufferUsage.UNIFORM);
    const out = await createBuffer(gpu, 'out', 16, GPUBufferUsage.STORAGE);
    const max = gpu.device.limits.maxStorageBufferBindingSize;
    // A binding is checked by the size it claims, so this needs no buffer of that size.
    const bind = () => createBindGroup(gpu, kernel, { params, out: { buffer: out, size: max + 4 } });
    expect(bind).toThrow(LimitsExceededError);
    expect(bind).toThrow(/maxStorageBufferBindingSize/);
    expect(() => createBindGroup(gpu, kernel, { params, out })).not.toThrow();
    params.destroy();
    out.destroy();
  });
});

describe('shape errors', () => {
  it('prepareMatmul refuses mismatched shapes and too-small buffers before any GPU work', async () => {
    const gpu = await testGpu();
    const x = await createTensor(gpu, 'x', 'f32', [4, 8]);
    const w = await createTensor(gpu, 'w', 'f32', [5, 8]);
    const y = await createTensor(gpu, 'y', 'f32', [4, 5]);
    const wrongK = await createTensor(gpu, 'w', 'f32', [5, 7]);
    const wrongY = await createTensor(gpu, 'y', 'f32', [5, 4]);
    const bias = await createTensor(gpu, 'bias', 'f32', [4]);
    const intW = await createTensor(gpu, 'w', 'u32', [5, 8]);
    const bindGroups = vi.spyOn(gpu.device, 'createBindGroup');
    await expect(prepareMatmul(gpu, { x, w: wrongK, y })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMatmul(gpu, { x, w, y: wrongY })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMatmul(gpu, { x, w, y, bias })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMatmul(gpu, { x, w: intW, y })).rejects.toThrow(/w must be f32 or f16 or q8 or q4, got u32/);
    // A tensor whose shape claims more than its buffer holds.
    await expect(prepareMatmul(gpu, { x: { ...x, shape: [40, 8] }, w, y: { ...y, shape: [40, 5] } })).rejects.toThrow(
      /x buffer holds 128 bytes, needs 1280/,
    );
    expect(bindGroups).not.toHaveBeenCalled();
    await expect(prepareMatmul(gpu, { x, w, y })).resolves.toBeDefined();
    expect(bindGroups).toHaveBeenCalledTimes(1);
    bindGroups.mockRestore();
    for (const t of [x, w, y, wrongK, wrongY, bias, intW]) t.buffer.destroy();
  });
});

describe('device loss', () => {
  it('is reported as DeviceLostError, later calls are refused with it, and acquiring again works', async () => {
    const gpu = await acquireNodeGpu();
    const x = await createTensor(gpu, 'x', 'f32', [1, 8]);
    const w = await createTensor(gpu, 'w', 'f32', [3, 8]);
    const y = await createTensor(gpu, 'y', 'f32', [1, 3]);
    const op = await prepareMatmul(gpu, { x, w, y });

    gpu.device.destroy();
    const lost = await gpu.lost;
    expect(lost).toBeInstanceOf(DeviceLostError);
    expect(lost.reason).toBe('destroyed');
    expect(gpu.lostError).toBe(lost);

    await expect(withErrorScopes(gpu, 'allocating after loss', () => 1)).rejects.toBe(lost);
    await expect(createBuffer(gpu, 'after loss', 16, GPUBufferUsage.STORAGE)).rejects.toBe(lost);
    await expect(readBuffer(gpu, y.buffer)).rejects.toBe(lost);
    expect(() => runDispatches(gpu, [op])).toThrow(lost);

    const fresh = await acquireNodeGpu();
    expect(fresh.device).not.toBe(gpu.device);
    expect(fresh.lostError).toBeUndefined();
    expectPass(await checkMatmul(fresh, { M: 3, N: 17, K: 9, weights: 'f32', variant: 'tiled' }, freshSeed()));
    fresh.device.destroy();
  });
});

describe('uncaptured errors', () => {
  it('invalid work outside an error scope is reported once by takeUncapturedError', async () => {
    const gpu = await acquireNodeGpu();
    const a = await createBuffer(gpu, 'a', 16, GPUBufferUsage.COPY_SRC);
    const b = await createBuffer(gpu, 'b', 16, GPUBufferUsage.COPY_DST);
    const encoder = gpu.device.createCommandEncoder();
    // Copy sizes must be multiples of 4: this command buffer is invalid and does nothing.
    encoder.copyBufferToBuffer(a, 0, b, 0, 3);
    gpu.device.queue.submit([encoder.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    const error = gpu.takeUncapturedError();
    expect(error).toBeInstanceOf(GpuValidationError);
    expect(error?.message).toMatch(/multiple of 4/);
    expect(gpu.takeUncapturedError()).toBeUndefined();
    gpu.device.destroy();
  });
});

describe('no WebGPU', () => {
  it('acquireGpu without navigator.gpu throws WebGPUUnavailableError', async () => {
    expect((globalThis as { navigator?: Navigator }).navigator?.gpu).toBeUndefined();
    const error = await acquireGpu({ gpu: undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebGPUUnavailableError);
    expect((error as WebGPUUnavailableError).message).toMatch(/navigator\.gpu is missing/);
  });
});
