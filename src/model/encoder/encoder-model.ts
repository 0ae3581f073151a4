/**
 * The contract between BERT-family encoders (bidirectional, no KV cache) and what sits on top of them:
 * embeddings (pooling, normalisation, the OpenAI-shaped API) and fill-mask. The model knows token ids only;
 * tokenization (WordPiece, `[CLS] … [SEP]`, token_type_ids) and pooling happen above it.
 *
 * Loading: `loadEncoderModel(gpu, files, options)` (./load.ts) reads config.json and model.safetensors (or its
 * shards) from the same `ModelFiles` the decoder load takes (folder, URL, memory, cache), checks the config, and
 * allocates every activation for `maxBatchTokens` once; encode calls only write inputs and submit.
 */
import type { Gpu } from '../../gpu/device';
import type { ModelFiles } from '../files';
import type { LoadProgress } from '../upload';

/** The encoder model types this runtime runs; the BERT-like ones it does not are refused by name. */
export const ENCODER_MODEL_TYPES = ['bert'] as const;

/**
 * config.json names an encoder this runtime does not run (roberta, xlm-roberta, distilbert, nomic_bert, …: their
 * weights or positions differ from BERT's), or a decoder where an encoder was asked for.
 */
export class UnsupportedEncoderError extends Error {
  override readonly name = 'UnsupportedEncoderError';
  constructor(
    readonly modelType: string,
    detail = '',
  ) {
    super(`Model type "${modelType}" is not a supported encoder${detail ? ` (${detail})` : ''}. Supported encoder model types: ${ENCODER_MODEL_TYPES.join(', ')}.`);
  }
}

/** config.json of a BERT checkpoint, normalised (HF names in brackets). */
export interface EncoderConfig {
  /** `model_type` as written ('bert'). */
  readonly modelType: string;
  /** D [hidden_size]. */
  readonly hiddenSize: number;
  /** [num_hidden_layers]. */
  readonly layers: number;
  /** [num_attention_heads]; the head width is hiddenSize / heads. */
  readonly heads: number;
  /** [intermediate_size]. */
  readonly intermediateSize: number;
  /** Rows of the word embedding and columns of the MLM logits [vocab_size]. */
  readonly vocabSize: number;
  /** Longest input, in tokens, [CLS] and [SEP] included [max_position_embeddings]. */
  readonly maxPositions: number;
  /** Rows of the token-type embedding [type_vocab_size]. */
  readonly typeVocabSize: number;
  /** Epsilon of every LayerNorm [layer_norm_eps]. */
  readonly layerNormEps: number;
  /** The checkpoint has the masked-LM head (`cls.predictions.*`, BertForMaskedLM); maskedLmLogits needs it. */
  readonly hasMlmHead: boolean;
  /** [pad_token_id], or null when the config has none. */
  readonly padTokenId: number | null;
}

export interface EncoderInput {
  /** Token ids, special tokens included (`[CLS] … [SEP]`); 1 ≤ length ≤ maxPositions. */
  readonly ids: readonly number[];
  /** Segment of each token (0 or 1 for sentence pairs), same length as ids; all 0 when absent. */
  readonly typeIds?: readonly number[];
}

export interface EncoderModel {
  readonly config: EncoderConfig;
  /**
   * Most tokens one GPU pass holds (its inputs' lengths summed: they are packed back to back), allocated once at load. An encode call with
   * more is run as several passes. An empty input, one longer than this or than maxPositions, an id outside the
   * vocabulary or a type id outside typeVocabSize is an InvalidRequestError naming it (`inputs[2].ids`).
   */
  readonly maxBatchTokens: number;
  /** GPU bytes the model holds: weights plus the activations for maxBatchTokens. */
  readonly gpuBytes: number;
  /**
   * Last hidden states (after the last layer's output LayerNorm), one Float32Array [ids.length × hiddenSize]
   * per input, row-major by token. Inputs of different lengths are packed back to back, each attending to its own
   * tokens only: an input's result does not depend on what it is batched with.
   */
  encode(inputs: readonly EncoderInput[]): Promise<Float32Array[]>;
  /**
   * Masked-LM logits [vocabSize] at each of `positions` (token indices into input.ids, at most ids.length of
   * them), in that order.
   * Checkpoints without the head (hasMlmHead false) throw InvalidRequestError (param 'model').
   */
  maskedLmLogits(input: EncoderInput, positions: readonly number[]): Promise<Float32Array[]>;
  /** Frees the GPU buffers; the model is unusable afterwards. */
  destroy(): void;
}

export interface LoadEncoderOptions {
  /** Weights on the GPU: f32 or f16 (default: f32 for F32 checkpoints, f16 otherwise). Activations are f32. */
  dtype?: 'f32' | 'f16';
  /** Most tokens per GPU pass (default 4096 = 32 inputs × 128 tokens, at least maxPositions). */
  maxBatchTokens?: number;
  /** Progress by stage: `read` checkpoint bytes as each tensor is read, `upload` layers uploaded, `compile` once before and after. */
  onProgress?: (progress: LoadProgress) => void;
  /** Stops the load; the buffers created so far are destroyed. */
  signal?: AbortSignal;
}

/** The loader's signature (implemented in ./load.ts). */
export type LoadEncoderModel = (gpu: Gpu, files: ModelFiles, options?: LoadEncoderOptions) => Promise<EncoderModel>;
