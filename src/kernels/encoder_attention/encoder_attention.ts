/**
 * encoder_attention: bidirectional multi-head attention for encoders (BERT), over a batch of sequences packed
 * back to back: each query attends to every key of its own sequence, none of another's, with no causal mask
 * and no KV cache. It reads q, k and v from the fused QKV projection's output in place.
 *
 * Not the decoder's attention kernel with a flag: that one reads a KV cache laid out per head
 * ([nKvHeads, maxContext, headDim]) and one sequence per launch; here keys sit in the projection's rows and one
 * launch serves every sequence of the batch, so nothing is copied and no padding is computed.
 *
 * Layouts (row-major, f32; headDim a multiple of 4):
 * - qkv: [maxTokens, 3·nHeads·headDim], row t = [q | k | v] of token t, head h at h·headDim within each.
 * - out: [maxTokens, nHeads·headDim].
 * - blocks: u32 [maxTokens, 4], written per call by `setLengths`: (firstRow, rows, keyStart, keyCount).
 */
import encoderAttentionWgsl from './encoder_attention.wgsl?raw';
import { ONLINE_SOFTMAX } from '../attention/attention';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch } from '../../gpu/dispatch';
import { LimitsExceededError, ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { createTensor, expectTensor, writeTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';

/** headDim / 4 units must fit the 64 threads that walk a value row. */
export const MAX_ENCODER_HEAD_DIM = 256;
/** Keys per step = threads per workgroup. */
const BK = 64;
/** Most query rows one workgroup serves (the kernel's private accumulators). */
const MAX_ROWS = 16;

type Field = 'nBlocks' | 'nHeads' | 'scale';

export const encoderAttentionKernel: KernelSpec<{ units: number; rows: number }, Field> = {
  name: 'encoder attention',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'qkv', kind: 'read' },
    { name: 'blocks', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  /** nBlocks: entries of `blocks` this call uses; scale: multiplier of q·k before softmax. */
  uniforms: defineUniforms({ nBlocks: 'u32', nHeads: 'u32', scale: 'f32' }),
  shader: { file: 'encoder_attention.wgsl', code: encoderAttentionWgsl },
  preludes: () => [ONLINE_SOFTMAX],
  constants: (key) => ({ UNITS: key.units, ROWS: key.rows, BK }),
};

export interface EncoderAttentionArgs {
  /** [maxTokens, 3·nHeads·headDim] f32: the fused q, k, v projections of every token. */
  qkv: Tensor;
  /** [maxTokens, nHeads·headDim] f32; rows past the call's tokens are left untouched. */
  out: Tensor;
  nHeads: number;
  headDim: number;
  /** Score scale; default 1/√headDim. */
  scale?: number;
}

/** Workgroup memory of the kernel for `rows` rows (see the shader's var<workgroup> list). */
function workgroupBytes(rows: number, units: number): number {
  return rows * units * 16 + rows * BK * 4 + 3 * rows * 4 + BK * 16;
}

/**
 * The blocks of sequences of `lengths` packed back to back, `rows` query rows at most each: u32 quadruples
 * (firstRow, rows, keyStart, keyCount).
 */
export function attentionBlocks(lengths: readonly number[], rows: number): Uint32Array {
  const blocks: number[] = [];
  let start = 0;
  for (const length of lengths) {
    for (let first = 0; first < length; first += rows) blocks.push(start + first, Math.min(rows, length - first), start, length);
    start += length;
  }
  return Uint32Array.from(blocks);
}

export class EncoderAttentionLaunch {
  private constructor(
    private readonly dispatch: KernelDispatch<Field>,
    private readonly blocks: Tensor,
    private readonly gpu: Gpu,
    private readonly rows: number,
    private readonly maxTokens: number,
  ) {}

  static async create(gpu: Gpu, a: EncoderAttentionArgs): Promise<EncoderAttentionLaunch> {
    const { nHeads, headDim } = a;
    for (const [name, v] of Object.entries({ nHeads, headDim })) {
      if (!Number.isInteger(v) || v < 1) throw new ShapeError('encoder attention', `${name}=${v} must be a positive integer`);
    }
    if (headDim % 4 !== 0 || headDim > MAX_ENCODER_HEAD_DIM) {
      throw new ShapeError('encoder attention', `headDim=${headDim} must be a multiple of 4 and at most ${MAX_ENCODER_HEAD_DIM}`);
    }
    if (a.qkv.shape.length !== 2) throw new ShapeError('encoder attention', `qkv must be [maxTokens, 3·D], got [${a.qkv.shape}]`);
    const maxTokens = a.qkv.shape[0];
    const width = nHeads * headDim;
    expectTensor('encoder attention', 'qkv', a.qkv, 'f32', [maxTokens, 3 * width]);
    expectTensor('encoder attention', 'out', a.out, 'f32', [maxTokens, width]);
    if (a.out.buffer === a.qkv.buffer) throw new ShapeError('encoder attention', 'out must not alias qkv');
    const scale = a.scale ?? 1 / Math.sqrt(headDim);
    if (!Number.isFinite(scale)) throw new ShapeError('encoder attention', `scale=${scale} must be finite`);

    const units = headDim / 4;
    const limit = gpu.device.limits.maxComputeWorkgroupStorageSize;
    let rows = MAX_ROWS;
    while (rows > 1 && workgroupBytes(rows, units) > limit) rows--;
    if (workgroupBytes(rows, units) > limit) {
      throw new LimitsExceededError('encoder attention workgroup memory', workgroupBytes(rows, units), limit, 'maxComputeWorkgroupStorageSize');
    }
    // At most one block per token: every sequence has at least one.
    const blocks = await createTensor(gpu, 'encoder attention blocks', 'u32', [maxTokens, 4]);
    try {
      const dispatch = await KernelDispatch.create(
        gpu,
        encoderAttentionKernel,
        { units, rows },
        { nBlocks: 0, nHeads, scale },
        { qkv: a.qkv.buffer, blocks: blocks.buffer, out: a.out.buffer },
        (p) => p.nBlocks * p.nHeads,
      );
      return new EncoderAttentionLaunch(dispatch, blocks, gpu, rows, maxTokens);
    } catch (e) {
      blocks.buffer.destroy();
      throw e;
    }
  }

  /** The sequences of the next call, packed from row 0 in this order (validated; writes the block table). */
  setLengths(lengths: readonly number[]): void {
    let total = 0;
    for (const length of lengths) {
      if (!Number.isInteger(length) || length < 1) throw new ShapeError('encoder attention', `sequence length ${length} must be a positive integer`);
      total += length;
    }
    if (total > this.maxTokens) throw new ShapeError('encoder attention', `${total} tokens are more than the ${this.maxTokens} rows of qkv`);
    const table = attentionBlocks(lengths, this.rows);
    if (table.length > 0) writeTensor(this.gpu, this.blocks, table);
    this.dispatch.set({ nBlocks: table.length / 4 });
  }

  get dispatches(): KernelDispatch<string>[] {
    return [this.dispatch];
  }

  encode(pass: GPUComputePassEncoder): void {
    this.dispatch.encode(pass);
  }

  dispose(): void {
    this.dispatch.dispose();
    this.blocks.buffer.destroy();
  }
}

export function prepareEncoderAttention(gpu: Gpu, a: EncoderAttentionArgs): Promise<EncoderAttentionLaunch> {
  return EncoderAttentionLaunch.create(gpu, a);
}
