import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor, type DType } from '../../gpu/tensor';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';
import { prepareArgmax } from './argmax';
import { checkArgmax } from './check';

describe('argmax on the GPU against the CPU reference', () => {
  for (const V of [1, 512, 4097, 151936]) {
    it(`V=${V}: random rows, planted ties (lowest index wins), a -Infinity row; NaN, +Infinity and all -Infinity rows flagged`, async () => {
      expectPass(await checkArgmax(await testGpu(), { V }, freshSeed()));
    });
  }
});

describe('argmax rejects bad inputs', () => {
  const tensor = async (dtype: DType, shape: number[]) => createTensor(await testGpu(), 'bad', dtype, shape);

  it('out must be u32 [rows]', async () => {
    const gpu = await testGpu();
    const logits = await tensor('f32', [2, 100]);
    await expect(prepareArgmax(gpu, { logits, out: await tensor('f32', [2]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareArgmax(gpu, { logits, out: await tensor('u32', [3]) })).rejects.toBeInstanceOf(ShapeError);
  });
});
