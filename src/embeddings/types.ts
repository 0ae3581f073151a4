/** The embeddings and fill-mask API's request and response shapes (OpenAI's `embeddings.create`, Hugging Face's fill-mask). */
import type { EngineOptions } from '../engine/types';

export interface EmbeddingRequest {
  /**
   * A text, a list of texts, one input as token ids, or a list of those (at most 2048 inputs). Token ids are the
   * model's whole input, special tokens included (a BERT input starts with [CLS] and ends with [SEP]).
   */
  input: string | string[] | number[] | number[][];
  /** Accepted and ignored: the engine serves one model. */
  model?: string | null;
  /** Keep the first `dimensions` values (Matryoshka), renormalised when the model normalises; at most the hidden size. */
  dimensions?: number | null;
  /** 'float' (default): arrays of numbers. 'base64': each embedding's little-endian float32 bytes in base64. */
  encoding_format?: 'float' | 'base64' | null;
  /** Accepted for compatibility (OpenAI's end-user id); unused. */
  user?: string | null;
  /**
   * Cut inputs longer than the model takes instead of failing with InputTooLongError (not in OpenAI's API). Only a
   * text's first maxInputTokens × 32 characters are tokenized (TRUNCATE_CHARS_PER_TOKEN). Without it a request's
   * texts hold at most MAX_REQUEST_CHARS characters in all, each at most MAX_INPUT_CHARS.
   */
  truncate?: boolean | null;
  /**
   * A task for instruction-tuned embedding models (Qwen3-Embedding): each text becomes
   * `Instruct: {instruction}\nQuery:{text}`. For queries; documents go without one. Texts only.
   */
  instruction?: string | null;
}

export interface Embedding {
  object: 'embedding';
  index: number;
  /** A list of floats, or a base64 string with encoding_format 'base64'. */
  embedding: number[] | string;
}

export interface CreateEmbeddingResponse {
  object: 'list';
  data: Embedding[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface FillMaskOptions {
  /** Candidates to return, best first (default 5). */
  topK?: number;
  /** Cut a text longer than the model takes instead of failing (the mask must survive the cut). */
  truncate?: boolean;
  signal?: AbortSignal;
}

export interface FillMaskResult {
  /** The candidate's token id. */
  token: number;
  /** The candidate as text. */
  tokenStr: string;
  /** Its probability (softmax of the masked-LM logits at the mask). */
  score: number;
  /** The text with the mask replaced by the candidate (special tokens left out). */
  sequence: string;
}

export interface EmbeddingEngineOptions extends Pick<EngineOptions, 'gpu' | 'signal' | 'onProgress' | 'contextLength' | 'memoryBudget' | 'hfToken'> {
  /** Weights on the GPU: f32 or f16 (default f16 for F16/BF16 checkpoints, f32 for F32 ones). */
  dtype?: 'f32' | 'f16';
  /** Encoders: most tokens one GPU pass holds, its inputs packed back to back (default 4096). */
  maxBatchTokens?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface Embeddings {
  create(request: EmbeddingRequest, options?: RequestOptions): Promise<CreateEmbeddingResponse>;
}
