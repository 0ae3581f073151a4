/**
 * The CPU backend: the model runs in llama.cpp compiled to WebAssembly (wllama), fed the GGUF exported in memory
 * from the same safetensors. wllama 3 serves llama-server's completion API, so one forward call is one
 * completion of a single token over the whole sequence so far, spelled in the GGUF's token-id alphabet (our
 * tokenizer stays the only one; llama.cpp's reads the text back as exactly those ids): llama-server reuses its KV
 * cache for the longest common prefix (so only the new tokens run) and reports the next token's log-probabilities
 * computed from the raw logits (`n_probs`, before any sampling). Our sampler works on those: they are the
 * logits minus their log-sum-exp, a shift every processor except repetition_penalty ignores (here it acts on
 * log-probabilities, as the README says). Ids the tokenizer cannot decode are dropped, as the GPU path masks them.
 */
import type { LoadModelParams, RawCompletionParams, Wllama } from '@wllama/wllama';
import { tokenIdText } from '../formats/gguf-export';
import { ShapeError } from '../gpu/errors';
import { ContextWindowExceededError } from '../model/kv-cache';
import type { LanguageModel } from '../model/language-model';
import type { ForwardRead, ForwardResult } from '../model/readback';
import { WasmBackendError } from './errors';
import { wllamaWasmUrl } from './wasm-url';

export interface WasmModelOptions {
  contextLength: number;
  vocabSize: number;
  /** Ids never produced (no token in the tokenizer). */
  maskedTokenIds: readonly number[];
  /** Where wllama.wasm is served from; default: the copy the build emits from the @wllama/wllama package. */
  wasmUrl?: string;
}

/** One candidate of llama-server's `completion_probabilities` (the OAI completion's logprobs.content[].top_logprobs). */
interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface WasmModelInfo {
  /** Threads llama.cpp computes with: more than one only where the page is cross-origin isolated. */
  threads: number;
  multithread: boolean;
}

/** The smallest WebAssembly module: the magic number and version. */
const EMPTY_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * What llama.cpp in wllama needs from the page's Content-Security-Policy: 'wasm-unsafe-eval' (to compile
 * WebAssembly) and workers from blob: URLs (wllama builds its worker, and llama.cpp's thread workers, from
 * blobs). A refused worker only fires an error event, which wllama does not watch, so it is tried here first
 * rather than left to hang the load.
 */
async function checkPagePolicy(): Promise<void> {
  if (typeof Worker === 'undefined') throw new WasmBackendError('the WASM backend runs in browsers only: wllama needs Web Workers');
  try {
    await WebAssembly.compile(EMPTY_MODULE);
  } catch (e) {
    throw new WasmBackendError(`WebAssembly cannot be compiled here (a Content-Security-Policy must allow 'wasm-unsafe-eval'): ${message(e)}`);
  }
  const url = URL.createObjectURL(new Blob(['postMessage(0)'], { type: 'text/javascript' }));
  try {
    await new Promise<void>((resolve, reject) => {
      const refused = () => reject(new WasmBackendError("workers from blob: URLs are refused here (a Content-Security-Policy must allow them: worker-src 'self' blob:)"));
      let worker: Worker;
      try {
        worker = new Worker(url, { type: 'module' });
      } catch {
        return refused();
      }
      worker.onmessage = () => {
        worker.terminate();
        resolve();
      };
      worker.onerror = () => {
        worker.terminate();
        refused();
      };
    });
  } finally {
    URL.revokeObjectURL(url);
  }
}

export class WasmModel implements LanguageModel {
  /** The tokens whose keys and values llama-server holds (as far as we asked it to). */
  private readonly tokens: number[] = [];
  private readonly masked: ReadonlySet<number>;
  private busy = false;
  private destroyed = false;

  private constructor(
    private readonly wllama: Wllama,
    private readonly options: WasmModelOptions,
    readonly info: WasmModelInfo,
  ) {
    this.masked = new Set(options.maskedTokenIds);
  }

  /**
   * Whether this page can run llama.cpp at all (Web Workers, WebAssembly and blob: workers allowed); cheap, so the
   * load asks before it reads and converts a model it could not run.
   */
  static checkEnvironment(): Promise<void> {
    return checkPagePolicy();
  }

  static async create(gguf: Blob, options: WasmModelOptions): Promise<WasmModel> {
    await checkPagePolicy();
    const { Wllama } = await import('@wllama/wllama');
    const wasmUrl = options.wasmUrl ?? (await wllamaWasmUrl());
    const quiet = (): void => {};
    const wllama = new Wllama({ default: wasmUrl }, { logger: { debug: quiet, log: quiet, warn: quiet, error: console.error } });
    const params: LoadModelParams = {
      n_ctx: options.contextLength,
      // CPU only: wllama's own WebGPU path is not what this backend is for.
      n_gpu_layers: 0,
      // One sequence: the engine serialises requests, and one slot keeps the prefix cache ours alone.
      n_parallel: 1,
      // Never drop old tokens to make room: the engine checks the context itself.
      ctx_shift: false,
    };
    try {
      await wllama.loadModel([gguf], params);
    } catch (e) {
      await wllama.exit().catch(() => undefined);
      throw new WasmBackendError(`llama.cpp could not load the model: ${message(e)}`);
    }
    const loaded = wllama.getLoadedContextInfo();
    if (loaded.n_vocab !== options.vocabSize) {
      await wllama.exit();
      throw new WasmBackendError(`llama.cpp loaded a vocabulary of ${loaded.n_vocab}, the model has ${options.vocabSize}`);
    }
    return new WasmModel(wllama, options, { threads: wllama.getNumThreads(), multithread: wllama.isMultithread() });
  }

