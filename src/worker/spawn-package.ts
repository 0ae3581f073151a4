/**
 * The engine's module worker in the npm package (the package build puts this in place of spawn.ts): the
 * package's own dist/engine-worker.js. The URL is a constant here so that Vite leaves it alone while building
 * the package; the build then writes it back as a literal, `new Worker(new URL("./engine-worker.js",
 * import.meta.url))`, the shape the installing app's bundler follows to bundle the worker.
 */
const ENGINE_WORKER = './engine-worker.js';

export function spawnEngineWorker(): Worker {
  return new Worker(new URL(ENGINE_WORKER, import.meta.url), { type: 'module', name: 'webgpu-llm engine' });
}
