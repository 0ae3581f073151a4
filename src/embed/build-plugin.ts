/**
 * Puts the script-tag build (dist-lib/, from `vite build --mode lib`) into the app build, beside
 * embed-example.html, so the preview server serves the example as a host page would. Node only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Plugin } from 'vite';

const LIB_FILES = ['webgpu-llm.iife.js', 'webgpu-llm.js', 'wllama.wasm'];

export function bundleEmbedLibrary(libDir: string): Plugin {
  let dir = libDir;
  return {
    name: 'webgpu-llm:embed-library',
    apply: 'build',
    configResolved(config) {
      dir = resolve(config.root, libDir);
    },
    generateBundle() {
      for (const fileName of LIB_FILES) {
        const path = join(dir, fileName);
        if (existsSync(path)) this.emitFile({ type: 'asset', fileName, source: readFileSync(path) });
        else this.warn(`${path} is missing, so embed-example.html will not work: run \`npm run build\` (it builds the library first).`);
      }
    },
  };
}
