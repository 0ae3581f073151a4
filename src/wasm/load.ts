/**
 * Loading a model onto the CPU backend: the same files and checks as the GPU load (config, tokenizer, the
 * context planned against WebAssembly's memory rather than a GPU's), then the weights exported to an in-memory
 * GGUF (q8/q4 as Q8_0/Q4_0) that llama.cpp loads.
 */
import { llamaToGguf } from '../formats/gguf-export';
import type { ModelFiles } from '../model/files';
import { openModel, type LoadedModel, type LoadModelOptions } from '../model/load';
import { planContext } from '../model/memory';
import type { WeightDtype } from '../model/weights';
import { WasmModel } from './wasm-model';

/** What 32-bit WebAssembly can address: the weights, KV cache and activations must fit in it. */
const WASM_MEMORY_BYTES = 4 * 2 ** 30;

export interface LoadWasmModelOptions extends LoadModelOptions {
  /** Where wllama.wasm is served from; default: the copy the build emits from the @wllama/wllama package. */
  wasmUrl?: string;
}

export async function loadWasmModel(files: ModelFiles, options: LoadWasmModelOptions = {}): Promise<LoadedModel<WasmModel>> {
  await WasmModel.checkEnvironment();
  const opened = await openModel(files);
  const { spec, weights, maskedTokenIds } = opened;
  const requested = options.dtype;
  const quantize = requested === 'q8' || requested === 'q4' ? requested : undefined;
  // Unquantized weights go to llama.cpp as stored (F32, F16; BF16 as F32).
  const dtype: WeightDtype = [...weights.tensors.values()].some((t) => t.dtype === 'F32' || t.dtype === 'BF16') && !quantize ? 'f32' : 'f16';
  const { context } = planContext(spec, {
    ...options,
    dtype,
    quantize,
    maskedTokens: maskedTokenIds.length,
    memoryBudget: options.memoryBudget ?? WASM_MEMORY_BYTES,
  });
  options.signal?.throwIfAborted();
  // Tokenizing stays ours: llama.cpp gets the token-id alphabet and the ids spelled in it.
  const gguf = await llamaToGguf(spec, weights, null, { name: files.name, quantize });
  options.onProgress?.({ stage: 'read', done: gguf.size, total: gguf.size });
  options.signal?.throwIfAborted();
  const model = await WasmModel.create(gguf, {
    contextLength: context.contextLength,
    vocabSize: spec.vocabSize,
    maskedTokenIds,
    wasmUrl: options.wasmUrl,
  });
  return { ...opened, model, context };
}
