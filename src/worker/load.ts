/**
 * Loading an engine the way the app does it, in the worker or (as the embed's fallback) in the page: the
 * model's files through the IndexedDB cache, so the weights are downloaded once and later loads make no
 * requests, then onto the GPU.
 */
import { createEngine, type Engine } from '../engine/engine';
import { openCachedModel } from '../storage';
import type { EngineInfo, LoadEngineOptions, LoadProgress } from './protocol';

export interface LoadCachedEngineOptions extends LoadEngineOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
}

export async function loadCachedEngine(url: string, options: LoadCachedEngineOptions = {}): Promise<Engine> {
  const { onProgress, signal, modelId, dtype, contextLength, backend } = options;
  const files = await openCachedModel(url, {
    modelId,
    signal,
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
