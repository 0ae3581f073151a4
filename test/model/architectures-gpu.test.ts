/**
 * Each architecture as a random-weight model with small but realistic shapes: GPU logits against the
 * independent CPU reference at several positions (a prompt, decode steps, a next turn's prompt after them),
 * and prefill logits against decode logits. Mistral's sliding window (8) and Phi-3's LongRoPE switch (at 16)
 * fall inside the prompt. For the architectures with windows, LongRoPE, partial rotary or NoPE layers: greedy
 * ids against the reference's, and q8/q4 weights against f32. Gemma 3's multimodal layout loads text-only.
 */
import { describe, expect, it } from 'vitest';
import type { Arch } from '../../src/model/config';
import { parseModelConfig } from '../../src/model/config';
import { GpuModel } from '../../src/model/forward';
import { randomModel, SMALL_MODELS } from '../../src/dev/random-model';
import { loadCanonicalWeights, tensorMapReader, type WeightTensor } from '../../src/model/weights';
import { loadModel } from '../../src/model/load';
import { memoryFiles } from '../../src/model/files';
import { folderFiles } from '../../src/model/files-node';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { modelPath } from '../models';
import { createReferenceModel } from '../../src/model/reference';
import { compare } from '../../src/selftest/compare';
import { createRng } from '../../src/util/random';
import { freshSeed, testGpu } from '../gpu';

const TOLERANCE = { f32: 1e-5, f16: 1e-3 };
/**
 * f32 weights run with an f32 KV cache, where decode and prefill kernels must agree to rounding; f16 weights with
 * the default f16 cache, where the kernels' last-bit differences can flip a key's or value's f16 rounding.
 */
const KV = { f32: { kvDtype: 'f32', decodeVsPrefill: 1e-9 }, f16: { kvDtype: 'f16', decodeVsPrefill: 1e-7 } } as const;
/** Chunks of 16 tokens, of which those of 2…8 run the matvec projections (the short plan), longer ones tiled. */
const CHUNKS = { prefillChunk: 16, shortChunk: 8 } as const;
const PROMPT = 21; // two prefill chunks: a full one (tiled), and a short tail of 5
const DECODE = 3;
const NEXT_TURN = 6; // a second, short, prompt prefilled after the cached ones (reusing their keys and values)

function expectClose(what: string, seed: number, tol: number, actual: Float32Array, expected: Float32Array): void {
  const c = compare(actual, expected);
  expect(c.nmse, `${what}: nmse ${c.nmse.toExponential(2)} > ${tol}, max abs ${c.maxAbsError} at ${c.worstIndex}, seed ${seed}`).toBeLessThanOrEqual(tol);
}

function logitsOf(r: Awaited<ReturnType<GpuModel['forward']>>): Float32Array {
  if (r.kind !== 'logits') throw new Error('expected logits');
  return r.logits;
}

describe.each(['llama', 'mistral', 'qwen2', 'qwen3', 'gpt2', 'phi3', 'smollm3', 'gemma3'] satisfies Arch[])('%s (random weights) on the GPU', (arch) => {
  for (const dtype of ['f32', 'f16'] as const) {
    it(`matches the CPU reference, ${dtype} weights and ${KV[dtype].kvDtype} KV; prefill equals decode`, async () => {
      const gpu = await testGpu();
      const seed = freshSeed();
      const { config, tensors } = randomModel(arch, { ...SMALL_MODELS[arch], dtype }, seed);
      const spec = parseModelConfig(config);
      const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype });
      const reference = createReferenceModel(spec, weights);
      const model = await GpuModel.create(gpu, spec, weights, { contextLength: 64, ...CHUNKS, kvDtype: KV[dtype].kvDtype });

      const rng = createRng(seed);
      const tokens = Array.from({ length: PROMPT + DECODE + NEXT_TURN }, () => rng.int(spec.vocabSize));
      let expected: Float32Array = new Float32Array();
      for (let p = 0; p < PROMPT; p++) expected = reference.forward(tokens[p], p);
      const prefilled = logitsOf(await model.forward(tokens.slice(0, PROMPT), 'logits'));
      expectClose(`prefill logits at ${PROMPT - 1}`, seed, TOLERANCE[dtype], prefilled, expected);
      for (let p = PROMPT; p < PROMPT + DECODE; p++) {
        const actual = logitsOf(await model.forward([tokens[p]], 'logits'));
        expectClose(`decode logits at ${p}`, seed, TOLERANCE[dtype], actual, reference.forward(tokens[p], p));
      }
      const end = PROMPT + DECODE + NEXT_TURN;
      for (let p = PROMPT + DECODE; p < end; p++) expected = reference.forward(tokens[p], p);
      const nextTurn = logitsOf(await model.forward(tokens.slice(PROMPT + DECODE, end), 'logits'));
      expectClose(`next turn's prefill logits at ${end - 1}`, seed, TOLERANCE[dtype], nextTurn, expected);

      // The same positions one token at a time: the decode kernels must agree with the prefill ones.
      model.rewind(0);
      let decoded: Float32Array = new Float32Array();
      for (let p = 0; p < PROMPT; p++) decoded = logitsOf(await model.forward([tokens[p]], 'logits'));
      expectClose(`decode vs prefill at ${PROMPT - 1}`, seed, KV[dtype].decodeVsPrefill, decoded, prefilled);
      model.destroy();
    });
  }
});

