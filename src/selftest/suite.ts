/**
 * The kernel self-test suite: named checks of every kernel against its CPU reference, run by the self-test
 * page (`npm start`) and by the headless-browser test. Each case draws its inputs from a seed, so a failure
 * can be replayed with the seed shown in the results.
 */
import type { Gpu, GpuFeatures } from '../gpu/device';
import { describe, type CheckResult } from './compare';
import { checkMatmul, type MatmulCase } from './matmul';
import { freshSeed } from './random';

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
  const extras = `${c.bias ? ' +bias' : ''}${c.accumulate ? ' +residual' : ''}`;
  return {
    name: `matmul ${c.variant} ${c.M}x${c.N}x${c.K} ${c.weights}${extras}`,
    requires: c.weights === 'f16' ? 'shaderF16' : undefined,
    run: (gpu, seed) => checkMatmul(gpu, c, seed),
  };
}

/** Shapes that are not multiples of the tiles, an N past one 4096-wide row, and the bias/residual epilogue. */
const matmulCases: SelftestCase[] = (['f32', 'f16-packed', 'f16'] as const).flatMap((weights) => [
  matmulCase({ M: 37, N: 129, K: 130, weights, variant: 'tiled' }),
  matmulCase({ M: 130, N: 97, K: 83, weights, variant: 'tiled' }),
  matmulCase({ M: 37, N: 61, K: 45, weights, variant: 'tiled', bias: true, accumulate: true }),
  matmulCase({ M: 1, N: 4097, K: 19, weights, variant: 'matvec' }),
  matmulCase({ M: 1, N: 1000, K: 67, weights, variant: 'matvec' }),
  matmulCase({ M: 3, N: 61, K: 45, weights, variant: 'matvec', bias: true, accumulate: true }),
]);

// ---------------------------------------------------------------------------------------------------------
// THE SUITE. Add each kernel's checks here (attention, norm, rope, silu_mul, gelu, add, embedding, argmax,
// softmax), a few odd shapes per kernel: the self-test page and test/browser/selftest.test.ts run them all.
// ---------------------------------------------------------------------------------------------------------
export const SELFTEST_CASES: readonly SelftestCase[] = [...matmulCases];

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
