/**
 * Loading an engine the way the app does it, in the worker or (as the embed's fallback) in the page: the
 * model's files through the IndexedDB cache, so the weights are downloaded once and later loads make no
 * requests, then onto the GPU.
 */
import { createEmbeddingEngine, type EmbeddingEngine } from '../embeddings/engine';
import { SENTENCE_TRANSFORMERS_FILES } from '../embeddings/pooling';
import { createEngine, type Engine } from '../engine/engine';
import { huggingFaceFetch } from '../net/hf-token';
import { openCachedModel } from '../storage';
import type { EmbeddingEngineInfo, EngineInfo, LoadEmbeddingEngineOptions, LoadEngineOptions, LoadProgress } from './protocol';

export interface LoadCachedEngineOptions extends LoadEngineOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
}

export async function loadCachedEngine(url: string, options: LoadCachedEngineOptions = {}): Promise<Engine> {
  const { onProgress, signal, modelId, dtype, contextLength, backend, hfToken } = options;
  const files = await openCachedModel(url, {
    modelId,
    signal,
    fetch: huggingFaceFetch(hfToken),
    onProgress: (p) => onProgress?.({ phase: 'download', ...p }),
  });
  signal?.throwIfAborted();
  return createEngine(files, {
    dtype,
    contextLength,
    backend,
    signal,
    onProgress: (p) => onProgress?.({ phase: 'load', stage: p.stage, loaded: p.done, total: p.total, tensor: p.tensor }),
  });
}

export interface LoadCachedEmbeddingEngineOptions extends LoadEmbeddingEngineOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
}

/** loadCachedEngine's counterpart for embeddings: the files through the cache, then createEmbeddingEngine. */
export async function loadCachedEmbeddingEngine(url: string, options: LoadCachedEmbeddingEngineOptions = {}): Promise<EmbeddingEngine> {
  const { onProgress, signal, modelId, hfToken, ...engineOptions } = options;
  const files = await openCachedModel(url, {
    modelId,
    signal,
    fetch: huggingFaceFetch(hfToken),
    optionalTextFiles: SENTENCE_TRANSFORMERS_FILES,
    onProgress: (p) => onProgress?.({ phase: 'download', ...p }),
  });
  signal?.throwIfAborted();
  return createEmbeddingEngine(files, {
    ...engineOptions,
    signal,
    onProgress: (p) => onProgress?.({ phase: 'load', stage: p.stage, loaded: p.done, total: p.total, tensor: p.tensor }),
  });
}

export function embeddingEngineInfo(engine: EmbeddingEngine, modelId: string): EmbeddingEngineInfo {
  const { kind, hiddenSize, maxInputTokens, pooling } = engine;
  return { modelId, kind, hiddenSize, maxInputTokens, pooling, adapterName: engine.gpu.adapterName };
}

export function engineInfo(engine: Engine, modelId: string): EngineInfo {
  return {
    modelId,
    contextLength: engine.contextLength,
    contextLimitedBy: engine.context.limitedBy,
    adapterName: engine.backend.device,
    backend: engine.backend,
    chatTemplate: engine.formatter.templateName,
    usesFallbackTemplate: !engine.formatter.hasTemplate,
  };
}
