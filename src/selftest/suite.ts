/**
 * The kernel self-test suite: named checks of every kernel against its CPU reference, run by the self-test
 * page (`npm start`) and by the headless-browser test. Each case draws its inputs from a seed, so a failure
 * can be replayed with the seed shown in the results.
 */
import type { Gpu, GpuFeatures } from '../gpu/device';
import { checkArgmax } from '../kernels/argmax/check';
import { checkLogSumExp } from '../kernels/logsumexp/check';
import { checkAttention } from '../kernels/attention/check';
import { checkEmbedding } from '../kernels/embedding/check';
import { checkEncoderAttention } from '../kernels/encoder_attention/check';
import { checkGelu } from '../kernels/gelu/check';
import { checkMaskLogits } from '../kernels/mask_logits/check';
import { checkMatmul, type MatmulCase } from '../kernels/matmul/check';
import { checkNorm } from '../kernels/norm/check';
import { checkQuantize } from '../kernels/quantize/check';
import { checkRope } from '../kernels/rope/check';
import { checkTopK } from '../kernels/topk/check';
import { describe, type CheckResult } from './compare';
import { freshSeed } from '../util/random';

export interface SelftestCase {
  name: string;
  /** A device feature the case needs; where it is off the case is skipped, not failed. */
  requires?: keyof GpuFeatures;
  run(gpu: Gpu, seed: number): Promise<CheckResult>;
}

export interface SuiteResult {
  name: string;
  seed: number;
  passed: boolean;
  /** Wall time of the case (upload, compile, run, read back, reference), ms. */
  ms: number;
  /** The comparison; absent when the case threw before producing output. */
  check?: CheckResult;
  /** Why it failed: the comparison summary, or the error the case threw. */
  message?: string;
}

function matmulCase(c: MatmulCase): SelftestCase {
  const extras = `${c.bias ? ' +bias' : ''}${c.accumulate ? ' +residual' : ''}${c.norm ? ' rmsnorm(x)' : ''}${c.swiglu ? ' swiglu(x)' : ''}`;
  return {
    name: `matmul ${c.variant} ${c.M}x${c.N}x${c.K} ${c.weights}${extras}`,
    requires: c.weights === 'f16' ? 'shaderF16' : undefined,
    run: (gpu, seed) => checkMatmul(gpu, c, seed),
  };
}

/**
 * Every weight format a model can load, on shapes that are not multiples of the tiles, an N past one
 * 4096-wide row, the bias/residual epilogue, and both fused inputs (the RMSNorm before a projection and the
 * SwiGLU before the down projection), which every decode and prefill step runs.
 */
const matmulCases: SelftestCase[] = (['f32', 'f16-packed', 'f16', 'q8', 'q4'] as const).flatMap((weights) => [
  matmulCase({ M: 37, N: 129, K: 130, weights, variant: 'tiled' }),
  matmulCase({ M: 130, N: 97, K: 83, weights, variant: 'tiled' }),
  matmulCase({ M: 37, N: 61, K: 45, weights, variant: 'tiled', bias: true, accumulate: true }),
  matmulCase({ M: 1, N: 4097, K: 19, weights, variant: 'matvec' }),
  matmulCase({ M: 1, N: 1000, K: 67, weights, variant: 'matvec' }),
  matmulCase({ M: 3, N: 61, K: 45, weights, variant: 'matvec', bias: true, accumulate: true }),
  matmulCase({ M: 67, N: 65, K: 172, weights, variant: 'tiled', norm: true }),
  matmulCase({ M: 1, N: 1000, K: 37, weights, variant: 'matvec', norm: true }),
  matmulCase({ M: 37, N: 61, K: 172, weights, variant: 'tiled', swiglu: true, accumulate: true }),
  matmulCase({ M: 1, N: 65, K: 172, weights, variant: 'matvec', swiglu: true, accumulate: true }),
]);

function named(name: string, run: SelftestCase['run'], requires?: keyof GpuFeatures): SelftestCase {
  return { name, run, requires };
}

/** Head sizes 64/80/128, GQA ratios 1/3/7, a prefill chunk and a decode step near the end of the context. */
const attentionCases: SelftestCase[] = [
  { nHeads: 8, nKvHeads: 8, headDim: 64, maxContext: 1024, T: 7, pos: 1010 },
  { nHeads: 9, nKvHeads: 3, headDim: 80, maxContext: 300, T: 37, pos: 0 },
  { nHeads: 14, nKvHeads: 2, headDim: 128, maxContext: 8192, T: 1, pos: 8191 },
].map((c) => named(`attention nH=${c.nHeads} nKV=${c.nKvHeads} hd=${c.headDim} T=${c.T} pos=${c.pos}`, (gpu, seed) => checkAttention(gpu, c, seed)));

/** BERT's bidirectional attention over a packed batch: MiniLM's and BERT-base's head widths, lengths across the blocks. */
const encoderAttentionCases: SelftestCase[] = [
  { nHeads: 12, headDim: 32, lengths: [128, 1, 17] },
  { nHeads: 12, headDim: 64, lengths: [65, 130] },
].map((c) => named(`encoder attention heads=${c.nHeads}×${c.headDim} lengths=${c.lengths}`, (gpu, seed) => checkEncoderAttention(gpu, c, seed)));

