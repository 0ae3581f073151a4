/**
 * The transformer on the GPU: weights uploaded once (gpu-weights.ts), a RunState allocated once
 * (run-state.ts), and every kernel launch prepared at load (plan.ts). A forward call only writes token ids
 * and changed parameters, encodes one compute pass (two for a prefill chunk, around the copy of its last
 * row) and submits once per chunk; decode reads back the 4-byte token id. Nothing here creates a buffer or
 * bind group once `whenCompiled()` has resolved (the launches after the LM head and, on a software adapter with
 * a short-chunk plan, the tiled prefill plan are prepared after `GpuModel.create` returns: see there).
 */
import type { Gpu } from '../gpu/device';
import { EngineDisposedError } from '../engine/errors';
import { NumericalError, ShapeError } from '../gpu/errors';
import type { Tensor } from '../gpu/tensor';
import { unlessAborted } from '../util/abort';
import { DEFAULT_TILE, defaultBatchShape, defaultMatvecShape } from '../kernels/matmul/matmul';
import { tuneMatvec, tuneTiled, type TuneOptions } from '../kernels/matmul/tune';
import type { QuantDType } from '../quant/quantize';
import type { ModelSpec } from './config';
import { allocateWeights, decodeWeightBytes, sameWeights, uploadWeights, type GpuWeights } from './gpu-weights';
import type { KvDtype } from '../kernels/attention/kv-format';
import { ContextWindowExceededError, DEFAULT_KV_DTYPE } from './kv-cache';
import { checkModelFits } from './limits';
import { planContext, type ContextChoice } from './memory';
import { applyChunk, disposePlan, preparePlan, Selection, type KernelShapes, type Plan, type Step } from './plan';
import { copyToStaging, readStagedHidden, readStagedLogits, readStaging, usable, type ForwardRead, type ForwardResult, type Readout } from './readback';
import { createProfiler, createRunState, readGpuMs, type Profiler, type RunState } from './run-state';
import type { LanguageModel } from './language-model';
import { rowParts, weightBindingLimit } from './split';
import { canonicalStream, type WeightStream } from './stream';
import type { LoadProgress } from './upload';
import type { CanonicalWeights, WeightDtype } from './weights';

export interface GpuModelOptions {
  /**
   * Tokens of context to allocate the KV cache for, refused (LimitsExceededError) when the model's total GPU
   * bytes with it exceed memoryBudget. Default: min(the model's maximum, 4096, what memoryBudget leaves).
   */
  contextLength?: number;
  /** GPU bytes the model may hold in all; default: an estimate of the device's memory (src/model/memory.ts). */
  memoryBudget?: number;
  /** Most tokens one prefill dispatch covers, bounding memory and the time of any single submit. */
  prefillChunk?: number;
  /**
   * Chunks of 2…shortChunk tokens (a chat turn's new message, a prompt's tail) run decode's matrix-vector
   * kernel, once per token, instead of the tiled prefill kernel, whose 64-row tiles compute as much for 4
   * tokens as for 64. Default: DEFAULT_SHORT_CHUNK for the adapter (see there); 1 turns it off.
   */
  shortChunk?: number;
  /**
   * Time every submit on the GPU with timestamp queries (where the device has them) into `stats.gpuMs`.
   * For benchmarks: it waits for each submit's timing, so chunks no longer overlap with encoding.
   */
  profile?: boolean;
  /**
   * Quantize the weight matrices at load (group 32, f16 scales); the embedding stays f16 for the gather.
   * Under q4 the LM head, the matrix whose error reaches the logits most directly, is q8 (as llama.cpp keeps
   * `output.weight` at 6 bits): on stories260K that cuts logits NMSE by ~30% for ~17% more bytes on a 1B model.
   */
  quantize?: QuantDType;
  /**
   * Most candidates `forward(…, 'topk')` can return (1…256; 0 = none): top-k selection on the GPU, so
   * sampling reads back 8 bytes per candidate instead of the whole vocabulary.
   */
  topKCapacity?: number;
  /**
   * Time the matmul kernels' shapes (decode's matvec, prefill's tiles) on this device at load and use the
   * fastest; results persist per adapter (see src/kernels/matmul/tune.ts). A software adapter gets the defaults untimed.
   */
  tune?: boolean | TuneOptions;
  /**
   * Token ids the model must never produce (the tokenizer cannot decode them: a padded vocabulary's tail,
   * holes in its numbering): their logits are set to -Infinity on the GPU before argmax, top-k or a readback.
   */
  maskedTokenIds?: readonly number[];
  /** Upload, quantize and compile progress (see LoadProgress). */
  onProgress?: (progress: LoadProgress) => void;
  /** Storage of the KV cache: f16 (default; half the memory and bandwidth) or f32. */
  kvDtype?: KvDtype;
  /**
   * Most bytes of one weight buffer, when less than the device allows (maxStorageBufferBindingSize, and
   * maxBufferSize): a matrix larger than that (the embedding, the LM head, any projection) is stored as row
   * ranges in several buffers and runs as one launch per part. For tests, and drivers whose largest
   * allocations fail.
   */
  maxBindingSize?: number;
}

