/**
 * Embeddings from a decoder, laid out as Qwen3-Embedding ships: a Qwen3Model checkpoint (tensor names without
 * `model.`), the Qwen3 tokenizer with the post-processor that appends <|endoftext|>, last-token pooling and
 * Normalize in modules.json. Random weights (f32), checked against the CPU reference's final-normed hidden state.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddingEngine, type EmbeddingEngine } from '../../src/embeddings/engine';
import { UnsupportedTaskError } from '../../src/embeddings/errors';
import { InvalidOptionError } from '../../src/engine/errors';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { randomModel, type RandomModelOptions } from '../../src/dev/random-model';
import { parseModelConfig } from '../../src/model/config';
import { memoryFiles, type ModelFiles } from '../../src/model/files';
import { reviveError } from '../../src/worker/errors';
import type { ClientMessage, WorkerMessage } from '../../src/worker/protocol';
import { serveEngine } from '../../src/worker/serve';
import { createReferenceModel } from '../../src/model/reference';
import { loadCanonicalWeights, tensorMapReader } from '../../src/model/weights';
import { compare } from '../../src/selftest/compare';
import { freshSeed, testGpu } from '../gpu';
import { modelPath } from '../models';

const SHAPE: RandomModelOptions = {
  vocabSize: 151936,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 16,
  maxContext: 512,
  tiedEmbeddings: true,
  ropeTheta: 1000000,
  normEps: 1e-6,
  eosTokenId: 151643,
  dtype: 'f32',
};
const END_OF_TEXT = 151643;
const TASK = 'Given a web search query, retrieve relevant passages that answer the query';

/** Qwen3-Embedding's tokenizer.json: Qwen3's, with a post-processor that appends <|endoftext|> to every text. */
function embeddingTokenizerJson(): string {
  const json = JSON.parse(readFileSync(modelPath('..', 'tokenizers', 'qwen3', 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  const eos = { SpecialToken: { id: '<|endoftext|>', type_id: 0 } };
  json.post_processor = {
    type: 'Sequence',
    processors: [
      json.post_processor,
      {
        type: 'TemplateProcessing',
        single: [{ Sequence: { id: 'A', type_id: 0 } }, eos],
        pair: [{ Sequence: { id: 'A', type_id: 0 } }, eos, { Sequence: { id: 'B', type_id: 1 } }, eos],
        special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [END_OF_TEXT], tokens: ['<|endoftext|>'] } },
      },
    ],
  };
  return JSON.stringify(json);
}

const seed = freshSeed();
const { config, tensors } = randomModel('qwen3', SHAPE, seed);
let engine: EmbeddingEngine;
let files: ModelFiles;
beforeAll(async () => {
  const st = 'sentence_transformers.models.';
  files = memoryFiles(
    'qwen3-embedding-shaped',
    new Map<string, string | Uint8Array>([
      ['config.json', JSON.stringify({ ...config, architectures: ['Qwen3Model'] })],
      ['tokenizer.json', embeddingTokenizerJson()],
      ['tokenizer_config.json', readFileSync(modelPath('..', 'tokenizers', 'qwen3', 'tokenizer_config.json'), 'utf8')],
      ['modules.json', JSON.stringify([{ type: `${st}Transformer`, path: '' }, { type: `${st}Pooling`, path: '1_Pooling' }, { type: `${st}Normalize`, path: '2_Normalize' }])],
      ['1_Pooling/config.json', JSON.stringify({ word_embedding_dimension: 32, pooling_mode_lasttoken: true, pooling_mode_mean_tokens: false, include_prompt: true })],
      // A Qwen3Model checkpoint: no `model.` in front of the names.
      ['model.safetensors', writeSafetensors([...tensors].map(([name, t]) => ({ name: name.replace(/^model\./, ''), dtype: 'F32', shape: t.shape, data: t.data })))],
    ]),
  );
  engine = await createEmbeddingEngine(files, { gpu: await testGpu(), contextLength: 128 });
});
afterAll(() => engine?.dispose());

/** The CPU reference's embedding: the final-normed hidden state after the last id, scaled to unit length. */
async function referenceEmbedding(ids: readonly number[]): Promise<Float32Array> {
  const spec = parseModelConfig(config);
  const reference = createReferenceModel(spec, await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: 'f32' }));
  for (const [pos, id] of ids.entries()) reference.forward(id, pos);
  const h = reference.lastHidden();
  const norm = Math.hypot(...h);
  return h.map((v) => v / norm);
}

