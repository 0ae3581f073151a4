import type { Gpu } from '../../gpu/device';
import { prepareNorm, type NormKind } from './norm';
import { normRef } from './reference';
import type { CheckResult } from '../../selftest/compare';
import { destroyAll, poisoned, runAndRead, upload } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';
import { checkWithUntouched } from '../rope/check';

export interface NormCase {
  rows: number;
  D: number;
  kind: NormKind;
  bias?: boolean;
  /** Default: 1e-6 for RMSNorm, 1e-5 for LayerNorm (typical values, too small to show a missing eps). */
  eps?: number;
  /** Rows the buffers hold (default `rows`); the dispatch is prepared for all, then `set({ rows })`. */
  maxRows?: number;
  /** Add to what `out` holds (random rows, NaN past `rows`) instead of writing. */
  accumulate?: boolean;
}

export const NORM_TOLERANCE = 1e-6;

export async function checkNorm(gpu: Gpu, c: NormCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { rows, D, kind } = c;
  const maxRows = c.maxRows ?? rows;
  // An offset mean, so LayerNorm's centring matters; weights around 1 like trained norms.
  const xData = randomNormal(rng, maxRows * D).map((v) => v * 2 + 3);
  const wData = randomNormal(rng, D, 0.2).map((v) => v + 1);
  const bData = c.bias ? randomNormal(rng, D) : undefined;
  const eps = c.eps ?? (kind === 'rms' ? 1e-6 : 1e-5);
  const x = await upload(gpu, 'x', [maxRows, D], xData);
  const weight = await upload(gpu, 'weight', [D], wData);
  const bias = bData && (await upload(gpu, 'bias', [D], bData));
  const prior = randomNormal(rng, rows * D);
  const out = await poisoned(gpu, 'out', [maxRows, D]);
  if (c.accumulate) gpu.device.queue.writeBuffer(out.buffer, 0, new Float32Array(prior));

  const op = await prepareNorm(gpu, { x, out, weight, bias, kind, eps, accumulate: c.accumulate });
  op.set({ rows });
  const actual = await runAndRead(gpu, [op], out);
  destroyAll(x, weight, bias, out);

  const expected = new Float32Array(maxRows * D).fill(NaN);
  const normed = normRef(xData, wData, rows, D, kind, eps, bData);
  expected.set(c.accumulate ? normed.map((v, i) => v + prior[i]) : normed);
  const name = `norm ${kind} rows ${rows}/${maxRows} D=${D} eps ${eps}${c.bias ? ' +bias' : ''}${c.accumulate ? ' accumulate' : ''}`;
  return checkWithUntouched(name, seed, NORM_TOLERANCE, actual, expected);
}
