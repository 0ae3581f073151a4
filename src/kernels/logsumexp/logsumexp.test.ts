import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor, type DType } from '../../gpu/tensor';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';
import { prepareLogSumExp } from './logsumexp';
import { checkLogSumExp } from './check';

describe('logsumexp on the GPU against the f64 CPU reference', () => {
  for (const V of [1, 7, 255, 257, 4097, 151936]) {
    it(`V=${V}: random, large, ascending and masked rows; an all -Infinity row gives -Infinity`, async () => {
      expectPass(await checkLogSumExp(await testGpu(), { V }, freshSeed()));
    });
  }
});

describe('logsumexp rejects bad inputs', () => {
  const tensor = async (dtype: DType, shape: number[]) => createTensor(await testGpu(), 'bad', dtype, shape);

  it('out must be f32 [rows], logits 2-D f32', async () => {
    const gpu = await testGpu();
    const logits = await tensor('f32', [2, 100]);
    await expect(prepareLogSumExp(gpu, { logits, out: await tensor('u32', [2]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareLogSumExp(gpu, { logits, out: await tensor('f32', [3]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareLogSumExp(gpu, { logits: await tensor('f32', [100]), out: await tensor('f32', [1]) })).rejects.toBeInstanceOf(ShapeError);
  });
});