function expectClose(actual: ArrayLike<number>, expected: Float32Array): void {
  const c = compare(Float32Array.from(actual), expected);
  expect(c.nmse, `nmse ${c.nmse.toExponential(2)}, seed ${seed}`).toBeLessThanOrEqual(1e-5);
}

describe('embeddings from a decoder (Qwen3-Embedding layout)', () => {
  it('pools the last token (the appended <|endoftext|>) and normalises, as the CPU reference does; queries take the instruction', async () => {
    expect(engine.kind).toBe('decoder');
    expect(engine.pooling).toMatchObject({ mode: 'lasttoken', normalize: true });
    const query = 'What is the capital of China?';
    const document = 'The capital of China is Beijing.';
    const queryIds = engine.tokenizer.encode(`Instruct: ${TASK}\nQuery:${query}`);
    const documentIds = engine.tokenizer.encode(document);
    expect(queryIds.at(-1)).toBe(END_OF_TEXT);
    expect(documentIds.at(-1)).toBe(END_OF_TEXT);

    const queries = await engine.embeddings.create({ input: [query], instruction: TASK });
    const documents = await engine.embeddings.create({ input: document, model: 'ignored' });
    expect(queries.usage).toEqual({ prompt_tokens: queryIds.length, total_tokens: queryIds.length });
    expect(documents).toMatchObject({ object: 'list', model: 'qwen3-embedding-shaped', data: [{ object: 'embedding', index: 0 }] });
    expectClose(queries.data[0].embedding as number[], await referenceEmbedding(queryIds));
    expectClose(documents.data[0].embedding as number[], await referenceEmbedding(documentIds));

    // Token ids are the whole input: the same ids give the same embedding.
    const byIds = await engine.embeddings.create({ input: [documentIds, queryIds] });
    expect(byIds.data.map((d) => d.index)).toEqual([0, 1]);
    expectClose(byIds.data[1].embedding as number[], Float32Array.from(queries.data[0].embedding as number[]));
  });

  it('cuts to `dimensions` and renormalises; refuses more than the hidden size, and fill-mask', async () => {
    const full = (await engine.embeddings.create({ input: 'a short text' })).data[0].embedding as number[];
    const cut = (await engine.embeddings.create({ input: 'a short text', dimensions: 8 })).data[0].embedding as number[];
    const norm = Math.hypot(...full.slice(0, 8));
    expectClose(cut, Float32Array.from(full.slice(0, 8), (v) => v / norm));
    await expect(engine.embeddings.create({ input: 'x', dimensions: 33 })).rejects.toThrow(InvalidOptionError);
    await expect(engine.fillMask('x [MASK]')).rejects.toThrow(UnsupportedTaskError);
  });
});

