/**
 * Whole-model benchmark, platform-neutral (Node's Dawn or a browser): prefill and decode speed, time to
 * first token, CPU encode and GPU time per token, dispatches/passes/submits and bytes read back per token,
 * weight bytes per token against a device copy bandwidth measured in the same run, and GPU memory.
 * Random weights where no real checkpoint is at hand: speed does not depend on weight values.
 */
import type { Gpu } from '../gpu/device';
import { parseModelConfig, type ModelSpec } from '../model/config';
import { ASSUME_CACHED, GpuModel } from '../model/forward';
import type { KernelShapes } from '../model/plan';
import { BENCHMARK_MODELS, randomModel, type BenchmarkModelName } from '../dev/random-model';
import type { QuantDType } from '../quant/quantize';
import { loadCanonicalWeights, tensorMapReader, type CanonicalWeights, type WeightDtype } from '../model/weights';
import { createRng } from '../util/random';

/** The weight matrices' format: as loaded (f32/f16) or quantized at load (q8/q4, from f16). */
export type BenchDtype = WeightDtype | QuantDType;

export interface ModelBenchCase {
  model: string;
  dtype: BenchDtype;
  /** Loads the weights (random, or a real checkpoint read by the caller). */
  load(): Promise<{ spec: ModelSpec; weights: CanonicalWeights }>;
}

export interface ModelBenchPlan {
  prefillLengths: number[];
  decodePositions: number[];
  /** Tokens timed per decode measurement. */
  decodeTokens: number;
  /**
   * How decode reaches a position: 'assume' takes the cache as filled (ASSUME_CACHED: zeros or the warm-up's
   * entries, which cost attention the same as real ones), 'prefill' runs that many tokens first (hours for a
   * 1B model at position 2048 on a software adapter). Default 'assume'.
   */
  decodeFill?: 'assume' | 'prefill';
}

export interface ModelBenchResult {
  model: string;
  dtype: BenchDtype;
  adapter: string;
  contextLength: number;
  /** Prompt length → prefill tokens/s (all chunks, through the first token's readback). */
  prefillTokensPerSecond: Record<string, number>;
  /** Prompt length → prefill GFLOP/s (`prefillFlops`: projections, attention and the one LM-head row). */
  prefillGflops: Record<string, number>;
  /** Time to first token for the shortest prompt, ms. */
  timeToFirstTokenMs: number;
  /** Position → decode tokens/s. */
  decodeTokensPerSecond: Record<string, number>;
  /** Position → weight bytes per token × decode tokens/s, as a % of the copy bandwidth. */
  decodePercentOfCopy: Record<string, number>;
  /** Per decode token, at the first decode position. */
  perToken: {
    cpuEncodeMs: number;
    /** From timestamp queries; null where the device has none. */
    gpuMs: number | null;
    dispatches: number;
    passes: number;
    submits: number;
    readbackBytes: number;
    weightBytes: number;
  };
  /** Weight bytes per token × decode tokens/s at the first position. */
  achievedGBps: number;
  /** A large buffer-to-buffer copy on the same device (bytes read + written per second). */
  copyGBps: number;
  gpuMemoryBytes: number;
  /** The matmul shapes tuned at load for this device (as the engine loads). */
  kernelShapes: KernelShapes;
  /** Why a planned measurement was left out (context too short, …). */
  notes: string[];
}

export function randomBenchCase(name: BenchmarkModelName, dtype: BenchDtype, seed = 1): ModelBenchCase {
  const stored = dtype === 'f32' ? 'f32' : 'f16';
  return {
    model: name,
    dtype,
    async load() {
      const { arch, options } = BENCHMARK_MODELS[name];
      const { config, tensors } = randomModel(arch, { ...options, dtype: stored }, seed);
      const spec = parseModelConfig(config);
      return { spec, weights: await loadCanonicalWeights(spec, tensorMapReader(tensors), { dtype: stored }) };
    },
  };
}

