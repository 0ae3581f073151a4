/**
 * The transformer on the GPU: weights uploaded once, a RunState allocated once, and every kernel launch
 * prepared at load (pipelines, uniform buffers, bind groups). A forward call only writes token ids and
 * changed parameters, encodes one compute pass (two for a prefill chunk, around the copy of its last row)
 * and submits once per chunk; decode reads back the 4-byte token id. RMSNorm is fused into the projection
 * that follows it. Nothing here creates a buffer or bind group after `createGpuModel` returns.
 */
import type { Gpu } from '../gpu/device';
import { LimitsExceededError, ShapeError } from '../gpu/errors';
import { f16BitsToF32 } from '../gpu/f16';
import { createBuffer, createTensor, tensorBytes, uploadTensor, type DType, type Tensor } from '../gpu/tensor';
import { prepareArgmax } from '../kernels/argmax/argmax';
import { prepareAttention } from '../kernels/attention/attention';
import { prepareEmbedding } from '../kernels/embedding/embedding';
import { prepareGelu } from '../kernels/gelu/gelu';
import { DEFAULT_MATVEC, DEFAULT_TILE, prepareMatmul, type MatmulArgs, type MatvecShape, type TileShape } from '../kernels/matmul/matmul';
import { prepareNorm } from '../kernels/norm/norm';
import { prepareRope, ropeInvFreq, ropeTable } from '../kernels/rope/rope';
import { prepareTopK } from '../kernels/topk/topk';
import { tuneMatvec, tuneTiled, type TuneOptions } from '../kernels/matmul/tune';
import { quantize, type QuantDType } from '../quant/quantize';
import type { ModelSpec } from './config';
import { ContextWindowExceededError, createKvCache, kvCacheShape, type KvCache } from './kv-cache';
import { LAYER_TENSORS, MODEL_TENSORS, canonicalShape, type CanonicalTensor } from './architectures';
import { mapLayer, type CanonicalLayer, type CanonicalWeights, type F32Tensor, type WeightDtype, type WeightTensor } from './weights';

export interface GpuModelOptions {
  /** Tokens of context to allocate the KV cache for; defaults to the model's maximum. */
  contextLength?: number;
  /** Most tokens one prefill dispatch covers, bounding memory and the time of any single submit. */
  prefillChunk?: number;
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
}

/** Running totals since load, for benchmarks: what forward calls cost the CPU and the bus. */
export interface ForwardStats {
  calls: number;
  submits: number;
  passes: number;
  dispatches: number;
  /** GPU→CPU bytes copied back (token ids or logits). */
  readbackBytes: number;
  /** CPU time spent updating parameters, encoding and submitting. */
  encodeMs: number;
  /** GPU time from timestamp queries, when loaded with `profile` on a device that has them. */
  gpuMs: number;
}

/** Timestamp queries around each submit: the first pass writes the start, the last pass the end. */
interface Profiler {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
}

/** A layer's tensors on the GPU, under their canonical names (see LAYER_TENSORS). */
type GpuLayer = { [K in keyof CanonicalLayer]: Tensor };

interface GpuWeights {
  /** [V, D] */
  embedding: Tensor;
  /** [maxContext, D] f32 (GPT-2). */
  positionEmbedding?: Tensor;
  layers: GpuLayer[];
  finalNorm: Tensor;
  finalNormBias?: Tensor;
  /** [V, D]; the embedding tensor itself when tied. */
  lmHead: Tensor;
  /** [contextLength, rotaryDim/2, 2] cos/sin, when the model uses rope. */
  ropeTable?: Tensor;
}