describe('a decoder without an LM head (Qwen3-Embedding-4B/8B: untied, no lm_head.weight)', () => {
  it('loads without the head and pools the last token as the CPU reference does', async () => {
    const untiedSeed = freshSeed();
    const untied = randomModel('qwen3', { ...SHAPE, tiedEmbeddings: false }, untiedSeed);
    expect(untied.tensors.has('lm_head.weight')).toBe(true);
    const checkpoint = [...untied.tensors].filter(([name]) => name !== 'lm_head.weight');
    const headless = memoryFiles(
      'qwen3-embedding-untied',
      new Map<string, string | Uint8Array>([
        ['config.json', JSON.stringify({ ...untied.config, architectures: ['Qwen3Model'] })],
        ['tokenizer.json', embeddingTokenizerJson()],
        ['tokenizer_config.json', readFileSync(modelPath('..', 'tokenizers', 'qwen3', 'tokenizer_config.json'), 'utf8')],
        ['model.safetensors', writeSafetensors(checkpoint.map(([name, t]) => ({ name: name.replace(/^model\./, ''), dtype: 'F32', shape: t.shape, data: t.data })))],
      ]),
    );
    const headlessEngine = await createEmbeddingEngine(headless, { gpu: await testGpu(), contextLength: 64 });
    try {
      const ids = headlessEngine.tokenizer.encode('The capital of China is Beijing.');
      const [result] = (await headlessEngine.embeddings.create({ input: [ids] })).data;
      // The reference takes the whole model, head included: the last hidden state does not depend on it.
      const spec = parseModelConfig(untied.config);
      const reference = createReferenceModel(spec, await loadCanonicalWeights(spec, tensorMapReader(untied.tensors), { dtype: 'f32' }));
      for (const [pos, id] of ids.entries()) reference.forward(id, pos);
      const h = reference.lastHidden();
      const norm = Math.hypot(...h);
      const c = compare(Float32Array.from(result.embedding as number[]), h.map((v) => v / norm));
      expect(c.nmse, `nmse ${c.nmse.toExponential(2)}, seed ${untiedSeed}`).toBeLessThanOrEqual(1e-5);
    } finally {
      await headlessEngine.dispose();
    }
  });
});

/** The little-endian float32 values of OpenAI's base64 encoding. */
function decodeBase64(text: string): Float32Array {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(4 * i, true));
}

describe('embeddings through the worker protocol', () => {
  it('loads for embeddings, answers embeddings (base64 decodes to the float result) and refuses chat and fill-mask by type', async () => {
    const expected = (await engine.embeddings.create({ input: ['one text', 'another, longer text'] })).data.map((d) => d.embedding as number[]);
    const { port1, port2 } = new MessageChannel();
    const gpu = await testGpu();
    serveEngine(port1, {
      chat: () => Promise.reject(new Error('not used')),
      embeddings: (_url, options) => createEmbeddingEngine(files, { dtype: options?.dtype, signal: options?.signal, gpu, contextLength: 128 }),
    });
    const answers = new Map<number, WorkerMessage[]>();
    const waiters = new Map<number, (m: WorkerMessage) => void>();
    port2.addEventListener('message', (event: MessageEvent<WorkerMessage>) => {
      const m = event.data;
      if (!('id' in m)) return;
      answers.set(m.id, [...(answers.get(m.id) ?? []), m]);
      if (m.type !== 'progress') waiters.get(m.id)?.(m);
    });
    port2.start();
    const ask = (message: ClientMessage & { id: number }) =>
      new Promise<WorkerMessage>((resolve) => {
        waiters.set(message.id, resolve);
        port2.postMessage(message);
      });
    try {
      const loaded = await ask({ type: 'load-embeddings', id: 1, url: 'memory', options: {} });
      expect(loaded).toMatchObject({ type: 'embeddings-loaded', info: { kind: 'decoder', hiddenSize: 32, maxInputTokens: 128, pooling: { mode: 'lasttoken' } } });
      const answer = await ask({ type: 'embeddings', id: 2, request: { input: ['one text', 'another, longer text'], encoding_format: 'base64' } });
      if (answer.type !== 'embeddings-response') throw new Error(`expected embeddings, got ${JSON.stringify(answer)}`);
      for (const [i, d] of answer.response.data.entries()) {
        expect(typeof d.embedding).toBe('string');
        expect([...decodeBase64(d.embedding as string)]).toEqual([...Float32Array.from(expected[i])]);
      }
      for (const [id, message] of [[3, { type: 'fill-mask', id: 3, text: '[MASK]', options: {} }], [4, { type: 'generate', id: 4, prompt: 'x', options: {} }]] as const) {
        const refused = await ask(message);
        if (refused.type !== 'error') throw new Error(`request ${id} was not refused`);
        expect(reviveError(refused.error)).toBeInstanceOf(UnsupportedTaskError);
      }
    } finally {
      await ask({ type: 'dispose', id: 5 });
      port2.close();
    }
  });
});
