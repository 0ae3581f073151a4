/** The public API: a factory, OpenAI-shaped calls, and the typed errors callers can catch. */
export { createEngine, Engine } from './engine/engine';
export type { BackendChoice, BackendRequest } from './engine/backend';
export type {
  EngineOptions,
  ChatFinishReason,
  FinishReason,
  GenerateOptions,
  GenerationDelta,
  GenerationResult,
  GenerationStream,
  ModelSource,
  Timings,
  Usage,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageParam,
  ChatCompletionRequest,
  ChoiceLogprobs,
  TokenLogprob,
  TopLogprob,
  ResponseFormat,
  Tool,
  ToolCall,
  ToolCallDelta,
  ToolChoice,
} from './engine/types';
export { createEmbeddingEngine, EmbeddingEngine } from './embeddings/engine';
export type { PoolingConfig, PoolingMode } from './embeddings/pooling';
export type {
  CreateEmbeddingResponse,
  Embedding,
  EmbeddingEngineOptions,
  EmbeddingRequest,
  Embeddings,
  FillMaskOptions,
  FillMaskResult,
} from './embeddings/types';
export { acquireGpu } from './gpu/device';
export { urlFiles, memoryFiles, type ModelFiles } from './model/files';
// Every class of the error table (src/errors.ts), which test/errors.test.ts keeps in step with this list.
export { describeError, type ErrorDescription, type ErrorKind } from './errors';
export { ChatTemplateError } from './chat/template';
export { InvalidRequestError } from './chat/messages';
export { UnsupportedTaskError } from './embeddings/errors';
export { EngineDisposedError } from './engine/errors';
export { SafetensorsError } from './formats/errors';
export { GgufError } from './formats/gguf';
export {
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuValidationError,
  LimitsExceededError,
  NumericalError,
  ShaderCompileError,
  ShapeError,
  WebGPUUnavailableError,
} from './gpu/errors';
export { ModelConfigError, UnsupportedModelError } from './model/config';
export { ModelFileMissingError, ModelFileTooLargeError } from './model/files';
export { ContextWindowExceededError } from './model/kv-cache';
export { UnsupportedEncoderError } from './model/encoder/encoder-model';
export { ModelWeightsError } from './model/weights';
export { AccessTokenError, GatedModelError, HttpError, huggingFaceFetch } from './net';
export { InvalidOptionError } from './sampling/options';
export { NoCandidateTokenError } from './sampling/sampler';
export { IntegrityError, StorageQuotaError } from './storage/errors';
export { InputTooLongError, TokenizerError } from './tokenizer/tokenizer';
export { WasmBackendError } from './wasm/errors';
export { WorkerStartError } from './worker/protocol';
export { createOpenAIFetch, type OpenAIEngine, type OpenAIFetch, type OpenAIFetchOptions } from './openai/fetch';
