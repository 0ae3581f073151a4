/**
 * BERT on the GPU: embeddings (word + position + token type, LayerNorm), post-LN encoder layers (fused QKV
 * projection, bidirectional attention over the packed batch, output projection added to the residual,
 * LayerNorm; GELU MLP added to the residual, LayerNorm) and the MLM head on chosen rows.
 *
 * Inputs of one call are packed back to back (no padding: the attention kernel keeps each sequence to its own
 * keys), so a pass holds up to maxBatchTokens tokens whatever their lengths. Every buffer is allocated at load
 * for that many tokens; a call writes ids and the attention's block table, sets row counts, and submits once
 * per pass. Activations per token: (6·hidden + 2·intermediate) f32, plus the hidden states' readback copy.
 */
import type { Gpu } from '../../gpu/device';
import type { KernelDispatch } from '../../gpu/dispatch';
import { NumericalError } from '../../gpu/errors';
import { createBuffer, createTensor, type Tensor } from '../../gpu/tensor';
import { prepareEmbedding } from '../../kernels/embedding/embedding';
import { prepareEncoderAttention, type EncoderAttentionLaunch } from '../../kernels/encoder_attention/encoder_attention';
import { prepareGelu } from '../../kernels/gelu/gelu';
import { prepareMatmul } from '../../kernels/matmul/matmul';
import { prepareNorm } from '../../kernels/norm/norm';
import { InvalidRequestError } from '../../chat/messages';
import { EngineDisposedError } from '../../engine/errors';
import type { BertConfig } from './config';
import type { EncoderInput, EncoderModel } from './encoder-model';

/** Rows the MLM head computes per pass (masked positions of one input). */
export const MLM_ROWS = 16;

export interface LayerNormWeights {
  weight: Tensor;
  bias: Tensor;
}

export interface Linear {
  weight: Tensor;
  bias: Tensor;
}

/** The weights on the GPU: matrices f32 or f16, norms and biases f32. */
export interface EncoderWeights {
  /** [vocab, D]: the embedding gather's table and the MLM decoder (tied). */
  word: Tensor;
  /** [maxPositions · typeVocab, D] f32: position p's embedding plus token type y's, at row p·typeVocab + y. */
  positionType: Tensor;
  embeddingNorm: LayerNormWeights;
  layers: {
    /** [3D, D]: query, key and value rows stacked, with their biases. */
    qkv: Linear;
    attentionOutput: Linear;
    attentionNorm: LayerNormWeights;
    intermediate: Linear;
    output: Linear;
    outputNorm: LayerNormWeights;
  }[];
  mlm?: {
    transform: Linear;
    transformNorm: LayerNormWeights;
    /** [vocab, D]: the checkpoint's own decoder weight when it has one, else `word`. */
    decoder: Tensor;
    bias: Tensor;
  };
}

/** Every tensor of the weights, for counting and destroying. */
export function weightTensors(w: EncoderWeights): Tensor[] {
  const linear = (l: Linear) => [l.weight, l.bias];
  const norm = (n: LayerNormWeights) => [n.weight, n.bias];
  const tensors = [w.word, w.positionType, ...norm(w.embeddingNorm)];
  for (const l of w.layers) tensors.push(...linear(l.qkv), ...linear(l.attentionOutput), ...norm(l.attentionNorm), ...linear(l.intermediate), ...linear(l.output), ...norm(l.outputNorm));
  if (w.mlm) {
    tensors.push(...linear(w.mlm.transform), ...norm(w.mlm.transformNorm), w.mlm.bias);
    if (w.mlm.decoder !== w.word) tensors.push(w.mlm.decoder);
  }
  return tensors;
}

/** A launch whose row count follows the call: matmul's M, the others' rows. */
interface RowLaunch {
  dispatch: KernelDispatch<string>;
  field: 'M' | 'rows';
}

interface Mlm {
  rows: Tensor;
  launches: RowLaunch[];
  logits: Tensor;
  readback: GPUBuffer;
}

export class GpuEncoder implements EncoderModel {
  private queue: Promise<unknown> = Promise.resolve();
  private destroyed = false;
  /** A pass's ids on the host, reused by every call. */
  private readonly words: Uint32Array<ArrayBuffer>;
  private readonly positionTypes: Uint32Array<ArrayBuffer>;

