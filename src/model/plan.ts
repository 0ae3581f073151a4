/**
 * The plan: every kernel launch of one forward call, prepared at load for a fixed largest chunk (the
 * prefill plan, and the T = 1 decode plan), so a call only updates parameters and encodes. The layer recipe
 * below is the whole transformer block; RMSNorm is fused into the projection that follows it. A matrix split
 * across buffers (./split.ts) is one launch per part, all in the same pass.
 */
import { EngineDisposedError } from '../engine/errors';
import type { Gpu } from '../gpu/device';
import type { KernelDispatch } from '../gpu/dispatch';
import { ShapeError } from '../gpu/errors';
import type { Tensor } from '../gpu/tensor';
import { prepareArgmax } from '../kernels/argmax/argmax';
import { prepareAttention } from '../kernels/attention/attention';
import { prepareEmbedding } from '../kernels/embedding/embedding';
import { prepareGelu } from '../kernels/gelu/gelu';
import { prepareLogSumExp } from '../kernels/logsumexp/logsumexp';
import { prepareMaskLogits } from '../kernels/mask_logits/mask_logits';
import { prepareMatmul, type BatchShape, type MatmulArgs, type MatvecShape, type TileShape } from '../kernels/matmul/matmul';
import { prepareNorm } from '../kernels/norm/norm';
import { prepareRope } from '../kernels/rope/rope';
import { prepareTopK, type TopKDispatch } from '../kernels/topk/topk';
import type { ModelSpec } from './config';
import type { GpuWeights } from './gpu-weights';
import type { ForwardRead } from './readback';
import { flatten, rows, type RunState } from './run-state';
import { rowParts, type Weight } from './split';

/** What changes from one call to the next: the rows of the chunk and the position of its first token. */
export interface Chunk {
  T: number;
  pos: number;
}

/** One prepared launch and how it follows the chunk. */
export interface Step {
  dispatch: { encode(pass: GPUComputePassEncoder): void; dispose(): void };
  update(chunk: Chunk): void;
}

export interface Plan {
  maxT: number;
  /** The embedding and every layer's launches, in order. */
  body: Step[];
  /**
   * Final norm and LM head over the last row (decode's only row of x, read in place in the same pass; a
   * prefill chunk's last row, copied to `last` between two passes), then the mask of ids never produced.
   */
  head: Step[];
  /** The final norm of the last row alone, into `lastNorm`, without the LM head: for a hidden-state read. */
  hidden: Step[];
  applied: Chunk;
}

/**
 * What follows the LM head for each kind of read: argmax, top-k, top-k and the log-sum-exp, or nothing (the
 * logits themselves). They read the logits whatever the plan, so one set serves every plan, each kind prepared
 * on first use or ahead of it (`prepare`): a model is usable before the kinds it has not been asked for compile.
 */
export class Selection {
  private readonly pending = new Map<ForwardRead, Promise<Step[]>>();
  private readonly ready = new Map<ForwardRead, Step[]>([['logits', []]]);
  /** The top-k launch, shared by top-k and logprobs reads (undefined without a topKCapacity). */
  private topkLaunch: Promise<TopKDispatch | undefined> | undefined;
  /** Launches made so far, disposed with the selection (at once when made after it). */
  private readonly launches: Step['dispatch'][] = [];
  private k = 0;
  private disposed = false;

  constructor(
    private readonly gpu: Gpu,
    private readonly s: RunState,
  ) {}

  /** The steps of `read` once prepared (see `prepare`), else undefined. */
  steps(read: ForwardRead): Step[] | undefined {
    return this.ready.get(read);
  }

  /** Prepares the steps of `read`: once, later calls sharing the first (after a failure, the next tries again). */
  prepare(read: ForwardRead): Promise<Step[]> {
    const ready = this.ready.get(read);
    if (ready) return Promise.resolve(ready);
    let pending = this.pending.get(read);
    if (!pending) {
      pending = this.create(read).then((steps) => {
        this.ready.set(read, steps);
        return steps;
      });
      pending.catch(() => this.pending.delete(read));
      this.pending.set(read, pending);
    }
    return pending;
  }

  /** Sets the k of top-k reads, now or when the top-k launch is prepared. */
  setTopK(k: number): void {
    this.k = k;
    void this.topkLaunch?.then((d) => d?.set({ k }), () => {});
  }

  private async create(read: ForwardRead): Promise<Step[]> {
    const { gpu, s } = this;
    if (read === 'logits') return [];
    if (read === 'token') return [this.owned(await prepareArgmax(gpu, { logits: s.logits, out: s.next }))];
    const topk = await this.topk();
    if (!topk) return [];
    if (read === 'topk') return [fixed(topk)];
    if (!s.logSumExp) return [];
    return [fixed(topk), this.owned(await prepareLogSumExp(gpu, { logits: s.logits, out: s.logSumExp }))];
  }