/** The architectures added with sliding windows, LongRoPE, partial rotary and NoPE layers. */
const NEW_ARCHS = ['mistral', 'phi3', 'smollm3', 'gemma3'] satisfies Arch[];

async function tokenOf(r: Promise<Awaited<ReturnType<GpuModel['forward']>>>): Promise<number> {
  const result = await r;
  if (result.kind !== 'token') throw new Error('expected a token');
  return result.token;
}

describe.each(NEW_ARCHS)('%s (random weights): greedy decoding and quantized weights on the GPU', (arch) => {
  it('greedy ids (argmax on the GPU) equal the CPU reference past the window and the LongRoPE switch, and in a next turn on the cached keys', async () => {
    const gpu = await testGpu();
    const seed = freshSeed();
    const { config, tensors } = randomModel(arch, SMALL_MODELS[arch], seed);
    const spec = parseModelConfig(config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors));
    const reference = createReferenceModel(spec, weights);
    const model = await GpuModel.create(gpu, spec, weights, { contextLength: 64, ...CHUNKS, kvDtype: 'f32' });
    const rng = createRng(seed);
    const prompt = Array.from({ length: 5 }, () => rng.int(spec.vocabSize));
    // 5 + 20 positions: past the sliding window (8) and Phi-3's pre-trained context (16).
    const generated = [await tokenOf(model.forward(prompt))];
    while (generated.length < 20) generated.push(await tokenOf(model.forward([generated.at(-1)!])));
    expect(generated, `seed ${seed}`).toEqual(reference.greedy(prompt, 20));
    // A next turn: the last answer token and a new prompt prefilled after the cached positions.
    const turn = [generated.at(-1)!, ...Array.from({ length: 4 }, () => rng.int(spec.vocabSize))];
    const next = [await tokenOf(model.forward(turn))];
    while (next.length < 4) next.push(await tokenOf(model.forward([next.at(-1)!])));
    expect(next, `seed ${seed}`).toEqual(reference.greedy([...prompt, ...generated, ...turn.slice(1)], 4));
    model.destroy();
  });

  it('q8 and q4 weights give finite logits close to f32 in prefill and decode, and prefill equals decode', async () => {
    const gpu = await testGpu();
    const seed = freshSeed();
    const { config, tensors } = randomModel(arch, SMALL_MODELS[arch], seed);
    const spec = parseModelConfig(config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(tensors));
    const options = { contextLength: 64, ...CHUNKS, kvDtype: 'f32' } as const;
    const exact = await GpuModel.create(gpu, spec, weights, options);
    const rng = createRng(seed);
    const tokens = Array.from({ length: PROMPT + DECODE }, () => rng.int(spec.vocabSize));
    const expected = [logitsOf(await exact.forward(tokens.slice(0, PROMPT), 'logits'))];
    for (let p = PROMPT; p < PROMPT + DECODE; p++) expected.push(logitsOf(await exact.forward([tokens[p]], 'logits')));
    exact.destroy();
    // A 64-wide random model, prompt and decode, over ~90 seeds on lavapipe and SwiftShader: q8 NMSE 1e-4 to 1.5e-3
    // and q4 (group-32 int4) 0.04 to 0.3 at nearly every seed, but at a few a net whose logits amplify any weight
    // change reaches q8 1.04e-2 and q4 0.42 (gemma3, seed 4293035046, the same on both adapters and with prefill
    // equal to decode to 1e-12). A wrong path gives unrelated logits, NMSE 1 or more.
    for (const [quantize, bound] of [['q8', 3e-2], ['q4', 0.8]] as const) {
      const model = await GpuModel.create(gpu, spec, weights, { ...options, quantize });
      const prefilled = logitsOf(await model.forward(tokens.slice(0, PROMPT), 'logits'));
      expect(prefilled.every(Number.isFinite)).toBe(true);
      expectClose(`${quantize} prefill logits`, seed, bound, prefilled, expected[0]);
      for (let p = PROMPT; p < PROMPT + DECODE; p++) {
        expectClose(`${quantize} decode logits at ${p}`, seed, bound, logitsOf(await model.forward([tokens[p]], 'logits')), expected[p - PROMPT + 1]);
      }
      model.rewind(0);
      let decoded: Float32Array = new Float32Array();
      for (let p = 0; p < PROMPT; p++) decoded = logitsOf(await model.forward([tokens[p]], 'logits'));
      expectClose(`${quantize} decode vs prefill at ${PROMPT - 1}`, seed, KV.f32.decodeVsPrefill, decoded, prefilled);
      model.destroy();
    }
  });
});

