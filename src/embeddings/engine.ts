/**
 * The embedding engine: one model behind a request queue, serving OpenAI's `embeddings.create` and, for BERT
 * checkpoints with a masked-LM head, `fillMask`. It is its own engine (createEmbeddingEngine), not a mode of the
 * chat Engine: an encoder has no KV cache, sampling or chat template, and a decoder loaded for embeddings needs
 * none of the chat machinery either. Two kinds of model serve it:
 * - an encoder (BERT): every token's last hidden state comes back, pooled here as the repo says (./pooling.ts);
 *   inputs are packed back to back (no padding), several per pass, up to the model's maxBatchTokens per pass;
 * - a decoder (Qwen3-Embedding): the final-normed hidden state of the last token (GpuModel.lastHidden), the
 *   last-token pooling such models are trained with; one input per forward pass, the KV cache rewound each time.
 */
import { acquireGpu, type Gpu } from '../gpu/device';
import type { ModelSource } from '../engine/types';
import { ARCHITECTURES } from '../model/architectures';
import { loadEncoderModel } from '../model/encoder/load';
import { ModelFileMissingError, urlFiles } from '../model/files';
import { huggingFaceFetch } from '../net/hf-token';
import { isJsonObject } from '../util/json';
import { loadModel, undecodableIds } from '../model/load';
import type { EncoderInput, EncoderModel } from '../model/encoder/encoder-model';
import type { GpuModel } from '../model/forward';
import { EngineDisposedError } from '../engine/errors';
import { RequestQueue } from '../engine/queue';
import { InvalidRequestError } from '../chat/messages';
import { InvalidOptionError } from '../sampling/options';
import { InputTooLongError, loadTokenizer, TokenizerError, type Tokenizer, type TypedIds } from '../tokenizer/tokenizer';
import { UnsupportedTaskError } from './errors';
import { finishEmbedding, pool, readJsonFile, readPoolingConfig, type PoolingConfig } from './pooling';
import type { CreateEmbeddingResponse, EmbeddingEngineOptions, EmbeddingRequest, Embeddings, FillMaskOptions, FillMaskResult, RequestOptions } from './types';

/** OpenAI's limit on inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;
/** Characters per text, checked before tokenizing (a bound on the work a request can ask for, truncated or not). */
export const MAX_INPUT_CHARS = 1 << 20;
/** Characters across a request's texts (instruction included), checked before tokenizing anything. */
export const MAX_REQUEST_CHARS = 1 << 21;
/**
 * With truncation, a text is cut to maxInputTokens × this many characters before it is tokenized: far more than
 * any natural-language text spends per token (about 4 in English), so the kept tokens are those of the whole text.
 */
export const TRUNCATE_CHARS_PER_TOKEN = 32;

/** What runs the embeddings: an encoder's every hidden state, or a decoder's last one. */
export type EmbeddingModel = { kind: 'encoder'; model: EncoderModel } | { kind: 'decoder'; model: GpuModel };

const REQUEST_FIELDS = new Set(['input', 'model', 'dimensions', 'encoding_format', 'user', 'truncate', 'instruction']);

export class EmbeddingEngine {
  readonly embeddings: Embeddings;
  /** Width of the embeddings before any `dimensions` cut. */
  readonly hiddenSize: number;
  /** Most tokens one input may have, special tokens included. */
  readonly maxInputTokens: number;
  private readonly vocabSize: number;
  /** Characters of a text tokenized when truncating (maxInputTokens × TRUNCATE_CHARS_PER_TOKEN). */
  private readonly truncateChars: number;
  private readonly queue = new RequestQueue();
  private disposed = false;
  /** Ids the tokenizer has no token for (a vocabulary padded past the tokenizer's), found on the first fill-mask. */
  private undecodable: number[] | undefined;

