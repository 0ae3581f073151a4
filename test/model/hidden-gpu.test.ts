/**
 * The hidden-state read (GpuModel.lastHidden, for decoder embedding models): the last token's hidden state after
 * the final norm equals the CPU reference's, through the prefill plan (several chunks) and the decode plan, for an
 * RMSNorm model (whose final norm is otherwise fused into the LM head), a LayerNorm one and Gemma's 1 + w norm.
 */
import { describe, expect, it } from 'vitest';
import type { Arch } from '../../src/model/config';
import { parseModelConfig } from '../../src/model/config';
import { GpuModel } from '../../src/model/forward';
import { randomModel, SMALL_MODELS } from '../../src/dev/random-model';
import { loadCanonicalWeights, tensorMapReader } from '../../src/model/weights';
import { createReferenceModel } from '../../src/model/reference';
import { compare } from '../../src/selftest/compare';
import { createRng } from '../../src/util/random';
import { freshSeed, testGpu } from '../gpu';

const TOLERANCE = 1e-5; // f32 weights and KV cache

// The last case has fewer logits than hidden units: the logits and the hidden state share one staging buffer.
describe.each([['qwen3', {}], ['gpt2', {}], ['gemma3', {}], ['qwen3', { vocabSize: 40 }]] satisfies [Arch, { vocabSize?: number }][])('%s %o: lastHidden', (arch, overrides) => {
  it('equals the reference final-normed hidden state, prefill and decode; logits afterwards are unchanged', async () => {
    const gpu = await testGpu();
    const seed = freshSeed();
    const { config, tensors } = randomModel(arch, { ...SMALL_MODELS[arch], ...overrides, dtype: 'f32' }, seed);
    const spec = parseModelConfig(config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: 'f32' });
    const reference = createReferenceModel(spec, weights);
    const model = await GpuModel.create(gpu, spec, weights, { contextLength: 64, prefillChunk: 16, kvDtype: 'f32' });
    try {
      const rng = createRng(seed);
      const tokens = Array.from({ length: 21 }, () => rng.int(spec.vocabSize));
      const check = (what: string, actual: Float32Array) => {
        const c = compare(actual, reference.lastHidden());
        expect(actual).toHaveLength(spec.hiddenSize);
        expect(c.nmse, `${what}: nmse ${c.nmse.toExponential(2)}, seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
      };
      for (const [pos, id] of tokens.entries()) reference.forward(id, pos);
      check('prefill', await model.lastHidden(tokens));
      const next = rng.int(spec.vocabSize);
      const logits = reference.forward(next, tokens.length);
      check('decode', await model.lastHidden([next]));
      model.rewind(tokens.length);
      const again = await model.forward([next], 'logits');
      if (again.kind !== 'logits') throw new Error('expected logits');
      expect(again.logits).toHaveLength(spec.vocabSize);
      expect(compare(again.logits, logits).nmse, `logits: seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      model.destroy();
    }
  });
});
