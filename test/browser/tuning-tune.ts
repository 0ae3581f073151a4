/** Tunes two matmul shapes with timing forced on (the browser's adapter is software), counting candidates timed. */
import { acquireGpu } from '../../src/gpu/device';
import { tuneMatvec, tuneTiled } from '../../src/kernels/matmul/tune';

export interface TuneResult {
  /** Candidates timed: 0 when both results came from the store. */
  timed: number;
  matvec: unknown;
  tiled: unknown;
}

export async function tuneOnce(): Promise<TuneResult> {
  const gpu = await acquireGpu();
  let timed = 0;
  // A short budget: one or two candidates each are enough to store a result.
  const options = { timeSoftware: true, budgetMs: 200, onTimed: () => void timed++ };
  try {
    const matvec = await tuneMatvec(gpu, 256, 128, 'f16', options);
    const tiled = await tuneTiled(gpu, 8, 256, 128, 'f16', options);
    return { timed, matvec, tiled };
  } finally {
    gpu.device.destroy();
  }
}
