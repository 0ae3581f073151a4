/**
 * The engine behind <llm-chat>: in a worker started from this very script file when the page allows it,
 * else in the page's own thread. The script-tag build is one file, so the worker is that file again: the
 * IIFE build runs as a classic worker and the ESM build as a module worker, and either one, finding
 * itself in a worker, serves the engine. A same-origin script URL is all a strict CSP needs for that
 * (worker-src falls back to script-src 'self'); no blob: or data: URL is involved.
 */
import type { ChatEngine } from '../worker/chat-engine';
import { createInThreadEngine } from '../worker/chat-engine';
import { createWorkerEngine } from '../worker/client';
import { WorkerStartError } from '../worker/protocol';
import type { LoadCachedEngineOptions } from '../worker/load';

/** The IIFE build's URL, read while the file first runs: document.currentScript is null afterwards. */
const ownScriptUrl = typeof document !== 'undefined' && document.currentScript instanceof HTMLScriptElement ? document.currentScript.src : '';

export type EngineMode = 'worker' | 'in-thread';

export interface ChatEngineOptions extends LoadCachedEngineOptions {
  /** Skip the worker and run the engine in this thread. */
  inThread?: boolean;
}

function spawnOwnWorker(): Worker {
  if (ownScriptUrl) return new Worker(ownScriptUrl, { name: 'webgpu-llm engine' });
  return new Worker(import.meta.url, { type: 'module', name: 'webgpu-llm engine' });
}

let spawnWorker: () => Worker = spawnOwnWorker;

/** Where the worker comes from when this code is not one self-contained file (the npm package's `./embed`). */
export function setEngineWorkerFactory(factory: () => Worker): void {
  spawnWorker = factory;
}

/**
 * Loads a model (through the IndexedDB cache) into a worker, falling back to this thread when the worker
 * cannot start: a script served from another origin (workers must be same-origin), or a CSP that forbids it.
 */
export async function createChatEngine(url: string, options: ChatEngineOptions = {}): Promise<{ engine: ChatEngine; mode: EngineMode }> {
  const { inThread, ...loadOptions } = options;
  if (!inThread) {
    let worker: Worker | undefined;
    try {
      worker = spawnWorker();
    } catch {
      // SecurityError for a cross-origin script URL: use this thread.
    }
    if (worker) {
      try {
        return { engine: await createWorkerEngine(url, { ...loadOptions, worker }), mode: 'worker' };
      } catch (e) {
        if (!(e instanceof WorkerStartError)) throw e;
      }
    }
  }
  return { engine: await createInThreadEngine(url, loadOptions), mode: 'in-thread' };
}
