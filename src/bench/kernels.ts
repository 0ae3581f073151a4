/**
 * Kernel benchmark on Node's Dawn adapter (VK_ICD_FILENAMES picks the Vulkan driver; SwiftShader by
 * default): `npm run bench:kernels [-- --only=<text>] [--runs=<n>] [--all]`. Each case is prepared once,
 * run once to warm up, then submitted up to `runs` times (at least 3, fewer than `runs` once a case has
 * taken 2 s, so software drivers finish in minutes). We report the median wall time of submit +
 * onSubmittedWorkDone and, where the device has timestamp queries, the median GPU time of the compute pass.
 * Prints a table and writes bench-output/kernels.json. To benchmark another kernel, add cases to CASES.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Gpu } from '../gpu/device';
import type { KernelDispatch } from '../gpu/dispatch';
import { toF16 } from '../gpu/f16';
import { acquireNodeGpu } from '../gpu/node';
import { createTensor, readBuffer, uploadTensor, type Tensor } from '../gpu/tensor';
import { prepareMatmul } from '../kernels/matmul/matmul';
import { weightFormat } from '../kernels/matmul/weights';
import { createRng, randomNormal, type Rng } from '../util/random';

interface Prepared {
  dispatches: KernelDispatch<string>[];
  /** What the weights are read as on this device, for the table. */
  weights: string;
  tensors: Tensor[];
}

export interface BenchCase {
  kernel: string;
  /** Which model layer the shape comes from, and its dimensions. */
  shape: string;
  flops: number;
  /** Bytes every run must move at least once (inputs read, outputs written), for GB/s. */
  bytes: number;
  /** Takes seconds per run on a software driver: only run with --all. */
  slow?: boolean;
  prepare(gpu: Gpu, rng: Rng): Promise<Prepared>;
}

export interface BenchResult {
  kernel: string;
  shape: string;
  weights: string;
  /** Timed runs (the median is over these). */
  runs: number;
  wallMs: number;
  /** GPU time of the pass from timestamp queries; absent where the device has none. */
  gpuMs?: number;
  gflops: number;
  gbps: number;
}

/** Y[M,N] = X[M,K] · W[N,K]ᵀ with random data; tiled for M > 1, matvec for M = 1 (as prepareMatmul picks). */
function matmulCase(layer: string, M: number, N: number, K: number, weights: 'f32' | 'f16'): BenchCase {
  const wBytes = weights === 'f32' ? 4 : 2;
  return {
    kernel: M === 1 ? 'matvec' : 'matmul',
    shape: `${layer} ${M}x${N}x${K}`,
    flops: 2 * M * N * K,
    bytes: 4 * M * K + wBytes * N * K + 4 * M * N,
    slow: N * K > 16_000_000,
    async prepare(gpu, rng) {
      const wData = randomNormal(rng, N * K, 1 / Math.sqrt(K));
      const w =
        weights === 'f32'
          ? await uploadTensor(gpu, 'w', 'f32', [N, K], wData)
          : await uploadTensor(gpu, 'w', 'f16', [N, K], toF16(wData));
      const x = await uploadTensor(gpu, 'x', 'f32', [M, K], randomNormal(rng, M * K));
      const y = await createTensor(gpu, 'y', 'f32', [M, N]);
      const op = await prepareMatmul(gpu, { x, w, y });
      return { dispatches: [op], weights: weightFormat(gpu, 'matmul', w), tensors: [x, w, y] };
    },
  };
}

/** Real layer shapes: SmolLM2-135M (hidden 576, MLP 1536, vocab 49152) and Qwen2.5-0.5B (896, 4864). */
const CASES: BenchCase[] = (['f32', 'f16'] as const).flatMap((w) => [
  // Prefill: a 128-token chunk through the attention projections and the MLP.
  matmulCase('SmolLM2 q_proj', 128, 576, 576, w),
  matmulCase('SmolLM2 up_proj', 128, 1536, 576, w),
  // Decode: one token through the same layers, then the Qwen2.5 ones and a vocabulary projection.
  matmulCase('SmolLM2 q_proj', 1, 576, 576, w),
  matmulCase('SmolLM2 up_proj', 1, 1536, 576, w),
  matmulCase('SmolLM2 down_proj', 1, 576, 1536, w),
  matmulCase('SmolLM2 lm_head', 1, 49152, 576, w),
  matmulCase('Qwen2.5 q_proj', 1, 896, 896, w),
  matmulCase('Qwen2.5 up_proj', 1, 4864, 896, w),
  matmulCase('Qwen2.5 down_proj', 1, 896, 4864, w),
]);