/** Running totals since load, for benchmarks: what forward calls cost the CPU and the bus. */
export interface ForwardStats {
  calls: number;
  submits: number;
  /** Chunks that ran through the short-chunk plan (matvec projections), of the submits. */
  shortChunks: number;
  passes: number;
  dispatches: number;
  /** GPU→CPU bytes copied back (token ids or logits). */
  readbackBytes: number;
  /** CPU time spent updating parameters, encoding and submitting. */
  encodeMs: number;
  /** GPU time from timestamp queries, when loaded with `profile` on a device that has them. */
  gpuMs: number;
}

/**
 * The default shortChunk. On a software adapter, instruction-bound, matvec costs about one decode step per
 * token while the tiled kernel costs a 64-row tile's work whatever T: measured on lavapipe (SmolLM2-135M),
 * matvec won 2–14× up to 16 tokens and 2× at 24; at 32–48 f16 broke even and q4 still won 1.4×. (The batched
 * matvec that runs longer chunks there, KernelShapes.batch, is 1.6–2× faster than matvec from 4 tokens on,
 * 5632×2048 q4, but its pipelines would then compile before the model is ready.) On a GPU,
 * bandwidth-bound, matvec reads the weights once per token and the tiled kernel once per tile, so the tiled
 * kernel wins from a few tokens on (unmeasured here: 4 keeps matvec to at most four passes over the weights).
 */
export const DEFAULT_SHORT_CHUNK = { software: 32, hardware: 4 } as const;

/**
 * Benchmarks only (the package does not export it): the key of GpuModel's method that takes positions
 * 0..length-1 as cached whatever the cache holds, so decode can be timed deep into the context without
 * prefilling it first (attention costs the same whatever values it reads).
 */
export const ASSUME_CACHED = Symbol('assumeCached');

export class GpuModel implements LanguageModel {
  readonly stats: ForwardStats = { calls: 0, submits: 0, shortChunks: 0, passes: 0, dispatches: 0, readbackBytes: 0, encodeMs: 0, gpuMs: 0 };
  /** Bytes of every GPU buffer the model holds: weights, KV cache, activations (allocated once, at load). */
  readonly allocatedBytes: number;
  /** Weight bytes one decode token reads: every layer's tensors, the final norm, the LM head, one embedding row. */
  readonly decodeWeightBytes: number;
  private busy = false;
  private destroyed = false;
  private readonly idsScratch: Uint32Array<ArrayBuffer>;
  private topK = 0;
  /** The tiled prefill plan, once prepared. */
  private prefill: Plan | undefined;
  private readonly prefillPrepared: Promise<Plan>;
  private readonly selectionPrepared: Promise<unknown>;

  private constructor(
    readonly gpu: Gpu,
    readonly spec: ModelSpec,
    /** The context allocated, why it is that long, and the GPU bytes it brings the model to. */
    readonly context: ContextChoice,
    private readonly state: RunState,
    /** Most tokens of one prefill chunk (every plan but decode spans that many rows). */
    private readonly chunk: number,
    /** The tiled prefill plan, or its preparation when it compiles after load (see fromStream). */
    prefill: Plan | Promise<Plan>,
    /** The prefill plan with matvec projections, for chunks of at most `shortChunk` tokens; absent when off. */
    private readonly short: Plan | undefined,
    private readonly shortChunk: number,
    private readonly decode: Plan,
    /** What follows the LM head for each kind of read, shared by the plans and prepared on first use or after load. */
    private readonly selection: Selection,
    /** The selection kinds prepared after load (see fromStream). */
    selectionPrepared: Promise<unknown>,
    private readonly buffers: GPUBuffer[],
    private readonly profiler: Profiler | undefined,
    /** The matmul kernels' shapes in use: tuned for this device when loaded with `tune`, else the defaults. */
    readonly kernelShapes: KernelShapes,
    weights: GpuWeights,
  ) {
    this.idsScratch = new Uint32Array(chunk);
    this.allocatedBytes = buffers.reduce((sum, b) => sum + b.size, 0);
    this.decodeWeightBytes = decodeWeightBytes(spec, weights);
    this.prefillPrepared = Promise.resolve(prefill).then((plan) => {
      if (this.destroyed) {
        disposePlan(plan);
        throw new EngineDisposedError('the model was destroyed while its prefill plan compiled');
      }
      this.prefill = plan;
      return plan;
    });
    // A failure reaches the forward call that needs the plan (and whenCompiled), not the unhandled-rejection handler.
    this.prefillPrepared.catch(() => {});
    this.selectionPrepared = selectionPrepared;
    this.selectionPrepared.catch(() => {});
  }

