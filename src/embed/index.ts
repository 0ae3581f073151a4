/**
 * The script-tag build (`npm run build:lib`: dist-lib/webgpu-llm.iife.js and the ESM dist-lib/webgpu-llm.js).
 * On a page it registers <llm-chat> and exposes the API as `window.WebGPULLM`; run as a worker (see
 * engine.ts: the file starts itself as the engine's worker) it serves the engine instead.
 */
import { serveEngine } from '../worker/serve';
import * as api from './api';
import { defineLlmChat } from './llm-chat';

export * from './api';

declare global {
  interface Window {
    WebGPULLM?: typeof api;
  }
}

if (typeof document === 'undefined' && 'WorkerGlobalScope' in globalThis) {
  serveEngine(self);
} else {
  defineLlmChat();
  window.WebGPULLM = api;
}
