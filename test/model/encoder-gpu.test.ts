/**
 * The BERT encoder on the GPU against the CPU reference (src/model/encoder/reference.ts) on random-weight
 * checkpoints of MiniLM-L6's structure shrunk (SMALL_BERT: 2 layers, 2 heads of 32, odd vocabulary and inner
 * width), loaded through the real path (config.json + safetensors in a memory folder).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../src/chat/messages';
import { EngineDisposedError } from '../../src/engine/errors';
import { randomBert, randomBertFiles, SMALL_BERT, type RandomBert } from '../../src/dev/random-encoder';
import { fromF16 } from '../../src/gpu/f16';
import { modelPrefix, parseEncoderConfig } from '../../src/model/encoder/config';
import type { EncoderInput, EncoderModel } from '../../src/model/encoder/encoder-model';
import { loadEncoderModel } from '../../src/model/encoder/load';
import { memoryFiles } from '../../src/model/files';
import { bertReference } from '../../src/model/encoder/reference';
import { check } from '../../src/selftest/compare';
import type { Gpu } from '../../src/gpu/device';
import type { LoadProgress } from '../../src/model/upload';
import { UnsupportedEncoderError } from '../../src/model/encoder/encoder-model';
import { createRng } from '../../src/util/random';
import { expectPass, freshSeed, testGpu } from '../gpu';

/**
 * f32 on the GPU against f64 sums on the CPU, over 2 layers. The issue asks for 1e-5; rounding alone stays far
 * below 1e-9, and the tanh GELU in place of the erf one (a ~1e-4 relative difference) gives ~1e-8, so the
 * stricter bound is the one that tells the two apart.
 */
const HIDDEN_TOLERANCE = 1e-9;

function referenceOf(model: RandomBert) {
  const config = parseEncoderConfig(model.config, model.tensors.has('cls.predictions.transform.dense.weight'));
  const weights = (name: string) => {
    const t = model.tensors.get(name);
    return t === undefined ? undefined : t.dtype === 'f32' ? t.data : fromF16(t.data);
  };
  const prefix = modelPrefix(model.tensors) ?? '';
  return (input: EncoderInput, positions: number[] = []) => bertReference(config, weights, prefix, input.ids, input.typeIds, positions);
}

function randomInputs(seed: number, lengths: number[], vocab: number): EncoderInput[] {
  const rng = createRng(seed);
  return lengths.map((n, i) => ({
    ids: Array.from({ length: n }, () => rng.int(vocab)),
    // A sentence pair in every other input: types 0 then 1.
    typeIds: i % 2 ? Array.from({ length: n }, (_, t) => Number(t >= n / 2)) : undefined,
  }));
}

function topK(logits: Float32Array, k: number): number[] {
  return [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b).slice(0, k);
}

