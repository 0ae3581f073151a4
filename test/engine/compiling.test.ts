/** Requests that meet kernels still compiling after load: Stop and dispose() end them without waiting. */
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine';
import { EngineDisposedError } from '../../src/engine/errors';
import type { Gpu } from '../../src/gpu/device';
import { GpuValidationError } from '../../src/gpu/errors';
import { acquireNodeGpu } from '../../src/gpu/node';
import { folderFiles } from '../../src/model/files-node';
import { modelPath } from '../models';

/** An engine on a device of its own (pipelines are cached per device), so its tiled prefill plan is still compiling. */
async function compilingEngine(prepare: (gpu: Gpu) => void = () => {}) {
  const gpu = await acquireNodeGpu();
  prepare(gpu);
  // A software adapter's short chunks go up to 32 tokens; the prompt below needs the tiled prefill plan.
  const engine = await createEngine(folderFiles(modelPath('stories260K')), { gpu: { ...gpu, isSoftwareAdapter: true }, contextLength: 128 });
  let compiled = false;
  const whenCompiled = engine.whenCompiled().then(
    () => void (compiled = true),
    (e: unknown) => e,
  );
  return { engine, whenCompiled, isCompiled: () => compiled, gpu };
}

const longPrompt = Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 500));

describe('requests while kernels compile', () => {
  it('an abort while the prompt waits for the prefill plan ends it at once with finish_reason abort and no tokens', async () => {
    const { engine, whenCompiled, isCompiled, gpu } = await compilingEngine();
    const controller = new AbortController();
    const stream = engine.generate(longPrompt, { temperature: 0, max_tokens: 5, signal: controller.signal });
    const ids: number[] = [];
    const consumed = (async () => {
      for await (const d of stream) ids.push(...d.tokenIds);
    })();
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await consumed;
    const result = await stream.result;
    expect(isCompiled()).toBe(false);
    expect(result.finishReason).toBe('abort');
    expect(ids).toEqual([]);
    expect(result.usage).toMatchObject({ prompt_tokens: longPrompt.length, completion_tokens: 0, total_tokens: longPrompt.length });
    // Nothing was cached: the same prompt afterwards runs in full.
    expect(await whenCompiled).toBeUndefined();
    const again = engine.generate(longPrompt, { temperature: 0, max_tokens: 2 });
    for await (const d of again) ids.push(...d.tokenIds);
    expect((await again.result).usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(ids).toHaveLength(2);
    await engine.dispose();
    gpu.device.destroy();
  });

  it('a prefill plan that fails to compile fails the long prompt and whenCompiled() with its typed error; short prompts still run', async () => {
    const { engine, whenCompiled, gpu } = await compilingEngine(({ device }) => {
      const compile = device.createComputePipelineAsync.bind(device);
      // The tiled and batched matmul kernels: only the prefill plan compiled after load has them.
      const prefillOnly = /^(matmul|matvec-batch)\b/;
      device.createComputePipelineAsync = (descriptor) => (prefillOnly.test(descriptor.label ?? '') ? Promise.reject(new Error('forced failure')) : compile(descriptor));
    });
    expect(await whenCompiled).toBeInstanceOf(GpuValidationError);
    const long = engine.generate(longPrompt, { temperature: 0, max_tokens: 2 });
    const failure = await (async () => {
      for await (const d of long) void d;
    })().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GpuValidationError);
    expect(String((failure as Error).message)).toContain('forced failure');
    const short = engine.generate(longPrompt.slice(0, 8), { temperature: 0, max_tokens: 2 });
    for await (const d of short) void d;
    expect((await short.result).usage.completion_tokens).toBe(2);
    await engine.dispose();
    gpu.device.destroy();
  });

  it('dispose() ends a request waiting for the prefill plan with EngineDisposedError, and whenCompiled() then rejects with it', async () => {
    const { engine, whenCompiled, isCompiled, gpu } = await compilingEngine();
    const stream = engine.generate(longPrompt, { temperature: 0, max_tokens: 5 });
    const consumed = (async () => {
      for await (const d of stream) void d;
    })().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await engine.dispose();
    expect(isCompiled()).toBe(false);
    expect(await consumed).toBeInstanceOf(EngineDisposedError);
    // The model's own wait ends with the typed error too, once the plan arrives to a destroyed model.
    expect(await whenCompiled).toBeInstanceOf(EngineDisposedError);
    await expect(engine.whenCompiled()).rejects.toBeInstanceOf(EngineDisposedError);
    gpu.device.destroy();
  });
});
