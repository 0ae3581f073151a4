/**
 * Real-vocabulary landmines on a random-weight model with Qwen3-0.6B's vocabulary (151,936 ids, of which the
 * real Qwen3 tokenizer decodes 151,669) but tiny layers: padded ids are never produced and refused in
 * prompts, and non-finite logits are one typed error on every decoding path, after which the engine serves
 * the next request as before.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine/engine';
import type { GenerateOptions } from '../../src/engine/types';
import { InvalidRequestError } from '../../src/engine/errors';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { NumericalError } from '../../src/gpu/errors';
import { f32ToF16Bits } from '../../src/gpu/f16';
import { parseModelConfig } from '../../src/model/config';
import { memoryFiles } from '../../src/model/files';
import { GpuModel } from '../../src/model/forward';
import { randomModel, SMALL_MODELS, type RandomModelOptions } from '../../src/dev/random-model';
import { loadCanonicalWeights, tensorMapReader } from '../../src/model/weights';
import { testGpu } from '../gpu';
import { modelPath } from '../models';

/**
 * Qwen3-0.6B's vocabulary, context, rope and norms; 2 narrow layers instead of 28 wide ones, for speed (the
 * LM head, 151,936 rows, is most of each token's work on a software adapter).
 */
const QWEN3_SHAPED: RandomModelOptions = {
  vocabSize: 151936,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 16,
  maxContext: 40960,
  tiedEmbeddings: false,
  ropeTheta: 1000000,
  normEps: 1e-6,
  bosTokenId: 151643,
  eosTokenId: 151645,
  dtype: 'f16',
};
/** Ids the real tokenizer decodes; 151669…151935 are padding. */
const TOKENIZER_IDS = 151669;
/** A regular token whose embedding row is NaN: any prompt holding it gives non-finite logits. */
const POISONED_ID = 100000;

const f16 = (v: number) => f32ToF16Bits(v);

/**
 * The checkpoint, rigged so that the padded ids win: every embedding row is large in dimension 0, so the
 * final hidden state is dominated by a positive dimension 0 whatever the tokens, and the padded rows of the
 * LM head weigh that dimension 20x more than any real row can. Without the mask they are the largest logits.
 */
function qwen3ShapedFiles(): { files: ReturnType<typeof memoryFiles>; tensors: ReturnType<typeof randomModel>['tensors']; config: Record<string, unknown> } {
  const { config, tensors } = randomModel('qwen3', QWEN3_SHAPED, 11);
  const D = QWEN3_SHAPED.hiddenSize;
  const embedding = tensors.get('model.embed_tokens.weight')!.data as Uint16Array;
  const head = tensors.get('lm_head.weight')!.data as Uint16Array;
  for (let v = 0; v < QWEN3_SHAPED.vocabSize; v++) embedding[v * D] = f16(50);
  for (let v = TOKENIZER_IDS; v < QWEN3_SHAPED.vocabSize; v++) head[v * D] = f16(20);
  embedding.fill(f16(NaN), POISONED_ID * D, (POISONED_ID + 1) * D);

  const tokenizerDir = modelPath('..', 'tokenizers', 'qwen3');
  const files = memoryFiles(
    'qwen3-shaped',
    new Map<string, string | Uint8Array>([
      ['config.json', JSON.stringify(config)],
      ['tokenizer.json', readFileSync(`${tokenizerDir}/tokenizer.json`, 'utf8')],
      ['tokenizer_config.json', readFileSync(`${tokenizerDir}/tokenizer_config.json`, 'utf8')],
      ['model.safetensors', writeSafetensors([...tensors].map(([name, t]) => ({ name, dtype: 'F16', shape: t.shape, data: t.data })))],
    ]),
  );
  return { files, tensors, config };
}

let engine: Engine;
let checkpoint: ReturnType<typeof qwen3ShapedFiles>;
beforeAll(async () => {
  checkpoint = qwen3ShapedFiles();
  engine = await createEngine(checkpoint.files, { gpu: await testGpu(), contextLength: 256, tune: false });
});
afterAll(() => engine?.dispose());

async function ids(stream: AsyncIterable<{ tokenIds: number[] }>): Promise<number[]> {
  const out: number[] = [];
  for await (const delta of stream) out.push(...delta.tokenIds);
  return out;
}

const CHAT = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Write a haiku about padded vocabularies.' },
];

/** A chat turn through the model's real template, as chat completions run it, returning the token ids. */
async function chat(options: GenerateOptions): Promise<number[]> {
  return ids(engine.stream(await engine.encodeMessages(CHAT), engine.resolveOptions(options), engine.chatEosTokenIds()));
}

