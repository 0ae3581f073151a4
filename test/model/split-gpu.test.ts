/**
 * Weight matrices larger than one binding, split by rows across buffers (src/model/split.ts): a model loaded
 * with a small maxBindingSize (WebGPU cannot lower the device's own limit below its 128 MiB default, so tests
 * lower the model's) computes the same logits as the unsplit model, prefill and decode, tied and untied, in
 * f32 and q4; each token is still one submit; and the limits check no longer refuses such a model.
 */
import { describe, expect, it } from 'vitest';
import { randomModel, SMALL_MODELS } from '../../src/dev/random-model';
import { LimitsExceededError } from '../../src/gpu/errors';
import { memoryTuningStore } from '../../src/gpu/tuning-store';
import type { Arch } from '../../src/model/config';
import { parseModelConfig } from '../../src/model/config';
import { GpuModel, type GpuModelOptions } from '../../src/model/forward';
import { loadCanonicalWeights, tensorMapReader } from '../../src/model/weights';
import { compare } from '../../src/selftest/compare';
import { createRng } from '../../src/util/random';
import { freshSeed, testGpu } from '../gpu';

/** A vocabulary of 1000 at hidden width 64 is a 256 KB f32 LM head: 64 KiB per buffer splits it, and the MLP. */
const MAX_BINDING = 64 << 10;
const PROMPT = 21; // a prefill chunk of 16 (the tiled kernels), a partial one, then decode
const DECODE = 3;

function logitsOf(r: Awaited<ReturnType<GpuModel['forward']>>): Float32Array {
  if (r.kind !== 'logits') throw new Error('expected logits');
  return r.logits;
}

describe('a model whose matrices exceed the binding limit runs split across buffers', () => {
  const cases: { arch: Arch; dtype: 'f32' | 'f16' | 'q4' }[] = [
    { arch: 'llama', dtype: 'f32' },
    // Tied: the gather and the LM head read the same parts; under q4 the head is a q8 copy split on its own.
    { arch: 'qwen2', dtype: 'f32' },
    { arch: 'qwen2', dtype: 'q4' },
    // LayerNorm, biases on every projection, learned positions added by each part's gather.
    { arch: 'gpt2', dtype: 'f32' },
  ];
  for (const { arch, dtype } of cases) {
    const tied = SMALL_MODELS[arch].tiedEmbeddings ? 'tied' : 'untied';
    it(`${arch} (${tied} embeddings), ${dtype}: the same logits as unsplit, prefill and decode, one submit per token`, async () => {
      const gpu = await testGpu();
      const seed = freshSeed();
      const weightDtype = dtype === 'f32' ? 'f32' : 'f16';
      const { config, tensors } = randomModel(arch, { ...SMALL_MODELS[arch], vocabSize: 1000, dtype: weightDtype }, seed);
      const spec = parseModelConfig(config);
      const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: weightDtype });
      const options: GpuModelOptions = { contextLength: 64, prefillChunk: 16, quantize: dtype === 'q4' ? 'q4' : undefined, kvDtype: 'f32' };
      const whole = await GpuModel.create(gpu, spec, weights, options);
      const split = await GpuModel.create(gpu, spec, weights, { ...options, maxBindingSize: MAX_BINDING });
      // The memory plan still mirrors what is allocated, the parts' own padding included.
      expect(split.allocatedBytes).toBe(split.context.totalBytes);

      const rng = createRng(seed);
      const tokens = Array.from({ length: PROMPT + DECODE }, () => rng.int(spec.vocabSize));
      const expectSame = (what: string, actual: Float32Array, expected: Float32Array) => {
        const c = compare(actual, expected);
        // The same kernels over the same rows: each logit is computed exactly as unsplit.
        expect(c.maxAbsError, `${what}: nmse ${c.nmse.toExponential(2)}, max abs ${c.maxAbsError} at ${c.worstIndex}, seed ${seed}`).toBe(0);
      };
      expectSame('prefill', logitsOf(await split.forward(tokens.slice(0, PROMPT), 'logits')), logitsOf(await whole.forward(tokens.slice(0, PROMPT), 'logits')));
      for (let p = PROMPT; p < PROMPT + DECODE; p++) {
        const before = { ...split.stats };
        const actual = logitsOf(await split.forward([tokens[p]], 'logits'));
        expect(split.stats.submits - before.submits).toBe(1);
        expectSame(`decode at ${p}`, actual, logitsOf(await whole.forward([tokens[p]], 'logits')));
      }
      const next = await split.forward([tokens[0]], 'token');
      expect(next).toEqual(await whole.forward([tokens[0]], 'token'));

      // Decode launches: the unsplit ones, plus one per extra part of the embedding, LM head and layer matrices.
      const launches = async (model: GpuModel) => {
        const before = model.stats.dispatches;
        await model.forward([tokens[1]], 'token');
        return model.stats.dispatches - before;
      };
      const extra = (await launches(split)) - (await launches(whole));
      // At least ceil(bytes / limit) parts each; the q4 model's LM head is q8, over a byte per weight.
      const weightCount = spec.vocabSize * spec.hiddenSize;
      const leastParts = (bytesPerWeight: number) => Math.ceil((weightCount * bytesPerWeight) / MAX_BINDING);
      const bytesPerWeight = weightDtype === 'f32' ? 4 : 2;
      expect(extra).toBeGreaterThanOrEqual(leastParts(bytesPerWeight) - 1 + leastParts(dtype === 'q4' ? 1 : bytesPerWeight) - 1);
      whole.destroy();
      split.destroy();
    });
  }
});

describe('the limits check splits instead of refusing', () => {
  it('a model whose LM head is over the binding limit loads; one whose 64 rows are over it is refused before allocating', async () => {
    const gpu = await testGpu();
    const { config, tensors } = randomModel('llama', { ...SMALL_MODELS.llama, vocabSize: 1000 }, freshSeed());
    const spec = parseModelConfig(config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: 'f32' });
    const model = await GpuModel.create(gpu, spec, weights, { contextLength: 32, maxBindingSize: MAX_BINDING });
    expect((await model.forward([1, 2, 3], 'token')).kind).toBe('token');
    model.destroy();
    // Tuning times the kernels on one part of a split matrix, never on more rows than a buffer holds.
    const tuneOptions = { timeSoftware: true, budgetMs: 50, store: memoryTuningStore() };
    const tuned = await GpuModel.create(gpu, spec, weights, { contextLength: 32, maxBindingSize: MAX_BINDING, tune: tuneOptions });
    expect((await tuned.forward([1, 2, 3], 'token')).kind).toBe('token');
    tuned.destroy();
    // 64 rows of the 172-wide down projection are 44 KB in f32.
    const refused = await GpuModel.create(gpu, spec, weights, { contextLength: 32, maxBindingSize: 40 << 10 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LimitsExceededError);
    expect((refused as Error).message).toMatch(/64 rows of a layer's MLP down weight.*maxBindingSize/);
  });
});