/** Activations, sized for the largest chunk and reused by every call (T = rows in use). */
interface RunState {
  /** [chunk] u32 token ids of the current chunk. */
  ids: Tensor;
  /** [chunk, D] the residual stream. */
  x: Tensor;
  /** [chunk, D] LayerNorm of x, input of the projections (RMSNorm models normalise inside the projections). */
  xn?: Tensor;
  /** [chunk, (nH + 2·nKV)·hd] fused q, k, v projections. */
  qkv: Tensor;
  /** [chunk, nH, hd] rotated queries. */
  q: Tensor;
  /** [chunk, nH, hd] attention output. */
  attn: Tensor;
  /** [chunk, 2I] gate and up (gated MLP) or [chunk, I]. */
  up: Tensor;
  /** [chunk, I] GELU of `up` (plain MLP); a gated MLP's down projection applies SwiGLU as it reads `up`. */
  act?: Tensor;
  /** [1, D] the last row of x, the only one the LM head needs (a prefill chunk copies it here). */
  last: Tensor;
  /** [1, D] LayerNorm of `last` (LayerNorm models). */
  lastNorm?: Tensor;
  /** [1, V] */
  logits: Tensor;
  /** [1] u32 greedy next token. */
  next: Tensor;
  /** [capacity] f32 and u32: the top-k candidates, when the model was loaded with topKCapacity. */
  topValues?: Tensor;
  topIndices?: Tensor;
  /** MAP_READ staging for `next`, `logits` and the top-k candidates, reused by every readback. */
  tokenReadback: GPUBuffer;
  logitsReadback: GPUBuffer;
  topKReadback?: GPUBuffer;
  kv: KvCache;
}

/** A prepared launch seen through the parameters a step changes (any KernelDispatch with those fields). */
interface Launch<P> {
  encode(pass: GPUComputePassEncoder): void;
  set(changes: P): void;
  dispose(): void;
}

/** One prepared launch and how it follows the chunk length T and start position pos. */
interface Step {
  dispatch: Pick<Launch<never>, 'encode' | 'dispose'>;
  update(T: number, pos: number): void;
}

/** Every launch of one forward call, for a fixed maximum T: the prefill plan and the T = 1 decode plan. */
interface Plan {
  maxT: number;
  embed: Step;
  layers: Step[][];
  /**
   * Final norm and LM head over the last row: decode's only row of x, read in place in the same pass; a
   * prefill chunk's last row, copied to `last` between two passes.
   */
  head: Step[];
  /** What follows the LM head for each kind of read: argmax, top-k, or nothing (the logits themselves). */
  select: { token: Step[]; topk: Step[]; logits: Step[] };
  applied: { T: number; pos: number };
}

export type ForwardRead = 'token' | 'logits' | 'topk';

export type ForwardResult =
  | { kind: 'token'; token: number }
  | { kind: 'logits'; logits: Float32Array }
  /** The k largest logits, best first (ties: lower id first), and their token ids. */
  | { kind: 'topk'; values: Float32Array; indices: Uint32Array };

export class GpuModel {
  readonly stats: ForwardStats = { calls: 0, submits: 0, passes: 0, dispatches: 0, readbackBytes: 0, encodeMs: 0, gpuMs: 0 };
  /** Bytes of every GPU buffer the model holds: weights, KV cache, activations (allocated once, at load). */
  readonly allocatedBytes: number;
  /** Weight bytes one decode token reads: every layer's tensors, the final norm, the LM head, one embedding row. */
  readonly decodeWeightBytes: number;
  private busy = false;
  private readonly idsScratch: Uint32Array<ArrayBuffer>;
  private topK = 0;

  private constructor(
    readonly gpu: Gpu,
    readonly spec: ModelSpec,
    readonly contextLength: number,
    private readonly state: RunState,
    private readonly prefill: Plan,
    private readonly decode: Plan,
    private readonly buffers: GPUBuffer[],
    private readonly profiler: Profiler | undefined,
    /** The matmul kernels' shapes in use: tuned for this device when loaded with `tune`, else the defaults. */
    readonly kernelShapes: KernelShapes,
    weights: GpuWeights,
  ) {
    this.idsScratch = new Uint32Array(prefill.maxT);
    this.allocatedBytes = buffers.reduce((sum, b) => sum + b.size, 0);
    this.decodeWeightBytes = weightBytesPerToken(spec, weights);
  }

