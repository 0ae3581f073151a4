/**
 * What the engine needs from a model, whatever runs it: GpuModel (WebGPU, src/model/forward.ts) and WasmModel
 * (llama.cpp in WebAssembly, src/wasm/wasm-model.ts). Sampling, stop strings, templates, KV reuse and the
 * OpenAI API sit on top of this and work the same on either.
 */
import type { ForwardRead, ForwardResult } from './readback';

export interface LanguageModel {
  /** Positions the KV cache holds. */
  readonly contextLength: number;
  /** Positions of the KV cache that hold processed tokens. */
  readonly cachedLength: number;
  /** Most candidates a 'topk' read can return. */
  readonly topKCapacity: number;
  /** Forgets cached positions from `length` on, so the next forward call starts there. */
  rewind(length: number): void;
  /**
   * Runs `tokens` after the cached ones; returns the greedy next token, the top k candidates or the logits of the
   * last one. `signal` aborts a wait for kernels still compiling (nothing is run then), with its reason.
   */
  forward(tokens: ArrayLike<number>, read?: ForwardRead, k?: number, signal?: AbortSignal): Promise<ForwardResult>;
  /** The logits of the last forward call's last token (for a top-k read that turned out not to be enough). */
  readLastLogits(): Promise<Float32Array>;
  /** Resolves once everything the model runs is compiled (some may compile after load; a call needing it waits). */
  whenCompiled(): Promise<void>;
  /** Frees what the model holds; it is unusable afterwards. */
  destroy(): void;
}