  /**
   * Resolves once every launch is prepared. The model is returned as soon as decode and short chunks up to the
   * logits are compiled; then argmax, top-k and log-sum-exp, and on a software adapter with a short-chunk plan the
   * tiled prefill plan (most of the compile time there: its tiled matmul pipelines) compile, and a call that needs
   * one of them waits for it.
   */
  async whenCompiled(): Promise<void> {
    await Promise.all([this.selectionPrepared, this.prefillPrepared]);
  }

  static async create(gpu: Gpu, spec: ModelSpec, weights: CanonicalWeights, options: GpuModelOptions = {}): Promise<GpuModel> {
    const dtype = weights.embedding.dtype === 'f16' && weights.lmHead.dtype === 'f16' ? 'f16' : 'f32';
    return GpuModel.fromStream(gpu, spec, canonicalStream(spec, weights), dtype, options);
  }

  /**
   * A model whose weights arrive from `stream` (a checkpoint read slice by slice, see ./stream.ts), with
   * matrices in `dtype`. If anything fails or the stream is aborted, every buffer created so far is destroyed.
   */
  static async fromStream(gpu: Gpu, spec: ModelSpec, stream: WeightStream, dtype: WeightDtype, options: GpuModelOptions = {}): Promise<GpuModel> {
    const masked = maskedIds(spec, options.maskedTokenIds ?? []);
    const topKCapacity = Math.min(options.topKCapacity ?? 0, spec.vocabSize);
    // Everything the model will hold, checked against the memory budget before the first allocation.
    const kvDtype = options.kvDtype ?? DEFAULT_KV_DTYPE;
    const bindingLimit = weightBindingLimit(gpu.device.limits, options.maxBindingSize);
    const { context, chunk } = planContext(spec, { ...options, dtype, kvDtype, maskedTokens: masked.length, topKCapacity, bindingLimit });
    const { contextLength } = context;
    checkModelFits(gpu, spec, dtype, contextLength, chunk, kvDtype, options.maxBindingSize);

    const buffers: GPUBuffer[] = [];
    const track = <T extends Tensor>(t: T): T => (buffers.push(t.buffer), t);
    // A streamed tensor that does not fit the buffer allocated for it gets a new one; the old one goes.
    const release = (t: Tensor) => {
      const at = buffers.indexOf(t.buffer);
      if (at >= 0) buffers.splice(at, 1);
      t.buffer.destroy();
    };
    const shortChunk = options.shortChunk ?? DEFAULT_SHORT_CHUNK[gpu.isSoftwareAdapter ? 'software' : 'hardware'];
    if (!Number.isInteger(shortChunk) || shortChunk < 1) throw new ShapeError('model', `shortChunk must be an integer ≥ 1, got ${shortChunk}`);
    let plans: Promise<Plan[]> | undefined;
    try {
      // Weights and run state are allocated before the weights stream, so the plans, whose pipelines are
      // compiled by createComputePipelineAsync, are prepared while the weights arrive.
      const allocated = await allocateWeights(gpu, spec, dtype, options.quantize, contextLength, track, bindingLimit);
      const state = await createRunState(gpu, spec, contextLength, chunk, track, buffers, topKCapacity, masked, kvDtype);
      // Tuned on the first part of a split matrix: the kernel never sees more rows than one buffer holds.
      const upWeight = allocated.layers[0]?.wGateUp ?? allocated.layers[0]?.wUp;
      const up = upWeight && rowParts(upWeight)[0].tensor;
      const tune = options.tune === true ? {} : options.tune || undefined;
      // The short plan spans the whole chunk like the prefill plan, so that every launch but the projections
      // and attention has the prefill plan's pipeline key, the projections decode's, and attention (one token's
      // rows per workgroup) decode's too where decode runs the workgroup kernel.
      // With it, on a software adapter, the model is ready once decode and the short plan are: the prefill plan
      // (batched or tiled matmul), whose pipelines take seconds each for its compiler, is prepared afterwards
      // (whenCompiled).
      // Elsewhere shortChunk is a few tokens, so nearly every first prompt would wait for that compile: it is
      // prepared with the others while the weights arrive.
      const withShort = chunk > 1 && shortChunk > 1;
      const deferPrefill = withShort && gpu.isSoftwareAdapter;
      const plansTotal = withShort && !deferPrefill ? 3 : 2;
      options.onProgress?.({ stage: 'compile', done: 0, total: plansTotal });
      // A software adapter runs chunks of several tokens through the batched matvec (see KernelShapes.batch).
      const batch = gpu.isSoftwareAdapter ? defaultBatchShape(gpu) : undefined;
      const shapes: KernelShapes =
        tune && up
          ? {
              matvec: await tuneMatvec(gpu, up.shape[0], up.shape[1], up.dtype, tune),
              tile: await tuneTiled(gpu, chunk, up.shape[0], up.shape[1], up.dtype, tune),
              batch,
            }
          : { matvec: defaultMatvecShape(gpu, up?.dtype), tile: DEFAULT_TILE, batch };
      // The plans needed before the model is returned at once, so their pipelines compile side by side:
      // decode, then the short plan (or, without one, the tiled prefill plan), then the tiled prefill plan
      // unless it is deferred.
      const prepare = async (weights: GpuWeights): Promise<Plan[]> => {
        let done = 0;
        const plan = async (maxT: number, projections?: 'matvec') => {
          const p = await preparePlan(gpu, spec, weights, state, maxT, shapes, projections);
          options.onProgress?.({ stage: 'compile', done: ++done, total: plansTotal });
          return p;
        };
        const plans = await Promise.allSettled([plan(1), plan(chunk, withShort ? 'matvec' : undefined), ...(plansTotal === 3 ? [plan(chunk)] : [])]);
        const failed = plans.find((p) => p.status === 'rejected');
        if (!failed) return plans.map((p) => (p as PromiseFulfilledResult<Plan>).value);
        for (const p of plans) if (p.status === 'fulfilled') disposePlan(p.value);
        throw failed.reason;
      };
      plans = prepare(allocated);
      // Awaited once the weights are in; a failure meanwhile must not surface as an unhandled rejection.
      plans.catch(() => {});
      const gpuWeights = await uploadWeights(gpu, spec, stream, contextLength, track, { ...options, dtype, into: allocated, release, bindingLimit });
      let prepared = await plans;
      if (!sameWeights(allocated, gpuWeights)) {
        // A tensor arrived in another dtype than `dtype` said: the plans must read its new buffer.
        prepared.forEach(disposePlan);
        plans = prepare(gpuWeights);
        prepared = await plans;
      }
      const [decode, shortOrPrefill, tiled] = prepared;
      const profiler = options.profile && gpu.features.timestampQuery ? await createProfiler(gpu, buffers) : undefined;
      // A deferred prefill plan starts only now, so its compiles do not compete with those the model needed first.
      // The launches after the LM head (argmax; top-k and log-sum-exp with a topKCapacity) compile after load
      // too, a read of a kind not yet compiled waiting for it: the chat page's sampling reads none of them on a
      // software adapter. They queue before the prefill plan's long compiles.
      const selection = new Selection(gpu, state);
      const selecting = Promise.all([selection.prepare('token'), ...(topKCapacity ? [selection.prepare('topk'), selection.prepare('logprobs')] : [])]);
      const prefill = deferPrefill ? preparePlan(gpu, spec, gpuWeights, state, chunk, shapes) : (tiled ?? shortOrPrefill);
      const short = withShort ? shortOrPrefill : undefined;
      return new GpuModel(gpu, spec, context, state, chunk, prefill, short, shortChunk, decode, selection, selecting, buffers, profiler, shapes, gpuWeights);
    } catch (e) {
      await plans?.then((p) => p.forEach(disposePlan), () => {});
      for (const b of buffers) b.destroy();
      throw e;
    }
  }