  constructor(
    /** The GPU the model runs on. */
    readonly gpu: Gpu,
    /** The model's name as given to createEmbeddingEngine (the `model` field of responses). */
    readonly modelId: string,
    readonly tokenizer: Tokenizer,
    private readonly runner: EmbeddingModel,
    /** How hidden states become an embedding, and where that choice came from. */
    readonly pooling: PoolingConfig,
    /** The tokenizer's or sentence-transformers' limit on input tokens, where lower than the model's own. */
    inputLimit = Infinity,
  ) {
    if (runner.kind === 'decoder' && pooling.mode !== 'lasttoken') {
      throw new UnsupportedTaskError('embeddings', `${pooling.source} asks for ${pooling.mode} pooling; decoders are served with last-token pooling only`);
    }
    const modelMax = runner.kind === 'encoder' ? Math.min(runner.model.config.maxPositions, runner.model.maxBatchTokens) : runner.model.contextLength;
    this.maxInputTokens = Math.min(modelMax, inputLimit);
    this.truncateChars = this.maxInputTokens * TRUNCATE_CHARS_PER_TOKEN;
    this.hiddenSize = runner.kind === 'encoder' ? runner.model.config.hiddenSize : runner.model.spec.hiddenSize;
    this.vocabSize = runner.kind === 'encoder' ? runner.model.config.vocabSize : runner.model.spec.vocabSize;
    this.embeddings = { create: (request, options) => this.createEmbeddings(request, options) };
  }

  /** 'encoder' (BERT) or 'decoder' (Qwen3-Embedding). */
  get kind(): EmbeddingModel['kind'] {
    return this.runner.kind;
  }

  private async createEmbeddings(request: EmbeddingRequest, options: RequestOptions = {}): Promise<CreateEmbeddingResponse> {
    if (this.disposed) throw new EngineDisposedError();
    if (typeof request !== 'object' || request === null) throw new InvalidRequestError('the request must be an object', 'request');
    for (const [key, value] of Object.entries(request)) {
      if (!REQUEST_FIELDS.has(key)) throw new InvalidOptionError(key, `one of ${[...REQUEST_FIELDS].join(', ')}`, value);
    }
    const dimensions = request.dimensions ?? this.hiddenSize;
    if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > this.hiddenSize) {
      throw new InvalidOptionError('dimensions', `an integer from 1 to ${this.hiddenSize} (the model's hidden size)`, request.dimensions);
    }
    const format = request.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') throw new InvalidOptionError('encoding_format', "'float' or 'base64'", request.encoding_format);
    const truncate = request.truncate ?? false;
    if (typeof truncate !== 'boolean') throw new InvalidOptionError('truncate', 'a boolean', request.truncate);
    const instruction = request.instruction ?? undefined;
    if (instruction !== undefined && typeof instruction !== 'string') throw new InvalidOptionError('instruction', 'a string', instruction);
    if (instruction !== undefined && !this.pooling.includePrompt && (this.pooling.mode === 'mean' || this.pooling.mode === 'max')) {
      throw new UnsupportedTaskError('embeddings', `${this.pooling.source} sets include_prompt: false (the instruction's tokens left out of ${this.pooling.mode} pooling), which is not implemented; send the texts without an instruction`);
    }
    const inputs = this.tokenizeInputs(request.input, truncate, instruction);

    const release = await this.queue.acquire(options.signal);
    let pooled: Float32Array[];
    try {
      if (this.disposed) throw new EngineDisposedError();
      pooled = await this.run(inputs, options.signal);
    } finally {
      release();
    }
    const tokens = inputs.reduce((sum, input) => sum + input.ids.length, 0);
    return {
      object: 'list',
      data: pooled.map((vector, index) => {
        const embedding = finishEmbedding(vector, dimensions, this.pooling.normalize);
        return { object: 'embedding', index, embedding: format === 'base64' ? float32Base64(embedding) : Array.from(embedding) };
      }),
      model: this.modelId,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  }

