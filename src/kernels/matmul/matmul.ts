/**
 * matmul: Y[M,N] = X[M,K] · W[N,K]ᵀ, optionally + bias[N] and + Y itself (the residual add, in place), with X
 * optionally RMS-normalised (the norm before a projection) or SwiGLU-combined on the way in.
 * M = 1 (decode) uses the matrix-vector kernel; larger M the workgroup-tiled one.
 */
import matmulWgsl from './matmul.wgsl?raw';
import matmulVecWgsl from './matmul_vec.wgsl?raw';
import matvecWgsl from './matvec.wgsl?raw';
import matvecVecWgsl from './matvec_vec.wgsl?raw';
import matvecBatchWgsl from './matvec_batch.wgsl?raw';
import xFusedWgsl from './x_fused.wgsl?raw';
import xInputWgsl from './x_input.wgsl?raw';
import xInputVecWgsl from './x_input_vec.wgsl?raw';
import reduceSubgroupWgsl from './reduce_subgroup.wgsl?raw';
import reduceSingleSubgroupWgsl from './reduce_single_subgroup.wgsl?raw';
import matvecRowsWgsl from './matvec_rows.wgsl?raw';
import reduceWorkgroupWgsl from './reduce_workgroup.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, placeholderBuffer } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { checkRows, expectTensor, type DType, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';
import { WEIGHT_DTYPES, vectorWeightPrelude, weightFormat, weightPrelude, weightStep, type WeightFormat } from './weights';

interface MatmulKey {
  weights: WeightFormat;
  hasBias: boolean;
  accumulate: boolean;
  /** How matvec adds its threads' partial sums (the tiled kernel needs no reduction). */
  reduce: ReduceMode;
  /** matvec's workgroup shape (the tiled kernel ignores it). */
  matvec: MatvecShape;
  /** The tiled kernel's workgroup and K-slice (matvec ignores it). */
  tile: TileShape;
  /** The batched matvec's workgroup (the other kernels ignore it). */
  batch: BatchShape;
  /** X is a [M, 2K] gate|up buffer and the kernel multiplies silu(gate)·up (SwiGLU fused into the input). */
  swiglu: boolean;
  /** X is RMS-normalised per row with `norm_w` on the way in (RMSNorm fused into the input). */
  norm: boolean;
}

/** Threads per matvec workgroup (a power of two) and output rows each workgroup computes (1…32). */
export interface MatvecShape {
  wg: number;
  rows: number;
}

/** Good on most GPUs; `tuneMatvec` (tune.ts) measures the best for a device and shape. */
export const DEFAULT_MATVEC: MatvecShape = { wg: 64, rows: 4 };
/**
 * For a CPU adapter, which runs a workgroup's invocations as the SIMD lanes of one core: one subgroup per
 * workgroup (no barrier, see reduce_single_subgroup.wgsl). Each lane gathers its own words of W and X, and the
 * rows a workgroup computes share its loads of X, but every row adds accumulators and packed-weight
 * temporaries that the 16 vector registers of a core must hold. f32/f16 steps are small (4–8 of K): X is
 * cheap and 4 rows keep everything in registers (measured on lavapipe at 5632×2048 and 32000×2048: 2–3× the
 * speed of 16 rows). q8/q4 steps are a block of 32: X is 8 vec4 per step, shared by 16 rows (32 ran 1.2–2×
 * faster but took LLVM seconds to compile).
 */
const CPU_MATVEC_FLOAT: MatvecShape = { wg: 8, rows: 4 };
const CPU_MATVEC_QUANT: MatvecShape = { wg: 8, rows: 16 };

/**
 * The matvec shape for a device untuned: on a software adapter the CPU shape for the weights' dtype (f16 if
 * not given), DEFAULT_MATVEC otherwise.
 */
export function defaultMatvecShape(gpu: Gpu, dtype: DType = 'f16'): MatvecShape {
  if (!gpu.isSoftwareAdapter) return DEFAULT_MATVEC;
  const cpu = dtype === 'q8' || dtype === 'q4' ? CPU_MATVEC_QUANT : CPU_MATVEC_FLOAT;
  return { ...cpu, wg: gpu.subgroupMinSize > 0 ? Math.min(cpu.wg, gpu.subgroupMinSize) : cpu.wg };
}

