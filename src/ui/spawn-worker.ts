/** The chat page's engine worker; Vite bundles the worker module and rewrites this URL at build time. */
export function spawnEngineWorker(): Worker {
  return new Worker(new URL('../worker/engine-worker.ts', import.meta.url), { type: 'module', name: 'webgpu-llm engine' });
}
