/**
 * wllama's WebAssembly URL in the npm package (the package build puts this in place of wasm-url.ts): the
 * `?url` import is left to the installing app's bundler, and imported only when the CPU backend starts,
 * because Node has no loader for it and must still be able to import the package.
 */
export async function wllamaWasmUrl(): Promise<string> {
  return (await import('@wllama/wllama/esm/wasm/wllama.wasm?url')).default;
}