/**
 * The batched matvec's workgroup: `wg` threads (a power of two) striding over K, each multiplying the `rows`
 * rows of W it unpacks by `tokens` rows of X; rows · tokens ≤ 128 outputs per workgroup.
 */
export interface BatchShape {
  wg: number;
  rows: number;
  tokens: number;
}

/**
 * For a CPU adapter, where every 32-bit value a lane loads costs tens of times an arithmetic instruction:
 * each step of X a lane loads serves 32 rows and each step of W 4 tokens. Measured on lavapipe (q4 and f16,
 * 128×2048×2048 and 2…32×5632×2048): 3× the tiled kernel's speed at 128 tokens and 1.6–2× matvec once per
 * token from 4 tokens on; 16 rows or 2 tokens ran 10–30% slower, 8 tokens (X of 8 tokens does not stay in
 * registers) 2× slower, so 4 is the most it takes.
 */
const CPU_BATCH: BatchShape = { wg: 8, rows: 32, tokens: 4 };
const MAX_BATCH_OUTPUTS = 128;
const MAX_BATCH_ROWS = 64;
const MAX_BATCH_TOKENS = 4;

/** The batched matvec's shape on this device (one subgroup of lanes), or undefined without subgroups. */
export function defaultBatchShape(gpu: Gpu): BatchShape | undefined {
  return gpu.features.subgroups && gpu.subgroupMinSize > 0 ? { ...CPU_BATCH, wg: Math.min(CPU_BATCH.wg, gpu.subgroupMinSize) } : undefined;
}

/**
 * The tiled kernel's workgroup of wgM × wgN threads, each computing 4×4 outputs, and the K slice staged in
 * workgroup memory per step. wgN ≥ 4 so that a tile's rows (4·wgM) have a thread each for the fused norm.
 */
export interface TileShape {
  wgM: number;
  wgN: number;
  tileK: number;
}

/** Every device runs it (256 threads, 8.25 KiB of workgroup memory); `tuneTiled` measures the best. */
export const DEFAULT_TILE: TileShape = { wgM: 16, wgN: 16, tileK: 16 };
/** The default for q8/q4, whose 32-wide K slice makes the default tile need more than 16 KiB. */
const SMALL_TILE: TileShape = { wgM: 8, wgN: 16, tileK: 32 };
/** Outputs per thread along M and along N (the shader's R). */
const TILE_R = 4;
const MAX_MATVEC_ROWS = 32;
const X_FUSED = { file: 'x_fused.wgsl', code: xFusedWgsl };
const X_INPUT = { file: 'x_input.wgsl', code: xInputWgsl };
const X_INPUT_VEC = { file: 'x_input_vec.wgsl', code: xInputVecWgsl };

/**
 * How matvec adds its threads' partial sums: subgroup operations alone where the workgroup is one subgroup,
 * subgroup operations then workgroup memory where it is several, workgroup memory where there are none.
 */
export type ReduceMode = 'single-subgroup' | 'subgroup' | 'workgroup';

/** The fastest reduction this device can run for a workgroup of `wg` threads. */
export function defaultReduce(gpu: Gpu, wg: number): ReduceMode {
  if (!gpu.features.subgroups) return 'workgroup';
  return wg <= gpu.subgroupMinSize ? 'single-subgroup' : 'subgroup';
}

const uniforms = defineUniforms({ M: 'u32', N: 'u32', K: 'u32', eps: 'f32', yStride: 'u32' });
const bindings = [
  { name: 'params', kind: 'uniform' },
  { name: 'x', kind: 'read' },
  { name: 'w', kind: 'read' },
  { name: 'bias', kind: 'read' },
  { name: 'y', kind: 'storage' },
  { name: 'norm_w', kind: 'read' },
] as const;

type MatmulField = 'M' | 'N' | 'K' | 'eps' | 'yStride';

const inputConstants = (key: MatmulKey) => ({ SWIGLU_X: Number(key.swiglu), NORM_X: Number(key.norm) });

