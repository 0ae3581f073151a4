/**
 * A short tuning run at load: times matvec (decode's dominant kernel) for each candidate workgroup shape on
 * the model's own widest decode matrix and weight format, and keeps the fastest. Results are cached per
 * device in memory and per adapter in localStorage where there is one, so a page reload does not tune again.
 */
import type { Gpu } from '../gpu/device';
import { createTensor, type DType } from '../gpu/tensor';
import { DEFAULT_MATVEC, prepareMatmul, type MatvecShape } from './matmul';

const CANDIDATES: MatvecShape[] = [32, 64, 128, 256].flatMap((wg) => [1, 2, 4, 8].map((rows) => ({ wg, rows })));
/** Launches per timed submit, so the submit and wait do not swamp a small matrix's time. */
const LAUNCHES = 8;
const RUNS = 3;

const memory = new WeakMap<GPUDevice, Map<string, MatvecShape>>();

function storageKey(gpu: Gpu, id: string): string {
  return `webgpu-llm:tune:matvec:${gpu.adapterName}:${id}`;
}

function fromStorage(gpu: Gpu, id: string): MatvecShape | undefined {
  try {
    const parsed: unknown = JSON.parse(globalThis.localStorage?.getItem(storageKey(gpu, id)) ?? 'null');
    if (typeof parsed !== 'object' || parsed === null || !('wg' in parsed) || !('rows' in parsed)) return undefined;
    return CANDIDATES.find((c) => c.wg === parsed.wg && c.rows === parsed.rows);
  } catch {
    return undefined;
  }
}

/**
 * The fastest matvec shape for [N, K] weights of `dtype` on this device. Candidates the device cannot run
 * (workgroups over its limits) are skipped; if timing fails, the default shape.
 */
export async function tuneMatvec(gpu: Gpu, N: number, K: number, dtype: DType): Promise<MatvecShape> {
  const id = `${dtype}:${N}x${K}`;
  let cache = memory.get(gpu.device);
  if (!cache) memory.set(gpu.device, (cache = new Map()));
  const known = cache.get(id) ?? fromStorage(gpu, id);
  if (known) {
    cache.set(id, known);
    return known;
  }

  const limit = Math.min(gpu.device.limits.maxComputeInvocationsPerWorkgroup, gpu.device.limits.maxComputeWorkgroupSizeX);
  // Contents do not matter for timing: fresh buffers are zeros.
  const x = await createTensor(gpu, 'tune x', 'f32', [1, K]);
  const w = await createTensor(gpu, 'tune w', dtype, [N, K]);
  const y = await createTensor(gpu, 'tune y', 'f32', [1, N]);
  let best = DEFAULT_MATVEC;
  let bestMs = Infinity;
  try {
    for (const shape of CANDIDATES.filter((c) => c.wg <= limit)) {
      const op = await prepareMatmul(gpu, { x, w, y, variant: 'matvec', matvecShape: shape });
      const times: number[] = [];
      for (let run = 0; run <= RUNS; run++) {
        const t0 = performance.now();
        const encoder = gpu.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        for (let i = 0; i < LAUNCHES; i++) op.encode(pass);
        pass.end();
        gpu.device.queue.submit([encoder.finish()]);
        await gpu.device.queue.onSubmittedWorkDone();
        // The first run pays for lazy driver work; keep the rest.
        if (run > 0) times.push(performance.now() - t0);
      }
      op.dispose();
      const median = times.sort((a, b) => a - b)[times.length >> 1];
      if (median < bestMs) {
        bestMs = median;
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
