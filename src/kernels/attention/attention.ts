/**
 * attention: fused causal attention with online softmax and grouped-query heads. Query rows t = 0..T-1 sit
 * at positions pos..pos+T-1 and row t attends to cache positions 0..pos+t, or with a sliding window only to the
 * last `window` of them (the cache still holds every position; older ones are masked, not evicted). Query head h reads kv head
 * floor(h / (nHeads / nKvHeads)); one workgroup serves every query head of a KV head (and a block of query
 * rows in prefill), so each key and value is read once per workgroup, not once per query head and row.
 *
 * Decode (flash-decoding): when the call is prepared for one row, long contexts are split over several
 * workgroups per KV head and a second, small launch merges their partial results; short contexts use one
 * split and skip the merge. Where the device has subgroups, decode can run attention_decode.wgsl instead: one
 * subgroup per workgroup, queries and accumulators in registers, scores added across lanes with subgroup
 * shuffles, no workgroup memory or barrier (see `AttentionDecodePath`).
 *
 * Layouts (row-major; headDim a multiple of 4, the kernels' vector width):
 * - q, out: f32 [maxT, nHeads, headDim]; row t, head h starts at (t·nHeads + h)·headDim.
 * - kCache, vCache: f32 or f16 [nKvHeads, maxContext, headDim]; element (kvh, p, d) is at
 *   (kvh·maxContext + p)·headDim + d, so a kv head's keys are one contiguous run of positions. The kernel
 *   that appends K/V (rope) writes exactly this layout.
 */
import attentionWgsl from './attention.wgsl?raw';
import combineWgsl from './attention_combine.wgsl?raw';
import decodeWgsl from './attention_decode.wgsl?raw';
import onlineSoftmaxWgsl from './online_softmax.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, placeholderBuffer } from '../../gpu/dispatch';
import { LimitsExceededError, ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { createTensor, expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';
import { kvFormat, kvPrelude, KV_DTYPES, type KvFormat } from './kv-format';

/** headDim/4 units must fit the 64 threads that walk a value row. */
export const MAX_HEAD_DIM = 256;
/** Keys per block = threads per workgroup. */
const BK = 64;
/** Most query rows one workgroup serves (the kernel's private accumulators). */
const MAX_ROWS = 16;
/** Query and accumulator units (4 dims) per lane of the subgroup decode kernel: rows × units per lane (MAX_SLOTS). */
const DECODE_MAX_SLOTS = 16;
/** Query heads per workgroup of the subgroup decode kernel, at most. */
const DECODE_MAX_ROWS = 8;
/** Threads of the subgroup decode kernel: at most this many, and never more than the device's smallest subgroup. */
const DECODE_MAX_LANES = 32;
/** Decode splits: at least this many positions each, at most this many splits. */
const DEFAULT_MIN_SPLIT = 256;
const MAX_SPLITS = 64;

interface AttentionKey {
  units: number;
  rows: number;
  kv: KvFormat;
}

type AttentionField =
  | 'T'
  | 'pos'
  | 'nHeads'
  | 'nKvHeads'
  | 'maxContext'
  | 'window'
  | 'kFirst'
  | 'splitSize'
  | 'nSplits'
  | 'rowChunks'
  | 'statsOffset'
  | 'scale';

/** The online-softmax block step and its workgroup memory, shared with the encoder's attention. */
export const ONLINE_SOFTMAX = { file: 'online_softmax.wgsl', code: onlineSoftmaxWgsl };

export const attentionKernel: KernelSpec<AttentionKey, AttentionField> = {
  name: 'attention',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'q', kind: 'read' },
    { name: 'kCache', kind: 'read' },
    { name: 'vCache', kind: 'read' },
    { name: 'out', kind: 'storage' },
    { name: 'partials', kind: 'storage' },
  ],
  /**
   * The shader's `params` (its WGSL `struct Params` is generated from this):
   * - T, pos: query rows in this step and the position of row 0; maxContext: positions per KV head in the cache.
   * - window: sliding window (0 = all positions); kFirst: the first position row 0 sees, where splits start.
   * - splitSize: positions per split (a multiple of BK); nSplits: splits per (KV head, row chunk), 1 = no merge.
   * - rowChunks: workgroups along the query rows of one KV head, ceil(T·group / ROWS).
   * - statsOffset: where in `partials` the (max, sum of exponentials) records start, after the partial sums.
   * - scale: multiplier of q·k before softmax.
   */
  uniforms: defineUniforms({
    T: 'u32',
    pos: 'u32',
    nHeads: 'u32',
    nKvHeads: 'u32',
    maxContext: 'u32',
    window: 'u32',
    kFirst: 'u32',
    splitSize: 'u32',
    nSplits: 'u32',
    rowChunks: 'u32',
    statsOffset: 'u32',
    scale: 'f32',
  }),
  shader: { file: 'attention.wgsl', code: attentionWgsl },
  preludes: (key) => [kvPrelude(key.kv), ONLINE_SOFTMAX],
  constants: (key) => ({ UNITS: key.units, ROWS: key.rows, BK }),
};

