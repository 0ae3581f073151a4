/**
 * The package's `./worker` entry: the engine in a worker. `createWorkerEngine(url)` starts the package's own
 * worker unless a `worker` is given; `serveEngine` is the worker half, for hosts that build their own worker.
 */
import type { ChatEngine } from './chat-engine';
import { createWorkerEngine as connectWorkerEngine, type WorkerEngineOptions } from './client';
import { spawnEngineWorker } from './spawn';

export type { ChatEngine } from './chat-engine';
export { createInThreadEngine } from './chat-engine';
export type { WorkerEngineOptions } from './client';
export { WorkerStartError } from './protocol';
export type { EngineInfo, LoadEngineOptions, LoadProgress } from './protocol';
export { serveEngine } from './serve';

/** Loads the model at `url` (through the browser's model cache) into a worker and returns its engine. */
export function createWorkerEngine(url: string, options: Partial<WorkerEngineOptions> = {}): Promise<ChatEngine> {
  return connectWorkerEngine(url, { ...options, worker: options.worker ?? spawnEngineWorker() });
}