  private topk(): Promise<TopKDispatch | undefined> {
    const { s } = this;
    if (!this.topkLaunch) {
      const launch = s.topValues && s.topIndices ? prepareTopK(this.gpu, { logits: s.logits, values: s.topValues, indices: s.topIndices, scratch: s.topScratch }) : Promise.resolve(undefined);
      this.topkLaunch = launch.then((d) => {
        if (d && this.k) d.set({ k: this.k });
        return d && this.owned(d).dispatch;
      });
      this.topkLaunch.catch(() => (this.topkLaunch = undefined));
    }
    return this.topkLaunch;
  }

  private owned<D extends Step['dispatch']>(dispatch: D): Step & { dispatch: D } {
    if (this.disposed) {
      dispatch.dispose();
      throw new EngineDisposedError('the model was destroyed while its launches were prepared');
    }
    this.launches.push(dispatch);
    return { dispatch, update: () => {} };
  }

  dispose(): void {
    this.disposed = true;
    for (const launch of this.launches) launch.dispose();
    this.launches.length = 0;
    this.ready.clear();
  }
}

/** The matmul kernels' shapes every projection uses (tuned for the device, or the defaults). */
export interface KernelShapes {
  matvec: MatvecShape;
  tile: TileShape;
  /** Where set (software adapters), chunks of several tokens run the batched matvec instead of the tiled kernel. */
  batch?: BatchShape;
}

/** A launch whose row-count parameter (`rows`, `M` or `T`, as its kernel names it) and position follow the chunk. */
function follow<F extends string>(d: Pick<KernelDispatch<F>, 'set' | 'encode' | 'dispose'>, rowsParam: F, posParam?: F): Step {
  const update = ({ T, pos }: Chunk) => {
    const changes: Partial<Record<F, number>> = {};
    changes[rowsParam] = T;
    if (posParam) changes[posParam] = pos;
    d.set(changes);
  };
  return { dispatch: d, update };
}

/** The steps of launches prepared concurrently, in the order given. */
async function steps(...parts: Promise<Step | Step[]>[]): Promise<Step[]> {
  return (await Promise.all(parts)).flat();
}

/** A launch that does not change with the chunk (the head runs on one row whatever the chunk). */
function fixed(dispatch: Step['dispatch']): Step {
  return { dispatch, update: () => {} };
}

/**
 * `projections` forces the matmul kernel of every projection: 'matvec' for a plan of short chunks, which
 * reads the weights once per row of the chunk but, unlike the tiled kernel, computes nothing for the rest of
 * a tile's rows (64) past T. By default matvec for one row, for more the batched matvec where
 * `shapes.batch` is set, else tiled.
 */
