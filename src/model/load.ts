/**
 * Loading a model: config → spec, tokenizer, safetensors header (single file or shards), a limits check
 * from the config alone (before any weight is read), then weights mapped to canonical form and uploaded.
 */
import type { Gpu } from '../gpu/device';
import { openSafetensors, openShardedSafetensors, type TensorSource } from '../formats/safetensors';
import { loadTokenizer, type Tokenizer } from '../tokenizer/tokenizer';
import { architectureOf } from './architectures';
import { parseModelConfig, type ModelSpec } from './config';
import { ModelFileMissingError, type ModelFiles } from './files';
import { GpuModel, type GpuModelOptions } from './forward';
import { checkModelFits } from './limits';
import { planContext, type ContextChoice } from './memory';
import { weightBindingLimit } from './split';
import type { LanguageModel } from './language-model';
import type { QuantDType } from '../quant/quantize';
import { checkpointStream } from './stream';
import type { LoadProgress } from './upload';
import { checkLayerCount, type WeightDtype } from './weights';

export interface LoadModelOptions extends Omit<GpuModelOptions, 'quantize' | 'maskedTokenIds'> {
  /**
   * Weight matrices on the GPU: f32, f16, or quantized at load to q8/q4 (int8/int4, group 32, f16 scales;
   * the embedding stays f16). Default f16 for F16/BF16 checkpoints, f32 for F32 ones.
   */
  dtype?: WeightDtype | QuantDType;
  /**
   * Progress by stage: `read` checkpoint bytes (of the weight files' total) as each slice is read, `upload`
   * bytes written to the GPU, `quantize` weights quantized, `compile` steps.
   */
  onProgress?: (progress: LoadProgress) => void;
  /** Stops the load between slices; the buffers created so far are destroyed. */
  signal?: AbortSignal;
  /** Most checkpoint bytes held at once while streaming (default 16 MiB; a slice is at least 32 rows). */
  sliceBytes?: number;
  /**
   * Leave the LM head out, for a model only ever asked for its last hidden state (embeddings): lm_head.weight is
   * neither required, read nor given a GPU buffer, the model loading as if its embeddings were tied, so its
   * logits are meaningless.
   */
  withoutLmHead?: boolean;
}

export interface LoadedModel<Model extends LanguageModel = GpuModel> {
  spec: ModelSpec;
  tokenizer: Tokenizer;
  model: Model;
  /**
   * Ids of the model's vocabulary the tokenizer cannot decode (a padded tail, holes), ascending: never
   * produced (masked on the GPU) and refused in prompts.
   */
  maskedTokenIds: readonly number[];
  /**
   * The context allocated and why it is that long (asked for, the model's maximum, the 4096 default, or
   * what the memory budget allows), with the GPU bytes the model holds and the budget.
   */
  context: ContextChoice;
  /** generation_config.json as given (sampling defaults), or an empty object. */
  generationConfig: Record<string, unknown>;
  /**
   * tokenizer_config.json (special tokens, chat_template), or an empty object. A separate
   * chat_template.jinja, as newer repos ship, fills in chat_template when the config has none.
   */
  tokenizerConfig: Record<string, unknown>;
}

async function requiredText(files: ModelFiles, file: string): Promise<string> {
  const text = await files.text(file);
  if (text === undefined) throw new ModelFileMissingError(files.name, file);
  return text;
}

