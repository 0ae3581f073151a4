/**
 * Embeddings and fill-mask on a random-weight BERT (MiniLM-L6's structure shrunk) with a real WordPiece tokenizer
 * built from a small vocabulary, through createEmbeddingEngine: pooled and normalised embeddings against the CPU
 * reference's hidden states (src/model/encoder/reference.ts), batched equal to one by one, base64 equal to float,
 * fill-mask equal to the reference's softmax, and the repo's pooling (modules.json) honoured.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEmbeddingEngine, MAX_REQUEST_CHARS, TRUNCATE_CHARS_PER_TOKEN, type EmbeddingEngine } from '../../src/embeddings/engine';
import { UnsupportedTaskError } from '../../src/embeddings/errors';
import { InvalidOptionError, InvalidRequestError } from '../../src/engine/errors';
import { randomBert, randomBertFiles, SMALL_BERT, type RandomBert } from '../../src/dev/random-encoder';
import { wordPieceTokenizer } from '../../src/dev/wordpiece-tokenizer';
import { modelPrefix, parseEncoderConfig } from '../../src/model/encoder/config';
import { bertReference } from '../../src/model/encoder/reference';
import type { ModelFiles } from '../../src/model/files';
import { compare } from '../../src/selftest/compare';
import { InputTooLongError } from '../../src/tokenizer/tokenizer';
import { freshSeed, testGpu } from '../gpu';

const WORDS = ['paris', 'is', 'the', 'capital', 'of', 'france', '.', ',', 'a', 'city', 'in', 'europe', 'river', 'seine', 'flows', 'through', 'it', 'cap', '##ital', '##s', '##ine'];
/** Filled up to the model's vocabulary, as a real checkpoint's is, but for the last 6 ids (a padded tail). */
const tokenizer = wordPieceTokenizer([...WORDS, ...Array.from({ length: SMALL_BERT.vocabSize - 11 - WORDS.length }, (_, i) => `w${i}`)]);
const TEXTS = ['Paris is the capital of France.', 'The Seine flows through it', 'a city', 'Capitals in Europe, a river, a city in France.'];

/** The model folder plus tokenizer and sentence-transformers files. */
function withFiles(model: RandomBert, extra: Record<string, string>): ModelFiles {
  const base = randomBertFiles(model);
  const files = new Map(Object.entries({ 'tokenizer.json': tokenizer.tokenizerJson, 'tokenizer_config.json': tokenizer.tokenizerConfig, ...extra }));
  return { name: base.name, text: async (f) => files.get(f) ?? base.text(f), bytes: (f) => base.bytes(f) };
}

function reference(model: RandomBert) {
  const config = parseEncoderConfig(model.config, model.tensors.has('cls.predictions.transform.dense.weight'));
  const weights = (name: string) => {
    const t = model.tensors.get(name);
    return t?.dtype === 'f32' ? t.data : undefined;
  };
  return (ids: number[], positions: number[] = []) => bertReference(config, weights, modelPrefix(model.tensors) ?? '', ids, undefined, positions);
}