/** Copy bandwidth: the best of a few copies of a buffer of `bytes` (capped by the device limits). */
export async function measureCopyGBps(gpu: Gpu, bytes = 256 * 2 ** 20): Promise<number> {
  const size = Math.min(bytes, gpu.device.limits.maxBufferSize, 2 ** 30) & ~3;
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const a = gpu.device.createBuffer({ size, usage });
  const b = gpu.device.createBuffer({ size, usage });
  try {
    let best = Infinity;
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const encoder = gpu.device.createCommandEncoder();
      encoder.copyBufferToBuffer(a, 0, b, 0, size);
      gpu.device.queue.submit([encoder.finish()]);
      await gpu.device.queue.onSubmittedWorkDone();
      if (i > 0) best = Math.min(best, performance.now() - t0);
    }
    return (2 * size) / (best * 1e6);
  } finally {
    a.destroy();
    b.destroy();
  }
}

/**
 * Floating-point operations of a prefill of n tokens from position 0: 2 per weight per token through the
 * layers' projections, q·k and p·v over the causal triangle (n(n+1)/2 pairs per head), and the LM head for
 * the last token only (that is all prefill computes of it). Norms, rope and softmax are left out (small).
 */
export function prefillFlops(spec: ModelSpec, n: number): number {
  const { hiddenSize: D, intermediateSize: I, numHeads, numKvHeads, headDim, numLayers, vocabSize } = spec;
  const projections = D * headDim * (2 * numHeads + 2 * numKvHeads) + (spec.gatedMlp ? 3 : 2) * D * I;
  const attention = 2 * 2 * numHeads * headDim * ((n * (n + 1)) / 2);
  return numLayers * (2 * n * projections + attention) + 2 * vocabSize * D;
}

export async function benchModel(gpu: Gpu, c: ModelBenchCase, plan: ModelBenchPlan, copyGBps: number, log: (line: string) => void): Promise<ModelBenchResult> {
  const { spec, weights } = await c.load();
  const need = Math.max(...plan.prefillLengths, ...plan.decodePositions.map((p) => p + plan.decodeTokens)) + 1;
  const contextLength = Math.min(spec.maxContext, need);
  const quantize = c.dtype === 'q8' || c.dtype === 'q4' ? c.dtype : undefined;
  const model = await GpuModel.create(gpu, spec, weights, { contextLength, prefillChunk: 128, profile: true, quantize, tune: true });
  const rng = createRng(7);
  const tokens = (n: number) => Array.from({ length: n }, () => rng.int(spec.vocabSize));
  const notes: string[] = [];
  try {
    // Warm up: the tiled prefill plan compiles after load, and the first submits pay for lazy driver work.
    await model.whenCompiled();
    await model.forward(tokens(Math.min(8, contextLength - 1)));
    model.rewind(0);

    const prefillTokensPerSecond: Record<string, number> = {};
    const prefillGflops: Record<string, number> = {};
    let timeToFirstTokenMs = NaN;
    for (const n of plan.prefillLengths) {
      if (n >= contextLength) {
        notes.push(`prefill ${n}: context is ${contextLength}`);
        continue;
      }
      model.rewind(0);
      const t0 = performance.now();
      await model.forward(tokens(n));
      const ms = performance.now() - t0;
      prefillTokensPerSecond[n] = (n * 1000) / ms;
      prefillGflops[n] = prefillFlops(spec, n) / (ms * 1e6);
      if (Number.isNaN(timeToFirstTokenMs)) timeToFirstTokenMs = ms;
      log(`  ${c.model} ${c.dtype}: prefill ${n} tokens in ${ms.toFixed(1)} ms`);
    }

    const decodeTokensPerSecond: Record<string, number> = {};
    const decodePercentOfCopy: Record<string, number> = {};
    let perToken: ModelBenchResult['perToken'] | undefined;
    for (const pos of plan.decodePositions) {
      if (pos + plan.decodeTokens >= contextLength) {
        notes.push(`decode at ${pos}: context is ${contextLength}`);
        continue;
      }
      model.rewind(0);
      if (pos > 0 && plan.decodeFill === 'prefill') await model.forward(tokens(pos));
      else model[ASSUME_CACHED](pos);
      const before = { ...model.stats };
      let next = await model.forward([1]);
      const t0 = performance.now();
      for (let i = 1; i < plan.decodeTokens; i++) next = await model.forward([next.kind === 'token' ? next.token : 1]);
      const ms = performance.now() - t0;
      decodeTokensPerSecond[pos] = ((plan.decodeTokens - 1) * 1000) / ms;
      decodePercentOfCopy[pos] = (100 * model.decodeWeightBytes * decodeTokensPerSecond[pos]) / 1e9 / copyGBps;
      log(`  ${c.model} ${c.dtype}: decode at ${pos}: ${decodeTokensPerSecond[pos].toFixed(2)} tok/s`);
      if (!perToken) {
        const n = plan.decodeTokens;
        const s = model.stats;
        perToken = {
          cpuEncodeMs: (s.encodeMs - before.encodeMs) / n,
          gpuMs: gpu.features.timestampQuery ? (s.gpuMs - before.gpuMs) / n : null,
          dispatches: (s.dispatches - before.dispatches) / n,
          passes: (s.passes - before.passes) / n,
          submits: (s.submits - before.submits) / n,
          readbackBytes: (s.readbackBytes - before.readbackBytes) / n,
          weightBytes: model.decodeWeightBytes,
        };
      }
    }
    if (!perToken) throw new Error(`${c.model}: no decode position fits a context of ${contextLength}`);
    const firstDecode = decodeTokensPerSecond[plan.decodePositions.find((p) => p in decodeTokensPerSecond) ?? 0];
    return {
      model: c.model,
      dtype: c.dtype,
      adapter: gpu.adapterName,
      contextLength,
      prefillTokensPerSecond,
      prefillGflops,
      timeToFirstTokenMs,
      decodeTokensPerSecond,
      decodePercentOfCopy,
      perToken,
      achievedGBps: (perToken.weightBytes * firstDecode) / 1e9,
      copyGBps,
      gpuMemoryBytes: model.allocatedBytes,
      kernelShapes: model.kernelShapes,
      notes,
    };
  } finally {
    model.destroy();
  }
}

