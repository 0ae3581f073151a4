/**
 * The engine: one loaded model behind a request queue, with `generate()` for raw text/ids and an
 * OpenAI-shaped `chat.completions.create()`. Requests run first-come-first-served; each reuses the KV cache
 * for the longest common token prefix with what the previous request left in it.
 */
import { toolSyntaxFor, type Tool, type ToolSyntax } from '../chat/tools';
import type { JsonObject } from '../util/json';
import { createChatFormatter, encodeChatInPieces, validateMessages, type ChatFormatter } from '../chat/template';
import { acquireGpu, type Gpu } from '../gpu/device';
import { GgufError } from '../formats/gguf';
import { NumericalError, WebGPUUnavailableError } from '../gpu/errors';
import { WasmBackendError } from '../wasm/errors';
import type { ModelSpec } from '../model/config';
import { urlFiles } from '../model/files';
import { huggingFaceFetch } from '../net/hf-token';
import type { ForwardRead, ForwardResult } from '../model/readback';
import { loadModel, type LoadedModel } from '../model/load';
import { beamSearch } from '../sampling/beam';
import { finishReason } from '../sampling/finish';
import type { StepLogprobs } from '../sampling/logprobs';
import { resolveSamplingOptions, type ResolvedSamplingOptions } from '../sampling/options';
import { Sampler } from '../sampling/sampler';
import { StopMatcher } from '../sampling/stop';
import { GrammarEngine, type GrammarConstraint } from '../structured/grammar-engine';
import { parseResponseFormat, type ConstrainedOutput } from '../structured/response-format';
import { createStreamDecoder } from '../tokenizer/stream';
import type { Tokenizer } from '../tokenizer/tokenizer';
import type { LanguageModel } from '../model/language-model';
import { loadWasmModel } from '../wasm/load';
import { reasonForWasm, type BackendChoice } from './backend';
import { createChatCompletions, type ChatBackend } from './chat-completions';
import { ContextWindowExceededError, EngineDisposedError, InvalidOptionError, InvalidRequestError } from './errors';
import type { ContextChoice } from '../model/memory';
import { consumerStopped, pendingResult } from './pending-result';
import { RequestQueue } from './queue';
import type {
  ChatCompletions,
  EngineOptions,
  FinishReason,
  GenerateOptions,
  GenerationDelta,
  GenerationResult,
  GenerationStream,
  ModelSource,
  TokenLogprob,
  TopLogprob,
  Usage,
} from './types';

const utf8 = new TextDecoder();

