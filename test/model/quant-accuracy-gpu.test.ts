/**
 * Accuracy of load-time quantization against f32 weights on the GPU: the quantized models are loaded as
 * loadModel loads them (the checkpoint streamed with matrices narrowed to f16 and quantized on the GPU by
 * src/kernels/quantize; the CPU quantizer is only its reference). 64 random prompts per model, logits
 * of the last position compared by NMSE and top-1 agreement, also over the decisive prompts only (f32's top
 * two logits more than 1% of the logits' RMS apart): on these tiny models most misses are near-ties that
 * any 8-bit rounding flips. Prints a report; bounds are set below what was measured so a broken quantizer
 * fails, not so tiny models look good.
 */
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelSpec } from '../../src/model/config';
import { openSafetensors, type TensorSource } from '../../src/formats/safetensors';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { checkpointStream } from '../../src/model/stream';
import { bytesSource } from '../../src/formats/sources';
import { GpuModel } from '../../src/model/forward';
import { randomModel, SMALL_MODELS } from '../../src/dev/random-model';
import { loadCanonicalWeights, safetensorsWeightReader, type CanonicalWeights } from '../../src/model/weights';
import { compare } from '../../src/selftest/compare';
import { createRng } from '../../src/util/random';
import { argmax } from '../../src/sampling/select';
import { readModelBytes, readModelText } from '../models';
import { testGpu } from '../gpu';

const PROMPTS = 64;
const PROMPT_LENGTH = 8;
const DECISIVE_MARGIN = 0.01;

/** Whether f32's best logit leads the second by more than DECISIVE_MARGIN of the logits' RMS. */
function decisive(logits: Float32Array): boolean {
  let first = -Infinity;
  let second = -Infinity;
  let squares = 0;
  for (const v of logits) {
    squares += v * v;
    if (v > first) [first, second] = [v, first];
    else if (v > second) second = v;
  }
  return first - second > DECISIVE_MARGIN * Math.sqrt(squares / logits.length);
}

async function lastLogits(model: GpuModel, prompt: number[]): Promise<Float32Array> {
  model.rewind(0);
  const r = await model.forward(prompt, 'logits');
  if (r.kind !== 'logits') throw new Error('expected logits');
  return r.logits;
}

async function report(name: string, spec: ModelSpec, file: TensorSource) {
  const gpu = await testGpu();
  const options = { contextLength: 16, prefillChunk: 8 };
  const weights: CanonicalWeights = await loadCanonicalWeights(spec, safetensorsWeightReader(file));
  const reference = await GpuModel.create(gpu, spec, weights, options);
  // As loadModel does for q8/q4: the stream delivers f16 matrices, which the GPU quantizer takes.
  const load = (quantize: 'q8' | 'q4') => GpuModel.fromStream(gpu, spec, checkpointStream(spec, file, { dtype: 'f16' }), 'f16', { ...options, quantize });
  const quantized = { q8: await load('q8'), q4: await load('q4') };
  const rng = createRng(1234);
  const counts = { q8: { nmse: 0, agree: 0, decisiveAgree: 0 }, q4: { nmse: 0, agree: 0, decisiveAgree: 0 } };
  let decisivePrompts = 0;
  for (let p = 0; p < PROMPTS; p++) {
    const prompt = Array.from({ length: PROMPT_LENGTH }, () => rng.int(spec.vocabSize));
    const expected = await lastLogits(reference, prompt);
    const isDecisive = decisive(expected);
    if (isDecisive) decisivePrompts++;
    for (const q of ['q8', 'q4'] as const) {
      const actual = await lastLogits(quantized[q], prompt);
      counts[q].nmse += compare(actual, expected).nmse / PROMPTS;
      const agrees = argmax(actual) === argmax(expected);
      if (agrees) counts[q].agree++;
      if (agrees && isDecisive) counts[q].decisiveAgree++;
    }
  }
  const summarize = (q: 'q8' | 'q4') => ({
    nmse: counts[q].nmse,
    top1: counts[q].agree / PROMPTS,
    decisiveTop1: counts[q].decisiveAgree / decisivePrompts,
  });
  const stats = { decisivePrompts, q8: summarize('q8'), q4: summarize('q4') };
  const line = (q: 'q8' | 'q4') =>
    `${q} logits NMSE ${stats[q].nmse.toExponential(2)}, top-1 agreement ${(100 * stats[q].top1).toFixed(1)}% ` +
    `(${(100 * stats[q].decisiveTop1).toFixed(1)}% of the ${decisivePrompts} decisive prompts)`;
  console.log(`${name} (quantized on the GPU, as loaded): ${line('q8')}; ${line('q4')}`);
  for (const m of [reference, quantized.q8, quantized.q4]) m.destroy();
  return stats;
}

// 64 prompts × three dtypes on SwiftShader compile and run the vector kernels for minutes, not seconds.
describe('quantization accuracy (64 random prompts)', { timeout: 600_000 }, () => {
  it('stories260K', async () => {
    const spec = parseModelConfig(JSON.parse(readModelText('stories260K', 'config.json')));
    const file = await openSafetensors(bytesSource(readModelBytes('stories260K', 'model.safetensors')));
    const stats = await report('stories260K', spec, file);
    expect(stats.q8.top1).toBeGreaterThanOrEqual(0.85);
    expect(stats.q8.decisiveTop1).toBeGreaterThanOrEqual(0.95);
    expect(stats.q8.nmse).toBeLessThan(1e-3);
    expect(stats.q4.top1).toBeGreaterThanOrEqual(0.5);
    expect(stats.q4.nmse).toBeLessThan(3e-2);
  });

  it('random-weight llama', async () => {
    const { config, tensors } = randomModel('llama', SMALL_MODELS.llama, 99);
    const spec = parseModelConfig(config);
    const bytes = writeSafetensors([...tensors].map(([name, t]) => ({ name, dtype: t.dtype === 'f16' ? 'F16' : 'F32', shape: t.shape, data: t.data })));
    const stats = await report('random llama', spec, await openSafetensors(bytesSource(bytes)));
    expect(stats.q8.top1).toBeGreaterThanOrEqual(0.85);
    expect(stats.q8.decisiveTop1).toBeGreaterThanOrEqual(0.95);
    expect(stats.q8.nmse).toBeLessThan(1e-3);
    expect(stats.q4.top1).toBeGreaterThanOrEqual(0.5);
    expect(stats.q4.nmse).toBeLessThan(2e-1);
  });
});