  /** The request's inputs as the model's token ids, validated, each within maxInputTokens. */
  private tokenizeInputs(input: unknown, truncate: boolean, instruction: string | undefined): TypedIds[] {
    const list: unknown[] = typeof input === 'string' || (Array.isArray(input) && typeof input[0] === 'number') ? [input] : Array.isArray(input) ? input : [];
    if (list.length === 0) throw new InvalidRequestError('input must be a non-empty string, array of strings, token array or array of token arrays', 'input');
    if (list.length > MAX_EMBEDDING_INPUTS) throw new InvalidRequestError(`input has ${list.length} items; at most ${MAX_EMBEDDING_INPUTS} per request`, 'input');
    const texts = typeof list[0] === 'string';
    if (instruction !== undefined && !texts) throw new InvalidOptionError('instruction', 'texts as input (token ids are the whole input)', instruction);
    const paramOf = (i: number) => (list.length === 1 && !Array.isArray(input) ? 'input' : `input[${i}]`);
    if (texts) {
      // Every text is checked before any is tokenized: tokenizing is synchronous work the request controls.
      let chars = 0;
      for (const [i, item] of list.entries()) {
        const param = paramOf(i);
        if (typeof item !== 'string' || item.length === 0) throw new InvalidRequestError('every input must be a non-empty string (inputs cannot mix texts and token ids)', param);
        if (item.length > MAX_INPUT_CHARS) throw new InvalidRequestError(`${param} has ${item.length} characters; at most ${MAX_INPUT_CHARS}`, param);
        chars += (instruction?.length ?? 0) + (truncate ? Math.min(item.length, this.truncateChars) : item.length);
      }
      if (chars > MAX_REQUEST_CHARS) {
        throw new InvalidRequestError(`the inputs hold ${chars} characters in all; at most ${MAX_REQUEST_CHARS} per request: split them across requests${truncate ? '' : ' or pass truncate: true'}`, 'input');
      }
    }
    return list.map((item, i) => {
      const param = paramOf(i);
      if (typeof item === 'string') {
        const text = truncate ? item.slice(0, this.truncateChars) : item;
        return this.tokenizer.encodeTyped(instruction === undefined ? text : `Instruct: ${instruction}\nQuery:${text}`, { maxLength: this.maxInputTokens, truncate, param });
      }
      return { ids: this.checkIds(item, param, truncate), typeIds: [] };
    }).map((t) => ({ ids: t.ids, typeIds: t.typeIds.length ? t.typeIds : t.ids.map(() => 0) }));
  }

