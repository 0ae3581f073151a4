/**
 * The package's `./node` entry: the public API plus what Node needs, so `createEngine('/path/to/model')`
 * reads a folder from disk and runs on Dawn (the `webgpu` package) with no setup.
 */
import { createEngine as createEngineOn, type Engine } from '../engine/engine';
import type { EngineOptions, ModelSource } from '../engine/types';
import { acquireNodeGpu } from '../gpu/node';
import { urlFiles } from '../model/files';
import { folderFiles } from '../model/files-node';
import { huggingFaceFetch } from '../net/hf-token';

export * from '../index';
export { acquireNodeGpu, folderFiles };

/**
 * Like the browser's createEngine, but a string that is not an http(s) URL is a folder on disk, and the GPU
 * defaults to Dawn's first adapter (set VK_ICD_FILENAMES to choose a Vulkan driver).
 */
export async function createEngine(source: ModelSource, options: EngineOptions = {}): Promise<Engine> {
  const remote = (url: string) => urlFiles(url, { signal: options.signal, fetch: huggingFaceFetch(options.hfToken) });
  const files = typeof source !== 'string' ? source : /^https?:\/\//i.test(source) ? remote(source) : folderFiles(source);
  return createEngineOn(files, { ...options, gpu: options.gpu ?? (await acquireNodeGpu()) });
}
export { serve, type OpenAIServer, type ServeOptions } from './serve';
