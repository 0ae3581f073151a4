/** The public API: a factory, OpenAI-shaped calls, and the typed errors callers can catch. */
export { createEngine, Engine } from './engine/engine';
export type {
  EngineOptions,
  FinishReason,
  GenerateOptions,
  GenerationDelta,
  GenerationResult,
  GenerationStream,
  ModelSource,
  Timings,
  Usage,
} from './engine/engine';
export type { ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionRequest } from './engine/chat-completions';
export { ContextWindowExceededError, EngineDisposedError, InvalidOptionError, InvalidRequestError } from './engine/errors';
export { ChatTemplateError } from './chat/template';
export { acquireGpu } from './gpu/device';
export {
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuValidationError,
  LimitsExceededError,
  ShaderCompileError,
  ShapeError,
  WebGPUUnavailableError,
} from './gpu/errors';
export { urlFiles, memoryFiles, ModelFileMissingError, type ModelFiles } from './model/files';
export { ContextFullError } from './model/forward';
export { UnsupportedModelError, ModelConfigError } from './model/config';
export { ModelWeightsError } from './model/weights';
export { SafetensorsError, HttpError } from './formats/errors';
export { TokenizerError } from './tokenizer/tokenizer';