  private checkIds(item: unknown, param: string, truncate: boolean): number[] {
    if (!Array.isArray(item) || item.length === 0) throw new InvalidRequestError('every input must be a non-empty array of token ids (inputs cannot mix texts and token ids)', param);
    if (item.length > this.maxInputTokens && !truncate) throw new InputTooLongError(item.length, this.maxInputTokens, param);
    const ids = item.slice(0, this.maxInputTokens);
    for (const id of ids) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new InvalidRequestError(`token id ${String(id)} is outside the vocabulary of ${this.vocabSize}`, param);
      }
    }
    return ids;
  }

  /** Pooled (not yet cut or normalised) embeddings, in input order. */
  private async run(inputs: readonly TypedIds[], signal: AbortSignal | undefined): Promise<Float32Array[]> {
    const out = new Array<Float32Array>(inputs.length);
    const { runner } = this;
    if (runner.kind === 'decoder') {
      for (const [i, input] of inputs.entries()) {
        signal?.throwIfAborted();
        runner.model.rewind(0);
        out[i] = await runner.model.lastHidden(input.ids);
      }
      return out;
    }
    const { model } = runner;
    for (const batch of batchByLength(inputs, model.maxBatchTokens)) {
      signal?.throwIfAborted();
      const batchInputs: EncoderInput[] = batch.map((i) => ({ ids: inputs[i].ids, typeIds: inputs[i].typeIds }));
      const hidden = await model.encode(batchInputs);
      for (const [j, i] of batch.entries()) out[i] = pool(hidden[j], model.config.hiddenSize, this.pooling.mode);
    }
    return out;
  }

  /**
   * The most likely tokens for the text's one mask token (`[MASK]`, or tokenizer_config.json's mask_token), as
   * Hugging Face's fill-mask pipeline gives them: probabilities from a softmax over the vocabulary (the ids the
   * tokenizer can spell).
   */
  async fillMask(text: string, options: FillMaskOptions = {}): Promise<FillMaskResult[]> {
    if (this.disposed) throw new EngineDisposedError();
    const { runner } = this;
    if (runner.kind !== 'encoder') throw new UnsupportedTaskError('fill-mask', 'it is a decoder; fill-mask needs a BERT checkpoint with a masked-LM head');
    if (!runner.model.config.hasMlmHead) throw new UnsupportedTaskError('fill-mask', 'the checkpoint has no masked-LM head (cls.predictions.*), as BertModel checkpoints and sentence encoders do not');
    const maskId = this.tokenizer.maskTokenId;
    if (maskId === null) throw new UnsupportedTaskError('fill-mask', 'the tokenizer has no mask token');
    const topK = options.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1 || topK > this.vocabSize) throw new InvalidOptionError('topK', `an integer from 1 to ${this.vocabSize}`, options.topK);
    if (typeof text !== 'string' || text.length === 0) throw new InvalidRequestError('text must be a non-empty string', 'text');
    if (text.length > MAX_INPUT_CHARS) throw new InvalidRequestError(`text has ${text.length} characters; at most ${MAX_INPUT_CHARS}`, 'text');
    const truncate = options.truncate ?? false;
    const input = this.tokenizer.encodeTyped(truncate ? text.slice(0, this.truncateChars) : text, { maxLength: this.maxInputTokens, truncate, param: 'text' });
    const positions = input.ids.flatMap((id, i) => (id === maskId ? [i] : []));
    const mask = this.tokenizer.idToToken(maskId) ?? '[MASK]';
    if (positions.length !== 1) throw new InvalidRequestError(`the text must hold exactly one ${mask} token, found ${positions.length}`, 'text');

    const release = await this.queue.acquire(options.signal);
    let logits: Float32Array;
    try {
      if (this.disposed) throw new EngineDisposedError();
      [logits] = await runner.model.maskedLmLogits(input, positions);
    } finally {
      release();
    }
    this.undecodable ??= undecodableIds(this.tokenizer, logits.length);
    for (const id of this.undecodable) logits[id] = -Infinity;
    const probs = softmax(logits);
    const best = topIndices(probs, topK);
    return best.map((id) => {
      const ids = input.ids.map((t, i) => (i === positions[0] ? id : t));
      return {
        token: id,
        tokenStr: this.tokenizer.decode([id]),
        score: probs[id],
        sequence: this.tokenizer.decode(ids, { skipSpecialTokens: true }),
      };
    });
  }

  /** Frees the GPU memory once the running request ends; later calls throw EngineDisposedError. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const release = await this.queue.acquire();
    this.runner.model.destroy();
    release();
  }
}

/**
 * Input indices grouped into passes: sorted by length (longest first), a pass growing while its inputs × its
 * longest input stay within maxBatchTokens. The encoder packs a pass's inputs back to back, so this bounds
 * their summed length from above.
 */
export function batchByLength(inputs: readonly { ids: readonly number[] }[], maxBatchTokens: number): number[][] {
  const order = inputs.map((_, i) => i).sort((a, b) => inputs[b].ids.length - inputs[a].ids.length || a - b);
  const batches: number[][] = [];
  let batch: number[] = [];
  for (const i of order) {
    const longest = batch.length ? inputs[batch[0]].ids.length : inputs[i].ids.length;
    if (batch.length > 0 && (batch.length + 1) * longest > maxBatchTokens) {
      batches.push(batch);
      batch = [];
    }
    batch.push(i);
  }
  if (batch.length) batches.push(batch);
  return batches;
}