  static async create(gpu: Gpu, spec: ModelSpec, weights: CanonicalWeights, options: GpuModelOptions = {}): Promise<GpuModel> {
    const contextLength = options.contextLength ?? spec.maxContext;
    if (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > spec.maxContext) {
      throw new ShapeError('model', `contextLength must be an integer in [1, ${spec.maxContext}], got ${contextLength}`);
    }
    const chunk = Math.min(options.prefillChunk ?? 128, contextLength);
    const dtype = weights.embedding.dtype === 'f16' && weights.lmHead.dtype === 'f16' ? 'f16' : 'f32';
    checkModelFits(gpu, spec, dtype, contextLength, chunk);

    const buffers: GPUBuffer[] = [];
    const track = <T extends Tensor>(t: T): T => (buffers.push(t.buffer), t);
    const gpuWeights = await uploadWeights(gpu, spec, weights, contextLength, track, options.quantize);
    const topKCapacity = Math.min(options.topKCapacity ?? 0, spec.vocabSize);
    const state = await createRunState(gpu, spec, contextLength, chunk, track, buffers, topKCapacity);
    const up = gpuWeights.layers[0]?.wGateUp ?? gpuWeights.layers[0]?.wUp;
    const tune = options.tune === true ? {} : options.tune || undefined;
    const shapes: KernelShapes =
      tune && up
        ? {
            matvec: await tuneMatvec(gpu, up.shape[0], up.shape[1], up.dtype, tune),
            tile: await tuneTiled(gpu, chunk, up.shape[0], up.shape[1], up.dtype, tune),
          }
        : { matvec: DEFAULT_MATVEC, tile: DEFAULT_TILE };
    const prefill = await preparePlan(gpu, spec, gpuWeights, state, chunk, shapes);
    const decode = await preparePlan(gpu, spec, gpuWeights, state, 1, shapes);
    const profiler = options.profile && gpu.features.timestampQuery ? await createProfiler(gpu, buffers) : undefined;
    return new GpuModel(gpu, spec, contextLength, state, prefill, decode, buffers, profiler, shapes, gpuWeights);
  }

