import type { Gpu } from '../gpu/device';
import { writeTensor } from '../gpu/tensor';
import { prepareMatmul } from '../ops/matmul';
import type { WeightFormat } from '../ops/weights';
import { matmulRef } from '../reference/matmul';
import { check, type CheckResult } from './compare';
import { destroyAll, poisoned, runAndRead, upload, uploadWeights } from './harness';
import { createRng, randomNormal } from './random';

export interface MatmulCase {
  M: number;
  N: number;
  K: number;
  weights: WeightFormat;
  bias?: boolean;
  accumulate?: boolean;
  variant?: 'tiled' | 'matvec';
}

/** f32 results agree to rounding; f16 weights get the looser bound the issue allows for f16 paths. */
export const MATMUL_TOLERANCE = { f32: 1e-6, f16: 1e-3 };

export async function checkMatmul(gpu: Gpu, c: MatmulCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { M, N, K } = c;
  const wdtype = c.weights === 'f32' ? 'f32' : 'f16';
  const xData = randomNormal(rng, M * K);
  const w = await uploadWeights(gpu, 'w', [N, K], randomNormal(rng, N * K, 1 / Math.sqrt(K)), wdtype);
  const x = await upload(gpu, 'x', [M, K], xData);
  const biasData = c.bias ? randomNormal(rng, N) : undefined;
  const bias = biasData && (await upload(gpu, 'bias', [N], biasData));
  const y = await poisoned(gpu, 'y', [M, N]);
  const residual = c.accumulate ? randomNormal(rng, M * N) : undefined;
  if (residual) writeTensor(gpu, y, residual);

  const op = await prepareMatmul(gpu, {
    x,
    w: w.tensor,
    y,
    bias,
    accumulate: c.accumulate,
    variant: c.variant,
    weightFormat: c.weights,
  });
  const actual = await runAndRead(gpu, [op], y);
  destroyAll(x, w.tensor, bias, y);

  const name = `matmul ${c.variant ?? 'auto'} M=${M} N=${N} K=${K} w=${c.weights}${c.bias ? ' +bias' : ''}${c.accumulate ? ' +residual' : ''}`;
  return check(name, seed, MATMUL_TOLERANCE[wdtype], actual, matmulRef(xData, w.values, M, N, K, biasData, residual));
}