const tiledConstants = (key: MatmulKey) => ({
  WG_M: key.tile.wgM,
  WG_N: key.tile.wgN,
  TILE_K: key.tile.tileK,
  HAS_BIAS: Number(key.hasBias),
  ACCUMULATE: Number(key.accumulate),
  ...inputConstants(key),
});

/** Prefill for any K, staging one element per load. */
export const matmulKernel: KernelSpec<MatmulKey, MatmulField> = {
  name: 'matmul',
  bindings,
  uniforms,
  shader: { file: 'matmul.wgsl', code: matmulWgsl },
  preludes: (key) => [weightPrelude(key.weights), X_FUSED, X_INPUT],
  constants: tiledConstants,
};

/** Prefill for K a multiple of the format's step: vector staging, weights dequantized once per tile (the fast path). */
export const matmulVecKernel: KernelSpec<MatmulKey, MatmulField> = {
  name: 'matmul-vec',
  bindings,
  uniforms,
  shader: { file: 'matmul_vec.wgsl', code: matmulVecWgsl },
  preludes: (key) => [vectorWeightPrelude(key.weights), X_FUSED, X_INPUT_VEC],
  constants: tiledConstants,
};

const REDUCE_PRELUDES = {
  'single-subgroup': { file: 'reduce_single_subgroup.wgsl', code: reduceSingleSubgroupWgsl },
  subgroup: { file: 'reduce_subgroup.wgsl', code: reduceSubgroupWgsl },
  workgroup: { file: 'reduce_workgroup.wgsl', code: reduceWorkgroupWgsl },
};
const MATVEC_ROWS = { file: 'matvec_rows.wgsl', code: matvecRowsWgsl };

const matvecConstants = (key: MatmulKey) => ({
  WG: key.matvec.wg,
  ROWS: key.matvec.rows,
  HAS_BIAS: Number(key.hasBias),
  ACCUMULATE: Number(key.accumulate),
  ...inputConstants(key),
});

/** Decode for any K, one weight at a time. */
export const matvecKernel: KernelSpec<MatmulKey, MatmulField> = {
  name: 'matvec',
  bindings,
  uniforms,
  shader: { file: 'matvec.wgsl', code: matvecWgsl },
  preludes: (key) => [weightPrelude(key.weights), X_FUSED, X_INPUT, REDUCE_PRELUDES[key.reduce], MATVEC_ROWS],
  constants: matvecConstants,
};

/** Decode for K a multiple of the format's step, whole packed vectors at a time (the fast path). */
export const matvecVecKernel: KernelSpec<MatmulKey, MatmulField> = {
  name: 'matvec-vec',
  bindings,
  uniforms,
  shader: { file: 'matvec_vec.wgsl', code: matvecVecWgsl },
  preludes: (key) => [vectorWeightPrelude(key.weights), X_FUSED, X_INPUT_VEC, REDUCE_PRELUDES[key.reduce], MATVEC_ROWS],
  constants: matvecConstants,
};

const batchConstants = (key: MatmulKey) => ({
  WG: key.batch.wg,
  W_ROWS: key.batch.rows,
  TOKENS: key.batch.tokens,
  HAS_BIAS: Number(key.hasBias),
  ACCUMULATE: Number(key.accumulate),
  ...inputConstants(key),
});

/** A chunk of a few to a few hundred tokens, K a multiple of the format's step: W unpacked once per `tokens` tokens. */
export const matvecBatchKernel: KernelSpec<MatmulKey, MatmulField> = {
  name: 'matvec-batch',
  bindings,
  uniforms,
  shader: { file: 'matvec_batch.wgsl', code: matvecBatchWgsl },
  preludes: (key) => [vectorWeightPrelude(key.weights), X_FUSED, X_INPUT_VEC, REDUCE_PRELUDES['single-subgroup']],
  constants: batchConstants,
};