const normCases: SelftestCase[] = [
  named('rmsnorm 7x576', (gpu, seed) => checkNorm(gpu, { rows: 7, D: 576, kind: 'rms', eps: 0.5 }, seed)),
  named('rmsnorm 1x2049', (gpu, seed) => checkNorm(gpu, { rows: 1, D: 2049, kind: 'rms' }, seed)),
  named('layernorm 37x65 +bias', (gpu, seed) => checkNorm(gpu, { rows: 37, D: 65, kind: 'layer', bias: true }, seed)),
];

const ropeCases: SelftestCase[] = [
  named('rope rotate-half hd=64 GQA 9/3, prefill then decode', (gpu, seed) =>
    checkRope(gpu, { nHeads: 9, nKvHeads: 3, headDim: 64, rotaryDim: 64, maxContext: 512, steps: [{ T: 7, pos: 0 }, { T: 1, pos: 7 }] }, seed),
  ),
  named('rope hd=80 partial 32, qk-norm', (gpu, seed) =>
    checkRope(gpu, { nHeads: 4, nKvHeads: 2, headDim: 80, rotaryDim: 32, maxContext: 64, qkNorm: true, normEps: 0.5, steps: [{ T: 5, pos: 59 }] }, seed),
  ),
];

const smallOpCases: SelftestCase[] = [
  named('gelu 37x65', (gpu, seed) => checkGelu(gpu, { maxRows: 37, width: 65 }, seed)),
  named('gelu erf 37x65', (gpu, seed) => checkGelu(gpu, { maxRows: 37, width: 65 }, seed, { erf: true })),
  named('embedding f32 V=1000 D=65', (gpu, seed) => checkEmbedding(gpu, { maxRows: 7, V: 1000, D: 65, weights: 'f32' }, seed)),
  named('embedding f16-packed V=1000 D=576', (gpu, seed) => checkEmbedding(gpu, { maxRows: 7, V: 1000, D: 576, weights: 'f16-packed' }, seed)),
  named('argmax V=4097', (gpu, seed) => checkArgmax(gpu, { V: 4097 }, seed)),
  named('logsumexp V=4097', (gpu, seed) => checkLogSumExp(gpu, { V: 4097 }, seed)),
  named('top-k k=40 V=32000 ties', (gpu, seed) => checkTopK(gpu, { V: 32000, k: 40, data: 'ties' }, seed)),
  named('top-k k=5/64 V=4097 NaN', (gpu, seed) => checkTopK(gpu, { V: 4097, k: 5, capacity: 64, data: 'nan' }, seed)),
  named('mask_logits V=151936 count=267', (gpu, seed) => checkMaskLogits(gpu, { V: 151936, count: 267 }, seed)),
  named('quantize q8 adversarial 4099 in slices of 1024', (gpu, seed) => checkQuantize(gpu, { dtype: 'q8', count: 4099, slice: 1024, values: 'adversarial' }, seed)),
  named('quantize q4 gaussian 4099 in slices of 1024', (gpu, seed) => checkQuantize(gpu, { dtype: 'q4', count: 4099, slice: 1024, values: 'gaussian' }, seed)),
];

/** Every kernel, a few odd shapes each: the self-test page and test/browser/selftest.test.ts run them all. */
export const SELFTEST_CASES: readonly SelftestCase[] = [...matmulCases, ...attentionCases, ...encoderAttentionCases, ...normCases, ...ropeCases, ...smallOpCases];

export interface SuiteSelection {
  run: SelftestCase[];
  /** Cases left out because the device lacks a feature they need. */
  skipped: SelftestCase[];
}

/** The cases whose name contains `only` (all when empty), split by whether this device can run them. */
export function selectCases(gpu: Gpu, only = '', cases: readonly SelftestCase[] = SELFTEST_CASES): SuiteSelection {
  const wanted = cases.filter((c) => c.name.includes(only));
  const runnable = (c: SelftestCase) => !c.requires || gpu.features[c.requires];
  return { run: wanted.filter(runnable), skipped: wanted.filter((c) => !runnable(c)) };
}

export interface RunOptions {
  /** Replays every case with this seed; by default each case gets a fresh one. */
  seed?: number;
  /** Called after each case, to show progress. */
  onResult?(result: SuiteResult): void;
}

/** Runs the cases one after another; a case that throws is recorded as failed and the rest still run. */
export async function runSuite(gpu: Gpu, cases: readonly SelftestCase[], options: RunOptions = {}): Promise<SuiteResult[]> {
  const results: SuiteResult[] = [];
  for (const c of cases) {
    const seed = options.seed ?? freshSeed();
    const start = performance.now();
    let result: SuiteResult;
    try {
      const check = await c.run(gpu, seed);
      const ms = performance.now() - start;
      result = { name: c.name, seed, passed: check.passed, ms, check, message: check.passed ? undefined : describe(check) };
    } catch (e) {
      const ms = performance.now() - start;
      result = { name: c.name, seed, passed: false, ms, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
    }
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}
