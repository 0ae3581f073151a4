/**
 * A short tuning run at load: times each candidate shape of a matmul kernel on the model's own widest matrix
 * and weight format, and keeps the fastest: matvec's workgroup for decode, the tiled kernel's workgroup and
 * K slice for prefill. Results are cached per device in memory and per adapter (vendor, architecture, device,
 * driver) and problem in a TuningStore (IndexedDB in a page or worker), so a reload does not tune again.
 * Tuning is bounded: it stops timing candidates once its time budget is spent, and a software adapter, where
 * timing dozens of candidates takes minutes and says little about real GPUs, gets the defaults untimed.
 */
import type { Gpu } from '../../gpu/device';
import type { KernelDispatch } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import { createTensor, type DType } from '../../gpu/tensor';
import { defaultTuningStore, type TuningStore } from '../../gpu/tuning-store';
import { DEFAULT_TILE, defaultMatvecShape, matvecShapeProblem, prepareMatmul, tileShapeProblem, type MatmulArgs, type MatvecShape, type TileShape } from './matmul';

const MATVEC_CANDIDATES: MatvecShape[] = [32, 64, 128, 256].flatMap((wg) => [1, 2, 4, 8].map((rows) => ({ wg, rows })));
const TILE_CANDIDATES: TileShape[] = [
  { wgM: 8, wgN: 8 },
  { wgM: 8, wgN: 16 },
  { wgM: 16, wgN: 8 },
  { wgM: 16, wgN: 16 },
].flatMap((wg) => [8, 16, 32].map((tileK) => ({ ...wg, tileK })));
const RUNS = 3;
/** Wall time one tuning call may spend timing candidates before it keeps the fastest so far. */
const DEFAULT_BUDGET_MS = 2000;

export interface TuneOptions {
  /** Where results persist; default IndexedDB where there is one, else memory for the process. */
  store?: TuningStore;
  /** Stop timing candidates after this many milliseconds (default 2000). */
  budgetMs?: number;
  /** Time candidates on a software adapter too (tests of the tuner); by default it gets the defaults. */
  timeSoftware?: boolean;
  /** Called for each candidate timed (counts tuning work, e.g. to check that a reload does none). */
  onTimed?: (kernel: string, ms: number) => void;
}

interface Tuning<S> {
  /** Names the kernel in cache keys. */
  kernel: string;
  candidates: S[];
  /** The shape without timing (a software adapter's, or when nothing could be timed). */
  fallback(gpu: Gpu, dtype: DType): S;
  /** Whether this device can run the candidate at all. */
  fits(gpu: Gpu, shape: S): boolean;
  /** The matmul arguments that run `shape` (all but the tensors). */
  args(shape: S): Pick<MatmulArgs, 'variant' | 'matvecShape' | 'tileShape'>;
  /** Launches per timed submit, so that the submit and wait do not swamp a small launch's time. */
  launches: number;
  /** Results so far, per device and problem. */
  memory: WeakMap<GPUDevice, Map<string, S>>;
}

const matvecTuning: Tuning<MatvecShape> = {
  kernel: 'matvec',
  candidates: MATVEC_CANDIDATES,
  fallback: defaultMatvecShape,
  fits: (gpu, s) => matvecShapeProblem(gpu, s) === undefined,
  args: (s) => ({ variant: 'matvec', matvecShape: s }),
  launches: 8,
  memory: new WeakMap(),
};

const tiledTuning: Tuning<TileShape> = {
  kernel: 'tiled',
  candidates: TILE_CANDIDATES,
  fallback: () => DEFAULT_TILE,
  fits: (gpu, s) => tileShapeProblem(gpu, s) === undefined,
  args: (s) => ({ variant: 'tiled', tileShape: s }),
  launches: 2,
  memory: new WeakMap(),
};

/** The fastest matvec shape for [N, K] weights of `dtype` on this device (the default if timing fails). */
export function tuneMatvec(gpu: Gpu, N: number, K: number, dtype: DType, options: TuneOptions = {}): Promise<MatvecShape> {
  return tune(gpu, matvecTuning, 1, N, K, dtype, options);
}

/** The fastest tiled-matmul shape for M rows of X times [N, K] weights of `dtype` on this device. */
export function tuneTiled(gpu: Gpu, M: number, N: number, K: number, dtype: DType, options: TuneOptions = {}): Promise<TileShape> {
  return tune(gpu, tiledTuning, M, N, K, dtype, options);
}

function storeKey(gpu: Gpu, id: string): string {
  return `webgpu-llm:tune:${gpu.adapterKey}:${id}`;
}

/** The stored value, if it is still one of the candidates (a stale or edited entry is ignored). */
function candidateOf<S>(tuning: Tuning<S>, stored: unknown): S | undefined {
  const text = JSON.stringify(stored ?? null);
  return tuning.candidates.find((c) => JSON.stringify(c) === text);
}

async function tune<S>(gpu: Gpu, tuning: Tuning<S>, M: number, N: number, K: number, dtype: DType, options: TuneOptions): Promise<S> {
  const id = `${tuning.kernel}:${dtype}:${M}x${N}x${K}`;
  let cache = tuning.memory.get(gpu.device);
  if (!cache) tuning.memory.set(gpu.device, (cache = new Map()));
  const inMemory = cache.get(id);
  if (inMemory) return inMemory;
  if (gpu.isSoftwareAdapter && !options.timeSoftware) return tuning.fallback(gpu, dtype);
  const store = options.store ?? defaultTuningStore();
  const known = candidateOf(tuning, await store.get(storeKey(gpu, id)));
  if (known) {
    cache.set(id, known);
    return known;
  }

  // Contents do not matter for timing: fresh buffers are zeros.
  const x = await createTensor(gpu, 'tune x', 'f32', [M, K]);
  const w = await createTensor(gpu, 'tune w', dtype, [N, K]);
  const y = await createTensor(gpu, 'tune y', 'f32', [M, N]);
  let best = tuning.fallback(gpu, dtype);
  let bestMs = Infinity;
  const deadline = performance.now() + (options.budgetMs ?? DEFAULT_BUDGET_MS);
  try {
    for (const shape of tuning.candidates.filter((c) => tuning.fits(gpu, c))) {
      let op: KernelDispatch<string>;
      try {
        op = await prepareMatmul(gpu, { x, w, y, ...tuning.args(shape) });
      } catch (e) {
        // A shape the format widens past the device's limits (q8/q4 stage at least 32 of K per tile).
        if (e instanceof ShapeError) continue;
        throw e;
      }
      const ms = await medianMs(gpu, op, tuning.launches);
      op.dispose();
      options.onTimed?.(tuning.kernel, ms);
      if (ms < bestMs) {
        bestMs = ms;
        best = shape;
      }
      if (performance.now() > deadline) break;
    }
  } finally {
    for (const t of [x, w, y]) t.buffer.destroy();
  }
  cache.set(id, best);
  await store.set(storeKey(gpu, id), best);
  return best;
}

/** Median wall time of RUNS submits of `launches` launches each, after one untimed warm-up submit. */
async function medianMs(gpu: Gpu, op: KernelDispatch<string>, launches: number): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run <= RUNS; run++) {
    const t0 = performance.now();
    const encoder = gpu.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let i = 0; i < launches; i++) op.encode(pass);
    pass.end();
    gpu.device.queue.submit([encoder.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    // The first run pays for lazy driver work; keep the rest.
    if (run > 0) times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[times.length >> 1];
}
