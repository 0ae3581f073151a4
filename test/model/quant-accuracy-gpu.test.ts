/**
 * Accuracy of load-time quantization against f32 weights on the GPU: 64 random prompts per model, logits
 * of the last position compared by NMSE and top-1 agreement. Prints a report; bounds are set below what
 * was measured so a broken quantizer fails, not so tiny models look good.
 */
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelSpec } from '../../src/model/config';
import { openSafetensors } from '../../src/formats/safetensors';
import { bytesSource } from '../../src/formats/sources';
import { GpuModel } from '../../src/model/forward';
import { randomModel, SMALL_MODELS } from '../../src/model/random-model';
import { loadCanonicalWeights, safetensorsWeightReader, tensorMapReader, type CanonicalWeights } from '../../src/model/weights';
import { compare } from '../../src/selftest/compare';
import { createRng } from '../../src/selftest/random';
import { argmax } from '../../src/sampling/select';
import { readModelBytes, readModelText } from '../models';
import { testGpu } from '../gpu';

const PROMPTS = 64;
const PROMPT_LENGTH = 8;

async function lastLogits(model: GpuModel, prompt: number[]): Promise<Float32Array> {
  model.rewind(0);
  const r = await model.forward(prompt, 'logits');
  if (r.kind !== 'logits') throw new Error('expected logits');
  return r.logits;
}

async function report(name: string, spec: ModelSpec, weights: CanonicalWeights) {
  const gpu = await testGpu();
  const options = { contextLength: 16, prefillChunk: 8 };
  const reference = await GpuModel.create(gpu, spec, weights, options);
  const quantized = { q8: await GpuModel.create(gpu, spec, weights, { ...options, quantize: 'q8' }), q4: await GpuModel.create(gpu, spec, weights, { ...options, quantize: 'q4' }) };
  const rng = createRng(1234);
  const stats = { q8: { nmse: 0, top1: 0 }, q4: { nmse: 0, top1: 0 } };
  for (let p = 0; p < PROMPTS; p++) {
    const prompt = Array.from({ length: PROMPT_LENGTH }, () => rng.int(spec.vocabSize));
    const expected = await lastLogits(reference, prompt);
    for (const q of ['q8', 'q4'] as const) {
      const actual = await lastLogits(quantized[q], prompt);
      stats[q].nmse += compare(actual, expected).nmse / PROMPTS;
      stats[q].top1 += argmax(actual) === argmax(expected) ? 1 / PROMPTS : 0;
    }
  }
  console.log(
    `${name}: q8 logits NMSE ${stats.q8.nmse.toExponential(2)}, top-1 agreement ${(100 * stats.q8.top1).toFixed(1)}%; ` +
      `q4 NMSE ${stats.q4.nmse.toExponential(2)}, top-1 ${(100 * stats.q4.top1).toFixed(1)}%`,
  );
  for (const m of [reference, quantized.q8, quantized.q4]) m.destroy();
  return stats;
}

describe('quantization accuracy (64 random prompts)', () => {
  it('stories260K', async () => {
    const spec = parseModelConfig(JSON.parse(readModelText('stories260K', 'config.json')));
    const file = await openSafetensors(bytesSource(readModelBytes('stories260K', 'model.safetensors')));
    const stats = await report('stories260K', spec, await loadCanonicalWeights(spec, safetensorsWeightReader(file)));
    expect(stats.q8.top1).toBeGreaterThanOrEqual(0.9);
    expect(stats.q8.nmse).toBeLessThan(1e-3);
    expect(stats.q4.top1).toBeGreaterThanOrEqual(0.5);
    expect(stats.q4.nmse).toBeLessThan(3e-2);
  });

  it('random-weight llama', async () => {
    const { config, tensors } = randomModel('llama', SMALL_MODELS.llama, 99);
    const spec = parseModelConfig(config);
    const stats = await report('random llama', spec, await loadCanonicalWeights(spec, tensorMapReader(tensors)));
    expect(stats.q8.top1).toBeGreaterThanOrEqual(0.9);
    expect(stats.q8.nmse).toBeLessThan(1e-3);
    expect(stats.q4.top1).toBeGreaterThanOrEqual(0.5);
    expect(stats.q4.nmse).toBeLessThan(2e-1);
  });
});