function unit(v: Float32Array): Float32Array {
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function expectClose(actual: ArrayLike<number>, expected: Float32Array, seed: number): void {
  const c = compare(Float32Array.from(actual), expected);
  expect(c.nmse, `nmse ${c.nmse.toExponential(2)}, seed ${seed}`).toBeLessThanOrEqual(1e-5);
}

describe('BERT with an MLM head, no modules.json (normalised mean pooling)', () => {
  const seed = freshSeed();
  const model = randomBert(SMALL_BERT, seed);
  const forward = reference(model);
  let engine: EmbeddingEngine;
  beforeAll(async () => {
    engine = await createEmbeddingEngine(withFiles(model, {}), { gpu: await testGpu(), maxBatchTokens: 40 });
  });
  afterAll(() => engine?.dispose());

  it('mean-pools and normalises as the reference does; batched (several passes) equals one by one; base64 is the float result', async () => {
    expect(engine.kind).toBe('encoder');
    expect(engine.pooling).toMatchObject({ mode: 'mean', normalize: true });
    const batched = await engine.embeddings.create({ input: TEXTS });
    const ids = TEXTS.map((t) => engine.tokenizer.encodeTyped(t).ids);
    expect(batched.usage.prompt_tokens).toBe(ids.reduce((s, x) => s + x.length, 0));
    for (const [i, text] of TEXTS.entries()) {
      const D = SMALL_BERT.hiddenSize;
      const hidden = forward(ids[i]).hidden;
      const mean = new Float32Array(D);
      for (let t = 0; t < ids[i].length; t++) for (let d = 0; d < D; d++) mean[d] += hidden[t * D + d] / ids[i].length;
      expectClose(batched.data[i].embedding as number[], unit(mean), seed);
      const alone = await engine.embeddings.create({ input: text });
      expect(alone.data[0].embedding).toEqual(batched.data[i].embedding);
    }
    const base64 = await engine.embeddings.create({ input: TEXTS, encoding_format: 'base64', dimensions: 17 });
    const cut = await engine.embeddings.create({ input: TEXTS, dimensions: 17 });
    for (const [i, d] of base64.data.entries()) {
      const bytes = Uint8Array.from(atob(d.embedding as string), (c) => c.charCodeAt(0));
      expect([...new Float32Array(bytes.buffer)]).toEqual([...Float32Array.from(cut.data[i].embedding as number[])]);
    }
  });

  it('fill-mask: the reference softmax top 5 at the mask, with filled sequences', async () => {
    const text = 'Paris is the [MASK] of France.';
    const input = engine.tokenizer.encodeTyped(text).ids;
    const at = input.indexOf(tokenizer.vocab.indexOf('[MASK]'));
    const [logits] = forward(input, [at]).logits;
    expect(tokenizer.vocab).toHaveLength(SMALL_BERT.vocabSize - 6);
    logits.fill(-Infinity, tokenizer.vocab.length);
    const max = Math.max(...logits);
    const sum = logits.reduce((s, v) => s + Math.exp(v - max), 0);
    const best = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b).slice(0, 5);
    const results = await engine.fillMask(text, { topK: 5 });
    expect(results.map((r) => r.token)).toEqual(best);
    for (const r of results) {
      // f32 logits on the GPU differ from the f64 reference by a few 1e-6 (two layers, LayerNorm, the head), which
      // moves probabilities near 0.5 by up to ~1e-6: 6 digits failed on some seeds.
      expect(r.score).toBeCloseTo(Math.exp(logits[r.token] - max) / sum, 5);
      expect(r.tokenStr).toBe(engine.tokenizer.decode([r.token]));
      expect(r.sequence).toBe(engine.tokenizer.decode(input.map((id, i) => (i === at ? r.token : id)), { skipSpecialTokens: true }));
    }
    await expect(engine.fillMask('no mask here')).rejects.toThrow(InvalidRequestError);
    await expect(engine.fillMask(text, { topK: 0 })).rejects.toThrow(InvalidOptionError);
  });

  it('refuses inputs past the model positions unless asked to truncate, and bad inputs by name', async () => {
    const long = Array.from({ length: 120 }, () => 'paris').join(' ');
    await expect(engine.embeddings.create({ input: ['a city', long] })).rejects.toThrow(InputTooLongError);
    await expect(engine.embeddings.create({ input: ['a city', long] })).rejects.toThrow(/input\[1\] has 122 tokens but the model takes at most 40/);
    const truncated = await engine.embeddings.create({ input: long, truncate: true });
    expect(truncated.usage.prompt_tokens).toBe(40);
    for (const input of [[], [''], ['a', [1, 2]], [[1, 9999]]]) {
      await expect(engine.embeddings.create({ input: input as string[] })).rejects.toThrow(InvalidRequestError);
    }
    await expect(engine.embeddings.create({ input: 'x', encoding_format: 'hex' as 'float' })).rejects.toThrow(InvalidOptionError);
  });

  it('bounds the tokenizer work of a request before tokenizing: characters in all, and only a prefix of a truncated text', async () => {
    const encode = vi.spyOn(engine.tokenizer, 'encodeTyped');
    try {
      const big = 'paris '.repeat(Math.floor(MAX_REQUEST_CHARS / 6 / 3) + 1);
      await expect(engine.embeddings.create({ input: ['a city', big, big, big] })).rejects.toThrow(/characters in all; at most 2097152 per request/);
      expect(encode).not.toHaveBeenCalled();
      // Truncated, the same texts are within the bound: each is cut to maxInputTokens × TRUNCATE_CHARS_PER_TOKEN characters first.
      const normal = Array.from({ length: 2000 }, (_, i) => WORDS[i % WORDS.length]).join(' ');
      const [cut] = (await engine.embeddings.create({ input: [normal, big, big, big], truncate: true })).data;
      expect(Math.max(...encode.mock.calls.map(([text]) => text.length))).toBe(engine.maxInputTokens * TRUNCATE_CHARS_PER_TOKEN);
      // A normal text truncates as before: its first 40 tokens, as the whole text's.
      const whole = engine.tokenizer.encodeTyped(normal).ids;
      const ids = [...whole.slice(0, engine.maxInputTokens - 1), whole[whole.length - 1]];
      const [expected] = (await engine.embeddings.create({ input: [ids] })).data;
      expect(cut.embedding).toEqual(expected.embedding);
    } finally {
      encode.mockRestore();
    }
  });
});

