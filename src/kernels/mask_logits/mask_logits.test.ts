import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor, type DType } from '../../gpu/tensor';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';
import { checkMaskLogits } from './check';
import { prepareMaskLogits } from './mask_logits';

describe('mask_logits on the GPU against the CPU reference', () => {
  it("one id, a padded tail the size of Qwen's, every id of a row", async () => {
    const gpu = await testGpu();
    expectPass(await checkMaskLogits(gpu, { V: 1, count: 1 }, freshSeed()));
    expectPass(await checkMaskLogits(gpu, { V: 151936, count: 267 }, freshSeed()));
    expectPass(await checkMaskLogits(gpu, { V: 4097, count: 4097 }, freshSeed()));
  });

  it('refuses a bad shape, an empty or oversized id list, and aliasing', async () => {
    const gpu = await testGpu();
    const tensor = (dtype: DType, shape: number[]) => createTensor(gpu, 'bad', dtype, shape);
    const logits = await tensor('f32', [1, 10]);
    await expect(prepareMaskLogits(gpu, { logits: await tensor('f32', [2, 10]), ids: await tensor('u32', [3]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMaskLogits(gpu, { logits, ids: await tensor('u32', [0]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMaskLogits(gpu, { logits, ids: await tensor('u32', [11]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMaskLogits(gpu, { logits, ids: await tensor('f32', [3]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMaskLogits(gpu, { logits, ids: { buffer: logits.buffer, dtype: 'u32', shape: [3] } })).rejects.toBeInstanceOf(ShapeError);
  });
});
