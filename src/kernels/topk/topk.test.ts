import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor, type DType } from '../../gpu/tensor';
import { prepareTopK, topKScratchShape } from './topk';
import { checkTopK, type TopKData } from './check';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';

/** 4097 and 32000 end in a partial block; 151936 (Qwen) needs 38 blocks. */
const SIZES = [1, 7, 512, 4097, 32000, 151936];
const KS = [1, 5, 40, 64, 256];
const DATA: TopKData[] = ['random', 'ties', 'sparse', 'nan', 'late'];

describe('top-k on the GPU against the CPU reference (exact values and indices)', () => {
  for (const V of SIZES) {
    it(`V=${V}: random, ties, mostly -Infinity, mostly NaN, k-th best found late`, async () => {
      const gpu = await testGpu();
      for (const k of KS.filter((k) => k <= V)) {
        for (const data of DATA) expectPass(await checkTopK(gpu, { V, k, data }, freshSeed()));
      }
    });
  }

  it('ascending logits, where every logit beats the best so far', async () => {
    const gpu = await testGpu();
    for (const k of [1, 40, 256]) expectPass(await checkTopK(gpu, { V: 32000, k, data: 'ascending' }, freshSeed()));
  });

  it('k = V, and a k below the capacity chosen with set()', async () => {
    const gpu = await testGpu();
    expectPass(await checkTopK(gpu, { V: 256, k: 256, data: 'ties' }, freshSeed()));
    expectPass(await checkTopK(gpu, { V: 7, k: 7, data: 'random' }, freshSeed()));
    expectPass(await checkTopK(gpu, { V: 4097, k: 37, capacity: 256, data: 'ties' }, freshSeed()));
    expectPass(await checkTopK(gpu, { V: 151936, k: 3, capacity: 64, data: 'random' }, freshSeed()));
  });
});

describe('top-k rejects bad input', () => {
  const tensor = async (dtype: DType, shape: number[]) => createTensor(await testGpu(), 'bad', dtype, shape);

  it('k out of range, at prepare and in set()', async () => {
    const gpu = await testGpu();
    const logits = await tensor('f32', [100]);
    const args = async (capacity: number) => ({ logits, values: await tensor('f32', [capacity]), indices: await tensor('u32', [capacity]) });
    await expect(prepareTopK(gpu, { ...(await args(8)), k: 0 })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { ...(await args(8)), k: 9 })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { ...(await args(8)), k: 2.5 })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, await args(257))).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { ...(await args(8)), logits: await tensor('f32', [5]) })).rejects.toBeInstanceOf(ShapeError);
    const op = await prepareTopK(gpu, await args(8));
    expect(() => op.set({ k: 0 })).toThrow(ShapeError);
    expect(() => op.set({ k: 9 })).toThrow(ShapeError);
  });

  it('shapes, dtypes, scratch and aliasing', async () => {
    const gpu = await testGpu();
    const logits = await tensor('f32', [100]);
    const values = await tensor('f32', [8]);
    const indices = await tensor('u32', [8]);
    await expect(prepareTopK(gpu, { logits: await tensor('f32', [2, 100]), values, indices })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { logits: await tensor('u32', [100]), values, indices })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { logits, values: await tensor('u32', [8]), indices })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { logits, values, indices: await tensor('u32', [9]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { logits, values, indices, scratch: await tensor('u32', [1, 7, 2]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { logits, values, indices: { ...indices, buffer: values.buffer } })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareTopK(gpu, { logits: await tensor('f32', [1, 100]), values, indices, scratch: await tensor('u32', topKScratchShape(100, 8)) })).resolves.toBeDefined();
  });
});