describe('BERT without an MLM head, CLS pooling from modules.json', () => {
  const seed = freshSeed();
  const model = randomBert({ ...SMALL_BERT, mlmHead: false }, seed);
  const forward = reference(model);
  const st = 'sentence_transformers.models.';
  let engine: EmbeddingEngine;
  beforeAll(async () => {
    const files = withFiles(model, {
      'modules.json': JSON.stringify([{ type: `${st}Transformer`, path: '' }, { type: `${st}Pooling`, path: '1_Pooling' }]),
      '1_Pooling/config.json': JSON.stringify({ pooling_mode_cls_token: true, pooling_mode_mean_tokens: false, include_prompt: false }),
      'sentence_bert_config.json': JSON.stringify({ max_seq_length: 32 }),
    });
    engine = await createEmbeddingEngine(files, { gpu: await testGpu() });
  });
  afterAll(() => engine?.dispose());

  it('takes the [CLS] row unnormalised, honours max_seq_length, and has no fill-mask', async () => {
    expect(engine.pooling).toMatchObject({ mode: 'cls', normalize: false });
    expect(engine.maxInputTokens).toBe(32);
    const ids = engine.tokenizer.encodeTyped(TEXTS[0]).ids;
    const result = await engine.embeddings.create({ input: [ids] });
    expectClose(result.data[0].embedding as number[], forward(ids).hidden.slice(0, SMALL_BERT.hiddenSize), seed);
    await expect(engine.fillMask('the [MASK]')).rejects.toThrow(UnsupportedTaskError);
  });
});

describe('BERT with mean pooling and include_prompt: false', () => {
  const st = 'sentence_transformers.models.';
  let engine: EmbeddingEngine;
  beforeAll(async () => {
    const files = withFiles(randomBert({ ...SMALL_BERT, mlmHead: false }, freshSeed()), {
      'modules.json': JSON.stringify([{ type: `${st}Transformer`, path: '' }, { type: `${st}Pooling`, path: '1_Pooling' }]),
      '1_Pooling/config.json': JSON.stringify({ pooling_mode_mean_tokens: true, include_prompt: false }),
    });
    engine = await createEmbeddingEngine(files, { gpu: await testGpu() });
  });
  afterAll(() => engine?.dispose());

  it('refuses an instruction it would have to leave out of the mean by name, and serves texts without one', async () => {
    await expect(engine.embeddings.create({ input: TEXTS[0], instruction: 'Find the capital' })).rejects.toThrow(/include_prompt: false/);
    await expect(engine.embeddings.create({ input: TEXTS[0], instruction: 'Find the capital' })).rejects.toThrow(UnsupportedTaskError);
    expect((await engine.embeddings.create({ input: TEXTS[0] })).data).toHaveLength(1);
  });
});