  /** Positions of the KV cache that hold processed tokens. */
  get cachedLength(): number {
    return this.state.kv.length;
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
   * logits of the last token. Prefill goes in chunks of at most the prefill size, one submit each.
   */
  async forward(tokens: ArrayLike<number>, read: ForwardRead = 'token', k = 0): Promise<ForwardResult> {
    const { gpu, spec, state } = this;
    if (read === 'topk') this.setTopK(k);
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
      for (let done = 0; done < tokens.length; ) {
        const plan = tokens.length - done === 1 ? this.decode : this.prefill;
        const T = Math.min(plan.maxT, tokens.length - done);
        const pos = start + done;
        const isLast = done + T === tokens.length;
        for (let i = 0; i < T; i++) this.idsScratch[i] = tokens[done + i];
        gpu.device.queue.writeBuffer(state.ids.buffer, 0, this.idsScratch, 0, T);
        this.encodeAndSubmit(plan, T, pos, isLast ? read : undefined);
        if (this.profiler) this.stats.gpuMs += await readGpuMs(gpu, this.profiler);
        done += T;
        state.kv.length = pos + T;
      }
      const result = await this.readResult(read);
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

  /**
   * The logits [V] the last forward call computed (of its last token), read back without running again:
   * for when a top-k read turns out not to be enough (a tie at the cut).
   */
  async readLastLogits(): Promise<Float32Array> {
    const { device } = this.gpu;
    const encoder = device.createCommandEncoder({ label: 'read logits' });
    encoder.copyBufferToBuffer(this.state.logits.buffer, 0, this.state.logitsReadback, 0, this.state.logitsReadback.size);
    device.queue.submit([encoder.finish()]);
    this.stats.readbackBytes += this.state.logitsReadback.size;
    return this.mapStaging(this.state.logitsReadback, (m) => new Float32Array(m.slice(0)));
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
    for (const plan of [this.prefill, this.decode]) for (const step of plan.select.topk) step.update(k, 0);
    this.topK = k;
  }

  /** Embedding and every layer in one compute pass, then (on the last chunk) the LM head and a copy to staging. */
  private encodeAndSubmit(plan: Plan, T: number, pos: number, read: ForwardRead | undefined): void {
    const t0 = performance.now();
    const { device } = this.gpu;
    const { state, stats, profiler } = this;
    if (plan.applied.T !== T || plan.applied.pos !== pos) {
      plan.embed.update(T, pos);
      for (const layer of plan.layers) for (const step of layer) step.update(T, pos);
      plan.applied = { T, pos };
    }
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
    const body = [plan.embed, ...plan.layers.flat()];
    const tail = read ? [...plan.head, ...plan.select[read]] : [];
    if (plan.maxT === 1 || !read) {
      encodePass('forward', [...body, ...tail], true, true);
    } else {
      encodePass('layers', body, true, false);
      const rowBytes = this.spec.hiddenSize * 4;
      encoder.copyBufferToBuffer(state.x.buffer, (T - 1) * rowBytes, state.last.buffer, 0, rowBytes);
      encodePass('head', tail, false, true);
    }
    if (read) {
      if (read === 'topk' && state.topValues && state.topIndices && state.topKReadback) {
        const bytes = 4 * this.topK;
        encoder.copyBufferToBuffer(state.topValues.buffer, 0, state.topKReadback, 0, bytes);
        encoder.copyBufferToBuffer(state.topIndices.buffer, 0, state.topKReadback, state.topKReadback.size / 2, bytes);
        stats.readbackBytes += 2 * bytes;
      } else {
        const staging = read === 'token' ? state.tokenReadback : state.logitsReadback;
        const source = read === 'token' ? state.next.buffer : state.logits.buffer;
        encoder.copyBufferToBuffer(source, 0, staging, 0, staging.size);
        stats.readbackBytes += staging.size;
      }
    }
    if (profiler) encoder.resolveQuerySet(profiler.querySet, 0, 2, profiler.resolve, 0);
    if (profiler) encoder.copyBufferToBuffer(profiler.resolve, 0, profiler.readback, 0, 16);
    device.queue.submit([encoder.finish()]);
    stats.submits++;
    stats.encodeMs += performance.now() - t0;
  }

  private async readResult(read: ForwardRead): Promise<ForwardResult> {
    const { state } = this;
    switch (read) {
      case 'token':
        return { kind: 'token', token: await this.mapStaging(state.tokenReadback, (m) => new Uint32Array(m, 0, 1)[0]) };
      case 'logits':
        return { kind: 'logits', logits: await this.mapStaging(state.logitsReadback, (m) => new Float32Array(m.slice(0))) };
      case 'topk': {
        const staging = state.topKReadback;
        if (!staging) throw new ShapeError('model', 'this model was loaded without topKCapacity');
        const bytes = 4 * this.topK;
        return this.mapStaging(staging, (m) => ({
          kind: 'topk',
          values: new Float32Array(m.slice(0, bytes)),
          indices: new Uint32Array(m.slice(staging.size / 2, staging.size / 2 + bytes)),
        }));
      }
    }
  }

  private async mapStaging<T>(staging: GPUBuffer, read: (mapped: ArrayBuffer) => T): Promise<T> {
    const { gpu } = this;
    await Promise.race([staging.mapAsync(GPUMapMode.READ), gpu.lost.then((e) => Promise.reject(e))]);
    try {
      return read(staging.getMappedRange());
    } finally {
      staging.unmap();
    }
  }

  destroy(): void {
    for (const plan of [this.prefill, this.decode]) {
      const steps = [plan.embed, ...plan.layers.flat(), ...plan.head, ...plan.select.token, ...plan.select.topk];
      for (const step of steps) step.dispatch.dispose();
    }
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
  }
}

function weightBytesPerToken(spec: ModelSpec, w: GpuWeights): number {
  const bytes = (t: Tensor | undefined) => (t ? tensorBytes(t.dtype, t.shape) : 0);
  let total = bytes(w.finalNorm) + bytes(w.finalNormBias) + bytes(w.lmHead) + bytes(w.embedding) / spec.vocabSize;
  for (const layer of w.layers) for (const t of Object.values<Tensor>(layer)) total += bytes(t);
  return total;
}

async function createProfiler(gpu: Gpu, buffers: GPUBuffer[]): Promise<Profiler> {
  const querySet = gpu.device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = await createBuffer(gpu, 'timestamps', 16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
  const readback = await createBuffer(gpu, 'timestamps readback', 16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  buffers.push(resolve, readback);
  return { querySet, resolve, readback };
}

async function readGpuMs(gpu: Gpu, profiler: Profiler): Promise<number> {
  await Promise.race([profiler.readback.mapAsync(GPUMapMode.READ), gpu.lost.then((e) => Promise.reject(e))]);
  const [start, end] = new BigUint64Array(profiler.readback.getMappedRange(), 0, 2);
  profiler.readback.unmap();
  return end > start ? Number(end - start) / 1e6 : 0;
}

/**
 * Checks every GPU allocation the model will make against the device limits, from the config alone, so a
 * model that cannot run is refused before its weights are downloaded or anything is allocated.
 */
export function checkModelFits(gpu: Gpu, spec: ModelSpec, dtype: WeightDtype, contextLength: number, prefillChunk: number): void {
  const { maxBufferSize, maxStorageBufferBindingSize } = gpu.device.limits;
  const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
  const limitName = limit === maxBufferSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  const check = (what: string, bytes: number) => {
    if (bytes > limit) throw new LimitsExceededError(what, bytes, limit, limitName);
  };
  const matrices = (tensors: Record<string, CanonicalTensor>) => Object.values(tensors).filter((t) => t.kind === 'matrix' && t.present(spec));
  for (const t of matrices(MODEL_TENSORS)) {
    // The embedding kernel adds position embeddings in f32.
    const bytes = tensorBytes(t === MODEL_TENSORS.positionEmbedding ? 'f32' : dtype, canonicalShape(t, spec));
    check(`the ${t.label}`, bytes);
  }
  for (const t of matrices(LAYER_TENSORS)) check(`a layer's ${t.label}`, tensorBytes(dtype, canonicalShape(t, spec)));
  const { hiddenSize: D, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I, vocabSize: V } = spec;
  const qkvRows = (nH + 2 * nKV) * hd;
  const upRows = spec.gatedMlp ? 2 * I : I;
  check('one layer\'s KV cache', tensorBytes('f32', kvCacheShape(spec, contextLength)));
  check('the activations', tensorBytes('f32', [prefillChunk, Math.max(D, qkvRows, upRows)]));
  check('the logits', tensorBytes('f32', [V]));
}

async function uploadWeights(
  gpu: Gpu,
  spec: ModelSpec,
  w: CanonicalWeights,
  contextLength: number,
  track: (t: Tensor) => Tensor,
  quant: QuantDType | undefined,
): Promise<GpuWeights> {
  const up = async (label: string, t: WeightTensor) => track(await uploadTensor(gpu, label, t.dtype, t.shape, t.data));
  /** A weight matrix read by matmul: quantized to `as` when asked, block by block, as it is uploaded. */
  const matrix = async (label: string, t: WeightTensor, as = quant) =>
    as ? track(await uploadTensor(gpu, label, as, t.shape, quantize(as, t.data, t.shape))) : up(label, t);
  const opt = async (label: string, t: WeightTensor | undefined) => (t ? up(label, t) : undefined);

  const embedding = await up('embedding', w.embedding);
  const layers: GpuLayer[] = [];
  for (const [i, l] of w.layers.entries()) {
    const label = (name: keyof CanonicalLayer) => `layer ${i} ${LAYER_TENSORS[name].label}`;
    layers.push(await mapLayer(l, (name, t) => (LAYER_TENSORS[name].kind === 'matrix' ? matrix(label(name), t) : up(label(name), t))));
  }
  let ropeTableTensor: Tensor | undefined;
  if (spec.rope) {
    const invFreq = ropeInvFreq({ rotaryDim: spec.rope.rotaryDim, theta: spec.rope.theta, scaling: spec.rope.scaling ?? undefined });
    const table = ropeTable(invFreq, contextLength);
    ropeTableTensor = track(await uploadTensor(gpu, 'rope cos/sin', 'f32', [contextLength, spec.rope.rotaryDim / 2, 2], table));
  }
  return {
    embedding,
    positionEmbedding: w.positionEmbedding && (await up('position embedding', toF32(w.positionEmbedding))),
    layers,
    finalNorm: await up('final norm', w.finalNorm),
    finalNormBias: await opt('final norm bias', w.finalNormBias),
    // A tied head shares the embedding, unless quantizing: the gather reads f16/f32, the head quantized.
    lmHead: w.lmHead === w.embedding && !quant ? embedding : await matrix('LM head', w.lmHead, quant === 'q4' ? 'q8' : quant),
    ropeTable: ropeTableTensor,
  };
}

/** The embedding kernel adds position embeddings in f32. */
function toF32(t: WeightTensor): F32Tensor {
  if (t.dtype === 'f32') return t;
  const data = new Float32Array(t.data.length);
  for (let i = 0; i < data.length; i++) data[i] = f16BitsToF32(t.data[i]);
  return { dtype: 'f32', shape: t.shape, data };
}

async function createRunState(
  gpu: Gpu,
  spec: ModelSpec,
  contextLength: number,
  chunk: number,
  track: (t: Tensor) => Tensor,
  buffers: GPUBuffer[],
  topKCapacity: number,
): Promise<RunState> {
  const { hiddenSize: D, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I, vocabSize: V } = spec;
  const t = async (label: string, shape: number[], dtype: DType = 'f32') => track(await createTensor(gpu, label, dtype, shape));
  const staging = async (label: string, size: number) => {
    const b = await createBuffer(gpu, label, size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    buffers.push(b);
    return b;
  };
  const kv = await createKvCache(gpu, spec, contextLength);
  for (const c of [...kv.keys, ...kv.values]) track(c);
  return {
    ids: await t('ids', [chunk], 'u32'),
    x: await t('x', [chunk, D]),
    xn: spec.norm.kind === 'layer' ? await t('xn', [chunk, D]) : undefined,
    qkv: await t('qkv', [chunk, (nH + 2 * nKV) * hd]),
    q: await t('q', [chunk, nH, hd]),
    attn: await t('attn', [chunk, nH, hd]),
    up: await t('up', [chunk, spec.gatedMlp ? 2 * I : I]),
    act: spec.gatedMlp ? undefined : await t('act', [chunk, I]),
    last: await t('last row', [1, D]),
    lastNorm: spec.norm.kind === 'layer' ? await t('last row normed', [1, D]) : undefined,
    logits: await t('logits', [1, V]),
    next: await t('next token', [1], 'u32'),
    topValues: topKCapacity ? await t('top-k values', [topKCapacity]) : undefined,
    topIndices: topKCapacity ? await t('top-k indices', [topKCapacity], 'u32') : undefined,
    tokenReadback: await staging('token readback', 4),
    logitsReadback: await staging('logits readback', V * 4),
    topKReadback: topKCapacity ? await staging('top-k readback', 8 * topKCapacity) : undefined,
    kv,
  };
}

/** The same buffer seen with fewer leading rows: decode launches bind the first row of each activation. */
function rows(t: Tensor, n: number): Tensor {
  return { ...t, shape: [n, ...t.shape.slice(1)] };
}

/** A 3-D [T, nH, hd] activation seen as the 2-D [T, nH·hd] input of a matmul. */
function flatten(t: Tensor): Tensor {
  return { ...t, shape: [t.shape[0], t.shape[1] * t.shape[2]] };
}

/** The matmul kernels' shapes every projection uses (tuned for the device, or the defaults). */
export interface KernelShapes {
  matvec: MatvecShape;
  tile: TileShape;
}

async function preparePlan(gpu: Gpu, spec: ModelSpec, w: GpuWeights, s: RunState, maxT: number, shapes: KernelShapes): Promise<Plan> {
  const shapeArgs = { matvecShape: shapes.matvec, tileShape: shapes.tile };
  const x = rows(s.x, maxT);
  const qkv = rows(s.qkv, maxT);
  const q = rows(s.q, maxT);
  const attn = rows(s.attn, maxT);
  const up = rows(s.up, maxT);
  const contextLength = s.kv.contextLength;
  const { numHeads: nHeads, numKvHeads: nKvHeads, headDim } = spec;

  // Each kind of launch follows T (and pos) through its own parameter names.
  const byRows = (d: Launch<{ rows: number }>): Step => ({ dispatch: d, update: (T) => d.set({ rows: T }) });
  const byM = (d: Launch<{ M: number }>): Step => ({ dispatch: d, update: (T) => d.set({ M: T }) });
  const byTPos = (d: Launch<{ T: number; pos: number }>): Step => ({ dispatch: d, update: (T, pos) => d.set({ T, pos }) });
  const fixed = (d: Step['dispatch']): Step => ({ dispatch: d, update: () => {} });
  /**
   * `w`·norm(input) (+ bias): one launch with RMSNorm fused into the projection's input, or (LayerNorm) a
   * norm launch into `normed` and the projection of that.
   */
  const normThenProject = async (input: Tensor, weight: Tensor, bias: Tensor | undefined, normed: Tensor | undefined, projection: Omit<MatmulArgs, 'x'>): Promise<Step[]> => {
    if (spec.norm.kind === 'rms') return [byM(await prepareMatmul(gpu, { ...projection, x: input, norm: { weight, eps: spec.norm.eps } }))];
    if (!normed) throw new ShapeError('model', 'LayerNorm models need a buffer for the normalised rows');
    const norm = await prepareNorm(gpu, { x: input, out: normed, weight, bias, kind: 'layer', eps: spec.norm.eps });
    return [byRows(norm), byM(await prepareMatmul(gpu, { ...projection, x: normed }))];
  };
  const xn = s.xn && rows(s.xn, maxT);

  const embed = await prepareEmbedding(gpu, { ids: rows(s.ids, maxT), table: w.embedding, out: x, posTable: w.positionEmbedding });
  const layers: Step[][] = [];
  for (const [l, L] of w.layers.entries()) {
    const k = s.kv.keys[l];
    const v = s.kv.values[l];
    const wUp = L.wGateUp ?? L.wUp;
    if (!wUp) throw new ShapeError('model', `layer ${l} has no MLP up projection`);
    const steps: Step[] = [
      ...(await normThenProject(x, L.attnNorm, L.attnNormBias, xn, { w: L.wqkv, bias: L.bqkv, y: qkv, ...shapeArgs })),
      byTPos(
        await prepareRope(gpu, {
          qkv, q, kCache: k, vCache: v, table: w.ropeTable, nHeads, nKvHeads, headDim,
          rotaryDim: spec.rope?.rotaryDim ?? 0, maxContext: contextLength,
          qNorm: L.qNorm, kNorm: L.kNorm, normEps: spec.norm.eps, T: maxT, pos: 0,
        }),
      ),
      byTPos(
        await prepareAttention(gpu, {
          q, kCache: k, vCache: v, out: attn, nHeads, nKvHeads, headDim, maxContext: contextLength,
          T: maxT, pos: 0, scale: spec.attentionScale,
        }),
      ),
      byM(await prepareMatmul(gpu, { x: flatten(attn), w: L.wo, bias: L.bo, y: x, accumulate: true, ...shapeArgs })),
      ...(await normThenProject(x, L.mlpNorm, L.mlpNormBias, xn, { w: wUp, bias: L.bGateUp ?? L.bUp, y: up, ...shapeArgs })),
      // SwiGLU is applied as the down projection reads its input; GELU (GPT-2) is a launch of its own.
      ...(s.act
        ? [
            byRows(await prepareGelu(gpu, { x: up, out: rows(s.act, maxT) })),
            byM(await prepareMatmul(gpu, { x: rows(s.act, maxT), w: L.wDown, bias: L.bDown, y: x, accumulate: true, ...shapeArgs })),
          ]
        : [byM(await prepareMatmul(gpu, { x: up, w: L.wDown, bias: L.bDown, y: x, accumulate: true, ...shapeArgs, swiglu: true }))]),
    ];
    layers.push(steps);
  }
  const lastRow = maxT === 1 ? x : s.last;
  // The head always runs on one row, whatever the chunk.
  const head = (await normThenProject(lastRow, w.finalNorm, w.finalNormBias, s.lastNorm, { w: w.lmHead, y: s.logits, ...shapeArgs })).map((step) => fixed(step.dispatch));
  const topk =
    s.topValues && s.topIndices ? await prepareTopK(gpu, { logits: s.logits, values: s.topValues, indices: s.topIndices }) : undefined;
  const select = {
    token: [fixed(await prepareArgmax(gpu, { logits: s.logits, out: s.next }))],
    topk: topk ? [{ dispatch: topk, update: (k: number) => topk.set({ k }) }] : [],
    logits: [],
  };
  return {
    maxT,
    embed: { dispatch: embed, update: (T, pos) => embed.set({ rows: T, pos }) },
    layers,
    head,
    select,
    applied: { T: maxT, pos: 0 },
  };
}