const WARMUP = 1;
const MIN_RUNS = 3;
const BUDGET_MS = 2000;

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

async function time(gpu: Gpu, dispatches: KernelDispatch<string>[], runs: number): Promise<{ runs: number; wallMs: number; gpuMs?: number }> {
  const { device } = gpu;
  const timer = gpu.features.timestampQuery
    ? {
        querySet: device.createQuerySet({ type: 'timestamp', count: 2 }),
        resolved: device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
      }
    : undefined;
  const wall: number[] = [];
  const gpuTimes: number[] = [];
  try {
    for (let i = 0; i < WARMUP + runs; i++) {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass(
        timer && { timestampWrites: { querySet: timer.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } },
      );
      for (const d of dispatches) d.encode(pass);
      pass.end();
      if (timer) encoder.resolveQuerySet(timer.querySet, 0, 2, timer.resolved, 0);
      const commands = encoder.finish();
      const start = performance.now();
      device.queue.submit([commands]);
      await device.queue.onSubmittedWorkDone();
      const ms = performance.now() - start;
      if (gpu.lostError) throw gpu.lostError;
      if (i < WARMUP) continue;
      wall.push(ms);
      if (timer) {
        const [begin, end] = new BigUint64Array(await readBuffer(gpu, timer.resolved));
        gpuTimes.push(Number(end - begin) / 1e6);
      }
      if (wall.length >= MIN_RUNS && wall.reduce((a, b) => a + b) > BUDGET_MS) break;
    }
  } finally {
    timer?.querySet.destroy();
    timer?.resolved.destroy();
  }
  return { runs: wall.length, wallMs: median(wall), gpuMs: timer ? median(gpuTimes) : undefined };
}

function option(args: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
}

export async function main(args: string[]): Promise<number> {
  const only = option(args, 'only') ?? '';
  const runs = Number(option(args, 'runs') ?? 10);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${option(args, 'runs')}`);
  const all = args.includes('--all');
  const matching = CASES.filter((c) => `${c.kernel} ${c.shape}`.includes(only));
  const cases = matching.filter((c) => all || !c.slow);

  const gpu = await acquireNodeGpu();
  const adapter = gpu.adapterName;
  console.log(`adapter: ${adapter} (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? ''})`);
  console.log(`features: shader-f16 ${gpu.features.shaderF16}, timestamp-query ${gpu.features.timestampQuery}; median of up to ${runs} runs\n`);

  const rng = createRng(1);
  const results: BenchResult[] = [];
  for (const c of cases) {
    const prepared = await c.prepare(gpu, rng);
    const timing = await time(gpu, prepared.dispatches, runs);
    for (const t of prepared.tensors) t.buffer.destroy();
    const seconds = (timing.gpuMs ?? timing.wallMs) / 1000;
    results.push({
      kernel: c.kernel,
      shape: c.shape,
      weights: prepared.weights,
      ...timing,
      gflops: c.flops / seconds / 1e9,
      gbps: c.bytes / seconds / 1e9,
    });
    process.stderr.write('.');
  }
  process.stderr.write('\n');

  printTable([
    ['kernel', 'shape', 'weights', 'runs', 'wall ms', 'gpu ms', 'GFLOP/s', 'GB/s'],
    ...results.map((r) => [
      r.kernel,
      r.shape,
      r.weights,
      String(r.runs),
      r.wallMs.toFixed(3),
      r.gpuMs === undefined ? '-' : r.gpuMs.toFixed(3),
      r.gflops.toPrecision(3),
      r.gbps.toPrecision(3),
    ]),
  ]);
  console.log('\nGFLOP/s and GB/s use the GPU time where there is one, else the wall time.');
  const skipped = matching.length - cases.length;
  if (skipped) console.log(`${skipped} slow cases (vocabulary projections) left out; --all runs them.`);

  mkdirSync('bench-output', { recursive: true });
  const report = {
    date: new Date().toISOString(),
    adapter,
    isFallbackAdapter: gpu.isFallbackAdapter,
    vkIcdFilenames: process.env.VK_ICD_FILENAMES ?? null,
    features: gpu.features,
    sampling: { warmup: WARMUP, maxRuns: runs, minRuns: MIN_RUNS, budgetMs: BUDGET_MS },
    results,
  };
  writeFileSync('bench-output/kernels.json', `${JSON.stringify(report, null, 2)}\n`);
  console.log('wrote bench-output/kernels.json');
  gpu.device.destroy();
  return 0;
}
