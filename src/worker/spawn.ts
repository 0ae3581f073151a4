/**
 * The engine's module worker. Bundlers (Vite, webpack, Rollup plugins) see this `new Worker(new URL(…,
 * import.meta.url))` shape, bundle the worker module and rewrite the URL, in this repository's app and in an
 * app that installs the package alike.
 */
export function spawnEngineWorker(): Worker {
  return new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'webgpu-llm engine' });
}