export interface MatmulArgs {
  /** [M, N] f32 output; with `accumulate` it also holds the residual that is added. */
  y: Tensor;
  /** [M, K] f32 activations; with `swiglu`, [M, 2K]: gate then up, multiplied as silu(gate)·up on load. */
  x: Tensor;
  /** [N, K] f32 or f16 weights (PyTorch `nn.Linear` layout). */
  w: Tensor;
  /** [N] f32, optional. */
  bias?: Tensor;
  /** Add the product to what Y holds (residual connection) instead of overwriting it. */
  accumulate?: boolean;
  /**
   * Force a kernel variant; by default matvec for M = 1, tiled otherwise. 'batched' needs K a multiple of the
   * weight format's step (and of 4) and a device with subgroups, and runs the tiled kernel where it has not
   * (matvec for M = 1); an explicit `batchShape` the device cannot run is a ShapeError.
   */
  variant?: 'tiled' | 'matvec' | 'batched';
  /** Force how f16 weights are read (tests cover both paths on a shader-f16 device). */
  weightFormat?: WeightFormat;
  /** Force how matvec reduces (tests cover both on a device with subgroups). */
  reduce?: ReduceMode;
  /** matvec's workgroup shape; default `defaultMatvecShape(gpu, w.dtype)`. */
  matvecShape?: MatvecShape;
  /** The tiled kernel's shape; default DEFAULT_TILE. */
  tileShape?: TileShape;
  /** The batched matvec's shape; default `defaultBatchShape(gpu)`. */
  batchShape?: BatchShape;
  /** Fuse SwiGLU into the input: X holds [gate | up] and the product uses silu(gate)·up. */
  swiglu?: boolean;
  /** Fuse RMSNorm into the input: the product uses x / sqrt(mean(x²) + eps) · weight for each row of X. */
  norm?: { weight: Tensor; eps: number };
  /**
   * W is rows [column, column + N) of a [width, K] matrix split across buffers (src/model/split.ts): Y is
   * [M, width] and the bias [width], and the product writes (and accumulates into) only those columns.
   * `column` must be a multiple of 64, so that the bindings start on the storage offset alignment.
   */
  outputSlice?: { column: number; width: number };
}

/** Binding offsets are multiples of minStorageBufferOffsetAlignment, which WebGPU caps at 256 bytes (64 f32). */
const SLICE_COLUMN_ALIGN = 64;

function validateMatmul(a: MatmulArgs): Record<MatmulField, number> {
  if (a.x.shape.length !== 2 || a.w.shape.length !== 2) throw new ShapeError('matmul', 'x and w must be 2-D');
  const [M] = a.x.shape;
  const [N, K] = a.w.shape;
  if (M < 1 || N < 1 || K < 1) throw new ShapeError('matmul', `empty shape M=${M} N=${N} K=${K}`);
  const { column, width } = a.outputSlice ?? { column: 0, width: N };
  if (!Number.isInteger(column) || column < 0 || column % SLICE_COLUMN_ALIGN !== 0 || !Number.isInteger(width) || column + N > width) {
    throw new ShapeError('matmul', `an output slice of ${N} columns must start on a multiple of ${SLICE_COLUMN_ALIGN} within ${width}, got ${column}`);
  }
  expectTensor('matmul', 'x', a.x, 'f32', [M, a.swiglu ? 2 * K : K]);
  expectTensor('matmul', 'w', a.w, WEIGHT_DTYPES, [N, K]);
  expectTensor('matmul', 'y', a.y, 'f32', [M, width]);
  if (a.bias) expectTensor('matmul', 'bias', a.bias, 'f32', [width]);
  if (a.norm) {
    expectTensor('matmul', 'norm weight', a.norm.weight, 'f32', [K]);
    if (!(a.norm.eps >= 0)) throw new ShapeError('matmul', `norm eps must be a non-negative number, got ${a.norm.eps}`);
    if (a.swiglu) throw new ShapeError('matmul', 'the input is either normalised or SwiGLU-combined, not both');
  }
  if (a.y.buffer === a.x.buffer) throw new ShapeError('matmul', 'y must not alias x');
  return { M, N, K, eps: a.norm?.eps ?? 0, yStride: width };
}

/**
 * Why matvec cannot run in `shape` with `reduce` (default: the device's best) on this device, or undefined
 * when it can.
 */
