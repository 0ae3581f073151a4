/**
 * Kernel benchmark on Node's Dawn adapter (VK_ICD_FILENAMES picks the Vulkan driver; SwiftShader by
 * default): `npm run bench:kernels [-- --only=<text>] [--runs=<n>] [--all]`. Each case is prepared once,
 * run once to warm up, then submitted up to `runs` times (at least 3, fewer than `runs` once a case has
 * taken 2 s, so software drivers finish in minutes). We report the median wall time of submit +
 * onSubmittedWorkDone and, where the device has timestamp queries, the median GPU time of the compute pass.
 * A buffer copy measured first gives the yardstick for decode: each matvec's GB/s (bytes as stored, q4/q8
 * scales included) as a % of copy bandwidth. Prefill cases are slow on software drivers: --all runs them.
 * Prints a table and writes bench-output/kernels.json. To benchmark another kernel, add cases to CASES.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Gpu } from '../gpu/device';
import type { KernelDispatch } from '../gpu/dispatch';
import { toF16 } from '../gpu/f16';
import { acquireNodeGpu } from '../gpu/node';
import { LimitsExceededError } from '../gpu/errors';
import { createTensor, readBuffer, uploadTensor, type Tensor } from '../gpu/tensor';
import { prepareMatmul } from '../kernels/matmul/matmul';
import { weightFormat } from '../kernels/matmul/weights';
import { quantize, type QuantDType } from '../quant/quantize';
import { ATTENTION_CASES, attentionCaseName, attentionTable, benchAttention, type AttentionBenchResult, type Encodable } from './attention';
import { createRng, randomNormal, type Rng } from '../util/random';
import { measureCopyGBps } from './model-bench';

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
  /** Decode (matvec) only: GB/s as a percentage of the copy bandwidth measured in the same run. */
  percentOfCopy?: number;
}

type BenchWeights = 'f32' | 'f16' | QuantDType;

/** Bytes per weight as stored: q4 and q8 carry one f16 scale per block of 32. */
const WEIGHT_BYTES: Record<BenchWeights, number> = { f32: 4, f16: 2, q8: 1 + 2 / 32, q4: 0.5 + 2 / 32 };

/** A random pattern repeated to fill big matrices: their contents do not change the timing. */
const PATTERN = 1 << 20;

function randomWeights(rng: Rng, n: number, K: number): Float32Array {
  const pattern = randomNormal(rng, Math.min(n, PATTERN), 1 / Math.sqrt(K));
  const out = new Float32Array(n);
  for (let at = 0; at < n; at += pattern.length) out.set(pattern.subarray(0, Math.min(pattern.length, n - at)), at);
  return out;
}

async function uploadWeights(gpu: Gpu, rng: Rng, N: number, K: number, weights: BenchWeights): Promise<Tensor> {
  const data = randomWeights(rng, N * K, K);
  if (weights === 'f32') return uploadTensor(gpu, 'w', 'f32', [N, K], data);
  if (weights === 'f16') return uploadTensor(gpu, 'w', 'f16', [N, K], toF16(data));
  return uploadTensor(gpu, 'w', weights, [N, K], quantize(weights, data, [N, K]));
}

/**
 * Y[M,N] = X[M,K] · W[N,K]ᵀ with random data; tiled for M > 1, matvec for M = 1 (as prepareMatmul picks), or
 * the batched matvec (what a model on a software adapter runs for a chunk of tokens).
 */
function matmulCase(layer: string, M: number, N: number, K: number, weights: BenchWeights, slow = false, variant?: 'batched'): BenchCase {
  return {
    kernel: variant ? 'matmul-batched' : M === 1 ? 'matvec' : 'matmul',
    shape: `${layer} ${M}x${N}x${K}`,
    flops: 2 * M * N * K,
    bytes: 4 * M * K + WEIGHT_BYTES[weights] * N * K + 4 * M * N,
    slow,
    async prepare(gpu, rng) {
      const w = await uploadWeights(gpu, rng, N, K, weights);
      const x = await uploadTensor(gpu, 'x', 'f32', [M, K], randomNormal(rng, M * K));
      const y = await createTensor(gpu, 'y', 'f32', [M, N]);
      try {
        const op = await prepareMatmul(gpu, { x, w, y, variant });
        return { dispatches: [op], weights: weightFormat(gpu, 'matmul', w), tensors: [x, w, y] };
      } catch (e) {
        for (const t of [x, w, y]) t.buffer.destroy();
        throw e;
      }
    },
  };
}

/** Decode layers (N x K) of TinyLlama-1.1B / Llama-1B (hidden 2048, KV 256, MLP 5632, vocab 32000) and Qwen2.5-0.5B. */
const DECODE_SHAPES: [string, number, number][] = [
  ['TinyLlama q_proj', 2048, 2048],
  ['TinyLlama k_proj', 256, 2048],
  ['TinyLlama up_proj', 5632, 2048],
  ['TinyLlama down_proj', 2048, 5632],
  ['TinyLlama lm_head', 32000, 2048],
  ['Qwen2.5 q_proj', 896, 896],
  ['Qwen2.5 up_proj', 4864, 896],
  ['Qwen2.5 down_proj', 896, 4864],
  ['Qwen2.5 lm_head', 151936, 896],
];