describe('BERT (BertForMaskedLM layout, f32) against the CPU reference', () => {
  const seed = freshSeed();
  const model = randomBert(SMALL_BERT, seed);
  const reference = referenceOf(model);
  let encoder: EncoderModel;
  beforeAll(async () => {
    encoder = await loadEncoderModel(await testGpu(), randomBertFiles(model), { maxBatchTokens: 120 });
  });
  afterAll(() => encoder?.destroy());

  it('reads the config and the head: bert. prefix, MLM head, sizes', () => {
    expect(encoder.config).toMatchObject({ modelType: 'bert', hiddenSize: 64, layers: 2, heads: 2, vocabSize: 211, maxPositions: 96, hasMlmHead: true });
    expect(encoder.maxBatchTokens).toBe(120);
    expect(encoder.gpuBytes).toBeGreaterThan(0);
  });

  // 1 token, a 16-row block plus one, over 64 keys; in one batch they take two passes of at most 120 tokens.
  const lengths = [9, 1, 17, 70, 33];
  it(`hidden states of a batch of lengths [${lengths}] (two passes), each equal to the reference`, async () => {
    const inputs = randomInputs(seed, lengths, SMALL_BERT.vocabSize);
    const batched = await encoder.encode(inputs);
    expect(batched.map((h) => h.length)).toEqual(lengths.map((n) => n * 64));
    inputs.forEach((input, i) => expectPass(check(`input ${i} (${lengths[i]} tokens) seed ${seed}`, seed, HIDDEN_TOLERANCE, batched[i], reference(input).hidden)));

    // Alone, each input gives the same bits: what it is packed with (and where) changes nothing.
    for (const [i, input] of inputs.entries()) expect((await encoder.encode([input]))[0], `input ${i} alone`).toEqual(batched[i]);
  });

  it('the MLM logits at chosen positions, and their top 5, equal the reference', async () => {
    const [input] = randomInputs(seed + 1, [40], SMALL_BERT.vocabSize);
    // More positions than one MLM pass holds (16), one of them twice.
    const positions = [0, 3, 39, 3, ...Array.from({ length: 15 }, (_, i) => 5 + 2 * i)];
    const logits = await encoder.maskedLmLogits(input, positions);
    const expected = reference(input, positions).logits;
    expect(logits).toHaveLength(positions.length);
    positions.forEach((p, i) => {
      expectPass(check(`MLM logits at ${p} seed ${seed}`, seed, HIDDEN_TOLERANCE, logits[i], expected[i]));
      expect(topK(logits[i], 5), `top 5 at ${p}`).toEqual(topK(expected[i], 5));
    });
  });

  it('refuses bad inputs with InvalidRequestError naming them, and keeps working', async () => {
    const bad: [EncoderInput[], string][] = [
      [[{ ids: [] }], 'inputs[0].ids'],
      [[{ ids: [1, 2] }, { ids: [1, 211] }], 'inputs[1].ids'],
      [[{ ids: Array(97).fill(1) }], 'inputs[0].ids'],
      [[{ ids: [1, 2], typeIds: [0] }], 'inputs[0].typeIds'],
      [[{ ids: [1, 2], typeIds: [0, 2] }], 'inputs[0].typeIds'],
    ];
    for (const [inputs, param] of bad) {
      await expect(async () => encoder.encode(inputs)).rejects.toMatchObject({ name: 'InvalidRequestError', param });
    }
    await expect(async () => encoder.maskedLmLogits({ ids: [1, 2] }, [2])).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(async () => encoder.maskedLmLogits({ ids: [1, 2] }, [0, 1, 1])).rejects.toMatchObject({ name: 'InvalidRequestError', param: 'positions' });
    const [input] = randomInputs(seed + 2, [5], SMALL_BERT.vocabSize);
    expectPass(check('after refusals', seed, HIDDEN_TOLERANCE, (await encoder.encode([input]))[0], reference(input).hidden));
  });
});

describe('BERT (BertModel layout as sentence-transformers ships it, f16 checkpoint)', () => {
  it('hidden states equal the reference on the same f16 weights; no MLM head', async () => {
    const seed = freshSeed();
    const model = randomBert({ ...SMALL_BERT, mlmHead: false, dtype: 'f16', layers: 1 }, seed);
    const encoder = await loadEncoderModel(await testGpu(), randomBertFiles(model));
    try {
      expect(encoder.config.hasMlmHead).toBe(false);
      // The default holds the 4096 tokens of 32 × 128, and at least one input of max_position_embeddings.
      expect(encoder.maxBatchTokens).toBe(4096);
      const inputs = randomInputs(seed, [12, 96], SMALL_BERT.vocabSize);
      const hidden = await encoder.encode(inputs);
      const reference = referenceOf(model);
      inputs.forEach((input, i) => expectPass(check(`f16 input ${i} seed ${seed}`, seed, HIDDEN_TOLERANCE, hidden[i], reference(input).hidden)));
      await expect(async () => encoder.maskedLmLogits(inputs[0], [1])).rejects.toMatchObject({ name: 'InvalidRequestError', param: 'model' });
    } finally {
      encoder.destroy();
    }
  });
});

/** Runs `body` counting the device's buffers created and not yet destroyed. */
async function countingBuffers(gpu: Gpu, body: (live: () => number) => Promise<void>): Promise<void> {
  const { device } = gpu;
  let live = 0;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor) => {
    const buffer = create(descriptor);
    live++;
    const destroy = buffer.destroy.bind(buffer);
    let destroyed = false;
    buffer.destroy = () => {
      if (!destroyed) live--;
      destroyed = true;
      destroy();
    };
    return buffer;
  };
  try {
    await body(() => live);
  } finally {
    device.createBuffer = create;
  }
}

