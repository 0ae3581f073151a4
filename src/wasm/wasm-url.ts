/** Where wllama's WebAssembly is served from: the copy this app's build emits from the @wllama/wllama package. */
import url from '@wllama/wllama/esm/wasm/wllama.wasm?url';

export async function wllamaWasmUrl(): Promise<string> {
  return url;
}