/** Probabilities from logits, in f64 so the sum over a 30k vocabulary does not drift. */
function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const out = Float64Array.from(logits, (v) => Math.exp(v - max));
  let sum = 0;
  for (const v of out) sum += v;
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** The k largest entries' indices, largest first (lower index first on ties). */
function topIndices(values: Float64Array, k: number): number[] {
  return Array.from(values.keys())
    .sort((a, b) => values[b] - values[a] || a - b)
    .slice(0, k);
}

/** OpenAI's base64 encoding: the float32 values as little-endian bytes, whatever the platform's order. */
export function float32Base64(values: Float32Array): string {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  let binary = '';
  // In pieces: String.fromCharCode over a whole 4096-wide embedding's bytes could pass too many arguments.
  for (let i = 0; i < bytes.length; i += 0x2000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x2000));
  return btoa(binary);
}

/**
 * Loads a model for embeddings (and fill-mask); config.json's model_type picks the path. A decoder type the chat
 * engine runs (Qwen3-Embedding: qwen3) loads as for generation and is pooled on its last token; anything else is
 * loaded as an encoder (BERT; its relatives are refused by name). Pooling and normalisation come from the repo's
 * sentence-transformers files (./pooling.ts); the longest input is the least of the model's positions, the
 * tokenizer's model_max_length and sentence-transformers' max_seq_length.
 */
export async function createEmbeddingEngine(source: ModelSource, options: EmbeddingEngineOptions = {}): Promise<EmbeddingEngine> {
  const files = typeof source === 'string' ? urlFiles(source, { signal: options.signal, fetch: huggingFaceFetch(options.hfToken) }) : source;
  const gpu = options.gpu ?? (await acquireGpu());
  const { dtype, contextLength, memoryBudget, maxBatchTokens, onProgress, signal } = options;
  const config = await readJsonFile(files, 'config.json');
  if (config === undefined) throw new ModelFileMissingError(files.name, 'config.json');
  const decoder = isJsonObject(config) && typeof config.model_type === 'string' && config.model_type in ARCHITECTURES;
  const stConfig = await readJsonFile(files, 'sentence_bert_config.json');
  const stMaxLength = isJsonObject(stConfig) ? positiveInteger(stConfig.max_seq_length) : undefined;
  if (decoder) {
    // Embeddings read the last hidden state: an LM head (Qwen3-Embedding-4B/8B ship none, untied) is never loaded.
    const loaded = await loadModel(gpu, files, { dtype, contextLength, memoryBudget, onProgress, signal, withoutLmHead: true });
    try {
      const pooling = await readPoolingConfig(files, true);
      const limit = Math.min(modelMaxLength(loaded.tokenizerConfig) ?? Infinity, stMaxLength ?? Infinity);
      return new EmbeddingEngine(gpu, files.name, loaded.tokenizer, { kind: 'decoder', model: loaded.model }, pooling, limit);
    } catch (e) {
      loaded.model.destroy();
      throw e;
    }
  }
  const tokenizerJson = await files.text('tokenizer.json');
  if (tokenizerJson === undefined) throw new ModelFileMissingError(files.name, 'tokenizer.json');
  const tokenizerConfig = (await readJsonFile(files, 'tokenizer_config.json')) ?? {};
  if (!isJsonObject(tokenizerConfig)) throw new TokenizerError('tokenizer_config.json must hold a JSON object');
  const tokenizer = loadTokenizer({ tokenizerJson, tokenizerConfig });
  const pooling = await readPoolingConfig(files, false);
  const model = await loadEncoderModel(gpu, files, { dtype, maxBatchTokens, onProgress, signal });
  const limit = Math.min(modelMaxLength(tokenizerConfig) ?? Infinity, stMaxLength ?? Infinity);
  return new EmbeddingEngine(gpu, files.name, tokenizer, { kind: 'encoder', model }, pooling, limit);
}


function positiveInteger(n: unknown): number | undefined {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** tokenizer_config.json's model_max_length where it is a real limit (transformers writes 1e30 for "none"). */
function modelMaxLength(config: Record<string, unknown>): number | undefined {
  const n = config.model_max_length;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 1e9 ? n : undefined;
}