interface AttentionDecodeKey {
  units: number;
  rows: number;
  lanes: number;
  kv: KvFormat;
}

/** Decode (T = 1) on a device with subgroups: attention_decode.wgsl, same bindings, params and outputs. */
export const attentionDecodeKernel: KernelSpec<AttentionDecodeKey, AttentionField> = {
  name: 'attention decode',
  bindings: attentionKernel.bindings,
  uniforms: attentionKernel.uniforms,
  shader: { file: 'attention_decode.wgsl', code: decodeWgsl },
  preludes: (key) => [kvPrelude(key.kv)],
  constants: (key) => ({ UNITS: key.units, ROWS: key.rows, LANES: key.lanes }),
};

/**
 * Which kernel runs decode: `workgroup` (attention.wgsl, any device) or `subgroup` (attention_decode.wgsl,
 * needs the subgroups feature and a smallest subgroup of at least 4 lanes).
 */
export type AttentionDecodePath = 'workgroup' | 'subgroup';

/**
 * Lanes of the subgroup decode kernel on this device, or 0 where it cannot run it: powers of two up to the
 * smallest subgroup (and DECODE_MAX_LANES), stopping once there are at least 4 and one per head-dim unit.
 */
function decodeLanes(gpu: Gpu, units: number): number {
  if (!gpu.features.subgroups) return 0;
  let lanes = 1;
  while (lanes * 2 <= Math.min(gpu.subgroupMinSize, DECODE_MAX_LANES) && (lanes < 4 || lanes < units)) lanes *= 2;
  return lanes >= 4 && Math.ceil(units / lanes) <= DECODE_MAX_SLOTS ? lanes : 0;
}

/** Query heads per workgroup of the subgroup decode kernel: a KV head's group in the fewest equal chunks that fit. */
function decodeRows(group: number, units: number, lanes: number): number {
  const most = Math.min(DECODE_MAX_ROWS, Math.floor(DECODE_MAX_SLOTS / Math.ceil(units / lanes)));
  return Math.ceil(group / Math.ceil(group / most));
}

/** The decode kernels this device can run for heads of `headDim`. */
export function decodePaths(gpu: Gpu, headDim: number): AttentionDecodePath[] {
  return decodeLanes(gpu, headDim / 4) > 0 ? ['workgroup', 'subgroup'] : ['workgroup'];
}

/**
 * The decode kernel a device runs by default: the subgroup one on software adapters, where it was measured
 * (lavapipe: many times the workgroup kernel's speed); the workgroup one elsewhere until measured there.
 */
export function defaultDecodePath(gpu: Gpu, headDim: number): AttentionDecodePath {
  return gpu.isSoftwareAdapter && decodeLanes(gpu, headDim / 4) > 0 ? 'subgroup' : 'workgroup';
}

type CombineField = 'rows' | 'nSplits' | 'statsOffset';

export const attentionCombineKernel: KernelSpec<{ units: number }, CombineField> = {
  name: 'attention combine',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'partials', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', nSplits: 'u32', statsOffset: 'u32' }),
  shader: { file: 'attention_combine.wgsl', code: combineWgsl },
  constants: (key) => ({ UNITS: key.units }),
};

