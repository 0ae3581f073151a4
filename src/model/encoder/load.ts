/**
 * Loading a BERT encoder: config.json and the safetensors header first (the config checked, the MLM head found,
 * every size checked against the device's limits), then each tensor read, converted and uploaded in turn, then
 * the launches prepared (GpuEncoder). Nothing but one tensor (and one layer's QKV) is held on the host at a time.
 */
import type { Gpu } from '../../gpu/device';
import { LimitsExceededError } from '../../gpu/errors';
import { fromF16, toF16 } from '../../gpu/f16';
import { uploadTensor, type Tensor } from '../../gpu/tensor';
import { openWeights } from '../load';
import { ModelConfigError } from '../config';
import { ModelFileMissingError, type ModelFiles } from '../files';
import { ModelWeightsError, safetensorsWeightReader } from '../weights';
import { EMBEDDING_NAMES, layerNames, MLM_NAMES, modelPrefix, parseEncoderConfig, type BertConfig, type NormNames } from './config';
import type { EncoderModel, LoadEncoderOptions } from './encoder-model';
import { GpuEncoder, MLM_ROWS, type EncoderWeights, type LayerNormWeights, type Linear } from './gpu-encoder';

/** 32 inputs of 128 tokens: the batch the embeddings API and the benchmark run. */
export const DEFAULT_MAX_BATCH_TOKENS = 4096;