describe('padded vocabulary (Qwen3: 151,936 logits, 151,669 tokens)', () => {
  it('the rigged checkpoint really puts padded ids on top when nothing masks them', async () => {
    const gpu = await testGpu();
    const spec = parseModelConfig(checkpoint.config);
    const weights = await loadCanonicalWeights(spec, tensorMapReader(checkpoint.tensors), { dtype: 'f16' });
    const unmasked = await GpuModel.create(gpu, spec, weights, { contextLength: 64 });
    const result = await unmasked.forward(await engine.encodeMessages(CHAT), 'token');
    unmasked.destroy();
    expect(result.kind === 'token' && result.token).toBeGreaterThanOrEqual(TOKENIZER_IDS);
    expect(engine.contextLength).toBe(256);
  });

  it('chats through the real template for 64 sampled tokens and never emits a padded id, on each read path', async () => {
    // top-k on the GPU for 64 tokens; then briefly the full row read back (top_k 0) and greedy (argmax on the GPU).
    for (const options of [
      { temperature: 1, top_k: 40, seed: 1, max_tokens: 64 },
      { temperature: 1, top_k: 0, top_p: 1, seed: 2, max_tokens: 8 },
      { temperature: 0, max_tokens: 8 },
    ]) {
      const out = await chat(options);
      expect(out.length, JSON.stringify(options)).toBe(options.max_tokens);
      expect(out.filter((id) => id >= TOKENIZER_IDS), JSON.stringify(options)).toEqual([]);
      expect(() => engine.tokenizer.decode(out)).not.toThrow();
    }
  });

  it('a prompt holding a padded id is an InvalidRequestError, and the engine serves the next request', async () => {
    const prompt = await engine.encodeMessages(CHAT);
    expect(() => engine.generate([...prompt, TOKENIZER_IDS], { max_tokens: 4 })).toThrow(InvalidRequestError);
    expect(() => engine.generate([151935], { max_tokens: 4 })).toThrow(/no token in the tokenizer/);
    expect(await ids(engine.generate(prompt, { temperature: 0, max_tokens: 4 }))).toHaveLength(4);
  });
});

describe('non-finite logits (a NaN embedding row)', () => {
  let chatIds: number[] = [];
  beforeAll(async () => {
    chatIds = await engine.encodeMessages(CHAT);
  });
  const prompt = () => chatIds;
  const withPoison = () => [...prompt(), POISONED_ID];

  async function expectNumericalError(run: () => Promise<unknown>, step: string): Promise<void> {
    const error = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NumericalError);
    expect((error as NumericalError).step).toBe(step);
  }

  it('greedy, top-k sampling, full-row sampling and beam search each raise NumericalError naming the step; the engine then serves the same reply as before', async () => {
    const before = await ids(engine.generate(prompt(), { temperature: 0, max_tokens: 8 }));
    await expectNumericalError(() => ids(engine.generate(withPoison(), { temperature: 0, max_tokens: 8 })), 'prefill');
    await expectNumericalError(() => ids(engine.generate(withPoison(), { temperature: 1, top_k: 40, max_tokens: 8 })), 'prefill');
    await expectNumericalError(() => ids(engine.generate(withPoison(), { temperature: 1, presence_penalty: 0.5, max_tokens: 8 })), 'prefill');
    await expectNumericalError(() => ids(engine.generate(withPoison(), { num_beams: 2, max_tokens: 3 })), 'beam search step 1');
    // The prompt is fine; the bias makes the first token the poisoned one, which breaks the next step.
    await expectNumericalError(() => ids(engine.generate(prompt(), { temperature: 1, logit_bias: { [POISONED_ID]: 100 }, max_tokens: 8 })), 'decode step 1');
    expect(await ids(engine.generate(prompt(), { temperature: 0, max_tokens: 8 }))).toEqual(before);
  });
});

/**
 * The other mismatch: a tokenizer with more ids than the model has rows, as Gemma 3's (262,145 ids) on the 270M
 * and 1B models (262,144 rows). Here the 512-id stories260K tokenizer on a 301-row random Llama.
 */
describe('tokenizer ids past the model vocabulary', () => {
  it('a prompt holding one is an InvalidRequestError naming the token, and generation stays inside the model vocabulary', async () => {
    const { config, tensors } = randomModel('llama', { ...SMALL_MODELS.llama, bosTokenId: 1, eosTokenId: 2 }, 5);
    const stories = modelPath('stories260K');
    const files = memoryFiles(
      'llama-301-rows',
      new Map<string, string | Uint8Array>([
        ['config.json', JSON.stringify(config)],
        ['tokenizer.json', readFileSync(`${stories}/tokenizer.json`, 'utf8')],
        ['model.safetensors', writeSafetensors([...tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: t.data })))],
      ]),
    );
    const small = await createEngine(files, { gpu: await testGpu(), contextLength: 64, tune: false });
    try {
      expect(small.tokenizer.vocabSize).toBe(512);
      const token = small.tokenizer.idToToken(400);
      expect(() => small.stream([1, 400], small.resolveOptions({ max_tokens: 2 }), [2])).toThrow(InvalidRequestError);
      expect(() => small.stream([1, 400], small.resolveOptions({ max_tokens: 2 }), [2])).toThrow(`token id 400 (${token}, one of the tokenizer's 512 ids) is outside the model's vocabulary of 301`);
      const reply = await ids(small.stream([1, 100, 200], small.resolveOptions({ max_tokens: 8, temperature: 0 }), []));
      expect(reply).toHaveLength(8);
    } finally {
      await small.dispose();
    }
  });
});