export interface AttentionArgs {
  /** [maxT, nHeads, headDim] f32 queries (after rope). */
  q: Tensor;
  /** [nKvHeads, maxContext, headDim] f32 or f16; positions 0..pos+T-1 must be filled. */
  kCache: Tensor;
  /** [nKvHeads, maxContext, headDim], same dtype and layout as kCache. */
  vCache: Tensor;
  /** [maxT, nHeads, headDim] f32; rows T.. are left untouched. */
  out: Tensor;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  maxContext: number;
  /** Rows in this call; changeable later with `set({ T, pos })`. */
  T: number;
  /** Position of row 0, i.e. how many tokens the cache held before this call. */
  pos: number;
  /** Score scale; defaults to 1/√headDim. */
  scale?: number;
  /** Sliding window: each query sees only the last `window` positions up to its own; 0 or absent = all. */
  window?: number;
  /** Force how an f16 cache is read (tests cover both paths on a shader-f16 device). */
  kvFormat?: KvFormat;
  /** Decode only (one query row): which kernel runs it; default `defaultDecodePath`. */
  decodePath?: AttentionDecodePath;
  /**
   * Several query rows: most rows one workgroup serves (default and cap 16, fewer where workgroup memory is
   * short). A plan of short chunks passes the GQA group, one token's rows: SwiftShader compiles the 2-row
   * kernel in half the 16-row one's 1.7 s, which a chat turn waits for, and on a device whose decode runs this
   * kernel the two plans then share one pipeline; short chunks have few rows to share a workgroup's reads.
   */
  maxRows?: number;
  /** Decode only: fewest positions per split (a multiple of 64); default 256. Tests lower it to force splits. */
  minSplit?: number;
  /**
   * Decode only: scratch for the splits' partial results, f32 `attentionPartialsShape(nHeads, headDim)`. The
   * launches of a model's layers run one after another and may all share one; absent, a launch that splits
   * allocates its own.
   */
  partials?: Tensor;
}

/**
 * The shape of the f32 scratch that any decode launch with `nHeads` query heads of `headDim` needs for its
 * splits' partial results (sized for the most splits, so one buffer serves every context length): per head
 * and split, headDim / 4 vec4 of unnormalised sums, then one vec4 of (max, sum of exponentials).
 */
export function attentionPartialsShape(nHeads: number, headDim: number): [number, number] {
  return [nHeads * MAX_SPLITS * (headDim / 4 + 1), 4];
}

/**
 * Throws ShapeError unless a call with T rows at position pos fits: 1 ≤ T ≤ maxT (the q rows) and
 * pos + T ≤ maxContext. Callers check with it before `set({ T, pos })`, which does not validate.
 */
export function validateAttentionStep(maxT: number, maxContext: number, T: number, pos: number): void {
  if (!Number.isInteger(T) || T < 1 || T > maxT) {
    throw new ShapeError('attention', `T=${T} rows must be an integer in 1..${maxT} (the rows of q)`);
  }
  if (!Number.isInteger(pos) || pos < 0 || pos + T > maxContext) {
    throw new ShapeError('attention', `pos=${pos} with T=${T} runs past the cache: pos + T must be ≤ maxContext=${maxContext}`);
  }
}

export function validateAttention(a: AttentionArgs): { maxT: number; scale: number; window: number } {
  const { nHeads, nKvHeads, headDim, maxContext } = a;
  for (const [name, v] of Object.entries({ nHeads, nKvHeads, headDim, maxContext })) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError('attention', `${name}=${v} must be a positive integer`);
  }
  if (headDim > MAX_HEAD_DIM) throw new ShapeError('attention', `headDim=${headDim} is over the supported ${MAX_HEAD_DIM}`);
  if (headDim % 4 !== 0) throw new ShapeError('attention', `headDim=${headDim} must be a multiple of 4 (the kernel reads 4 dims at a time)`);
  if (nHeads % nKvHeads !== 0) {
    throw new ShapeError('attention', `nHeads=${nHeads} is not a multiple of nKvHeads=${nKvHeads}`);
  }
  if (a.q.shape.length !== 3) throw new ShapeError('attention', `q must be [maxT, nHeads, headDim], got [${a.q.shape}]`);
  const maxT = a.q.shape[0];
  expectTensor('attention', 'q', a.q, 'f32', [maxT, nHeads, headDim]);
  expectTensor('attention', 'out', a.out, 'f32', [maxT, nHeads, headDim]);
  expectTensor('attention', 'kCache', a.kCache, KV_DTYPES, [nKvHeads, maxContext, headDim]);
  expectTensor('attention', 'vCache', a.vCache, a.kCache.dtype, [nKvHeads, maxContext, headDim]);
  if ([a.q, a.kCache, a.vCache].some((t) => t.buffer === a.out.buffer)) {
    throw new ShapeError('attention', 'out must not alias q, kCache or vCache');
  }
  validateAttentionStep(maxT, maxContext, a.T, a.pos);
  if (a.maxRows !== undefined && (!Number.isInteger(a.maxRows) || a.maxRows < 1)) {
    throw new ShapeError('attention', `maxRows=${a.maxRows} must be a positive integer`);
  }
  const scale = a.scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(scale)) throw new ShapeError('attention', `scale=${scale} must be finite`);
  const window = a.window ?? 0;
  if (!Number.isSafeInteger(window) || window < 0 || window >= 2 ** 32) {
    throw new ShapeError('attention', `window=${window} must be a non-negative 32-bit integer (0 = no window)`);
  }
  const minSplit = a.minSplit ?? DEFAULT_MIN_SPLIT;
  if (!Number.isInteger(minSplit) || minSplit < BK || minSplit % BK !== 0) {
    throw new ShapeError('attention', `minSplit=${minSplit} must be a positive multiple of ${BK}`);
  }
  return { maxT, scale, window };
}