function usage(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

/**
 * Loads a model on the backend asked for (`options.backend`, default 'auto': WebGPU on a hardware adapter, the
 * WASM CPU path when there is no WebGPU or only a software adapter); `engine.backend` says which and why.
 * Where auto's WASM attempt fails (a policy without 'wasm-unsafe-eval', a model llama.cpp is not given), it
 * takes WebGPU after all if there is any, else says that WebGPU is missing and why the CPU path failed.
 */
export async function createEngine(source: ModelSource, options: EngineOptions = {}): Promise<Engine> {
  const files = typeof source === 'string' ? urlFiles(source, { signal: options.signal, fetch: huggingFaceFetch(options.hfToken) }) : source;
  const { backend = 'auto' } = options;
  const wasmReason = backend === 'wasm' ? { reason: 'asked for', webgpuUsable: false } : backend === 'auto' && !options.gpu ? await reasonForWasm() : null;
  let reason = backend === 'webgpu' ? 'asked for' : options.gpu ? 'a GPU was given' : 'hardware adapter';
  if (wasmReason !== null) {
    try {
      const loaded = await loadWasmModel(files, options);
      const { threads } = loaded.model.info;
      return new Engine(undefined, files.name, loaded, { backend: 'wasm', reason: wasmReason.reason, device: `WebAssembly, ${threads} thread${threads === 1 ? '' : 's'}` });
    } catch (e) {
      if (backend === 'wasm' || !(e instanceof WasmBackendError || e instanceof GgufError)) throw e;
      const failed = `the CPU (WebAssembly) path failed: ${e.message}`;
      if (!wasmReason.webgpuUsable) throw new WebGPUUnavailableError(`${wasmReason.reason}, and ${failed}`);
      reason = `${wasmReason.reason}, but ${failed}`;
    }
  }
  const gpu = options.gpu ?? (await acquireGpu());
  // Room for top_k up to 255 on the GPU (+1 to see ties at the cut), or the whole vocabulary if smaller;
  // a short tuning run picks the decode kernel's shape for this device. A software adapter's buffers are host
  // memory, so reading the logits back is a copy in RAM, while its compiler takes seconds over the top-k and
  // log-sum-exp shaders before the model can run: there top-k sampling and logprobs read the logits.
  const topKCapacity = gpu.isSoftwareAdapter ? 0 : 256;
  const loaded = await loadModel(gpu, files, { topKCapacity, tune: true, ...options });
  return new Engine(gpu, files.name, loaded, { backend: 'webgpu', reason, device: gpu.adapterName });
}

export class Engine implements ChatBackend {
  readonly spec: ModelSpec;
  readonly tokenizer: Tokenizer;
  readonly formatter: ChatFormatter;
  /** The model's name as given to createEngine (the `model` field of completions). */
  readonly modelId: string;
  readonly chat: { completions: ChatCompletions };
  private readonly queue = new RequestQueue();
  /** Tokens whose keys and values are in the KV cache, in order: what the next request can reuse. */
  private cachedTokens: number[] = [];
  /** A logits row rebuilt from top-k candidates, reused every token. */
  private readonly sparseLogits: Float32Array;
  /** Ids the tokenizer cannot decode: never produced, and refused in prompts. */
  private readonly maskedIds: ReadonlySet<number>;
  private disposed = false;
  /** Aborted by dispose(), so a request waiting for kernels still compiling ends instead of holding it up. */
  private readonly disposing = new AbortController();
  /** xgrammar and the vocabulary as it sees it: set up on the first constrained request. */
  private grammars: GrammarEngine | undefined;
  private syntax: ToolSyntax | undefined;

  constructor(
    /** The GPU the model runs on; undefined on the WASM backend. */
    readonly gpu: Gpu | undefined,
    modelId: string,
    private readonly loaded: LoadedModel<LanguageModel>,
    /** Which backend runs the model, why, and on what. */
    readonly backend: BackendChoice,
  ) {
    this.spec = loaded.spec;
    this.tokenizer = loaded.tokenizer;
    this.modelId = modelId;
    this.formatter = createChatFormatter(loaded.tokenizerConfig, loaded.tokenizer);
    this.chat = { completions: createChatCompletions(this) };
    this.sparseLogits = new Float32Array(loaded.spec.vocabSize);
    this.maskedIds = new Set(loaded.maskedTokenIds);
  }

  get contextLength(): number {
    return this.loaded.model.contextLength;
  }

  /** The context allocated at load, why it is that long, and the GPU bytes the model holds. */
  get context(): ContextChoice {
    return this.loaded.context;
  }

  /** How this model writes tool calls, from its chat template and vocabulary. */
  get toolSyntax(): ToolSyntax {
    this.syntax ??= toolSyntaxFor(this.formatter.templateText, (t) => this.tokenizer.tokenToId(t) !== undefined);
    return this.syntax;
  }

  /** Stop ids for chat: the model's EOS ids, plus ChatML's end of turn when the ChatML fallback is in use. */
  chatEosTokenIds(): number[] {
    const ids = [...this.tokenizer.eosTokenIds];
    const imEnd = this.formatter.fallback === 'chatml' ? this.tokenizer.tokenToId('<|im_end|>') : undefined;
    if (imEnd !== undefined && !ids.includes(imEnd)) ids.push(imEnd);
    return ids;
  }

  /** Renders and tokenizes a conversation with the model's chat template (or the documented fallback); `tools` go to the template. */
  async encodeMessages(messages: unknown, signal?: AbortSignal, tools?: readonly Tool[]): Promise<number[]> {
    if (!Array.isArray(messages)) throw new InvalidRequestError('messages must be an array of messages', 'messages');
    const valid = validateMessages(messages);
    const toolChars = tools ? JSON.stringify(tools).length : 0;
    this.checkPromptChars(valid.reduce((sum, m) => sum + m.content.length + (m.tool_calls ? JSON.stringify(m.tool_calls).length : 0), toolChars));
    // The template's output is capped at what could fit the context, so a template cannot inflate it past that.
    const options = { addGenerationPrompt: true, maxChars: this.maxPromptChars(), signal, tools: tools as unknown as JsonObject[] | undefined };
    return encodeChatInPieces(this.formatter, this.tokenizer, valid, options);
  }

  /** The most characters a prompt that fits the context can have: NFC may triple a text, no token is longer than maxTokenChars. */
  private maxPromptChars(): number {
    return this.contextLength * 3 * this.tokenizer.maxTokenChars;
  }

  /** A cheap check before tokenizing: a prompt of `chars` characters takes at least chars / maxPromptChars × context tokens. */
  private checkPromptChars(chars: number): void {
    if (chars < this.maxPromptChars()) return;
    const atLeast = Math.ceil(chars / (3 * this.tokenizer.maxTokenChars));
    throw new ContextWindowExceededError(atLeast, this.contextLength, `The prompt (${chars.toLocaleString('en-US')} characters) is at least`);
  }

  resolveOptions(options: Omit<GenerateOptions, 'signal'>): ResolvedSamplingOptions {
    return resolveSamplingOptions(options, this.loaded.generationConfig, { vocabSize: this.spec.vocabSize });
  }

  /**
   * Generates from a prompt (text, encoded with the tokenizer's special tokens, or token ids). Deltas stream
   * as tokens are sampled; with `num_beams` > 1 beam search runs and the whole text comes as one delta.
   */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): GenerationStream {
    if (typeof prompt !== 'string' && !Array.isArray(prompt)) {
      throw new InvalidRequestError(`prompt must be a string or an array of token ids, got ${prompt === null ? 'null' : typeof prompt}`, 'prompt');
    }
    if (typeof options !== 'object' || options === null) {
      throw new InvalidRequestError(`options must be an object, got ${options === null ? 'null' : typeof options}`, 'options');
    }
    const { signal, response_format: responseFormat, ...sampling } = options;
    if (typeof prompt === 'string' && prompt.length === 0) throw new InvalidRequestError('prompt must not be empty', 'prompt');
    if (typeof prompt === 'string') this.checkPromptChars(prompt.length);
    const ids = typeof prompt === 'string' ? this.tokenizer.encode(prompt) : [...prompt];
    const spec = parseResponseFormat(responseFormat);
    const grammar = spec ? { spec, param: 'response_format' } : undefined;
    return this.stream(ids, this.resolveOptions(sampling), this.tokenizer.eosTokenIds, signal, grammar);
  }

  /**
   * Compiles a grammar ahead of a request, so a schema xgrammar rejects fails the call that brought it
   * (compiled grammars are cached, so the request itself then finds it ready).
   */
  async prepareGrammar(grammar: ConstrainedOutput): Promise<void> {
    if (this.disposed) throw new EngineDisposedError();
    (await this.grammarEngine().compile(grammar.spec, grammar.param)).dispose();
  }

  private grammarEngine(): GrammarEngine {
    this.grammars ??= new GrammarEngine(this.tokenizer, this.spec.vocabSize);
    return this.grammars;
  }

  /** The streaming core shared by generate() and chat completions. Validates before anything runs. */
  stream(
    promptIds: number[],
    opts: ResolvedSamplingOptions,
    eosTokenIds: readonly number[],
    signal?: AbortSignal,
    grammar?: ConstrainedOutput,
  ): GenerationStream {
    if (this.disposed) throw new EngineDisposedError();
    if (promptIds.length === 0) throw new InvalidRequestError('the prompt must contain at least one token', 'prompt');
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= this.spec.vocabSize) {
        // A tokenizer may know more ids than the model has rows: Gemma 3's 262,145th, <image_soft_token>, is only
        // in the multimodal models' embeddings.
        const token = Number.isInteger(id) ? this.tokenizer.idToToken(id) : undefined;
        const named = token === undefined ? '' : ` (${token}, one of the tokenizer's ${this.tokenizer.vocabSize} ids)`;
        throw new InvalidRequestError(`token id ${id}${named} is outside the model's vocabulary of ${this.spec.vocabSize}`, 'prompt');
      }
      if (this.maskedIds.has(id)) {
        throw new InvalidRequestError(
          `token id ${id} has no token in the tokenizer (${this.tokenizer.vocabSize} ids; the model's vocabulary of ${this.spec.vocabSize} is padded)`,
          'prompt',
        );
      }
    }
    if (promptIds.length >= this.contextLength) throw new ContextWindowExceededError(promptIds.length, this.contextLength, 'The prompt is');
    if (opts.numBeams > 1 && opts.logprobs) throw new InvalidOptionError('logprobs', 'false with beam search (num_beams > 1)', true);
    if (opts.numBeams > 1 && grammar) throw new InvalidOptionError('num_beams', '1 with constrained output (beam search is not constrained)', opts.numBeams);

    const { result, settle, fail } = pendingResult();
    const run = this.locked(signal, () =>
      opts.numBeams > 1 ? this.runBeams(promptIds, opts, eosTokenIds, signal) : this.run(promptIds, opts, eosTokenIds, signal, grammar),
    );
    const iterate = async function* (): AsyncGenerator<GenerationDelta> {
      let finished = false;
      try {
        settle(yield* run);
        finished = true;
      } catch (e) {
        fail(e);
        throw e;
      } finally {
        // `yield*` passes an early `return()` (a consumer's `break`) on to `run`, whose finally frees the engine.
        if (!finished) fail(consumerStopped());
      }
    };
    return { result, [Symbol.asyncIterator]: iterate };
  }

  /**
   * What to read back per token. Greedy with nothing reshaping the logits: the argmax (4 bytes), or with
   * logprobs the top_logprobs best (at least one: the greedy token) and the log-sum-exp of the row. top_k with
   * only temperature before it: top_k + 1 candidates from the GPU (the extra one shows a tie at the cut),
   * which is exact because the penalties and biases that could reorder tokens are off. Otherwise the logits.
   */
  private selection(opts: ResolvedSamplingOptions, constrained: boolean): { read: ForwardRead; k: number } {
    // A grammar mask, like a bias, can drop any token, so the GPU's argmax or top-k may hold none it allows.
    const reorders =
      constrained || opts.repetitionPenalty !== 1 || opts.frequencyPenalty !== 0 || opts.presencePenalty !== 0 || opts.logitBias.size > 0;
    if (reorders) return { read: 'logits', k: 0 };
    if (opts.temperature === 0) {
      if (!opts.logprobs) return { read: 'token', k: 0 };
      // Greedy runs no processor here: the distribution is the logits' softmax, normalised on the GPU.
      const k = Math.max(1, opts.topLogprobs);
      return k <= this.loaded.model.topKCapacity ? { read: 'logprobs', k } : { read: 'logits', k: 0 };
    }
    if (opts.topK > 0 && opts.topK < this.loaded.model.topKCapacity) return { read: 'topk', k: opts.topK + 1 };
    return { read: 'logits', k: 0 };
  }

  /** The next token from what forward() read back; a grammar masks the logits first. */
  private async pick(result: ForwardResult, sampler: Sampler, constraint: GrammarConstraint | null): Promise<number> {
    if (constraint && result.kind !== 'logits') throw new Error('constrained decoding needs the logits');
    switch (result.kind) {
      case 'token':
        sampler.history.push(result.token);
        return result.token;
      case 'logits':
        await constraint?.maskLogits(result.logits);
        return sampler.sample(result.logits);
      case 'topk': {
        const { values, indices } = result;
        const k = values.length - 1;
        // A tie between the k-th and the extra candidate: the CPU top-k keeps all tied tokens, so look at all.
        if (values[k] === values[k - 1]) return sampler.sample(await this.loaded.model.readLastLogits());
        // The candidates placed in a row of -Infinity: the sampler then sees exactly what the full row gives.
        const row = this.sparseLogits.fill(-Infinity);
        for (let i = 0; i < k; i++) if (indices[i] < row.length) row[indices[i]] = values[i];
        return sampler.sample(row);
      }
      case 'logprobs': {
        const { values, indices, logSumExp } = result;
        const token = indices[0];
        sampler.history.push(token);
        const top = Array.from(indices.subarray(0, sampler.options.topLogprobs), (id, i) => ({ id, logprob: values[i] - logSumExp }));
        sampler.lastLogprobs = { logprob: values[0] - logSumExp, top };
        return token;
      }
    }
  }

  /** One step's log-probabilities in OpenAI's shape, with each token's text and bytes. */
  private tokenLogprob(id: number, step: StepLogprobs): TokenLogprob {
    const entry = (token: number, logprob: number): TopLogprob => {
      const bytes = this.tokenizer.tokenBytes(token);
      return { token: utf8.decode(bytes), logprob, bytes: Array.from(bytes) };
    };
    return { ...entry(id, step.logprob), top_logprobs: step.top.map((t) => entry(t.id, t.logprob)) };
  }

  /** Runs a generation holding the engine: first-come-first-served, released however the generation ends. */
  private async *locked(
    signal: AbortSignal | undefined,
    generation: () => AsyncGenerator<GenerationDelta, GenerationResult>,
  ): AsyncGenerator<GenerationDelta, GenerationResult> {
    const release = await this.queue.acquire(signal);
    try {
      if (this.disposed) throw new EngineDisposedError();
      return yield* generation();
    } finally {
      release();
    }
  }

  /** Feeds `tokens` after reusing the longest cached prefix of `sequence` (= cached part + tokens). */
  private async prefill(sequence: readonly number[], step: string, read: ForwardRead, k = 0, signal?: AbortSignal): Promise<{ result: ForwardResult; reused: number }> {
    const { model } = this.loaded;
    let common = 0;
    while (common < this.cachedTokens.length && common < sequence.length && this.cachedTokens[common] === sequence[common]) common++;
    // At least one token must run to produce the next logits.
    const reused = Math.min(common, sequence.length - 1);
    model.rewind(reused);
    this.cachedTokens.length = reused;
    const result = await this.forward(sequence.slice(reused), step, read, k, signal);
    return { result, reused };
  }

  /** Runs `tokens` for the request step named `step` (for a NumericalError to say where it happened). */
  private async forward(tokens: readonly number[], step: string, read: ForwardRead, k = 0, signal?: AbortSignal): Promise<ForwardResult> {
    const { model } = this.loaded;
    try {
      const result = await model.forward(tokens, read, k, signal);
      this.cachedTokens.push(...tokens);
      return result;
    } catch (e) {
      if (e instanceof NumericalError) {
        // Non-finite keys and values may sit in the cache where this call wrote: the next request starts afresh.
        this.cachedTokens.length = 0;
        model.rewind(0);
        throw new NumericalError(step, e.position);
      }
      // Whatever reached the cache before the failure is still valid; the rest is not.
      this.cachedTokens.length = Math.min(this.cachedTokens.length, model.cachedLength);
      model.rewind(this.cachedTokens.length);
      throw e;
    }
  }

  private async *run(
    promptIds: readonly number[],
    opts: ResolvedSamplingOptions,
    eosTokenIds: readonly number[],
    signal: AbortSignal | undefined,
    grammar: ConstrainedOutput | undefined,
  ): AsyncGenerator<GenerationDelta, GenerationResult> {
    const constraint = grammar ? await this.grammarEngine().constrain(grammar.spec, grammar.param, eosTokenIds) : null;
    try {
      return yield* this.decode(promptIds, opts, eosTokenIds, signal, constraint);
    } finally {
      constraint?.dispose();
    }
  }

  private async *decode(
    promptIds: readonly number[],
    opts: ResolvedSamplingOptions,
    eosTokenIds: readonly number[],
    signal: AbortSignal | undefined,
    constraint: GrammarConstraint | null,
  ): AsyncGenerator<GenerationDelta, GenerationResult> {
    const sampler = new Sampler(opts, promptIds);
    const { read, k } = this.selection(opts, constraint !== null);
    const maxTokens = Math.min(opts.maxTokens ?? Infinity, this.contextLength - promptIds.length);
    const decoder = createStreamDecoder(this.tokenizer, { skipSpecialTokens: true });
    const stops = new StopMatcher(opts.stop);

    const t0 = performance.now();
    const started = await this.prefill(promptIds, 'prefill', read, k, this.waitSignal(signal)).catch((e: unknown) => {
      // Stopped while a kernel the prompt needs was still compiling: nothing ran (dispose() throws its own error).
      if (signal?.aborted && e === signal.reason) return undefined;
      throw e;
    });
    const tFirst = performance.now();
    if (!started) {
      return {
        finishReason: 'abort',
        usage: usage(promptIds.length, 0, 0),
        timings: { time_to_first_token_ms: tFirst - t0, prefill_tokens_per_second: 0, decode_tokens_per_second: 0, readback_bytes_per_token: 0 },
      };
    }
    const { result: first, reused } = started;
    let next = first;
    let generated = 0;
    let finish: FinishReason = 'length';
    for (;;) {
      if (signal?.aborted) {
        finish = 'abort';
        break;
      }
      const token = await this.pick(next, sampler, constraint);
      constraint?.accept(token);
      generated++;
      const ended = finishReason(token, generated, { eosTokenIds, maxTokens });
      if (ended === 'stop') {
        finish = 'stop';
        break;
      }
      const stop = stops.push(decoder.push(token));
      const logprobs = sampler.lastLogprobs && [this.tokenLogprob(token, sampler.lastLogprobs)];
      yield logprobs ? { tokenIds: [token], text: stop.text, logprobs } : { tokenIds: [token], text: stop.text };
      if (stop.stopped) {
        finish = 'stop';
        break;
      }
      if (ended === 'length') break;
      next = await this.forward([token], `decode step ${generated}`, read, k);
    }
    if (finish !== 'stop') {
      const tail = stops.push(decoder.flush());
      const text = tail.text + (tail.stopped ? '' : stops.flush());
      if (tail.stopped) finish = 'stop';
      if (text) yield { tokenIds: [], text };
    }
    const tEnd = performance.now();
    const prefilled = promptIds.length - reused;
    const decodeSteps = Math.max(generated - 1, 0);
    return {
      finishReason: finish,
      usage: usage(promptIds.length, generated, reused),
      timings: {
        time_to_first_token_ms: tFirst - t0,
        prefill_tokens_per_second: (prefilled * 1000) / Math.max(tFirst - t0, 1e-3),
        decode_tokens_per_second: decodeSteps ? (decodeSteps * 1000) / Math.max(tEnd - tFirst, 1e-3) : 0,
        readback_bytes_per_token: read === 'token' ? 4 : read === 'topk' ? 8 * k : read === 'logprobs' ? 8 * k + 4 : this.spec.vocabSize * 4,
      },
    };
  }

  /** What ends a request's wait for kernels still compiling: its own abort, or dispose(). */
  private waitSignal(signal: AbortSignal | undefined): AbortSignal {
    return signal ? AbortSignal.any([signal, this.disposing.signal]) : this.disposing.signal;
  }

  /** Beam search: each step reruns the model for every beam, reusing the cache for their common prefix. */
  private async *runBeams(
    promptIds: readonly number[],
    opts: ResolvedSamplingOptions,
    eosTokenIds: readonly number[],
    signal: AbortSignal | undefined,
  ): AsyncGenerator<GenerationDelta, GenerationResult> {
    const t0 = performance.now();
    const waitSignal = this.waitSignal(signal);
    let steps = 0;
    const best = await beamSearch({
      numBeams: opts.numBeams,
      maxNewTokens: Math.min(opts.maxTokens ?? Infinity, this.contextLength - promptIds.length),
      eosTokenIds,
      lengthPenalty: opts.lengthPenalty,
      step: async (beams) => {
        if (signal?.aborted) throw signal.reason ?? new DOMException('The request was aborted', 'AbortError');
        steps++;
        const logits: Float32Array[] = [];
        for (const beam of beams) {
          const { result } = await this.prefill([...promptIds, ...beam], `beam search step ${steps}`, 'logits', 0, waitSignal);
          if (result.kind !== 'logits') throw new Error('beam search needs logits');
          logits.push(result.logits);
        }
        return logits;
      },
    });
    const text = this.tokenizer.decode(best.tokens, { skipSpecialTokens: true });
    yield { tokenIds: best.tokens, text };
    const ms = performance.now() - t0;
    return {
      finishReason: best.finishReason,
      usage: usage(promptIds.length, best.tokens.length, 0),
      timings: {
        time_to_first_token_ms: ms,
        prefill_tokens_per_second: 0,
        decode_tokens_per_second: (steps * 1000) / Math.max(ms, 1e-3),
        readback_bytes_per_token: opts.numBeams * this.spec.vocabSize * 4,
      },
    };
  }

  /**
   * Resolves once every kernel is compiled. The model is usable before: on WebGPU with a short-chunk plan the
   * kernels for prompt chunks longer than that compile after load, and a request that needs them waits for them.
   */
  whenCompiled(): Promise<void> {
    if (this.disposed) return Promise.reject(new EngineDisposedError());
    return this.loaded.model.whenCompiled();
  }

  /** Frees the GPU memory; later calls throw EngineDisposedError. Waits for the running request to end. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.disposing.abort(new EngineDisposedError());
    const release = await this.queue.acquire();
    this.loaded.model.destroy();
    this.grammars?.dispose();
    release();
  }
}