  get contextLength(): number {
    return this.options.contextLength;
  }

  get cachedLength(): number {
    return this.tokens.length;
  }

  /** Any k up to the vocabulary: llama-server returns as many candidates as asked. */
  get topKCapacity(): number {
    return this.options.vocabSize;
  }

  rewind(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.tokens.length) {
      throw new ShapeError('model', `cannot rewind to ${length}: ${this.tokens.length} positions are cached`);
    }
    this.tokens.length = length;
  }

  async forward(tokens: ArrayLike<number>, read: ForwardRead = 'token', k = 0): Promise<ForwardResult> {
    if (this.destroyed) throw new WasmBackendError('the model was destroyed');
    if (tokens.length === 0) throw new ShapeError('model', 'forward needs at least one token');
    if ((read === 'topk' || read === 'logprobs') && (!Number.isInteger(k) || k < 1 || k > this.topKCapacity)) {
      throw new ShapeError('model', `top-k reads need 1 ≤ k ≤ ${this.topKCapacity}, got ${k}`);
    }
    const length = this.tokens.length + tokens.length;
    if (length > this.contextLength) throw new ContextWindowExceededError(length, this.contextLength);
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.options.vocabSize) {
        throw new ShapeError('model', `token id ${id} at index ${i} is outside the vocabulary of ${this.options.vocabSize}`);
      }
    }
    const sequence = [...this.tokens, ...Array.from(tokens)];
    const wanted = read === 'logits' ? this.options.vocabSize : read === 'topk' || read === 'logprobs' ? k : 1;
    const candidates = await this.complete(sequence, wanted);
    this.tokens.push(...Array.from(tokens));
    switch (read) {
      case 'token':
        return { kind: 'token', token: candidates[0].id };
      case 'topk':
        return {
          kind: 'topk',
          values: Float32Array.from(candidates, (c) => c.logprob),
          indices: Uint32Array.from(candidates, (c) => c.id),
        };
      case 'logprobs':
        // llama-server's values are log-probabilities over the whole vocabulary already.
        return {
          kind: 'logprobs',
          values: Float32Array.from(candidates, (c) => c.logprob),
          indices: Uint32Array.from(candidates, (c) => c.id),
          logSumExp: 0,
        };
      case 'logits':
        return { kind: 'logits', logits: this.row(candidates) };
    }
  }

  async readLastLogits(): Promise<Float32Array> {
    if (this.tokens.length === 0) throw new ShapeError('model', 'no forward call has run');
    // The whole sequence is cached: llama-server runs its last token again for the logits.
    return this.row(await this.complete([...this.tokens], this.options.vocabSize));
  }

  /** llama.cpp has nothing left to compile once loaded. */
  async whenCompiled(): Promise<void> {}

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    void this.wllama.exit();
  }

  /** A full row: the candidates' log-probabilities, -Infinity elsewhere. */
  private row(candidates: readonly TokenLogprob[]): Float32Array {
    const logits = new Float32Array(this.options.vocabSize).fill(-Infinity);
    for (const c of candidates) logits[c.id] = c.logprob;
    return logits;
  }

  /** The `wanted` most likely next tokens after `sequence`, best first, without masked ids. */
  private async complete(sequence: readonly number[], wanted: number): Promise<TokenLogprob[]> {
    if (this.busy) throw new Error('WasmModel.forward is already running; calls must be serialised');
    this.busy = true;
    try {
      const nProbs = Math.min(this.options.vocabSize, wanted + this.masked.size);
      // llama-server's own fields beyond the typed OAI ones: the raw-logit candidates, before sampling.
      const params = { prompt: tokenIdText(sequence), max_tokens: 1, temperature: 0, n_probs: nProbs, post_sampling_probs: false, cache_prompt: true };
      const response = await this.wllama.createCompletion(params as unknown as RawCompletionParams & { stream?: false });
      const content = (response.choices[0]?.logprobs as unknown as { content?: Array<{ top_logprobs?: TokenLogprob[] }> } | null)?.content;
      const top = content?.[0]?.top_logprobs;
      if (!top?.length) throw new WasmBackendError('llama.cpp returned no token probabilities');
      const kept = top.filter((c) => !this.masked.has(c.id)).slice(0, wanted);
      if (kept.length < Math.min(wanted, this.options.vocabSize - this.masked.size)) {
        throw new WasmBackendError(`llama.cpp returned ${kept.length} candidates, ${wanted} were asked for`);
      }
      return kept;
    } finally {
      this.busy = false;
    }
  }
}