/** Workgroup memory of the attention kernel for `rows` rows (see the shader's var<workgroup> list). */
function workgroupBytes(rows: number, units: number): number {
  return rows * units * 16 + rows * BK * 4 + 3 * rows * 4 + BK * 16;
}

/** Query rows per workgroup: all the rows a KV head has in a call, up to MAX_ROWS and the workgroup memory. */
function rowsPerWorkgroup(gpu: Gpu, maxRows: number, units: number): number {
  const limit = gpu.device.limits.maxComputeWorkgroupStorageSize;
  let rows = Math.min(MAX_ROWS, maxRows);
  while (rows > 1 && workgroupBytes(rows, units) > limit) rows--;
  if (workgroupBytes(rows, units) > limit) {
    throw new LimitsExceededError('attention workgroup memory', workgroupBytes(rows, units), limit, 'maxComputeWorkgroupStorageSize');
  }
  return rows;
}

/** The attention of one layer: its main launch and, for split decode, the merge; `set` follows T and pos. */
export class AttentionLaunch {
  /** Whether the current step runs in several splits, so the merge must run too. */
  private split: boolean;
  private step: { T: number; pos: number };

  private constructor(
    private readonly main: KernelDispatch<AttentionField>,
    private readonly combine: KernelDispatch<CombineField> | undefined,
    /** The partials scratch this launch allocated (not one it was given), destroyed with it. */
    private readonly ownPartials: Tensor | undefined,
    private readonly plan: (T: number, pos: number) => { splitSize: number; nSplits: number; rowChunks: number },
    private readonly maxT: number,
    private readonly maxContext: number,
    private readonly nHeads: number,
    step: { T: number; pos: number },
  ) {
    this.step = { T: step.T, pos: step.pos };
    this.split = plan(step.T, step.pos).nSplits > 1;
  }

