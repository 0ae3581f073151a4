/** The WASM (llama.cpp) backend could not run here or could not run this model. */
export class WasmBackendError extends Error {
  override readonly name = 'WasmBackendError';
}