/** Prefill: a 128-token chunk through TinyLlama's attention projection and MLP. */
const PREFILL_SHAPES: [string, number, number][] = [
  ['TinyLlama q_proj', 2048, 2048],
  ['TinyLlama up_proj', 5632, 2048],
];

const CASES: BenchCase[] = [
  ...(['f16', 'q8', 'q4'] as const).flatMap((w) => DECODE_SHAPES.map(([layer, N, K]) => matmulCase(layer, 1, N, K, w))),
  ...DECODE_SHAPES.slice(0, 4).map(([layer, N, K]) => matmulCase(layer, 1, N, K, 'f32')),
  ...(['f32', 'f16', 'q8', 'q4'] as const).flatMap((w) => PREFILL_SHAPES.map(([layer, N, K]) => matmulCase(layer, 128, N, K, w, true))),
  ...(['f16', 'q4'] as const).flatMap((w) => PREFILL_SHAPES.map(([layer, N, K]) => matmulCase(layer, 128, N, K, w, true, 'batched'))),
];

const WARMUP = 1;
const MIN_RUNS = 3;
const BUDGET_MS = 2000;

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

async function time(gpu: Gpu, dispatches: Encodable[], runs: number): Promise<{ runs: number; wallMs: number; gpuMs?: number }> {
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

  // Software adapters are bound by instructions, not memory: the copy rate in the same run is the yardstick.
  const copyGBps = await measureCopyGBps(gpu);
  console.log(`device copy bandwidth: ${copyGBps.toFixed(1)} GB/s (buffer-to-buffer, bytes read + written)\n`);

  const rng = createRng(1);
  const results: BenchResult[] = [];
  const skipped: string[] = [];
  for (const c of cases) {
    let prepared: Prepared;
    try {
      prepared = await c.prepare(gpu, rng);
    } catch (e) {
      // A matrix over the device's binding limit (Qwen2.5's f16 vocabulary projection on lavapipe) is skipped.
      if (!(e instanceof LimitsExceededError)) throw e;
      skipped.push(`${c.kernel} ${c.shape}: ${e.message}`);
      continue;
    }
    const timing = await time(gpu, prepared.dispatches, runs);
    for (const t of prepared.tensors) t.buffer.destroy();
    const seconds = (timing.gpuMs ?? timing.wallMs) / 1000;
    const gbps = c.bytes / seconds / 1e9;
    results.push({
      kernel: c.kernel,
      shape: c.shape,
      weights: prepared.weights,
      ...timing,
      gflops: c.flops / seconds / 1e9,
      gbps,
      percentOfCopy: c.kernel === 'matvec' ? (100 * gbps) / copyGBps : undefined,
    });
    process.stderr.write('.');
  }
  process.stderr.write('\n');

  printTable([
    ['kernel', 'shape', 'weights', 'runs', 'wall ms', 'gpu ms', 'GFLOP/s', 'GB/s', '% of copy'],
    ...results.map((r) => [
      r.kernel,
      r.shape,
      r.weights,
      String(r.runs),
      r.wallMs.toFixed(3),
      r.gpuMs === undefined ? '-' : r.gpuMs.toFixed(3),
      r.gflops.toPrecision(3),
      r.gbps.toPrecision(3),
      r.percentOfCopy === undefined ? '-' : r.percentOfCopy.toFixed(1),
    ]),
  ]);
  console.log('\nGFLOP/s and GB/s use the GPU time where there is one, else the wall time; GB/s counts the bytes stored');
  console.log('(q4 and q8 with their block scales), % of copy compares it with the copy bandwidth above.');
  const slowLeftOut = matching.length - cases.length;
  if (slowLeftOut) console.log(`${slowLeftOut} slow cases (prefill) left out; --all runs them.`);
  for (const line of skipped) console.log(`skipped ${line}`);

  // Attention: its own table, each case with an f32 and an f16 KV cache, against the copy bandwidth.
  const attentionMatching = ATTENTION_CASES.filter((c) => attentionCaseName(c).includes(only));
  const attentionCases = attentionMatching.filter((c) => all || !c.slow);
  const attention: AttentionBenchResult[] = [];
  if (attentionCases.length) {
    for (const c of attentionCases) {
      for (const kv of ['f32', 'f16'] as const) attention.push(await benchAttention(gpu, c, kv, copyGBps, runs, time));
      process.stderr.write('.');
    }
    process.stderr.write('\n');
    printTable(attentionTable(attention));
    console.log('\nK/V MB read: the cache positions a step must read (decode: per token); % of copy against the copy bandwidth above.');
    const attentionSkipped = attentionMatching.length - attentionCases.length;
    if (attentionSkipped) console.log(`${attentionSkipped} slow attention cases (prefill) left out; --all runs them.`);
  }

  mkdirSync('bench-output', { recursive: true });
  const report = {
    date: new Date().toISOString(),
    adapter,
    isFallbackAdapter: gpu.isFallbackAdapter,
    vkIcdFilenames: process.env.VK_ICD_FILENAMES ?? null,
    features: gpu.features,
    copyGBps,
    skipped,
    sampling: { warmup: WARMUP, maxRuns: runs, minRuns: MIN_RUNS, budgetMs: BUDGET_MS },
    results,
    attention,
  };
  writeFileSync('bench-output/kernels.json', `${JSON.stringify(report, null, 2)}\n`);
  console.log('wrote bench-output/kernels.json');
  gpu.device.destroy();
  return 0;
}