describe('gemma3 in its multimodal layout (Gemma3ForConditionalGeneration)', () => {
  /** The checkpoint as transformers ≥ 4.52 saves it: every name under model., the text model's as model.language_model.*. */
  const renamed = (tensors: Map<string, WeightTensor>) =>
    new Map([...tensors].map(([name, t]) => [name.startsWith('language_model.model.') ? `model.language_model.${name.slice(21)}` : `model.${name}`, t]));

  for (const layout of ['language_model.model.*', 'model.language_model.*'] as const) {
    it(`loads the text model from ${layout}, never reads the vision tower, and matches the CPU reference of the same weights`, async () => {
      const gpu = await testGpu();
      const seed = freshSeed();
      const wrapped = randomModel('gemma3', { ...SMALL_MODELS.gemma3, multimodal: true }, seed);
      const tensors = layout === 'language_model.model.*' ? wrapped.tensors : renamed(wrapped.tensors);
      // The same seed draws the same text weights, under the text-only layout's names.
      const text = randomModel('gemma3', SMALL_MODELS.gemma3, seed);
      const spec = parseModelConfig(text.config);
      const reference = createReferenceModel(spec, await loadCanonicalWeights(spec, tensorMapReader(text.tensors)));

      const skipped = /^(model\.)?(vision_tower|multi_modal_projector)\./;
      expect([...tensors.keys()].filter((n) => skipped.test(n)).length).toBe(2);
      const files = new Map<string, string | Uint8Array>([
        ['config.json', JSON.stringify(wrapped.config)],
        ['tokenizer.json', (await folderFiles(modelPath('stories260K')).text('tokenizer.json'))!],
        ['model.safetensors', writeSafetensors([...tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: t.data })))],
      ]);
      const read: string[] = [];
      let last = { done: 0, total: -1 };
      const loaded = await loadModel(gpu, memoryFiles('gemma3-4b-shaped', files), {
        contextLength: 64,
        kvDtype: 'f32',
        onProgress: (p) => {
          if (p.stage !== 'read') return;
          read.push(p.tensor ?? '');
          last = p;
        },
      });
      expect(loaded.spec.skippedParts.map((p) => p.name)).toEqual(['vision tower']);
      expect(read.filter((n) => skipped.test(n))).toEqual([]);
      expect(last.done).toBe(last.total);

      const rng = createRng(seed);
      const tokens = Array.from({ length: 12 }, () => rng.int(spec.vocabSize));
      let expected: Float32Array = new Float32Array();
      for (let p = 0; p < tokens.length; p++) expected = reference.forward(tokens[p], p);
      const actual = logitsOf(await loaded.model.forward(tokens, 'logits'));
      expectClose('multimodal-layout prefill logits', seed, TOLERANCE.f32, actual, expected);
      loaded.model.destroy();
    });
  }
});