export function matvecShapeProblem(gpu: Gpu, { wg, rows }: MatvecShape, reduce = defaultReduce(gpu, wg)): string | undefined {
  if (!Number.isInteger(rows) || rows < 1 || rows > MAX_MATVEC_ROWS) return `matvec rows per workgroup must be 1…${MAX_MATVEC_ROWS}, got ${rows}`;
  return reductionProblem(gpu, 'matvec', wg, rows, reduce);
}

/**
 * Why the batched matvec cannot run in `shape` on this device, or undefined when it can. It is a kernel for
 * CPU adapters: one subgroup per workgroup, whose sums subgroupAdd alone adds (a workgroup-memory reduction of
 * its many sums, behind barriers, compiles for minutes there).
 */
export function batchShapeProblem(gpu: Gpu, { wg, rows, tokens }: BatchShape): string | undefined {
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > MAX_BATCH_TOKENS) return `batched matvec tokens per workgroup must be 1…${MAX_BATCH_TOKENS}, got ${tokens}`;
  if (!Number.isInteger(rows) || rows < 1 || rows > MAX_BATCH_ROWS || rows * tokens > MAX_BATCH_OUTPUTS) {
    return `batched matvec rows per workgroup must be 1…${MAX_BATCH_ROWS}, and rows × tokens at most ${MAX_BATCH_OUTPUTS}, got ${rows} × ${tokens}`;
  }
  return reductionProblem(gpu, 'batched matvec', wg, rows * tokens, 'single-subgroup');
}

/** Why a workgroup of `wg` threads cannot add up `outputs` sums each with `reduce` on this device. */
function reductionProblem(gpu: Gpu, kernel: string, wg: number, outputs: number, reduce: ReduceMode): string | undefined {
  const { limits } = gpu.device;
  const limit = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  if (!Number.isInteger(Math.log2(wg)) || wg < 1 || wg > limit) return `${kernel} workgroup size must be a power of two ≤ ${limit}, got ${wg}`;
  if (reduce === 'single-subgroup') {
    if (!gpu.features.subgroups || wg > gpu.subgroupMinSize) {
      return `a single-subgroup reduction needs subgroups at least as wide as the workgroup (${wg}); this device's smallest is ${gpu.subgroupMinSize}`;
    }
  } else if (4 * wg * outputs > limits.maxComputeWorkgroupStorageSize) {
    return `${kernel} ${wg} threads × ${outputs} sums needs ${4 * wg * outputs} B of workgroup memory, over ${limits.maxComputeWorkgroupStorageSize}`;
  }
  return undefined;
}

/**
 * Bytes of workgroup memory the tiled kernels declare for `tile`: the X and W slices (rows padded by 4 values
 * in the vector kernel, counted for both) and the row scales.
 */
function tileWorkgroupBytes({ wgM, wgN, tileK }: TileShape): number {
  return 4 * (TILE_R * (wgM + wgN) * (tileK + 4) + TILE_R * wgM);
}

/** Why the tiled kernel cannot run in `tile` on this device, or undefined when it can. */
export function tileShapeProblem(gpu: Gpu, tile: TileShape): string | undefined {
  const { limits } = gpu.device;
  const { wgM, wgN, tileK } = tile;
  const describe = `tiled matmul shape ${wgM}×${wgN} threads, K slice ${tileK}`;
  if (![wgM, wgN, tileK].every((v) => Number.isInteger(v) && v >= 1) || wgN < TILE_R) {
    return `${describe}: sizes must be positive integers with wgN ≥ ${TILE_R}`;
  }
  if (wgM * wgN > limits.maxComputeInvocationsPerWorkgroup || wgN > limits.maxComputeWorkgroupSizeX || wgM > limits.maxComputeWorkgroupSizeY) {
    return `${describe}: over this device's workgroup size limits`;
  }
  if (tileWorkgroupBytes(tile) > limits.maxComputeWorkgroupStorageSize) {
    return `${describe}: needs ${tileWorkgroupBytes(tile)} B of workgroup memory, over ${limits.maxComputeWorkgroupStorageSize}`;
  }
  return undefined;
}