  static async create(gpu: Gpu, a: AttentionArgs): Promise<AttentionLaunch> {
    const { maxT, scale, window } = validateAttention(a);
    const { nHeads, nKvHeads, headDim, maxContext } = a;
    const units = headDim / 4;
    const group = nHeads / nKvHeads;
    const kv = kvFormat(gpu, 'attention', a.kCache, a.kvFormat);
    const decodePath = maxT === 1 ? (a.decodePath ?? defaultDecodePath(gpu, headDim)) : 'workgroup';
    const lanes = decodePath === 'subgroup' ? decodeLanes(gpu, units) : 0;
    if (decodePath === 'subgroup' && lanes === 0) {
      throw new ShapeError('attention', `the subgroup decode kernel needs the subgroups feature, subgroups of at least 4 lanes (this device: ${gpu.subgroupMinSize}) and at most ${4 * DECODE_MAX_SLOTS} head dims per lane`);
    }
    const rows = lanes > 0 ? decodeRows(group, units, lanes) : rowsPerWorkgroup(gpu, Math.min(maxT * group, a.maxRows ?? MAX_ROWS), units);
    const minSplit = a.minSplit ?? DEFAULT_MIN_SPLIT;
    // Splitting the context pays when one row leaves most of the device idle: decode.
    const maxSplits = maxT === 1 ? Math.min(MAX_SPLITS, Math.ceil(maxContext / minSplit)) : 1;
    const plan = (T: number, pos: number) => {
      // Splits cover what row 0's window starts at onward; a window keeps decode's span at most `window`.
      const kFirst = window > 0 ? Math.max(0, pos + 1 - window) : 0;
      const span = pos + T - kFirst;
      const wanted = Math.min(maxSplits, Math.ceil(span / minSplit));
      const splitSize = BK * Math.ceil(span / (BK * wanted));
      return { kFirst, splitSize, nSplits: Math.ceil(span / splitSize), rowChunks: Math.ceil((T * group) / rows) };
    };
    const statsOffset = maxT * nHeads * maxSplits * units;
    const needed = statsOffset + maxT * nHeads * maxSplits;
    if (maxSplits > 1 && a.partials && (a.partials.dtype !== 'f32' || a.partials.shape.length !== 2 || a.partials.shape[1] !== 4 || a.partials.shape[0] < needed)) {
      throw new ShapeError('attention', `partials must be f32 [≥ ${needed}, 4] (attentionPartialsShape), got ${a.partials.dtype} [${a.partials.shape}]`);
    }
    const ownPartials = maxSplits > 1 && !a.partials ? await createTensor(gpu, 'attention partials', 'f32', [needed, 4]) : undefined;
    const partials = maxSplits > 1 ? (a.partials ?? ownPartials) : undefined;
    try {
      const partialsBuffer = partials?.buffer ?? placeholderBuffer(gpu);
      const params = { T: a.T, pos: a.pos, nHeads, nKvHeads, maxContext, window, statsOffset, scale, ...plan(a.T, a.pos) };
      const resources = { q: a.q.buffer, kCache: a.kCache.buffer, vCache: a.vCache.buffer, out: a.out.buffer, partials: partialsBuffer };
      const workgroups = (p: Record<AttentionField, number>) => {
        validateAttentionStep(maxT, maxContext, p.T, p.pos);
        return p.nKvHeads * p.rowChunks * p.nSplits;
      };
      const main =
        lanes > 0
          ? await KernelDispatch.create(gpu, attentionDecodeKernel, { units, rows, lanes, kv }, params, resources, workgroups)
          : await KernelDispatch.create(gpu, attentionKernel, { units, rows, kv }, params, resources, workgroups);
      const combine = partials
        ? await KernelDispatch.create(
            gpu,
            attentionCombineKernel,
            { units },
            { rows: a.T * nHeads, nSplits: params.nSplits, statsOffset },
            { partials: partials.buffer, out: a.out.buffer },
            (p) => p.rows,
          )
        : undefined;
      return new AttentionLaunch(main, combine, ownPartials, plan, maxT, maxContext, nHeads, a);
    } catch (e) {
      ownPartials?.buffer.destroy();
      throw e;
    }
  }

  get name(): string {
    return 'attention';
  }

  /** The launches the current step runs, in order, for running them one-off (tests, benchmarks). */
  get dispatches(): KernelDispatch<string>[] {
    return this.split && this.combine ? [this.main, this.combine] : [this.main];
  }

  /** Moves to T rows at position pos (validated; a refused step leaves the launch as it was). */
  set(changes: Partial<Record<'T' | 'pos', number>>): void {
    const step = { ...this.step, ...changes };
    validateAttentionStep(this.maxT, this.maxContext, step.T, step.pos);
    const plan = this.plan(step.T, step.pos);
    this.main.set({ ...step, ...plan });
    this.combine?.set({ rows: step.T * this.nHeads, nSplits: plan.nSplits });
    this.split = plan.nSplits > 1;
    this.step = step;
  }

  encode(pass: GPUComputePassEncoder): void {
    this.main.encode(pass);
    if (this.split) this.combine?.encode(pass);
  }

  dispose(): void {
    this.main.dispose();
    this.combine?.dispose();
    this.ownPartials?.buffer.destroy();
  }
}

export function prepareAttention(gpu: Gpu, a: AttentionArgs): Promise<AttentionLaunch> {
  return AttentionLaunch.create(gpu, a);
}
