/**
 * The package's `./worker` entry: the engine in a worker. `createWorkerEngine(url)` starts the package's own
 * worker unless a `worker` is given (`createWorkerEmbeddingEngine(url)` likewise, for embeddings and fill-mask);
 * `serveEngine` is the worker half, for hosts that build their own worker.
 */
import type { ChatEngine } from './chat-engine';
import {
  createWorkerEmbeddingEngine as connectWorkerEmbeddingEngine,
  createWorkerEngine as connectWorkerEngine,
  type WorkerEmbeddingEngine,
  type WorkerEmbeddingEngineOptions,
  type WorkerEngineOptions,
} from './client';
import { spawnEngineWorker } from './spawn';

export type { ChatEngine } from './chat-engine';
export { createInThreadEngine } from './chat-engine';
export type { WorkerEmbeddingEngine, WorkerEmbeddingEngineOptions, WorkerEngineOptions } from './client';
export { WorkerStartError } from './protocol';
export type { EmbeddingEngineInfo, EngineInfo, LoadEmbeddingEngineOptions, LoadEngineOptions, LoadProgress } from './protocol';
export { serveEngine } from './serve';

/** Loads the model at `url` (through the browser's model cache) into a worker and returns its engine. */
export function createWorkerEngine(url: string, options: Partial<WorkerEngineOptions> = {}): Promise<ChatEngine> {
  return connectWorkerEngine(url, { ...options, worker: options.worker ?? spawnEngineWorker() });
}

/** Loads the model at `url` for embeddings and fill-mask (createEmbeddingEngine) into a worker. */
export function createWorkerEmbeddingEngine(url: string, options: Partial<WorkerEmbeddingEngineOptions> = {}): Promise<WorkerEmbeddingEngine> {
  return connectWorkerEmbeddingEngine(url, { ...options, worker: options.worker ?? spawnEngineWorker() });
}