export async function prepareMatmul(gpu: Gpu, a: MatmulArgs): Promise<KernelDispatch<MatmulField>> {
  const dims = validateMatmul(a);
  const key: MatmulKey = {
    weights: weightFormat(gpu, 'matmul', a.w, a.weightFormat),
    hasBias: a.bias !== undefined,
    accumulate: a.accumulate ?? false,
    reduce: a.reduce ?? 'workgroup',
    matvec: DEFAULT_MATVEC,
    tile: DEFAULT_TILE,
    batch: CPU_BATCH,
    swiglu: a.swiglu ?? false,
    norm: a.norm !== undefined,
  };
  if (key.reduce === 'subgroup' && !gpu.features.subgroups) throw new ShapeError('matmul', 'subgroup reductions need the subgroups device feature');
  // One row of X (a plan's LM head) is a matvec whatever the plan asks for its chunks.
  const variant = a.variant === 'batched' && dims.M === 1 ? 'matvec' : (a.variant ?? (dims.M === 1 ? 'matvec' : 'tiled'));
  // A slice binds Y and the bias from its first column, so the kernel indexes them as if they were its own;
  // Y is bound for the M rows prepared, which a launch may lower but never raise.
  const column = a.outputSlice?.column ?? 0;
  const resources = {
    x: a.x.buffer,
    w: a.w.buffer,
    bias: a.bias ? { buffer: a.bias.buffer, offset: 4 * column, size: 4 * dims.N } : placeholderBuffer(gpu),
    y: { buffer: a.y.buffer, offset: 4 * column, size: 4 * ((dims.M - 1) * dims.yStride + dims.N) },
    norm_w: a.norm?.weight.buffer ?? placeholderBuffer(gpu),
  };
  if (variant === 'matvec') {
    const shape = a.matvecShape ?? defaultMatvecShape(gpu, a.w.dtype);
    const reduce = a.reduce ?? defaultReduce(gpu, shape.wg);
    const problem = matvecShapeProblem(gpu, shape, reduce);
    if (problem) throw new ShapeError('matmul', problem);
    // The vector kernel needs whole steps per row (real models' K always are; tiny test models' may not be).
    const spec = dims.K % weightStep(key.weights) === 0 ? matvecVecKernel : matvecKernel;
    return KernelDispatch.create(gpu, spec, { ...key, reduce, matvec: shape }, dims, resources, (p) => {
      checkRows('matmul', p.M, dims.M);
      return p.M * Math.ceil(p.N / shape.rows);
    });
  }
  const step = weightStep(key.weights);
  const vector = dims.K % step === 0 && dims.K % 4 === 0;
  const batchShape = a.batchShape ?? defaultBatchShape(gpu);
  if (variant === 'batched' && vector && batchShape) {
    if (a.reduce && a.reduce !== 'single-subgroup') throw new ShapeError('matmul', `the batched matvec reduces within one subgroup, not by ${a.reduce}`);
    const problem = batchShapeProblem(gpu, batchShape);
    if (problem) throw new ShapeError('matmul', problem);
    return KernelDispatch.create(gpu, matvecBatchKernel, { ...key, reduce: 'single-subgroup', batch: batchShape }, dims, resources, (p) => {
      checkRows('matmul', p.M, dims.M);
      return Math.ceil(p.M / batchShape.tokens) * Math.ceil(p.N / batchShape.rows);
    });
  }
  // The vector kernel stages whole steps: its K slice is at least one (32 for q8/q4).
  const widen = (t: TileShape): TileShape => (vector ? { ...t, tileK: Math.max(t.tileK, step) } : t);
  let tile = widen(a.tileShape ?? DEFAULT_TILE);
  if (!a.tileShape && tileShapeProblem(gpu, tile)) tile = widen(SMALL_TILE);
  const problem = tileShapeProblem(gpu, tile);
  if (problem) throw new ShapeError('matmul', problem);
  const tileM = tile.wgM * TILE_R;
  const tileN = tile.wgN * TILE_R;
  return KernelDispatch.create(gpu, vector ? matmulVecKernel : matmulKernel, { ...key, tile }, dims, resources, (p) => {
    checkRows('matmul', p.M, dims.M);
    return [Math.ceil(p.N / tileN), Math.ceil(p.M / tileM), 1];
  });
}
