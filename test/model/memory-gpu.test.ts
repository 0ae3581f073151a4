/**
 * The context budget: the bytes planned from the config are the bytes the model allocates, the default
 * context is min(the model's maximum, 4096, what the budget leaves), and a context that does not fit is a
 * LimitsExceededError naming the total before anything is read or allocated.
 */
import { describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { LimitsExceededError } from '../../src/gpu/errors';
import type { Arch } from '../../src/model/config';
import { parseModelConfig } from '../../src/model/config';
import { memoryFiles, type ModelFiles } from '../../src/model/files';
import { folderFiles } from '../../src/model/files-node';
import { GpuModel } from '../../src/model/forward';
import { loadModel } from '../../src/model/load';
import { DEFAULT_CONTEXT_LENGTH, planMemory, totalBytes } from '../../src/model/memory';
import { randomModel, SMALL_MODELS } from '../../src/dev/random-model';
import { loadCanonicalWeights, tensorMapReader } from '../../src/model/weights';
import { f16BitsToF32 } from '../../src/gpu/f16';
import { compare } from '../../src/selftest/compare';
import { testGpu } from '../gpu';
import { modelPath, readModelText } from '../models';

describe('memory plan against what GpuModel.create allocates', () => {
  for (const arch of ['llama', 'qwen2', 'qwen3', 'gpt2', 'phi3', 'gemma3'] satisfies Arch[]) {
    it(`${arch}: f32, f16, q8 and q4, with top-k and masked ids, to the byte`, async () => {
      const gpu = await testGpu();
      for (const dtype of ['f32', 'f16', 'q8', 'q4'] as const) {
        const weightDtype = dtype === 'f32' ? 'f32' : 'f16';
        const { config, tensors } = randomModel(arch, { ...SMALL_MODELS[arch], dtype: weightDtype }, 1);
        const spec = parseModelConfig(config);
        const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: weightDtype });
        const quantize = dtype === 'q8' || dtype === 'q4' ? dtype : undefined;
        const options = { contextLength: 40, prefillChunk: 16, topKCapacity: 9, maskedTokenIds: [3, 5, 7], quantize };
        const model = await GpuModel.create(gpu, spec, weights, options);
        const plan = planMemory(spec, { dtype: weightDtype, quantize, prefillChunk: 16, topKCapacity: 9, maskedTokens: 3 });
        expect(model.allocatedBytes, dtype).toBe(totalBytes(plan, 40));
        expect(model.context.totalBytes, dtype).toBe(model.allocatedBytes);
        model.destroy();
      }
    });
  }
});

describe('weights allocated before they stream', () => {
  it('a matrix that arrives in another dtype than allocated gets its own buffer, and the model reads it', async () => {
    const gpu = await testGpu();
    const { config, tensors } = randomModel('llama', { ...SMALL_MODELS.llama, dtype: 'f16' }, 3);
    const spec = parseModelConfig(config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: 'f16' });
    const wo = weights.layers[0].wo;
    if (wo.dtype !== 'f16') throw new Error('expected f16 weights');
    // The same values widened: the model is allocated f16 from its embedding and head, and layer 0's wo arrives f32.
    const mixed = { ...weights, layers: [{ ...weights.layers[0], wo: { dtype: 'f32' as const, shape: wo.shape, data: Float32Array.from(wo.data, f16BitsToF32) } }, ...weights.layers.slice(1)] };
    const options = { contextLength: 16, prefillChunk: 8 };
    const reference = await GpuModel.create(gpu, spec, weights, options);
    const model = await GpuModel.create(gpu, spec, mixed, options);
    const prompt = [1, 5, 9, 2];
    const expected = await reference.forward(prompt, 'logits');
    const actual = await model.forward(prompt, 'logits');
    if (expected.kind !== 'logits' || actual.kind !== 'logits') throw new Error('expected logits');
    expect(compare(actual.logits, expected.logits).nmse).toBeLessThan(1e-8);
    // The f16 buffer allocated for wo went; its f32 replacement is counted instead.
    const woBytes = wo.shape[0] * wo.shape[1];
    expect(model.allocatedBytes).toBe(reference.allocatedBytes + 2 * woBytes);
    reference.destroy();
    model.destroy();
  });
});

/** stories260K with another max_position_embeddings, and weights that fail loudly if anything reads them. */
function storiesWith(maxContext: number): ModelFiles {
  const config = { ...JSON.parse(readModelText('stories260K', 'config.json')), max_position_embeddings: maxContext };
  const weights = writeSafetensors([{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [512, 64], data: new Float32Array(512 * 64) }]);
  return memoryFiles(
    'stories260K',
    new Map<string, string | Uint8Array>([
      ['config.json', JSON.stringify(config)],
      ['tokenizer.json', readModelText('stories260K', 'tokenizer.json')],
      ['tokenizer_config.json', readModelText('stories260K', 'tokenizer_config.json')],
      ['model.safetensors', weights],
    ]),
  );
}

describe('context budget at load', () => {
  it('the default context is 4096 for a model allowing 131072, and the load result says why', async () => {
    const gpu = await testGpu();
    const { config, tensors } = randomModel('llama', { ...SMALL_MODELS.llama, maxContext: 131072 }, 2);
    const spec = parseModelConfig(config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: 'f32' });
    const model = await GpuModel.create(gpu, spec, weights);
    expect(model.context).toMatchObject({ contextLength: DEFAULT_CONTEXT_LENGTH, limitedBy: 'default' });
    expect(model.allocatedBytes).toBe(model.context.totalBytes);
    model.destroy();
  });

  it('a small budget gives the context that fits, and the model stays within it', async () => {
    const gpu = await testGpu();
    const { config, tensors } = randomModel('llama', { ...SMALL_MODELS.llama, maxContext: 131072 }, 3);
    const spec = parseModelConfig(config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: 'f32' });
    const plan = planMemory(spec, { dtype: 'f32', prefillChunk: 128 });
    const budget = totalBytes(plan, 1000) + plan.bytesPerToken / 2;
    const model = await GpuModel.create(gpu, spec, weights, { memoryBudget: budget });
    expect(model.context).toMatchObject({ contextLength: 1000, limitedBy: 'memory', budgetBytes: budget });
    expect(model.allocatedBytes).toBeLessThanOrEqual(budget);
    expect((await model.forward([1, 2, 3], 'token')).kind).toBe('token');
    model.destroy();
  });

  it('a context of 1e6 tokens over the budget is a LimitsExceededError naming the total, before any weight is read; the next load serves a request', async () => {
    const gpu = await testGpu();
    const huge = storiesWith(1_000_000);
    // The checkpoint holds one tensor only: reading the weights would fail with a different error.
    const error = await loadModel(gpu, huge, { contextLength: 1_000_000, memoryBudget: 2 ** 29 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LimitsExceededError);
    const { required } = error as LimitsExceededError;
    expect((error as Error).message).toContain('a context of 1000000 tokens');
    // KV cache (f16 by default): 5 layers · 2 · 4 KV heads · head_dim 8 · 2 bytes per token.
    expect(required).toBeGreaterThan(1_000_000 * 5 * 2 * 4 * 8 * 2);

    const loaded = await loadModel(gpu, folderFiles(modelPath('stories260K')));
    expect(loaded.context).toMatchObject({ contextLength: 512, limitedBy: 'model' });
    expect((await loaded.model.forward([1], 'token')).kind).toBe('token');
    loaded.model.destroy();
  });
});