  get contextLength(): number {
    return this.context.contextLength;
  }

  /** Positions of the KV cache that hold processed tokens. */
  get cachedLength(): number {
    return this.state.kv.length;
  }

  /** See ASSUME_CACHED: the next forward call starts at `length`, over whatever the cache holds before it. */
  [ASSUME_CACHED](length: number): void {
    if (!Number.isInteger(length) || length < 0 || length >= this.contextLength) {
      throw new ShapeError('model', `cannot take ${length} positions as cached in a context of ${this.contextLength}`);
    }
    this.state.kv.length = length;
  }

  /** Forgets cached positions from `length` on, so the next forward call starts there. */
  rewind(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.state.kv.length) {
      throw new ShapeError('model', `cannot rewind to ${length}: ${this.state.kv.length} positions are cached`);
    }
    this.state.kv.length = length;
  }

  /**
   * Runs `tokens` at positions cachedLength.. and returns the greedy next token (4 bytes read back) or the
   * logits of the last token. Prefill goes in chunks of at most the prefill size, one submit each. If a launch
   * the call needs is still compiling (see whenCompiled), `signal` aborts the wait, with its reason, before
   * anything is run or cached.
   */
  async forward(tokens: ArrayLike<number>, read: ForwardRead = 'token', k = 0, signal?: AbortSignal): Promise<ForwardResult> {
    if (read === 'topk' || read === 'logprobs') this.setTopK(k);
    const result = await this.run(tokens, read, () => readStaging(this.gpu, this.state, read, this.topK), signal);
    if (!usable(result)) throw new NumericalError('forward', this.state.kv.length - 1);
    return result;
  }

  /**
   * Runs `tokens` as forward() does and returns the last token's hidden state after the final norm [D] instead
   * of logits (the LM head does not run): what decoder embedding models (Qwen3-Embedding) pool.
   */
  async lastHidden(tokens: ArrayLike<number>): Promise<Float32Array> {
    const hidden = await this.run(tokens, 'hidden', () => readStagedHidden(this.gpu, this.state));
    if (!hidden.every(Number.isFinite)) throw new NumericalError('forward', this.state.kv.length - 1);
    return hidden;
  }

  private async run<R>(tokens: ArrayLike<number>, read: Readout, readBack: () => Promise<R>, signal?: AbortSignal): Promise<R> {
    const { gpu, spec, state } = this;
    if (this.destroyed) throw new EngineDisposedError('the model was destroyed');
    if (gpu.lostError) throw gpu.lostError;
    if (this.busy) throw new Error('GpuModel.forward is already running; calls must be serialised');
    if (tokens.length === 0) throw new ShapeError('model', 'forward needs at least one token');
    const start = state.kv.length;
    if (start + tokens.length > this.contextLength) throw new ContextWindowExceededError(start + tokens.length, this.contextLength);
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) {
        throw new ShapeError('model', `token id ${id} at index ${i} is outside the vocabulary of ${spec.vocabSize}`);
      }
    }

    this.busy = true;
    this.stats.calls++;
    try {
      await this.compiled(tokens.length, read, signal);
      for (let done = 0; done < tokens.length; ) {
        const T = Math.min(this.chunk, tokens.length - done);
        const plan = T === 1 ? this.decode : this.short && T <= this.shortChunk ? this.short : (this.prefill ?? (await this.prefillPrepared));
        if (plan === this.short) this.stats.shortChunks++;
        const pos = start + done;
        const isLast = done + T === tokens.length;
        for (let i = 0; i < T; i++) this.idsScratch[i] = tokens[done + i];
        gpu.device.queue.writeBuffer(state.ids.buffer, 0, this.idsScratch, 0, T);
        this.encodeAndSubmit(plan, T, pos, isLast ? read : undefined);
        if (this.profiler) this.stats.gpuMs += await readGpuMs(gpu, this.profiler);
        done += T;
        state.kv.length = pos + T;
      }
      const result = await readBack();
      // Invalid commands do nothing on the GPU: never hand out what such a call left behind.
      const error = gpu.takeUncapturedError();
      if (error) throw error;
      return result;
    } catch (e) {
      throw gpu.lostError ?? e;
    } finally {
      this.busy = false;
    }
  }

  /** Waits for what a call of `length` tokens reading `read` needs and is still compiling, unless `signal` aborts. */
  private async compiled(length: number, read: Readout, signal: AbortSignal | undefined): Promise<void> {
    const tiled = (T: number) => T > 1 && !(this.short && T <= this.shortChunk);
    const needsPrefill = !this.prefill && ((length >= this.chunk && tiled(this.chunk)) || tiled(length % this.chunk));
    const waits = [read !== 'hidden' && !this.selection.steps(read) && this.selection.prepare(read), needsPrefill && this.prefillPrepared].filter((w) => w !== false);
    if (waits.length === 0) return;
    await unlessAborted(Promise.all(waits), signal);
    // destroy() may have come while it waited.
    if (this.destroyed) throw new EngineDisposedError('the model was destroyed');
  }

  /**
   * The logits [V] the last forward call computed (of its last token), read back without running again:
   * for when a top-k read turns out not to be enough (a tie at the cut).
   */
  async readLastLogits(): Promise<Float32Array> {
    const { gpu, state } = this;
    const encoder = gpu.device.createCommandEncoder({ label: 'read logits' });
    this.stats.readbackBytes += copyToStaging(encoder, state, 'logits', 0);
    gpu.device.queue.submit([encoder.finish()]);
    return readStagedLogits(gpu, state);
  }

  /** Most candidates a 'topk' read can return (0 when the model was loaded without topKCapacity). */
  get topKCapacity(): number {
    return this.state.topIndices?.shape[0] ?? 0;
  }

  private setTopK(k: number): void {
    if (!Number.isInteger(k) || k < 1 || k > this.topKCapacity) {
      throw new ShapeError('model', `top-k reads need 1 ≤ k ≤ ${this.topKCapacity} (the topKCapacity loaded), got ${k}`);
    }
    if (k === this.topK) return;
    this.selection.setTopK(k);
    this.topK = k;
  }

  /** Embedding and every layer in one compute pass, then (on the last chunk) the LM head and a copy to staging. */
  private encodeAndSubmit(plan: Plan, T: number, pos: number, read: Readout | undefined): void {
    const t0 = performance.now();
    const { device } = this.gpu;
    const { state, stats, profiler } = this;
    applyChunk(plan, { T, pos });
    const encoder = device.createCommandEncoder({ label: `forward T=${T} pos=${pos}` });
    const encodePass = (label: string, steps: Step[], begins: boolean, ends: boolean) => {
      const timestampWrites =
        profiler && (begins || ends)
          ? { querySet: profiler.querySet, beginningOfPassWriteIndex: begins ? 0 : undefined, endOfPassWriteIndex: ends ? 1 : undefined }
          : undefined;
      const pass = encoder.beginComputePass({ label, timestampWrites });
      for (const step of steps) step.dispatch.encode(pass);
      pass.end();
      stats.passes++;
      stats.dispatches += steps.length;
    };
    const { body } = plan;
    const selected = read && read !== 'hidden' ? this.selection.steps(read) : [];
    if (!selected) throw new Error(`the ${read} launches are not prepared`);
    const tail = read === 'hidden' ? plan.hidden : read ? [...plan.head, ...selected] : [];
    if (plan.maxT === 1 || !read) {
      encodePass('forward', [...body, ...tail], true, true);
    } else {
      encodePass('layers', body, true, false);
      const rowBytes = this.spec.hiddenSize * 4;
      encoder.copyBufferToBuffer(state.x.buffer, (T - 1) * rowBytes, state.last.buffer, 0, rowBytes);
      encodePass('head', tail, false, true);
    }
    if (read) stats.readbackBytes += copyToStaging(encoder, state, read, this.topK);
    if (profiler) encoder.resolveQuerySet(profiler.querySet, 0, 2, profiler.resolve, 0);
    if (profiler) encoder.copyBufferToBuffer(profiler.resolve, 0, profiler.readback, 0, 16);
    device.queue.submit([encoder.finish()]);
    stats.submits++;
    stats.encodeMs += performance.now() - t0;
  }

  /** The plans prepared so far. */
  private get plans(): Plan[] {
    return [this.prefill, this.short, this.decode].filter((p) => p !== undefined);
  }

  /** Frees every buffer; a prefill plan still compiling is disposed when it arrives. */
  destroy(): void {
    // Once: a plan's launches disposed twice would hand their uniform slots to two later launches.
    if (this.destroyed) return;
    this.destroyed = true;
    this.selection.dispose();
    for (const plan of this.plans) disposePlan(plan);
    this.prefill = undefined;
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
  }
}

/** The ids to mask, checked and without repeats. */
function maskedIds(spec: ModelSpec, ids: readonly number[]): Uint32Array {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) {
      throw new ShapeError('model', `masked token id ${id} is outside the vocabulary of ${spec.vocabSize}`);
    }
  }
  return Uint32Array.from(new Set(ids));
}