export async function preparePlan(gpu: Gpu, spec: ModelSpec, w: GpuWeights, s: RunState, maxT: number, shapes: KernelShapes, projections?: MatmulArgs['variant']): Promise<Plan> {
  const shapeArgs = { matvecShape: shapes.matvec, tileShape: shapes.tile, batchShape: shapes.batch };
  const variant = projections ?? (shapes.batch && maxT > 1 ? 'batched' : undefined);
  const [x, qkv, q, attn, up] = [s.x, s.qkv, s.q, s.attn, s.up].map((t) => rows(t, maxT));
  const xn = s.xn && rows(s.xn, maxT);
  const act = s.act && rows(s.act, maxT);
  const contextLength = s.kv.contextLength;
  const { numHeads: nHeads, numKvHeads: nKvHeads, headDim } = spec;
  const eps = spec.norm.eps;
  type Projection = Omit<MatmulArgs, 'w' | 'outputSlice'> & { w: Weight };
  /** One launch, or one per part of a split matrix, each writing its columns of y. */
  const matmul = async ({ w: weight, ...args }: Projection): Promise<Step[]> => {
    const parts = rowParts(weight);
    return Promise.all(
      parts.map(async ({ tensor, firstRow }) => {
        const outputSlice = parts.length > 1 ? { column: firstRow, width: weight.shape[0] } : undefined;
        return follow(await prepareMatmul(gpu, { variant, ...args, ...shapeArgs, w: tensor, outputSlice }), 'M');
      }),
    );
  };
  /**
   * `w`·norm(input) (+ bias): launches with RMSNorm fused into the projection's input, or (LayerNorm) a
   * norm launch into `normed` and the projection of that.
   */
  const normThenProject = async (input: Tensor, weight: Tensor, bias: Tensor | undefined, normed: Tensor | undefined, projection: Omit<Projection, 'x'>): Promise<Step[]> => {
    if (spec.norm.kind === 'rms') return matmul({ ...projection, x: input, norm: { weight, eps } });
    if (!normed) throw new ShapeError('model', 'LayerNorm models need a buffer for the normalised rows');
    return steps(prepareNorm(gpu, { x: input, out: normed, weight, bias, kind: 'layer', eps }).then((norm) => follow(norm, 'rows')), matmul({ ...projection, x: normed }));
  };

  // Every launch is prepared at once and the steps kept in order: each kernel's first pipeline compiles
  // beside the others' (createComputePipelineAsync) rather than after them, which is most of a small
  // model's load on a software adapter.
  // A split embedding is gathered by one launch per part, each writing the rows whose ids it holds.
  const embedding = rowParts(w.embedding).map(async ({ tensor, firstRow }) => {
    const part = { firstRow, totalRows: spec.vocabSize };
    const embed = { ids: rows(s.ids, maxT), table: tensor, part, out: x, posTable: w.positionEmbedding, scale: spec.embeddingScale };
    return follow(await prepareEmbedding(gpu, embed), 'rows', 'pos');
  });
  const o = s.o && rows(s.o, maxT);
  /** x += projection (+ bias), or, with Gemma's post-norms, x += norm(projection) through `o`. */
  const projectIntoResidual = async (args: Omit<Projection, 'y' | 'accumulate'>, postNorm: Tensor | undefined): Promise<Step[]> => {
    if (!postNorm) return matmul({ ...args, y: x, accumulate: true });
    if (!o) throw new ShapeError('model', 'post-norm models need a buffer for the projection');
    return steps(matmul({ ...args, y: o }), prepareNorm(gpu, { x: o, out: x, weight: postNorm, kind: 'rms', eps, accumulate: true }).then((norm) => follow(norm, 'rows')));
  };

  const layers = w.layers.map((L, l) => {
    const [kCache, vCache] = [s.kv.keys[l], s.kv.values[l]];
    const wUp = L.wGateUp ?? L.wUp;
    if (!wUp) throw new ShapeError('model', `layer ${l} has no MLP up projection`);
    const cache = { kCache, vCache, nHeads, nKvHeads, headDim, maxContext: contextLength, T: maxT, pos: 0 };
    const { window, rope, local } = spec.layerAttention[l];
    const rotaryDim = rope ? ((local ? spec.localRope : spec.rope)?.rotaryDim ?? 0) : 0;
    const table = local ? w.localRopeTable : w.ropeTable;
    return steps(
      // Attention: x += o(attention(rope(qkv(norm(x))))), writing this chunk's keys and values into the cache.
      normThenProject(x, L.attnNorm, L.attnNormBias, xn, { w: L.wqkv, bias: L.bqkv, y: qkv }),
      prepareRope(gpu, { ...cache, qkv, q, table, rotaryDim, qNorm: L.qNorm, kNorm: L.kNorm, normEps: eps }).then((d) => follow(d, 'T', 'pos')),
      prepareAttention(gpu, { ...cache, q, out: attn, scale: spec.attentionScale, window, partials: s.attnPartials, maxRows: projections === 'matvec' ? nHeads / nKvHeads : undefined }).then((d) => follow(d, 'T', 'pos')),
      projectIntoResidual({ x: flatten(attn), w: L.wo, bias: L.bo }, L.postAttnNorm),
      // MLP: x += down(act(up(norm(x)))). SwiGLU is applied as the down projection reads its input; GELU
      // (GPT-2) and GeGLU (Gemma) are a launch of their own.
      normThenProject(x, L.mlpNorm, L.mlpNormBias, xn, { w: wUp, bias: L.bGateUp ?? L.bUp, y: up }),
      ...(act
        ? [
            prepareGelu(gpu, { x: up, out: act, gated: spec.gatedMlp }).then((d) => follow(d, 'rows')),
            projectIntoResidual({ x: act, w: L.wDown, bias: L.bDown }, L.postMlpNorm),
          ]
        : [projectIntoResidual({ x: up, w: L.wDown, bias: L.bDown, swiglu: true }, L.postMlpNorm)]),
    );
  });

  const lastRow = maxT === 1 ? x : s.last;
  const headSteps = steps(
    normThenProject(lastRow, w.finalNorm, w.finalNormBias, s.lastNorm, { w: w.lmHead, y: s.logits }).then((head) => head.map((step) => fixed(step.dispatch))),
    ...(s.maskedIds ? [prepareMaskLogits(gpu, { logits: s.logits, ids: s.maskedIds }).then(fixed)] : []),
  );
  const finalNorm = prepareNorm(gpu, { x: lastRow, out: s.lastNorm, weight: w.finalNorm, bias: w.finalNormBias, kind: spec.norm.kind, eps });
  const [body, head, norm] = await Promise.all([steps(...embedding, ...layers), headSteps, finalNorm]);
  return { maxT, body, head, hidden: [fixed(norm)], applied: { T: maxT, pos: 0 } };
}

/** Brings every launch of the body to `chunk` (nothing to write when the plan already is there). */
export function applyChunk(plan: Plan, chunk: Chunk): void {
  if (plan.applied.T === chunk.T && plan.applied.pos === chunk.pos) return;
  for (const step of plan.body) step.update(chunk);
  plan.applied = { ...chunk };
}

export function disposePlan(plan: Plan): void {
  for (const step of [...plan.body, ...plan.head, ...plan.hidden]) step.dispatch.dispose();
}