  private constructor(
    private readonly gpu: Gpu,
    readonly config: BertConfig,
    readonly maxBatchTokens: number,
    readonly gpuBytes: number,
    private readonly weights: EncoderWeights,
    private readonly activations: Tensor[],
    private readonly wordIds: Tensor,
    private readonly positionTypeIds: Tensor,
    private readonly hidden: Tensor,
    private readonly readback: GPUBuffer,
    /** Every launch of a pass in order; the attention launch appears once per layer. */
    private readonly pass: (KernelDispatch<string> | EncoderAttentionLaunch)[],
    private readonly rowLaunches: RowLaunch[],
    private readonly attention: EncoderAttentionLaunch,
    private readonly mlm: Mlm | undefined,
  ) {
    this.words = new Uint32Array(maxBatchTokens);
    this.positionTypes = new Uint32Array(maxBatchTokens);
  }

  /** Prepares every launch over buffers for `maxBatchTokens` tokens; takes ownership of `weights`. */
  static async create(gpu: Gpu, config: BertConfig, weights: EncoderWeights, maxBatchTokens: number, erf: boolean): Promise<GpuEncoder> {
    const { hiddenSize: D, intermediateSize: I, heads, headDim, layerNormEps: eps, vocabSize: V } = config;
    const T = maxBatchTokens;
    const owned: Tensor[] = [];
    const buffers: GPUBuffer[] = [];
    const tensor = async (label: string, dtype: 'f32' | 'u32', shape: number[]) => {
      const t = await createTensor(gpu, label, dtype, shape);
      owned.push(t);
      return t;
    };
    const launches: KernelDispatch<string>[] = [];
    let attention: EncoderAttentionLaunch | undefined;
    try {
      const wordIds = await tensor('encoder word ids', 'u32', [T]);
      const positionTypeIds = await tensor('encoder position-type ids', 'u32', [T]);
      const positionRows = await tensor('encoder position rows', 'f32', [T, D]);
      const h = await tensor('encoder hidden', 'f32', [T, D]);
      const a = await tensor('encoder residual', 'f32', [T, D]);
      const qkv = await tensor('encoder qkv', 'f32', [T, 3 * D]);
      const inner = await tensor('encoder intermediate', 'f32', [T, I]);
      const activated = await tensor('encoder gelu', 'f32', [T, I]);
      const readback = await createBuffer(gpu, 'encoder hidden readback', 4 * T * D, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
      buffers.push(readback);

      const rowLaunches: RowLaunch[] = [];
      const add = <F extends string>(dispatch: KernelDispatch<F>, field: 'M' | 'rows'): KernelDispatch<F> => {
        launches.push(dispatch as KernelDispatch<string>);
        rowLaunches.push({ dispatch: dispatch as KernelDispatch<string>, field });
        return dispatch;
      };
      const norm = (x: Tensor, out: Tensor, n: LayerNormWeights) => prepareNorm(gpu, { x, out, weight: n.weight, bias: n.bias, kind: 'layer', eps });
      const pass: (KernelDispatch<string> | EncoderAttentionLaunch)[] = [];
      const push = (d: KernelDispatch<string> | EncoderAttentionLaunch) => pass.push(d);

      push(add(await prepareEmbedding(gpu, { ids: positionTypeIds, table: weights.positionType, out: positionRows }), 'rows'));
      push(add(await prepareEmbedding(gpu, { ids: wordIds, table: weights.word, posTable: positionRows, out: a }), 'rows'));
      push(add(await norm(a, h, weights.embeddingNorm), 'rows'));
      attention = await prepareEncoderAttention(gpu, { qkv, out: a, nHeads: heads, headDim });
      for (const l of weights.layers) {
        push(add(await prepareMatmul(gpu, { x: h, w: l.qkv.weight, bias: l.qkv.bias, y: qkv }), 'M'));
        push(attention);
        push(add(await prepareMatmul(gpu, { x: a, w: l.attentionOutput.weight, bias: l.attentionOutput.bias, y: h, accumulate: true }), 'M'));
        push(add(await norm(h, a, l.attentionNorm), 'rows'));
        push(add(await prepareMatmul(gpu, { x: a, w: l.intermediate.weight, bias: l.intermediate.bias, y: inner }), 'M'));
        push(add(await prepareGelu(gpu, { x: inner, out: activated, erf }), 'rows'));
        push(add(await prepareMatmul(gpu, { x: activated, w: l.output.weight, bias: l.output.bias, y: a, accumulate: true }), 'M'));
        push(add(await norm(a, h, l.outputNorm), 'rows'));
      }

      let mlm: Mlm | undefined;
      if (weights.mlm) {
        const m = weights.mlm;
        const rows = await tensor('mlm rows', 'f32', [MLM_ROWS, D]);
        const transformed = await tensor('mlm transform', 'f32', [MLM_ROWS, D]);
        const activatedRows = await tensor('mlm gelu', 'f32', [MLM_ROWS, D]);
        const normed = await tensor('mlm norm', 'f32', [MLM_ROWS, D]);
        const logits = await tensor('mlm logits', 'f32', [MLM_ROWS, V]);
        const mlmReadback = await createBuffer(gpu, 'mlm logits readback', 4 * MLM_ROWS * V, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
        buffers.push(mlmReadback);
        const mlmLaunches: RowLaunch[] = [
          { dispatch: await prepareMatmul(gpu, { x: rows, w: m.transform.weight, bias: m.transform.bias, y: transformed }), field: 'M' },
          { dispatch: await prepareGelu(gpu, { x: transformed, out: activatedRows, erf }), field: 'rows' },
          { dispatch: await norm(activatedRows, normed, m.transformNorm), field: 'rows' },
          { dispatch: await prepareMatmul(gpu, { x: normed, w: m.decoder, bias: m.bias, y: logits }), field: 'M' },
        ];
        launches.push(...mlmLaunches.map((l) => l.dispatch));
        mlm = { rows, launches: mlmLaunches, logits, readback: mlmReadback };
      }
      const gpuBytes = [...weightTensors(weights), ...owned].reduce((s, t) => s + t.buffer.size, 0) + buffers.reduce((s, b) => s + b.size, 0);
      return new GpuEncoder(gpu, config, maxBatchTokens, gpuBytes, weights, owned, wordIds, positionTypeIds, h, readback, pass, rowLaunches, attention, mlm);
    } catch (e) {
      for (const d of launches) d.dispose();
      attention?.dispose();
      for (const t of owned) t.buffer.destroy();
      for (const b of buffers) b.destroy();
      for (const t of weightTensors(weights)) t.buffer.destroy();
      throw e;
    }
  }

  /** Runs calls one at a time: they share every buffer. */
  private serialise<T>(run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private checkInput(input: EncoderInput, at: string): void {
    const { vocabSize, typeVocabSize, maxPositions } = this.config;
    const limit = Math.min(maxPositions, this.maxBatchTokens);
    const { ids, typeIds } = input;
    if (!Array.isArray(ids) || ids.length === 0) throw new InvalidRequestError(`${at}.ids must be a non-empty array of token ids`, `${at}.ids`);
    if (ids.length > limit) {
      throw new InvalidRequestError(`${at}.ids has ${ids.length} tokens; this model takes at most ${limit} (max_position_embeddings ${maxPositions}, ${this.maxBatchTokens} per pass)`, `${at}.ids`);
    }
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new InvalidRequestError(`${at}.ids[${i}] = ${id} is not a token id of this model's vocabulary (0..${vocabSize - 1})`, `${at}.ids`);
    });
    if (typeIds === undefined) return;
    if (!Array.isArray(typeIds) || typeIds.length !== ids.length) throw new InvalidRequestError(`${at}.typeIds must have one entry per id (${ids.length})`, `${at}.typeIds`);
    typeIds.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= typeVocabSize) throw new InvalidRequestError(`${at}.typeIds[${i}] = ${t} is not a token type of this model (0..${typeVocabSize - 1})`, `${at}.typeIds`);
    });
  }

  private checkUsable(): void {
    if (this.destroyed) throw new EngineDisposedError('This encoder has been destroyed. Load it again with loadEncoderModel().');
    if (this.gpu.lostError) throw this.gpu.lostError;
  }

  /** Writes the pass's ids and row counts and records its launches; the hidden states end in `hidden`. */
  private recordPass(encoder: GPUCommandEncoder, inputs: readonly EncoderInput[]): number {
    const { words, positionTypes } = this;
    const types = this.config.typeVocabSize;
    let tokens = 0;
    for (const input of inputs) {
      input.ids.forEach((id, p) => {
        words[tokens] = id;
        positionTypes[tokens] = p * types + (input.typeIds?.[p] ?? 0);
        tokens++;
      });
    }
    this.gpu.device.queue.writeBuffer(this.wordIds.buffer, 0, words, 0, tokens);
    this.gpu.device.queue.writeBuffer(this.positionTypeIds.buffer, 0, positionTypes, 0, tokens);
    for (const { dispatch, field } of this.rowLaunches) dispatch.set({ [field]: tokens });
    this.attention.setLengths(inputs.map((x) => x.ids.length));
    const pass = encoder.beginComputePass();
    for (const launch of this.pass) launch.encode(pass);
    pass.end();
    return tokens;
  }

  private async read(buffer: GPUBuffer, bytes: number): Promise<Float32Array> {
    await Promise.race([buffer.mapAsync(GPUMapMode.READ, 0, bytes), this.gpu.lost.then((e) => Promise.reject(e))]);
    try {
      return new Float32Array(buffer.getMappedRange(0, bytes).slice(0));
    } finally {
      buffer.unmap();
    }
  }

  private takeError(): void {
    const error = this.gpu.takeUncapturedError();
    if (error) throw error;
  }

  encode(inputs: readonly EncoderInput[]): Promise<Float32Array[]> {
    this.checkUsable();
    inputs.forEach((x, i) => this.checkInput(x, `inputs[${i}]`));
    return this.serialise(async () => {
      const D = this.config.hiddenSize;
      const results: Float32Array[] = [];
      for (let first = 0; first < inputs.length; ) {
        // As many inputs, in order, as one pass holds.
        let last = first;
        let tokens = 0;
        while (last < inputs.length && tokens + inputs[last].ids.length <= this.maxBatchTokens) tokens += inputs[last++].ids.length;
        this.checkUsable();
        const encoder = this.gpu.device.createCommandEncoder();
        this.recordPass(encoder, inputs.slice(first, last));
        encoder.copyBufferToBuffer(this.hidden.buffer, 0, this.readback, 0, 4 * tokens * D);
        this.gpu.device.queue.submit([encoder.finish()]);
        const hidden = await this.read(this.readback, 4 * tokens * D);
        this.takeError();
        let at = 0;
        for (let i = first; i < last; i++) {
          const rows = hidden.slice(at * D, (at + inputs[i].ids.length) * D);
          const bad = rows.findIndex((v) => !Number.isFinite(v));
          if (bad >= 0) throw new NumericalError('encode', Math.floor(bad / D));
          results.push(rows);
          at += inputs[i].ids.length;
        }
        first = last;
      }
      return results;
    });
  }

  maskedLmLogits(input: EncoderInput, positions: readonly number[]): Promise<Float32Array[]> {
    this.checkUsable();
    const mlm = this.mlm;
    if (!mlm) throw new InvalidRequestError('this checkpoint has no masked-LM head (cls.predictions.*): load a BertForMaskedLM model for fill-mask', 'model');
    this.checkInput(input, 'input');
    if (positions.length > input.ids.length) throw new InvalidRequestError(`${positions.length} positions for an input of ${input.ids.length} tokens: at most one per token`, 'positions');
    positions.forEach((p, i) => {
      if (!Number.isInteger(p) || p < 0 || p >= input.ids.length) throw new InvalidRequestError(`positions[${i}] = ${p} is not a token index of the input (0..${input.ids.length - 1})`, 'positions');
    });
    if (positions.length === 0) return Promise.resolve([]);
    return this.serialise(async () => {
      const { hiddenSize: D, vocabSize: V } = this.config;
      const results: Float32Array[] = [];
      for (let first = 0; first < positions.length; first += MLM_ROWS) {
        this.checkUsable();
        const chunk = positions.slice(first, first + MLM_ROWS);
        const encoder = this.gpu.device.createCommandEncoder();
        // The hidden states stay on the GPU between chunks: only the first runs the encoder.
        if (first === 0) this.recordPass(encoder, [input]);
        chunk.forEach((p, i) => encoder.copyBufferToBuffer(this.hidden.buffer, 4 * p * D, mlm.rows.buffer, 4 * i * D, 4 * D));
        for (const { dispatch, field } of mlm.launches) dispatch.set({ [field]: chunk.length });
        const pass = encoder.beginComputePass();
        for (const { dispatch } of mlm.launches) dispatch.encode(pass);
        pass.end();
        encoder.copyBufferToBuffer(mlm.logits.buffer, 0, mlm.readback, 0, 4 * chunk.length * V);
        this.gpu.device.queue.submit([encoder.finish()]);
        const logits = await this.read(mlm.readback, 4 * chunk.length * V);
        this.takeError();
        chunk.forEach((p, i) => {
          const row = logits.slice(i * V, (i + 1) * V);
          if (row.some((v) => !Number.isFinite(v))) throw new NumericalError('fill-mask', p);
          results.push(row);
        });
      }
      return results;
    });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const { dispatch } of this.rowLaunches) dispatch.dispose();
    this.attention.dispose();
    for (const { dispatch } of this.mlm?.launches ?? []) dispatch.dispose();
    for (const t of this.activations) t.buffer.destroy();
    this.readback.destroy();
    this.mlm?.readback.destroy();
    for (const t of weightTensors(this.weights)) t.buffer.destroy();
  }
}
