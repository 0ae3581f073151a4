/**
 * A short tuning run at load: times each candidate shape of a matmul kernel on the model's own widest matrix
 * and weight format, and keeps the fastest: matvec's workgroup for decode, the tiled kernel's workgroup and
 * K slice for prefill. Results are cached per device in memory and per adapter in localStorage where there
 * is one, so a page reload does not tune again.
 */
import type { Gpu } from '../gpu/device';
import type { KernelDispatch } from '../gpu/dispatch';
import { createTensor, type DType } from '../gpu/tensor';
import { DEFAULT_MATVEC, DEFAULT_TILE, matvecShapeProblem, prepareMatmul, tileShapeProblem, type MatmulArgs, type MatvecShape, type TileShape } from './matmul';

const MATVEC_CANDIDATES: MatvecShape[] = [32, 64, 128, 256].flatMap((wg) => [1, 2, 4, 8].map((rows) => ({ wg, rows })));
const TILE_CANDIDATES: TileShape[] = [
  { wgM: 8, wgN: 8 },
  { wgM: 8, wgN: 16 },
  { wgM: 16, wgN: 8 },
  { wgM: 16, wgN: 16 },
].flatMap((wg) => [8, 16, 32].map((tileK) => ({ ...wg, tileK })));
const RUNS = 3;

interface Tuning<S> {
  /** Names the kernel in cache keys. */
  kernel: string;
  candidates: S[];
  fallback: S;
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
  fallback: DEFAULT_MATVEC,
  fits: (gpu, s) => matvecShapeProblem(gpu, s) === undefined,
  args: (s) => ({ variant: 'matvec', matvecShape: s }),
  launches: 8,
  memory: new WeakMap(),
};

const tiledTuning: Tuning<TileShape> = {
  kernel: 'tiled',
  candidates: TILE_CANDIDATES,
  fallback: DEFAULT_TILE,
  fits: (gpu, s) => tileShapeProblem(gpu, s) === undefined,
  args: (s) => ({ variant: 'tiled', tileShape: s }),
  launches: 2,
  memory: new WeakMap(),
};

/** The fastest matvec shape for [N, K] weights of `dtype` on this device (the default if timing fails). */
export function tuneMatvec(gpu: Gpu, N: number, K: number, dtype: DType): Promise<MatvecShape> {
  return tune(gpu, matvecTuning, 1, N, K, dtype);
}

/** The fastest tiled-matmul shape for M rows of X times [N, K] weights of `dtype` on this device. */
export function tuneTiled(gpu: Gpu, M: number, N: number, K: number, dtype: DType): Promise<TileShape> {
  return tune(gpu, tiledTuning, M, N, K, dtype);
}

function storageKey(gpu: Gpu, id: string): string {
  return `webgpu-llm:tune:${gpu.adapterName}:${id}`;
}

/** A cached result, if it is still one of the candidates (a stale or edited entry is ignored). */
function fromStorage<S>(gpu: Gpu, tuning: Tuning<S>, id: string): S | undefined {
  try {
    const parsed: unknown = JSON.parse(globalThis.localStorage?.getItem(storageKey(gpu, id)) ?? 'null');
    const text = JSON.stringify(parsed);
    return tuning.candidates.find((c) => JSON.stringify(c) === text);
  } catch {
    return undefined;
  }
}

async function tune<S>(gpu: Gpu, tuning: Tuning<S>, M: number, N: number, K: number, dtype: DType): Promise<S> {
  const id = `${tuning.kernel}:${dtype}:${M}x${N}x${K}`;
  let cache = tuning.memory.get(gpu.device);
  if (!cache) tuning.memory.set(gpu.device, (cache = new Map()));
  const known = cache.get(id) ?? fromStorage(gpu, tuning, id);
  if (known) {
    cache.set(id, known);
    return known;
  }

  // Contents do not matter for timing: fresh buffers are zeros.
  const x = await createTensor(gpu, 'tune x', 'f32', [M, K]);
  const w = await createTensor(gpu, 'tune w', dtype, [N, K]);
  const y = await createTensor(gpu, 'tune y', 'f32', [M, N]);
  let best = tuning.fallback;
  let bestMs = Infinity;
  try {
    for (const shape of tuning.candidates.filter((c) => tuning.fits(gpu, c))) {
      const op = await prepareMatmul(gpu, { x, w, y, ...tuning.args(shape) });
      const ms = await medianMs(gpu, op, tuning.launches);
      op.dispose();
      if (ms < bestMs) {
        bestMs = ms;
        best = shape;
      }
    }
  } finally {
    for (const t of [x, w, y]) t.buffer.destroy();
  }
  cache.set(id, best);
  try {
    globalThis.localStorage?.setItem(storageKey(gpu, id), JSON.stringify(best));
  } catch {
    // Storage full or denied: the in-memory cache still serves this page.
  }
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
