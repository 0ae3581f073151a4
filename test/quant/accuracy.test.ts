/**
 * How much q8/q4 quantization changes matvec outputs: NMSE of the GPU matvec on quantized weights against
 * the same matvec on the f32 weights, for random matrices and for every matrix of stories260K. Printed as
 * a report; the bounds asserted are loose sanity checks (q8 < 1e-3, q4 < 1e-1), not targets: a broken
 * quantizer gives an NMSE near 1, while a heavy-tailed matrix (the embedding) legitimately reaches ~5e-2 in q4,
 * whose scale follows each block's largest value.
 */
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/device';
import { runDispatches } from '../../src/gpu/dispatch';
import { readTensor, uploadTensor } from '../../src/gpu/tensor';
import { openSafetensors } from '../../src/formats/safetensors';
import { bytesSource } from '../../src/formats/sources';
import { prepareMatmul } from '../../src/kernels/matmul/matmul';
import { quantize, type QuantDType } from '../../src/quant/quantize';
import { compare } from '../../src/selftest/compare';
import { destroyAll, poisoned, upload } from '../../src/selftest/harness';
import { createRng, randomNormal } from '../../src/util/random';
import { freshSeed, testGpu } from '../gpu';
import { readModelBytes } from '../models';

const BOUND: Record<QuantDType, number> = { q8: 1e-3, q4: 1e-1 };
/** Input vectors per matrix: matvec rows, so each NMSE averages over a few activations. */
const ROWS = 4;

async function matvec(gpu: Gpu, x: Float32Array, w: Float32Array, N: number, K: number, dtype: 'f32' | QuantDType): Promise<Float32Array> {
  const xt = await upload(gpu, 'x', [ROWS, K], x);
  const wt = dtype === 'f32' ? await upload(gpu, 'w', [N, K], w) : await uploadTensor(gpu, 'w', dtype, [N, K], quantize(dtype, w, [N, K]));
  const y = await poisoned(gpu, 'y', [ROWS, N]);
  runDispatches(gpu, [await prepareMatmul(gpu, { x: xt, w: wt, y, variant: 'matvec' })]);
  const out = (await readTensor(gpu, y)) as Float32Array;
  destroyAll(xt, wt, y);
  return out;
}

/** NMSE of the q8 and q4 outputs against f32, for one matrix and ROWS random input vectors. */
async function nmses(gpu: Gpu, w: Float32Array, N: number, K: number, seed: number): Promise<Record<QuantDType, number>> {
  const x = randomNormal(createRng(seed), ROWS * K);
  const exact = await matvec(gpu, x, w, N, K, 'f32');
  return {
    q8: compare(await matvec(gpu, x, w, N, K, 'q8'), exact).nmse,
    q4: compare(await matvec(gpu, x, w, N, K, 'q4'), exact).nmse,
  };
}

function report(title: string, rows: { name: string; nmse: Record<QuantDType, number> }[]): void {
  const width = Math.max(...rows.map((r) => r.name.length));
  const lines = rows.map((r) => `  ${r.name.padEnd(width)}  q8 ${r.nmse.q8.toExponential(2)}  q4 ${r.nmse.q4.toExponential(2)}`);
  console.log(`${title}: matvec output NMSE vs f32\n${lines.join('\n')}`);
}

function expectSane(rows: { name: string; nmse: Record<QuantDType, number> }[], seed: number): void {
  for (const { name, nmse } of rows) {
    for (const dtype of ['q8', 'q4'] as const) {
      expect(nmse[dtype], `${name} ${dtype}, seed ${seed}`).toBeLessThan(BOUND[dtype]);
      expect(nmse[dtype], `${name} ${dtype} is exactly f32, seed ${seed}`).toBeGreaterThan(0);
    }
    expect(nmse.q8, `${name}: q8 should be far closer than q4, seed ${seed}`).toBeLessThan(nmse.q4 / 10);
  }
}

describe('quantization accuracy report', () => {
  it('random Gaussian matrices', async () => {
    const gpu = await testGpu();
    const seed = freshSeed();
    const rng = createRng(seed);
    const rows = [];
    for (const [N, K] of [[1024, 576], [1000, 83], [300, 4097]]) {
      const nmse = await nmses(gpu, randomNormal(rng, N * K, 1 / Math.sqrt(K)), N, K, rng.int(2 ** 32));
      rows.push({ name: `${N}x${K}`, nmse });
    }
    report(`random matrices (seed ${seed})`, rows);
    expectSane(rows, seed);
  });

  it('every matrix of stories260K', async () => {
    const gpu = await testGpu();
    const seed = freshSeed();
    const file = await openSafetensors(bytesSource(readModelBytes('stories260K', 'model.safetensors')));
    const rows = [];
    for (const [name, info] of file.tensors) {
      if (info.shape.length !== 2) continue;
      const { data } = await file.readTensor(name);
      if (!(data instanceof Float32Array)) throw new Error(`${name}: expected F32 weights, got ${info.dtype}`);
      const [N, K] = info.shape;
      rows.push({ name: name.replace(/^model\./, ''), nmse: await nmses(gpu, data, N, K, seed) });
    }
    expect(rows.length).toBe(1 + 5 * 7);
    report(`stories260K (seed ${seed})`, rows);
    expectSane(rows, seed);
  });
});
