/** What a model run must refuse, and what it must never do per token. */
import { describe, expect, it, vi } from 'vitest';
import type { Gpu } from '../../src/gpu/device';
import { KernelDispatch } from '../../src/gpu/dispatch';
import { defaultDecodePath } from '../../src/kernels/attention/attention';
import { LimitsExceededError, ShapeError } from '../../src/gpu/errors';
import type { ByteSource } from '../../src/formats/sources';
import type { ModelFiles } from '../../src/model/files';
import { folderFiles } from '../../src/model/files-node';
import { ContextWindowExceededError } from '../../src/model/kv-cache';
import { loadModel } from '../../src/model/load';
import { modelPath } from '../models';
import { acquireNodeGpu } from '../../src/gpu/node';
import { testGpu } from '../gpu';

/** Counts the GPU objects created through `gpu.device` while `fn` runs. */
async function countCreations<T>(gpu: Gpu, fn: () => Promise<T>): Promise<{ result: T; created: Record<string, number> }> {
  const device = gpu.device;
  const names = ['createBuffer', 'createBindGroup', 'createBindGroupLayout', 'createShaderModule', 'createComputePipeline', 'createComputePipelineAsync'] as const;
  const created: Record<string, number> = {};
  const originals = names.map((name) => {
    const original = device[name];
    created[name] = 0;
    Object.defineProperty(device, name, {
      configurable: true,
      value: (...args: unknown[]) => {
        created[name]++;
        return Reflect.apply(original, device, args);
      },
    });
    return [name, original] as const;
  });
  try {
    return { result: await fn(), created };
  } finally {
    for (const [name] of originals) delete (device as unknown as Record<string, unknown>)[name];
  }
}

