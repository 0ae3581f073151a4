/**
 * quantize: f16 weights already on the GPU to the q8/q4 blocks the matmul kernels read (src/quant/format.ts),
 * one slice of a tensor per launch, written in place into the whole tensor's buffer. The load streams each
 * slice's raw halves into a staging buffer and launches this on it, so the CPU never quantizes.
 *
 * Same algorithm as the CPU quantizer (src/quant/quantize.ts, the reference). Every integer is rounded as
 * there, but sums are f32 rather than f64, so where two candidate scales nearly tie a block may differ
 * from the CPU's (about 1 block in 4000 of f16 weights, q4 and q8 alike); it then still meets the CPU's
 * rule, each block's squared error at most the absmax scale's (see quantize.wgsl).
 */
import quantizeWgsl from './quantize.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, type GridFn } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { createBuffer, numel, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';
import { QUANT_BLOCK, QUANT_INT_WORDS, QUANT_SLICE_ALIGN, quantScaleOffset, type QuantDType } from '../../quant/format';

type Field = 'count' | 'intBase' | 'scaleBase' | 'slot';

const WG = 64;

/** The CPU quantizer's trial levels and integer range (src/quant/quantize.ts), as override constants. */
const CONSTANTS: Record<QuantDType, Record<string, number>> = {
  q8: { QMAX: 127, PER_WORD: 4, LEVEL0: 126, LEVEL1: 128, LEVEL2: 130 },
  q4: { QMAX: 7, PER_WORD: 8, LEVEL0: 7.5, LEVEL1: 8, LEVEL2: 8.5 },
};

/**
 * Bit m of word m >> 5: whether the CPU quantizer's first trial, Math.floor(x_m · (−t / x_m) + 0.5) in f64
 * with t = LEVEL0, takes the extreme x_m (significand m, 1 ≤ m < 2048; scaling by 2^k changes nothing) one
 * below round(−t) = floor(−t + ½), the f64 product landing just under −t where t is a half-integer.
 */
function extremeDownTable(level: number): string {
  const words = new Uint32Array(64);
  for (let m = 1; m < 2048; m++) {
    if (Math.floor(m * (-level / m) + 0.5) < Math.floor(0.5 - level)) words[m >> 5] |= 1 << (m & 31);
  }
  return `const LEVEL0_EXTREME_DOWN = array<u32, 64>(${Array.from(words, (w) => `${w}u`).join(', ')});\n`;
}

const EXTREME_DOWN: Record<QuantDType, string> = { q8: extremeDownTable(CONSTANTS.q8.LEVEL0), q4: extremeDownTable(CONSTANTS.q4.LEVEL0) };

export const quantizeKernel: KernelSpec<QuantDType, Field> = {
  name: 'quantize',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'input', kind: 'read' },
    { name: 'out', kind: 'storage' },
    { name: 'status', kind: 'storage' },
  ],
  uniforms: defineUniforms({ count: 'u32', intBase: 'u32', scaleBase: 'u32', slot: 'u32' }),
  shader: { file: 'quantize.wgsl', code: quantizeWgsl },
  preludes: (dtype) => [{ file: '(the first trial\'s rounding of the extreme, from the CPU quantizer)', code: EXTREME_DOWN[dtype] }],
  constants: (dtype) => ({ WG, ...CONSTANTS[dtype] }),
};

/** What the status buffer holds while no slice has held an infinity or NaN. */
export const QUANTIZE_OK = 0xffffffff;

/**
 * A 16-byte buffer whose first word the kernel lowers to the `slot` of any slice holding an infinity or NaN
 * (those blocks are left unwritten): read it back once, after all launches, with `quantizeFailure`.
 */
export async function createQuantizeStatus(gpu: Gpu): Promise<GPUBuffer> {
  const buffer = await createBuffer(gpu, 'quantize status', 16, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
  gpu.device.queue.writeBuffer(buffer, 0, new Uint32Array([QUANTIZE_OK, 0, 0, 0]));
  return buffer;
}

export interface QuantizeArgs {
  /** The slice's f16 elements as raw halves, two per u32 word (element 2i in the low half), from word 0. */
  input: GPUBuffer;
  /** The whole tensor, q8 or q4; each launch writes one slice's blocks of it. */
  out: Tensor;
  status: GPUBuffer;
  /** Reported in the status buffer when a slice of this tensor holds a non-finite value. */
  slot: number;
}

export class QuantizeDispatch {
  private constructor(
    private readonly gpu: Gpu,
    private readonly dispatch: KernelDispatch<Field>,
    private readonly dtype: QuantDType,
    private readonly count: number,
    private readonly inputBytes: number,
  ) {}

  static async create(gpu: Gpu, a: QuantizeArgs): Promise<QuantizeDispatch> {
    const dtype = a.out.dtype;
    if (dtype !== 'q8' && dtype !== 'q4') throw new ShapeError('quantize', `out must be q8 or q4, got ${dtype}`);
    const count = numel(a.out.shape);
    if (count < 1) throw new ShapeError('quantize', `empty tensor [${a.out.shape}]`);
    const grid: GridFn<Field> = (p) => Math.max(1, Math.ceil(Math.ceil(p.count / QUANT_SLICE_ALIGN) / WG));
    const params = { count: Math.min(count, QUANT_SLICE_ALIGN), intBase: 0, scaleBase: quantScaleOffset(dtype, count), slot: a.slot };
    const dispatch = await KernelDispatch.create(gpu, quantizeKernel, dtype, params, { input: a.input, out: a.out.buffer, status: a.status }, grid);
    return new QuantizeDispatch(gpu, dispatch, dtype, count, a.input.size);
  }

  /**
   * Quantizes elements `offset` .. `offset + length` of the tensor, whose halves the input buffer holds
   * (from word 0), and submits. `offset` is a multiple of QUANT_SLICE_ALIGN, and so is `length` unless the
   * slice ends the tensor. Later writes to the input buffer are ordered after this launch by the queue.
   */
  run(offset: number, length: number): void {
    const end = offset + length;
    if (length < 1 || offset % QUANT_SLICE_ALIGN !== 0 || end > this.count || (end !== this.count && length % QUANT_SLICE_ALIGN !== 0)) {
      throw new ShapeError('quantize', `slice ${offset}..${end} of ${this.count} elements is not on ${QUANT_SLICE_ALIGN}-element boundaries`);
    }
    if (Math.ceil(length / 2) * 4 > this.inputBytes) {
      throw new ShapeError('quantize', `a slice of ${length} elements does not fit the ${this.inputBytes}-byte input buffer`);
    }
    this.dispatch.set({
      count: length,
      intBase: (offset / QUANT_BLOCK) * QUANT_INT_WORDS[this.dtype],
      scaleBase: quantScaleOffset(this.dtype, this.count) + offset / QUANT_SLICE_ALIGN,
    });
    const { device } = this.gpu;
    const encoder = device.createCommandEncoder({ label: 'quantize' });
    const pass = encoder.beginComputePass({ label: 'quantize' });
    this.dispatch.encode(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
  }

  dispose(): void {
    this.dispatch.dispose();
  }
}

/** The slot of the first tensor (in slot order) a launch found a non-finite value in, or undefined. */
export function quantizeFailure(statusWords: Uint32Array): number | undefined {
  return statusWords[0] === QUANTIZE_OK ? undefined : statusWords[0];
}