const fmt = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));

/** matvec threads×rows, tiled threads (M×N)×K slice. */
function formatShapes({ matvec, tile, batch }: KernelShapes): string {
  const batched = batch ? ` / batch ${batch.wg}×${batch.rows}×${batch.tokens}` : '';
  return `${matvec.wg}×${matvec.rows} / ${tile.wgM}×${tile.wgN}×${tile.tileK}${batched}`;
}

/** A Markdown table (it reads fine in a terminal too). */
export function formatTable(results: ModelBenchResult[], plan: ModelBenchPlan): string {
  const head = [
    'model',
    'weights',
    ...plan.prefillLengths.map((n) => `prefill ${n} tok/s (GFLOP/s)`),
    'TTFT ms',
    ...plan.decodePositions.map((p) => `decode @${p} tok/s (% of copy)`),
    'CPU ms/tok',
    'GPU ms/tok',
    'dispatches/passes/submits per tok',
    'readback B/tok',
    'weight MB/tok',
    'GB/s (copy GB/s)',
    'GPU MB',
    'tuned matvec / tile (/ batch)',
  ];
  const rows = results.map((r) => [
    r.model,
    r.dtype,
    ...plan.prefillLengths.map((n) => `${fmt(r.prefillTokensPerSecond[n])} (${fmt(r.prefillGflops[n], 2)})`),
    fmt(r.timeToFirstTokenMs),
    ...plan.decodePositions.map((p) => `${fmt(r.decodeTokensPerSecond[p], 2)} (${fmt(r.decodePercentOfCopy?.[p], 1)})`),
    fmt(r.perToken.cpuEncodeMs, 2),
    fmt(r.perToken.gpuMs, 2),
    `${r.perToken.dispatches}/${r.perToken.passes}/${r.perToken.submits}`,
    String(r.perToken.readbackBytes),
    fmt(r.perToken.weightBytes / 1e6),
    `${fmt(r.achievedGBps, 2)} (${fmt(r.copyGBps, 1)})`,
    fmt(r.gpuMemoryBytes / 1e6),
    formatShapes(r.kernelShapes),
  ]);
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