describe('model limits', () => {
  it('a model over the memory budget is refused from its header, before any weight is read or buffer made', async () => {
    const gpu = await testGpu();
    const stories = folderFiles(modelPath('stories260K'));
    const config = { ...JSON.parse((await stories.text('config.json'))!), vocab_size: 256000, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128 };
    // A safetensors file of 4 GiB that exists only as its header: reading any weight byte fails the test.
    const huge = 256000 * 4096 * 4;
    const headerJson = JSON.stringify({ 'model.embed_tokens.weight': { dtype: 'F32', shape: [256000, 4096], data_offsets: [0, huge] } });
    const headerBytes = new TextEncoder().encode(headerJson.padEnd(Math.ceil(headerJson.length / 8) * 8, ' '));
    const prefix = new Uint8Array(8 + headerBytes.length);
    new DataView(prefix.buffer).setUint32(0, headerBytes.length, true);
    prefix.set(headerBytes, 8);
    let weightBytesRead = 0;
    const weights: ByteSource = {
      name: 'model.safetensors',
      size: prefix.length + huge,
      read: async (offset, length) => {
        if (offset + length <= prefix.length) return prefix.subarray(offset, offset + length);
        weightBytesRead += length;
        throw new Error('weight data must not be read');
      },
    };
    const files: ModelFiles = {
      name: 'huge',
      text: async (f) => (f === 'config.json' ? JSON.stringify(config) : stories.text(f)),
      bytes: async (f) => (f === 'model.safetensors' ? weights : undefined),
    };
    // Its 4 GiB embedding is over any one binding, but that alone no more refuses it (it would be split, see
    // split-gpu.test.ts): the total over a 2 GiB budget does.
    const load = () => loadModel(gpu, files, { dtype: 'f32', memoryBudget: 2 ** 31 }).then(() => undefined, (e: unknown) => e);
    const { result, created } = await countCreations(gpu, load);
    expect(result).toBeInstanceOf(LimitsExceededError);
    expect((result as LimitsExceededError).message).toMatch(/weights 4\.\d+ GiB.*memoryBudget/);
    expect(weightBytesRead).toBe(0);
    expect(created.createBuffer).toBe(0);
  });

  it('a prompt past the context is refused with both token counts, and the model stays usable', async () => {
    const gpu = await testGpu();
    const { model } = await loadModel(gpu, folderFiles(modelPath('stories260K')), { contextLength: 16 });
    await model.forward([1, 403, 407, 261, 378, 432, 383, 286, 261, 376]);
    const error = await model.forward([1, 2, 3, 4, 5, 6, 7]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContextWindowExceededError);
    expect(error).toMatchObject({ requiredTokens: 17, contextLength: 16 });
    expect(model.cachedLength).toBe(10);
    const next = await model.forward([1, 2, 3, 4, 5, 6]);
    expect(next.kind).toBe('token');
    expect(model.cachedLength).toBe(16);
    model.destroy();
  });

  it('a decode token uploads its parameters in one write (plus the token id), not one per launch', async () => {
    const gpu = await testGpu();
    const { model } = await loadModel(gpu, folderFiles(modelPath('stories260K')), { contextLength: 64 });
    let next = await model.forward([1, 403, 407]);
    const queue = gpu.device.queue;
    const writeBuffer = queue.writeBuffer;
    let writes = 0;
    Object.defineProperty(queue, 'writeBuffer', {
      configurable: true,
      value: (...args: unknown[]) => {
        writes++;
        return Reflect.apply(writeBuffer, queue, args);
      },
    });
    try {
      for (let i = 0; i < 10; i++) next = await model.forward([next.kind === 'token' ? next.token : 0]);
    } finally {
      delete (queue as unknown as Record<string, unknown>).writeBuffer;
    }
    // Each token changes the position of 2 launches per layer and the embedding: 11 uniform blocks here.
    expect(writes / 10).toBeLessThanOrEqual(3);
    model.destroy();
  });

  it('a decode token is one compute pass and one submit, with each RMSNorm fused into the next projection', async () => {
    const gpu = await testGpu();
    const { model } = await loadModel(gpu, folderFiles(modelPath('stories260K')), { contextLength: 64, prefillChunk: 8 });
    const { numLayers } = model.spec;
    const delta = async (tokens: number[]) => {
      const before = { ...model.stats };
      await model.forward(tokens);
      return { submits: model.stats.submits - before.submits, passes: model.stats.passes - before.passes, dispatches: model.stats.dispatches - before.dispatches };
    };
    // Embedding; per layer qkv, rope, attention, o_proj, gate|up, down; LM head and argmax.
    expect(await delta([7])).toEqual({ submits: 1, passes: 1, dispatches: 1 + 6 * numLayers + 2 });
    // A prefill chunk adds a pass: its last row is copied out for the head between two passes.
    expect(await delta([1, 403, 407])).toEqual({ submits: 1, passes: 2, dispatches: 1 + 6 * numLayers + 2 });
    model.destroy();
  });

  it('the short-chunk plan compiles no pipeline of its own but attention for one token’s rows, and a shortChunk below 1 is refused before any allocation', async () => {
    // A device of its own: pipelines are cached per device, and other tests load short plans too.
    const gpu = await acquireNodeGpu();
    const files = folderFiles(modelPath('stories260K'));
    const options = { contextLength: 64, prefillChunk: 8 };
    const without = await loadModel(gpu, files, { ...options, shortChunk: 1 });
    await without.model.whenCompiled();
    // Pipelines are cached per device: the prefill and decode plans' are compiled, the short plan needs only its
    // attention with one token's rows per workgroup, and that only where decode runs the subgroup kernel
    // (elsewhere it is decode's own).
    const { result: withShort, created } = await countCreations(gpu, () => loadModel(gpu, files, { ...options, shortChunk: 8 }));
    const ownAttention = defaultDecodePath(gpu, without.model.spec.headDim) === 'subgroup' ? 1 : 0;
    expect(created.createComputePipeline + created.createComputePipelineAsync).toBe(ownAttention);
    const prompt = [1, 403, 407, 261, 378];
    const [expected, actual] = [await without.model.forward(prompt, 'logits'), await withShort.model.forward(prompt, 'logits')];
    if (expected.kind !== 'logits' || actual.kind !== 'logits') throw new Error('expected logits');
    expect(actual.logits).not.toEqual(new Float32Array(actual.logits.length));
    expect(Math.max(...actual.logits.map((v, i) => Math.abs(v - expected.logits[i])))).toBeLessThan(1e-4);
    // The five tokens went through the short plan with it on, and through the tiled one with it off.
    expect([withShort.model.stats.shortChunks, without.model.stats.shortChunks]).toEqual([1, 0]);
    without.model.destroy();
    withShort.model.destroy();
    await expect(loadModel(gpu, files, { ...options, shortChunk: 0 })).rejects.toThrow(ShapeError);
    gpu.device.destroy();
  });

  it('on a hardware adapter the tiled prefill plan is compiled before the model is returned, on a software one after', async () => {
    const gpu = await testGpu();
    const files = folderFiles(modelPath('stories260K'));
    const options = { contextLength: 64, prefillChunk: 8, shortChunk: 4 };
    // A short chunk of a few tokens (the hardware default) would leave nearly every first prompt waiting for it.
    const hardware = await loadModel({ ...gpu, isSoftwareAdapter: false }, files, options);
    expect(hardware.model['prefill']).toBeDefined();
    const software = await loadModel({ ...gpu, isSoftwareAdapter: true }, files, options);
    expect(software.model['prefill']).toBeUndefined();
    await software.model.whenCompiled();
    expect(software.model['prefill']).toBeDefined();
    hardware.model.destroy();
    software.model.destroy();
  });

  it('a second destroy() disposes nothing again (each launch’s uniform slot goes back to the pool once)', async () => {
    const gpu = await testGpu();
    const { model } = await loadModel(gpu, folderFiles(modelPath('stories260K')), { contextLength: 64, prefillChunk: 8 });
    await model.whenCompiled();
    const dispose = vi.spyOn(KernelDispatch.prototype, 'dispose');
    try {
      model.destroy();
      expect(dispose.mock.calls.length).toBeGreaterThan(0);
      dispose.mockClear();
      model.destroy();
      expect(dispose).not.toHaveBeenCalled();
    } finally {
      dispose.mockRestore();
    }
  });

  it('decode and prefill create no GPU buffer, bind group or pipeline once the plans are compiled', async () => {
    const gpu = await testGpu();
    const { model } = await loadModel(gpu, folderFiles(modelPath('stories260K')), { contextLength: 64, prefillChunk: 8 });
    await model.whenCompiled();
    const { created } = await countCreations(gpu, async () => {
      let next = await model.forward([1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298]);
      for (let i = 0; i < 10; i++) next = await model.forward([next.kind === 'token' ? next.token : 0]);
      await model.forward([5], 'logits');
    });
    expect(created).toEqual({
      createBuffer: 0,
      createBindGroup: 0,
      createBindGroupLayout: 0,
      createShaderModule: 0,
      createComputePipeline: 0,
      createComputePipelineAsync: 0,
    });
    model.destroy();
  });
});