describe('loading a BERT checkpoint', () => {
  const model = randomBert({ ...SMALL_BERT, layers: 1 }, 7);

  it('reports read, upload and compile; destroy() and an aborted load leave no GPU buffer behind', async () => {
    const gpu = await testGpu();
    // A first load makes the device's shared buffers (uniform pages, the placeholder binding), which later loads reuse.
    (await loadEncoderModel(gpu, randomBertFiles(model))).destroy();
    await countingBuffers(gpu, async (live) => {
      const stages = new Set<string>();
      const loaded = await loadEncoderModel(gpu, randomBertFiles(model), { onProgress: (p: LoadProgress) => stages.add(p.stage) });
      expect([...stages]).toEqual(['read', 'upload', 'compile']);
      expect(live()).toBeGreaterThan(0);
      loaded.destroy();
      expect(live()).toBe(0);
      // Like a bad input, a destroyed encoder is refused before anything is queued.
      expect(() => loaded.encode([{ ids: [1, 2] }])).toThrow(EngineDisposedError);
      expect(() => loaded.maskedLmLogits({ ids: [1, 2] }, [0])).toThrow(EngineDisposedError);

      const abort = new AbortController();
      const onProgress = (p: LoadProgress) => {
        if (p.stage === 'read' && p.tensor?.includes('encoder.layer.0.output')) abort.abort();
      };
      await expect(loadEncoderModel(gpu, randomBertFiles(model), { onProgress, signal: abort.signal })).rejects.toMatchObject({ name: 'AbortError' });
      expect(live()).toBe(0);
    });
  });

  it('an untied MLM decoder (tie_word_embeddings false) is read and used: logits equal the reference', async () => {
    const seed = freshSeed();
    const untied = randomBert({ ...SMALL_BERT, layers: 1, untiedDecoder: true }, seed);
    const encoder = await loadEncoderModel(await testGpu(), randomBertFiles(untied));
    try {
      const [input] = randomInputs(seed, [20], SMALL_BERT.vocabSize);
      const logits = await encoder.maskedLmLogits(input, [4, 19]);
      const expected = referenceOf(untied)(input, [4, 19]).logits;
      logits.forEach((l, i) => expectPass(check(`untied MLM logits ${i} seed ${seed}`, seed, HIDDEN_TOLERANCE, l, expected[i])));
    } finally {
      encoder.destroy();
    }
  });

  it('refuses a layer weight too large for the device from config.json alone, before opening any weights', async () => {
    const gpu = await testGpu();
    const { maxStorageBufferBindingSize, maxBufferSize } = gpu.device.limits;
    const limit = Math.min(maxStorageBufferBindingSize, maxBufferSize);
    const multipleOf64 = (n: number) => 64 * Math.ceil(n / 64);
    const configOnly = (hidden: number, intermediate: number) =>
      memoryFiles('config only', new Map([['config.json', JSON.stringify({ ...model.config, hidden_size: hidden, num_attention_heads: hidden / 64, intermediate_size: intermediate, vocab_size: 8, max_position_embeddings: 8 })]]));
    // The smallest width whose query/key/value weight, staged in f32, is over the limit.
    const wide = multipleOf64(Math.sqrt(limit / 12) + 1);
    expect(wide).toBeLessThanOrEqual(16384);
    await expect(loadEncoderModel(gpu, configOnly(wide, 64), { maxBatchTokens: 1 })).rejects.toMatchObject({ name: 'LimitsExceededError', what: expect.stringMatching(/query\/key\/value/) });
    // A width whose QKV fits, with an f32 intermediate weight over the limit.
    const hidden = 64 * Math.floor(Math.sqrt(limit / 12) / 64);
    const inner = multipleOf64(limit / (4 * hidden) + 1);
    expect(inner).toBeLessThanOrEqual(65536);
    await expect(loadEncoderModel(gpu, configOnly(hidden, inner), { maxBatchTokens: 1, dtype: 'f32' })).rejects.toMatchObject({ name: 'LimitsExceededError', what: expect.stringMatching(/intermediate/) });
  });

  it('refuses a RoBERTa folder by name before allocating anything', async () => {
    const gpu = await testGpu();
    await countingBuffers(gpu, async (live) => {
      const roberta = { ...model, config: { ...model.config, model_type: 'roberta' } };
      await expect(loadEncoderModel(gpu, randomBertFiles(roberta))).rejects.toBeInstanceOf(UnsupportedEncoderError);
      expect(live()).toBe(0);
    });
  });
});
