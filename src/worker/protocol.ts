/**
 * The messages between the UI thread and the engine worker. Each direction is a discriminated union on
 * `type`, so both ends handle them with an exhaustive `switch` and no casts. Everything here must survive
 * structured cloning: no functions, no AbortSignal, errors as SerializedError. WorkerStartError is here too: the
 * client throws it when the worker never got to speak this protocol.
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  EngineOptions,
  GenerateOptions,
  GenerationDelta,
  GenerationResult,
} from '../engine/types';
import type { BackendChoice } from '../engine/backend';
import type { EmbeddingModel } from '../embeddings/engine';
import type { PoolingConfig } from '../embeddings/pooling';
import type { CreateEmbeddingResponse, EmbeddingEngineOptions, EmbeddingRequest, FillMaskOptions, FillMaskResult } from '../embeddings/types';
import type { ContextLimit } from '../model/memory';
import type { DownloadProgress } from '../storage';

/** Download progress (from the model cache), then upload progress (weights to the GPU). */
/** Download progress, then the load's stages (see LoadProgress in model/upload.ts); total is 0 where unknown. */
export type LoadProgress =
  | ({ phase: 'download' } & DownloadProgress)
  | { phase: 'load'; stage: 'read' | 'upload' | 'quantize' | 'compile'; loaded: number; total: number; tensor?: string };

/**
 * The worker never started: its script could not be loaded or run (a 404, a content security policy that
 * forbids it, a cross-origin script URL). Nothing was loaded, so the caller may use another way instead.
 */
export class WorkerStartError extends Error {
  override readonly name = 'WorkerStartError';
}

/** What the UI needs to know about a loaded engine. */
export interface EngineInfo {
  modelId: string;
  contextLength: number;
  /** Why the context is that long: asked for, the model's maximum, the 4096 default, or the memory budget. */
  contextLimitedBy: ContextLimit;
  /** The GPU adapter's name, or the WebAssembly threads on the CPU path. */
  adapterName: string;
  /** Which backend runs the model and why. */
  backend: BackendChoice;
  /** 'default' (the model's own chat template), or the fallback a base model is chatted through. */
  chatTemplate: string;
  /** True when the model has no chat template: it continues text rather than answering. */
  usesFallbackTemplate: boolean;
}

export interface LoadEngineOptions {
  /** Key of the model in the cache; default: derived from the URL by the cache. */
  modelId?: string;
  dtype?: EngineOptions['dtype'];
  contextLength?: number;
  backend?: EngineOptions['backend'];
  /** Hugging Face access token for gated repos (EngineOptions.hfToken); sent to huggingface.co only. */
  hfToken?: string;
}

/** What the page needs to know about an engine loaded for embeddings. */
export interface EmbeddingEngineInfo {
  modelId: string;
  /** 'encoder' (BERT) or 'decoder' (Qwen3-Embedding). */
  kind: EmbeddingModel['kind'];
  /** Width of the embeddings before any `dimensions` cut. */
  hiddenSize: number;
  /** Most tokens one input may have. */
  maxInputTokens: number;
  pooling: PoolingConfig;
  adapterName: string;
}

export interface LoadEmbeddingEngineOptions extends Pick<EmbeddingEngineOptions, 'dtype' | 'contextLength' | 'maxBatchTokens' | 'hfToken'> {
  /** Key of the model in the cache; default: derived from the URL by the cache. */
  modelId?: string;
}

export type WireFillMaskOptions = Omit<FillMaskOptions, 'signal'>;

/** An error as it crosses the thread boundary: rebuilt on the other side by `name` (see errors.ts). */
export interface SerializedError {
  name: string;
  message: string;
  /** The error's own fields that clone (strings, numbers, booleans, null, arrays of those). */
  fields: Record<string, unknown>;
}

/** A chat request without what cannot be cloned; `stream` says whether chunks or one completion come back. */
export type WireChatRequest = Omit<ChatCompletionRequest, 'signal'>;
export type WireGenerateOptions = Omit<GenerateOptions, 'signal'>;

/** UI thread → worker. `id` ties every answer to its request. */
export type ClientMessage =
  | { type: 'load'; id: number; url: string; options: LoadEngineOptions }
  | { type: 'chat'; id: number; request: WireChatRequest }
  | { type: 'generate'; id: number; prompt: string | number[]; options: WireGenerateOptions }
  /** Loads the model for embeddings (and fill-mask) instead of chat: createEmbeddingEngine in the worker. */
  | { type: 'load-embeddings'; id: number; url: string; options: LoadEmbeddingEngineOptions }
  | { type: 'embeddings'; id: number; request: EmbeddingRequest }
  | { type: 'fill-mask'; id: number; text: string; options: WireFillMaskOptions }
  /** Stops request `id`: a running generation ends with finish_reason 'abort', a load fails with AbortError. */
  | { type: 'abort'; id: number }
  | { type: 'dispose'; id: number }
  /** Answered by `done` once every kernel of the engine is compiled (see Engine.whenCompiled). */
  | { type: 'when-compiled'; id: number }
  /** Destroys the GPU device, as a driver reset would: how tests reach the device-lost path. */
  | { type: 'simulate-device-loss' };

/** Worker → UI thread. */
export type WorkerMessage =
  /** Sent once when the worker's script has run: the client knows the worker can be used. */
  | { type: 'ready' }
  | { type: 'progress'; id: number; progress: LoadProgress }
  | { type: 'loaded'; id: number; info: EngineInfo }
  /** A streaming request passed validation; its chunks or deltas follow. */
  | { type: 'accepted'; id: number }
  | { type: 'chunk'; id: number; chunk: ChatCompletionChunk }
  | { type: 'completion'; id: number; completion: ChatCompletion }
  | { type: 'delta'; id: number; delta: GenerationDelta }
  | { type: 'generation-result'; id: number; result: GenerationResult }
  | { type: 'embeddings-loaded'; id: number; info: EmbeddingEngineInfo }
  | { type: 'embeddings-response'; id: number; response: CreateEmbeddingResponse }
  | { type: 'fill-mask-results'; id: number; results: FillMaskResult[] }
  /** The request ended: the last chunk or delta was sent, or the engine was disposed. */
  | { type: 'done'; id: number }
  | { type: 'error'; id: number; error: SerializedError }
  /** The engine's GPU device was lost; every later request fails until a new engine is loaded. */
  | { type: 'device-lost'; error: SerializedError };

/** The worker side of a message channel (a DedicatedWorkerGlobalScope, or a MessagePort in tests). */
export interface WorkerEndpoint {
  postMessage(message: WorkerMessage): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<ClientMessage>) => void): void;
}
