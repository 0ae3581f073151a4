/**
 * The script-tag build (`vite build --mode lib`) inlines every asset, which would put wllama's 8 MiB
 * WebAssembly binary into webgpu-llm.iife.js as base64. This plugin writes it beside the library as
 * wllama.wasm instead, its URL resolved against the library's own script URL when the script runs (the
 * IIFE as a page script or as its own worker, the ESM build through import.meta.url). Node only.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Plugin } from 'vite';

export const WLLAMA_WASM_IMPORT = '@wllama/wllama/esm/wasm/wllama.wasm?url';
const VIRTUAL_ID = '\0webgpu-llm:wllama-wasm-url';
export const WLLAMA_WASM_FILE = 'wllama.wasm';

export function wllamaWasmBesideLibrary(): Plugin {
  return {
    name: 'webgpu-llm:wllama-wasm-beside-library',
    apply: 'build',
    enforce: 'pre',
    resolveId(id) {
      return id === WLLAMA_WASM_IMPORT ? VIRTUAL_ID : null;
    },
    load(id) {
      if (id !== VIRTUAL_ID) return null;
      const path = createRequire(import.meta.url).resolve('@wllama/wllama/esm/wasm/wllama.wasm');
      this.emitFile({ type: 'asset', fileName: WLLAMA_WASM_FILE, source: readFileSync(path) });
      // Evaluated as the script starts (document.currentScript is null afterwards); in the IIFE import.meta is empty.
      return [
        `const script = typeof document !== 'undefined' && document.currentScript instanceof HTMLScriptElement ? document.currentScript.src : '';`,
        `export default new URL(${JSON.stringify(WLLAMA_WASM_FILE)}, script || import.meta.url || self.location.href).href;`,
      ].join('\n');
    },
  };
}