async function readConfig(files: ModelFiles): Promise<unknown> {
  const text = await files.text('config.json');
  if (text === undefined) throw new ModelFileMissingError(files.name, 'config.json');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${files.name}/config.json is not valid JSON (${(e as Error).message}); is it an HTML error page?`);
  }
}

export async function loadEncoderModel(gpu: Gpu, files: ModelFiles, options: LoadEncoderOptions = {}): Promise<EncoderModel> {
  const json = await readConfig(files);
  const configAlone = parseEncoderConfig(json, false);
  const maxBatchTokens = options.maxBatchTokens ?? Math.max(DEFAULT_MAX_BATCH_TOKENS, configAlone.maxPositions);
  if (!Number.isSafeInteger(maxBatchTokens) || maxBatchTokens < 1) throw new ModelConfigError('maxBatchTokens', `must be a positive integer, got ${maxBatchTokens}`);
  // From the config alone, at the smallest weight dtype, before the weights are opened; again below once
  // the checkpoint says its dtype and whether it has an MLM head.
  checkLimits(gpu, configAlone, maxBatchTokens, options.dtype ?? 'f16');
  const source = await openWeights(files);
  const names = source.tensors;
  const prefix = modelPrefix(names);
  const hasMlmHead = names.has(`${MLM_NAMES.transform}.weight`);
  const config = parseEncoderConfig(json, hasMlmHead);
  if (prefix === undefined) throw new ModelWeightsError(EMBEDDING_NAMES.word, [config.vocabSize, config.hiddenSize], null, 'missing (also under the bert. prefix): is this a BERT checkpoint?');

  const checkpointF32 = [...names.values()].some((t) => t.dtype === 'F32');
  const dtype = options.dtype ?? (checkpointF32 ? 'f32' : 'f16');
  checkLimits(gpu, config, maxBatchTokens, dtype);

  const totalBytes = [...names.values()].reduce((s, t) => s + t.byteLength, 0);
  let readBytes = 0;
  const reader = safetensorsWeightReader(source, (info) => {
    readBytes += info.byteLength;
    options.onProgress?.({ stage: 'read', done: readBytes, total: totalBytes, tensor: info.name });
  });
  const uploaded: Tensor[] = [];
  const read = async (name: string, shape: number[]): Promise<Float32Array> => {
    options.signal?.throwIfAborted();
    const t = await reader(name);
    if (!t) throw new ModelWeightsError(name, shape, null);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new ModelWeightsError(name, shape, t.shape);
    return t.dtype === 'f32' ? t.data : fromF16(t.data);
  };
  const firstPresent = (options: readonly string[]) => options.find((n) => names.has(n)) ?? options[0];
  const upload = async (label: string, data: Float32Array, shape: number[], as: 'f32' | 'f16'): Promise<Tensor> => {
    const t = await uploadTensor(gpu, label, as, shape, as === 'f16' ? toF16(data) : data);
    uploaded.push(t);
    return t;
  };
  const D = config.hiddenSize;
  const vector = (name: string, n: number) => read(name, [n]).then((v) => upload(name, v, [n], 'f32'));
  const linear = async (name: string, out: number, inp: number, base = prefix): Promise<Linear> => ({
    weight: await upload(`${name}.weight`, await read(`${base}${name}.weight`, [out, inp]), [out, inp], dtype),
    bias: await vector(`${base}${name}.bias`, out),
  });
  const norm = async (n: NormNames, base = prefix): Promise<LayerNormWeights> => ({
    weight: await vector(firstPresent(n.weight.map((w) => base + w)), D),
    bias: await vector(firstPresent(n.bias.map((b) => base + b)), D),
  });

  try {
    const { vocabSize: V, maxPositions: P, typeVocabSize: Y, intermediateSize: I } = config;
    const word = await upload('word embeddings', await read(prefix + EMBEDDING_NAMES.word, [V, D]), [V, D], dtype);
    const position = await read(prefix + EMBEDDING_NAMES.position, [P, D]);
    const tokenType = await read(prefix + EMBEDDING_NAMES.tokenType, [Y, D]);
    // One gather instead of two: row p·Y + y holds position p's embedding plus token type y's.
    const positionType = new Float32Array(P * Y * D);
    for (let p = 0; p < P; p++) {
      for (let y = 0; y < Y; y++) {
        const row = (p * Y + y) * D;
        for (let d = 0; d < D; d++) positionType[row + d] = position[p * D + d] + tokenType[y * D + d];
      }
    }
    const weights: EncoderWeights = {
      word,
      positionType: await upload('position + token type embeddings', positionType, [P * Y, D], 'f32'),
      embeddingNorm: await norm(EMBEDDING_NAMES.norm),
      layers: [],
    };
    for (let l = 0; l < config.layers; l++) {
      const n = layerNames(l);
      // Query, key and value stacked into one [3D, D] projection.
      const qkvWeight = new Float32Array(3 * D * D);
      const qkvBias = new Float32Array(3 * D);
      for (const [i, name] of [n.query, n.key, n.value].entries()) {
        qkvWeight.set(await read(`${prefix}${name}.weight`, [D, D]), i * D * D);
        qkvBias.set(await read(`${prefix}${name}.bias`, [D]), i * D);
      }
      weights.layers.push({
        qkv: { weight: await upload(`layer ${l} qkv`, qkvWeight, [3 * D, D], dtype), bias: await upload(`layer ${l} qkv bias`, qkvBias, [3 * D], 'f32') },
        attentionOutput: await linear(n.attentionOutput, D, D),
        attentionNorm: await norm(n.attentionNorm),
        intermediate: await linear(n.intermediate, I, D),
        output: await linear(n.output, D, I),
        outputNorm: await norm(n.outputNorm),
      });
      options.onProgress?.({ stage: 'upload', done: l + 1, total: config.layers });
    }
    if (hasMlmHead) {
      weights.mlm = {
        transform: await linear(MLM_NAMES.transform, D, D, ''),
        transformNorm: await norm(MLM_NAMES.transformNorm, ''),
        decoder: config.tiedDecoder ? word : await upload(MLM_NAMES.decoder, await read(MLM_NAMES.decoder, [V, D]), [V, D], dtype),
        bias: await vector(firstPresent(MLM_NAMES.bias), V),
      };
    }
    options.signal?.throwIfAborted();
    options.onProgress?.({ stage: 'compile', done: 0, total: 1 });
    const model = await GpuEncoder.create(gpu, config, weights, maxBatchTokens, config.gelu === 'erf');
    options.onProgress?.({ stage: 'compile', done: 1, total: 1 });
    return model;
  } catch (e) {
    // GpuEncoder.create destroys the weights it was given; destroying twice is harmless.
    for (const t of uploaded) t.buffer.destroy();
    throw e;
  }
}

/** Refuses, before anything is allocated, a model or batch whose buffers this device cannot hold or bind. */
function checkLimits(gpu: Gpu, config: BertConfig, maxBatchTokens: number, dtype: 'f32' | 'f16'): void {
  const { maxStorageBufferBindingSize: binding, maxBufferSize } = gpu.device.limits;
  const limit = Math.min(binding, maxBufferSize);
  const { hiddenSize: D, intermediateSize: I, vocabSize: V, maxPositions: P, typeVocabSize: Y } = config;
  const weightBytes = dtype === 'f16' ? 2 : 4;
  const largest: [string, number][] = [
    ['the word embeddings', V * D * weightBytes],
    ['the position and token-type table', 4 * P * Y * D],
    // Staged whole on the host in f32 before upload (so never smaller than its buffer): held to the same bound,
    // so a config cannot ask the host for gigabytes either.
    ["a layer's query/key/value weight, staged in f32", 4 * 3 * D * D],
    ["a layer's intermediate or output weight", I * D * weightBytes],
    ['a [tokens × intermediate] activation', 4 * maxBatchTokens * Math.max(I, 3 * D)],
  ];
  if (config.hasMlmHead) largest.push(['the MLM logits', 4 * MLM_ROWS * V]);
  for (const [what, bytes] of largest) {
    if (bytes > limit) throw new LimitsExceededError(what, bytes, limit, binding <= maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize');
  }
}