function parseJson(files: ModelFiles, file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${files.name}/${file} is not valid JSON (${(e as Error).message}); is it an HTML error page?`);
  }
}

function asObject(files: ModelFiles, file: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SyntaxError(`${files.name}/${file} must hold a JSON object`);
  }
  return Object.fromEntries(Object.entries(value));
}

/** The weights: model.safetensors, or the shards listed by model.safetensors.index.json. */
export async function openWeights(files: ModelFiles): Promise<TensorSource> {
  const single = await files.bytes('model.safetensors');
  if (single) return openSafetensors(single);
  const index = await files.text('model.safetensors.index.json');
  if (index === undefined) throw new ModelFileMissingError(files.name, 'model.safetensors');
  return openShardedSafetensors(index, async (shard) => {
    const source = await files.bytes(shard);
    if (!source) throw new ModelFileMissingError(files.name, shard);
    return source;
  });
}

/** The ids below `vocabSize` (the model's) that the tokenizer has no token for, ascending. */
export function undecodableIds(tokenizer: Tokenizer, vocabSize: number): number[] {
  const ids: number[] = [];
  const known = Math.min(tokenizer.vocabSize, vocabSize);
  for (let id = 0; id < known; id++) if (tokenizer.idToToken(id) === undefined) ids.push(id);
  for (let id = known; id < vocabSize; id++) ids.push(id);
  return ids;
}

/** What every backend reads before the weights: config, tokenizer, the safetensors header. */
export interface OpenedModel extends Omit<LoadedModel, 'model' | 'context'> {
  weights: TensorSource;
}

export async function openModel(files: ModelFiles): Promise<OpenedModel> {
  const configText = await requiredText(files, 'config.json');
  const generationText = await files.text('generation_config.json');
  const generationConfig = generationText === undefined ? {} : asObject(files, 'generation_config.json', parseJson(files, 'generation_config.json', generationText));
  const spec = parseModelConfig(parseJson(files, 'config.json', configText), generationConfig);

  const tokenizerConfigText = await files.text('tokenizer_config.json');
  const tokenizerConfig =
    tokenizerConfigText === undefined ? {} : asObject(files, 'tokenizer_config.json', parseJson(files, 'tokenizer_config.json', tokenizerConfigText));
  // A config with "chat_template": null (as some repos write next to chat_template.jinja) also takes the file.
  if (tokenizerConfig.chat_template === undefined || tokenizerConfig.chat_template === null) {
    const jinja = await files.text('chat_template.jinja');
    if (jinja !== undefined) tokenizerConfig.chat_template = jinja;
  }
  const tokenizer = loadTokenizer({ tokenizerJson: await requiredText(files, 'tokenizer.json'), tokenizerConfig });
  tokenizer.addEosTokenIds(spec.eosTokenIds);

  const weights = await openWeights(files);
  checkLayerCount(spec, weights.tensors.keys());
  const maskedTokenIds = undecodableIds(tokenizer, spec.vocabSize);
  return { spec, tokenizer, weights, maskedTokenIds, generationConfig, tokenizerConfig };
}

export async function loadModel(gpu: Gpu, files: ModelFiles, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const opened = await openModel(files);
  const { tokenizer, weights, maskedTokenIds, generationConfig, tokenizerConfig } = opened;
  const spec = options.withoutLmHead ? { ...opened.spec, tiedEmbeddings: true } : opened.spec;
  const lmHead = architectureOf(spec).tensors.model.lmHead;
  // The tensors the stream reads: a skipped vision tower (or LM head) is never fetched, and its dtype decides nothing.
  const skipped = spec.skippedParts.flatMap((p) => p.tensorPrefixes);
  const read = [...weights.tensors.entries()]
    .filter(([name]) => !skipped.some((prefix) => name.startsWith(prefix)) && !(options.withoutLmHead && name === lmHead))
    .map(([, t]) => t);
  const checkpointDtypes = new Set(read.map((t) => t.dtype));
  const requested = options.dtype;
  const quantize = requested === 'q8' || requested === 'q4' ? requested : undefined;
  const dtype: WeightDtype = requested === 'f32' || requested === 'f16' ? requested : !quantize && checkpointDtypes.has('F32') ? 'f32' : 'f16';
  const bindingLimit = weightBindingLimit(gpu.device.limits, options.maxBindingSize);
  const { context, chunk } = planContext(spec, { ...options, dtype, quantize, maskedTokens: maskedTokenIds.length, bindingLimit });
  checkModelFits(gpu, spec, dtype, context.contextLength, chunk, options.kvDtype, options.maxBindingSize);

  const totalBytes = read.reduce((sum, t) => sum + t.byteLength, 0);
  let readBytes = 0;
  const stream = checkpointStream(spec, weights, {
    dtype,
    sliceBytes: options.sliceBytes,
    signal: options.signal,
    onRead: (bytes, tensor) => {
      readBytes += bytes;
      options.onProgress?.({ stage: 'read', done: readBytes, total: totalBytes, tensor });
    },
  });
  const model = await GpuModel.fromStream(gpu, spec, stream, dtype, { ...options, contextLength: context.contextLength, quantize, maskedTokenIds });
  return { spec, tokenizer, model, context, maskedTokenIds, generationConfig, tokenizerConfig };
}
